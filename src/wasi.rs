//! The WebAssembly component (wasm32-wasip2): exports the `wasm-tls:client/tls`
//! interface of `wit/tls.wit`.
//!
//! This module only translates: the WIT `config` record into [`ConfigOptions`], [`Status`]
//! and [`Error`] into the WIT `ssl-error` variant, byte counts into `u32`. The TLS logic
//! is the core's. The bindings are generated from `wit/` at compile time, so a change
//! to the interface that this module does not follow fails the build.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use crate::{
    ClientAuthPem, Config, ConfigOptions, Error, Shutdown, SslError, Status, TlsClient, TlsVersion,
    BUFFER_LIMIT,
};

/// The generated bindings. Their glue code is `unsafe` by nature (it reads and writes
/// the canonical ABI's memory); nothing else in the crate is.
#[allow(unsafe_code, missing_docs, clippy::all, clippy::pedantic)]
mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "library",
    });
}

use bindings::exports::wasm_tls::client::tls as wit;

/// The component's export of the `tls` interface.
struct Component;

impl wit::Guest for Component {
    type Connection = Connection;
}

// The export glue is generated code too, and as unsafe as the bindings.
#[allow(unsafe_code)]
mod export {
    use super::{bindings, Component};
    bindings::export!(Component with_types_in bindings);
}

/// The stable code of `err`. Exhaustive on purpose: a new core error must get its WIT
/// case, which has the same kebab-case name as [`Error::code`].
fn error_code(err: &Error) -> wit::ErrorCode {
    use wit::ErrorCode as C;
    match err {
        Error::CertificateExpired { .. } => C::CertificateExpired,
        Error::CertificateNotYetValid { .. } => C::CertificateNotYetValid,
        Error::CertificateNameMismatch { .. } => C::CertificateNameMismatch,
        Error::CertificateSelfSigned { .. } => C::CertificateSelfSigned,
        Error::CertificateUnknownIssuer { .. } => C::CertificateUnknownIssuer,
        Error::CertificateRevoked => C::CertificateRevoked,
        Error::CertificateInvalidPurpose => C::CertificateInvalidPurpose,
        Error::CertificateBadSignature => C::CertificateBadSignature,
        Error::CertificateInvalid { .. } => C::CertificateInvalid,
        Error::PeerAlert { .. } => C::PeerAlert,
        Error::ProtocolVersion { .. } => C::ProtocolVersion,
        Error::HandshakeFailure { .. } => C::HandshakeFailure,
        Error::ClientCertificateRequired => C::ClientCertificateRequired,
        Error::NoApplicationProtocol => C::NoApplicationProtocol,
        Error::ProtocolViolation { .. } => C::ProtocolViolation,
        Error::DecryptError => C::DecryptError,
        Error::UnexpectedEof => C::UnexpectedEof,
        Error::Truncated => C::Truncated,
        Error::InvalidConfig { .. } => C::InvalidConfig,
        Error::InvalidState { .. } => C::InvalidState,
        Error::InvalidInput { .. } => C::InvalidInput,
        Error::Tls { .. } => C::Tls,
    }
}

fn reason(err: &Error) -> wit::Reason {
    wit::Reason {
        code: error_code(err),
        message: err.to_string(),
    }
}

fn ssl_error(err: &Error) -> wit::SslError {
    match err.ssl_error() {
        SslError::Syscall => wit::SslError::Syscall(reason(err)),
        _ => wit::SslError::Ssl(reason(err)),
    }
}

/// A core result in WIT terms: `Done` is ok, everything else an `ssl-error`.
fn outcome<T, U>(
    result: Result<Status<T>, Error>,
    done: impl FnOnce(T) -> U,
) -> Result<U, wit::SslError> {
    match result {
        Ok(Status::Done(value)) => Ok(done(value)),
        Ok(Status::WantRead) => Err(wit::SslError::WantRead),
        Ok(Status::WantWrite) => Err(wit::SslError::WantWrite),
        Ok(Status::Closed) => Err(wit::SslError::ZeroReturn),
        Err(err) => Err(ssl_error(&err)),
    }
}

fn invalid_input(reason: &str) -> wit::SslError {
    ssl_error(&Error::InvalidInput {
        reason: reason.to_owned(),
    })
}

/// Counts are bounded by [`BUFFER_LIMIT`] in practice; saturate rather than wrap.
fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn version(v: wit::TlsVersion) -> TlsVersion {
    match v {
        wit::TlsVersion::Tls12 => TlsVersion::Tls12,
        wit::TlsVersion::Tls13 => TlsVersion::Tls13,
    }
}

/// Key-log lines waiting for `take-key-log`, shared with the sink rustls calls.
type KeyLogLines = Arc<Mutex<Vec<String>>>;

