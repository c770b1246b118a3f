//! Benchmarks of wasm-tls, written once and run by three hosts: natively and on
//! wasmtime (the `wasm-tls-bench` bin), and in a page (the `runBenchmarks` export,
//! wasm-bindgen). Each benchmark is in memory: the client is `wasm_tls::TlsClient`, the
//! server a rustls `ServerConnection` in the same process, with certificates made by
//! rcgen at start-up. `cargo xtask bench` runs all hosts and writes docs/benchmarks.md.

mod bulk;
mod clock;
mod counting;
// Their figures' fields (the report's JSON keys, which xtask/src/bench reads) are not
// documented yet.
#[allow(missing_docs)]
mod handshake;
mod memory;
mod pair;
mod pki;
#[allow(missing_docs)]
mod primitives;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod web;

use rustls::CipherSuite;
use serde::{Deserialize, Serialize};

pub use bulk::BulkFigure;
pub use handshake::HandshakeFigure;
pub use memory::MemoryFigure;
pub use primitives::PrimitiveFigure;

/// What to run; every field has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Input {
    /// A name for the report ("native", "wasmtime", "chromium", …).
    pub host: String,
    /// Two PKCS#8 PEM RSA-2048 keys (root, leaf); without them the RSA figures are skipped.
    pub rsa_keys_pem: Vec<String>,
    /// Rounds of each handshake figure (the median is reported).
    pub rounds: usize,
    /// Handshakes per round.
    pub handshakes: usize,
    /// Application bytes per bulk round, each way.
    pub bulk_bytes: usize,
    /// Rounds of each bulk figure.
    pub bulk_rounds: usize,
    /// Connections held open at once for the memory figure.
    pub connections: usize,
    /// Runs only the figures whose id starts with one of these, or whose group
    /// ("memory", "handshakes", "bulk", "primitives") is one of these (all if empty).
    pub only: Vec<String>,
}

impl Default for Input {
    fn default() -> Self {
        Self {
            host: "native".into(),
            rsa_keys_pem: Vec::new(),
            rounds: 5,
            handshakes: 20,
            bulk_bytes: 8 << 20,
            bulk_rounds: 3,
            connections: 1000,
            only: Vec::new(),
        }
    }
}

impl Input {
    /// Whether to run figure `id` of `group`.
    pub fn wants(&self, group: &str, id: &str) -> bool {
        self.only.is_empty()
            || self
                .only
                .iter()
                .any(|p| p == group || id.starts_with(p.as_str()))
    }
}

/// Everything measured in one run.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The input's name for the host.
    pub host: String,
    /// `std::env::consts::ARCH`/`OS`, e.g. "wasm32/wasi".
    pub target: String,
    /// The clock the figures were timed with.
    pub timer: String,
    /// The smallest step that clock was seen to take, in µs.
    pub timer_resolution_us: f64,
    /// What a connection holds; None if not run.
    pub memory: Option<MemoryFigure>,
    /// One figure per handshake run.
    pub handshakes: Vec<HandshakeFigure>,
    /// One figure per cipher suite run.
    pub bulk: Vec<BulkFigure>,
    /// ring's primitives alone.
    pub primitives: Vec<PrimitiveFigure>,
    /// Figures that could not be measured, and why.
    pub errors: Vec<String>,
    /// The whole run's time, in seconds.
    pub seconds: f64,
}

fn target() -> &'static str {
    if cfg!(all(target_arch = "wasm32", target_os = "unknown")) {
        "wasm32-unknown-unknown"
    } else if cfg!(all(target_arch = "wasm32", target_os = "wasi")) {
        "wasm32-wasip2"
    } else if cfg!(target_arch = "x86_64") {
        "x86_64 (native)"
    } else if cfg!(target_arch = "aarch64") {
        "aarch64 (native)"
    } else {
        std::env::consts::ARCH
    }
}

