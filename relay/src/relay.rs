//! One WebSocket connection: handshake, target checks, TCP connect, and the
//! byte pump between the two sockets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use futures_util::future::poll_immediate;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::header::SEC_WEBSOCKET_PROTOCOL;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::config::Config;
use crate::end::{client_message, close_ws, fail, refuse, Activity, End, CLOSE_TIMEOUT};
use crate::log::{LogLine, Outcome};
use crate::policy::{is_private, Host, Target};
use crate::wisp;

pub(crate) type Ws = WebSocketStream<TcpStream>;

/// Time a client gets to complete the HTTP upgrade.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A Wisp DATA packet's largest payload, and the raw mode's first read from
/// its target.
pub(crate) const CHUNK: usize = 64 * 1024;
/// The raw mode's largest read from its target, and so the largest message it
/// sends (within `--max-message`): reads grow from [`CHUNK`] to this while the
/// target has more ready and the client keeps up.
const MAX_READ: usize = 256 * 1024;
/// The only subprotocol spoken; websockify's `base64` is not.
const BINARY: &str = "binary";
/// Connect attempts (name resolution plus TCP connect) in progress across the
/// whole relay; more wait their turn within their connect timeout. Resolution
/// runs on tokio's blocking pool (512 threads) and cannot be cancelled, so a
/// slot is held until the resolver really returns: clients asking for slow
/// names can never fill the pool.
pub(crate) const MAX_CONNECTING: usize = 256;
static CONNECTING: Semaphore = Semaphore::const_new(MAX_CONNECTING);

/// Whether the connection got a slot under `--max-connections`.
pub enum Admission {
    /// Admitted; the permit is released when the connection ends.
    Admitted(OwnedSemaphorePermit),
    /// Over the limit: the client gets a close frame saying so. The permit
    /// bounds how many such refusals run at once.
    Full(OwnedSemaphorePermit),
}

/// Handles one accepted TCP connection from start to finish and logs one line.
pub async fn handle(stream: TcpStream, peer: SocketAddr, cfg: Arc<Config>, admission: Admission) {
    let start = Instant::now();
    // Small TLS records to the browser should not wait for ACKs either.
    let _ = stream.set_nodelay(true);
    let mut stats = Stats::default();
    let outcome = serve(stream, peer, &cfg, admission, &mut stats).await;
    LogLine {
        client: peer,
        stream: None,
        target: stats.target.as_deref(),
        outcome: &outcome,
        c2s: stats.up,
        s2c: stats.down,
        duration: start.elapsed(),
    }
    .write();
}

/// What the log line reports besides the outcome.
#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) target: Option<String>,
    /// Bytes client → server.
    pub(crate) up: u64,
    /// Bytes server → client.
    pub(crate) down: u64,
}

/// What the client asked for in its upgrade request.
struct Upgrade {
    path_and_query: String,
    /// The subprotocol offered without `binary`, if any: it is refused.
    unsupported_protocol: Option<String>,
    /// The path is the Wisp endpoint.
    wisp: bool,
    /// The client offered Wisp v2's subprotocol.
    wisp_v2: bool,
}

