//! # wasm-tls
//!
//! A TLS client for WebAssembly hosts (browsers, Node.js, WASI) and native code, on
//! [rustls], with OpenSSL's `SSL_connect(3)` contract over host buffers.
//!
//! The core never touches a socket. It reads and writes ciphertext through two buffers,
//! like a BIO pair, and every call either makes progress or says what it needs:
//!
//! ```text
//!            push_ciphertext / push_eof            connect / read / write / shutdown
//!  transport ───────────────────────────▶ TlsClient ◀──────────────────────────── application
//!            ◀─────────────────────────── (rustls)  ─────────────────────────────▶
//!            pull_ciphertext / take_ciphertext      Done | WantRead | WantWrite | Closed | Error
//! ```
//!
//! The host pumps: on [`Status::WantWrite`] it sends what [`TlsClient::take_ciphertext`]
//! returns; on [`Status::WantRead`] it waits for the transport and pushes what arrived;
//! then it calls again. A JS WebSocket, a WASI socket or a `TcpStream` are all such hosts.
//!
//! Certificate verification is always on (rustls-webpki); there is no way to turn it off.

// No unsafe code, except in the WASI component's generated bindings (src/wasi.rs),
// which allow it for themselves alone.
#![cfg_attr(
    not(all(target_os = "wasi", feature = "component")),
    forbid(unsafe_code)
)]
#![cfg_attr(all(target_os = "wasi", feature = "component"), deny(unsafe_code))]

mod certinfo;
mod config;
mod connection;
mod error;
mod info;
mod kx;
mod options;
mod pipe;
mod roots;
mod signature_cache;
mod signatures;
mod stream;

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub mod browser;

#[cfg(all(target_os = "wasi", feature = "component"))]
mod wasi;

pub use certinfo::{format_unix_time, CertificateSummary};
pub use config::{Clock, Config, ConfigBuilder, FixedClock, KeyLogSink, SystemClock, TlsVersion};
pub use connection::{Shutdown, Status, TlsClient, BUFFER_LIMIT};
pub use error::{Error, SslError};
pub use info::HandshakeInfo;
pub use kx::X25519MLKEM768;
pub use options::{register_bundled_roots, ClientAuthPem, ConfigOptions, SHARED_CONFIGS};
pub use pipe::{PipeState, TlsPipe};
#[cfg(feature = "bundled-roots")]
pub use roots::bundled_trust_anchors;
pub use roots::encode_trust_anchors;
pub use stream::Stream;
