//! The TLS client state machine, after OpenSSL's `SSL_connect(3)`, `SSL_read(3)`,
//! `SSL_write(3)` and `SSL_shutdown(3)` over a BIO pair.
//!
//! The network side is two buffers the host pumps: it pushes what the transport
//! delivered with [`TlsClient::push_ciphertext`] (or [`TlsClient::push_eof`]) and sends
//! what [`TlsClient::pull_ciphertext`] hands it. The application side is `connect`,
//! `read`, `write` and `shutdown`, each of which either makes progress or says what it
//! needs: [`Status::WantRead`] or [`Status::WantWrite`].

use std::io;

use rustls::ClientConnection;

use crate::config::{Config, TlsVersion};
use crate::error::{Error, SslError};
use crate::info::HandshakeInfo;

/// How much unsent ciphertext the core holds before `write` pushes back (plus at most one
/// record's overhead). On the receiving side rustls bounds unread plaintext at 16 KiB,
/// after which `push_ciphertext` takes no more.
pub const BUFFER_LIMIT: usize = 64 * 1024;

/// The outcome of a call that did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Status<T> {
    /// The call completed with this value.
    Done(T),
    /// Push ciphertext from the peer (or EOF), then call again.
    WantRead,
    /// Pull the pending ciphertext and send it to the peer, then call again.
    WantWrite,
    /// The peer closed the connection cleanly with `close_notify` (`SSL_ERROR_ZERO_RETURN`).
    Closed,
}

impl<T> Status<T> {
    /// The `SSL_get_error` class of this outcome.
    pub fn ssl_error(&self) -> SslError {
        match self {
            Self::Done(_) => SslError::None,
            Self::WantRead => SslError::WantRead,
            Self::WantWrite => SslError::WantWrite,
            Self::Closed => SslError::ZeroReturn,
        }
    }

    /// The value, if the call completed.
    pub fn done(self) -> Option<T> {
        match self {
            Self::Done(value) => Some(value),
            _ => None,
        }
    }
}

/// How far a shutdown has got, as `SSL_shutdown` returns 0 or 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Our `close_notify` is sent; the peer's has not arrived (`SSL_shutdown` returns 0).
    Sent,
    /// Both `close_notify` alerts have been exchanged (`SSL_shutdown` returns 1).
    Complete,
}

/// A TLS client connection that never touches a socket.
///
/// ```no_run
/// # fn send(_: &[u8]) {}
/// # fn receive() -> Vec<u8> { Vec::new() }
/// use wasm_tls::{Config, Status, TlsClient};
///
/// let config = Config::builder("example.com").build()?;
/// let mut tls = TlsClient::new(&config)?;
/// loop {
///     match tls.connect()? {
///         Status::Done(()) => break,
///         Status::WantWrite => send(&tls.take_ciphertext()),
///         Status::WantRead => {
///             let bytes = receive();
///             if bytes.is_empty() { tls.push_eof() } else { tls.push_ciphertext(&bytes); }
///         }
///         Status::Closed => return Ok(()),
///     }
/// }
/// # Ok::<(), wasm_tls::Error>(())
/// ```
pub struct TlsClient {
    conn: ClientConnection,
    /// The first fatal error; every later call returns it again.
    failed: Option<Error>,
    /// The `SSL_get_error` class of the last call.
    last: SslError,
    eof_pushed: bool,
    close_notify_sent: bool,
    peer_closed: bool,
    /// Ciphertext drained from rustls, waiting for the host; `outgoing[sent..]` is unsent.
    outgoing: Vec<u8>,
    sent: usize,
    /// Received plaintext not yet read, as rustls last reported it.
    plaintext_ready: usize,
    /// Whether the fatal error was the peer's alert (a close "by the specifications").
    failed_by_peer_alert: bool,
    /// Whether `connect` has reported `Done` once.
    handshake_reported: bool,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("handshaking", &self.conn.is_handshaking())
            .field("failed", &self.failed)
            .field("pending_ciphertext", &self.pending_ciphertext())
            .finish_non_exhaustive()
    }
}

