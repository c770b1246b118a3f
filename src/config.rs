//! Client configuration: server name, trust roots, ALPN, versions, client
//! authentication, resumption, key logging and the clock.
//!
//! A [`Config`] is cheap to clone and is shared by the connections made from it, so that
//! they share one session-ticket cache and resume each other's sessions.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::certinfo::CertificateSummary;
use crate::error::Error;
use crate::signature_cache::SignatureCache;

thread_local! {
    /// Why the last verification on this thread failed with `UnknownIssuer`. rustls sends
    /// the peer the right alert (unknown_ca) only for its own error value, so the verifier
    /// returns that and leaves the precise cause here; the conversion of rustls' error,
    /// which happens on the same thread right after, picks it up.
    static EXPLANATION: RefCell<Option<Error>> = const { RefCell::new(None) };
}

/// Takes the precise cause of the last `UnknownIssuer` on this thread.
pub(crate) fn take_explanation() -> Option<Error> {
    EXPLANATION.with(|slot| slot.borrow_mut().take())
}

/// A TLS protocol version the client may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsVersion {
    /// TLS 1.2 (RFC 5246).
    Tls12,
    /// TLS 1.3 (RFC 8446).
    Tls13,
}

impl TlsVersion {
    /// The name OpenSSL prints, e.g. `TLSv1.3`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tls12 => "TLSv1.2",
            Self::Tls13 => "TLSv1.3",
        }
    }
}

/// The source of wall-clock time for certificate validity and session tickets.
///
/// The host passes time in: `std::time::SystemTime::now()` traps on
/// `wasm32-unknown-unknown`, and tests need a fixed time.
pub trait Clock: Send + Sync {
    /// Seconds since the Unix epoch, or `None` if the time is unknown (verification
    /// then fails rather than guess).
    fn now_unix_secs(&self) -> Option<u64>;
}

/// The default clock: the system's time where there is one, `Date.now()` in a browser.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix_secs(&self) -> Option<u64> {
        // `UnixTime::now` reads `Date.now()` on wasm32-unknown-unknown (pki-types' `web` feature).
        Some(UnixTime::now().as_secs())
    }
}

/// A clock stopped at one instant; for tests and reproducible validation.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub u64);

impl Clock for FixedClock {
    fn now_unix_secs(&self) -> Option<u64> {
        Some(self.0)
    }
}

/// Receives TLS secrets as NSS `SSLKEYLOGFILE` lines, for Wireshark.
///
/// Anyone holding these lines can decrypt the connection: enable only for debugging.
pub trait KeyLogSink: Send + Sync {
    /// One line, without the trailing newline, e.g.
    /// `CLIENT_TRAFFIC_SECRET_0 <client_random hex> <secret hex>`.
    fn log_line(&self, line: &str);
}

impl<F: Fn(&str) + Send + Sync> KeyLogSink for F {
    fn log_line(&self, line: &str) {
        self(line)
    }
}

struct ClockAdapter(Arc<dyn Clock>);

impl fmt::Debug for ClockAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Clock")
    }
}

impl rustls::time_provider::TimeProvider for ClockAdapter {
    fn current_time(&self) -> Option<UnixTime> {
        self.0
            .now_unix_secs()
            .map(|s| UnixTime::since_unix_epoch(std::time::Duration::from_secs(s)))
    }
}

struct KeyLogAdapter(Arc<dyn KeyLogSink>);

impl fmt::Debug for KeyLogAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyLog")
    }
}

impl rustls::KeyLog for KeyLogAdapter {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let mut line =
            String::with_capacity(label.len() + 2 + 2 * (client_random.len() + secret.len()));
        line.push_str(label);
        line.push(' ');
        push_hex(&mut line, client_random);
        line.push(' ');
        push_hex(&mut line, secret);
        self.0.log_line(&line);
    }

    fn will_log(&self, _label: &str) -> bool {
        true
    }
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

/// Verifies exactly as rustls-webpki does, and names the cause of a failure more precisely
/// (self-signed, untrusted root, issuer not found) by looking at the chain it was given.
#[derive(Debug)]
struct ExplainingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    /// Certificate signatures this configuration has verified.
    signatures: Arc<SignatureCache>,
}

