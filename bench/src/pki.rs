//! Certificates made at start-up with rcgen: a root CA and a leaf for `localhost`
//! under it. The server sends the leaf; the client trusts the root. Verifying the chain
//! therefore costs one signature check, and the handshake's CertificateVerify another.

use std::sync::Arc;

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SignatureAlgorithm,
};
use rustls::crypto::ring::default_provider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::ServerSessionMemoryCache;
use rustls::{CipherSuite, ServerConfig, SupportedProtocolVersion};

/// What a benchmark server presents, and the root its client trusts.
pub struct Identity {
    /// The root certificate (DER), added to the client's roots.
    pub root_der: Vec<u8>,
    /// The leaf the server sends.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's key (PKCS#8).
    pub key: PrivateKeyDer<'static>,
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "wasm-tls benchmarks");
    dn.push(DnType::CommonName, cn);
    dn
}

fn err(what: &str) -> impl Fn(rcgen::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

fn make(ca_key: KeyPair, leaf_key: KeyPair) -> Result<Identity, String> {
    let mut ca = CertificateParams::default();
    ca.distinguished_name = name("wasm-tls benchmark CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = date_time_ymd(2020, 1, 1);
    ca.not_after = date_time_ymd(2099, 12, 31);
    let root = ca.self_signed(&ca_key).map_err(err("sign the root"))?;
    let issuer = Issuer::new(ca, ca_key);

    let mut leaf =
        CertificateParams::new(vec!["localhost".to_owned()]).map_err(err("leaf names"))?;
    leaf.distinguished_name = name("localhost");
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    leaf.not_before = date_time_ymd(2020, 1, 1);
    leaf.not_after = date_time_ymd(2099, 12, 31);
    let cert = leaf
        .signed_by(&leaf_key, &issuer)
        .map_err(err("sign the leaf"))?;
    Ok(Identity {
        root_der: root.der().to_vec(),
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    })
}

fn generate(alg: &'static SignatureAlgorithm) -> Result<KeyPair, String> {
    KeyPair::generate_for(alg).map_err(err("generate a key"))
}

/// ECDSA P-256 root and leaf.
pub fn ecdsa() -> Result<Identity, String> {
    make(
        generate(&rcgen::PKCS_ECDSA_P256_SHA256)?,
        generate(&rcgen::PKCS_ECDSA_P256_SHA256)?,
    )
}

/// RSA-2048 root and leaf from two PKCS#8 PEM keys (ring cannot generate RSA keys).
pub fn rsa(ca_key_pem: &str, leaf_key_pem: &str) -> Result<Identity, String> {
    let load = |pem: &str| {
        KeyPair::from_pkcs8_pem_and_sign_algo(pem, &rcgen::PKCS_RSA_SHA256)
            .map_err(err("load an RSA key"))
    };
    make(load(ca_key_pem)?, load(leaf_key_pem)?)
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
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .map_err(|e| format!("server versions: {e}"))?
        .with_no_client_auth()
        .with_single_cert(id.chain.clone(), id.key.clone_key())
        .map_err(|e| format!("server certificate: {e}"))?;
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
