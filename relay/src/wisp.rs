//! Wisp: many TCP streams over one WebSocket (MercuryWorkshop's protocol, v1
//! and the v2 handshake with password authentication).
//!
//! Every packet is one binary message: type (u8), stream id (u32 LE), payload.
//! The client opens streams with CONNECT, both sides carry bytes in DATA, and
//! either side ends a stream with CLOSE. The server grants each stream a
//! buffer of [`BUFFER_PACKETS`] DATA packets and tops it up with CONTINUE as
//! the stream's target takes the bytes, so a slow target throttles only its
//! own stream: the WebSocket reader never waits on a TCP write.
//!
//! Credit counts packets, not bytes, so bytes are bounded separately: all the
//! streams of one WebSocket together queue at most [`WS_BUFFER_BYTES`] for
//! their targets. Past that the reader stops reading the WebSocket until the
//! targets take some, pushing back on the client instead of buffering more.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::header::SEC_WEBSOCKET_PROTOCOL;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message};

use crate::config::Config;
use crate::log::{log_stream, Outcome};
use crate::policy::Target;
use crate::relay::{
    close_ws, connect, truncate_reason, ConnectError, FailKind, Stats, Ws, CHUNK, CLOSE_TIMEOUT,
    HANDSHAKE_TIMEOUT,
};

/// The subprotocol a Wisp v2 client offers (as `@mercuryworkshop/wisp-js` does).
pub const SUBPROTOCOL: &str = "wisp-v2";

/// Packet types.
const CONNECT: u8 = 0x01;
const DATA: u8 = 0x02;
const CONTINUE: u8 = 0x03;
const CLOSE: u8 = 0x04;
const INFO: u8 = 0x05;

/// CONNECT's stream type for TCP; UDP (0x02) is not served.
const STREAM_TCP: u8 = 0x01;
const STREAM_UDP: u8 = 0x02;

/// The v2 extension id of password authentication.
const EXT_PASSWORD: u8 = 0x02;

/// Close reasons, as the Wisp specification numbers them.
mod reason {
    pub const VOLUNTARY: u8 = 0x02;
    pub const NETWORK_ERROR: u8 = 0x03;
    pub const INVALID_INFO: u8 = 0x41;
    pub const UNREACHABLE: u8 = 0x42;
    pub const CONNECT_TIMEOUT: u8 = 0x43;
    pub const CONNECTION_REFUSED: u8 = 0x44;
    pub const TRANSFER_TIMEOUT: u8 = 0x47;
    pub const BLOCKED: u8 = 0x48;
    pub const THROTTLED: u8 = 0x49;
    pub const AUTH_BAD_PASSWORD: u8 = 0xc0;
    pub const AUTH_MISSING: u8 = 0xc2;
}

/// DATA packets a stream may have queued toward its target: the credit that
/// CONTINUE grants.
pub const BUFFER_PACKETS: u32 = 64;
/// The queue holds twice the credit: a CONTINUE counts from what is queued
/// when it is sent, and packets already on the wire then arrive on top.
const QUEUE_PACKETS: usize = 2 * BUFFER_PACKETS as usize;
/// Bytes one WebSocket's streams may have queued for their targets, all
/// together. Credit counts packets of up to `--max-message` bytes, so it bounds
/// no byte count; when this budget is spent the reader waits for the targets
/// (backpressure on the client) instead of queueing more. With the defaults a
/// WebSocket so holds at most this plus one message.
pub const WS_BUFFER_BYTES: usize = 16 << 20;
/// Control packets (CONTINUE, refusals) waiting for the WebSocket; whoever
/// queues one waits when it is full.
const CONTROL_QUEUE: usize = 64;
/// Refused CONNECTs logged one line each per WebSocket; the rest are counted
/// in one line at its end.
const REFUSALS_LOGGED: u64 = 16;
/// DATA packets waiting for the WebSocket; targets' readers wait when full.
const OUT_QUEUE: usize = 16;
/// Packets written to the WebSocket before one flush.
const BATCH: usize = 64;
const HEADER: usize = 5;

/// Picks the response's subprotocol on the Wisp path: `wisp-v2` when offered,
/// otherwise none (Wisp v1 names none). Returns whether v2 was offered.
pub fn select_protocol(req: &Request, mut resp: Response) -> (Response, bool) {
    let v2 = req
        .headers()
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == SUBPROTOCOL);
    if v2 {
        resp.headers_mut().insert(
            SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(SUBPROTOCOL),
        );
    }
    (resp, v2)
}