impl ExplainingVerifier {
    fn explain(&self, end_entity: &[u8], intermediates: &[CertificateDer<'_>]) -> Error {
        let summaries: Vec<CertificateSummary> = std::iter::once(end_entity)
            .chain(intermediates.iter().map(|c| c.as_ref()))
            .filter_map(CertificateSummary::from_der)
            .collect();
        let Some(last) = summaries.last() else {
            return Error::CertificateUnknownIssuer {
                issuer: "(unreadable certificate)".to_owned(),
                root_sent: false,
            };
        };
        if last.is_self_issued() && summaries.len() == 1 {
            return Error::CertificateSelfSigned {
                subject: last.subject.clone(),
            };
        }
        // A root the server sent, or the issuer of the last certificate it sent: the
        // latter is missing, and whether as an intermediate the server should send or
        // as a CA this client does not trust cannot be told from here.
        let root_sent = last.is_self_issued();
        let issuer = if root_sent {
            last.subject.clone()
        } else {
            last.issuer.clone()
        };
        Error::CertificateUnknownIssuer { issuer, root_sent }
    }
}

impl ServerCertVerifier for ExplainingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let result = {
            let _cache = self.signatures.activate();
            self.inner.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            )
        };
        let explanation = match &result {
            Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {
                Some(self.explain(end_entity, intermediates))
            }
            _ => None,
        };
        EXPLANATION.with(|slot| *slot.borrow_mut() = explanation);
        result
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A ready client configuration. Build one with [`Config::builder`].
#[derive(Clone)]
pub struct Config {
    pub(crate) rustls: Arc<rustls::ClientConfig>,
    pub(crate) server_name: ServerName<'static>,
    verifier: Arc<ExplainingVerifier>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("server_name", &self.server_name)
            .field("alpn", &self.rustls.alpn_protocols)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Starts a configuration for connecting to `server_name`: a DNS name (sent as SNI)
    /// or an IP address (not sent as SNI, verified against the certificate's IP SANs).
    pub fn builder(server_name: &str) -> ConfigBuilder {
        ConfigBuilder::new(server_name)
    }

    /// The name the server's certificate is verified against.
    pub fn server_name(&self) -> String {
        crate::error::server_name_string(&self.server_name)
    }

    /// Verifies a certificate chain for `server_name` with the same verifier and clock
    /// the connections use, without a handshake. `intermediates` are in the order the
    /// server would send them.
    pub fn verify_server_certificate(
        &self,
        end_entity: &[u8],
        intermediates: &[&[u8]],
        server_name: &str,
    ) -> Result<(), Error> {
        let name = parse_server_name(server_name)?;
        let now = self
            .clock
            .now_unix_secs()
            .ok_or_else(|| Error::invalid_config("the clock does not know the time"))?;
        let now = UnixTime::since_unix_epoch(std::time::Duration::from_secs(now));
        let intermediates: Vec<CertificateDer<'_>> = intermediates
            .iter()
            .map(|c| CertificateDer::from(*c))
            .collect();
        self.verifier
            .verify_server_cert(
                &CertificateDer::from(end_entity),
                &intermediates,
                &name,
                &[],
                now,
            )
            .map(|_| ())
            .map_err(Error::from)
    }
}

fn parse_server_name(name: &str) -> Result<ServerName<'static>, Error> {
    // Accept "[::1]" as people write IPv6 literals in URLs.
    let trimmed = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    ServerName::try_from(trimmed.to_owned()).map_err(|_| {
        Error::invalid_config(format!("\"{name}\" is not a valid DNS name or IP address"))
    })
}

/// Builds a [`Config`]. Setters never fail; [`ConfigBuilder::build`] reports the first
/// problem (an unparseable PEM, a bad server name) as [`Error::InvalidConfig`].
pub struct ConfigBuilder {
    server_name: String,
    bundled_roots: bool,
    extra_roots: Vec<CertificateDer<'static>>,
    extra_anchors: Vec<rustls::pki_types::TrustAnchor<'static>>,
    alpn: Vec<Vec<u8>>,
    min_version: TlsVersion,
    max_version: TlsVersion,
    client_auth: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    resumption: bool,
    post_quantum: bool,
    key_log: Option<Arc<dyn KeyLogSink>>,
    clock: Arc<dyn Clock>,
    problems: Vec<String>,
}

