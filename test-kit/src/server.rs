//! rustls server configurations for the test PKI: ring, the versions asked for, one
//! certificate chain.

use std::sync::Arc;

use rustls::crypto::ring::default_provider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, SupportedProtocolVersion};

/// A server configuration presenting `chain` (leaf first) with `key`, for `versions`
/// (rustls' safe defaults when empty), without client authentication. Callers adjust
/// the rest (secret extraction, session storage) before sharing it.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    versions: &[&'static SupportedProtocolVersion],
) -> Result<ServerConfig, rustls::Error> {
    server_config_with(Arc::new(default_provider()), chain, key, versions)
}

/// [`server_config`] with a provider of the caller's (one cipher suite only, say).
pub fn server_config_with(
    provider: Arc<rustls::crypto::CryptoProvider>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    versions: &[&'static SupportedProtocolVersion],
) -> Result<ServerConfig, rustls::Error> {
    let builder = ServerConfig::builder_with_provider(provider);
    let builder = if versions.is_empty() {
        builder.with_safe_default_protocol_versions()?
    } else {
        builder.with_protocol_versions(versions)?
    };
    builder.with_no_client_auth().with_single_cert(chain, key)
}

/// The chain a test identity sends: its leaf, then the certificates after it (DER).
pub fn chain_of(leaf_der: &[u8], after: &[Vec<u8>]) -> Vec<CertificateDer<'static>> {
    std::iter::once(leaf_der)
        .chain(after.iter().map(Vec::as_slice))
        .map(|der| CertificateDer::from(der.to_vec()))
        .collect()
}
