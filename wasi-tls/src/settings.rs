//! The settings `wasi:tls` leaves to the host, read from the environment
//! (`wasi:cli/environment`): every host provides it, so a composition needs nothing
//! more when nothing is configured. See `wit/README.md` for the choice.

use wasm_tls::{Config, ConfigBuilder, Error};

/// PEM certificates trusted in addition to the bundled Mozilla roots.
pub const ROOTS_PEM: &str = "WASM_TLS_ROOTS_PEM";
/// `1` to trust only [`ROOTS_PEM`], not the bundled roots.
pub const NO_BUNDLED_ROOTS: &str = "WASM_TLS_NO_BUNDLED_ROOTS";
/// The ALPN protocols to offer, comma-separated, in order of preference.
pub const ALPN: &str = "WASM_TLS_ALPN";
/// The client certificate chain (PEM); with [`CLIENT_KEY_PEM`].
pub const CLIENT_CERT_PEM: &str = "WASM_TLS_CLIENT_CERT_PEM";
/// The client certificate's private key (PEM); with [`CLIENT_CERT_PEM`].
pub const CLIENT_KEY_PEM: &str = "WASM_TLS_CLIENT_KEY_PEM";

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// The configuration for a connection to `server_name` with the settings the
/// environment gives. Verification is always on: no setting turns it off.
pub fn config(server_name: &str) -> Result<Config, Error> {
    apply(Config::builder(server_name), var).build()
}

/// Applies the settings that `lookup` finds (by variable name) to `builder`.
fn apply(mut builder: ConfigBuilder, lookup: impl Fn(&str) -> Option<String>) -> ConfigBuilder {
    if lookup(NO_BUNDLED_ROOTS).as_deref() == Some("1") {
        builder = builder.without_bundled_roots();
    }
    if let Some(pem) = lookup(ROOTS_PEM) {
        builder = builder.add_roots_pem(&pem);
    }
    if let Some(list) = lookup(ALPN) {
        let protocols: Vec<&str> = list.split(',').map(str::trim).collect();
        builder = builder.alpn(&protocols);
    }
    // One without the other is a configuration error the build reports.
    match (lookup(CLIENT_CERT_PEM), lookup(CLIENT_KEY_PEM)) {
        (None, None) => {}
        (cert, key) => {
            builder = builder.client_auth_pem(&cert.unwrap_or_default(), &key.unwrap_or_default());
        }
    }
    builder
}
