//! One typed error for everything that can go wrong, with stable codes.
//!
//! Every variant has a kebab-case [`Error::code`] that never changes meaning and is
//! never reused: it is the JS `err.code` and the WIT variant name. [`Error::ssl_error`]
//! gives OpenSSL's `SSL_get_error` class of the same failure.

use std::fmt;

use rustls::{AlertDescription, CertificateError, PeerIncompatible};

use crate::certinfo::{escape, format_unix_time};
use crate::signatures::describe_algorithm;

/// OpenSSL's `SSL_get_error(3)` classes, as the host sees them after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SslError {
    /// `SSL_ERROR_NONE`: the call succeeded.
    None,
    /// `SSL_ERROR_WANT_READ`: push ciphertext from the peer, then call again.
    WantRead,
    /// `SSL_ERROR_WANT_WRITE`: pull the pending ciphertext and send it, then call again.
    WantWrite,
    /// `SSL_ERROR_ZERO_RETURN`: the peer closed the connection cleanly with `close_notify`.
    ZeroReturn,
    /// `SSL_ERROR_SYSCALL`: the transport failed or reached EOF without `close_notify`
    /// (the data may have been truncated).
    Syscall,
    /// `SSL_ERROR_SSL`: a protocol, certificate or configuration failure.
    Ssl,
}

impl SslError {
    /// The OpenSSL-style name, e.g. `"WANT_READ"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::WantRead => "WANT_READ",
            Self::WantWrite => "WANT_WRITE",
            Self::ZeroReturn => "ZERO_RETURN",
            Self::Syscall => "SYSCALL",
            Self::Ssl => "SSL",
        }
    }
}

impl fmt::Display for SslError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything that can go wrong in a TLS connection or its configuration.
///
/// Connection failures are sticky: once a connection has failed, every later call on it
/// returns the same error. Misuse of the API ([`Error::InvalidState`],
/// [`Error::InvalidInput`]) is reported but does not fail the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The server's certificate expired before the validation time.
    CertificateExpired {
        /// The certificate's `notAfter`, in seconds since the Unix epoch, when known.
        not_after: Option<u64>,
        /// The validation time, in seconds since the Unix epoch, when known.
        now: Option<u64>,
    },
    /// The server's certificate is not valid yet at the validation time.
    CertificateNotYetValid {
        /// The certificate's `notBefore`, in seconds since the Unix epoch, when known.
        not_before: Option<u64>,
        /// The validation time, in seconds since the Unix epoch, when known.
        now: Option<u64>,
    },
    /// The server's certificate is not valid for the name the client asked for.
    CertificateNameMismatch {
        /// The server name the client verified against.
        expected: String,
        /// The names the certificate presents (subjectAltName DNS and IP entries).
        presented: Vec<String>,
    },
    /// The server sent a single self-signed certificate that is not a trusted root.
    CertificateSelfSigned {
        /// The certificate's subject.
        subject: String,
    },
    /// The chain does not reach a trusted root. Either it ends in a root the server sent
    /// that is not trusted, or the issuer of the last certificate the server sent is
    /// neither sent nor trusted: the CA is not trusted here, or the server does not send
    /// an intermediate certificate (which of the two cannot be told apart from here).
    CertificateUnknownIssuer {
        /// The issuer's distinguished name.
        issuer: String,
        /// Whether the server sent this issuer itself, as a root that is not trusted.
        root_sent: bool,
    },
    /// The certificate was revoked by its issuer.
    CertificateRevoked,
    /// The certificate may not be used for TLS server authentication.
    CertificateInvalidPurpose,
    /// A signature in the chain, or the handshake signature, does not verify.
    CertificateBadSignature,
    /// The certificate is invalid for another reason.
    CertificateInvalid {
        /// What is wrong with it.
        reason: String,
    },
    /// The peer sent a fatal alert; the handshake or connection ended by the peer's choice.
    PeerAlert {
        /// The alert's name as in RFC 8446, e.g. `handshake_failure`.
        alert: String,
    },
    /// The server does not speak TLS 1.2 or 1.3, or none of the versions allowed.
    ProtocolVersion {
        /// Details of what was offered and refused.
        reason: String,
    },
    /// Client and server share no cipher suite, key-exchange group or signature scheme.
    HandshakeFailure {
        /// What could not be agreed.
        reason: String,
    },
    /// The server requires a client certificate and none was configured, or it rejected ours.
    ClientCertificateRequired,
    /// ALPN was offered and the server chose a protocol the client did not offer, or none.
    NoApplicationProtocol,
    /// The peer broke the TLS protocol (a malformed or unexpected message).
    ProtocolViolation {
        /// What the peer did.
        reason: String,
    },
    /// A record failed to decrypt or authenticate.
    DecryptError,
    /// The transport reached EOF during the handshake.
    UnexpectedEof,
    /// The transport reached EOF after the handshake without the peer's `close_notify`:
    /// the data received may have been truncated.
    Truncated,
    /// The configuration is invalid: a PEM that does not parse, an empty server name, a
    /// key that does not match its certificate, no roots at all.
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },
    /// The call is not allowed in the connection's state (for example `write` after
    /// `shutdown`). The connection itself is unaffected.
    InvalidState {
        /// What was attempted and why it is refused.
        reason: String,
    },
    /// An argument is out of range. The connection itself is unaffected.
    InvalidInput {
        /// What is wrong with it.
        reason: String,
    },
    /// Any other TLS failure.
    Tls {
        /// rustls' description.
        reason: String,
    },
}

