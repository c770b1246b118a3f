//! How a connection ends, for both the raw relay and Wisp: the idle timer,
//! the client messages that end a WebSocket, and its close frame.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message};

use crate::log::Outcome;
use crate::relay::Ws;

/// Time allowed for sending a close frame that has no data queued before it,
/// and for the lingering close after it.
pub(crate) const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the lingering close waits for the client to stop sending.
const LINGER: Duration = Duration::from_secs(2);
/// Close reasons must fit a control frame (125 bytes) with the 2-byte code.
const MAX_REASON: usize = 123;

/// How a WebSocket, a raw tunnel or a Wisp stream ended.
pub(crate) enum End {
    /// The client sent a close frame or went away.
    ClientClosed,
    /// The target closed its side.
    ServerEof,
    /// Something the client sent breaks the rules; close with this code.
    Violation(CloseCode, String),
    /// The client connection broke.
    ClientError(String),
    /// The target connection broke.
    TargetError(String),
    /// No traffic either way for `--idle-timeout`.
    Idle,
}

impl End {
    /// The close frame for an end the relay announces, and the outcome to
    /// log. When the client closed or broke there is no frame to send:
    /// `Err(None)` and `Err(Some(error))`, which the caller words.
    pub(crate) fn close_frame(
        self,
        idle_timeout: Duration,
    ) -> Result<(CloseFrame, Outcome), Option<String>> {
        let close = |code: CloseCode, reason: String| CloseFrame {
            code,
            reason: reason.into(),
        };
        Ok(match self {
            End::ClientClosed => return Err(None),
            End::ClientError(e) => return Err(Some(e)),
            End::ServerEof => (
                close(CloseCode::Normal, String::new()),
                Outcome::Ok("server closed".into()),
            ),
            End::Violation(code, reason) => {
                let reason = truncate_reason(reason);
                (close(code, reason.clone()), Outcome::Error(reason))
            }
            End::TargetError(e) => {
                // The log keeps the whole text; the frame carries what fits.
                (
                    close(CloseCode::Error, truncate_reason(e.clone())),
                    Outcome::Error(e),
                )
            }
            End::Idle => {
                let reason = format!("idle timeout ({}s)", idle_timeout.as_secs());
                (close(CloseCode::Away, reason.clone()), Outcome::Ok(reason))
            }
        })
    }
}

/// Sorts what the client's WebSocket yielded: a binary message's bytes,
/// `None` for a control message (traffic, nothing to relay), or the end it
/// means.
pub(crate) fn client_message(
    msg: Option<Result<Message, WsError>>,
    max_message: usize,
) -> Result<Option<Bytes>, End> {
    match msg {
        Some(Ok(Message::Binary(data))) => Ok(Some(data)),
        Some(Ok(Message::Text(_))) => {
            let reason = "text frames are not supported".to_string();
            Err(End::Violation(CloseCode::Unsupported, reason))
        }
        // tungstenite queues the pong itself.
        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Ok(None),
        Some(Ok(Message::Close(_))) | None => Err(End::ClientClosed),
        Some(Err(WsError::Capacity(_))) => {
            let reason = format!("message too big (limit {max_message} bytes)");
            Err(End::Violation(CloseCode::Size, reason))
        }
        Some(Err(e)) => Err(End::ClientError(e.to_string())),
    }
}

/// The idle timer of one tunnel: the transfers either way touch it, and
/// [`Activity::idle`] returns once none happened for the timeout. Touching is
/// a relaxed store, cheap enough for every message.
pub(crate) struct Activity {
    start: Instant,
    /// Milliseconds since `start` of the last completed transfer either way.
    last: AtomicU64,
}

