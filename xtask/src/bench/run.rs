//! Running the hosts: the inputs they read, the native and wasmtime builds and runs,
//! the page in Chromium, the end-to-end servers, the Wisp figures and the WASI
//! components' sizes. Each returns the host's JSON report as it wrote it.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Serialize;
use serde_json::Value;

use super::{
    BUILD_DIR, LEVER_BULK, NATIVE_BENCH, NATIVE_BULK, NATIVE_ROUNDS, WASM_BENCH, WASM_BULK,
    WASM_ROUNDS,
};
use crate::demo::Guard;
use crate::pkg::{file_len, gzip_len};
use crate::{cargo, pkg, run};

pub fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn write(path: &Path, text: &str) -> Result<(), String> {
    fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn mkdir(path: &Path) -> Result<(), String> {
    fs::create_dir_all(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses a host's report.
pub fn parse(text: &str, what: &Path) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("{}: {e}", what.display()))
}

/// Runs a command, echoing it, and returns its stdout; stderr goes to ours.
fn capture(cmd: &mut Command) -> Result<String, String> {
    let what = format!("{cmd:?}");
    eprintln!("+ {what}");
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{what} failed ({})", out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What a host runs: bench/src/lib.rs's `Input`.
#[derive(Serialize)]
struct Input<'a> {
    host: &'a str,
    rounds: usize,
    handshakes: usize,
    bulk_bytes: usize,
    bulk_rounds: usize,
    connections: usize,
    only: &'a [&'a str],
    rsa_keys_pem: &'a [String; 2],
}

/// RSA keys for the benchmarks, a PKI for the end-to-end server, and the inputs.
pub fn inputs(dir: &Path) -> Result<(), String> {
    let pki = dir.join("pki");
    mkdir(&pki)?;
    // The end-to-end server's PKI, as the demo makes it; RSA keys for the in-memory
    // RSA handshakes (rcgen cannot generate RSA keys with ring).
    crate::demo::make_pki(&pki, "wasm-tls benchmarks")?;
    let script = r#"
set -e
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa-ca.key 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa-leaf.key 2>/dev/null
"#;
    run(Command::new("sh").arg("-c").arg(script).current_dir(&pki))?;
    let keys = [
        read(&pki.join("rsa-ca.key"))?,
        read(&pki.join("rsa-leaf.key"))?,
    ];
    let write_input = |file: &str, host, rounds, bulk_bytes, only: &[&str]| {
        let input = Input {
            host,
            rounds,
            handshakes: 20,
            bulk_bytes,
            bulk_rounds: 3,
            connections: 1000,
            only,
            rsa_keys_pem: &keys,
        };
        let text = serde_json::to_string(&input).map_err(|e| e.to_string())?;
        write(&dir.join(file), &(text + "\n"))
    };
    // Native rounds take milliseconds: more of them, so that a moment's contention moves
    // the median less.
    write_input(
        "native-input.json",
        "native",
        NATIVE_ROUNDS,
        NATIVE_BULK,
        &[],
    )?;
    write_input("wasm-input.json", "wasm", WASM_ROUNDS, WASM_BULK, &[])?;
    // Three rounds per call; chromium.mjs makes passes over the builds, interleaved.
    write_input(
        "levers-input.json",
        "lever",
        3,
        LEVER_BULK,
        &[
            "tls13-ecdsa",
            "bulk-aes128gcm",
            "bulk-chacha20",
            "p256-verify",
            "x25519",
        ],
    )
}

pub fn build_native(root: &Path) -> Result<(), String> {
    run(cargo(&[
        "build",
        "-j2",
        "--release",
        "-p",
        "wasm-tls-bench",
        "--bin",
        "wasm-tls-bench",
    ])
    .env("CARGO_TARGET_DIR", root.join(BUILD_DIR)))
}

pub fn run_native(root: &Path, dir: &Path) -> Result<Value, String> {
    let text = capture(
        Command::new(root.join(NATIVE_BENCH))
            .arg("--input")
            .arg(dir.join("native-input.json"))
            .arg("--json"),
    )?;
    let out = dir.join("native.json");
    write(&out, &text)?;
    parse(&text, &out)
}

pub fn build_wasip2(root: &Path) -> Result<(), String> {
    run(cargo(&[
        "build",
        "-j2",
        "--profile",
        "wasm-release",
        "--target",
        "wasm32-wasip2",
        "-p",
        "wasm-tls-bench",
        "--bin",
        "wasm-tls-bench",
    ])
    .env("CC_wasm32_wasip2", "clang")
    .env("CARGO_TARGET_DIR", root.join(BUILD_DIR)))
}

