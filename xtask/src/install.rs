//! Installs what the commands need, at pinned versions, skipping what is present.

use std::path::Path;
use std::process::Command;

use crate::{cargo, output, run};

/// Must equal the `wasm-bindgen` crate's `=` version in Cargo.toml.
pub const WASM_BINDGEN_VERSION: &str = "0.2.130";
/// The newest wasmtime that builds with the project's Rust (1.95).
pub const WASMTIME_VERSION: &str = "48.0.8";

/// Debian packages: clang compiles ring's C for wasm; chromium and
/// chromium-driver run the browser tests; openssl and gnutls-bin are test servers;
/// websockify is a relay nobody here wrote; dovecot and postgresql are the real
/// servers of tls-client's --starttls tests.
const APT_TEST: &[&str] = &[
    "clang",
    "openssl",
    "chromium",
    "chromium-driver",
    "gnutls-bin",
    "websockify",
    "nodejs",
    "npm",
    // The interop matrix: nginx, lighttpd with mbedTLS and with wolfSSL, and `ip`
    // for gnutls-serv's network namespace.
    "nginx",
    "lighttpd",
    "lighttpd-mod-mbedtls",
    "lighttpd-mod-wolfssl",
    "iproute2",
    // tls-client --starttls and wasm-tls/node's client libraries: IMAP and POP3,
    // PostgreSQL (nginx, above, serves undici).
    "dovecot-imapd",
    "dovecot-pop3d",
    "postgresql",
];

fn installed(package: &str) -> bool {
    output(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]))
        .is_some_and(|s| s.contains("install ok installed"))
}

fn have(program: &str) -> bool {
    output(Command::new("sh").args(["-c", &format!("command -v {program}")])).is_some()
}

/// Installs the Debian packages that are missing (a program on PATH counts as present,
/// so a machine with Node.js from elsewhere keeps it).
pub fn apt(packages: &[&str]) -> Result<(), String> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !installed(p))
        .filter(|p| match *p {
            "nodejs" => !have("node"),
            "npm" => !have("npm"),
            _ => true,
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("installing Debian packages: {}", missing.join(" "));
    run(Command::new("apt-get").arg("update").arg("-qq"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

pub fn rustup_target(target: &str) -> Result<(), String> {
    let installed =
        output(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if installed.lines().any(|l| l.trim() == target) {
        return Ok(());
    }
    run(Command::new("rustup").args(["target", "add", target]))
}

/// `cargo install`s a tool unless `program --version` already names `version`.
fn cargo_tool(program: &str, version: &str, install_args: &[&str]) -> Result<(), String> {
    let current = output(Command::new(program).arg("--version")).unwrap_or_default();
    if current.contains(version) {
        return Ok(());
    }
    eprintln!("building {program} {version} (slow the first time; cached in ~/.cargo/bin)");
    run(&mut cargo(install_args))
}

pub fn wasm_bindgen() -> Result<(), String> {
    cargo_tool(
        "wasm-bindgen",
        WASM_BINDGEN_VERSION,
        &[
            "install",
            "-j2",
            "wasm-bindgen-cli",
            "--version",
            WASM_BINDGEN_VERSION,
        ],
    )
}

/// cargo-fuzz, for the fuzz targets in fuzz/ (libFuzzer; run with RUSTC_BOOTSTRAP=1).
pub const CARGO_FUZZ_VERSION: &str = "0.13.2";

pub fn cargo_fuzz() -> Result<(), String> {
    let spec = format!("cargo-fuzz@{CARGO_FUZZ_VERSION}");
    cargo_tool(
        "cargo-fuzz",
        CARGO_FUZZ_VERSION,
        &["install", "-j2", "--locked", &spec],
    )
}

pub fn wasmtime() -> Result<(), String> {
    let spec = format!("wasmtime-cli@{WASMTIME_VERSION}");
    cargo_tool(
        "wasmtime",
        WASMTIME_VERSION,
        &["install", "-j2", "--locked", &spec],
    )
}

/// The wasm-tools that extracts the components' WIT in the tests (1.263 needs Rust 1.88).
pub const WASM_TOOLS_VERSION: &str = "1.263.0";
/// wac, which plugs the library component into the test consumer.
pub const WAC_VERSION: &str = "0.12.0";

/// About 4 minutes to build on two cores, the first time.
pub fn wasm_tools() -> Result<(), String> {
    let spec = format!("wasm-tools@{WASM_TOOLS_VERSION}");
    cargo_tool(
        "wasm-tools",
        WASM_TOOLS_VERSION,
        &["install", "-j2", "--locked", &spec],
    )
}

/// About 6 minutes to build on two cores, the first time.
pub fn wac() -> Result<(), String> {
    let spec = format!("wac-cli@{WAC_VERSION}");
    cargo_tool("wac", WAC_VERSION, &["install", "-j2", "--locked", &spec])
}

/// What building and testing the WASI components needs.
pub fn for_wasi(root: &Path) -> Result<(), String> {
    apt(&["clang", "openssl", "nodejs", "npm"])?;
    rustup_target("wasm32-wasip2")?;
    wasmtime()?;
    wasm_tools()?;
    wac()?;
    npm(root, "tests/wasi")
}

/// npm packages of `dir` (relative to the root), exactly as its lock file has them.
pub fn npm(root: &Path, dir: &str) -> Result<(), String> {
    let dir = root.join(dir);
    let lock = dir.join("package-lock.json");
    let marker = dir.join("node_modules/.package-lock.json");
    let fresh = match (lock.metadata(), marker.metadata()) {
        (Ok(l), Ok(m)) => match (l.modified(), m.modified()) {
            (Ok(l), Ok(m)) => m >= l,
            _ => false,
        },
        _ => false,
    };
    if fresh {
        return Ok(());
    }
    run(Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir))
}

/// What building the npm package needs (wasm-opt comes from npm: Debian's binaryen is
/// too old for the reference types that wasm-bindgen emits).
pub fn for_pkg(root: &Path) -> Result<(), String> {
    apt(&["clang", "nodejs", "npm"])?;
    rustup_target("wasm32-unknown-unknown")?;
    wasm_bindgen()?;
    npm(root, "xtask/npm")
}

/// What the tests need.
pub fn everything(root: &Path) -> Result<(), String> {
    apt(APT_TEST)?;
    rustup_target("wasm32-unknown-unknown")?;
    rustup_target("wasm32-wasip2")?;
    wasm_bindgen()?;
    npm(root, "xtask/npm")?;
    npm(root, "tests/browser")?;
    npm(root, "tests/types")?;
    cargo_fuzz()?;
    for_wasi(root)
}

/// What the demo needs.
pub fn for_demo() -> Result<(), String> {
    apt(&["openssl"])
}
