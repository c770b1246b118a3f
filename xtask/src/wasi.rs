//! The WASI side: the library component (the crate for wasm32-wasip2 with the
//! `component` feature, exporting `wit/`), `tls-client` as a WASI command, the test
//! consumer component plugged into the library with `wac`, and jco's transpiled
//! JavaScript of the library for Node.js.
//!
//! Everything lands in `target/wasi/` (and the JS in `tests/wasi/jco/`, next to the
//! npm packages it imports); `tests/wasi/wasi.test.mjs` runs it, and the `wasmtime`
//! tests of `tests/starttls.rs` run `tls-client.wasm` against the servers the native
//! command meets there (dovecot, PostgreSQL, scripted ones).

use std::path::Path;
use std::process::Command;

use crate::pkg::{file_len, gzip_len};
use crate::{cargo, run};

const TARGET: &str = "wasm32-wasip2";

/// ring's C code needs a compiler that targets wasm32 (cc picks clang for wasm targets
/// anyway; this makes the choice explicit, as for wasm32-unknown-unknown).
fn wasi_env(cmd: &mut Command) -> &mut Command {
    cmd.env("CC_wasm32_wasip2", "clang")
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|err| format!("cannot copy {} to {}: {err}", from.display(), to.display()))
}

/// Builds the components and the JS, and prints their sizes.
pub fn build(root: &Path) -> Result<(), String> {
    let out = root.join("target/wasi");
    std::fs::create_dir_all(&out).map_err(|err| format!("{}: {err}", out.display()))?;
    let built = root.join("target").join(TARGET).join("wasm-release");

    let release = |what: &[&str]| {
        let mut args = vec![
            "build",
            "-j2",
            "--target",
            TARGET,
            "--profile",
            "wasm-release",
        ];
        args.extend_from_slice(what);
        run(wasi_env(&mut cargo(&args)))
    };
    // The command first: it builds the library without the `component` feature, into
    // the same file name the component gets next, so copy each right after its build.
    release(&["--bin", "tls-client"])?;
    let tls_client = out.join("tls-client.wasm");
    copy(&built.join("tls-client.wasm"), &tls_client)?;
    release(&["--lib", "--features", "component"])?;
    let library = out.join("wasm_tls.wasm");
    copy(&built.join("wasm_tls.wasm"), &library)?;

    // The consumer is its own workspace (never built natively); its lock file pins it.
    let consumer_manifest = root.join("tests/wasi-consumer/Cargo.toml");
    run(
        cargo(&["build", "-j2", "--locked", "--release", "--target", TARGET])
            .arg("--manifest-path")
            .arg(&consumer_manifest)
            .env("CARGO_TARGET_DIR", root.join("target")),
    )?;
    let consumer = root
        .join("target")
        .join(TARGET)
        .join("release/wasi-consumer.wasm");
    let composed = out.join("composed.wasm");
    run(Command::new("wac")
        .arg("plug")
        .arg("--plug")
        .arg(&library)
        .arg(&consumer)
        .arg("-o")
        .arg(&composed))?;

    let jco_out = root.join("tests/wasi/jco");
    run(Command::new(root.join("tests/wasi/node_modules/.bin/jco"))
        .args(["transpile", "--quiet", "--name", "wasm_tls", "-o"])
        .arg(&jco_out)
        .arg(&library))?;

    for (name, path) in [
        ("library component (wasm_tls.wasm)", &library),
        ("tls-client.wasm", &tls_client),
    ] {
        eprintln!(
            "size of the {name}: {} bytes ({} gzipped)",
            file_len(path)?,
            gzip_len(path)?
        );
    }
    eprintln!(
        "jco output: {} bytes of core wasm, {} bytes of JS",
        file_len(&jco_out.join("wasm_tls.core.wasm"))?,
        file_len(&jco_out.join("wasm_tls.js"))?
    );
    Ok(())
}

/// Lints what only the wasm32-wasip2 build compiles: the component module, the
/// command, and the consumer (which `cargo fmt --all` does not see either).
pub fn lint(root: &Path) -> Result<(), String> {
    let consumer_manifest = root.join("tests/wasi-consumer/Cargo.toml");
    run(cargo(&["fmt", "--manifest-path"])
        .arg(&consumer_manifest)
        .args(["--", "--check"]))?;
    run(wasi_env(&mut cargo(&[
        "clippy",
        "-j2",
        "--target",
        TARGET,
        "--features",
        "component",
        "--lib",
        "--bins",
        "--",
        "-D",
        "warnings",
    ])))?;
    run(cargo(&["clippy", "-j2", "--locked", "--target", TARGET])
        .arg("--manifest-path")
        .arg(&consumer_manifest)
        .env("CARGO_TARGET_DIR", root.join("target"))
        .args(["--", "-D", "warnings"]))
}

/// Builds everything, then runs the WASI tests under wasmtime and Node.js (jco), and
/// `--starttls` with the component just built.
pub fn test(root: &Path) -> Result<(), String> {
    build(root)?;
    let failures: Vec<String> = [
        run(Command::new("node")
            .args(["--test", "--test-concurrency=1"])
            .arg("tests/wasi/wasi.test.mjs")
            .current_dir(root)),
        // Ignored by a plain `cargo test`, which has no component to run.
        run(cargo(&[
            "test",
            "-j2",
            "--test",
            "starttls",
            "--test",
            "signatures",
            "--test",
            "post_quantum",
            "--",
            "--ignored",
        ])
        .env(
            "WASM_TLS_CLIENT_WASM",
            root.join("target/wasi/tls-client.wasm"),
        )),
    ]
    .into_iter()
    .filter_map(Result::err)
    .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}
