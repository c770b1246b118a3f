//! `cargo xtask bench`: builds the benchmarks (the `bench/` crate) for three hosts —
//! native, wasmtime (wasm32-wasip2) and headless Chromium (wasm32-unknown-unknown with
//! wasm-bindgen) — runs them, measures the npm package's size and an end-to-end download
//! through the relay, tries the documented speed levers, and writes docs/benchmarks.md.
//!
//! Benchmarks report; they do not judge. A figure that cannot be measured is shown as
//! missing, with the reason; the command fails only if a stage broke.
//!
//! Here the stages in order; in `bench/`: `run` (the hosts' builds and runs),
//! `levers` (the speed levers), `machine` (machine facts and interference), `render`
//! and `sections` (the report, with its prose in `benchmarks.md.in`), `only` (`--only
//! ID,…`: a few figures, printed), `datapath` (the data path's benchmark, also
//! `--only datapath`) and `http` (wasm-tls/http's, also `--only http`).

use std::fs;
use std::path::Path;
use std::time::Instant;

use serde_json::Value;

/// `(key, value)` pairs for `render::Template::fill`: `values! { key: value, … }`.
macro_rules! values {
    ($($key:ident: $value:expr),* $(,)?) => {
        &[$((stringify!($key), $value.to_string())),*]
    };
}

mod datapath;
mod http;
mod levers;
mod machine;
mod only;
mod render;
mod run;
mod sections;

use crate::demo::start_relay;
use crate::stages::Stages;
use crate::{install, pkg};
use levers::{LeverRow, SHIPPED};
use machine::{load_average, quiet, BUSY, BUSY_CHROMIUM};
use run::{mkdir, write};

/// Bytes per bulk round natively (fast: more bytes for a measurable time) and in wasm.
const NATIVE_BULK: usize = 64 << 20;
const WASM_BULK: usize = 8 << 20;
/// Rounds of each handshake and primitive figure (after one untimed round).
const NATIVE_ROUNDS: usize = 21;
const WASM_ROUNDS: usize = 7;
/// Bytes per bulk round of the levers' runs.
const LEVER_BULK: usize = 2 << 20;
/// The end-to-end download's size.
const E2E_BYTES: usize = 16 << 20;

/// The benchmarks build in a target directory of their own, so that their feature sets
/// never replace artifacts the package and the WASI builds uplift in `target/` (a wasm
/// cdylib's file name carries no hash of its features).
const BUILD_DIR: &str = "target/bench-build";
const NATIVE_BENCH: &str = "target/bench-build/release/wasm-tls-bench";
const WASM_BENCH: &str = "target/bench-build/wasm32-wasip2/wasm-release/wasm-tls-bench.wasm";

/// Installs what the benchmarks need.
fn install_for_bench(root: &Path) -> Result<(), String> {
    install::apt(&["clang", "openssl", "chromium", "nodejs", "npm"])?;
    install::for_pkg(root)?;
    install::rustup_target("wasm32-wasip2")?;
    install::wasmtime()?;
    install::npm(root, "tests/browser")
}

/// What a run measured, for the report.
#[derive(Default)]
struct Results {
    /// Each host's report and how many CPUs other processes kept busy meanwhile.
    native: Option<(Value, Option<f64>)>,
    wasmtime: Option<(Value, Option<f64>)>,
    chromium: Option<(Value, Option<f64>)>,
    package: Option<pkg::Sizes>,
    /// The WASI components: path, bytes, gzipped bytes.
    wasi: Vec<(String, u64, u64)>,
    levers: Vec<LeverRow>,
    levers_run: Option<(Value, Option<f64>)>,
    /// The Wisp figures of tests/browser/wisp.test.mjs, from one Chromium run.
    wisp: Option<Value>,
}

