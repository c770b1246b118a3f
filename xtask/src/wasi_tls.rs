//! The standard `wasi:tls` (0.3.0-draft, the version wasmtime 48 implements): the
//! provider component (`wasi-tls/`, exporting it on wasm-tls's core), the test consumer
//! written only against the standard WIT (`tests/wasi-tls-consumer/`), the two plugged
//! together with `wac`, and `tests/wasi-tls/` running the consumer on wasmtime's own
//! `-S tls` and composed with the provider.
//!
//! Both crates are their own workspaces, built for wasm32-wasip2 only, into their own
//! target directory (`target/wasi-tls/`); the components land in `target/wasi/`.

use std::path::Path;
use std::process::Command;

use crate::install;
use crate::pkg::{file_len, gzip_len};
use crate::{cargo, run};

const TARGET: &str = "wasm32-wasip2";
/// The provider, then the consumer (manifests relative to the root).
const CRATES: [&str; 2] = ["wasi-tls/Cargo.toml", "tests/wasi-tls-consumer/Cargo.toml"];

/// `cargo <args>` for one of the crates, for wasm32-wasip2, in `target/wasi-tls/`.
///
/// The consumer's lock file pins all it builds. The provider's also holds the root
/// crate's dependencies, which change with the root crate (and are pinned by the root's
/// lock file): it is not `--locked`, so cargo adds what changed and keeps the rest.
fn wasi_cargo(root: &Path, manifest: &str, args: &[&str]) -> Command {
    let mut cmd = cargo(args);
    if !manifest.starts_with("wasi-tls/") {
        cmd.arg("--locked");
    }
    cmd.args(["-j2", "--release", "--target", TARGET])
        .arg("--manifest-path")
        .arg(root.join(manifest))
        .env("CARGO_TARGET_DIR", root.join("target/wasi-tls"))
        // ring's C code needs a compiler that targets wasm32.
        .env("CC_wasm32_wasip2", "clang");
    cmd
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|err| format!("cannot copy {} to {}: {err}", from.display(), to.display()))
}

/// Formats-check and lints both crates (`cargo fmt --all` does not see them).
pub fn lint(root: &Path) -> Result<(), String> {
    for manifest in CRATES {
        run(cargo(&["fmt", "--manifest-path"])
            .arg(root.join(manifest))
            .args(["--", "--check"]))?;
        run(wasi_cargo(root, manifest, &["clippy"]).args(["--", "-D", "warnings"]))?;
    }
    Ok(())
}

/// Builds the provider, the consumer and their composition into `target/wasi/`.
pub fn build(root: &Path) -> Result<(), String> {
    let out = root.join("target/wasi");
    std::fs::create_dir_all(&out).map_err(|err| format!("{}: {err}", out.display()))?;
    for manifest in CRATES {
        run(&mut wasi_cargo(root, manifest, &["build"]))?;
    }
    let built = root.join("target/wasi-tls").join(TARGET).join("release");
    let provider = out.join("wasi-tls-provider.wasm");
    let consumer = out.join("wasi-tls-consumer.wasm");
    copy(&built.join("wasi_tls_provider.wasm"), &provider)?;
    copy(&built.join("wasi_tls_consumer.wasm"), &consumer)?;
    let composed = out.join("wasi-tls-composed.wasm");
    run(Command::new("wac")
        .arg("plug")
        .arg("--plug")
        .arg(&provider)
        .arg(&consumer)
        .arg("-o")
        .arg(&composed))?;
    eprintln!(
        "size of the wasi:tls provider (wasi-tls-provider.wasm): {} bytes ({} gzipped)",
        file_len(&provider)?,
        gzip_len(&provider)?
    );
    Ok(())
}

/// Lints and builds, then runs `tests/wasi-tls/` (wasmtime, openssl s_server, nginx).
pub fn test(root: &Path) -> Result<(), String> {
    install::for_wasi(root)?;
    // The borrowed root of the tests' CA comes from ca-certificates (tests/wasi-tls/).
    install::apt(&["ca-certificates", "nginx", "openssl"])?;
    lint(root)?;
    build(root)?;
    run(Command::new("node")
        .args(["--test", "--test-concurrency=1"])
        .arg("tests/wasi-tls/wasi-tls.test.mjs")
        .current_dir(root))
}
