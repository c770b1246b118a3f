//! The certificate factory: roots, intermediates and leaves made with rcgen at run time,
//! valid from 2020 to 2099 unless a test says otherwise. RSA keys come from outside
//! (ring cannot generate them): [`rsa_key`] loads one.

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

pub use rcgen::Error;

/// `O=wasm-tls tests, CN=cn`.
pub fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "wasm-tls tests");
    dn.push(DnType::CommonName, cn);
    dn
}

/// The validity of certificates meant to be valid: 2020-01-01 to 2099-12-31.
pub fn valid_period(params: &mut CertificateParams) {
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2099, 12, 31);
}

/// A CA certificate's parameters: unconstrained, for signing certificates and CRLs.
pub fn ca_params(cn: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = name(cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    valid_period(&mut params);
    params
}

/// An end-entity certificate's parameters for `purpose`, with these DNS names or IP
/// addresses as subject alternative names.
pub fn leaf_params(
    cn: &str,
    sans: &[&str],
    purpose: ExtendedKeyUsagePurpose,
) -> Result<CertificateParams, Error> {
    let sans: Vec<String> = sans.iter().map(|s| (*s).to_owned()).collect();
    let mut params = CertificateParams::new(sans)?;
    params.distinguished_name = name(cn);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![purpose];
    params.use_authority_key_identifier_extension = true;
    valid_period(&mut params);
    Ok(params)
}

/// A TLS server certificate's parameters.
pub fn server_leaf_params(cn: &str, sans: &[&str]) -> Result<CertificateParams, Error> {
    leaf_params(cn, sans, ExtendedKeyUsagePurpose::ServerAuth)
}

/// A new ECDSA P-256 key.
pub fn ecdsa_p256_key() -> Result<KeyPair, Error> {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
}

/// An RSA key from PKCS#8 PEM, signing with PKCS#1 v1.5 and SHA-256.
pub fn rsa_key(pkcs8_pem: &str) -> Result<KeyPair, Error> {
    KeyPair::from_pkcs8_pem_and_sign_algo(pkcs8_pem, &rcgen::PKCS_RSA_SHA256)
}

/// A certificate and its key.
pub struct Issued {
    /// The certificate (DER).
    pub der: Vec<u8>,
    /// The certificate (PEM).
    pub pem: String,
    /// The private key (PKCS#8 PEM).
    pub key_pem: String,
    /// The private key (PKCS#8 DER).
    pub key_der: Vec<u8>,
}

impl Issued {
    fn new(cert: &rcgen::Certificate, key: &KeyPair) -> Self {
        Self {
            der: cert.der().to_vec(),
            pem: cert.pem(),
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
        }
    }

    /// The private key as rustls takes it.
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }
}

/// Signs `params` with its own `key`: a self-signed certificate.
pub fn self_signed(params: &CertificateParams, key: KeyPair) -> Result<Issued, Error> {
    let cert = params.self_signed(&key)?;
    Ok(Issued::new(&cert, &key))
}

/// A certificate authority: its certificate, and what signs under it.
pub struct Ca {
    /// The CA's certificate (DER).
    pub der: Vec<u8>,
    /// The CA's certificate (PEM).
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    /// A self-signed root named `cn`.
    pub fn root(cn: &str, key: KeyPair) -> Result<Ca, Error> {
        let params = ca_params(cn);
        let cert = params.self_signed(&key)?;
        Ok(Self::new(&cert, params, key))
    }

    /// An intermediate named `cn` under `self`.
    pub fn intermediate(&self, cn: &str, key: KeyPair) -> Result<Ca, Error> {
        let params = ca_params(cn);
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Self::new(&cert, params, key))
    }

    /// A certificate with `params` for `key`, signed by this CA.
    pub fn issue(&self, params: &CertificateParams, key: KeyPair) -> Result<Issued, Error> {
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued::new(&cert, &key))
    }

    fn new(cert: &rcgen::Certificate, params: CertificateParams, key: KeyPair) -> Self {
        Self {
            der: cert.der().to_vec(),
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }
}

/// The smallest useful PKI: a root, and a leaf for `localhost` signed by it directly.
/// The server sends the leaf alone, so verifying costs one signature check.
pub struct Identity {
    /// The root certificate (DER), for the client to trust.
    pub root_der: Vec<u8>,
    /// The root certificate (PEM).
    pub root_pem: String,
    /// What the server sends: the leaf.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's key.
    pub key: PrivateKeyDer<'static>,
}

impl Identity {
    /// A root with `root_key` and a `localhost` leaf with `leaf_key`.
    pub fn localhost(root_key: KeyPair, leaf_key: KeyPair) -> Result<Identity, Error> {
        let root = Ca::root("wasm-tls Test Root", root_key)?;
        let leaf = root.issue(&server_leaf_params("localhost", &["localhost"])?, leaf_key)?;
        Ok(Identity {
            root_der: root.der,
            root_pem: root.pem,
            chain: vec![CertificateDer::from(leaf.der.clone())],
            key: leaf.private_key(),
        })
    }
}