impl TlsClient {
    /// Makes a connection from `config`. Nothing is sent until the first `connect` (or
    /// `write`/`read`), whose first [`Status::WantWrite`] carries the ClientHello.
    pub fn new(config: &Config) -> Result<Self, Error> {
        let mut conn = ClientConnection::new(config.rustls.clone(), config.server_name.clone())
            .map_err(Error::from)?;
        conn.set_buffer_limit(Some(BUFFER_LIMIT));
        Ok(Self {
            conn,
            failed: None,
            last: SslError::None,
            eof_pushed: false,
            close_notify_sent: false,
            peer_closed: false,
            handshake_reported: false,
            failed_by_peer_alert: false,
            outgoing: Vec::new(),
            sent: 0,
            plaintext_ready: 0,
        })
    }

    // ---- the network side (the BIO pair) ----

    /// Hands the core bytes the transport received. Returns how many it took: all of
    /// them, unless too much received plaintext is waiting to be [`read`](Self::read),
    /// in which case the host keeps the rest and pushes it after reading. Never fails:
    /// a TLS error the bytes cause is reported by the next `connect`, `read`, `write` or
    /// `shutdown`. After a fatal error, bytes are taken and discarded. Bytes the host
    /// still held when it reported EOF may be pushed after [`push_eof`](Self::push_eof):
    /// they count as coming before it.
    pub fn push_ciphertext(&mut self, mut bytes: &[u8]) -> usize {
        let total = bytes.len();
        if self.failed.is_some() {
            return total;
        }
        // Set when rustls refused bytes; a second refusal in a row, with the buffered
        // records processed in between, means the host must read plaintext first.
        let mut refused = false;
        while !bytes.is_empty() {
            match self.conn.read_tls(&mut bytes) {
                // close_notify was processed: rustls reads nothing more, and neither does
                // TLS (RFC 8446 section 6.1): what follows is discarded.
                Ok(0) => return total,
                Ok(_) => refused = false,
                Err(_) if refused => return total - bytes.len(),
                Err(_) => refused = true,
            }
            if !self.process() {
                return total;
            }
        }
        total
    }

    /// Tells the core the transport reached EOF: no more bytes will come. A connection
    /// that had not received `close_notify` reports [`Error::UnexpectedEof`] (during the
    /// handshake) or [`Error::Truncated`] (after it) once the data before EOF is read.
    pub fn push_eof(&mut self) {
        if self.eof_pushed {
            return;
        }
        self.eof_pushed = true;
        if self.failed.is_none() {
            let _ = self.conn.read_tls(&mut io::empty());
            self.process();
        }
    }

    /// How many bytes of ciphertext are waiting to be sent.
    pub fn pending_ciphertext(&self) -> usize {
        self.outgoing.len() - self.sent
    }

    /// Copies pending ciphertext into `out` and returns how many bytes it copied; they
    /// are gone from the core. Copy until it returns 0.
    pub fn pull_ciphertext(&mut self, out: &mut [u8]) -> usize {
        let pending = &self.outgoing[self.sent..];
        let n = pending.len().min(out.len());
        out[..n].copy_from_slice(&pending[..n]);
        self.sent += n;
        if self.sent == self.outgoing.len() {
            self.outgoing.clear();
            self.sent = 0;
        }
        n
    }