async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    cfg: &Arc<Config>,
    admission: Admission,
    stats: &mut Stats,
) -> Outcome {
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(cfg.max_message))
        .max_frame_size(Some(cfg.max_message));
    let mut upgrade = None;
    // The error type is tungstenite's; this callback never returns it.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        let wisp = cfg.wisp_path.as_deref() == Some(req.uri().path());
        let (resp, unsupported_protocol, wisp_v2) = if wisp {
            let (resp, v2) = wisp::select_protocol(req, resp);
            (resp, None, v2)
        } else {
            let (resp, unsupported) = select_protocol(req, resp);
            (resp, unsupported, false)
        };
        upgrade = Some(Upgrade {
            path_and_query: req
                .uri()
                .path_and_query()
                .map(|pq| pq.as_str().to_string())
                .unwrap_or_default(),
            unsupported_protocol,
            wisp,
            wisp_v2,
        });
        Ok(resp)
    };
    let accept = tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(ws_config));
    let ws = match timeout(HANDSHAKE_TIMEOUT, accept).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => return Outcome::Error(format!("handshake failed: {e}")),
        Err(_) => return Outcome::Error("handshake timed out".into()),
    };
    let Some(upgrade) = upgrade else {
        return Outcome::Error("handshake failed".into());
    };

    let _permit = match admission {
        Admission::Admitted(permit) => permit,
        Admission::Full(_permit) => {
            let reason = format!("too many connections (limit {})", cfg.max_connections);
            return refuse(ws, CloseCode::Policy, reason).await;
        }
    };
    if upgrade.wisp {
        stats.target = Some("wisp".into());
        return wisp::serve(ws, peer, cfg.clone(), upgrade.wisp_v2, stats).await;
    }
    if let Some(protocol) = upgrade.unsupported_protocol {
        let reason = format!("subprotocol not supported: {protocol} (only binary)");
        return refuse(ws, CloseCode::Policy, reason).await;
    }
    if !cfg.wisp_auth.is_empty() {
        // The raw mode has no way to carry credentials, so it would bypass them.
        let path = cfg.wisp_path.as_deref().unwrap_or("/wisp/");
        let reason = format!("this relay requires Wisp authentication: connect to {path}");
        return refuse(ws, CloseCode::Policy, reason).await;
    }

    let target = match &cfg.target {
        // The operator chose this target, so it needs no allowlist entry.
        Some(fixed) => fixed.clone(),
        None => {
            let requested = match requested_target(&upgrade.path_and_query) {
                Ok(t) => t,
                Err(reason) => return refuse(ws, CloseCode::Policy, reason).await,
            };
            stats.target = Some(requested.to_string());
            if !cfg.allow.iter().any(|p| p.matches(&requested)) {
                let reason = format!("target not allowed: {requested}");
                return refuse(ws, CloseCode::Policy, reason).await;
            }
            requested
        }
    };
    stats.target = Some(target.to_string());

    let tcp = match timeout(cfg.connect_timeout, connect(&target, cfg.allow_private, ())).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(ConnectError::Private(addr))) => {
            let reason = format!("private address refused: {addr}");
            return refuse(ws, CloseCode::Policy, reason).await;
        }
        Ok(Err(ConnectError::Failed(_, e))) => {
            return fail(ws, CloseCode::Error, format!("connect failed: {e}")).await;
        }
        Err(_) => {
            let secs = cfg.connect_timeout.as_secs();
            let reason = format!("connect failed: timed out after {secs}s");
            return fail(ws, CloseCode::Error, reason).await;
        }
    };
    // Latency matters more than segment count: TLS records are already sized.
    // Failing to set it only costs latency, so it is not fatal.
    let _ = tcp.set_nodelay(true);
    pump(ws, tcp, cfg, stats).await
}

/// Picks the response's subprotocol. With `binary` offered it is selected;
/// with only other protocols offered (websockify's `base64`), the first is
/// echoed so that a browser completes the upgrade and sees the close reason
/// instead of an opaque handshake failure; that one is returned as unsupported.
fn select_protocol(req: &Request, mut resp: Response) -> (Response, Option<String>) {
    let chosen = echo_protocol(req, &mut resp, BINARY);
    (resp, chosen.filter(|p| p != BINARY))
}

/// The subprotocol a response answers with, on either path: `preferred` when the
/// client offers it, else the first name it offers, echoed so that a browser
/// completes the handshake. Put into `resp` when it is a valid header value;
/// None when the client offers none.
pub fn echo_protocol(req: &Request, resp: &mut Response, preferred: &str) -> Option<String> {
    let offered: Vec<&str> = req
        .headers()
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let chosen = offered
        .iter()
        .find(|p| **p == preferred)
        .or(offered.first())?
        .to_string();
    if let Ok(value) = HeaderValue::from_str(&chosen) {
        resp.headers_mut().insert(SEC_WEBSOCKET_PROTOCOL, value);
    }
    Some(chosen)
}

/// Reads the target from `/HOST:PORT` or `?target=HOST:PORT`; the query wins
/// when both are present.
pub fn requested_target(path_and_query: &str) -> Result<Target, String> {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let from_query = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("target="))
        .map(percent_decode);
    let raw = match from_query {
        Some(t) => t?,
        None => {
            let path = path.strip_prefix('/').unwrap_or(path);
            if path.is_empty() {
                return Err("no target: use /HOST:PORT or ?target=HOST:PORT".into());
            }
            percent_decode(path)?
        }
    };
    Target::parse(&raw).map_err(|e| format!("invalid target: {e}"))
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("invalid target: bad percent-encoding")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "invalid target: not UTF-8".to_string())
}

