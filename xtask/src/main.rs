//! The project's build and test tooling: `cargo xtask <command>`.
//!
//! Every command installs what it needs (Debian packages, rustup targets, cargo tools
//! at pinned versions, npm packages from the lock file) and skips what is present, so
//! it works on a fresh Debian machine as root and is fast the second time.

mod bench;
mod demo;
mod hardening;
mod install;
mod pkg;
mod serve;
mod stages;
mod wasi;
mod wasi_tls;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use stages::Stages;

const USAGE: &str = "\
usage: cargo xtask <command>

  demo [--no-serve]  start a local TLS server and run tls-client against it; then build
                     the browser package and serve the demo page with a relay
  test               install what is missing, then run the whole test suite
  build-pkg          build the npm package into pkg/ (wasm, JS glue, sizes)
  build-wasi         build the WASI components into target/wasi/ (the library, tls-client,
                     the test consumer plugged into the library) and jco's JS of the library
  setup              only install what the tests need
  bench [--no-levers] build and run the benchmarks (native, wasmtime, Chromium) and
                     write docs/benchmarks.md
  bench --only datapath [--datapath-bytes N] [--datapath-rounds N]
                     only the data path against its ceilings (docs/benchmarks.md §7)
  bench --only http [--http-bytes N] [--http-rounds N]
                     only wasm-tls/http's fetch against the socket, the ceiling and
                     the peers (libcurl.js, epoxy-tls)
  bench --only ID,...
                     only these figures (id prefixes: tls13-ecdsa, bulk, memory,
                     p256-verify, ...) on the three hosts, printed, docs untouched
  bench --doc PATH   write the report to PATH instead of docs/benchmarks.md
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = project_root();
    std::env::set_current_dir(&root).expect("cannot enter the project root");
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo::main(&root, args.iter().any(|a| a == "--no-serve")),
        Some("test") => test(&root),
        Some("build-pkg") => install::for_pkg(&root).and_then(|()| pkg::build(&root).map(|_| ())),
        Some("setup") => install::everything(&root),
        Some("build-wasi") => install::for_wasi(&root).and_then(|()| wasi::build(&root)),
        Some("bench") => bench::main(&root, &args[1..]),
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("xtask: error: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the project root")
        .to_path_buf()
}

/// Runs a command, echoing it; fails with its exit status.
pub fn run(cmd: &mut Command) -> Result<(), String> {
    eprintln!("+ {}", describe(cmd));
    let status = cmd
        .status()
        .map_err(|err| format!("cannot run {}: {err}", describe(cmd)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} failed ({status})", describe(cmd)))
    }
}

/// Runs a command and returns its stdout, or None if it cannot run or fails.
pub fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn describe(cmd: &Command) -> String {
    let mut text = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// `cargo` with the project's usual flags: two jobs, as the machines have two cores.
pub fn cargo(args: &[&str]) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(args);
    cmd
}

fn test(root: &Path) -> Result<(), String> {
    let total = Instant::now();
    let mut stages = Stages::new("");
    stages.run("install", || install::everything(root));
    if !stages.failures().is_empty() {
        return report(&stages, total);
    }
    stages.run("format", || {
        run(&mut cargo(&["fmt", "--all", "--", "--check"]))
    });
    stages.run("clippy (native)", || {
        run(&mut cargo(&[
            "clippy",
            "-j2",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))
    });
    stages.run("clippy (wasm32-unknown-unknown)", || {
        run(pkg::wasm_env(&mut cargo(&[
            "clippy",
            "-j2",
            "-p",
            "wasm-tls",
            "-p",
            "wasm-tls-http",
            "--lib",
            "--test",
            "web",
            "--target",
            "wasm32-unknown-unknown",
            "--",
            "-D",
            "warnings",
        ])))
    });
    stages.run("clippy (wasm32-wasip2), WASI consumer", || wasi::lint(root));
    stages.run("cargo test (core, tls-client, relay)", || {
        run(&mut cargo(&["test", "-j2", "--workspace"]))
    });
    stages.run("fuzz (short)", || hardening::fuzz_short(root));
    stages.run("x509-limbo (with its counts)", || {
        run(&mut cargo(&[
            "test",
            "-j2",
            "--test",
            "limbo",
            "--",
            "--nocapture",
        ]))
    });
    stages.run("wasm-bindgen-test in headless Chromium", || {
        run(pkg::wasm_env(&mut cargo(&[
            "test",
            "-j2",
            "--target",
            "wasm32-unknown-unknown",
            "--test",
            "web",
        ]))
        .env(
            "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
            "wasm-bindgen-test-runner",
        )
        .env("CHROMEDRIVER", "/usr/bin/chromedriver"))
    });
    stages.run("build the npm package", || pkg::build(root).map(|_| ()));
    // The declarations against typed examples (browser; Node.js with `ws`) and against
    // the bindings wasm-bindgen generated in the build above, and their list of error
    // codes against the codes the Rust core and the JS report.
    stages.run("type-check the package (tsc)", || {
        let dir = root.join("tests/types");
        let tsc = dir.join("node_modules/.bin/tsc");
        let failures: Vec<String> = [
            run(Command::new(&tsc)
                .args(["-p", "tsconfig.browser.json"])
                .current_dir(&dir)),
            run(Command::new(&tsc)
                .args(["-p", "tsconfig.node.json"])
                .current_dir(&dir)),
            run(Command::new(&tsc)
                .args(["-p", "tsconfig.wasm.json"])
                .current_dir(&dir)),
            run(Command::new("node")
                .arg("check-codes.mjs")
                .current_dir(&dir)),
        ]
        .into_iter()
        .filter_map(Result::err)
        .collect();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    });
    stages.run("browser and Node.js tests", || {
        run(Command::new("node")
            .args(["--test", "--test-concurrency=1"])
            .arg("tests/browser/")
            .current_dir(root))
    });
    stages.run("WASI under wasmtime and jco", || wasi::test(root));
    stages.run("wasi:tls provider under wasmtime", || wasi_tls::test(root));
    // After the WASI build, so that the matrix has its wasmtime column.
    stages.run("interop matrix (docs/interop.md)", || {
        hardening::interop(root)
    });
    report(&stages, total)
}

fn report(stages: &Stages, total: Instant) -> Result<(), String> {
    eprintln!("\nstage timings:");
    stages.print_timings(40);
    eprintln!("  {:<40} {:>7.1} s", "total", total.elapsed().as_secs_f64());
    let failed = stages.failures().len();
    println!(
        "stages: {} passed, {} failed",
        stages.done.len() - failed,
        failed
    );
    if failed == 0 {
        Ok(())
    } else {
        Err(format!("{failed} stage(s) failed"))
    }
}
