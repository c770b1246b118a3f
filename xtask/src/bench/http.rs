//! wasm-tls/http against its limits: `cargo xtask bench --only http`, and a stage of
//! `cargo xtask bench`. Builds the relay and the package, installs the peers' npm
//! packages (bench/peers; without them their rows are left out), then runs `node
//! bench/http.mjs`, which measures and writes its section of docs/benchmarks.md.
//!
//! Flags (after `--only http`, or with the whole `cargo xtask bench`): `--http-bytes N`
//! (bytes per GET, with a MiB suffix if wanted; default 64 MiB) and `--http-rounds N`
//! (default 3).

use std::path::Path;
use std::process::Command;

use super::datapath::{build_servers, doc_path, only_run};
use crate::{install, pkg, run};

/// For `cargo xtask bench --only http`: installs what it needs and runs; None when the
/// command line asks for something else.
pub fn only(root: &Path, args: &[String]) -> Option<Result<(), String>> {
    only_run(root, args, "http", "http", run_all)
}

/// Builds what the benchmark needs (the package too, unless `build_pkg` is false
/// because the caller just built it) and runs bench/http.mjs.
pub fn run_all(root: &Path, args: &[String], build_pkg: bool) -> Result<(), String> {
    install::apt(&["nginx"])?;
    build_servers()?;
    if build_pkg {
        pkg::build(root)?;
    }
    let mut node = Command::new("node");
    node.arg(root.join("bench/http.mjs"))
        .arg("--doc")
        .arg(doc_path(root, args))
        .current_dir(root);
    if let Err(e) = install::npm(root, "bench/peers") {
        eprintln!("http: no peers' packages ({e}); their rows are left out");
        node.arg("--no-peers");
    }
    let mut command = String::from("cargo xtask bench --only http");
    for (flag, to) in [("--http-bytes", "--bytes"), ("--http-rounds", "--rounds")] {
        if let Some(i) = args.iter().position(|a| a == flag) {
            if let Some(v) = args.get(i + 1) {
                node.arg(to).arg(v);
                command.push_str(&format!(" {flag} {v}"));
            }
        }
    }
    node.arg("--command").arg(command);
    run(&mut node)
}
