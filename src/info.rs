//! What a completed handshake negotiated.

use crate::certinfo::CertificateSummary;
use crate::config::TlsVersion;

/// The parameters of a completed handshake, as `SSL_get_version`, `SSL_get_current_cipher`,
/// `SSL_get0_alpn_selected`, `SSL_get_peer_cert_chain` and `SSL_session_reused` report them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeInfo {
    /// The protocol version.
    pub version: TlsVersion,
    /// The cipher suite's IANA name, e.g. `TLS13_AES_128_GCM_SHA256`.
    pub cipher_suite: String,
    /// The key-exchange group as IANA names it, e.g. `X25519MLKEM768`, `X25519` or
    /// `secp256r1` (absent on a TLS 1.2 resumption).
    pub key_exchange_group: Option<String>,
    /// The ALPN protocol the server chose, if any.
    pub alpn: Option<Vec<u8>>,
    /// The server's certificate chain as it sent it (DER), end-entity first.
    pub peer_certificates: Vec<Vec<u8>>,
    /// Whether the session was resumed from an earlier connection's ticket.
    pub resumed: bool,
}

impl HandshakeInfo {
    /// Subject, issuer and validity of each certificate in the chain.
    pub fn certificate_summaries(&self) -> Vec<Option<CertificateSummary>> {
        self.peer_certificates
            .iter()
            .map(|der| CertificateSummary::from_der(der))
            .collect()
    }

    /// The ALPN protocol as text, if it is UTF-8.
    pub fn alpn_str(&self) -> Option<&str> {
        self.alpn
            .as_deref()
            .and_then(|p| std::str::from_utf8(p).ok())
    }
}