impl Error {
    /// The stable, kebab-case code of this error (the JS `err.code`, the WIT case name).
    pub fn code(&self) -> &'static str {
        match self {
            Self::CertificateExpired { .. } => "certificate-expired",
            Self::CertificateNotYetValid { .. } => "certificate-not-yet-valid",
            Self::CertificateNameMismatch { .. } => "certificate-name-mismatch",
            Self::CertificateSelfSigned { .. } => "certificate-self-signed",
            Self::CertificateUnknownIssuer { .. } => "certificate-unknown-issuer",
            Self::CertificateRevoked => "certificate-revoked",
            Self::CertificateInvalidPurpose => "certificate-invalid-purpose",
            Self::CertificateBadSignature => "certificate-bad-signature",
            Self::CertificateInvalid { .. } => "certificate-invalid",
            Self::PeerAlert { .. } => "peer-alert",
            Self::ProtocolVersion { .. } => "protocol-version",
            Self::HandshakeFailure { .. } => "handshake-failure",
            Self::ClientCertificateRequired => "client-certificate-required",
            Self::NoApplicationProtocol => "no-application-protocol",
            Self::ProtocolViolation { .. } => "protocol-violation",
            Self::DecryptError => "decrypt-error",
            Self::UnexpectedEof => "unexpected-eof",
            Self::Truncated => "truncated",
            Self::InvalidConfig { .. } => "invalid-config",
            Self::InvalidState { .. } => "invalid-state",
            Self::InvalidInput { .. } => "invalid-input",
            Self::Tls { .. } => "tls",
        }
    }

    /// The `SSL_get_error` class of this error: `SYSCALL` for transport EOF, `SSL` otherwise.
    pub fn ssl_error(&self) -> SslError {
        match self {
            Self::UnexpectedEof | Self::Truncated => SslError::Syscall,
            _ => SslError::Ssl,
        }
    }

    /// Whether this is a certificate verification failure.
    pub fn is_certificate_error(&self) -> bool {
        self.code().starts_with("certificate-")
    }

    /// Whether this error fails the connection (every later call returns it again).
    /// Misuse errors do not.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, Self::InvalidState { .. } | Self::InvalidInput { .. })
    }

    pub(crate) fn invalid_config(reason: impl Into<String>) -> Self {
        Self::InvalidConfig {
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid_state(reason: impl Into<String>) -> Self {
        Self::InvalidState {
            reason: reason.into(),
        }
    }
}

fn opt_time(t: Option<u64>) -> String {
    t.map(format_unix_time)
        .unwrap_or_else(|| "an unknown time".to_owned())
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CertificateExpired { not_after, now } => write!(
                f,
                "certificate expired: it was valid until {}, and it is now {}",
                opt_time(*not_after),
                opt_time(*now)
            ),
            Self::CertificateNotYetValid { not_before, now } => write!(
                f,
                "certificate not yet valid: it is valid from {}, and it is now {}",
                opt_time(*not_before),
                opt_time(*now)
            ),
            Self::CertificateNameMismatch {
                expected,
                presented,
            } => {
                write!(f, "certificate is not valid for the name \"{expected}\"")?;
                if presented.is_empty() {
                    f.write_str(": it presents no names")
                } else {
                    write!(f, ": it is valid for {}", presented.join(", "))
                }
            }
            Self::CertificateSelfSigned { subject } => write!(
                f,
                "certificate is self-signed and not trusted: {subject} (add it with the trusted roots to accept it)"
            ),
            Self::CertificateUnknownIssuer {
                issuer,
                root_sent: true,
            } => write!(
                f,
                "unknown issuer: the chain ends in the root {issuer}, which is not trusted"
            ),
            Self::CertificateUnknownIssuer { issuer, .. } => write!(
                f,
                "unknown issuer: the issuer {issuer} was neither sent by the server nor is a trusted root: either this CA is not trusted here (add it to the trusted roots), or the server does not send the intermediate certificate it needs"
            ),
            Self::CertificateRevoked => f.write_str("certificate has been revoked"),
            Self::CertificateInvalidPurpose => {
                f.write_str("certificate may not be used to authenticate a TLS server")
            }
            Self::CertificateBadSignature => {
                f.write_str("a signature in the certificate chain or handshake does not verify")
            }
            Self::CertificateInvalid { reason } => write!(f, "invalid certificate: {reason}"),
            Self::PeerAlert { alert } => write!(f, "the peer sent the fatal alert {alert}"),
            Self::ProtocolVersion { reason } => {
                write!(f, "protocol version not supported: {reason}")
            }
            Self::HandshakeFailure { reason } => write!(f, "handshake failure: {reason}"),
            Self::ClientCertificateRequired => f.write_str(
                "the server requires a client certificate, and none was accepted",
            ),
            Self::NoApplicationProtocol => f.write_str(
                "no application protocol (ALPN) in common with the server",
            ),
            Self::ProtocolViolation { reason } => {
                write!(f, "the peer violated the TLS protocol: {reason}")
            }
            Self::DecryptError => f.write_str("a record failed to decrypt or authenticate"),
            Self::UnexpectedEof => {
                f.write_str("the connection closed during the handshake")
            }
            Self::Truncated => f.write_str(
                "the connection closed without close_notify: the data may have been truncated",
            ),
            Self::InvalidConfig { reason } => write!(f, "invalid configuration: {reason}"),
            Self::InvalidState { reason } => write!(f, "invalid call: {reason}"),
            Self::InvalidInput { reason } => write!(f, "invalid argument: {reason}"),
            Self::Tls { reason } => write!(f, "TLS error: {reason}"),
        }
    }
}

