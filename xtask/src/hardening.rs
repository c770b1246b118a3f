//! The hardening stages of `cargo xtask test`: a short run of the cargo-fuzz targets
//! (`fuzz/`), and the interop matrix, which writes `docs/interop.md`.
//!
//! The long fuzz runs are described in `docs/fuzzing.md`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use crate::{cargo, output, run};

/// The fuzz targets, and the largest input each is given.
const TARGETS: [(&str, usize); 2] = [("server_bytes", 32 * 1024), ("api_sequence", 8 * 1024)];

/// Seconds each target runs in the short run; both run at once, one core each.
const SHORT_RUN_SECS: u32 = 75;

/// libFuzzer's limits: memory, and time per input.
const RSS_LIMIT_MB: u32 = 2048;
const TIMEOUT_SECS: u32 = 10;

/// `cargo fuzz` with what it needs on stable Rust: `RUSTC_BOOTSTRAP=1` lets stable
/// rustc take the `-Z` flags cargo-fuzz passes (`-Zsanitizer=address` among them).
fn cargo_fuzz(root: &Path, args: &[&str]) -> Command {
    let mut cmd = cargo(&["fuzz"]);
    cmd.args(args)
        .current_dir(root)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_BUILD_JOBS", "2");
    cmd
}

fn host_triple() -> Result<String, String> {
    let info = output(Command::new("rustc").arg("-vV")).ok_or("cannot run rustc -vV")?;
    info.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .ok_or_else(|| "rustc -vV names no host".to_owned())
}

/// Where `cargo fuzz build -O` puts the binaries.
fn fuzz_bin_dir(root: &Path) -> Result<PathBuf, String> {
    Ok(root
        .join("fuzz/target")
        .join(host_triple()?)
        .join("release"))
}

/// Builds the targets (with AddressSanitizer) and the seed recorder, records fresh seeds
/// from real handshakes, and runs both targets at once for a short while. Fails on any
/// crash, hang (an input over 10 s) or memory over 2 GB, naming the input libFuzzer saved.
pub fn fuzz_short(root: &Path) -> Result<(), String> {
    let started = Instant::now();
    run(&mut cargo_fuzz(root, &["build", "-O"]))?;
    let built = started.elapsed().as_secs_f64();
    let bin = fuzz_bin_dir(root)?;

    // The short run's corpus is made afresh each time under fuzz/target; fuzz/corpus/
    // belongs to the long runs.
    let corpus = root.join("fuzz/target/short-corpus");
    if corpus.exists() {
        fs::remove_dir_all(&corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
    }
    run(Command::new(bin.join("seeds")).arg(&corpus))?;

    let mut running: Vec<(&str, Child, PathBuf)> = Vec::new();
    for (target, max_len) in TARGETS {
        let artifacts = root.join("fuzz/artifacts").join(target);
        fs::create_dir_all(&artifacts).map_err(|e| format!("{}: {e}", artifacts.display()))?;
        let log = root.join(format!("fuzz/target/short-{target}.log"));
        let log_file = fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut cmd = Command::new(bin.join(target));
        cmd.arg(corpus.join(target))
            .arg(format!("-max_total_time={SHORT_RUN_SECS}"))
            .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
            .arg(format!("-timeout={TIMEOUT_SECS}"))
            .arg(format!("-max_len={max_len}"))
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .arg("-print_final_stats=1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        eprintln!("+ {} ({}s)", target, SHORT_RUN_SECS);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot run the {target} fuzzer: {e}"))?;
        running.push((target, child, log));
    }

    let mut failures = Vec::new();
    for (target, mut child, log) in running {
        let status = child
            .wait()
            .map_err(|e| format!("waiting for the {target} fuzzer: {e}"))?;
        let text = fs::read_to_string(&log).unwrap_or_default();
        let stat = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("stat::{name}:")))
                .map(|v| v.trim().to_owned())
                .unwrap_or_else(|| "?".to_owned())
        };
        let coverage = text
            .lines()
            .rev()
            .find(|l| l.contains(" cov: "))
            .and_then(|l| l.split(" cov: ").nth(1))
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or("?");
        eprintln!(
            "{target}: {} executions ({} per second), coverage {coverage} edges, {} new inputs, peak RSS {} MB",
            stat("number_of_executed_units"),
            stat("average_exec_per_sec"),
            stat("new_units_added"),
            stat("peak_rss_mb"),
        );
        if !status.success() {
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            eprintln!(
                "--- {target} (last lines of {}) ---\n{}",
                log.display(),
                tail.join("\n")
            );
            failures.push(format!(
                "{target} failed ({status}); the input is in fuzz/artifacts/{target}/ \
                 (reproduce: cargo fuzz run -O {target} fuzz/artifacts/{target}/<file>)"
            ));
        }
    }
    eprintln!(
        "fuzz: built in {built:.1} s, ran {SHORT_RUN_SECS} s per target, {:.1} s in all",
        started.elapsed().as_secs_f64()
    );
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

/// Runs the interop matrix and writes `docs/interop.md`.
pub fn interop(_root: &Path) -> Result<(), String> {
    run(
        cargo(&["test", "-j2", "--test", "interop", "--", "--nocapture"])
            .env("WASM_TLS_WRITE_INTEROP", "1"),
    )
}
