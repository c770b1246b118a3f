//! [`TlsPipe`]: the core driven by whole buffers, for hosts that cannot afford a call per
//! `SSL_*` step (a JS event loop pays for every crossing into wasm).
//!
//! The host hands it what the transport delivered and gets back, from the same call, the
//! plaintext ready for the application and the ciphertext to send. It holds the rules
//! every pump must follow, so that hosts do not each write them again:
//!
//! - bytes the core cannot take yet (the application is behind) are left to the host,
//!   which offers them again once the application has read: [`TlsPipe::receive`] says
//!   how many it consumed;
//! - after a failure the pending ciphertext carries the alert that tells the peer why:
//!   the host sends what [`TlsPipe::take_ciphertext`] returns, then closes;
//! - a peer that closes during the handshake, cleanly or not, is an unexpected EOF;
//! - plaintext that arrived intact before a failure is delivered before the failure.

use crate::config::Config;
use crate::connection::{Status, TlsClient};
use crate::error::Error;
use crate::info::HandshakeInfo;

/// Where a [`TlsPipe`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipeState {
    /// The handshake is in progress.
    Handshaking,
    /// The handshake is complete; data flows.
    Open,
    /// The peer closed with `close_notify` and every byte before it has been delivered.
    Closed,
    /// The connection failed; [`TlsPipe::error`] says why.
    Failed,
}

impl PipeState {
    /// The state's name: `handshaking`, `open`, `closed` or `failed`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Handshaking => "handshaking",
            Self::Open => "open",
            Self::Closed => "closed",
            Self::Failed => "failed",
        }
    }
}

/// A TLS client over whole buffers; see the [module documentation](self).
///
/// ```no_run
/// # fn send(_: &[u8]) {}
/// # fn deliver(_: &[u8]) {}
/// use wasm_tls::{Config, PipeState, TlsPipe};
///
/// let config = Config::builder("example.com").build()?;
/// let mut pipe = TlsPipe::new(&config)?;
/// send(&pipe.take_ciphertext()); // the ClientHello
/// # let arrived: &[u8] = &[];
/// // For each message from the transport:
/// let mut plaintext = Vec::new();
/// let consumed = pipe.receive(arrived, 1 << 20, &mut plaintext);
/// deliver(&plaintext);
/// send(&pipe.take_ciphertext());
/// // Keep arrived[consumed..] and offer it again once the application has read.
/// if pipe.state() == PipeState::Failed { /* pipe.error() */ }
/// # Ok::<(), wasm_tls::Error>(())
/// ```
#[derive(Debug)]
pub struct TlsPipe {
    tls: TlsClient,
    state: PipeState,
    error: Option<Error>,
    /// Ciphertext for the host to send.
    outgoing: Vec<u8>,
    /// Whether our `close_notify` has been queued: no more writes.
    write_closed: bool,
}

impl TlsPipe {
    /// Makes a connection from `config` and queues its ClientHello.
    pub fn new(config: &Config) -> Result<Self, Error> {
        let mut pipe = Self {
            tls: TlsClient::new(config)?,
            state: PipeState::Handshaking,
            error: None,
            outgoing: Vec::new(),
            write_closed: false,
        };
        pipe.advance(0, &mut Vec::new());
        Ok(pipe)
    }

    /// Where the connection stands.
    pub fn state(&self) -> PipeState {
        self.state
    }

    /// Why the connection failed, once [`state`](Self::state) is [`PipeState::Failed`].
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// What was negotiated, once the handshake is complete.
    pub fn handshake_info(&self) -> Option<HandshakeInfo> {
        self.tls.handshake_info()
    }

    /// Ciphertext waiting to be sent.
    pub fn pending_ciphertext(&self) -> &[u8] {
        &self.outgoing
    }