/// Why a connection to a target was not made.
pub(crate) enum ConnectError {
    /// Every address the target resolved to is private.
    Private(SocketAddr),
    /// Resolution or the TCP connect failed.
    Failed(FailKind, String),
}

/// The kind of a failed connect, for Wisp's close reasons.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FailKind {
    /// The name did not resolve (or resolved to nothing).
    Resolve,
    /// The target answered with a reset: nothing listens there.
    Refused,
    /// No route to the host or network.
    Unreachable,
    /// Anything else.
    Other,
}

/// Resolves `target` and connects to the first address that is permitted and
/// answers. The check is on the resolved address itself, so a public name that
/// resolves to a private address is refused too.
///
/// The attempt holds one of [`MAX_CONNECTING`] slots, and `held` with it, until
/// it is over, and until the resolver returns even if the caller stops waiting.
pub(crate) async fn connect<H: Send + 'static>(
    target: &Target,
    allow_private: bool,
    held: H,
) -> Result<TcpStream, ConnectError> {
    let slot = CONNECTING
        .acquire()
        .await
        .map_err(|e| ConnectError::Failed(FailKind::Other, e.to_string()))?;
    let held = (slot, held);
    let (addrs, _held): (Vec<SocketAddr>, _) = match &target.host {
        Host::Ip(ip) => (vec![SocketAddr::new(*ip, target.port)], held),
        Host::Name(name) => {
            let query = (name.clone(), target.port);
            let resolve = move || {
                std::net::ToSocketAddrs::to_socket_addrs(&(query.0.as_str(), query.1))
                    .map(|a| a.collect::<Vec<_>>())
            };
            let (addrs, held) = blocking_holding(resolve, held)
                .await
                .ok_or_else(|| ConnectError::Failed(FailKind::Other, "resolver failed".into()))?;
            let addrs =
                addrs.map_err(|e| ConnectError::Failed(FailKind::Resolve, e.to_string()))?;
            (addrs, held)
        }
    };
    let mut refused = None;
    let mut last_error = None;
    for addr in addrs {
        if !allow_private && is_private(addr.ip()) {
            refused.get_or_insert(addr);
            continue;
        }
        match TcpStream::connect(addr).await {
            Ok(tcp) => return Ok(tcp),
            Err(e) => {
                let kind = match e.kind() {
                    std::io::ErrorKind::ConnectionRefused => FailKind::Refused,
                    std::io::ErrorKind::HostUnreachable
                    | std::io::ErrorKind::NetworkUnreachable => FailKind::Unreachable,
                    _ => FailKind::Other,
                };
                last_error = Some((kind, format!("{addr}: {e}")));
            }
        }
    }
    Err(match (last_error, refused) {
        (Some((kind, e)), _) => ConnectError::Failed(kind, e),
        (None, Some(addr)) => ConnectError::Private(addr),
        (None, None) => {
            ConnectError::Failed(FailKind::Resolve, format!("{target} has no addresses"))
        }
    })
}