    /// Takes all pending ciphertext as one buffer, without copying it.
    pub fn take_ciphertext(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.outgoing);
        if self.sent > 0 {
            out.drain(..self.sent);
            self.sent = 0;
        }
        out
    }

    /// Moves what rustls has queued into `outgoing`.
    fn drain_rustls(&mut self) {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.outgoing) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }

    // ---- the application side (SSL_connect, SSL_read, SSL_write, SSL_shutdown) ----

    /// Drives the handshake, as `SSL_connect` does.
    ///
    /// Returns [`Status::Done`] once the handshake is complete and the client's last
    /// flight has been pulled; [`Status::WantWrite`] while ciphertext waits to be sent;
    /// [`Status::WantRead`] when it needs the peer's bytes; [`Status::Closed`] if the peer
    /// closed with `close_notify`; and the error if the handshake failed (when that error
    /// is the peer's fatal alert, [`TlsClient::closed_by_peer_alert`] is true).
    /// Called again after the handshake, it returns `Done` at once.
    pub fn connect(&mut self) -> Result<Status<()>, Error> {
        let status = self.drive_handshake();
        self.record(status)
    }

    /// Reads decrypted application data into `buf`, as `SSL_read` does; drives the
    /// handshake first if it is not complete.
    ///
    /// `Done(n)` has `n > 0` unless `buf` is empty. [`Status::Closed`] means the peer's
    /// `close_notify` arrived and everything before it has been read.
    /// [`Error::Truncated`] means the transport ended without `close_notify`.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<Status<usize>, Error> {
        let status = self.read_inner(&mut ReadInto::Slice(buf));
        self.record(status)
    }

    /// Reads as [`read`](Self::read) does, but appends up to `max` bytes to `out`
    /// without zeroing space for them first.
    pub fn read_to_vec(&mut self, out: &mut Vec<u8>, max: usize) -> Result<Status<usize>, Error> {
        let status = self.read_inner(&mut ReadInto::Vec(out, max));
        self.record(status)
    }

    /// Encrypts application data, as `SSL_write` does; drives the handshake first if it
    /// is not complete, and takes no data until it is (call again with the same bytes).
    ///
    /// `Done(n)` means the first `n` bytes were taken, and their ciphertext is pending:
    /// pull it. `n` is less than `data.len()` when the pending ciphertext reached
    /// [`BUFFER_LIMIT`]; then `WantWrite` is returned if nothing could be taken.
    pub fn write(&mut self, data: &[u8]) -> Result<Status<usize>, Error> {
        let status = self.write_inner(data);
        self.record(status)
    }

    /// Sends `close_notify`, as `SSL_shutdown` does.
    ///
    /// Returns [`Status::WantWrite`] until the alert has been pulled, then
    /// `Done(Shutdown::Sent)` until the peer's `close_notify` has been pushed, then
    /// `Done(Shutdown::Complete)`. A client that will not read further need not wait
    /// for the peer's alert.
    pub fn shutdown(&mut self) -> Result<Status<Shutdown>, Error> {
        let status = self.shutdown_inner();
        self.record(status)
    }

    /// The `SSL_get_error` class of the last `connect`, `read`, `write` or `shutdown`.
    pub fn ssl_error(&self) -> SslError {
        self.last
    }

    /// Whether the connection ended because the peer sent a fatal alert: OpenSSL's
    /// "shut down controlled", for which `SSL_connect` returns 0 rather than -1.
    pub fn closed_by_peer_alert(&self) -> bool {
        self.failed.is_some() && self.failed_by_peer_alert
    }

    /// The fatal error this connection failed with, if it has.
    pub fn failure(&self) -> Option<&Error> {
        self.failed.as_ref()
    }

    /// Whether the handshake is still in progress.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Bytes of received plaintext ready to [`read`](Self::read) without more input.
    pub fn pending_plaintext(&self) -> usize {
        self.plaintext_ready
    }

    /// Whether the peer's `close_notify` has arrived.
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// What was negotiated; `None` until the handshake is complete.
    pub fn handshake_info(&self) -> Option<HandshakeInfo> {
        if self.conn.is_handshaking() {
            return None;
        }
        let version = match self.conn.protocol_version()? {
            rustls::ProtocolVersion::TLSv1_3 => TlsVersion::Tls13,
            _ => TlsVersion::Tls12,
        };
        let suite = self.conn.negotiated_cipher_suite()?;
        Some(HandshakeInfo {
            version,
            cipher_suite: suite.suite().as_str().unwrap_or("unknown").to_owned(),
            key_exchange_group: self
                .conn
                .negotiated_key_exchange_group()
                .map(|g| format!("{:?}", g.name())),
            alpn: self.conn.alpn_protocol().map(<[u8]>::to_vec),
            peer_certificates: self
                .conn
                .peer_certificates()
                .map(|chain| chain.iter().map(|c| c.as_ref().to_vec()).collect())
                .unwrap_or_default(),
            resumed: matches!(
                self.conn.handshake_kind(),
                Some(rustls::HandshakeKind::Resumed)
            ),
        })
    }

    // ---- internals ----

    /// Processes buffered records. Returns false if the connection failed.
    fn process(&mut self) -> bool {
        match self.conn.process_new_packets() {
            Ok(state) => {
                if state.peer_has_closed() {
                    self.peer_closed = true;
                }
                self.plaintext_ready = state.plaintext_bytes_to_read();
                self.drain_rustls();
                true
            }
            Err(rustls::Error::AlertReceived(rustls::AlertDescription::CloseNotify))
                if self.conn.is_handshaking() =>
            {
                // The peer closed cleanly before the handshake completed: SSL_connect's
                // "shut down controlled", ZERO_RETURN, not a failure of ours.
                self.peer_closed = true;
                false
            }
            Err(err) => {
                if self.failed.is_none() {
                    self.failed_by_peer_alert = matches!(err, rustls::Error::AlertReceived(_));
                }
                self.fail(Error::from(err));
                // rustls queued the alert that tells the peer why.
                self.drain_rustls();
                false
            }
        }
    }

    fn fail(&mut self, err: Error) {
        if self.failed.is_none() {
            self.failed = Some(err);
        }
    }

    fn check(&self) -> Result<(), Error> {
        match &self.failed {
            Some(err) => Err(err.clone()),
            None => Ok(()),
        }
    }

    fn record<T>(&mut self, status: Result<Status<T>, Error>) -> Result<Status<T>, Error> {
        self.drain_rustls();
        self.last = match &status {
            Ok(s) => s.ssl_error(),
            Err(e) => e.ssl_error(),
        };
        status
    }

    /// What to ask the host for when no progress is possible without it.
    fn want<T>(&mut self) -> Result<Status<T>, Error> {
        self.drain_rustls();
        if self.pending_ciphertext() > 0 {
            Ok(Status::WantWrite)
        } else if self.eof_pushed {
            Err(if self.conn.is_handshaking() {
                Error::UnexpectedEof
            } else {
                Error::Truncated
            })
        } else {
            Ok(Status::WantRead)
        }
    }

    fn drive_handshake(&mut self) -> Result<Status<()>, Error> {
        self.check()?;
        // Records may wait in the deframer if a push stopped early.
        if !self.process() {
            self.check()?;
        }
        if self.conn.is_handshaking() {
            if self.peer_closed {
                return Ok(Status::Closed);
            }
            let status = self.want();
            if let Err(err) = &status {
                self.fail(err.clone());
            }
            return status;
        }
        self.drain_rustls();
        if !self.handshake_reported && self.pending_ciphertext() > 0 {
            // The client's final flight is still queued: have it sent before reporting
            // done, so a host that stops pumping on Done has delivered it.
            return Ok(Status::WantWrite);
        }
        self.handshake_reported = true;
        Ok(Status::Done(()))
    }

    fn read_inner(&mut self, buf: &mut ReadInto<'_>) -> Result<Status<usize>, Error> {
        if self.failed.is_some() {
            // Data that arrived intact before the failure is delivered first, as OpenSSL
            // does; then the error.
            if !buf.is_empty() && !self.conn.is_handshaking() {
                if let Ok(n @ 1..) = buf.read_from(&mut self.conn.reader()) {
                    return Ok(Status::Done(n));
                }
            }
            self.check()?;
        }
        match self.drive_handshake()? {
            Status::Done(()) => {}
            Status::WantRead => return Ok(Status::WantRead),
            Status::WantWrite => return Ok(Status::WantWrite),
            Status::Closed => return Ok(Status::Closed),
        }
        if buf.is_empty() {
            return Ok(Status::Done(0));
        }
        let result = buf.read_from(&mut self.conn.reader());
        match result {
            Ok(0) => Ok(Status::Closed),
            Ok(n) => {
                self.plaintext_ready = self.plaintext_ready.saturating_sub(n);
                // Reading made room: take in records a full buffer held back.
                self.process();
                Ok(Status::Done(n))
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                if self.eof_pushed {
                    self.fail(Error::Truncated);
                    return Err(Error::Truncated);
                }
                self.want()
            }
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => {
                self.fail(Error::Truncated);
                Err(Error::Truncated)
            }
            Err(err) => {
                let err = Error::Tls {
                    reason: err.to_string(),
                };
                self.fail(err.clone());
                Err(err)
            }
        }
    }

    fn write_inner(&mut self, data: &[u8]) -> Result<Status<usize>, Error> {
        if self.close_notify_sent {
            self.check()?;
            return Err(Error::invalid_state("write after shutdown"));
        }
        match self.drive_handshake()? {
            Status::Done(()) => {}
            Status::WantRead => return Ok(Status::WantRead),
            Status::WantWrite => return Ok(Status::WantWrite),
            Status::Closed => return Ok(Status::Closed),
        }
        if data.is_empty() {
            return Ok(Status::Done(0));
        }
        // Bound what waits for the host: take no more than fits under the limit.
        let room = BUFFER_LIMIT.saturating_sub(self.pending_ciphertext());
        if room == 0 {
            return Ok(Status::WantWrite);
        }
        let data = &data[..data.len().min(room)];
        match io::Write::write(&mut self.conn.writer(), data) {
            Ok(0) => Ok(Status::WantWrite),
            Ok(n) => Ok(Status::Done(n)),
            Err(err) => Err(Error::Tls {
                reason: err.to_string(),
            }),
        }
    }

    fn shutdown_inner(&mut self) -> Result<Status<Shutdown>, Error> {
        self.check()?;
        if self.conn.is_handshaking() && !self.close_notify_sent {
            // As SSL_shutdown: there is no connection to close yet.
            return Err(Error::invalid_state(
                "shutdown during the handshake; to abandon it, close the transport",
            ));
        }
        if !self.close_notify_sent {
            self.conn.send_close_notify();
            self.close_notify_sent = true;
        }
        self.drain_rustls();
        if self.pending_ciphertext() > 0 {
            return Ok(Status::WantWrite);
        }
        if self.peer_closed {
            Ok(Status::Done(Shutdown::Complete))
        } else {
            Ok(Status::Done(Shutdown::Sent))
        }
    }
}

/// Where a read puts the plaintext: a caller's buffer, or the end of a vector (up to a
/// bound), which spares zeroing the space first.
enum ReadInto<'a> {
    Slice(&'a mut [u8]),
    Vec(&'a mut Vec<u8>, usize),
}

impl ReadInto<'_> {
    fn is_empty(&self) -> bool {
        match self {
            Self::Slice(buf) => buf.is_empty(),
            Self::Vec(_, max) => *max == 0,
        }
    }

    /// Reads as `io::Read::read` does: `Ok(0)` after close_notify, `WouldBlock` when
    /// nothing is ready, `UnexpectedEof` after an EOF without close_notify.
    fn read_from(&mut self, reader: &mut rustls::Reader<'_>) -> io::Result<usize> {
        match self {
            Self::Slice(buf) => io::Read::read(reader, buf),
            Self::Vec(out, max) => {
                let chunk = io::BufRead::fill_buf(reader)?;
                let n = chunk.len().min(*max);
                out.extend_from_slice(&chunk[..n]);
                io::BufRead::consume(reader, n);
                Ok(n)
            }
        }
    }
}
