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

/// Time allowed for sending our close frame and the lingering close after it.
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
    close_ws(ws, frame).await;
    reason
}

/// Sends `frame`, then closes the TCP write side and discards what the client
/// still sends for a moment. Dropping a socket with unread input makes the
/// kernel send a reset, which can destroy the close frame before the client
/// reads it; after a too-big message the input is also no longer parseable.
pub(crate) async fn close_ws(mut ws: Ws, frame: CloseFrame) {
    let _ = timeout(CLOSE_TIMEOUT, async {
        if ws.close(Some(frame)).await.is_err() {
            return;
        }
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
}
