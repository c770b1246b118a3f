//! [`Stream`]: the core over a blocking (or non-blocking) byte stream, as rustls'
//! `StreamOwned` is: `Read` and `Write` over any `T: Read + Write`.
//!
//! It holds, once, the rules every socket pump must follow:
//!
//! - bytes [`TlsClient::push_ciphertext`] refused (the application is behind) are kept
//!   and offered again before anything more is read from the socket;
//! - ciphertext the socket did not take (`WouldBlock`, a timeout) stays queued and is
//!   sent before anything else, so a non-blocking socket loses nothing;
//! - after a failure, the pending ciphertext (the alert that tells the peer why) is sent
//!   before the error is returned;
//! - a peer that closes during the handshake, cleanly or not, is an unexpected EOF;
//! - EOF from the socket (and a reset, an unclean close) is [`TlsClient::push_eof`]: a
//!   clean `close_notify` reads as `Ok(0)`, EOF without it as an error of kind
//!   `UnexpectedEof` carrying [`Error::Truncated`];
//! - a socket that refuses our bytes because the peer is gone does not hide the peer's
//!   reason: the stream stops sending and goes on reading, so the core reports the
//!   peer's alert (or the EOF) rather than a broken pipe.
//!
//! Errors of the core are `io::Error`s whose inner error is the [`Error`]:
//!
//! ```no_run
//! # fn f(e: std::io::Error) {
//! if let Some(err) = e.get_ref().and_then(|e| e.downcast_ref::<wasm_tls::Error>()) {
//!     eprintln!("{err} [{}]", err.code());
//! }
//! # }
//! ```
//!
//! Socket errors are returned as they are; after `WouldBlock` or `Interrupted`, call
//! again.

use std::io::{self, Read, Write};

use crate::connection::{Shutdown, Status, TlsClient};
use crate::error::Error;
use crate::info::HandshakeInfo;

/// Bytes read from the socket at a time: a full record and its overhead.
const READ_SIZE: usize = 17 * 1024;

/// A [`TlsClient`] over a socket; see the [module documentation](self).
///
/// ```no_run
/// use std::io::{Read, Write};
/// use wasm_tls::{Config, Stream, TlsClient};
///
/// let config = Config::builder("example.com").build()?;
/// let socket = std::net::TcpStream::connect("example.com:443")?;
/// let mut tls = Stream::new(TlsClient::new(&config)?, socket);
/// tls.connect()?;
/// tls.write_all(b"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")?;
/// let mut response = Vec::new();
/// tls.read_to_end(&mut response)?; // Ok only after close_notify
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// `T` may be a reference (`&mut TcpStream`) to keep the socket. The parts are public, as
/// in rustls' `StreamOwned`; the bytes the stream holds between calls (refused and unsent
/// ciphertext) are not in them.
#[derive(Debug)]
pub struct Stream<T> {
    /// The connection.
    pub tls: TlsClient,
    /// The socket.
    pub sock: T,
    /// Received ciphertext the core refused; offered again before reading more.
    parked: Vec<u8>,
    /// Ciphertext for the socket; `outgoing[sent..]` is unsent.
    outgoing: Vec<u8>,
    sent: usize,
    /// The socket refused our bytes because the peer is gone: send nothing more.
    peer_gone: bool,
    scratch: Vec<u8>,
}

impl<T: Read + Write> Stream<T> {
    /// Wraps a connected socket. Nothing is sent until the first call.
    pub fn new(tls: TlsClient, sock: T) -> Self {
        Self {
            tls,
            sock,
            parked: Vec::new(),
            outgoing: Vec::new(),
            sent: 0,
            peer_gone: false,
            scratch: Vec::new(),
        }
    }

    /// Completes the handshake (`read` and `write` do it too, when needed).
    pub fn connect(&mut self) -> io::Result<()> {
        loop {
            match self.tls.connect() {
                Ok(Status::Done(())) => return Ok(()),
                Ok(Status::WantWrite) => self.send()?,
                Ok(Status::WantRead) => self.fill()?,
                Ok(Status::Closed) => return Err(to_io(Error::UnexpectedEof)),
                Err(err) => return Err(self.fail(err)),
            }
        }
    }

    /// Sends `close_notify` (without waiting for the peer's) and returns how far the
    /// closing has got.
    pub fn shutdown(&mut self) -> io::Result<Shutdown> {
        loop {
            match self.tls.shutdown() {
                Ok(Status::WantWrite) => self.send()?,
                Ok(Status::Done(state)) => {
                    self.send()?;
                    return Ok(state);
                }
                Ok(Status::WantRead | Status::Closed) => return Ok(Shutdown::Complete),
                Err(err) => return Err(self.fail(err)),
            }
        }
    }

    /// What was negotiated, once the handshake is complete.
    pub fn handshake_info(&self) -> Option<HandshakeInfo> {
        self.tls.handshake_info()
    }