/// The configuration for a WIT `config` record: the shared one for its options (see
/// [`ConfigOptions::shared`]), or one of its own when it logs keys, since those lines
/// belong to one connection.
fn config(record: wit::Config) -> Result<(Config, Option<KeyLogLines>), Error> {
    let mut options = ConfigOptions::new(record.server_name);
    options.roots_pem = record.extra_roots_pem;
    options.bundled_roots = record.bundled_roots;
    options.alpn = record.alpn;
    options.min_version = record.min_version.map(version);
    options.max_version = record.max_version.map(version);
    options.client_auth = record.client_auth.map(|auth| ClientAuthPem {
        cert_chain_pem: auth.cert_chain_pem,
        key_pem: auth.key_pem,
    });
    options.post_quantum = record.post_quantum;
    if !record.key_log {
        return Ok((options.shared()?, None));
    }
    let lines = KeyLogLines::default();
    let sink = lines.clone();
    let config = options
        .builder()
        .key_log(Arc::new(move |line: &str| {
            if let Ok(mut lines) = sink.lock() {
                lines.push(line.to_owned());
            }
        }))
        .build()?;
    Ok((config, Some(lines)))
}

/// The `connection` resource. Methods take `&self` (resources are shared handles in
/// the component model); the component is single-threaded and what it imports
/// (randomness, the clock) cannot call back into it, so the `RefCell` is never
/// borrowed twice.
pub struct Connection {
    tls: RefCell<TlsClient>,
    key_log: Option<KeyLogLines>,
}

impl Connection {
    fn with<R>(&self, f: impl FnOnce(&mut TlsClient) -> R) -> R {
        f(&mut self.tls.borrow_mut())
    }
}

impl wit::GuestConnection for Connection {
    fn create(record: wit::Config) -> Result<wit::Connection, wit::Reason> {
        let (config, key_log) = config(record).map_err(|err| reason(&err))?;
        let tls = TlsClient::new(&config).map_err(|err| reason(&err))?;
        Ok(wit::Connection::new(Connection {
            tls: RefCell::new(tls),
            key_log,
        }))
    }

    fn connect(&self) -> Result<(), wit::SslError> {
        outcome(self.with(TlsClient::connect), |()| ())
    }

    fn read(&self, max_bytes: u32) -> Result<Vec<u8>, wit::SslError> {
        if max_bytes == 0 {
            return Err(invalid_input("read of zero bytes"));
        }
        // Bounded so that a huge max-bytes does not allocate a huge buffer.
        let len = usize::try_from(max_bytes)
            .unwrap_or(usize::MAX)
            .min(BUFFER_LIMIT);
        let mut buf = vec![0; len];
        let n = outcome(self.with(|tls| tls.read(&mut buf)), |n| n)?;
        buf.truncate(n);
        Ok(buf)
    }

    fn write(&self, data: Vec<u8>) -> Result<u32, wit::SslError> {
        if data.is_empty() {
            return Err(invalid_input("write of no bytes"));
        }
        outcome(self.with(|tls| tls.write(&data)), count)
    }

    fn shutdown(&self) -> Result<wit::ShutdownState, wit::SslError> {
        outcome(self.with(TlsClient::shutdown), |state| match state {
            Shutdown::Sent => wit::ShutdownState::Sent,
            Shutdown::Complete => wit::ShutdownState::Complete,
        })
    }

    fn push_ciphertext(&self, bytes: Vec<u8>) -> u32 {
        count(self.with(|tls| tls.push_ciphertext(&bytes)))
    }

    fn push_eof(&self) {
        self.with(TlsClient::push_eof)
    }

    fn pending_ciphertext(&self) -> u32 {
        count(self.with(|tls| tls.pending_ciphertext()))
    }

    fn pull_ciphertext(&self, max_bytes: u32) -> Vec<u8> {
        self.with(|tls| {
            let len = usize::try_from(max_bytes)
                .unwrap_or(usize::MAX)
                .min(tls.pending_ciphertext());
            let mut out = vec![0; len];
            let n = tls.pull_ciphertext(&mut out);
            out.truncate(n);
            out
        })
    }

    fn pending_plaintext(&self) -> u32 {
        count(self.with(|tls| tls.pending_plaintext()))
    }

    fn is_handshaking(&self) -> bool {
        self.with(|tls| tls.is_handshaking())
    }

    fn handshake_info(&self) -> Option<wit::HandshakeInfo> {
        let info = self.with(|tls| tls.handshake_info())?;
        Some(wit::HandshakeInfo {
            version: match info.version {
                TlsVersion::Tls12 => wit::TlsVersion::Tls12,
                TlsVersion::Tls13 => wit::TlsVersion::Tls13,
            },
            alpn: info.alpn_str().map(str::to_owned),
            cipher_suite: info.cipher_suite,
            group: info.key_exchange_group,
            peer_certificates: info.peer_certificates,
            resumed: info.resumed,
        })
    }

    fn take_key_log(&self) -> Vec<String> {
        self.key_log
            .as_ref()
            .and_then(|lines| {
                lines
                    .lock()
                    .ok()
                    .map(|mut lines| std::mem::take(&mut *lines))
            })
            .unwrap_or_default()
    }
}
