//! Wisp end to end: the built relay binary, local TCP servers, and a small
//! Wisp client written here on tokio-tungstenite, all on 127.0.0.1.

mod common;

use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use common::{sending_server, Client as Ws, Relay};
// The packets are the relay's own wire format, itself checked against the
// vectors shared with the package (tests/wisp-vectors.json).
use wasm_tls_relay::wisp::wire::{
    self, reason, Extension, Info, CLOSE, CONTINUE, DATA, EXT_CLIENT_CREDIT, INFO,
    STREAM_TCP as TCP, STREAM_UDP as UDP,
};
use wasm_tls_relay::wisp::BUFFER_PACKETS;

const TEST_TIMEOUT: Duration = Duration::from_secs(20);

/// The credit the relay grants each stream.
const BUFFER: u32 = BUFFER_PACKETS;

async fn bounded<F: Future<Output = ()>>(body: F) {
    tokio::time::timeout(TEST_TIMEOUT, body)
        .await
        .expect("test timed out");
}

impl Relay {
    fn start(args: &[&str]) -> Relay {
        Relay::start_within(args, TEST_TIMEOUT)
    }

    /// A Wisp v1 session on /wisp/, past the initial CONTINUE.
    async fn wisp(&self) -> Wisp {
        let (ws, _) = self.websocket("/wisp/", None).await;
        let mut wisp = Wisp { ws };
        let first = wisp.recv().await;
        assert_eq!((first.kind, first.id), (CONTINUE, 0), "{first:?}");
        assert_eq!(wire::decode_continue(&first.payload), Ok(BUFFER));
        wisp
    }

    /// Log lines until one contains `needle`; returns it.
    fn log_line_with(&self, needle: &str) -> String {
        let deadline = Instant::now() + TEST_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .stderr
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no log line with {needle}"));
            if line.contains(needle) {
                return line;
            }
        }
    }
}

#[derive(Debug)]
struct Packet {
    kind: u8,
    id: u32,
    payload: Vec<u8>,
}

/// What arrived for one stream.
#[derive(Debug, Default)]
struct StreamState {
    data: Vec<u8>,
    continues: Vec<u32>,
    closed: Option<u8>,
}

struct Wisp {
    ws: Ws,
}

impl Wisp {
    async fn send_packet(&mut self, packet: Vec<u8>) {
        self.ws
            .send(Message::binary(packet))
            .await
            .expect("send packet");
    }

    async fn send(&mut self, kind: u8, id: u32, payload: &[u8]) {
        self.send_packet(wire::encode_packet(kind, id, payload))
            .await;
    }

    async fn connect(&mut self, id: u32, kind: u8, host: &str, port: u16) {
        self.send_packet(wire::encode_connect_of(id, kind, host, port))
            .await;
    }

    async fn close(&mut self, id: u32) {
        self.send_packet(wire::encode_close(id, reason::VOLUNTARY))
            .await;
    }

    /// Grants stream `id` `credit` more packets (client credit).
    async fn grant(&mut self, id: u32, credit: u32) {
        self.send_packet(wire::encode_continue(id, credit)).await;
    }

    async fn info(&mut self, info: Info) {
        self.send_packet(wire::encode_info(&info)).await;
    }

    /// The next packet, or the close frame's code and reason.
    async fn next(&mut self) -> Result<Packet, (u16, String)> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Binary(p))) => {
                    let p = wire::decode_packet(p).expect("a well-formed packet");
                    return Ok(Packet {
                        kind: p.kind,
                        id: p.stream,
                        payload: p.payload.to_vec(),
                    });
                }
                Some(Ok(Message::Close(Some(f)))) => {
                    return Err((u16::from(f.code), f.reason.to_string()))
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    async fn recv(&mut self) -> Packet {
        self.next().await.expect("a packet, not a close")
    }

    /// Reads packets into `streams` until `done` holds.
    async fn collect(
        &mut self,
        streams: &mut HashMap<u32, StreamState>,
        done: impl Fn(&HashMap<u32, StreamState>) -> bool,
    ) {
        while !done(streams) {
            let p = self.recv().await;
            let s = streams.entry(p.id).or_default();
            match p.kind {
                DATA => s.data.extend_from_slice(&p.payload),
                CONTINUE => s
                    .continues
                    .push(wire::decode_continue(&p.payload).expect("CONTINUE")),
                CLOSE => s.closed = Some(wire::decode_close(&p.payload)),
                other => panic!("unexpected packet type {other:#x}"),
            }
        }
    }

    /// Waits for the CLOSE of stream `id` and returns its reason.
    async fn close_reason(&mut self, id: u32) -> u8 {
        let mut streams = HashMap::new();
        self.collect(&mut streams, |s| {
            s.get(&id).is_some_and(|s| s.closed.is_some())
        })
        .await;
        streams[&id].closed.expect("closed")
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i * 7 % 251) as u8 ^ seed)
        .collect::<Vec<u8>>()
}

/// A TCP echo server.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
    let addr = listener.local_addr().expect("echo addr");
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = sock.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

/// A server that records what each connection sent until EOF.
async fn recording_server() -> (SocketAddr, Arc<Mutex<Vec<Vec<u8>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut all = Vec::new();
                let _ = sock.read_to_end(&mut all).await;
                record.lock().expect("lock").push(all);
            });
        }
    });
    (addr, seen)
}

