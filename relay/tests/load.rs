//! The relay under load, on 127.0.0.1: a thousand concurrent tunnels echoing through a
//! local TCP echo server, a 64 MiB transfer through one tunnel with every byte checked,
//! abrupt closes on either side, and clients the relay must refuse (text frames,
//! oversized frames, targets outside the allowlist). Afterwards nothing has leaked: the
//! relay's open file descriptors return to their baseline and its resident memory stays
//! bounded; it never crashed; and every tunnel, refusal included, has its log line
//! with a reason.
//!
//! Bounded: everything runs under one 60-second limit, and the relay process is killed
//! when the test ends however it ends.

mod common;

use std::collections::HashMap;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use common::{close_frame, listening_addr, read_bytes, spawn_relay, Client};

/// The whole test's bound.
const OVERALL: Duration = Duration::from_secs(60);
/// Tunnels held open at once.
const TUNNELS: usize = 1000;
/// Bytes each of them echoes.
const PER_TUNNEL: usize = 1024;
/// The bulk transfer through one tunnel, and its message size.
const BULK: usize = 64 << 20;
const BULK_MESSAGE: usize = 64 << 10;
/// The relay's message limit (its default, given explicitly).
const MAX_MESSAGE: usize = 1 << 20;
/// File descriptors the test needs: per tunnel, the client's socket and the echo
/// server's (the relay, a child, inherits the limit and needs two per tunnel too).
const FDS_PER_TUNNEL: u64 = 2;
const FD_HEADROOM: u64 = 512;
/// How long the relay may take to release everything after the last close (its
/// lingering close is at most 2 s, bounded by 5 s).
const SETTLE: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------
// The relay process and what it says
// ---------------------------------------------------------------------------------------

struct Relay {
    child: Child,
    addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Relay {
    fn start(args: &[String]) -> Relay {
        let mut child = spawn_relay(args);
        let stderr = child.stderr.take().expect("stderr pipe");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = lines.clone();
        std::thread::spawn(move || {
            let mut first = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(tx) = first.take() {
                    let _ = tx.send(line);
                    continue;
                }
                sink.lock().expect("log lock").push(line);
            }
        });
        let first = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the relay printed its listening line");
        let addr = listening_addr(&first);
        Relay { child, addr, lines }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Open file descriptors, from /proc/PID/fd.
    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Resident memory in KiB, from /proc/PID/status.
    fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("log lock").clone()
    }

