//! Harness shared by the relay's integration tests: the relay binary on
//! 127.0.0.1, WebSocket clients to it, and local TCP servers.
//!
//! Every test binary compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::SEC_WEBSOCKET_PROTOCOL;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub type Client = WebSocketStream<TcpStream>;

/// Starts the relay binary with `--listen 127.0.0.1:0` and `args`, stdin and
/// stdout closed, stderr piped.
pub fn spawn_relay<I, S>(args: I) -> Child
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_wasm-tls-relay"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start relay")
}

/// The address in the relay's first line, `wasm-tls-relay listening on ws://ADDR`.
pub fn listening_addr(first: &str) -> SocketAddr {
    first
        .strip_prefix("wasm-tls-relay listening on ws://")
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .parse()
        .expect("listening address")
}

/// The relay binary, killed on drop. Its stderr lines after the listening
/// line arrive on `stderr`.
pub struct Relay {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr: mpsc::Receiver<String>,
}

impl Relay {
    /// Starts the relay and waits up to `wait` for its listening line.
    pub fn start_within(args: &[&str], wait: Duration) -> Relay {
        let mut child = spawn_relay(args);
        let stderr = child.stderr.take().expect("stderr pipe");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = rx
            .recv_timeout(wait)
            .expect("relay printed its listening line");
        Relay {
            child,
            addr: listening_addr(&first),
            stderr: rx,
        }
    }

    /// Opens a WebSocket on `path`, offering `protocol` if given; returns the
    /// client and the subprotocol the relay chose.
    pub async fn websocket(&self, path: &str, protocol: Option<&str>) -> (Client, Option<String>) {
        let mut request = format!("ws://{}{}", self.addr, path)
            .into_client_request()
            .expect("request");
        if let Some(p) = protocol {
            request.headers_mut().insert(
                SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_str(p).expect("header"),
            );
        }
        let tcp = TcpStream::connect(self.addr).await.expect("connect relay");
        let (ws, response) = tokio_tungstenite::client_async(request, tcp)
            .await
            .expect("websocket handshake");
        let chosen = response
            .headers()
            .get(SEC_WEBSOCKET_PROTOCOL)
            .map(|v| v.to_str().expect("ascii").to_string());
        (ws, chosen)
    }
}

impl Relay {
    /// The relay's peak resident memory, from /proc (Linux only).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server that sends `payload` to each client and then closes.
pub async fn sending_server(payload: Vec<u8>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let payload = Arc::new(payload);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let payload = payload.clone();
            tokio::spawn(async move {
                let _ = sock.write_all(&payload).await;
                let _ = sock.shutdown().await;
                // Keep reading so the close is an orderly FIN, not a reset.
                let mut buf = [0u8; 1024];
                while matches!(sock.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

/// Reads binary messages until `len` bytes arrived.
pub async fn read_bytes(ws: &mut Client, len: usize) -> Vec<u8> {
    let mut got = Vec::with_capacity(len);
    while got.len() < len {
        match ws.next().await {
            Some(Ok(Message::Binary(data))) => got.extend_from_slice(&data),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected binary data, got {other:?}"),
        }
    }
    got
}

/// Reads until the close frame; returns its code and reason (1005 when it
/// has no code).
pub async fn close_frame(ws: &mut Client) -> (u16, String) {
    loop {
        match ws.next().await {
            Some(Ok(Message::Close(Some(frame)))) => {
                return (u16::from(frame.code), frame.reason.to_string())
            }
            Some(Ok(Message::Close(None))) => return (1005, String::new()),
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("error before the close frame: {e}"),
            None => panic!("the connection ended without a close frame"),
        }
    }
}