impl Activity {
    /// A timer whose last activity is now.
    pub(crate) fn new() -> Self {
        Activity {
            start: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    /// Records a transfer.
    pub(crate) fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }

    /// Returns once nothing was touched for `idle_timeout`.
    pub(crate) async fn idle(&self, idle_timeout: Duration) {
        let deadline = || {
            let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
            self.start + last + idle_timeout
        };
        loop {
            tokio::time::sleep_until(deadline().into()).await;
            // Traffic while asleep moved the deadline; sleep again if so.
            if Instant::now() >= deadline() {
                return;
            }
        }
    }
}

/// Closes the WebSocket with a policy code before any tunnel exists.
pub(crate) async fn refuse(ws: Ws, code: CloseCode, reason: String) -> Outcome {
    Outcome::Refused(close_with(ws, code, reason).await)
}

/// Closes the WebSocket after a failure on the target side.
pub(crate) async fn fail(ws: Ws, code: CloseCode, reason: String) -> Outcome {
    Outcome::Error(close_with(ws, code, reason).await)
}

/// Closes the WebSocket with `code` and `reason`, cut to fit; returns the
/// reason as sent.
async fn close_with(ws: Ws, code: CloseCode, reason: String) -> String {
    let reason = truncate_reason(reason);
    let frame = CloseFrame {
        code,
        reason: reason.clone().into(),
    };
    close_ws(ws, frame, CLOSE_TIMEOUT).await;
    reason
}

/// Sends `frame`, then closes the TCP write side and discards what the client
/// still sends for a moment. Dropping a socket with unread input makes the
/// kernel send a reset, which can destroy the close frame before the client
/// reads it; after a too-big message the input is also no longer parseable.
///
/// `send_timeout` bounds the close frame's own delivery. Behind a slow reader
/// it waits for the data queued before it, so it gets as long as data does:
/// a client that never sees the frame counts the close as abnormal, and a
/// browser's WebSocketStream then drops the messages it had not yet read.
pub(crate) async fn close_ws(mut ws: Ws, frame: CloseFrame, send_timeout: Duration) {
    if !matches!(
        timeout(send_timeout, ws.close(Some(frame))).await,
        Ok(Ok(()))
    ) {
        return;
    }
    let _ = timeout(CLOSE_TIMEOUT, async {
        let tcp = ws.get_mut();
        if tcp.shutdown().await.is_err() {
            return;
        }
        let mut sink = [0u8; 4096];
        let _ = timeout(LINGER, async {
            while let Ok(n) = tcp.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
    })
    .await;
}

/// Cuts `reason` to fit a close frame, on a character boundary, and replaces
/// control characters that may come from a client's URL.
pub(crate) fn truncate_reason(reason: String) -> String {
    let mut out = String::with_capacity(reason.len().min(MAX_REASON));
    for c in reason.chars() {
        let c = if c.is_control() { '?' } else { c };
        if out.len() + c.len_utf8() > MAX_REASON {
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_fit_a_close_frame() {
        let long = "é".repeat(100);
        let cut = truncate_reason(long);
        assert!(cut.len() <= MAX_REASON);
        assert_eq!(cut.chars().count(), MAX_REASON / 2);
        assert_eq!(truncate_reason("a\nb".into()), "a?b");
    }

    /// A client that stops reading for longer than [`CLOSE_TIMEOUT`] while the
    /// relay's last messages and its close frame wait in the socket buffers
    /// still gets every message and then the close frame, not an abnormal end.
    #[tokio::test]
    async fn close_frame_waits_behind_a_slow_reader() {
        use futures_util::{SinkExt, StreamExt};
        use tokio::net::{TcpListener, TcpSocket};
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(16 * 1024).expect("rcvbuf");
        let client = tokio::spawn(async move {
            let tcp = socket.connect(addr).await.expect("connect");
            let request = format!("ws://{addr}/")
                .into_client_request()
                .expect("request");
            tokio_tungstenite::client_async(request, tcp)
                .await
                .expect("handshake")
                .0
        });
        let (tcp, _) = listener.accept().await.expect("accept");
        let mut ws = tokio_tungstenite::accept_async(tcp)
            .await
            .expect("accept ws");
        let mut client = client.await.expect("client");

        // Fill every buffer on the way: the last flush cannot complete.
        let message = vec![7u8; 64 * 1024];
        let mut sent = 0;
        loop {
            ws.feed(Message::binary(message.clone()))
                .await
                .expect("feed");
            sent += 1;
            let flush = tokio::time::timeout(Duration::from_millis(200), ws.flush());
            if flush.await.is_err() {
                break;
            }
        }
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        let closing = tokio::spawn(close_ws(ws, frame, Duration::from_secs(60)));
        tokio::time::sleep(CLOSE_TIMEOUT + Duration::from_secs(1)).await;

        let mut got = 0;
        loop {
            match client.next().await {
                Some(Ok(Message::Binary(data))) => {
                    assert_eq!(data.len(), message.len());
                    got += 1;
                }
                Some(Ok(Message::Close(Some(close)))) => {
                    assert_eq!(close.code, CloseCode::Normal);
                    break;
                }
                other => panic!("after {got} of {sent} messages: {other:?}"),
            }
        }
        assert_eq!(got, sent);
        closing.await.expect("close_ws");
    }
}
