//! End-to-end tests: the built relay binary, a local TCP server and a
//! tokio-tungstenite client, all on 127.0.0.1.

mod common;

use std::future::Future;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::mpsc as tokio_mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use common::{close_frame, read_bytes, sending_server, Client, Relay};

const TEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs a test body with a hard time limit so nothing can hang.
async fn bounded<F: Future<Output = ()>>(body: F) {
    tokio::time::timeout(TEST_TIMEOUT, body)
        .await
        .expect("test timed out");
}

impl Relay {
    fn start(args: &[&str]) -> Relay {
        Relay::start_within(args, TEST_TIMEOUT)
    }

    async fn connect(&self, path: &str) -> Client {
        self.websocket(path, None).await.0
    }

    /// The next per-tunnel log line.
    fn log_line(&self) -> String {
        self.stderr
            .recv_timeout(TEST_TIMEOUT)
            .expect("relay logged a line")
    }
}

/// A TCP echo server. The counter tracks accepted connections; the channel
/// reports each connection's end (the relay closed its side).
async fn echo_server() -> (
    SocketAddr,
    Arc<AtomicUsize>,
    tokio_mpsc::UnboundedReceiver<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
    let addr = listener.local_addr().expect("echo addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = tokio_mpsc::unbounded_channel();
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let done = done_tx.clone();
            tokio::spawn(async move {
                let (mut r, mut w) = sock.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
                let _ = done.send(());
            });
        }
    });
    (addr, accepted, done_rx)
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

async fn assert_echo(ws: &mut Client) {
    let data = pattern(200 * 1024);
    ws.send(Message::binary(b"hello".to_vec()))
        .await
        .expect("send");
    assert_eq!(read_bytes(ws, 5).await, b"hello");
    ws.send(Message::binary(data.clone())).await.expect("send");
    assert_eq!(read_bytes(ws, data.len()).await, data);
}

#[tokio::test]
async fn round_trip_through_allowed_loopback_target() {
    bounded(async {
        let (echo, _, mut done) = echo_server().await;
        let allow = format!("127.0.0.1:{}", echo.port());
        let relay = Relay::start(&["--allow", &allow, "--allow-private"]);
        let mut ws = relay.connect(&format!("/127.0.0.1:{}", echo.port())).await;
        assert_echo(&mut ws).await;
        ws.send(Message::Ping(b"p".to_vec().into()))
            .await
            .expect("ping");
        match ws.next().await {
            Some(Ok(Message::Pong(data))) => assert_eq!(&data[..], b"p"),
            other => panic!("expected pong, got {other:?}"),
        }

        ws.close(None).await.expect("close");
        while ws.next().await.is_some() {}
        // The relay shut down its TCP write side, so the echo server saw EOF.
        done.recv().await.expect("target connection ended");

        let line = relay.log_line();
        let expected = 5 + 200 * 1024;
        assert!(line.contains(" client=127.0.0.1:"), "{line}");
        assert!(line.contains(&format!(" target={allow} ")), "{line}");
        assert!(line.contains(" outcome=ok "), "{line}");
        assert!(
            line.contains(&format!(" c2s={expected} s2c={expected} ")),
            "{line}"
        );
        assert!(line.contains(" duration="), "{line}");
    })
    .await;
}

#[tokio::test]
async fn abrupt_client_disconnect_closes_target() {
    bounded(async {
        let (echo, _, mut done) = echo_server().await;
        let relay = Relay::start(&[
            "--allow",
            &format!("127.0.0.1:{}", echo.port()),
            "--allow-private",
        ]);
        let mut ws = relay.connect(&format!("/127.0.0.1:{}", echo.port())).await;
        assert_echo(&mut ws).await;
        drop(ws);
        done.recv().await.expect("target connection ended");
        assert!(relay.log_line().contains(" target=127.0.0.1:"));
    })
    .await;
}

