//! Plain configuration options, which every host fills from its own input (a JS object,
//! a WIT record, a command line), and the one place that turns them into a [`Config`].
//!
//! Connections made with equal options share one configuration through
//! [`ConfigOptions::shared`], and so one session cache: they resume each other's
//! sessions, as connections made from one OpenSSL `SSL_CTX` do. The cache is bounded.

use std::fmt;
use std::sync::{Mutex, OnceLock};

use rustls::pki_types::TrustAnchor;

use crate::config::{Config, ConfigBuilder, TlsVersion};
use crate::error::Error;

/// How many configurations [`ConfigOptions::shared`] keeps, least recently used first
/// out. Each holds its trust store and a session cache of a few KiB.
pub const SHARED_CONFIGS: usize = 64;

/// A client certificate chain and its private key, both PEM, for mutual TLS.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientAuthPem {
    /// The certificate chain, leaf first.
    pub cert_chain_pem: String,
    /// The leaf's private key.
    pub key_pem: String,
}

impl fmt::Debug for ClientAuthPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key never reaches a log.
        f.debug_struct("ClientAuthPem").finish_non_exhaustive()
    }
}

/// Everything a host may configure that is plain data; callbacks (the key log, a clock)
/// go on the [`ConfigBuilder`] that [`ConfigOptions::builder`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigOptions {
    /// The name the certificate is verified against and sent as SNI (a DNS name), or
    /// an IP address (verified against the certificate's IP SANs, not sent).
    pub server_name: String,
    /// Trust Mozilla's roots: compiled in with the `bundled-roots` feature, else the
    /// bundle given to [`register_bundled_roots`] (default on).
    pub bundled_roots: bool,
    /// More trusted roots, each a PEM text of one or more certificates.
    pub roots_pem: Vec<String>,
    /// More trusted roots, each a bundle made by
    /// [`encode_trust_anchors`](crate::encode_trust_anchors).
    pub trust_anchor_bundles: Vec<Vec<u8>>,
    /// ALPN protocols to offer, most preferred first.
    pub alpn: Vec<String>,
    /// The lowest version allowed (default TLS 1.2).
    pub min_version: Option<TlsVersion>,
    /// The highest version allowed (default TLS 1.3).
    pub max_version: Option<TlsVersion>,
    /// A client certificate for servers that ask for one.
    pub client_auth: Option<ClientAuthPem>,
    /// Resume sessions of earlier connections with the same configuration (default on).
    pub resumption: bool,
    /// Offer the post-quantum hybrid X25519MLKEM768 first (default on).
    pub post_quantum: bool,
}

impl ConfigOptions {
    /// The defaults for a connection to `server_name`: Mozilla's roots, TLS 1.2 and
    /// 1.3, resumption and post-quantum key exchange on, no ALPN, no client certificate.
    pub fn new(server_name: impl Into<String>) -> Self {
        Self {
            server_name: server_name.into(),
            bundled_roots: true,
            roots_pem: Vec::new(),
            trust_anchor_bundles: Vec::new(),
            alpn: Vec::new(),
            min_version: None,
            max_version: None,
            client_auth: None,
            resumption: true,
            post_quantum: true,
        }
    }

    /// A builder with these options set, for adding callbacks before
    /// [`ConfigBuilder::build`].
    pub fn builder(&self) -> ConfigBuilder {
        let mut builder = Config::builder(&self.server_name)
            .alpn(&self.alpn)
            .resumption(self.resumption)
            .post_quantum(self.post_quantum);
        if self.bundled_roots {
            if let Some(bundle) = registered_bundle() {
                builder = builder.add_anchors(bundle);
            }
        } else {
            builder = builder.without_bundled_roots();
        }
        for pem in &self.roots_pem {
            builder = builder.add_roots_pem(pem);
        }
        for bundle in &self.trust_anchor_bundles {
            builder = builder.add_trust_anchors(bundle);
        }
        if let Some(v) = self.min_version {
            builder = builder.min_version(v);
        }
        if let Some(v) = self.max_version {
            builder = builder.max_version(v);
        }
        if let Some(auth) = &self.client_auth {
            builder = builder.client_auth_pem(&auth.cert_chain_pem, &auth.key_pem);
        }
        builder
    }

    /// A new configuration with these options, with a session cache of its own.
    pub fn build(&self) -> Result<Config, Error> {
        self.builder().build()
    }