    /// Waits until the relay has logged `n` tunnel lines in all.
    async fn wait_for_lines(&self, n: usize, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        loop {
            let lines = self.lines();
            if lines.len() >= n || Instant::now() >= deadline {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the relay's descriptors are back to `baseline`; returns the count.
    async fn settle_fds(&self, baseline: usize) -> usize {
        let deadline = Instant::now() + SETTLE;
        loop {
            let now = self.fds();
            if now <= baseline || Instant::now() >= deadline {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn connect(&self, path: &str) -> Client {
        let request = format!("ws://{}{path}", self.addr)
            .into_client_request()
            .expect("request");
        let tcp = TcpStream::connect(self.addr)
            .await
            .expect("connect to the relay");
        let (ws, _) = tokio_tungstenite::client_async(request, tcp)
            .await
            .expect("WebSocket handshake");
        ws
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A log line's fields: `outcome`, `reason` (unquoted), `target`, `c2s`, `s2c`.
fn fields(line: &str) -> HashMap<&str, String> {
    let mut out = HashMap::new();
    for key in ["target", "outcome", "c2s", "s2c"] {
        let needle = format!(" {key}=");
        if let Some(rest) = line.split_once(&needle).map(|(_, r)| r) {
            out.insert(key, rest.split(' ').next().unwrap_or("").to_owned());
        }
    }
    if let Some(rest) = line.split_once(" reason=\"").map(|(_, r)| r) {
        if let Some(end) = rest.find("\" c2s=") {
            out.insert("reason", rest[..end].to_owned());
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Local TCP servers
// ---------------------------------------------------------------------------------------

/// Echoes every connection until its client closes.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the echo server");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = sock.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// Reads a little from each connection, then resets it (RST, not FIN).
async fn resetting_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the reset server");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0; 64];
                let _ = sock.read(&mut buf).await;
                let _ = sock.write_all(b"bye").await;
                let _ = sock.set_zero_linger();
                drop(sock);
            });
        }
    });
    addr
}

// ---------------------------------------------------------------------------------------
// Client helpers
// ---------------------------------------------------------------------------------------

fn pattern(seed: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + seed * 7) % 251) as u8)
        .collect()
}

/// The soft limit on open files, raised towards `want` (with `prlimit`, up to the hard
/// limit) when it is lower; returns the limit in force.
fn raise_fd_limit(want: u64) -> u64 {
    let read = || -> Option<(u64, u64)> {
        let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        let mut nums = line.split_whitespace().filter_map(|w| {
            w.parse::<u64>()
                .ok()
                .or((w == "unlimited").then_some(u64::MAX))
        });
        Some((nums.next()?, nums.next()?))
    };
    let Some((soft, hard)) = read() else {
        return want;
    };
    if soft >= want {
        return soft;
    }
    let target = want.min(hard);
    let _ = Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={target}:{hard}"))
        .status();
    read().map_or(soft, |(soft, _)| soft)
}

async fn bounded<F: Future<Output = ()>>(body: F) {
    tokio::time::timeout(OVERALL, body)
        .await
        .expect("the load test did not finish within 60 s");
}

// ---------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_under_load() {
    bounded(async {
        let want = TUNNELS as u64 * FDS_PER_TUNNEL + FD_HEADROOM;
        let limit = raise_fd_limit(want);
        let tunnels = if limit >= want {
            TUNNELS
        } else {
            let n = usize::try_from(limit.saturating_sub(FD_HEADROOM) / FDS_PER_TUNNEL)
                .unwrap_or(0)
                .max(16);
            eprintln!("note: the open-file limit is {limit}: {n} tunnels instead of {TUNNELS}");
            n
        };

        let echo = echo_server().await;
        let reset = resetting_server().await;
        let mut relay = Relay::start(&[
            "--allow".to_owned(),
            format!("127.0.0.1:{}", echo.port()),
            "--allow".to_owned(),
            format!("127.0.0.1:{}", reset.port()),
            "--allow-private".to_owned(),
            "--max-connections".to_owned(),
            (tunnels + 100).to_string(),
            "--max-message".to_owned(),
            MAX_MESSAGE.to_string(),
            "--no-wisp".to_owned(),
        ]);
        let baseline_fds = relay.fds();
        let baseline_rss = relay.rss_kib();
        let echo_path = format!("/127.0.0.1:{}", echo.port());
        let mut expected_lines = 0;

        // ---- a thousand tunnels at once ----
        let started = Instant::now();
        let gate = Arc::new(Semaphore::new(128));
        let relay_ref = &relay;
        let mut clients: Vec<Client> = futures_util::future::join_all((0..tunnels).map(|_| {
            let gate = gate.clone();
            let path = echo_path.clone();
            async move {
                let _permit = gate.acquire().await.expect("gate");
                relay_ref.connect(&path).await
            }
        }))
        .await;
        // All are open: each has echoed its own data, in parallel.
        futures_util::future::join_all(clients.iter_mut().enumerate().map(|(i, ws)| async move {
            let data = pattern(i, PER_TUNNEL);
            ws.send(Message::binary(data.clone())).await.expect("send");
            assert!(read_bytes(ws, PER_TUNNEL).await == data, "tunnel {i}: the echo differs");
        }))
        .await;
        let open_fds = relay.fds();
        let open_rss = relay.rss_kib();
        assert!(
            open_fds >= baseline_fds + 2 * tunnels,
            "{tunnels} tunnels open, but the relay has {open_fds} descriptors (baseline {baseline_fds})"
        );
        // Close them all properly.
        futures_util::future::join_all(clients.iter_mut().map(|ws| async move {
            let _ = ws.close(None).await;
            while let Some(Ok(_)) = ws.next().await {}
        }))
        .await;
        drop(clients);
        expected_lines += tunnels;
        let lines = relay.wait_for_lines(expected_lines, SETTLE).await;
        let ok = lines
            .iter()
            .filter(|l| {
                let f = fields(l);
                f.get("outcome").map(String::as_str) == Some("ok")
                    && f.get("reason").map(String::as_str) == Some("client closed")
                    && f.get("c2s").map(String::as_str) == Some(&PER_TUNNEL.to_string())
            })
            .count();
        assert_eq!(ok, tunnels, "every tunnel logs ok, client closed, {PER_TUNNEL} bytes");
        let after_tunnels = relay.settle_fds(baseline_fds).await;
        assert_eq!(after_tunnels, baseline_fds, "descriptors leaked after {tunnels} tunnels");
        let tunnels_took = started.elapsed();

        // ---- 64 MiB through one tunnel ----
        let started = Instant::now();
        let ws = relay.connect(&echo_path).await;
        let (mut sink, mut stream) = ws.split();
        let writer = tokio::spawn(async move {
            let mut sent = 0;
            while sent < BULK {
                let chunk: Vec<u8> = (sent..sent + BULK_MESSAGE).map(|i| (i % 253) as u8).collect();
                sink.send(Message::binary(chunk)).await.expect("send bulk");
                sent += BULK_MESSAGE;
            }
            sink
        });
        let mut received = 0usize;
        let mut peak_rss = 0;
        while received < BULK {
            match stream.next().await {
                Some(Ok(Message::Binary(data))) => {
                    for (k, b) in data.iter().enumerate() {
                        assert_eq!(*b, ((received + k) % 253) as u8, "byte {} differs", received + k);
                    }
                    received += data.len();
                    if received % (8 << 20) < data.len() {
                        peak_rss = peak_rss.max(relay.rss_kib());
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("bulk transfer ended after {received} bytes: {other:?}"),
            }
        }
        assert_eq!(received, BULK);
        let mut sink = writer.await.expect("the bulk writer");
        sink.send(Message::Close(None)).await.expect("close");
        let mut ws = sink.reunite(stream).expect("reunite");
        while let Some(Ok(_)) = ws.next().await {}
        drop(ws);
        expected_lines += 1;
        let bulk_took = started.elapsed();
        let lines = relay.wait_for_lines(expected_lines, SETTLE).await;
        let bulk_line = lines.last().expect("the bulk tunnel's line");
        let f = fields(bulk_line);
        assert_eq!(f.get("c2s"), Some(&BULK.to_string()), "{bulk_line}");
        assert_eq!(f.get("s2c"), Some(&BULK.to_string()), "{bulk_line}");

        // ---- abrupt closes ----
        // The client vanishes without a close frame.
        let mut ws = relay.connect(&echo_path).await;
        ws.send(Message::binary(b"then nothing".to_vec())).await.expect("send");
        read_bytes(&mut ws, 12).await;
        drop(ws);
        // The target resets the connection.
        let mut ws = relay.connect(&format!("/127.0.0.1:{}", reset.port())).await;
        ws.send(Message::binary(b"hello".to_vec())).await.expect("send");
        let mut got = Vec::new();
        let code = loop {
            match ws.next().await {
                Some(Ok(Message::Binary(data))) => got.extend_from_slice(&data),
                Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break None,
            }
        };
        assert!(got.is_empty() || got == b"bye", "{got:?}");
        assert!(
            matches!(code, Some(1000 | 1011)),
            "a reset target closes the WebSocket with a code, got {code:?}"
        );
        drop(ws);
        expected_lines += 2;

        // ---- refusals ----
        let mut ws = relay.connect(&echo_path).await;
        ws.send(Message::text("not binary")).await.expect("send");
        assert_eq!(close_frame(&mut ws).await.0, 1003);
        drop(ws);
        let mut ws = relay.connect(&echo_path).await;
        // Sending may fail once the relay has closed: the close frame is what counts.
        let _ = ws.send(Message::binary(vec![0u8; 2 * MAX_MESSAGE])).await;
        assert_eq!(close_frame(&mut ws).await.0, 1009);
        drop(ws);
        let mut ws = relay.connect("/127.0.0.1:1").await;
        let (code, reason) = close_frame(&mut ws).await;
        assert_eq!((code, reason.as_str()), (1008, "target not allowed: 127.0.0.1:1"));
        drop(ws);
        let mut ws = relay.connect("/").await;
        assert_eq!(close_frame(&mut ws).await.0, 1008);
        drop(ws);
        expected_lines += 4;

        let lines = relay.wait_for_lines(expected_lines, SETTLE).await;
        let tail: Vec<HashMap<&str, String>> =
            lines[tunnels + 1..].iter().map(|l| fields(l)).collect();
        let has = |outcome: &str, reason_part: &str| {
            tail.iter().any(|f| {
                f.get("outcome").map(String::as_str) == Some(outcome)
                    && f.get("reason").is_some_and(|r| r.contains(reason_part))
            })
        };
        let shown = lines[tunnels..].join("\n");
        assert!(has("error", "client:"), "the vanished client is logged:\n{shown}");
        assert!(has("error", "read from target"), "the reset is logged:\n{shown}");
        assert!(has("error", "text frames are not supported"), "text frame:\n{shown}");
        assert!(has("error", "message too big"), "oversized message:\n{shown}");
        assert!(
            has("refused", "target not allowed: 127.0.0.1:1"),
            "allowlist refusal:\n{shown}"
        );
        assert!(has("refused", "no target"), "no target:\n{shown}");
        assert_eq!(lines.len(), expected_lines, "one line per connection:\n{shown}");
        for line in &lines {
            let f = fields(line);
            assert!(
                f.get("reason").is_some_and(|r| !r.is_empty()) && f.contains_key("outcome"),
                "a line without an outcome and a reason: {line}"
            );
        }

        // ---- nothing leaked, nothing crashed ----
        let final_fds = relay.settle_fds(baseline_fds).await;
        let final_rss = relay.rss_kib();
        assert!(relay.alive(), "the relay exited");
        assert_eq!(final_fds, baseline_fds, "descriptors leaked");
        eprintln!(
            "relay load: {tunnels} tunnels in {:.1} s (descriptors {baseline_fds} → {open_fds} → {after_tunnels}); \
             {} MiB echoed in {:.1} s ({:.0} MiB/s each way); RSS {} KiB at start, {} KiB with {tunnels} tunnels, \
             peak {} KiB during the bulk transfer, {} KiB at the end; {} log lines",
            tunnels_took.as_secs_f64(),
            BULK >> 20,
            bulk_took.as_secs_f64(),
            (BULK >> 20) as f64 / bulk_took.as_secs_f64(),
            baseline_rss,
            open_rss,
            peak_rss,
            final_rss,
            lines.len(),
        );
        // Bounded: a tunnel costs a few buffers of at most a message each; 1000 idle
        // tunnels and a 64 MiB stream must not grow the relay without limit.
        assert!(open_rss < baseline_rss + 256 * 1024, "RSS {open_rss} KiB with {tunnels} tunnels");
        assert!(peak_rss < baseline_rss + 128 * 1024, "RSS {peak_rss} KiB during the bulk transfer");
        assert!(final_rss < baseline_rss + 256 * 1024, "RSS {final_rss} KiB at the end");
    })
    .await;
}