#[tokio::test]
async fn target_not_in_allowlist_is_refused() {
    bounded(async {
        let (echo, accepted, _) = echo_server().await;
        let relay = Relay::start(&[
            "--allow",
            &format!("127.0.0.1:{}", echo.port()),
            "--allow-private",
        ]);
        let mut ws = relay.connect("/evil.example:25").await;
        assert_eq!(
            close_frame(&mut ws).await,
            (1008, "target not allowed: evil.example:25".to_string())
        );
        let mut ws = relay
            .connect(&format!("/127.0.0.1:{}", echo.port() ^ 1))
            .await;
        let (code, reason) = close_frame(&mut ws).await;
        assert_eq!(code, 1008);
        assert!(
            reason.starts_with("target not allowed: 127.0.0.1:"),
            "{reason}"
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 0);
        // Two tunnels end in either order.
        let lines = [relay.log_line(), relay.log_line()];
        assert!(
            lines
                .iter()
                .any(|l| l
                    .contains("outcome=refused reason=\"target not allowed: evil.example:25\"")),
            "{lines:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn loopback_target_needs_allow_private() {
    bounded(async {
        let (echo, accepted, _) = echo_server().await;
        let port = echo.port();
        let relay = Relay::start(&[
            "--allow",
            &format!("127.0.0.1:{port}"),
            "--allow",
            &format!("localhost:{port}"),
        ]);
        let mut ws = relay.connect(&format!("/127.0.0.1:{port}")).await;
        assert_eq!(
            close_frame(&mut ws).await,
            (1008, format!("private address refused: 127.0.0.1:{port}"))
        );
        // A name is checked by the address it resolves to.
        let mut ws = relay.connect(&format!("/localhost:{port}")).await;
        let (code, reason) = close_frame(&mut ws).await;
        assert_eq!(code, 1008);
        assert!(reason.starts_with("private address refused: "), "{reason}");
        assert_eq!(accepted.load(Ordering::SeqCst), 0);
    })
    .await;
}

#[tokio::test]
async fn no_allow_refuses_everything() {
    bounded(async {
        let (echo, accepted, _) = echo_server().await;
        let relay = Relay::start(&["--allow-private"]);
        for path in [
            format!("/127.0.0.1:{}", echo.port()),
            "/example.com:443".to_string(),
        ] {
            let mut ws = relay.connect(&path).await;
            let (code, reason) = close_frame(&mut ws).await;
            assert_eq!(code, 1008);
            assert!(reason.starts_with("target not allowed: "), "{reason}");
        }
        let mut ws = relay.connect("/").await;
        let (code, reason) = close_frame(&mut ws).await;
        assert_eq!(code, 1008);
        assert!(reason.starts_with("no target"), "{reason}");
        assert_eq!(accepted.load(Ordering::SeqCst), 0);
    })
    .await;
}

#[tokio::test]
async fn text_frame_closes_with_1003() {
    bounded(async {
        let (echo, _, _) = echo_server().await;
        let relay = Relay::start(&[
            "--allow",
            &format!("127.0.0.1:{}", echo.port()),
            "--allow-private",
        ]);
        let mut ws = relay.connect(&format!("/127.0.0.1:{}", echo.port())).await;
        ws.send(Message::text("hi")).await.expect("send");
        assert_eq!(
            close_frame(&mut ws).await,
            (1003, "text frames are not supported".to_string())
        );
    })
    .await;
}

#[tokio::test]
async fn oversized_message_closes_with_1009() {
    bounded(async {
        let (echo, _, _) = echo_server().await;
        let relay = Relay::start(&[
            "--allow",
            &format!("127.0.0.1:{}", echo.port()),
            "--allow-private",
            "--max-message",
            "1024",
        ]);
        let mut ws = relay.connect(&format!("/127.0.0.1:{}", echo.port())).await;
        ws.send(Message::binary(vec![1u8; 1024]))
            .await
            .expect("send");
        assert_eq!(read_bytes(&mut ws, 1024).await, vec![1u8; 1024]);
        ws.send(Message::binary(vec![2u8; 64 * 1024]))
            .await
            .expect("send");
        let (code, reason) = close_frame(&mut ws).await;
        assert_eq!(code, 1009);
        assert!(reason.contains("1024"), "{reason}");
    })
    .await;
}

#[tokio::test]
async fn max_connections_is_enforced() {
    bounded(async {
        let (echo, _, _) = echo_server().await;
        let path = format!("/127.0.0.1:{}", echo.port());
        let relay = Relay::start(&[
            "--allow",
            &format!("127.0.0.1:{}", echo.port()),
            "--allow-private",
            "--max-connections",
            "1",
        ]);
        let mut first = relay.connect(&path).await;
        assert_echo(&mut first).await;

        let mut second = relay.connect(&path).await;
        assert_eq!(
            close_frame(&mut second).await,
            (1008, "too many connections (limit 1)".to_string())
        );

        // The slot comes back once the first tunnel has ended.
        first.close(None).await.expect("close");
        while first.next().await.is_some() {}
        loop {
            let mut third = relay.connect(&path).await;
            third
                .send(Message::binary(b"again".to_vec()))
                .await
                .expect("send");
            match third.next().await {
                Some(Ok(Message::Binary(data))) => {
                    assert_eq!(&data[..], b"again");
                    break;
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Some(Ok(other)) => panic!("unexpected {other:?}"),
            }
        }
    })
    .await;
}

#[tokio::test]
async fn server_eof_closes_with_1000_after_all_data() {
    bounded(async {
        let payload = pattern(300 * 1024 + 17);
        let server = sending_server(payload.clone()).await;
        let relay = Relay::start(&[
            "--allow",
            &format!("127.0.0.1:{}", server.port()),
            "--allow-private",
        ]);
        let mut ws = relay
            .connect(&format!("/127.0.0.1:{}", server.port()))
            .await;
        assert_eq!(read_bytes(&mut ws, payload.len()).await, payload);
        assert_eq!(close_frame(&mut ws).await, (1000, String::new()));
        let line = relay.log_line();
        assert!(
            line.contains("outcome=ok reason=\"server closed\""),
            "{line}"
        );
        assert!(line.contains(&format!(" s2c={} ", payload.len())), "{line}");
    })
    .await;
}

#[tokio::test]
async fn target_from_query() {
    bounded(async {
        let (echo, _, _) = echo_server().await;
        let port = echo.port();
        let relay = Relay::start(&["--allow", &format!("127.0.0.1:{port}"), "--allow-private"]);
        let mut ws = relay.connect(&format!("/?target=127.0.0.1:{port}")).await;
        assert_echo(&mut ws).await;
        let mut ws = relay.connect(&format!("/?target=127.0.0.1%3A{port}")).await;
        assert_echo(&mut ws).await;
    })
    .await;
}

#[tokio::test]
async fn ipv6_target_in_brackets() {
    bounded(async {
        let Ok(listener) = TcpListener::bind("[::1]:0").await else {
            eprintln!("no IPv6 loopback here; skipping");
            return;
        };
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            if let Ok((mut sock, _)) = listener.accept().await {
                let (mut r, mut w) = sock.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            }
        });
        let relay = Relay::start(&["--allow", &format!("[::1]:{port}"), "--allow-private"]);
        let mut ws = relay.connect(&format!("/[::1]:{port}")).await;
        assert_echo(&mut ws).await;
        ws.close(None).await.expect("close");
        while ws.next().await.is_some() {}
        let line = relay.log_line();
        assert!(line.contains(&format!(" target=[::1]:{port} ")), "{line}");
    })
    .await;
}

#[tokio::test]
async fn fixed_target_ignores_the_url() {
    bounded(async {
        let (echo, _, _) = echo_server().await;
        let target = format!("127.0.0.1:{}", echo.port());
        let relay = Relay::start(&["--target", &target, "--allow-private"]);
        let mut ws = relay.connect("/evil.example:25").await;
        assert_echo(&mut ws).await;
        let mut ws = relay.connect("/").await;
        assert_echo(&mut ws).await;
    })
    .await;
}

#[tokio::test]
async fn fixed_private_target_still_needs_allow_private() {
    bounded(async {
        let (echo, accepted, _) = echo_server().await;
        let target = format!("127.0.0.1:{}", echo.port());
        let relay = Relay::start(&["--target", &target]);
        let mut ws = relay.connect("/").await;
        assert_eq!(
            close_frame(&mut ws).await,
            (1008, format!("private address refused: {target}"))
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 0);
    })
    .await;
}

#[tokio::test]
async fn binary_subprotocol_is_selected() {
    bounded(async {
        let (echo, _, _) = echo_server().await;
        let port = echo.port();
        let relay = Relay::start(&["--allow", &format!("127.0.0.1:{port}"), "--allow-private"]);
        let path = format!("/127.0.0.1:{port}");
        let (mut ws, chosen) = relay.websocket(&path, Some("base64, binary")).await;
        assert_eq!(chosen.as_deref(), Some("binary"));
        assert_echo(&mut ws).await;

        let (mut ws, chosen) = relay.websocket(&path, None).await;
        assert_eq!(chosen, None);
        assert_echo(&mut ws).await;
    })
    .await;
}

#[tokio::test]
async fn base64_only_subprotocol_is_refused() {
    bounded(async {
        let (echo, accepted, _) = echo_server().await;
        let port = echo.port();
        let relay = Relay::start(&["--allow", &format!("127.0.0.1:{port}"), "--allow-private"]);
        let (mut ws, _) = relay
            .websocket(&format!("/127.0.0.1:{port}"), Some("base64"))
            .await;
        let (code, reason) = close_frame(&mut ws).await;
        assert_eq!(code, 1008);
        assert!(reason.contains("base64"), "{reason}");
        assert_eq!(accepted.load(Ordering::SeqCst), 0);
    })
    .await;
}

#[tokio::test]
async fn failed_connect_closes_with_1011() {
    bounded(async {
        // A port that was just free: nothing listens there.
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            l.local_addr().expect("addr").port()
        };
        let relay = Relay::start(&["--allow", &format!("127.0.0.1:{port}"), "--allow-private"]);
        let mut ws = relay.connect(&format!("/127.0.0.1:{port}")).await;
        let (code, reason) = close_frame(&mut ws).await;
        assert_eq!(code, 1011);
        assert!(reason.starts_with("connect failed: "), "{reason}");
        assert!(relay.log_line().contains("outcome=error"));
    })
    .await;
}

#[tokio::test]
async fn idle_tunnel_is_closed() {
    bounded(async {
        let (echo, _, mut done) = echo_server().await;
        let relay = Relay::start(&[
            "--allow",
            &format!("127.0.0.1:{}", echo.port()),
            "--allow-private",
            "--idle-timeout",
            "1",
        ]);
        let mut ws = relay.connect(&format!("/127.0.0.1:{}", echo.port())).await;
        assert_echo(&mut ws).await;
        assert_eq!(
            close_frame(&mut ws).await,
            (1001, "idle timeout (1s)".to_string())
        );
        done.recv().await.expect("target connection ended");
    })
    .await;
}

#[test]
fn help_prints_usage() {
    let out = Command::new(env!("CARGO_BIN_EXE_wasm-tls-relay"))
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--allow ",
        "--target",
        "--allow-private",
        "--max-connections",
        "--max-message",
        "--idle-timeout",
        "--connect-timeout",
    ] {
        assert!(text.contains(flag), "usage lacks {flag}");
    }

    let bad = Command::new(env!("CARGO_BIN_EXE_wasm-tls-relay"))
        .args(["--allow", "no-port"])
        .output()
        .expect("run with a bad pattern");
    assert_eq!(bad.status.code(), Some(2));
}

