//! What the tests, the benchmarks and the fuzz targets of wasm-tls share, written once
//! (after rustls' own `rustls-test`):
//!
//! - [`pki`]: the certificate factory (rcgen): roots, intermediates and leaves;
//! - [`server`]: rustls server configurations that present them;
//! - [`pair`]: a [`wasm_tls::TlsClient`] and a rustls server connected in memory;
//! - [`sealer`]: records of any content, encrypted with a finished server's keys.
//!
//! It builds for every target the core does, WebAssembly included, so that the
//! benchmarks run the same code natively, under wasmtime and in a browser.

pub mod pair;
#[cfg(feature = "pki")]
pub mod pki;
pub mod sealer;
pub mod server;