impl std::error::Error for Error {}

fn alert_name(alert: AlertDescription) -> String {
    // rustls' Debug names are CamelCase; RFC 8446 names are snake_case.
    let camel = format!("{alert:?}");
    let mut out = String::with_capacity(camel.len() + 4);
    for (i, ch) in camel.chars().enumerate() {
        if ch.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

fn secs(t: rustls_pki_types::UnixTime) -> u64 {
    t.as_secs()
}

impl From<CertificateError> for Error {
    fn from(err: CertificateError) -> Self {
        match err {
            CertificateError::ExpiredContext { time, not_after } => Self::CertificateExpired {
                not_after: Some(secs(not_after)),
                now: Some(secs(time)),
            },
            CertificateError::Expired => Self::CertificateExpired {
                not_after: None,
                now: None,
            },
            CertificateError::NotValidYetContext { time, not_before } => {
                Self::CertificateNotYetValid {
                    not_before: Some(secs(not_before)),
                    now: Some(secs(time)),
                }
            }
            CertificateError::NotValidYet => Self::CertificateNotYetValid {
                not_before: None,
                now: None,
            },
            CertificateError::NotValidForNameContext {
                expected,
                presented,
            } => Self::CertificateNameMismatch {
                expected: server_name_string(&expected),
                presented: presented.iter().map(|n| plain_name(n)).collect(),
            },
            CertificateError::NotValidForName => Self::CertificateNameMismatch {
                expected: String::new(),
                presented: Vec::new(),
            },
            // The verifier left the precise cause (self-signed, untrusted root, issuer
            // not found) for this thread; see config.rs.
            CertificateError::UnknownIssuer => {
                crate::config::take_explanation().unwrap_or(Self::CertificateUnknownIssuer {
                    issuer: "(unknown)".to_owned(),
                    root_sent: false,
                })
            }
            CertificateError::Revoked => Self::CertificateRevoked,
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                Self::CertificateInvalidPurpose
            }
            CertificateError::BadSignature => Self::CertificateBadSignature,
            CertificateError::UnsupportedSignatureAlgorithmContext {
                signature_algorithm_id,
                ..
            } => Self::CertificateInvalid {
                reason: format!(
                    "a certificate in the chain is signed with {}, which is not supported",
                    describe_algorithm(&signature_algorithm_id)
                ),
            },
            CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext {
                signature_algorithm_id,
                public_key_algorithm_id,
            } => Self::CertificateInvalid {
                reason: format!(
                    "a certificate in the chain is signed with {} by {}, a combination that is not supported",
                    describe_algorithm(&signature_algorithm_id),
                    describe_algorithm(&public_key_algorithm_id)
                ),
            },
            CertificateError::BadEncoding => Self::CertificateInvalid {
                reason: "a certificate in the chain is not well-formed DER".to_owned(),
            },
            CertificateError::UnhandledCriticalExtension => Self::CertificateInvalid {
                reason: "a certificate in the chain has a critical extension that is not supported"
                    .to_owned(),
            },
            CertificateError::Other(other) => Self::CertificateInvalid {
                reason: match other.0.downcast_ref::<webpki::Error>() {
                    Some(err) => webpki_reason(err),
                    None => other.to_string(),
                },
            },
            other => Self::CertificateInvalid {
                reason: format!("{other:?}"),
            },
        }
    }
}

/// rustls passes these rustls-webpki errors on as they are; their Display is a Rust name.
fn webpki_reason(err: &webpki::Error) -> String {
    use webpki::Error as E;
    let words = match err {
        E::UnsupportedCriticalExtension => {
            "a certificate in the chain has a critical extension that is not supported"
        }
        E::CaUsedAsEndEntity => "the server's certificate is a CA certificate",
        E::EndEntityUsedAsCa => "a certificate that is not a CA issued another certificate",
        E::PathLenConstraintViolated => "the chain is longer than a CA's path length allows",
        E::NameConstraintViolation => "the server's names are outside a CA's name constraints",
        E::MaximumPathDepthExceeded
        | E::MaximumSignatureChecksExceeded
        | E::MaximumPathBuildCallsExceeded => "the chain is too long or too complex to verify",
        E::MaximumNameConstraintComparisonsExceeded => {
            "the certificate's names and its CAs' name constraints are too many to compare"
        }
        E::ExtensionValueInvalid => "a certificate in the chain has a malformed extension",
        E::UnsupportedCertVersion => "a certificate in the chain is not an X.509 v3 certificate",
        other => return format!("{other}"),
    };
    words.to_owned()
}

/// rustls presents names as `DnsName("a.example")` or `IpAddress(192.0.2.1)`: keep the name.
fn plain_name(presented: &str) -> String {
    let inner = presented
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or(presented);
    escape(inner.trim_matches('"'))
}

pub(crate) fn server_name_string(name: &rustls_pki_types::ServerName<'_>) -> String {
    match name {
        rustls_pki_types::ServerName::DnsName(dns) => escape(dns.as_ref()),
        rustls_pki_types::ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        other => format!("{other:?}"),
    }
}

impl From<rustls::Error> for Error {
    fn from(err: rustls::Error) -> Self {
        use rustls::Error as E;
        match err {
            E::InvalidCertificate(cert) => cert.into(),
            E::AlertReceived(AlertDescription::ProtocolVersion) => Self::ProtocolVersion {
                reason: "the server answered with the alert protocol_version".to_owned(),
            },
            E::AlertReceived(AlertDescription::CertificateRequired) => {
                Self::ClientCertificateRequired
            }
            // RFC 7301: how a server says it supports none of the offered protocols.
            E::AlertReceived(AlertDescription::NoApplicationProtocol) => {
                Self::NoApplicationProtocol
            }
            E::AlertReceived(alert) => Self::PeerAlert {
                alert: alert_name(alert),
            },
            E::PeerIncompatible(
                incompat @ (PeerIncompatible::ServerDoesNotSupportTls12Or13
                | PeerIncompatible::Tls12NotOffered
                | PeerIncompatible::Tls12NotOfferedOrEnabled
                | PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig
                | PeerIncompatible::SupportedVersionsExtensionRequired),
            ) => Self::ProtocolVersion {
                reason: version_reason(&incompat).to_owned(),
            },
            E::PeerIncompatible(incompat) => Self::HandshakeFailure {
                reason: format!("{incompat:?}"),
            },
            E::NoApplicationProtocol => Self::NoApplicationProtocol,
            E::DecryptError => Self::DecryptError,
            E::InvalidMessage(msg) => Self::ProtocolViolation {
                reason: format!("invalid message: {msg:?}"),
            },
            E::PeerMisbehaved(what) => Self::ProtocolViolation {
                reason: format!("{what:?}"),
            },
            E::InappropriateMessage {
                expect_types,
                got_type,
            } => Self::ProtocolViolation {
                reason: format!("expected one of {expect_types:?}, got {got_type:?}"),
            },
            E::InappropriateHandshakeMessage {
                expect_types,
                got_type,
            } => Self::ProtocolViolation {
                reason: format!("expected handshake message {expect_types:?}, got {got_type:?}"),
            },
            // A record over 2^14 bytes of plaintext (RFC 8446 5.1, RFC 5246 6.2.1).
            E::PeerSentOversizedRecord => Self::ProtocolViolation {
                reason: "the peer sent a record larger than the protocol allows".to_owned(),
            },
            E::NoCertificatesPresented => Self::ProtocolViolation {
                reason: "the server presented no certificate".to_owned(),
            },
            E::BadMaxFragmentSize => Self::InvalidConfig {
                reason: "bad maximum fragment size".to_owned(),
            },
            other => Self::Tls {
                reason: other.to_string(),
            },
        }
    }
}

fn version_reason(incompat: &PeerIncompatible) -> &'static str {
    match incompat {
        PeerIncompatible::ServerDoesNotSupportTls12Or13 => {
            "the server offered only TLS 1.1 or older"
        }
        PeerIncompatible::Tls12NotOffered
        | PeerIncompatible::Tls12NotOfferedOrEnabled
        | PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig => {
            "the server chose a version this client does not allow"
        }
        _ => "the server chose TLS 1.3 without the supported_versions extension",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_names_are_rfc_names() {
        assert_eq!(
            alert_name(AlertDescription::HandshakeFailure),
            "handshake_failure"
        );
        assert_eq!(
            alert_name(AlertDescription::BadCertificate),
            "bad_certificate"
        );
    }

    #[test]
    fn codes_are_kebab_case_and_distinct() {
        let errors = [
            Error::Truncated,
            Error::UnexpectedEof,
            Error::DecryptError,
            Error::CertificateRevoked,
            Error::NoApplicationProtocol,
        ];
        let mut codes: Vec<_> = errors.iter().map(Error::code).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), errors.len());
        assert!(codes
            .iter()
            .all(|c| c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '-')));
    }

    #[test]
    fn eof_errors_are_syscall() {
        assert_eq!(Error::Truncated.ssl_error(), SslError::Syscall);
        assert_eq!(Error::DecryptError.ssl_error(), SslError::Ssl);
    }
}