    /// Takes the ciphertext waiting to be sent (empty if none).
    pub fn take_ciphertext(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.outgoing)
    }

    /// Takes `ciphertext` from the transport, drives the handshake, and appends up to
    /// `budget` bytes of decrypted application data to `plaintext`.
    ///
    /// Returns how many bytes of `ciphertext` it consumed. Fewer than all means the
    /// application is behind: keep the rest and offer it again (before anything that
    /// arrives later) once the application has read. A call with empty `ciphertext`
    /// delivers what is ready. After the connection closed or failed, bytes are
    /// consumed and discarded.
    pub fn receive(
        &mut self,
        mut ciphertext: &[u8],
        budget: usize,
        plaintext: &mut Vec<u8>,
    ) -> usize {
        let total = ciphertext.len();
        let start = plaintext.len();
        loop {
            if self.is_finished() {
                return total;
            }
            let taken = self.tls.push_ciphertext(ciphertext);
            ciphertext = &ciphertext[taken..];
            let before = plaintext.len();
            let left = budget.saturating_sub(before - start);
            self.advance(left, plaintext);
            let delivered = plaintext.len() > before;
            // Once the budget is spent, pushing goes on until the core holds all it
            // can without delivering; then nothing is taken and nothing delivered.
            if ciphertext.is_empty() || !(taken > 0 || delivered) {
                break;
            }
        }
        if self.is_finished() {
            return total;
        }
        total - ciphertext.len()
    }

    /// The transport reached EOF: no more bytes will come. Data before it is still
    /// delivered by [`receive`](Self::receive); then the connection is closed (after
    /// `close_notify`) or failed with [`Error::Truncated`] (without).
    pub fn receive_eof(&mut self, budget: usize, plaintext: &mut Vec<u8>) {
        self.tls.push_eof();
        self.advance(budget, plaintext);
    }

    /// Encrypts as much of `data` as it can and returns how many bytes it took; the
    /// ciphertext is then pending. Takes nothing during the handshake, and nothing after
    /// the connection ended.
    ///
    /// Fails, without failing the connection, after [`close`](Self::close).
    pub fn send(&mut self, mut data: &[u8]) -> Result<usize, Error> {
        if self.write_closed {
            return Err(Error::invalid_state("write after close"));
        }
        let total = data.len();
        while self.state == PipeState::Open && !data.is_empty() {
            match self.tls.write(data) {
                Ok(Status::Done(n)) => data = &data[n..],
                Ok(Status::WantWrite) => {}
                Ok(Status::WantRead | Status::Closed) => break,
                Err(err) => {
                    self.settle(err);
                    break;
                }
            }
            self.collect_ciphertext();
        }
        self.collect_ciphertext();
        Ok(total - data.len())
    }

    /// Queues `close_notify`: no more writes; the peer's data may still arrive. After
    /// the peer's own `close_notify` it is the reply that RFC 8446 §6.1 asks for before
    /// the transport closes. During the handshake there is nothing to close: it fails
    /// with [`Error::InvalidState`] and the host closes the transport instead.
    pub fn close(&mut self) -> Result<(), Error> {
        if self.write_closed || self.state == PipeState::Failed {
            self.write_closed = true;
            return Ok(());
        }
        loop {
            match self.tls.shutdown() {
                Ok(Status::WantWrite) => self.collect_ciphertext(),
                Ok(_) => break,
                Err(err) => {
                    self.settle(err.clone());
                    if self.state != PipeState::Failed {
                        return Err(err);
                    }
                    break;
                }
            }
        }
        self.write_closed = true;
        self.collect_ciphertext();
        Ok(())
    }

    fn is_finished(&self) -> bool {
        matches!(self.state, PipeState::Closed | PipeState::Failed)
    }

    fn collect_ciphertext(&mut self) {
        let bytes = self.tls.take_ciphertext();
        if self.outgoing.is_empty() {
            self.outgoing = bytes;
        } else {
            self.outgoing.extend_from_slice(&bytes);
        }
    }

    /// Records a connection error; a misuse error leaves the connection as it is.
    fn settle(&mut self, err: Error) {
        if self.tls.failure().is_some()
            || !matches!(err, Error::InvalidState { .. } | Error::InvalidInput { .. })
        {
            self.state = PipeState::Failed;
            self.error.get_or_insert(err);
        }
    }

    /// Drives the handshake, then decrypts up to `budget` bytes into `plaintext`.
    fn advance(&mut self, budget: usize, plaintext: &mut Vec<u8>) {
        while self.state == PipeState::Handshaking {
            match self.tls.connect() {
                Ok(Status::Done(())) => self.state = PipeState::Open,
                Ok(Status::WantWrite) => self.collect_ciphertext(),
                Ok(Status::WantRead) => break,
                Ok(Status::Closed) => self.settle(Error::UnexpectedEof),
                Err(err) => self.settle(err),
            }
        }
        let start = plaintext.len();
        while self.state == PipeState::Open {
            let left = budget.saturating_sub(plaintext.len() - start);
            if left == 0 {
                break;
            }
            match self.tls.read_to_vec(plaintext, left) {
                Ok(Status::Done(_)) => {}
                Ok(Status::WantWrite) => self.collect_ciphertext(),
                Ok(Status::WantRead) => break,
                Ok(Status::Closed) => self.state = PipeState::Closed,
                Err(err) => self.settle(err),
            }
        }
        self.collect_ciphertext();
    }
}
