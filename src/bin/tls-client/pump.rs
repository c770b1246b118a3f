//! Pumps a [`TlsClient`] over a non-blocking `std::net::TcpStream`, exactly as any host
//! must: on want-write it sends what is pending, on want-read it waits for the socket and
//! pushes what arrived. Works natively and on wasm32-wasip2 (WASI sockets), where there
//! is no `poll` in std: waiting is a short sleep that backs off.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use wasm_tls::{Shutdown, Status, TlsClient};

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

impl From<wasm_tls::Error> for PumpError {
    fn from(err: wasm_tls::Error) -> Self {
        Self::Tls(err)
    }
}

impl From<io::Error> for PumpError {
    fn from(err: io::Error) -> Self {
        Self::Io(err)
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

/// A TLS client and the socket it is pumped over.
pub struct Pump {
    stream: TcpStream,
    tls: TlsClient,
    timeout: Duration,
    eof: bool,
    scratch: Vec<u8>,
    /// Received ciphertext the core could not take yet.
    parked: Vec<u8>,
    /// Every want-read / want-write step, if tracing.
    pub trace: Option<Vec<Step>>,
}

impl Pump {
    /// Wraps a connected stream. `timeout` bounds every wait for the peer.
    pub fn new(stream: TcpStream, tls: TlsClient, timeout: Duration) -> io::Result<Self> {
        stream.set_nonblocking(true)?;
        // Small TLS records should not wait for Nagle; not every platform supports it.
        let _ = stream.set_nodelay(true);
        Ok(Self {
            stream,
            tls,
            timeout,
            eof: false,
            scratch: vec![0; 64 * 1024],
            parked: Vec::new(),
            trace: None,
        })
    }

    /// The TLS connection.
    pub fn tls(&self) -> &TlsClient {
        &self.tls
    }

    /// Sends everything the core has queued.
    fn flush(&mut self, what: &'static str) -> Result<(), PumpError> {
        let mut sent_total = 0;
        let mut deadline = Instant::now() + self.timeout;
        let mut backoff = Backoff::new();
        while self.tls.pending_ciphertext() > 0 {
            let n = self.tls.pull_ciphertext(&mut self.scratch);
            let mut chunk = &self.scratch[..n];
            while !chunk.is_empty() {
                match self.stream.write(chunk) {
                    Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
                    Ok(written) => {
                        chunk = &chunk[written..];
                        sent_total += written;
                        deadline = Instant::now() + self.timeout;
                        backoff = Backoff::new();
                    }
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                        if Instant::now() >= deadline {
                            return Err(PumpError::Timeout(what));
                        }
                        backoff.wait();
                    }
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(err) => return Err(err.into()),
                }
            }
        }
        if let Some(trace) = &mut self.trace {
            trace.push(Step::WantWrite(sent_total));
        }
        Ok(())
    }

    /// Waits up to `wait` for the socket, and pushes what arrived (or EOF) into the core.
    /// Returns false if nothing arrived in time.
    fn fill(&mut self, wait: Duration) -> Result<bool, PumpError> {
        if self.eof || !self.parked.is_empty() {
            self.unpark();
            return Ok(true);
        }
        let deadline = Instant::now() + wait;
        let mut backoff = Backoff::new();
        loop {
            match self.stream.read(&mut self.scratch) {
                Ok(0) => {
                    self.eof = true;
                    self.tls.push_eof();
                    if let Some(trace) = &mut self.trace {
                        trace.push(Step::WantRead(0));
                    }
                    return Ok(true);
                }
                Ok(n) => {
                    let taken = self.tls.push_ciphertext(&self.scratch[..n]);
                    if let Some(trace) = &mut self.trace {
                        trace.push(Step::WantRead(n));
                    }
                    if taken < n {
                        // The core holds as much unread plaintext as it will: park the
                        // rest until the application has read some.
                        self.parked.extend_from_slice(&self.scratch[taken..n]);
                    }
                    return Ok(true);
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return Ok(false);
                    }
                    backoff.wait();
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if is_reset(&err) => {
                    // A reset after data is an unclean close, as EOF without close_notify.
                    self.eof = true;
                    self.tls.push_eof();
                    return Ok(true);
                }
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// Completes the handshake.
    pub fn handshake(&mut self) -> Result<(), PumpError> {
        loop {
            let status = self.tls.connect();
            match status {
                Ok(Status::Done(())) => return Ok(()),
                Ok(Status::WantWrite) => self.flush("the handshake")?,
                Ok(Status::WantRead) => {
                    if !self.fill(self.timeout)? {
                        return Err(PumpError::Timeout("the handshake"));
                    }
                }
                Ok(Status::Closed) => {
                    return Err(PumpError::Tls(wasm_tls::Error::UnexpectedEof));
                }
                Err(err) => {
                    // Tell the peer why, as OpenSSL does: the alert is already queued.
                    let _ = self.flush("the alert");
                    return Err(err.into());
                }
            }
        }
    }

    /// Writes all of `data`.
    pub fn write_all(&mut self, mut data: &[u8]) -> Result<(), PumpError> {
        while !data.is_empty() {
            match self.tls.write(data)? {
                Status::Done(n) => {
                    data = &data[n..];
                    self.flush("a write")?;
                }
                Status::WantWrite => self.flush("a write")?,
                Status::WantRead => {
                    if !self.fill(self.timeout)? {
                        return Err(PumpError::Timeout("a write"));
                    }
                }
                Status::Closed => {
                    return Err(PumpError::Tls(wasm_tls::Error::InvalidState {
                        reason: "the peer closed the connection".to_owned(),
                    }))
                }
            }
        }
        Ok(())
    }

    /// Reads application data, waiting at most `wait` for the peer.
    pub fn read(&mut self, buf: &mut [u8], wait: Duration) -> Result<ReadOutcome, PumpError> {
        loop {
            self.unpark();
            match self.tls.read(buf) {
                Ok(Status::Done(n)) => return Ok(ReadOutcome::Data(n)),
                Ok(Status::Closed) => return Ok(ReadOutcome::Closed),
                Ok(Status::WantWrite) => self.flush("a read")?,
                Ok(Status::WantRead) => {
                    if !self.fill(wait)? {
                        return Ok(ReadOutcome::Idle);
                    }
                }
                Err(err) => return Err(err.into()),
            }
        }
    }

    fn unpark(&mut self) {
        if !self.parked.is_empty() {
            let taken = self.tls.push_ciphertext(&self.parked);
            self.parked.drain(..taken);
        }
    }

    /// Sends close_notify. Returns whether the peer's close_notify has arrived too.
    pub fn shutdown(&mut self) -> Result<bool, PumpError> {
        loop {
            match self.tls.shutdown()? {
                Status::WantWrite => self.flush("the shutdown")?,
                Status::Done(state) => return Ok(state == Shutdown::Complete),
                Status::WantRead | Status::Closed => return Ok(true),
            }
        }
    }
}

fn is_reset(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
    )
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