impl ConfigBuilder {
    fn new(server_name: &str) -> Self {
        Self {
            server_name: server_name.to_owned(),
            bundled_roots: cfg!(feature = "bundled-roots"),
            extra_roots: Vec::new(),
            extra_anchors: Vec::new(),
            alpn: Vec::new(),
            min_version: TlsVersion::Tls12,
            max_version: TlsVersion::Tls13,
            client_auth: None,
            resumption: true,
            post_quantum: true,
            key_log: None,
            clock: Arc::new(SystemClock),
            problems: Vec::new(),
        }
    }

    /// Trusts the certificates in `pem` in addition to the current roots.
    pub fn add_roots_pem(mut self, pem: &str) -> Self {
        let mut found = 0;
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            match cert {
                Ok(cert) => {
                    self.extra_roots.push(cert);
                    found += 1;
                }
                Err(err) => {
                    self.problems
                        .push(format!("the trusted roots' PEM does not parse: {err}"));
                    return self;
                }
            }
        }
        if found == 0 {
            self.problems
                .push("the trusted roots' PEM holds no CERTIFICATE block".to_owned());
        }
        self
    }

    /// Trusts one DER certificate in addition to the current roots.
    pub fn add_root_der(mut self, der: &[u8]) -> Self {
        self.extra_roots.push(CertificateDer::from(der.to_vec()));
        self
    }

    /// Trusts the anchors of a bundle made by
    /// [`encode_trust_anchors`](crate::encode_trust_anchors), such as the browser
    /// package's `roots.bin` (Mozilla's roots, shipped apart from the code).
    pub fn add_trust_anchors(mut self, bundle: &[u8]) -> Self {
        match crate::roots::decode_trust_anchors(bundle) {
            Ok(anchors) => self.extra_anchors.extend(anchors),
            Err(Error::InvalidConfig { reason }) => self.problems.push(reason),
            Err(err) => self.problems.push(err.to_string()),
        }
        self
    }

    /// Trusts these decoded anchors in addition to the current roots.
    pub(crate) fn add_anchors(
        mut self,
        anchors: &[rustls::pki_types::TrustAnchor<'static>],
    ) -> Self {
        self.extra_anchors.extend_from_slice(anchors);
        self
    }

    /// Does not trust the bundled Mozilla roots: only roots added with
    /// [`add_roots_pem`](Self::add_roots_pem) or [`add_root_der`](Self::add_root_der).
    pub fn without_bundled_roots(mut self) -> Self {
        self.bundled_roots = false;
        self
    }

    /// Offers these ALPN protocols, most preferred first (e.g. `["h2", "http/1.1"]`).
    pub fn alpn<S: AsRef<[u8]>>(mut self, protocols: &[S]) -> Self {
        self.alpn = protocols.iter().map(|p| p.as_ref().to_vec()).collect();
        self
    }

    /// The lowest protocol version allowed (default TLS 1.2).
    pub fn min_version(mut self, version: TlsVersion) -> Self {
        self.min_version = version;
        self
    }

    /// The highest protocol version allowed (default TLS 1.3).
    pub fn max_version(mut self, version: TlsVersion) -> Self {
        self.max_version = version;
        self
    }

    /// Presents this certificate chain and private key (PEM) when the server asks for a
    /// client certificate (mutual TLS).
    pub fn client_auth_pem(mut self, cert_chain_pem: &str, key_pem: &str) -> Self {
        let chain: Result<Vec<_>, _> =
            CertificateDer::pem_slice_iter(cert_chain_pem.as_bytes()).collect();
        let chain = match chain {
            Ok(chain) if !chain.is_empty() => chain,
            Ok(_) => {
                self.problems
                    .push("the client certificate PEM holds no CERTIFICATE block".to_owned());
                return self;
            }
            Err(err) => {
                self.problems
                    .push(format!("the client certificate PEM does not parse: {err}"));
                return self;
            }
        };
        match PrivateKeyDer::from_pem_slice(key_pem.as_bytes()) {
            Ok(key) => self.client_auth = Some((chain, key)),
            Err(err) => self
                .problems
                .push(format!("the client key PEM does not parse: {err}")),
        }
        self
    }

    /// Resumes sessions with tickets from earlier connections of the same [`Config`]
    /// (default on).
    pub fn resumption(mut self, enabled: bool) -> Self {
        self.resumption = enabled;
        self
    }

    /// Offers the post-quantum hybrid key exchange X25519MLKEM768 first, with an X25519
    /// share in the same ClientHello, as browsers do (default on). Off, the client offers
    /// only the classical groups (X25519, P-256, P-384) and its ClientHello is some 1.2 KB
    /// smaller.
    pub fn post_quantum(mut self, enabled: bool) -> Self {
        self.post_quantum = enabled;
        self
    }

    /// Sends the connection secrets to `sink` as NSS key-log lines (default off).
    pub fn key_log(mut self, sink: Arc<dyn KeyLogSink>) -> Self {
        self.key_log = Some(sink);
        self
    }

    /// Uses this clock instead of the system's.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Checks everything and builds the configuration.
    pub fn build(self) -> Result<Config, Error> {
        if let Some(problem) = self.problems.into_iter().next() {
            return Err(Error::invalid_config(problem));
        }
        let server_name = parse_server_name(&self.server_name)?;
        if self.min_version > self.max_version {
            return Err(Error::invalid_config(format!(
                "the minimum version {} is above the maximum version {}",
                self.min_version.name(),
                self.max_version.name()
            )));
        }
        let mut roots = RootCertStore::empty();
        #[cfg(feature = "bundled-roots")]
        if self.bundled_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        roots.extend(self.extra_anchors);
        for root in self.extra_roots {
            roots.add(root).map_err(|err| {
                Error::invalid_config(format!("a trusted root is not usable: {err}"))
            })?;
        }
        if roots.is_empty() {
            return Err(Error::invalid_config(
                "no trusted roots: add a CA certificate or keep the bundled roots",
            ));
        }
        let provider = Arc::new(crypto_provider(self.post_quantum));
        let time: Arc<dyn rustls::time_provider::TimeProvider> =
            Arc::new(ClockAdapter(self.clock.clone()));
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|err| Error::invalid_config(format!("verifier: {err}")))?;
        let verifier = Arc::new(ExplainingVerifier {
            inner: webpki,
            signatures: Arc::default(),
        });

        let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
            (TlsVersion::Tls12, &rustls::version::TLS12),
            (TlsVersion::Tls13, &rustls::version::TLS13),
        ]
        .into_iter()
        .filter(|(v, _)| (self.min_version..=self.max_version).contains(v))
        .map(|(_, p)| p)
        .collect();

        let builder = rustls::ClientConfig::builder_with_details(provider, time)
            .with_protocol_versions(&versions)
            .map_err(|err| Error::invalid_config(err.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone());
        let mut config = match self.client_auth {
            Some((chain, key)) => builder
                .with_client_auth_cert(chain, key)
                .map_err(|err| Error::invalid_config(format!("client certificate: {err}")))?,
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = self.alpn;
        config.resumption = if self.resumption {
            Resumption::default()
        } else {
            Resumption::disabled()
        };
        if let Some(sink) = self.key_log {
            config.key_log = Arc::new(KeyLogAdapter(sink));
        }
        Ok(Config {
            rustls: Arc::new(config),
            server_name,
            verifier,
            clock: self.clock,
        })
    }
}

/// ring's provider, with the signature algorithms of [`crate::signatures`], X25519MLKEM768
/// first among the key-exchange groups if `post_quantum` (X25519 right after it, so that
/// its share rides along: see [`crate::kx`]), and the cipher suites ordered for the
/// target: AES-GCM first where AES has hardware support, ChaCha20-Poly1305 first in
/// WebAssembly, where ring's portable AES is several times slower than ChaCha20.
fn crypto_provider(post_quantum: bool) -> CryptoProvider {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.signature_verification_algorithms = crate::signatures::SUPPORTED;
    if post_quantum {
        provider.kx_groups.insert(0, crate::kx::X25519MLKEM768);
    }
    #[cfg(target_arch = "wasm32")]
    provider.cipher_suites.sort_by_key(|suite| {
        !matches!(
            suite.suite(),
            rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
                | rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
                | rustls::CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        )
    });
    provider
}
