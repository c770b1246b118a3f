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
mod wasi;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

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

struct Stage {
    name: &'static str,
    seconds: f64,
    result: Result<(), String>,
}

fn stage(stages: &mut Vec<Stage>, name: &'static str, f: impl FnOnce() -> Result<(), String>) {
    eprintln!("\n==> {name}");
    let started = Instant::now();
    let result = f();
    let seconds = started.elapsed().as_secs_f64();
    match &result {
        Ok(()) => eprintln!("==> {name}: ok ({seconds:.1} s)"),
        Err(msg) => eprintln!("==> {name}: FAILED ({seconds:.1} s): {msg}"),
    }
    stages.push(Stage {
        name,
        seconds,
        result,
    });
}

fn test(root: &Path) -> Result<(), String> {
    let total = Instant::now();
    let mut stages = Vec::new();
    stage(&mut stages, "install", || install::everything(root));
    if stages.iter().any(|s| s.result.is_err()) {
        return report(&stages, total);
    }
    stage(&mut stages, "format", || {
        run(&mut cargo(&["fmt", "--all", "--", "--check"]))
    });
    stage(&mut stages, "clippy (native)", || {
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
    stage(&mut stages, "clippy (wasm32-unknown-unknown)", || {
        run(pkg::wasm_env(&mut cargo(&[
            "clippy",
            "-j2",
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
    stage(&mut stages, "clippy (wasm32-wasip2), WASI consumer", || {
        wasi::lint(root)
    });
    stage(&mut stages, "cargo test (core, tls-client, relay)", || {
        run(&mut cargo(&["test", "-j2", "--workspace"]))
    });
    stage(&mut stages, "fuzz (short)", || hardening::fuzz_short(root));
    stage(&mut stages, "x509-limbo (with its counts)", || {
        run(&mut cargo(&[
            "test",
            "-j2",
            "--test",
            "limbo",
            "--",
            "--nocapture",
        ]))
    });
    stage(
        &mut stages,
        "wasm-bindgen-test in headless Chromium",
        || {
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
        },
    );
    stage(&mut stages, "build the npm package", || {
        pkg::build(root).map(|_| ())
    });
    // The declarations against typed examples (browser; Node.js with `ws`) and against
    // the bindings wasm-bindgen generated in the build above, and their list of error
    // codes against the codes the Rust core and the JS report.
    stage(&mut stages, "type-check the package (tsc)", || {
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
    stage(&mut stages, "browser and Node.js tests", || {
        run(Command::new("node")
            .args(["--test", "--test-concurrency=1"])
            .arg("tests/browser/")
            .current_dir(root))
    });
    stage(&mut stages, "WASI under wasmtime and jco", || {
        wasi::test(root)
    });
    // After the WASI build, so that the matrix has its wasmtime column.
    stage(&mut stages, "interop matrix (docs/interop.md)", || {
        hardening::interop(root)
    });
    report(&stages, total)
}

fn report(stages: &[Stage], total: Instant) -> Result<(), String> {
    eprintln!("\nstage timings:");
    for s in stages {
        eprintln!(
            "  {:<40} {:>7.1} s  {}",
            s.name,
            s.seconds,
            if s.result.is_ok() { "ok" } else { "FAILED" }
        );
    }
    eprintln!("  {:<40} {:>7.1} s", "total", total.elapsed().as_secs_f64());
    let failed = stages.iter().filter(|s| s.result.is_err()).count();
    println!(
        "stages: {} passed, {} failed",
        stages.len() - failed,
        failed
    );
    if failed == 0 {
        Ok(())
    } else {
        Err(format!("{failed} stage(s) failed"))
    }
}