/// A server that accepts and never reads: its stream's writes back up.
async fn stalled_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    addr
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn allow(addr: SocketAddr) -> String {
    format!("127.0.0.1:{}", addr.port())
}

#[tokio::test]
async fn streams_share_one_websocket() {
    bounded(async {
        let echo = echo_server().await;
        let relay = Relay::start(&["--allow", &allow(echo), "--allow-private"]);
        let mut wisp = relay.wisp().await;
        let ids: Vec<u32> = (1..=10).collect();
        for &id in &ids {
            wisp.connect(id, TCP, "127.0.0.1", echo.port()).await;
        }
        // Data may follow CONNECT at once, before the relay has connected.
        let sent: HashMap<u32, Vec<u8>> = ids
            .iter()
            .map(|&id| (id, pattern(100 * 1024 + id as usize, id as u8)))
            .collect();
        for &id in &ids {
            for chunk in sent[&id].chunks(16 * 1024) {
                wisp.send(DATA, id, chunk).await;
            }
        }
        let mut streams = HashMap::new();
        wisp.collect(&mut streams, |s| {
            ids.iter()
                .all(|id| s.get(id).is_some_and(|st| st.data.len() >= sent[id].len()))
        })
        .await;
        for &id in &ids {
            assert_eq!(streams[&id].data, sent[&id], "stream {id}");
            assert_eq!(streams[&id].closed, None);
        }
        for &id in &ids {
            wisp.close(id).await;
        }
        // Streams end in any order.
        let lines: Vec<String> = ids
            .iter()
            .map(|_| relay.log_line_with(" stream="))
            .collect();
        for &id in &ids {
            let line = lines
                .iter()
                .find(|l| l.contains(&format!(" stream={id} ")))
                .unwrap_or_else(|| panic!("no line for stream {id}: {lines:?}"));
            assert!(
                line.contains(&format!(" target={} ", allow(echo))),
                "{line}"
            );
            assert!(
                line.contains(" outcome=ok reason=\"client closed\""),
                "{line}"
            );
            let n = sent[&id].len();
            assert!(line.contains(&format!(" c2s={n} s2c={n} ")), "{line}");
        }
        wisp.ws.close(None).await.expect("close");
        while wisp.ws.next().await.is_some() {}
        let line = relay.log_line_with(" target=wisp ");
        assert!(
            line.contains("outcome=ok reason=\"client closed; 10 streams\""),
            "{line}"
        );
    })
    .await;
}

#[tokio::test]
async fn refused_connects_say_why() {
    bounded(async {
        let echo = echo_server().await;
        let closed_port = free_port();
        let relay = Relay::start(&[
            "--allow",
            &allow(echo),
            "--allow",
            &format!("127.0.0.1:{closed_port}"),
            "--allow",
            "localhost:*",
            "--allow-private",
            "--max-streams",
            "2",
        ]);
        let mut wisp = relay.wisp().await;
        // Not in the allowlist: blocked.
        wisp.connect(1, TCP, "evil.example", 25).await;
        assert_eq!(wisp.close_reason(1).await, reason::BLOCKED);
        let line = relay.log_line_with(" stream=1 ");
        assert!(
            line.contains("outcome=refused reason=\"target not allowed: evil.example:25\""),
            "{line}"
        );
        // Nothing listens: the destination refused the connection.
        wisp.connect(2, TCP, "127.0.0.1", closed_port).await;
        assert_eq!(wisp.close_reason(2).await, reason::CONNECTION_REFUSED);
        assert!(relay.log_line_with(" stream=2 ").contains("connect failed"));
        // Not a host name: invalid information.
        wisp.connect(3, TCP, "a b", 80).await;
        assert_eq!(wisp.close_reason(3).await, reason::INVALID_INFO);
        // Port 0.
        wisp.connect(4, TCP, "127.0.0.1", 0).await;
        assert_eq!(wisp.close_reason(4).await, reason::INVALID_INFO);

        // Two streams are the limit here; the third is throttled.
        wisp.connect(5, TCP, "127.0.0.1", echo.port()).await;
        wisp.connect(6, TCP, "127.0.0.1", echo.port()).await;
        wisp.connect(7, TCP, "127.0.0.1", echo.port()).await;
        assert_eq!(wisp.close_reason(7).await, reason::THROTTLED);
        assert!(relay
            .log_line_with(" stream=7 ")
            .contains("reason=\"too many streams (limit 2)\""));
        // The others still work, and a slot frees up when one closes.
        wisp.send(DATA, 5, b"five").await;
        wisp.send(DATA, 6, b"six").await;
        let mut streams = HashMap::new();
        wisp.collect(&mut streams, |s| {
            s.get(&5).is_some_and(|s| s.data.len() == 4)
                && s.get(&6).is_some_and(|s| s.data.len() == 3)
        })
        .await;
        wisp.close(5).await;
        relay.log_line_with(" stream=5 ");
        wisp.connect(8, TCP, "127.0.0.1", echo.port()).await;
        wisp.send(DATA, 8, b"eight").await;
        let mut streams = HashMap::new();
        wisp.collect(&mut streams, |s| {
            s.get(&8).is_some_and(|s| s.data == b"eight")
        })
        .await;

        // Without --allow-private, loopback is blocked after resolution.
        let strict = Relay::start(&["--allow", &allow(echo), "--allow", "localhost:*"]);
        let mut wisp = strict.wisp().await;
        wisp.connect(1, TCP, "127.0.0.1", echo.port()).await;
        assert_eq!(wisp.close_reason(1).await, reason::BLOCKED);
        wisp.connect(2, TCP, "localhost", echo.port()).await;
        assert_eq!(wisp.close_reason(2).await, reason::BLOCKED);
        assert!(strict
            .log_line_with(" stream=1 ")
            .contains("reason=\"private address refused: 127.0.0.1:"));
    })
    .await;
}