    /// The configuration that connections with equal options share, built on first use
    /// and kept among the [`SHARED_CONFIGS`] most recently used.
    pub fn shared(&self) -> Result<Config, Error> {
        static CACHE: Mutex<Vec<(ConfigOptions, Config)>> = Mutex::new(Vec::new());
        let lookup = |cache: &mut Vec<(ConfigOptions, Config)>| {
            let i = cache.iter().position(|(options, _)| options == self)?;
            // Most recently used last, so the oldest goes first.
            let entry = cache.remove(i);
            let config = entry.1.clone();
            cache.push(entry);
            Some(config)
        };
        // A poisoned lock only means a panic elsewhere while it was held; the list
        // itself is always whole.
        if let Some(config) = lookup(&mut CACHE.lock().unwrap_or_else(|e| e.into_inner())) {
            return Ok(config);
        }
        // Built outside the lock: parsing roots takes a while.
        let config = self.build()?;
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = lookup(&mut cache) {
            return Ok(existing);
        }
        if cache.len() >= SHARED_CONFIGS {
            cache.remove(0);
        }
        cache.push((self.clone(), config.clone()));
        Ok(config)
    }
}

impl TlsVersion {
    /// Reads a version as people write it: `TLSv1.2`, `1.2`, `tls1.2` or `tls1_2`
    /// (and the same for 1.3).
    pub fn parse(text: &str) -> Result<Self, Error> {
        let lower = text.trim().to_ascii_lowercase().replace('_', ".");
        let number = lower
            .strip_prefix("tlsv")
            .or_else(|| lower.strip_prefix("tls"))
            .unwrap_or(&lower);
        match number {
            "1.2" => Ok(Self::Tls12),
            "1.3" => Ok(Self::Tls13),
            _ => Err(Error::invalid_config(format!(
                "unknown TLS version \"{text}\": use TLSv1.2 or TLSv1.3"
            ))),
        }
    }
}

/// Mozilla's roots for builds without the `bundled-roots` feature (the browser package
/// ships them as `roots.bin`, apart from the code).
static REGISTERED_ROOTS: OnceLock<Vec<TrustAnchor<'static>>> = OnceLock::new();

/// Makes `bundle` (made by [`encode_trust_anchors`](crate::encode_trust_anchors)) the
/// roots that [`ConfigOptions::bundled_roots`] means in a build without the
/// `bundled-roots` feature. The first bundle registered stays; later calls only check
/// theirs.
pub fn register_bundled_roots(bundle: &[u8]) -> Result<(), Error> {
    if REGISTERED_ROOTS.get().is_some() {
        return crate::roots::decode_trust_anchors(bundle).map(|_| ());
    }
    let anchors = crate::roots::decode_trust_anchors(bundle)?;
    let _ = REGISTERED_ROOTS.set(anchors);
    Ok(())
}

fn registered_bundle() -> Option<&'static [TrustAnchor<'static>]> {
    REGISTERED_ROOTS.get().map(Vec::as_slice)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_as_people_write_them() {
        for text in ["TLSv1.2", "1.2", "tls1_2", "TLS1.2"] {
            assert_eq!(
                TlsVersion::parse(text).ok(),
                Some(TlsVersion::Tls12),
                "{text}"
            );
        }
        assert_eq!(TlsVersion::parse("TLSv1.3").ok(), Some(TlsVersion::Tls13));
        let err = TlsVersion::parse("SSLv3").err().map(|e| e.code());
        assert_eq!(err, Some("invalid-config"));
    }

    #[test]
    fn equal_options_share_one_configuration() {
        let mut options = ConfigOptions::new("example.com");
        options.alpn = vec!["h2".into()];
        let a = options.shared().ok();
        let b = options.clone().shared().ok();
        let same = match (&a, &b) {
            (Some(a), Some(b)) => std::sync::Arc::ptr_eq(&a.rustls, &b.rustls),
            _ => false,
        };
        assert!(same, "equal options built twice");
        options.alpn = vec!["http/1.1".into()];
        let c = options.shared().ok();
        let different = match (&a, &c) {
            (Some(a), Some(c)) => !std::sync::Arc::ptr_eq(&a.rustls, &c.rustls),
            _ => false,
        };
        assert!(different, "different options shared a configuration");
    }

    #[test]
    fn the_key_stays_out_of_debug_output() {
        let mut options = ConfigOptions::new("example.com");
        options.client_auth = Some(ClientAuthPem {
            cert_chain_pem: "CERT".into(),
            key_pem: "SECRET KEY".into(),
        });
        assert!(!format!("{options:?}").contains("SECRET"));
    }
}