pub fn main(root: &Path, args: &[String]) -> Result<(), String> {
    if let Some(result) = datapath::only(root, args) {
        return result;
    }
    if let Some(result) = http::only(root, args) {
        return result;
    }
    if let Some(ids) = only::figures(args) {
        return only::run_figures(root, ids);
    }
    let started = Instant::now();
    let with_levers = !args.iter().any(|a| a == "--no-levers");
    let load_before = load_average();
    let dir = root.join("target/bench");
    mkdir(&dir.join("levers"))?;
    let mut stages = Stages::new("bench: ");

    stages
        .run("install", || install_for_bench(root))
        .ok_or("cannot install what the benchmarks need")?;
    stages
        .run("certificates and inputs", || run::inputs(&dir))
        .ok_or("cannot make the inputs")?;

    let mut r = Results::default();
    if stages
        .run("native: build", || run::build_native(root))
        .is_some()
    {
        r.native = stages.run("native: run", || {
            quiet(BUSY, || run::run_native(root, &dir))
        });
    }
    if stages
        .run("wasm32-wasip2: build", || run::build_wasip2(root))
        .is_some()
    {
        r.wasmtime = stages.run("wasmtime: run", || {
            quiet(BUSY, || run::run_wasmtime(root, &dir))
        });
    }

    // Size: the real package, which the end-to-end figure also loads.
    r.package = stages.run("size: the npm package (pkg::build)", || pkg::build(root));
    r.wasi = run::wasi_components(root);

    let shipped = stages.run(
        "wasm32-unknown-unknown: build the bench page as the package ships",
        || levers::build_variant(root, &dir, &SHIPPED, true),
    );
    let web = dir.join("variants/shipped/web");
    let servers_built = stages.run(
        "end to end: build the relay and the test server",
        datapath::build_servers,
    );
    if shipped.is_some() {
        r.chromium = stages.run("Chromium: in-memory benchmarks and end to end", || {
            quiet(BUSY_CHROMIUM, || {
                let mut args: Vec<std::ffi::OsString> = vec![
                    "--web".into(),
                    web.clone().into(),
                    "--input".into(),
                    dir.join("wasm-input.json").into(),
                ];
                let mut guards = Vec::new();
                if servers_built.is_some() && r.package.is_some() {
                    let (server, port) = run::start_test_server(root, &dir.join("pki"))?;
                    guards.push(server);
                    let (relay, url) = start_relay(root, &format!("127.0.0.1:{port}"))?;
                    guards.push(relay);
                    args.extend([
                        "--relay".into(),
                        url.into(),
                        "--target".into(),
                        format!("127.0.0.1:{port}").into(),
                        "--ca".into(),
                        dir.join("pki/ca.pem").into(),
                        "--download-bytes".into(),
                        E2E_BYTES.to_string().into(),
                    ]);
                }
                run::chromium(root, &args, &dir.join("chromium.json"))
            })
        });
    }

    if servers_built.is_some() && r.package.is_some() {
        let out = dir.join("wisp.json");
        r.wisp = stages.run(
            "Chromium: 20 connections at once, raw and over Wisp",
            || run::wisp_figures(root, &out),
        );
    }

    stages.run("data path: the package against its ceiling", || {
        datapath::run_all(root, args, r.package.is_none())
    });
    stages.run(
        "http: fetch against the socket, the ceiling and the peers",
        || http::run_all(root, args, r.package.is_none()),
    );

    if let (true, Some(shipped)) = (with_levers, shipped) {
        (r.levers, r.levers_run) = levers::run_all(&mut stages, root, &dir, shipped, &web);
    }

    let total = started.elapsed().as_secs_f64();
    let doc = render::render(root, &r, &stages, total, &load_before, with_levers);
    let path = datapath::doc_path(root, args);
    if let Some(parent) = path.parent() {
        mkdir(parent)?;
    }
    let old = fs::read_to_string(&path).unwrap_or_default();
    write(&path, &datapath::keep_sections(&old, doc))?;
    eprintln!("\nwrote {} ({total:.0} s in all)", path.display());
    stages.print_timings(55);
    let failures = stages.failures();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} stage(s) failed (the report shows what was measured): {}",
            failures.len(),
            failures.join("; ")
        ))
    }
}
