//! Handshake cost: the client's time inside `TlsClient` calls, and the total with the
//! in-memory rustls server, per handshake.

use std::sync::Arc;

use rustls::server::ServerSessionMemoryCache;
use rustls::{ServerConfig, ServerConnection};
use serde::Serialize;
use wasm_tls::TlsClient;

use crate::clock::{now_us, Stopwatch};
use crate::median;
use crate::pair::{connect, handshake_all, Pair};
use crate::pki::Identity;

/// One handshake figure.
#[derive(Debug, Serialize)]
pub struct HandshakeFigure {
    pub id: String,
    pub name: String,
    pub resumed: bool,
    /// Median over rounds of the client's µs per handshake.
    pub client_us: f64,
    /// Median over rounds of the client's and server's µs per handshake.
    pub total_us: f64,
    pub rounds_client_us: Vec<f64>,
    pub rounds_total_us: Vec<f64>,
    pub handshakes_per_round: usize,
    /// What was negotiated, e.g. "TLSv1.3 TLS13_AES_128_GCM_SHA256 X25519".
    pub negotiated: String,
}

/// A handshake scenario.
pub struct Scenario<'a> {
    pub id: &'static str,
    pub name: &'static str,
    pub identity: &'a Identity,
    pub server: Arc<ServerConfig>,
    pub tls12_only: bool,
    /// Whether the client offers X25519MLKEM768 (a server from [`post_quantum_server`]
    /// takes it; others take the X25519 share sent beside it).
    pub post_quantum: bool,
    /// A new client configuration for each handshake, so that none finds the
    /// certificate's signature in its configuration's cache of verified signatures.
    pub fresh_configs: bool,
}

/// The client's configuration for `sc`: its root only, resumption on or off.
fn client_config(sc: &Scenario<'_>, resumption: bool) -> Result<wasm_tls::Config, String> {
    let mut builder = wasm_tls::Config::builder("localhost")
        .without_bundled_roots()
        .add_root_der(&sc.identity.root_der)
        .resumption(resumption)
        .post_quantum(sc.post_quantum);
    if sc.tls12_only {
        builder = builder.max_version(wasm_tls::TlsVersion::Tls12);
    }
    builder.build().map_err(|e| format!("client config: {e}"))
}

/// A TLS 1.3 rustls server on ring with the client's X25519MLKEM768 first among its
/// groups. Its session cache holds every ticket a benchmark issues.
pub fn post_quantum_server(id: &Identity) -> Result<Arc<ServerConfig>, String> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.kx_groups.insert(0, wasm_tls::X25519MLKEM768);
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| format!("server versions: {e}"))?
        .with_no_client_auth()
        .with_single_cert(id.chain.clone(), id.key.clone_key())
        .map_err(|e| format!("server certificate: {e}"))?;
    config.session_storage = ServerSessionMemoryCache::new(8192);
    Ok(Arc::new(config))
}

/// Runs `rounds` rounds of `n` handshakes each, after one untimed round (so that caches
/// are warm and V8 has tiered the hot code up).
pub fn measure(
    sc: &Scenario<'_>,
    resumed: bool,
    n: usize,
    rounds: usize,
) -> Result<HandshakeFigure, String> {
    let mut client_us = Vec::new();
    let mut total_us = Vec::new();
    let mut negotiated = String::new();
    for round in 0..=rounds {
        // Configurations are made (and, to resume, given a session) untimed; one per
        // connection when resuming, so that each has a ticket of its own.
        let configs = if resumed {
            (0..n)
                .map(|_| {
                    let config = client_config(sc, true)?;
                    connect(&config, &sc.server)?;
                    Ok(config)
                })
                .collect::<Result<Vec<_>, String>>()?
        } else if sc.fresh_configs {
            (0..n)
                .map(|_| client_config(sc, false))
                .collect::<Result<Vec<_>, String>>()?
        } else {
            vec![client_config(sc, false)?]
        };

        let mut client = Stopwatch::default();
        let start = now_us();
        let clients = client.time(|| {
            (0..n)
                .map(|i| TlsClient::new(&configs[i % configs.len()]))
                .collect::<Result<Vec<_>, _>>()
        });
        let clients = clients.map_err(|e| format!("client: {e}"))?;
        let mut pairs = clients
            .into_iter()
            .map(|c| {
                ServerConnection::new(sc.server.clone())
                    .map(|s| Pair::new(c, s))
                    .map_err(|e| format!("server: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        handshake_all(&mut pairs, &mut client)?;
        let elapsed = now_us() - start;

        for pair in &pairs {
            let info = pair
                .client
                .handshake_info()
                .ok_or("no handshake information")?;
            if info.resumed != resumed {
                return Err(format!(
                    "{}: expected resumed = {resumed}, got {}",
                    sc.id, info.resumed
                ));
            }
            if negotiated.is_empty() {
                negotiated = format!(
                    "{} {} {}",
                    info.version.name(),
                    info.cipher_suite,
                    info.key_exchange_group.as_deref().unwrap_or("-")
                );
            }
        }
        drop(pairs);
        if round == 0 {
            continue;
        }
        client_us.push(client.total_us() / n as f64);
        total_us.push(elapsed / n as f64);
    }
    Ok(HandshakeFigure {
        id: format!("{}-{}", sc.id, if resumed { "resumed" } else { "full" }),
        name: sc.name.to_owned(),
        resumed,
        client_us: median(&client_us),
        total_us: median(&total_us),
        rounds_client_us: client_us,
        rounds_total_us: total_us,
        handshakes_per_round: n,
        negotiated,
    })
}
