//! The streams of one Wisp WebSocket after its handshake: the reader loop and
//! its stream table, and the writer; each stream runs as a task of its own
//! (`stream.rs`).
//!
//! With client credit negotiated each stream holds its credit in a semaphore:
//! the stream's task takes one permit before each read from its target (one
//! read is one DATA packet), and the reader adds the client's CONTINUE
//! increments. A stream waiting for credit has no traffic, so after
//! `--idle-timeout` it is closed like an idle one.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Bytes, Message};

use super::stream::StreamTask;
use super::wire::{self, reason, CLOSE, CONNECT, CONTINUE, DATA, INFO, STREAM_TCP};
use super::{client_info, Session, BUFFER_PACKETS, WS_BUFFER_BYTES};
use crate::config::Config;
use crate::end::{client_message, close_ws, End, CLOSE_TIMEOUT};
use crate::log::{LogLine, Outcome};
use crate::policy::Target;
use crate::relay::{Stats, Ws};

/// The queue holds four times the credit: a CONTINUE counts from what is queued
/// when it is sent, and packets already on the wire then arrive on top; a client
/// that takes each CONTINUE's value as its new credit (as @mercuryworkshop/wisp-js
/// does) can so have a whole credit in flight beside a whole new one, and at full
/// speed overran a queue of twice the credit. Bytes stay bounded by the WebSocket's
/// budget ([`WS_BUFFER_BYTES`]).
const QUEUE_PACKETS: usize = 4 * BUFFER_PACKETS as usize;
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
/// Most credit a stream can hold: the client's increments saturate here.
const MAX_CREDIT: usize = if (u32::MAX as usize) < Semaphore::MAX_PERMITS {
    u32::MAX as usize
} else {
    Semaphore::MAX_PERMITS
};

pub(super) fn close_packet(stream: u32, why: u8) -> Message {
    Message::binary(wire::encode_close(stream, why))
}

pub(super) fn continue_packet(stream: u32, credit: u32) -> Message {
    Message::binary(wire::encode_continue(stream, credit))
}

/// Why the relay stopped a stream before its end, shared with the stream's task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stop {
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
    /// DATA packets the client lets this stream send, with client credit.
    credit: Option<Arc<Semaphore>>,
}

/// Bytes for a target, holding their share of the WebSocket's byte budget
/// until written.
pub(super) type Queued = (Bytes, OwnedSemaphorePermit);

/// Totals over the whole WebSocket, for its log line.
#[derive(Default)]
pub(super) struct Totals {
    pub(super) up: AtomicU64,
    pub(super) down: AtomicU64,
}

/// What every stream task needs from its connection.
#[derive(Clone)]
pub(super) struct Shared {
    pub(super) cfg: Arc<Config>,
    pub(super) peer: SocketAddr,
    /// DATA and the streams' own CLOSEs, in order per stream.
    pub(super) data: mpsc::Sender<Message>,
    /// CONTINUE and the reader's refusals: small, and never behind bulk data.
    pub(super) control: mpsc::Sender<Message>,
    /// A stream task's (id, generation) when it ends.
    pub(super) ended: mpsc::UnboundedSender<(u32, u64)>,
    pub(super) totals: Arc<Totals>,
}

/// Carries the streams of a WebSocket whose handshake is done, until it
/// closes; returns the WebSocket's outcome.
pub(super) async fn serve_streams(
    sink: SplitSink<Ws, Message>,
    mut stream: SplitStream<Ws>,
    peer: SocketAddr,
    cfg: Arc<Config>,
    session: Session,
    stats: &mut Stats,
) -> Outcome {
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
        session,
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
        LogLine::refusal(peer, Some(0), None, &Outcome::Refused(text)).write();
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

    let (frame, outcome) = match end.close_frame(cfg.idle_timeout) {
        Ok((frame, outcome)) => (Some(frame), outcome),
        Err(None) => (
            None,
            Outcome::Ok(format!("client closed; {opened} streams")),
        ),
        Err(Some(e)) => return Outcome::Error(format!("client: {e}; {opened} streams")),
    };
    // The writer ends once every stream task has dropped its sender.
    let sink = match timeout(CLOSE_TIMEOUT, writer).await {
        Ok(Ok((sink, None))) => sink,
        _ => return outcome,
    };
    if let Ok(mut ws) = sink.reunite(stream) {
        match frame {
            Some(frame) => close_ws(ws, frame, cfg.idle_timeout).await,
            // Sends tungstenite's reply to the client's close frame.
            None => {
                let _ = timeout(CLOSE_TIMEOUT, ws.close(None)).await;
            }
        }
    }
    outcome
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
    /// What the handshake settled, and the client's INFO once read.
    session: Session,
}

