//! Certificates made at start-up by the test kit's factory: a root CA and a leaf for
//! `localhost` under it. The server sends the leaf; the client trusts the root. Verifying the chain
//! therefore costs one signature check, and the handshake's CertificateVerify another.

use std::sync::Arc;

use rustls::crypto::ring::default_provider;
use rustls::server::ServerSessionMemoryCache;
use rustls::{CipherSuite, ServerConfig, SupportedProtocolVersion};
pub use wasm_tls_test_kit::pki::Identity;
use wasm_tls_test_kit::pki::{ecdsa_p256_key, rsa_key};

fn err(what: &str) -> impl Fn(wasm_tls_test_kit::pki::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// ECDSA P-256 root and leaf.
pub fn ecdsa() -> Result<Identity, String> {
    let key = || ecdsa_p256_key().map_err(err("generate a key"));
    Identity::localhost(key()?, key()?).map_err(err("make the certificates"))
}

/// RSA-2048 root and leaf from two PKCS#8 PEM keys (ring cannot generate RSA keys).
pub fn rsa(ca_key_pem: &str, leaf_key_pem: &str) -> Result<Identity, String> {
    let load = |pem: &str| rsa_key(pem).map_err(err("load an RSA key"));
    Identity::localhost(load(ca_key_pem)?, load(leaf_key_pem)?)
        .map_err(err("make the certificates"))
}

/// A rustls server configuration: ring, the given versions, and optionally one cipher
/// suite only (to force it). Its session cache holds every ticket a benchmark issues.
pub fn server_config(
    id: &Identity,
    versions: &[&'static SupportedProtocolVersion],
    suite: Option<CipherSuite>,
) -> Result<Arc<ServerConfig>, String> {
    let mut provider = default_provider();
    if let Some(suite) = suite {
        provider.cipher_suites.retain(|s| s.suite() == suite);
    }
    let mut config = wasm_tls_test_kit::server::server_config_with(
        Arc::new(provider),
        id.chain.clone(),
        id.key.clone_key(),
        versions,
    )
    .map_err(|e| format!("server: {e}"))?;
    config.session_storage = ServerSessionMemoryCache::new(8192);
    Ok(Arc::new(config))
}

/// The client's configuration: this root only, resumption on or off, TLS 1.2 only or
/// the default (1.2 and 1.3).
pub fn client_config(
    id: &Identity,
    tls12_only: bool,
    resumption: bool,
) -> Result<wasm_tls::Config, String> {
    let mut builder = wasm_tls::Config::builder("localhost")
        .without_bundled_roots()
        .add_root_der(&id.root_der)
        .resumption(resumption);
    if tls12_only {
        builder = builder.max_version(wasm_tls::TlsVersion::Tls12);
    }
    builder.build().map_err(|e| format!("client config: {e}"))
}