#[tokio::test]
async fn udp_streams_are_refused() {
    bounded(async {
        let relay = Relay::start(&["--allow", "*:*", "--allow-private"]);
        let mut wisp = relay.wisp().await;
        wisp.connect(9, UDP, "127.0.0.1", 53).await;
        assert_eq!(wisp.close_reason(9).await, reason::INVALID_INFO);
        let line = relay.log_line_with(" stream=9 ");
        assert!(
            line.contains("outcome=refused reason=\"UDP streams are not supported\""),
            "{line}"
        );
        wisp.connect(10, 0x07, "127.0.0.1", 53).await;
        assert_eq!(wisp.close_reason(10).await, reason::INVALID_INFO);
    })
    .await;
}

#[tokio::test]
async fn continue_tops_up_the_credit() {
    bounded(async {
        let echo = echo_server().await;
        let relay = Relay::start(&["--allow", &allow(echo), "--allow-private"]);
        let mut wisp = relay.wisp().await;
        wisp.connect(1, TCP, "127.0.0.1", echo.port()).await;
        // Half the credit, then the relay says how much is left: the whole
        // buffer, less what still waits for the target.
        for i in 0..BUFFER / 2 {
            wisp.send(DATA, 1, &[i as u8; 100]).await;
        }
        let mut streams = HashMap::new();
        wisp.collect(&mut streams, |s| {
            s.get(&1)
                .is_some_and(|s| !s.continues.is_empty() && s.data.len() == 3200)
        })
        .await;
        let credit = streams[&1].continues[0];
        assert!(credit > BUFFER / 2 && credit <= BUFFER, "credit {credit}");
        // A stream that has used less than half gets no CONTINUE yet.
        wisp.connect(2, TCP, "127.0.0.1", echo.port()).await;
        wisp.send(DATA, 2, b"ping").await;
        let mut streams = HashMap::new();
        wisp.collect(&mut streams, |s| {
            s.get(&2).is_some_and(|s| s.data == b"ping")
        })
        .await;
        assert!(streams[&2].continues.is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_stalled_stream_does_not_stall_the_others() {
    bounded(async {
        let echo = echo_server().await;
        let stalled = stalled_server().await;
        let relay = Relay::start(&[
            "--allow",
            &allow(echo),
            "--allow",
            &allow(stalled),
            "--allow-private",
        ]);
        let mut wisp = relay.wisp().await;
        wisp.connect(1, TCP, "127.0.0.1", stalled.port()).await;
        wisp.connect(2, TCP, "127.0.0.1", echo.port()).await;
        // 15 MiB, within the credit, to a target that reads nothing: more
        // than the kernel's buffers hold, so the relay's writer blocks.
        let block = vec![0x5a; 512 * 1024];
        for _ in 0..30 {
            wisp.send(DATA, 1, &block).await;
        }
        // Meanwhile the other stream answers at once, many times over.
        let started = Instant::now();
        for round in 0..20u8 {
            wisp.send(DATA, 2, &[round; 10]).await;
            let mut streams = HashMap::new();
            wisp.collect(&mut streams, |s| {
                s.get(&2).is_some_and(|s| s.data.len() == 10)
            })
            .await;
            assert_eq!(streams[&2].data, [round; 10]);
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        // Sending past the credit (and the room the queue keeps for packets in
        // flight) costs that stream, not the WebSocket.
        for _ in 0..4 * BUFFER {
            wisp.send(DATA, 1, b"x").await;
        }
        assert_eq!(wisp.close_reason(1).await, reason::THROTTLED);
        let line = relay.log_line_with(" stream=1 ");
        assert!(line.contains("past its buffer credit"), "{line}");
        wisp.send(DATA, 2, b"still here").await;
        let mut streams = HashMap::new();
        wisp.collect(&mut streams, |s| {
            s.get(&2).is_some_and(|s| s.data == b"still here")
        })
        .await;
    })
    .await;
}

#[tokio::test]
async fn server_close_sends_data_then_close() {
    bounded(async {
        let payload = pattern(300 * 1024 + 17, 3);
        let server = sending_server(payload.clone()).await;
        let relay = Relay::start(&["--allow", &allow(server), "--allow-private"]);
        let mut wisp = relay.wisp().await;
        wisp.connect(5, TCP, "127.0.0.1", server.port()).await;
        let mut streams = HashMap::new();
        wisp.collect(&mut streams, |s| {
            s.get(&5).is_some_and(|s| s.closed.is_some())
        })
        .await;
        assert_eq!(streams[&5].data, payload);
        assert_eq!(streams[&5].closed, Some(reason::VOLUNTARY));
        let line = relay.log_line_with(" stream=5 ");
        assert!(
            line.contains("outcome=ok reason=\"server closed\""),
            "{line}"
        );
        assert!(line.contains(&format!(" s2c={} ", payload.len())), "{line}");
    })
    .await;
}

#[tokio::test]
async fn client_close_delivers_what_was_sent() {
    bounded(async {
        let (server, seen) = recording_server().await;
        let relay = Relay::start(&["--allow", &allow(server), "--allow-private"]);
        let mut wisp = relay.wisp().await;
        wisp.connect(1, TCP, "127.0.0.1", server.port()).await;
        let data = pattern(200 * 1024, 9);
        for chunk in data.chunks(16 * 1024) {
            wisp.send(DATA, 1, chunk).await;
        }
        wisp.close(1).await;
        relay.log_line_with(" stream=1 ");
        let deadline = Instant::now() + Duration::from_secs(5);
        while seen.lock().expect("lock").is_empty() {
            assert!(Instant::now() < deadline, "the target saw no EOF");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(seen.lock().expect("lock")[0], data);
    })
    .await;
}

#[tokio::test]
async fn idle_stream_is_closed() {
    bounded(async {
        let echo = echo_server().await;
        let relay = Relay::start(&[
            "--allow",
            &allow(echo),
            "--allow-private",
            "--idle-timeout",
            "1",
        ]);
        let mut wisp = relay.wisp().await;
        wisp.connect(1, TCP, "127.0.0.1", echo.port()).await;
        wisp.send(DATA, 1, b"hi").await;
        assert_eq!(wisp.close_reason(1).await, reason::TRANSFER_TIMEOUT);
        // With no streams left, the WebSocket goes idle too.
        assert_eq!(
            wisp.next().await.expect_err("a close frame"),
            (1001, "idle timeout (1s)".to_string())
        );
    })
    .await;
}

#[tokio::test]
async fn versions_one_and_two() {
    bounded(async {
        let echo = echo_server().await;
        let relay = Relay::start(&["--allow", &allow(echo), "--allow-private"]);
        // v1: CONTINUE comes first, no subprotocol.
        let (ws, chosen) = relay.websocket("/wisp/", None).await;
        assert_eq!(chosen, None);
        let mut v1 = Wisp { ws };
        let p = v1.recv().await;
        assert_eq!((p.kind, p.id), (CONTINUE, 0));
        assert_eq!(wire::decode_continue(&p.payload), Ok(BUFFER));

        // v2: INFO (version 2.0, client credit offered), then CONTINUE; the
        // client's INFO is accepted whenever it comes.
        let (ws, chosen) = relay.websocket("/wisp/", Some("wisp-v2")).await;
        assert_eq!(chosen.as_deref(), Some("wisp-v2"));
        let mut v2 = Wisp { ws };
        let info = v2.recv().await;
        assert_server_info(&info, false);
        let p = v2.recv().await;
        assert_eq!((p.kind, p.id), (CONTINUE, 0));
        v2.info(client_info(vec![])).await;
        v2.connect(1, TCP, "127.0.0.1", echo.port()).await;
        v2.send(DATA, 1, b"v2").await;
        let mut streams = HashMap::new();
        v2.collect(&mut streams, |s| s.get(&1).is_some_and(|s| s.data == b"v2"))
            .await;

        // Any other subprotocol is v2 too, echoed (epoxy-tls offers a random one).
        let (ws, chosen) = relay.websocket("/wisp/", Some("5fdc355a-0c3e-4c1e")).await;
        assert_eq!(chosen.as_deref(), Some("5fdc355a-0c3e-4c1e"));
        let mut other = Wisp { ws };
        assert_server_info(&other.recv().await, false);
        // A client naming v1 gets v1: CONTINUE first.
        let (ws, chosen) = relay.websocket("/wisp/", Some("wisp-v1")).await;
        assert_eq!(chosen.as_deref(), Some("wisp-v1"));
        let mut named_v1 = Wisp { ws };
        let p = named_v1.recv().await;
        assert_eq!((p.kind, p.id), (CONTINUE, 0));

        // The raw mode still works beside it.
        let (mut raw, _) = relay
            .websocket(&format!("/127.0.0.1:{}", echo.port()), None)
            .await;
        raw.send(Message::binary(b"raw".to_vec()))
            .await
            .expect("send");
        match raw.next().await {
            Some(Ok(Message::Binary(d))) => assert_eq!(&d[..], b"raw"),
            other => panic!("{other:?}"),
        }
    })
    .await;
}

/// Asserts that `p` is the relay's INFO: version 2.0, client credit offered,
/// and the password extension saying "required" when `password`.
fn assert_server_info(p: &Packet, password: bool) {
    assert_eq!((p.kind, p.id), (INFO, 0), "{p:?}");
    let mut extensions = Vec::new();
    if password {
        extensions.push(wire::server_password_extension(true));
    }
    extensions.push(wire::client_credit_offer());
    let want = Info {
        major: 2,
        minor: 0,
        extensions,
    };
    assert_eq!(wire::decode_info(&p.payload), Ok(want));
}

/// A client INFO, version 2.0, with `extensions`.
fn client_info(extensions: Vec<Extension>) -> Info {
    Info {
        major: 2,
        minor: 0,
        extensions,
    }
}

fn password(user: &str, pass: &str) -> Extension {
    wire::password_extension(user, pass).expect("valid credentials")
}

fn password_info(user: &str, pass: &str) -> Info {
    client_info(vec![password(user, pass)])
}

#[tokio::test]
async fn password_authentication() {
    bounded(async {
        let echo = echo_server().await;
        let mut file = tempfile();
        writeln!(file.1, "# test users\nalice:open sesame").expect("write");
        let relay = Relay::start(&[
            "--allow",
            &allow(echo),
            "--allow-private",
            "--wisp-auth-file",
            &file.0,
        ]);

        // Right credentials: streams work.
        let (ws, _) = relay.websocket("/wisp/", Some("wisp-v2")).await;
        let mut ok = Wisp { ws };
        let info = ok.recv().await;
        assert_server_info(&info, true);
        ok.info(password_info("alice", "open sesame")).await;
        let p = ok.recv().await;
        assert_eq!((p.kind, p.id), (CONTINUE, 0));
        ok.connect(1, TCP, "127.0.0.1", echo.port()).await;
        ok.send(DATA, 1, b"authenticated").await;
        let mut streams = HashMap::new();
        ok.collect(&mut streams, |s| {
            s.get(&1).is_some_and(|s| s.data == b"authenticated")
        })
        .await;

        // Wrong password: CLOSE on stream 0 (bad password), then a policy close.
        let (ws, _) = relay.websocket("/wisp/", Some("wisp-v2")).await;
        let mut bad = Wisp { ws };
        assert_eq!(bad.recv().await.kind, INFO);
        bad.info(password_info("alice", "guess")).await;
        let p = bad.recv().await;
        assert_eq!(
            (p.kind, p.id, p.payload.as_slice()),
            (CLOSE, 0, &[reason::AUTH_BAD_PASSWORD][..])
        );
        let (code, reason) = bad.next().await.expect_err("a close frame");
        assert_eq!(code, 1008);
        assert!(reason.contains("authentication failed"), "{reason}");
        assert!(relay
            .log_line_with("authentication failed")
            .contains("outcome=refused"));

        // A v1 client (no INFO, straight to CONNECT) is missing credentials.
        let (ws, _) = relay.websocket("/wisp/", None).await;
        let mut v1 = Wisp { ws };
        assert_eq!(v1.recv().await.kind, INFO);
        v1.connect(1, TCP, "127.0.0.1", echo.port()).await;
        let p = v1.recv().await;
        assert_eq!(
            (p.kind, p.id, p.payload.as_slice()),
            (CLOSE, 0, &[reason::AUTH_MISSING][..])
        );

        // The raw mode cannot authenticate, so it is refused.
        let (mut raw, _) = relay
            .websocket(&format!("/127.0.0.1:{}", echo.port()), None)
            .await;
        match raw.next().await {
            Some(Ok(Message::Close(Some(f)))) => {
                assert_eq!(u16::from(f.code), 1008);
                assert!(
                    f.reason.contains("requires Wisp authentication"),
                    "{}",
                    f.reason
                );
            }
            other => panic!("{other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn protocol_violations_close_the_websocket() {
    bounded(async {
        let echo = echo_server().await;
        let relay = Relay::start(&["--allow", &allow(echo), "--allow-private"]);
        let mut wisp = relay.wisp().await;
        // A packet cut short inside its header.
        let short = wire::encode_packet(DATA, 1, &[])[..2].to_vec();
        wisp.send_packet(short).await;
        let (code, reason) = wisp.next().await.expect_err("a close frame");
        assert_eq!(code, 1002);
        assert!(reason.contains("malformed"), "{reason}");

        let mut wisp = relay.wisp().await;
        wisp.connect(1, TCP, "127.0.0.1", echo.port()).await;
        wisp.connect(1, TCP, "127.0.0.1", echo.port()).await;
        let (code, reason) = wisp.next().await.expect_err("a close frame");
        assert_eq!(code, 1002);
        assert!(reason.contains("which is open"), "{reason}");
    })
    .await;
}

#[test]
fn help_mentions_wisp() {
    let out = Command::new(env!("CARGO_BIN_EXE_wasm-tls-relay"))
        .arg("--help")
        .output()
        .expect("run --help");
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--wisp-path",
        "--no-wisp",
        "--max-streams",
        "--wisp-auth-file",
        "16 MiB",
        "client credit extension (0xE0)",
    ] {
        assert!(text.contains(flag), "usage lacks {flag}");
    }
}

/// A file in the temporary directory, removed on drop.
struct TempFile(String, std::fs::File);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn tempfile() -> TempFile {
    let path = std::env::temp_dir().join(format!(
        "wasm-tls-relay-auth-{}-{}",
        std::process::id(),
        free_port()
    ));
    let file = std::fs::File::create(&path).expect("create temp file");
    TempFile(path.to_string_lossy().into_owned(), file)
}

#[tokio::test]
async fn big_packets_within_credit_are_pushed_back_not_dropped() {
    bounded(async {
        let stalled = stalled_server().await;
        let relay = Relay::start(&["--allow", &allow(stalled), "--allow-private"]);
        let mut wisp = relay.wisp().await;
        for id in 1..=4 {
            wisp.connect(id, TCP, "127.0.0.1", stalled.port()).await;
        }
        // Packets as big as --max-message allows, 32 per stream: within the
        // credit, far past the WebSocket's byte budget.
        let block = vec![0xa5; (1 << 20) - wire::HEADER];
        let sent = tokio::time::timeout(Duration::from_secs(4), async {
            for _ in 0..32 {
                for id in 1..=4 {
                    wisp.send(DATA, id, &block).await;
                }
            }
        })
        .await;
        assert!(sent.is_err(), "the relay buffered 128 MiB");
        // No stream was closed for it.
        let next = tokio::time::timeout(Duration::from_millis(500), wisp.next()).await;
        assert!(next.is_err(), "{next:?}");
        if let Some(kib) = relay.peak_rss_kib() {
            assert!(kib < 48 * 1024, "peak RSS {kib} KiB");
        }
    })
    .await;
}

#[tokio::test]
async fn refusals_push_back_on_a_client_that_does_not_read() {
    // Filling the relay's socket buffers with 8-byte CLOSEs takes a while.
    let body = async {
        let relay = Relay::start(&[]);
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("rcvbuf");
        socket.set_send_buffer_size(4096).expect("sndbuf");
        let tcp = socket.connect(relay.addr).await.expect("connect relay");
        let request = format!("ws://{}/wisp/", relay.addr)
            .into_client_request()
            .expect("request");
        let (mut ws, _) = tokio_tungstenite::client_async(request, tcp)
            .await
            .expect("websocket handshake");
        let sent = Arc::new(AtomicUsize::new(0));
        let count = sent.clone();
        // CONNECTs to a target that is not allowed, never reading the CLOSEs.
        let sender = tokio::spawn(async move {
            for id in 1..=20_000_000u32 {
                let p = wire::encode_connect(id, "not-allowed.test", 1);
                if ws.feed(Message::binary(p)).await.is_err() {
                    return;
                }
                count.fetch_add(1, Ordering::Relaxed);
            }
        });
        // The relay stops reading: the count stands still.
        let mut last = 0;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = sent.load(Ordering::Relaxed);
            assert!(!sender.is_finished(), "every CONNECT was taken");
            if now == last {
                break;
            }
            last = now;
        }
        sender.abort();
    };
    tokio::time::timeout(Duration::from_secs(90), body)
        .await
        .expect("test timed out");
}

#[tokio::test]
async fn refusals_are_logged_sparingly() {
    bounded(async {
        let relay = Relay::start(&[]);
        let mut wisp = relay.wisp().await;
        for id in 1..=40 {
            wisp.connect(id, TCP, "not-allowed.test", 443).await;
            assert_eq!(wisp.close_reason(id).await, reason::BLOCKED);
        }
        wisp.ws.close(None).await.expect("close");
        let mut logged = 0;
        loop {
            let line = relay.log_line_with("outcome=refused");
            if line.contains("more refused streams not logged") {
                assert!(line.contains("reason=\"24 more refused"), "{line}");
                break;
            }
            logged += 1;
        }
        assert_eq!(logged, 16);
    })
    .await;
}

#[tokio::test]
async fn max_streams_counts_streams_still_closing() {
    bounded(async {
        let stalled = stalled_server().await;
        let echo = echo_server().await;
        let relay = Relay::start(&[
            "--allow",
            &allow(stalled),
            "--allow",
            &allow(echo),
            "--allow-private",
            "--max-streams",
            "1",
        ]);
        let mut wisp = relay.wisp().await;
        wisp.connect(1, TCP, "127.0.0.1", stalled.port()).await;
        // More than the kernel holds: the stream's task is stuck writing.
        let block = vec![0x5a; 512 * 1024];
        for _ in 0..32 {
            wisp.send(DATA, 1, &block).await;
        }
        wisp.close(1).await;
        // Closed, but its task still runs: it counts.
        wisp.connect(2, TCP, "127.0.0.1", echo.port()).await;
        assert_eq!(wisp.close_reason(2).await, reason::THROTTLED);
        let line = relay.log_line_with(" stream=2 ");
        assert!(line.contains("too many streams"), "{line}");
        // Once it has given up on its target, the slot is free again.
        let line = relay.log_line_with(" stream=1 ");
        assert!(line.contains("client closed"), "{line}");
        wisp.connect(3, TCP, "127.0.0.1", echo.port()).await;
        wisp.send(DATA, 3, b"again").await;
        let mut streams = HashMap::new();
        wisp.collect(&mut streams, |s| {
            s.get(&3).is_some_and(|s| s.data == b"again")
        })
        .await;
    })
    .await;
}

// ---- client credit (EXT_CLIENT_CREDIT): the client paces each stream ----

/// A client INFO accepting client credit with `body` (normally the u32
/// initial credit, as [`wire::client_credit_extension`] writes it), after any
/// `other` extensions.
fn credit_info(body: &[u8], mut other: Vec<Extension>) -> Info {
    other.push(Extension {
        id: EXT_CLIENT_CREDIT,
        body: body.to_vec(),
    });
    client_info(other)
}

/// A client INFO accepting client credit of `initial` packets per stream.
fn credit(initial: u32) -> Info {
    let ext = wire::client_credit_extension(initial).expect("non-zero credit");
    client_info(vec![ext])
}

/// A server that sends `payload` to each client in 64 KiB writes, then
/// closes; the counter says how much the kernel has taken so far.
async fn counting_server(payload: Vec<u8>) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let written = Arc::new(AtomicUsize::new(0));
    let count = written.clone();
    let payload = Arc::new(payload);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (payload, count) = (payload.clone(), count.clone());
            tokio::spawn(async move {
                for chunk in payload.chunks(64 * 1024) {
                    if sock.write_all(chunk).await.is_err() {
                        return;
                    }
                    count.fetch_add(chunk.len(), Ordering::Relaxed);
                }
                let _ = sock.shutdown().await;
                let mut buf = [0u8; 1024];
                while matches!(sock.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    (addr, written)
}

impl Relay {
    /// A Wisp v2 session past the relay's INFO and CONTINUE, having answered
    /// with `info` as its own INFO.
    async fn wisp_v2(&self, info: Info) -> Wisp {
        let (ws, chosen) = self.websocket("/wisp/", Some("wisp-v2")).await;
        assert_eq!(chosen.as_deref(), Some("wisp-v2"));
        let mut wisp = Wisp { ws };
        let p = wisp.recv().await;
        assert_server_info(&p, false);
        let p = wisp.recv().await;
        assert_eq!((p.kind, p.id), (CONTINUE, 0));
        wisp.info(info).await;
        wisp
    }
}

/// The next packet within `wait`, if any.
async fn packet_within(wisp: &mut Wisp, wait: Duration) -> Option<Packet> {
    tokio::time::timeout(wait, wisp.recv()).await.ok()
}

#[tokio::test]
async fn client_credit_paces_one_stream_and_not_the_others() {
    bounded(async {
        let slow_data = pattern(32 << 20, 1);
        let (slow, written) = counting_server(slow_data.clone()).await;
        let fast_data = pattern(4 << 20, 2);
        let fast = sending_server(fast_data.clone()).await;
        let relay = Relay::start(&[
            "--allow",
            &allow(slow),
            "--allow",
            &allow(fast),
            "--allow-private",
        ]);
        const INITIAL: u32 = 4;
        let mut wisp = relay.wisp_v2(credit(INITIAL)).await;
        wisp.connect(1, TCP, "127.0.0.1", slow.port()).await;
        wisp.connect(2, TCP, "127.0.0.1", fast.port()).await;

        // Stream 2 is granted one more packet for each that arrives and runs
        // to its end, while stream 1, never granted more, gets its initial
        // credit's worth and no more.
        let (mut slow_packets, mut slow_got) = (0u32, Vec::new());
        let mut fast_got = Vec::new();
        loop {
            let p = wisp.recv().await;
            match (p.kind, p.id) {
                (DATA, 1) => {
                    slow_packets += 1;
                    assert!(slow_packets <= INITIAL, "stream 1 sent past its credit");
                    assert!(p.payload.len() <= 64 * 1024, "{} bytes", p.payload.len());
                    slow_got.extend_from_slice(&p.payload);
                }
                (DATA, 2) => {
                    fast_got.extend_from_slice(&p.payload);
                    wisp.grant(2, 1).await;
                }
                (CLOSE, 2) => {
                    assert_eq!(p.payload, [reason::VOLUNTARY]);
                    break;
                }
                other => panic!("unexpected packet {other:?}"),
            }
        }
        assert_eq!(fast_got, fast_data, "stream 2's bytes, in order");
        while slow_packets < INITIAL {
            let p = wisp.recv().await;
            assert_eq!((p.kind, p.id), (DATA, 1));
            slow_packets += 1;
            slow_got.extend_from_slice(&p.payload);
        }
        // Nothing more for stream 1 for a while, and its target is left
        // unread: what it has written stops short of the whole.
        let extra = packet_within(&mut wisp, Duration::from_millis(800)).await;
        assert!(extra.is_none(), "stream 1 sent more: {extra:?}");
        let mut last = usize::MAX;
        let mut settled = false;
        for _ in 0..20 {
            let now = written.load(Ordering::Relaxed);
            if now == last {
                settled = true;
                break;
            }
            last = now;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        assert!(settled, "the target kept sending");
        assert!(last < slow_data.len(), "the target sent everything: {last}");

        // Granting resumes it: every byte arrives, in order, then the CLOSE.
        wisp.grant(1, 3).await;
        let mut granted = INITIAL + 3;
        wisp.grant(1, 1_000_000).await;
        granted += 1_000_000;
        loop {
            let p = wisp.recv().await;
            match (p.kind, p.id) {
                (DATA, 1) => {
                    slow_packets += 1;
                    assert!(slow_packets <= granted);
                    slow_got.extend_from_slice(&p.payload);
                }
                (CLOSE, 1) => {
                    assert_eq!(p.payload, [reason::VOLUNTARY]);
                    break;
                }
                other => panic!("unexpected packet {other:?}"),
            }
        }
        assert!(slow_got == slow_data, "stream 1's bytes differ");
        let line = relay.log_line_with(" stream=1 ");
        assert!(
            line.contains("outcome=ok reason=\"server closed\""),
            "{line}"
        );
    })
    .await;
}

#[tokio::test]
async fn credit_counts_packets_exactly() {
    bounded(async {
        let data = pattern(8 << 20, 3);
        let server = sending_server(data.clone()).await;
        let relay = Relay::start(&["--allow", &allow(server), "--allow-private"]);
        let mut wisp = relay.wisp_v2(credit(1)).await;
        wisp.connect(7, TCP, "127.0.0.1", server.port()).await;
        let mut got = Vec::new();
        // One packet per grant: each grant brings exactly one more.
        for round in 0..5 {
            let p = wisp.recv().await;
            assert_eq!((p.kind, p.id), (DATA, 7), "round {round}");
            got.extend_from_slice(&p.payload);
            let extra = packet_within(&mut wisp, Duration::from_millis(200)).await;
            assert!(extra.is_none(), "round {round}: {extra:?}");
            wisp.grant(7, 1).await;
        }
        // A CONTINUE with a short payload is malformed.
        wisp.send(CONTINUE, 7, &[1, 0]).await;
        loop {
            match wisp.next().await {
                Ok(p) => assert_eq!((p.kind, p.id), (DATA, 7)),
                Err((code, reason)) => {
                    assert_eq!(code, 1002);
                    assert!(reason.contains("malformed CONTINUE"), "{reason}");
                    break;
                }
            }
        }
        assert_eq!(&got[..], &data[..got.len()]);
    })
    .await;
}

#[tokio::test]
async fn without_client_credit_nothing_changes() {
    bounded(async {
        let data = pattern(2 << 20, 4);
        let server = sending_server(data.clone()).await;
        let relay = Relay::start(&["--allow", &allow(server), "--allow-private"]);
        // A v1 client, one that sends CONTINUEs all the same (ignored), and a
        // v2 client whose INFO does not list the extension: all get every
        // byte without granting anything.
        let v1 = relay.wisp().await;
        let v2 = relay.wisp_v2(client_info(vec![])).await;
        for (mut wisp, stray_continue) in [(v1, true), (v2, false)] {
            wisp.connect(1, TCP, "127.0.0.1", server.port()).await;
            if stray_continue {
                wisp.send(CONTINUE, 1, &[0, 0]).await;
                wisp.grant(1, 0).await;
            }
            let mut streams = HashMap::new();
            wisp.collect(&mut streams, |s| {
                s.get(&1).is_some_and(|s| s.closed.is_some())
            })
            .await;
            assert!(streams[&1].data == data);
            assert_eq!(streams[&1].closed, Some(reason::VOLUNTARY));
        }
    })
    .await;
}

#[tokio::test]
async fn a_bad_credit_extension_closes_the_websocket() {
    bounded(async {
        let echo = echo_server().await;
        let mut file = tempfile();
        writeln!(file.1, "alice:pw").expect("write");
        let open = Relay::start(&["--allow", &allow(echo), "--allow-private"]);
        let auth = Relay::start(&[
            "--allow",
            &allow(echo),
            "--allow-private",
            "--wisp-auth-file",
            &file.0,
        ]);
        let password = password("alice", "pw");
        for (what, body) in [
            ("short", &[8u8, 0][..]),
            ("empty", &[][..]),
            ("zero", &[0u8, 0, 0, 0][..]),
        ] {
            // Without authentication the reader finds it; with it, the
            // handshake does.
            let mut wisp = open.wisp_v2(credit_info(body, vec![])).await;
            wisp.connect(1, TCP, "127.0.0.1", echo.port()).await;
            let p = wisp.recv().await;
            assert_eq!(
                (p.kind, p.id, p.payload.as_slice()),
                (CLOSE, 0, &[reason::INCOMPATIBLE_EXTENSIONS][..]),
                "{what}"
            );
            let (code, reason) = wisp.next().await.expect_err("a close frame");
            assert_eq!(code, 1002, "{what}");
            assert!(reason.contains("client credit"), "{what}: {reason}");

            let (ws, _) = auth.websocket("/wisp/", Some("wisp-v2")).await;
            let mut wisp = Wisp { ws };
            assert_eq!(wisp.recv().await.kind, INFO);
            wisp.info(credit_info(body, vec![password.clone()])).await;
            let p = wisp.recv().await;
            assert_eq!(
                (p.kind, p.id, p.payload.as_slice()),
                (CLOSE, 0, &[reason::INCOMPATIBLE_EXTENSIONS][..]),
                "{what}, authenticated"
            );
            let (code, reason) = wisp.next().await.expect_err("a close frame");
            assert_eq!(code, 1002, "{what}");
            assert!(reason.contains("client credit"), "{what}: {reason}");
        }
        // With good credentials and credit, streams are paced.
        let (ws, _) = auth.websocket("/wisp/", Some("wisp-v2")).await;
        let mut wisp = Wisp { ws };
        assert_eq!(wisp.recv().await.kind, INFO);
        let ext = wire::client_credit_extension(2).expect("non-zero credit");
        wisp.info(client_info(vec![password, ext])).await;
        assert_eq!(wisp.recv().await.kind, CONTINUE);
        wisp.connect(1, TCP, "127.0.0.1", echo.port()).await;
        for i in 0..3u8 {
            wisp.send(DATA, 1, &[i]).await;
            // Each echo in its own packet: wait for it before the next.
            if i < 2 {
                let p = wisp.recv().await;
                assert_eq!((p.kind, p.id, p.payload.as_slice()), (DATA, 1, &[i][..]));
            }
        }
        let third = packet_within(&mut wisp, Duration::from_millis(500)).await;
        assert!(
            third.is_none(),
            "a third packet on a credit of 2: {third:?}"
        );
        wisp.grant(1, 1).await;
        let p = wisp.recv().await;
        assert_eq!((p.kind, p.id, p.payload.as_slice()), (DATA, 1, &[2u8][..]));
    })
    .await;
}