/// Adds a client's increment to a stream's credit, saturating.
fn grant(credit: &Semaphore, increment: u32) {
    let room = MAX_CREDIT.saturating_sub(credit.available_permits());
    let add = usize::try_from(increment).unwrap_or(usize::MAX).min(room);
    // Only the reader adds and the stream only takes, so `room` stays true.
    credit.add_permits(add);
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
                    match client_message(msg, max_message) {
                        Ok(Some(p)) => {
                            if let Err(end) = self.packet(p).await {
                                return end;
                            }
                        }
                        Ok(None) => {}
                        Err(end) => return end,
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
    async fn packet(&mut self, message: Bytes) -> Result<(), End> {
        let p =
            wire::decode_packet(message).map_err(|e| End::Violation(CloseCode::Protocol, e.0))?;
        let id = p.stream;
        match p.kind {
            CONNECT => self.connect(id, &p.payload).await,
            DATA if id != 0 => {
                self.data(id, p.payload).await;
                Ok(())
            }
            CLOSE if id == 0 => Err(End::ClientClosed),
            CLOSE => {
                if let Some(entry) = self.streams.remove(&id) {
                    let _ = entry.stop.send(Stop::ClientClosed);
                }
                Ok(())
            }
            // The client's answer to the relay's INFO, when the handshake did
            // not need it first. Later ones change nothing.
            INFO if id == 0 && self.session.sent_info && !self.session.info_read => {
                self.session.info_read = true;
                match client_info(&p.payload) {
                    Ok(info) => {
                        self.session.client_credit = info.credit;
                        Ok(())
                    }
                    Err(text) => Err(self.incompatible(text).await),
                }
            }
            CONTINUE if id != 0 && self.session.client_credit.is_some() => {
                let increment = wire::decode_continue(&p.payload)
                    .map_err(|e| End::Violation(CloseCode::Protocol, e.0))?;
                // Streams opened before the client's INFO have no credit, and
                // packets for closed streams may still be in flight.
                if let Some(credit) = self.streams.get(&id).and_then(|e| e.credit.as_ref()) {
                    grant(credit, increment);
                }
                Ok(())
            }
            // CONTINUE without client credit, DATA on stream 0 and unknown
            // types from extensions not negotiated: nothing to do.
            _ => Ok(()),
        }
    }

    /// Says "incompatible extensions" on stream 0 before the WebSocket closes
    /// with `text`.
    async fn incompatible(&mut self, text: String) -> End {
        let why = close_packet(0, reason::INCOMPATIBLE_EXTENSIONS);
        let _ = self.shared.control.send(why).await;
        End::Violation(CloseCode::Protocol, text)
    }

    /// Refuses a CONNECT; waits while the control queue is full, so a client
    /// that sends CONNECTs without reading the answers is pushed back on.
    async fn refuse(&mut self, id: u32, target: Option<&str>, why: u8, text: String) {
        let _ = self.shared.control.send(close_packet(id, why)).await;
        self.refused += 1;
        if self.refused > REFUSALS_LOGGED {
            return;
        }
        LogLine::refusal(self.shared.peer, Some(id), target, &Outcome::Refused(text)).write();
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
        let request = match wire::decode_connect(payload) {
            Ok(request) => request,
            Err(e) => {
                self.refuse(id, None, reason::INVALID_INFO, e.0).await;
                return Ok(());
            }
        };
        let host = request.host.trim();
        let port = request.port;
        let named = format!("{host}:{port}");
        if request.stream_type != STREAM_TCP {
            let what = if request.stream_type == wire::STREAM_UDP {
                "UDP streams are not supported".to_string()
            } else {
                format!("unknown stream type {:#04x}", request.stream_type)
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
        let credit = self.session.client_credit.map(|initial| {
            let initial = usize::try_from(initial).unwrap_or(usize::MAX);
            Arc::new(Semaphore::new(initial.min(MAX_CREDIT)))
        });
        let task = StreamTask {
            id,
            generation: self.generation,
            target,
            shared: self.shared.clone(),
            queue: queue_rx,
            stop: stop_rx,
            ended: ended.clone(),
            live: self.live.clone(),
            credit: credit.clone(),
        };
        self.tasks.spawn(task.run());
        self.streams.insert(
            id,
            Entry {
                generation: self.generation,
                queue: queue_tx,
                stop: stop_tx,
                ended,
                credit,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_saturates() {
        let credit = Semaphore::new(5);
        grant(&credit, 3);
        assert_eq!(credit.available_permits(), 8);
        grant(&credit, u32::MAX);
        assert_eq!(credit.available_permits(), MAX_CREDIT);
        grant(&credit, u32::MAX);
        assert_eq!(credit.available_permits(), MAX_CREDIT);
    }
}