    /// The connection and the socket. Bytes the stream still held are dropped.
    pub fn into_parts(self) -> (TlsClient, T) {
        (self.tls, self.sock)
    }

    /// Sends what is queued, the core's pending ciphertext included.
    fn send(&mut self) -> io::Result<()> {
        let more = self.tls.take_ciphertext();
        if self.peer_gone {
            return Ok(());
        }
        if self.sent == self.outgoing.len() {
            self.outgoing = more;
            self.sent = 0;
        } else {
            self.outgoing.extend_from_slice(&more);
        }
        if self.sent == self.outgoing.len() {
            return Ok(());
        }
        while self.sent < self.outgoing.len() {
            match self.sock.write(&self.outgoing[self.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if is_gone(&err) => {
                    // Its alert or its EOF, read next, says why better than EPIPE.
                    self.peer_gone = true;
                    break;
                }
                Err(err) => return Err(err),
            }
        }
        self.outgoing.clear();
        self.sent = 0;
        if self.peer_gone {
            return Ok(());
        }
        self.sock.flush()
    }

    /// Pushes what the socket delivers (or EOF), the refused bytes first.
    fn fill(&mut self) -> io::Result<()> {
        // The peer may be waiting for what an earlier call could not send.
        self.send()?;
        if !self.parked.is_empty() {
            let taken = self.tls.push_ciphertext(&self.parked);
            self.parked.drain(..taken);
            if taken > 0 {
                return Ok(());
            }
            // The core refuses only while plaintext waits to be read, and then it does
            // not ask for more input.
            return Err(to_io(Error::InvalidState {
                reason: "the core asked for input while refusing it".to_owned(),
            }));
        }
        if self.scratch.is_empty() {
            self.scratch = vec![0; READ_SIZE];
        }
        loop {
            match self.sock.read(&mut self.scratch) {
                Ok(0) => {
                    self.tls.push_eof();
                    return Ok(());
                }
                Ok(n) => {
                    let taken = self.tls.push_ciphertext(&self.scratch[..n]);
                    self.parked.extend_from_slice(&self.scratch[taken..n]);
                    return Ok(());
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if is_gone(&err) => {
                    // A reset is an unclean close, as EOF without close_notify.
                    self.tls.push_eof();
                    return Ok(());
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Sends the alert the failure queued (best effort), then gives the error.
    fn fail(&mut self, err: Error) -> io::Error {
        let _ = self.send();
        to_io(err)
    }
}

impl<T: Read + Write> Read for Stream<T> {
    /// Reads application data; `Ok(0)` after the peer's `close_notify` (or for an empty
    /// `buf`). EOF without `close_notify` is an `UnexpectedEof` error carrying
    /// [`Error::Truncated`].
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if !self.parked.is_empty() {
                let taken = self.tls.push_ciphertext(&self.parked);
                self.parked.drain(..taken);
            }
            match self.tls.read(buf) {
                Ok(Status::Done(n)) => return Ok(n),
                Ok(Status::Closed) if self.tls.is_handshaking() => {
                    return Err(to_io(Error::UnexpectedEof))
                }
                Ok(Status::Closed) => return Ok(0),
                Ok(Status::WantWrite) => self.send()?,
                Ok(Status::WantRead) => self.fill()?,
                Err(err) => return Err(self.fail(err)),
            }
        }
    }
}

impl<T: Read + Write> Write for Stream<T> {
    /// Encrypts some of `buf` (completing the handshake first) and sends it. Ciphertext
    /// the socket does not take at once stays queued: the next call, or `flush`, sends
    /// it first.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.send()?;
        if self.peer_gone {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        loop {
            match self.tls.write(buf) {
                Ok(Status::Done(n)) => {
                    // The data is taken: a socket error now is reported by the next call.
                    let _ = self.send();
                    return Ok(n);
                }
                Ok(Status::WantWrite) => self.send()?,
                Ok(Status::WantRead) => self.fill()?,
                Ok(Status::Closed) => return Err(to_io(Error::UnexpectedEof)),
                Err(err) => return Err(self.fail(err)),
            }
        }
    }

    /// Sends every byte of queued ciphertext, then flushes the socket.
    fn flush(&mut self) -> io::Result<()> {
        self.send()?;
        if self.peer_gone {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        self.sock.flush()
    }
}

/// Whether a socket error means the peer is gone.
fn is_gone(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
    )
}

/// The core's error as an `io::Error` carrying it.
fn to_io(err: Error) -> io::Error {
    let kind = match &err {
        Error::UnexpectedEof | Error::Truncated => io::ErrorKind::UnexpectedEof,
        Error::InvalidInput { .. } | Error::InvalidConfig { .. } => io::ErrorKind::InvalidInput,
        Error::InvalidState { .. } => io::ErrorKind::Other,
        _ => io::ErrorKind::InvalidData,
    };
    io::Error::new(kind, err)
}