/// A server that sends `len` bytes, byte `i` being `i % 251`, to each client
/// in 64 KiB writes, then closes; the counter says how much the kernel has
/// taken so far.
async fn streaming_server(len: usize) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let written = Arc::new(AtomicUsize::new(0));
    let count = written.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let block: Vec<u8> = (0..251 * 261).map(|i| (i % 251) as u8).collect();
                let mut sent = 0;
                while sent < len {
                    // 251 × 261 bytes: every write starts the pattern anew.
                    let n = block.len().min(len - sent);
                    if sock.write_all(&block[..n]).await.is_err() {
                        return;
                    }
                    sent += n;
                    count.fetch_add(n, Ordering::Relaxed);
                }
                let _ = sock.shutdown().await;
                let mut buf = [0u8; 1024];
                while matches!(sock.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    (addr, written)
}

#[tokio::test]
async fn a_client_that_does_not_read_slows_the_target() {
    let body = async {
        // More than every socket buffer on the way can hold.
        let total = 96 << 20;
        let (server, written) = streaming_server(total).await;
        let allow = format!("127.0.0.1:{}", server.port());
        let relay = Relay::start(&["--allow", &allow, "--allow-private"]);
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(64 * 1024).expect("rcvbuf");
        let tcp = socket.connect(relay.addr).await.expect("connect relay");
        let request = format!("ws://{}/{allow}", relay.addr)
            .into_client_request()
            .expect("request");
        let (mut ws, _) = tokio_tungstenite::client_async(request, tcp)
            .await
            .expect("websocket handshake");
        // The client reads nothing: the target's progress comes to a stop
        // well short of the whole, and the relay holds little of it.
        let mut last = usize::MAX;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = written.load(Ordering::Relaxed);
            if now == last {
                break;
            }
            last = now;
        }
        assert!(last > 0, "the target sent nothing");
        assert!(last < total / 2, "the target sent {last} bytes unhindered");
        if let Some(kib) = relay.peak_rss_kib() {
            assert!(kib < 48 * 1024, "peak RSS {kib} KiB");
        }
        // Reading again resumes it, every byte in order.
        let mut got = 0usize;
        while got < total {
            match ws.next().await {
                Some(Ok(Message::Binary(d))) => {
                    for (k, b) in d.iter().enumerate() {
                        if *b != ((got + k) % 251) as u8 {
                            panic!("byte {} differs", got + k);
                        }
                    }
                    got += d.len();
                }
                other => panic!("after {got} bytes: {other:?}"),
            }
        }
        assert_eq!(got, total);
        assert_eq!(close_frame(&mut ws).await, (1000, String::new()));
    };
    tokio::time::timeout(Duration::from_secs(60), body)
        .await
        .expect("test timed out");
}