pub fn run_wasmtime(root: &Path, dir: &Path) -> Result<Value, String> {
    let input = fs::File::open(dir.join("wasm-input.json")).map_err(|e| e.to_string())?;
    let text = capture(
        Command::new("wasmtime")
            .arg("run")
            .arg(root.join(WASM_BENCH))
            .args(["--input", "-", "--json"])
            .stdin(input),
    )?;
    let out = dir.join("wasmtime.json");
    write(&out, &text)?;
    parse(&text, &out)
}

fn wasm_bindgen(wasm: &Path, out_dir: &Path, out_name: &str) -> Result<(), String> {
    run(Command::new("wasm-bindgen")
        .args(["--target", "web", "--out-name", out_name, "--out-dir"])
        .arg(out_dir)
        .arg(wasm))
}

/// Binds the bench crate's page module (built in `target_dir`) into `out` and runs
/// wasm-opt on it as the package's wasm is (`pkg::wasm_opt`); an un-optimized copy goes
/// to `raw` if given.
pub fn build_web(
    root: &Path,
    target_dir: &Path,
    out: &Path,
    raw: Option<&Path>,
    simd: bool,
) -> Result<(), String> {
    let wasm = target_dir.join("wasm32-unknown-unknown/wasm-release/wasm_tls_bench.wasm");
    mkdir(out)?;
    wasm_bindgen(&wasm, out, "wasm_tls_bench")?;
    if let Some(raw) = raw {
        mkdir(raw)?;
        wasm_bindgen(&wasm, raw, "wasm_tls_bench")?;
    }
    pkg::wasm_opt(root, &out.join("wasm_tls_bench_bg.wasm"), simd, false)
}

/// Runs bench/chromium.mjs with `args` and reads what it wrote to `out`.
pub fn chromium(root: &Path, args: &[std::ffi::OsString], out: &Path) -> Result<Value, String> {
    run(Command::new("node")
        .arg(root.join("bench/chromium.mjs"))
        .args(args)
        .arg("--out")
        .arg(out)
        .current_dir(root))?;
    let json = parse(&read(out)?, out)?;
    if let Some(first) = json["errors"].as_array().and_then(|e| e.first()) {
        return Err(format!("in Chromium: {}", first.as_str().unwrap_or("?")));
    }
    Ok(json)
}

/// The Wisp figures of tests/browser/wisp.test.mjs (`figures:` tests), written to `out`.
pub fn wisp_figures(root: &Path, out: &Path) -> Result<Value, String> {
    let _ = fs::remove_file(out);
    run(Command::new("node")
        .args([
            "--test",
            "--test-concurrency=1",
            "--test-name-pattern=^figures:",
        ])
        .arg("tests/browser/wisp.test.mjs")
        .env("WASM_TLS_WISP_FIGURES", out)
        .current_dir(root))?;
    parse(&read(out)?, out)
}

/// Starts the rustls test server (release build) with the PKI's leaf.
pub fn start_test_server(root: &Path, pki: &Path) -> Result<(Guard, u16), String> {
    let mut child = Command::new(root.join("target/release/examples/test_server"))
        .arg("--cert")
        .arg(pki.join("server.pem"))
        .arg("--key")
        .arg(pki.join("server.key"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start test_server: {e}"))?;
    let stdout = child.stdout.take().ok_or("no test_server stdout")?;
    let guard = Guard(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let port = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("test_server said '{}'", line.trim()))?;
    Ok((guard, port))
}

/// The WASI components' sizes (path, bytes, gzipped): as `cargo xtask build-wasi` leaves
/// them, else cargo's output; this command does not build them.
pub fn wasi_components(root: &Path) -> Vec<(String, u64, u64)> {
    let mut found = Vec::new();
    for sub in ["target/wasi", "target/wasm32-wasip2/wasm-release"] {
        let Ok(entries) = fs::read_dir(root.join(sub)) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
            .collect();
        files.sort();
        for f in files {
            if let (Ok(len), Ok(gz)) = (file_len(&f), gzip_len(&f)) {
                let name = f
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                found.push((format!("{sub}/{name}"), len, gz));
            }
        }
        if !found.is_empty() {
            break;
        }
    }
    found
}