async fn pump(ws: Ws, tcp: TcpStream, cfg: &Config, stats: &mut Stats) -> Outcome {
    let (mut sink, mut stream) = ws.split();
    let (mut tcp_read, mut tcp_write) = tcp.into_split();
    let activity = Activity::new();
    let first_read = CHUNK.min(cfg.max_message);
    let max_read = MAX_READ.min(cfg.max_message).max(first_read);
    let max_message = cfg.max_message;
    let (up, down) = (&mut stats.up, &mut stats.down);

    let client_to_server = async {
        loop {
            match client_message(stream.next().await, max_message) {
                Ok(Some(data)) => {
                    if let Err(e) = tcp_write.write_all(&data).await {
                        return End::TargetError(format!("write to target: {e}"));
                    }
                    *up += data.len() as u64;
                    activity.touch();
                }
                Ok(None) => activity.touch(),
                Err(end) => return end,
            }
        }
    };

    let server_to_client = async {
        let mut buf = BytesMut::new();
        let mut want = first_read;
        loop {
            // Read in place: the message takes the bytes without a copy here.
            buf.reserve(want);
            let mut room = (&mut buf).limit(want);
            let n = match tcp_read.read_buf(&mut room).await {
                Ok(0) => return End::ServerEof,
                Ok(n) => n,
                Err(e) => return End::TargetError(format!("read from target: {e}")),
            };
            // `send` flushes, so a slow client slows the target down instead
            // of growing a buffer here.
            let mut send = std::pin::pin!(sink.send(Message::binary(buf.split().freeze())));
            let waited = match poll_immediate(&mut send).await {
                Some(Ok(())) => false,
                Some(Err(e)) => return End::ClientError(e.to_string()),
                None => {
                    if let Err(e) = send.await {
                        return End::ClientError(e.to_string());
                    }
                    true
                }
            };
            // A full read means more is probably waiting. If the client also
            // took the message at once, read more next time: fewer, larger
            // messages cost both sides less. After a wait, back to small
            // messages, which a slow client can use sooner.
            want = if n == want && !waited {
                (want * 2).min(max_read)
            } else {
                first_read
            };
            *down += n as u64;
            activity.touch();
        }
    };

    let end = tokio::select! {
        end = client_to_server => end,
        end = server_to_client => end,
        () = activity.idle(cfg.idle_timeout) => End::Idle,
    };

    let (frame, outcome) = match end.close_frame(cfg.idle_timeout) {
        Ok(closing) => closing,
        Err(None) => {
            // Sends tungstenite's reply to the client's close frame.
            let _ = timeout(CLOSE_TIMEOUT, async {
                let _ = tcp_write.shutdown().await;
                let _ = sink.close().await;
            })
            .await;
            return Outcome::Ok("client closed".into());
        }
        Err(Some(e)) => return Outcome::Error(format!("client: {e}")),
    };
    let _ = timeout(CLOSE_TIMEOUT, tcp_write.shutdown()).await;
    drop((tcp_read, tcp_write));
    if let Ok(ws) = sink.reunite(stream) {
        close_ws(ws, frame, cfg.idle_timeout).await;
    }
    outcome
}

/// Runs `f` on the blocking pool. `held` is dropped only when `f` returns,
/// even if the caller stops waiting first; it is handed back otherwise.
async fn blocking_holding<T, H>(f: impl FnOnce() -> T + Send + 'static, held: H) -> Option<(T, H)>
where
    T: Send + 'static,
    H: Send + 'static,
{
    tokio::task::spawn_blocking(move || (f(), held)).await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_from_path_and_query() {
        let ok = |s: &str| requested_target(s).map(|t| t.to_string());
        assert_eq!(ok("/example.com:443").as_deref(), Ok("example.com:443"));
        assert_eq!(ok("/[::1]:443").as_deref(), Ok("[::1]:443"));
        assert_eq!(ok("/%5B::1%5D:443").as_deref(), Ok("[::1]:443"));
        assert_eq!(ok("/?target=a.test:1").as_deref(), Ok("a.test:1"));
        assert_eq!(ok("/?x=1&target=a.test%3A2").as_deref(), Ok("a.test:2"));
        assert_eq!(ok("/ignored:1?target=a.test:3").as_deref(), Ok("a.test:3"));
        assert_eq!(ok("/b.test:4?other=1").as_deref(), Ok("b.test:4"));
        assert!(requested_target("/").is_err());
        assert!(requested_target("").is_err());
        assert!(requested_target("/?target=").is_err());
        assert!(requested_target("/a.test").is_err());
        assert!(requested_target("/a.test:1/extra").is_err());
        assert!(requested_target("/%zz:1").is_err());
        assert!(requested_target("/%ff:1").is_err());
    }

    #[tokio::test]
    async fn resolver_slot_outlives_an_abandoned_wait() {
        let held = Arc::new(());
        let slow = || std::thread::sleep(Duration::from_millis(300));
        let wait = blocking_holding(slow, held.clone());
        assert!(timeout(Duration::from_millis(20), wait).await.is_err());
        // The caller gave up, but the resolver still runs: still held.
        assert_eq!(Arc::strong_count(&held), 2);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(&held) > 1 {
            assert!(Instant::now() < deadline, "never released");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