fn packet(kind: u8, stream: u32, payload: &[u8]) -> Message {
    let mut p = Vec::with_capacity(HEADER + payload.len());
    p.push(kind);
    p.extend_from_slice(&stream.to_le_bytes());
    p.extend_from_slice(payload);
    Message::binary(p)
}

fn continue_packet(stream: u32, credit: u32) -> Message {
    packet(CONTINUE, stream, &credit.to_le_bytes())
}

fn close_packet(stream: u32, why: u8) -> Message {
    packet(CLOSE, stream, &[why])
}

/// The server's INFO: version 2.0 and, if credentials are configured, the
/// password extension with its "required" flag set.
fn info_packet(password_required: bool) -> Message {
    let mut payload = vec![2, 0];
    if password_required {
        payload.push(EXT_PASSWORD);
        payload.extend_from_slice(&1u32.to_le_bytes());
        payload.push(1);
    }
    packet(INFO, 0, &payload)
}

/// The credentials in a client's INFO payload, if it carries the password
/// extension.
fn client_credentials(info: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut rest = info.get(2..)?;
    while rest.len() >= 5 {
        let id = rest[0];
        let len = u32::from_le_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let body = rest.get(5..5 + len)?;
        if id == EXT_PASSWORD {
            let user_len = usize::from(*body.first()?);
            let pass_len = usize::from(u16::from_le_bytes([*body.get(1)?, *body.get(2)?]));
            let user = body.get(3..3 + user_len)?;
            let pass = body.get(3 + user_len..3 + user_len + pass_len)?;
            return Some((user.to_vec(), pass.to_vec()));
        }
        rest = &rest[5 + len..];
    }
    None
}

/// Compares without stopping at the first difference, so the time taken does
/// not tell how much of a guessed password was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authorized(cfg: &Config, user: &[u8], pass: &[u8]) -> bool {
    cfg.wisp_auth.iter().fold(false, |ok, (u, p)| {
        ok | (same(u.as_bytes(), user) & same(p.as_bytes(), pass))
    })
}

/// Why the relay stopped a stream before its end, shared with the stream's task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    Running,
    /// The client sent CLOSE: deliver what it sent before, then close.
    ClientClosed,
    /// The client sent past its credit; the relay sent CLOSE already.
    Overrun,
    /// The WebSocket ended.
    Shutdown,
}

/// The reader loop's view of one stream.
struct Entry {
    generation: u64,
    queue: mpsc::Sender<Queued>,
    stop: watch::Sender<Stop>,
    /// Set by the stream's task before it sends its own CLOSE, so that the id
    /// may be reused before the task's end is processed here.
    ended: Arc<AtomicBool>,
}

/// Bytes for a target, holding their share of the WebSocket's byte budget
/// until written.
type Queued = (Bytes, OwnedSemaphorePermit);

/// Totals over the whole WebSocket, for its log line.
#[derive(Default)]
struct Totals {
    up: AtomicU64,
    down: AtomicU64,
}

/// How the WebSocket's reader loop ended.
enum End {
    ClientClosed,
    Violation(CloseCode, String),
    ClientError(String),
    Idle,
}

/// What every stream task needs from its connection.
#[derive(Clone)]
struct Shared {
    cfg: Arc<Config>,
    peer: SocketAddr,
    /// DATA and the streams' own CLOSEs, in order per stream.
    data: mpsc::Sender<Message>,
    /// CONTINUE and the reader's refusals: small, and never behind bulk data.
    control: mpsc::Sender<Message>,
    /// A stream task's (id, generation) when it ends.
    ended: mpsc::UnboundedSender<(u32, u64)>,
    totals: Arc<Totals>,
}

