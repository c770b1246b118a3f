//! Pumps the core over a non-blocking `std::net::TcpStream` through [`wasm_tls::Stream`],
//! which holds the pump's rules (refused bytes kept, the alert sent before the error,
//! EOF as truncation). What is left here is the command's own: every wait bounded by
//! `--timeout`, a read that gives up after a short wait so stdin can be looked at, and
//! the `--trace` steps. Works natively and on wasm32-wasip2 (WASI sockets), where there
//! is no `poll` in std: waiting is a short sleep that backs off.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use wasm_tls::{HandshakeInfo, Shutdown, Stream, TlsClient};

/// Why the pump stopped.
#[derive(Debug)]
pub enum PumpError {
    /// The TLS connection failed.
    Tls(wasm_tls::Error),
    /// The socket failed.
    Io(io::Error),
    /// The peer sent nothing for the whole timeout while the client waited for it.
    Timeout(&'static str),
}

impl fmt::Display for PumpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tls(err) => write!(f, "{err} [{}]", err.code()),
            Self::Io(err) => write!(f, "socket error: {err}"),
            Self::Timeout(what) => write!(f, "timed out waiting for the peer during {what}"),
        }
    }
}

impl PumpError {
    /// Sorts an error of the stream: the core's, a wait that ran out, or the socket's.
    fn from_io(err: io::Error, what: &'static str) -> Self {
        if let Some(tls) = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<wasm_tls::Error>())
        {
            return Self::Tls(tls.clone());
        }
        match err.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Self::Timeout(what),
            _ => Self::Io(err),
        }
    }
}

/// What a read found.
pub enum ReadOutcome {
    /// This many bytes of application data.
    Data(usize),
    /// The peer closed cleanly with close_notify.
    Closed,
    /// Nothing arrived within the wait.
    Idle,
}

/// One pump step, for a trace of the SSL_connect-style loop.
pub enum Step {
    /// The core asked to write; this many bytes were sent.
    WantWrite(usize),
    /// The core asked to read; this many bytes arrived (0 is EOF).
    WantRead(usize),
}

/// A non-blocking `TcpStream` made to wait: a read waits up to `read_wait` and then
/// says `WouldBlock`; a write waits up to `timeout` for progress and then says
/// `TimedOut`. It records the steps for `--trace`.
struct Socket {
    stream: TcpStream,
    timeout: Duration,
    read_wait: Duration,
    /// Bytes written since the last flush: one want-write step.
    unflushed: usize,
    trace: Option<Vec<Step>>,
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let deadline = Instant::now() + self.read_wait;
        let mut backoff = Backoff::new();
        loop {
            match self.stream.read(buf) {
                Ok(n) => {
                    if let Some(trace) = &mut self.trace {
                        trace.push(Step::WantRead(n));
                    }
                    return Ok(n);
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return Err(err);
                    }
                    backoff.wait();
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let deadline = Instant::now() + self.timeout;
        let mut backoff = Backoff::new();
        loop {
            match self.stream.write(buf) {
                Ok(n) => {
                    self.unflushed += n;
                    return Ok(n);
                }
                // A write that cannot go on within the timeout is the peer's silence,
                // not a read's short wait.
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return Err(io::ErrorKind::TimedOut.into());
                    }
                    backoff.wait();
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.unflushed > 0 {
            if let Some(trace) = &mut self.trace {
                trace.push(Step::WantWrite(self.unflushed));
            }
            self.unflushed = 0;
        }
        Ok(())
    }
}

/// A TLS client and the socket it is pumped over.
pub struct Pump {
    stream: Stream<Socket>,
}

impl Pump {
    /// Wraps a connected stream. `timeout` bounds every wait for the peer.
    pub fn new(stream: TcpStream, tls: TlsClient, timeout: Duration) -> io::Result<Self> {
        stream.set_nonblocking(true)?;
        // Small TLS records should not wait for Nagle; not every platform supports it.
        let _ = stream.set_nodelay(true);
        let socket = Socket {
            stream,
            timeout,
            read_wait: timeout,
            unflushed: 0,
            trace: None,
        };
        Ok(Self {
            stream: Stream::new(tls, socket),
        })
    }

    /// Records every want-read / want-write step from now on.
    pub fn enable_trace(&mut self) {
        self.stream.sock.trace = Some(Vec::new());
    }

    /// The steps recorded since the last call.
    pub fn take_trace(&mut self) -> Vec<Step> {
        self.stream
            .sock
            .trace
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// What was negotiated, once the handshake is complete.
    pub fn handshake_info(&self) -> Option<HandshakeInfo> {
        self.stream.handshake_info()
    }

    /// Completes the handshake.
    pub fn handshake(&mut self) -> Result<(), PumpError> {
        self.stream.sock.read_wait = self.stream.sock.timeout;
        self.stream
            .connect()
            .map_err(|err| PumpError::from_io(err, "the handshake"))
    }

    /// Writes all of `data`.
    pub fn write_all(&mut self, data: &[u8]) -> Result<(), PumpError> {
        self.stream.sock.read_wait = self.stream.sock.timeout;
        self.stream
            .write_all(data)
            .and_then(|()| self.stream.flush())
            .map_err(|err| PumpError::from_io(err, "a write"))
    }

    /// Reads application data, waiting at most `wait` for the peer.
    pub fn read(&mut self, buf: &mut [u8], wait: Duration) -> Result<ReadOutcome, PumpError> {
        self.stream.sock.read_wait = wait;
        match self.stream.read(buf) {
            Ok(0) => Ok(ReadOutcome::Closed),
            Ok(n) => Ok(ReadOutcome::Data(n)),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(ReadOutcome::Idle),
            Err(err) => Err(PumpError::from_io(err, "a read")),
        }
    }

    /// Sends close_notify. Returns whether the peer's close_notify has arrived too.
    pub fn shutdown(&mut self) -> Result<bool, PumpError> {
        match self.stream.shutdown() {
            Ok(state) => Ok(state == Shutdown::Complete),
            Err(err) => Err(PumpError::from_io(err, "the shutdown")),
        }
    }
}

/// Sleeps a little longer each time nothing happens: 50 µs up to 2 ms.
pub struct Backoff(Duration);

impl Backoff {
    pub fn new() -> Self {
        Self(Duration::from_micros(50))
    }

    pub fn wait(&mut self) {
        std::thread::sleep(self.0);
        self.0 = (self.0 * 2).min(Duration::from_millis(2));
    }
}