/// The median (the mean of the middle two for an even count); NaN if empty.
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Runs the benchmarks `input` asks for. It never fails: a figure that cannot be
/// measured is left out and its error listed.
pub fn run(input: &Input) -> Report {
    let started = clock::now_us();
    let mut report = Report {
        host: input.host.clone(),
        target: target().to_owned(),
        timer: clock::SOURCE.to_owned(),
        timer_resolution_us: clock::resolution_us(),
        memory: None,
        handshakes: Vec::new(),
        bulk: Vec::new(),
        primitives: Vec::new(),
        errors: Vec::new(),
        seconds: 0.0,
    };

    let ecdsa = match pki::ecdsa() {
        Ok(id) => id,
        Err(e) => {
            note(&mut report.errors, "certificates", e);
            return report;
        }
    };
    let rsa = match input.rsa_keys_pem.as_slice() {
        [ca, leaf] => match pki::rsa(ca, leaf) {
            Ok(id) => Some(id),
            Err(e) => {
                note(&mut report.errors, "RSA certificates", e);
                None
            }
        },
        _ => None,
    };
    let tls13 = &[&rustls::version::TLS13];
    let tls12 = &[&rustls::version::TLS12];

    // Memory first: the linear memory only grows, and the bulk figures grow it a lot.
    if input.wants("memory", "memory") {
        match pki::server_config(&ecdsa, tls13, None)
            .and_then(|server| memory::measure(&ecdsa, &server, input.connections))
        {
            Ok(m) => report.memory = Some(m),
            Err(e) => note(&mut report.errors, "memory", e),
        }
    }

    let mut scenarios = Vec::new();
    let mut add = |id, name, identity, versions, tls12_only| match pki::server_config(
        identity, versions, None,
    ) {
        Ok(server) => scenarios.push(handshake::Scenario {
            id,
            name,
            identity,
            server,
            tls12_only,
            post_quantum: false,
            fresh_configs: false,
        }),
        Err(e) => report.errors.push(format!("{id}: {e}")),
    };
    add(
        "tls13-ecdsa",
        "TLS 1.3, X25519, ECDSA P-256 chain",
        &ecdsa,
        tls13,
        false,
    );
    if let Some(rsa) = &rsa {
        add(
            "tls13-rsa",
            "TLS 1.3, X25519, RSA-2048 chain",
            rsa,
            tls13,
            false,
        );
    }
    add(
        "tls12-ecdsa",
        "TLS 1.2, ECDHE-ECDSA (X25519, P-256 chain)",
        &ecdsa,
        tls12,
        true,
    );
    // The same ECDSA handshake with nothing cached from an earlier one (a new
    // configuration each time), and with X25519MLKEM768 negotiated.
    if let Some(sc) = scenarios.first() {
        let first = handshake::Scenario {
            id: "tls13-ecdsa-first",
            name:
                "TLS 1.3, X25519, ECDSA P-256 chain, a new configuration each time (nothing cached)",
            identity: sc.identity,
            server: sc.server.clone(),
            tls12_only: false,
            post_quantum: false,
            fresh_configs: true,
        };
        scenarios.push(first);
    }
    match handshake::post_quantum_server(&ecdsa) {
        Ok(server) => scenarios.push(handshake::Scenario {
            id: "tls13-ecdsa-pq",
            name: "TLS 1.3, X25519MLKEM768, ECDSA P-256 chain",
            identity: &ecdsa,
            server,
            tls12_only: false,
            post_quantum: true,
            fresh_configs: false,
        }),
        Err(e) => note(&mut report.errors, "tls13-ecdsa-pq", e),
    }
    for sc in &scenarios {
        for resumed in [false, true] {
            if resumed && sc.fresh_configs {
                continue;
            }
            let id = format!("{}-{}", sc.id, if resumed { "resumed" } else { "full" });
            if !input.wants("handshakes", &id) {
                continue;
            }
            match handshake::measure(sc, resumed, input.handshakes, input.rounds) {
                Ok(f) => report.handshakes.push(f),
                Err(e) => note(&mut report.errors, &id, e),
            }
        }
    }

    for (id, suite) in [
        ("bulk-aes128gcm", CipherSuite::TLS13_AES_128_GCM_SHA256),
        ("bulk-aes256gcm", CipherSuite::TLS13_AES_256_GCM_SHA384),
        ("bulk-chacha20", CipherSuite::TLS13_CHACHA20_POLY1305_SHA256),
    ] {
        if !input.wants("bulk", id) {
            continue;
        }
        match bulk::measure(id, suite, &ecdsa, input.bulk_bytes, input.bulk_rounds) {
            Ok(f) => report.bulk.push(f),
            Err(e) => note(&mut report.errors, id, e),
        }
    }
    primitives::measure(
        &ecdsa,
        rsa.as_ref(),
        input,
        &mut report.primitives,
        &mut report.errors,
    );
    report.seconds = (clock::now_us() - started) / 1e6;
    report
}

fn note(errors: &mut Vec<String>, what: &str, e: String) {
    errors.push(format!("{what}: {e}"));
}

/// [`run`] with JSON in and out; what the hosts call.
pub fn run_json(input: &str) -> String {
    let report = match serde_json::from_str::<Input>(input) {
        Ok(input) => run(&input),
        Err(e) => Report {
            host: String::new(),
            target: String::new(),
            timer: clock::SOURCE.to_owned(),
            timer_resolution_us: f64::NAN,
            memory: None,
            handshakes: Vec::new(),
            bulk: Vec::new(),
            primitives: Vec::new(),
            errors: vec![format!("input: {e}")],
            seconds: 0.0,
        },
    };
    serde_json::to_string_pretty(&report)
        .unwrap_or_else(|e| format!("{{\"errors\": [\"output: {e}\"]}}"))
}