/// Serves one WebSocket on the Wisp path until it closes; writes one log line
/// per stream, and returns the WebSocket's outcome.
pub async fn serve(
    ws: Ws,
    peer: SocketAddr,
    cfg: Arc<Config>,
    v2: bool,
    stats: &mut Stats,
) -> Outcome {
    let (mut sink, mut stream) = ws.split();
    let auth = !cfg.wisp_auth.is_empty();
    if let Err(refusal) = handshake(&mut sink, &mut stream, &cfg, v2 || auth).await {
        return match sink.reunite(stream) {
            Ok(ws) => match refusal {
                Handshake::Refused(why, text) => {
                    // The CLOSE on stream 0 says why in Wisp's terms, the
                    // close frame in words.
                    let mut ws = ws;
                    let _ = timeout(CLOSE_TIMEOUT, ws.send(close_packet(0, why))).await;
                    let text = truncate_reason(text);
                    let frame = CloseFrame {
                        code: CloseCode::Policy,
                        reason: text.clone().into(),
                    };
                    close_ws(ws, frame).await;
                    Outcome::Refused(text)
                }
                Handshake::Failed(e) => Outcome::Error(e),
            },
            Err(_) => Outcome::Error("handshake failed".into()),
        };
    }

    let (data_tx, data_rx) = mpsc::channel(OUT_QUEUE);
    let (control_tx, control_rx) = mpsc::channel(CONTROL_QUEUE);
    let (ended_tx, ended_rx) = mpsc::unbounded_channel();
    let writer = tokio::spawn(write_loop(sink, control_rx, data_rx));
    let shared = Shared {
        cfg: cfg.clone(),
        peer,
        data: data_tx,
        control: control_tx,
        ended: ended_tx,
        totals: Arc::new(Totals::default()),
    };
    let totals = shared.totals.clone();
    let mut mux = Mux {
        shared,
        streams: HashMap::new(),
        tasks: JoinSet::new(),
        generation: 0,
        opened: 0,
        live: Arc::new(()),
        budget: Arc::new(Semaphore::new(WS_BUFFER_BYTES)),
        refused: 0,
    };
    let end = mux.run(&mut stream, ended_rx).await;

    // Stop every stream; each logs its line, delivering what the client sent.
    let Mux {
        shared,
        streams,
        mut tasks,
        opened,
        refused,
        ..
    } = mux;
    if refused > REFUSALS_LOGGED {
        let text = format!(
            "{} more refused streams not logged",
            refused - REFUSALS_LOGGED
        );
        log_stream(peer, 0, None, &Outcome::Refused(text), 0, 0, Duration::ZERO);
    }
    for (_, entry) in streams {
        let _ = entry.stop.send(Stop::Shutdown);
    }
    drop(shared);
    let _ = timeout(CLOSE_TIMEOUT + Duration::from_secs(1), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    stats.up = totals.up.load(Ordering::Relaxed);
    stats.down = totals.down.load(Ordering::Relaxed);

    let (frame, outcome) = match end {
        End::ClientClosed => (
            None,
            Outcome::Ok(format!("client closed; {opened} streams")),
        ),
        End::ClientError(e) => return Outcome::Error(format!("client: {e}; {opened} streams")),
        End::Violation(code, reason) => {
            let reason = truncate_reason(reason);
            (
                Some(CloseFrame {
                    code,
                    reason: reason.clone().into(),
                }),
                Outcome::Error(reason),
            )
        }
        End::Idle => {
            let reason = format!("idle timeout ({}s)", cfg.idle_timeout.as_secs());
            (
                Some(CloseFrame {
                    code: CloseCode::Away,
                    reason: reason.clone().into(),
                }),
                Outcome::Ok(reason),
            )
        }
    };
    // The writer ends once every stream task has dropped its sender.
    let sink = match timeout(CLOSE_TIMEOUT, writer).await {
        Ok(Ok((sink, None))) => sink,
        _ => return outcome,
    };
    if let Ok(mut ws) = sink.reunite(stream) {
        match frame {
            Some(frame) => close_ws(ws, frame).await,
            // Sends tungstenite's reply to the client's close frame.
            None => {
                let _ = timeout(CLOSE_TIMEOUT, ws.close(None)).await;
            }
        }
    }
    outcome
}

/// Why the handshake did not complete.
enum Handshake {
    /// Credentials missing or wrong: the reason code and the text.
    Refused(u8, String),
    Failed(String),
}

/// Sends INFO (for v2, or when credentials are needed), checks the client's
/// credentials if required, then grants the initial credit with CONTINUE on
/// stream 0.
async fn handshake(
    sink: &mut SplitSink<Ws, Message>,
    stream: &mut SplitStream<Ws>,
    cfg: &Config,
    send_info: bool,
) -> Result<(), Handshake> {
    let failed = |e: WsError| Handshake::Failed(format!("client: {e}"));
    let auth = !cfg.wisp_auth.is_empty();
    if send_info {
        sink.send(info_packet(auth)).await.map_err(failed)?;
    }
    if auth {
        let info = timeout(HANDSHAKE_TIMEOUT, async {
            while let Some(msg) = stream.next().await {
                match msg {
                    Ok(Message::Binary(p)) => return Some(p),
                    Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
                    _ => return None,
                }
            }
            None
        })
        .await
        .ok()
        .flatten();
        let creds = info
            .filter(|p| p.len() >= HEADER && p[0] == INFO)
            .and_then(|p| client_credentials(&p[HEADER..]));
        match creds {
            None => {
                return Err(Handshake::Refused(
                    reason::AUTH_MISSING,
                    "Wisp authentication required: no credentials in the client's INFO".into(),
                ))
            }
            Some((user, pass)) if !authorized(cfg, &user, &pass) => {
                let user = String::from_utf8_lossy(&user);
                return Err(Handshake::Refused(
                    reason::AUTH_BAD_PASSWORD,
                    format!("Wisp authentication failed for user {user:?}"),
                ));
            }
            Some(_) => {}
        }
    }
    sink.send(continue_packet(0, BUFFER_PACKETS))
        .await
        .map_err(failed)
}

/// Sends what the streams and the reader queue, control packets first, and
/// flushes once per batch. Returns the sink, and the error if writing failed.
async fn write_loop(
    mut sink: SplitSink<Ws, Message>,
    mut control: mpsc::Receiver<Message>,
    mut data: mpsc::Receiver<Message>,
) -> (SplitSink<Ws, Message>, Option<String>) {
    let (mut control_open, mut data_open) = (true, true);
    while control_open || data_open {
        let first = tokio::select! {
            biased;
            m = control.recv(), if control_open => match m {
                Some(m) => m,
                None => {
                    control_open = false;
                    continue;
                }
            },
            m = data.recv(), if data_open => match m {
                Some(m) => m,
                None => {
                    data_open = false;
                    continue;
                }
            },
        };
        if let Err(e) = sink.feed(first).await {
            return (sink, Some(e.to_string()));
        }
        for _ in 1..BATCH {
            let next = match control.try_recv() {
                Ok(m) => m,
                Err(_) => match data.try_recv() {
                    Ok(m) => m,
                    Err(_) => break,
                },
            };
            if let Err(e) = sink.feed(next).await {
                return (sink, Some(e.to_string()));
            }
        }
        if let Err(e) = sink.flush().await {
            return (sink, Some(e.to_string()));
        }
    }
    (sink, None)
}

/// The reader side of one Wisp WebSocket: the stream table.
struct Mux {
    shared: Shared,
    streams: HashMap<u32, Entry>,
    tasks: JoinSet<()>,
    generation: u64,
    /// Streams accepted over the WebSocket's life, for its log line.
    opened: u64,
    /// One clone per stream task and per name resolution still running, so
    /// that `--max-streams` counts work in progress, not table entries: a
    /// closed stream's resolver cannot be cancelled and still counts.
    live: Arc<()>,
    /// Bytes that may still be queued for the targets: [`WS_BUFFER_BYTES`].
    budget: Arc<Semaphore>,
    /// CONNECTs refused, for rate-limiting their log lines.
    refused: u64,
}

impl Mux {
    async fn run(
        &mut self,
        stream: &mut SplitStream<Ws>,
        mut ended: mpsc::UnboundedReceiver<(u32, u64)>,
    ) -> End {
        let idle_timeout = self.shared.cfg.idle_timeout;
        let max_message = self.shared.cfg.max_message;
        let mut last_activity = Instant::now();
        loop {
            // Streams have idle timers of their own; the WebSocket's runs only
            // while it carries none.
            let idle_at = last_activity + idle_timeout;
            tokio::select! {
                msg = stream.next() => {
                    last_activity = Instant::now();
                    match msg {
                        Some(Ok(Message::Binary(p))) => {
                            if let Err(end) = self.packet(p).await {
                                return end;
                            }
                        }
                        Some(Ok(Message::Text(_))) => {
                            let reason = "text frames are not supported".to_string();
                            return End::Violation(CloseCode::Unsupported, reason);
                        }
                        // tungstenite queues the pong itself.
                        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                        Some(Ok(Message::Close(_))) | None => return End::ClientClosed,
                        Some(Err(WsError::Capacity(_))) => {
                            let reason = format!("message too big (limit {max_message} bytes)");
                            return End::Violation(CloseCode::Size, reason);
                        }
                        Some(Err(e)) => return End::ClientError(e.to_string()),
                    }
                }
                Some((id, generation)) = ended.recv() => {
                    if self.streams.get(&id).is_some_and(|e| e.generation == generation) {
                        self.streams.remove(&id);
                    }
                    while self.tasks.try_join_next().is_some() {}
                    if self.streams.is_empty() {
                        last_activity = Instant::now();
                    }
                }
                _ = tokio::time::sleep_until(idle_at.into()), if self.streams.is_empty() => {
                    return End::Idle;
                }
            }
        }
    }

    /// Handles one packet from the client.
    async fn packet(&mut self, p: Bytes) -> Result<(), End> {
        if p.len() < HEADER {
            let reason = "malformed Wisp packet (shorter than 5 bytes)".to_string();
            return Err(End::Violation(CloseCode::Protocol, reason));
        }
        let id = u32::from_le_bytes([p[1], p[2], p[3], p[4]]);
        match p[0] {
            CONNECT => self.connect(id, &p[HEADER..]).await,
            DATA if id != 0 => {
                self.data(id, p.slice(HEADER..)).await;
                Ok(())
            }
            CLOSE if id == 0 => Err(End::ClientClosed),
            CLOSE => {
                if let Some(entry) = self.streams.remove(&id) {
                    let _ = entry.stop.send(Stop::ClientClosed);
                }
                Ok(())
            }
            // The client's INFO (v2 without authentication), a CONTINUE a
            // client should not send, DATA on stream 0 and unknown types from
            // extensions not negotiated: nothing to do.
            _ => Ok(()),
        }
    }

    /// Refuses a CONNECT; waits while the control queue is full, so a client
    /// that sends CONNECTs without reading the answers is pushed back on.
    async fn refuse(&mut self, id: u32, target: Option<&str>, why: u8, text: String) {
        let _ = self.shared.control.send(close_packet(id, why)).await;
        self.refused += 1;
        if self.refused > REFUSALS_LOGGED {
            return;
        }
        log_stream(
            self.shared.peer,
            id,
            target,
            &Outcome::Refused(text),
            0,
            0,
            Duration::ZERO,
        );
    }

    async fn connect(&mut self, id: u32, payload: &[u8]) -> Result<(), End> {
        if id == 0 {
            let reason = "CONNECT on stream 0".to_string();
            return Err(End::Violation(CloseCode::Protocol, reason));
        }
        match self.streams.get(&id) {
            Some(entry) if entry.ended.load(Ordering::Acquire) => {
                self.streams.remove(&id);
            }
            Some(_) => {
                let reason = format!("CONNECT for stream {id}, which is open");
                return Err(End::Violation(CloseCode::Protocol, reason));
            }
            None => {}
        }
        let cfg = self.shared.cfg.clone();
        let Some((&kind, rest)) = payload.split_first() else {
            self.refuse(id, None, reason::INVALID_INFO, "malformed CONNECT".into())
                .await;
            return Ok(());
        };
        let (port, host) = match rest {
            [lo, hi, host @ ..] => (u16::from_le_bytes([*lo, *hi]), host),
            _ => {
                self.refuse(id, None, reason::INVALID_INFO, "malformed CONNECT".into())
                    .await;
                return Ok(());
            }
        };
        let host = String::from_utf8_lossy(host);
        let host = host.trim();
        let named = format!("{host}:{port}");
        if kind != STREAM_TCP {
            let what = if kind == STREAM_UDP {
                "UDP streams are not supported".to_string()
            } else {
                format!("unknown stream type {kind:#04x}")
            };
            self.refuse(id, Some(&named), reason::INVALID_INFO, what)
                .await;
            return Ok(());
        }
        let target = match Target::from_host_and_port(host, port) {
            Ok(t) => t,
            Err(e) => {
                let text = format!("invalid target: {e}");
                self.refuse(id, Some(&named), reason::INVALID_INFO, text)
                    .await;
                return Ok(());
            }
        };
        let named = target.to_string();
        let allowed = match &cfg.target {
            // With a fixed target, streams may go there and nowhere else.
            Some(fixed) => *fixed == target,
            None => cfg.allow.iter().any(|p| p.matches(&target)),
        };
        if !allowed {
            let text = format!("target not allowed: {named}");
            self.refuse(id, Some(&named), reason::BLOCKED, text).await;
            return Ok(());
        }
        // Tasks and resolvers still running count, not just open streams;
        // `live` itself is one of the references.
        if Arc::strong_count(&self.live) > cfg.max_streams {
            let text = format!("too many streams (limit {})", cfg.max_streams);
            self.refuse(id, Some(&named), reason::THROTTLED, text).await;
            return Ok(());
        }

        self.generation += 1;
        self.opened += 1;
        let (queue_tx, queue_rx) = mpsc::channel(QUEUE_PACKETS);
        let (stop_tx, stop_rx) = watch::channel(Stop::Running);
        let ended = Arc::new(AtomicBool::new(false));
        let task = StreamTask {
            id,
            generation: self.generation,
            target,
            shared: self.shared.clone(),
            queue: queue_rx,
            stop: stop_rx,
            ended: ended.clone(),
            live: self.live.clone(),
        };
        self.tasks.spawn(task.run());
        self.streams.insert(
            id,
            Entry {
                generation: self.generation,
                queue: queue_tx,
                stop: stop_tx,
                ended,
            },
        );
        Ok(())
    }

    /// Queues DATA for a stream's target. Waits only for the WebSocket's byte
    /// budget, never for the stream's target: a client past its credit loses
    /// that stream, not the WebSocket.
    async fn data(&mut self, id: u32, payload: Bytes) {
        if !self.streams.contains_key(&id) {
            // Already closed on our side; packets in flight are dropped.
            return;
        }
        let want = payload.len().min(WS_BUFFER_BYTES);
        let want = u32::try_from(want).unwrap_or(u32::MAX);
        let Ok(permit) = self.budget.clone().acquire_many_owned(want).await else {
            return;
        };
        let Some(entry) = self.streams.get(&id) else {
            return;
        };
        if entry.queue.try_send((payload, permit)).is_ok() || entry.queue.is_closed() {
            // Queued, or the task has ended and is about to say so.
            return;
        }
        if let Some(entry) = self.streams.remove(&id) {
            let _ = entry.stop.send(Stop::Overrun);
            let _ = self
                .shared
                .control
                .send(close_packet(id, reason::THROTTLED))
                .await;
        }
    }
}

/// One stream: connects to its target, then carries bytes both ways.
struct StreamTask {
    id: u32,
    generation: u64,
    target: Target,
    shared: Shared,
    queue: mpsc::Receiver<Queued>,
    stop: watch::Receiver<Stop>,
    ended: Arc<AtomicBool>,
    /// Counts this task, and its resolver, against `--max-streams`.
    live: Arc<()>,
}

/// How a stream ended after it connected.
enum StreamEnd {
    ServerEof,
    /// The client closed the stream, or the WebSocket ended.
    ClientClosed,
    Overrun,
    TargetError(String),
    Idle,
    /// The WebSocket writer is gone.
    WriterGone,
}

/// Waits until the reader stops the stream; a dropped sender means the
/// WebSocket is gone.
async fn stopped(stop: &mut watch::Receiver<Stop>) -> Stop {
    match stop.wait_for(|s| *s != Stop::Running).await {
        Ok(s) => *s,
        Err(_) => Stop::Shutdown,
    }
}

impl StreamTask {
    async fn run(mut self) {
        let start = Instant::now();
        let named = self.target.to_string();
        let (mut up, mut down) = (0u64, 0u64);
        let outcome = match self.open().await {
            Err((why, outcome)) => {
                if let Some(why) = why {
                    self.send_close(why).await;
                }
                outcome
            }
            Ok(tcp) => {
                let end = self.pump(tcp, &mut up, &mut down).await;
                let idle = self.shared.cfg.idle_timeout.as_secs();
                let (why, outcome) = match end {
                    StreamEnd::ServerEof => {
                        (Some(reason::VOLUNTARY), Outcome::Ok("server closed".into()))
                    }
                    StreamEnd::ClientClosed => (None, Outcome::Ok("client closed".into())),
                    StreamEnd::Overrun => (
                        None,
                        Outcome::Error("client sent past its buffer credit".into()),
                    ),
                    StreamEnd::TargetError(e) => (Some(reason::NETWORK_ERROR), Outcome::Error(e)),
                    StreamEnd::Idle => (
                        Some(reason::TRANSFER_TIMEOUT),
                        Outcome::Ok(format!("idle timeout ({idle}s)")),
                    ),
                    StreamEnd::WriterGone => (None, Outcome::Error("client: gone".into())),
                };
                if let Some(why) = why {
                    self.send_close(why).await;
                }
                outcome
            }
        };
        log_stream(
            self.shared.peer,
            self.id,
            Some(&named),
            &outcome,
            up,
            down,
            start.elapsed(),
        );
        let _ = self.shared.ended.send((self.id, self.generation));
    }

    /// Sends this stream's CLOSE after its DATA, unless the reader stopped it
    /// meanwhile (then the client is not listening for it).
    async fn send_close(&mut self, why: u8) {
        self.ended.store(true, Ordering::Release);
        let data = self.shared.data.clone();
        let mut stop = self.stop.clone();
        tokio::select! {
            _ = data.send(close_packet(self.id, why)) => {}
            _ = stopped(&mut stop) => {}
        }
    }

    /// Connects, unless stopped first. On failure, returns the close reason to
    /// send (none if the client is gone) and the outcome to log.
    async fn open(&mut self) -> Result<TcpStream, (Option<u8>, Outcome)> {
        let cfg = self.shared.cfg.clone();
        let mut stop = self.stop.clone();
        let attempt = timeout(
            cfg.connect_timeout,
            connect(&self.target, cfg.allow_private, self.live.clone()),
        );
        let result = tokio::select! {
            r = attempt => r,
            _ = stopped(&mut stop) => {
                return Err((None, Outcome::Ok("client closed while connecting".into())));
            }
        };
        match result {
            Ok(Ok(tcp)) => {
                // Latency matters more than segment count: TLS records are sized.
                let _ = tcp.set_nodelay(true);
                Ok(tcp)
            }
            Ok(Err(ConnectError::Private(addr))) => Err((
                Some(reason::BLOCKED),
                Outcome::Refused(format!("private address refused: {addr}")),
            )),
            Ok(Err(ConnectError::Failed(kind, e))) => {
                let why = match kind {
                    FailKind::Resolve | FailKind::Unreachable => reason::UNREACHABLE,
                    FailKind::Refused => reason::CONNECTION_REFUSED,
                    FailKind::Other => reason::NETWORK_ERROR,
                };
                Err((Some(why), Outcome::Error(format!("connect failed: {e}"))))
            }
            Err(_) => {
                let secs = cfg.connect_timeout.as_secs();
                Err((
                    Some(reason::CONNECT_TIMEOUT),
                    Outcome::Error(format!("connect failed: timed out after {secs}s")),
                ))
            }
        }
    }

    async fn pump(&mut self, tcp: TcpStream, up: &mut u64, down: &mut u64) -> StreamEnd {
        let (mut tcp_read, mut tcp_write) = tcp.into_split();
        let id = self.id;
        let start = Instant::now();
        let last_activity = AtomicU64::new(0);
        let touch = || {
            let ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
            last_activity.store(ms, Ordering::Relaxed);
        };
        let shared = &self.shared;
        let chunk = CHUNK.min(shared.cfg.max_message.saturating_sub(HEADER).max(1));
        let queue = &mut self.queue;
        let stop_state = self.stop.clone();

        let client_to_server = async {
            let mut drained = 0u32;
            while let Some((data, permit)) = queue.recv().await {
                if let Err(e) = tcp_write.write_all(&data).await {
                    return StreamEnd::TargetError(format!("write to target: {e}"));
                }
                drop(permit);
                *up += data.len() as u64;
                shared
                    .totals
                    .up
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
                touch();
                drained += 1;
                // Top the credit up once half of it has been used, as the
                // specification suggests, so the client rarely waits.
                if drained >= BUFFER_PACKETS / 2 && *stop_state.borrow() == Stop::Running {
                    let queued = u32::try_from(queue.len()).unwrap_or(u32::MAX);
                    let credit = BUFFER_PACKETS.saturating_sub(queued);
                    let _ = shared.control.send(continue_packet(id, credit)).await;
                    drained = 0;
                }
            }
            // The client closed the stream and everything it sent is written.
            let _ = tcp_write.shutdown().await;
            StreamEnd::ClientClosed
        };

        let mut stop = self.stop.clone();
        let server_to_client = async {
            let mut buf = vec![0u8; chunk];
            loop {
                let n = tokio::select! {
                    r = tcp_read.read(&mut buf) => match r {
                        Ok(0) => return StreamEnd::ServerEof,
                        Ok(n) => n,
                        Err(e) => return StreamEnd::TargetError(format!("read from target: {e}")),
                    },
                    // Stopped: nothing more goes to the client; the other
                    // futures decide when the stream ends.
                    _ = stopped(&mut stop) => std::future::pending().await,
                };
                let msg = packet(DATA, id, &buf[..n]);
                tokio::select! {
                    r = shared.data.send(msg) => {
                        if r.is_err() {
                            return StreamEnd::WriterGone;
                        }
                    }
                    _ = stopped(&mut stop) => std::future::pending().await,
                }
                *down += n as u64;
                shared.totals.down.fetch_add(n as u64, Ordering::Relaxed);
                touch();
            }
        };

        let mut stop = self.stop.clone();
        let stop_watch = async {
            match stopped(&mut stop).await {
                Stop::Overrun => StreamEnd::Overrun,
                // Give the client's last bytes time to reach a slow target.
                _ => {
                    tokio::time::sleep(CLOSE_TIMEOUT).await;
                    StreamEnd::ClientClosed
                }
            }
        };

        let idle_timeout = shared.cfg.idle_timeout;
        let idle = async {
            let deadline = || {
                let last = Duration::from_millis(last_activity.load(Ordering::Relaxed));
                start + last + idle_timeout
            };
            loop {
                tokio::time::sleep_until(deadline().into()).await;
                if Instant::now() >= deadline() {
                    return StreamEnd::Idle;
                }
            }
        };

        tokio::select! {
            end = client_to_server => end,
            end = server_to_client => end,
            end = stop_watch => end,
            end = idle => end,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info_with_password(user: &[u8], pass: &[u8]) -> Vec<u8> {
        let mut body = vec![u8::try_from(user.len()).expect("short user")];
        body.extend_from_slice(&u16::try_from(pass.len()).expect("short").to_le_bytes());
        body.extend_from_slice(user);
        body.extend_from_slice(pass);
        let mut info = vec![2, 0];
        // An unknown extension first: it must be skipped.
        info.extend_from_slice(&[0x7f, 1, 0, 0, 0, 9]);
        info.push(EXT_PASSWORD);
        info.extend_from_slice(&u32::try_from(body.len()).expect("short").to_le_bytes());
        info.extend_from_slice(&body);
        info
    }

    #[test]
    fn parses_credentials() {
        let info = info_with_password(b"alice", b"pw");
        assert_eq!(
            client_credentials(&info),
            Some((b"alice".to_vec(), b"pw".to_vec()))
        );
        assert_eq!(client_credentials(&[2, 0]), None);
        assert_eq!(client_credentials(&info[..info.len() - 1]), None);
        assert_eq!(client_credentials(&[]), None);
    }

    #[test]
    fn checks_credentials() {
        let cfg = Config {
            wisp_auth: vec![("alice".into(), "pw".into()), ("bob".into(), "x".into())],
            ..Config::default()
        };
        assert!(authorized(&cfg, b"alice", b"pw"));
        assert!(authorized(&cfg, b"bob", b"x"));
        assert!(!authorized(&cfg, b"alice", b"x"));
        assert!(!authorized(&cfg, b"alice", b"pw2"));
        assert!(!authorized(&cfg, b"", b""));
    }

    #[test]
    fn packet_layout() {
        let Message::Binary(p) = continue_packet(7, 64) else {
            panic!("binary")
        };
        assert_eq!(&p[..], &[CONTINUE, 7, 0, 0, 0, 64, 0, 0, 0]);
        let Message::Binary(p) = info_packet(true) else {
            panic!("binary")
        };
        assert_eq!(
            &p[..],
            &[INFO, 0, 0, 0, 0, 2, 0, EXT_PASSWORD, 1, 0, 0, 0, 1]
        );
    }
}
