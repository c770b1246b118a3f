//! The streams of one Wisp WebSocket after its handshake: the reader loop and
//! its stream table, one task per stream, and the writer.
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

use bytes::{BufMut, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message};

use super::wire::{self, reason, CLOSE, CONNECT, CONTINUE, DATA, HEADER, INFO, STREAM_TCP};
use super::{client_info, Session, BUFFER_PACKETS, WS_BUFFER_BYTES};
use crate::config::Config;
use crate::log::{log_stream, Outcome};
use crate::policy::Target;
use crate::relay::{
    close_ws, connect, truncate_reason, ConnectError, FailKind, Stats, Ws, CHUNK, CLOSE_TIMEOUT,
};

/// The queue holds twice the credit: a CONTINUE counts from what is queued
/// when it is sent, and packets already on the wire then arrive on top.
const QUEUE_PACKETS: usize = 2 * BUFFER_PACKETS as usize;
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

fn close_packet(stream: u32, why: u8) -> Message {
    Message::binary(wire::encode_close(stream, why))
}

fn continue_packet(stream: u32, credit: u32) -> Message {
    Message::binary(wire::encode_continue(stream, credit))
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
    /// DATA packets the client lets this stream send, with client credit.
    credit: Option<Arc<Semaphore>>,
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
    /// With client credit: one permit per DATA packet the client allows.
    credit: Option<Arc<Semaphore>>,
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
