//! One Wisp stream's task: connects to its target, then carries bytes both
//! ways until either side, the reader loop or the idle timer ends it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

use super::mux::{close_packet, continue_packet, Queued, Shared, Stop};
use super::wire::{self, reason, HEADER};
use super::BUFFER_PACKETS;
use crate::end::{Activity, CLOSE_TIMEOUT};
use crate::log::{LogLine, Outcome};
use crate::policy::Target;
use crate::relay::{connect, ConnectError, FailKind, CHUNK};

/// One stream: connects to its target, then carries bytes both ways.
pub(super) struct StreamTask {
    pub(super) id: u32,
    pub(super) generation: u64,
    pub(super) target: Target,
    pub(super) shared: Shared,
    pub(super) queue: mpsc::Receiver<Queued>,
    pub(super) stop: watch::Receiver<Stop>,
    pub(super) ended: Arc<AtomicBool>,
    /// Counts this task, and its resolver, against `--max-streams`.
    pub(super) live: Arc<()>,
    /// With client credit: one permit per DATA packet the client allows.
    pub(super) credit: Option<Arc<Semaphore>>,
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
    /// Runs the stream to its end, logs its line and tells the reader.
    pub(super) async fn run(mut self) {
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
        LogLine {
            client: self.shared.peer,
            stream: Some(self.id),
            target: Some(&named),
            outcome: &outcome,
            c2s: up,
            s2c: down,
            duration: start.elapsed(),
        }
        .write();
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
        let activity = Activity::new();
        let shared = &self.shared;
        let chunk = CHUNK.min(shared.cfg.max_message.saturating_sub(HEADER).max(1));
        let queue = &mut self.queue;
        let stop_state = self.stop.clone();
        let credit = self.credit.clone();

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
                activity.touch();
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
            let mut buf = BytesMut::new();
            loop {
                if let Some(credit) = &credit {
                    // No credit, no read: the target's window fills instead.
                    tokio::select! {
                        permit = credit.acquire() => match permit {
                            Ok(permit) => permit.forget(),
                            Err(_) => return StreamEnd::WriterGone,
                        },
                        _ = stopped(&mut stop) => std::future::pending().await,
                    }
                }
                // The packet is read in place after room for its header, so
                // the target's bytes reach the writer without a copy.
                buf.reserve(HEADER + chunk);
                buf.put_bytes(0, HEADER);
                let mut room = (&mut buf).limit(chunk);
                let n = tokio::select! {
                    r = tcp_read.read_buf(&mut room) => match r {
                        Ok(0) => return StreamEnd::ServerEof,
                        Ok(n) => n,
                        Err(e) => return StreamEnd::TargetError(format!("read from target: {e}")),
                    },
                    // Stopped: nothing more goes to the client; the other
                    // futures decide when the stream ends.
                    _ = stopped(&mut stop) => std::future::pending().await,
                };
                wire::write_data_header(&mut buf[..HEADER], id);
                let msg = Message::binary(buf.split().freeze());
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
                activity.touch();
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

        tokio::select! {
            end = client_to_server => end,
            end = server_to_client => end,
            end = stop_watch => end,
            () = activity.idle(shared.cfg.idle_timeout) => StreamEnd::Idle,
        }
    }
}
