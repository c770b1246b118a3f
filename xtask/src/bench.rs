//! `cargo xtask bench`: builds the benchmarks (the `bench/` crate) for three hosts —
//! native, wasmtime (wasm32-wasip2) and headless Chromium (wasm32-unknown-unknown with
//! wasm-bindgen) — runs them, measures the npm package's size and an end-to-end download
//! through the relay, tries the documented speed levers, and writes docs/benchmarks.md.
//!
//! Benchmarks report; they do not judge. A figure that cannot be measured is shown as
//! missing, with the reason; the command fails only if a stage broke.
//!
//! Longer than the project's files should be: it still holds the run, the levers, the
//! machine facts and the Markdown rendering together. Splitting it by those concerns
//! (and reading its JSON with serde_json) is open work; the data path's benchmark
//! already lives apart, in `bench/datapath.rs`.

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

mod datapath;

use crate::demo::{start_relay, Guard};
use crate::pkg::{file_len, gzip_len};
use crate::{cargo, install, pkg, run};

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

// ---------------------------------------------------------------------------------------
// A small JSON reader and writer (xtask has no dependencies)
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Json {
    Null,
    Bool,
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

static NULL: Json = Json::Null;

impl Json {
    fn parse(text: &str) -> Result<Json, String> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("JSON: trailing text at byte {}", p.i));
        }
        Ok(v)
    }

    fn get(&self, key: &str) -> &Json {
        match self {
            Json::Obj(m) => m.iter().find(|(k, _)| k == key).map_or(&NULL, |(_, v)| v),
            _ => &NULL,
        }
    }

    fn num(&self) -> Option<f64> {
        match self {
            Json::Num(n) if n.is_finite() => Some(*n),
            _ => None,
        }
    }

    fn str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    fn arr(&self) -> &[Json] {
        match self {
            Json::Arr(a) => a,
            _ => &[],
        }
    }

    /// The element of an array of objects whose "id" is `id`.
    fn by_id(&self, id: &str) -> &Json {
        self.arr()
            .iter()
            .find(|v| v.get("id").str() == Some(id))
            .unwrap_or(&NULL)
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn next(&mut self) -> Result<u8, String> {
        let c = *self.s.get(self.i).ok_or("JSON: unexpected end")?;
        self.i += 1;
        Ok(c)
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.next()? == c {
            Ok(())
        } else {
            Err(format!("JSON: expected '{}' at byte {}", c as char, self.i))
        }
    }

    fn literal(&mut self, word: &str, value: Json) -> Result<Json, String> {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(value)
        } else {
            Err(format!("JSON: bad literal at byte {}", self.i))
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.s.get(self.i).copied() {
            Some(b'{') => {
                self.i += 1;
                let mut m = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Json::Obj(m));
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    self.expect(b':')?;
                    let v = self.value()?;
                    m.push((k, v));
                    self.ws();
                    match self.next()? {
                        b',' => {}
                        b'}' => return Ok(Json::Obj(m)),
                        _ => return Err(format!("JSON: bad object at byte {}", self.i)),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut a = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Json::Arr(a));
                }
                loop {
                    a.push(self.value()?);
                    self.ws();
                    match self.next()? {
                        b',' => {}
                        b']' => return Ok(Json::Arr(a)),
                        _ => return Err(format!("JSON: bad array at byte {}", self.i)),
                    }
                }
            }
            Some(b'"') => Ok(Json::Str(self.string()?)),
            Some(b't') => self.literal("true", Json::Bool),
            Some(b'f') => self.literal("false", Json::Bool),
            Some(b'n') => self.literal("null", Json::Null),
            _ => {
                let start = self.i;
                while self.i < self.s.len() && b"+-.eE0123456789".contains(&self.s[self.i]) {
                    self.i += 1;
                }
                std::str::from_utf8(&self.s[start..self.i])
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .map(Json::Num)
                    .ok_or_else(|| format!("JSON: bad value at byte {start}"))
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let mut v = 0;
        for _ in 0..4 {
            let d = (self.next()? as char)
                .to_digit(16)
                .ok_or("JSON: bad \\u escape")?;
            v = v * 16 + d;
        }
        Ok(v)
    }

    fn string(&mut self) -> Result<String, String> {
        if self.next()? != b'"' {
            return Err(format!("JSON: expected a string at byte {}", self.i));
        }
        let mut out = Vec::new();
        loop {
            match self.next()? {
                b'"' => break,
                b'\\' => {
                    let c = match self.next()? {
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'u' => {
                            let mut code = self.hex4()?;
                            if (0xd800..0xdc00).contains(&code)
                                && self.s[self.i..].starts_with(b"\\u")
                            {
                                self.i += 2;
                                let low = self.hex4()?;
                                code = 0x10000
                                    + ((code - 0xd800) << 10)
                                    + (low.wrapping_sub(0xdc00) & 0x3ff);
                            }
                            char::from_u32(code).unwrap_or('\u{fffd}')
                        }
                        c => c as char,
                    };
                    let mut buf = [0; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                c => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|_| "JSON: a string is not UTF-8".to_owned())
    }
}

/// `s` as a JSON string literal.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn mkdir(path: &Path) -> Result<(), String> {
    fs::create_dir_all(path).map_err(|e| format!("{}: {e}", path.display()))
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

/// The first line of a command's output (stdout, else stderr), or "unknown".
fn version(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// The flags `pkg::build` gives wasm-opt, plus SIMD when the module uses it.
fn wasm_opt(root: &Path, wasm: &Path, simd: bool) -> Result<(), String> {
    let mut cmd = Command::new(root.join("xtask/npm/node_modules/.bin/wasm-opt"));
    cmd.args([
        "-Oz",
        "--enable-bulk-memory",
        "--enable-nontrapping-float-to-int",
        "--enable-sign-ext",
        "--enable-mutable-globals",
        "--enable-reference-types",
        "--enable-multivalue",
        "--strip-debug",
        "--strip-producers",
    ]);
    if simd {
        cmd.arg("--enable-simd");
    }
    run(cmd.arg(wasm).arg("-o").arg(wasm))
}

fn wasm_bindgen(wasm: &Path, out_dir: &Path, out_name: &str) -> Result<(), String> {
    run(Command::new("wasm-bindgen")
        .args(["--target", "web", "--out-name", out_name, "--out-dir"])
        .arg(out_dir)
        .arg(wasm))
}

// ---------------------------------------------------------------------------------------
// The stages
// ---------------------------------------------------------------------------------------

struct Stages {
    done: Vec<(String, f64, Result<(), String>)>,
}

impl Stages {
    /// Runs one stage; its error is kept and returned as None.
    fn run<T>(&mut self, name: &str, f: impl FnOnce() -> Result<T, String>) -> Option<T> {
        eprintln!("\n==> bench: {name}");
        let started = Instant::now();
        let result = f();
        let seconds = started.elapsed().as_secs_f64();
        match &result {
            Ok(_) => eprintln!("==> bench: {name}: ok ({seconds:.1} s)"),
            Err(e) => eprintln!("==> bench: {name}: FAILED ({seconds:.1} s): {e}"),
        }
        let (kept, value) = match result {
            Ok(v) => (Ok(()), Some(v)),
            Err(e) => (Err(e), None),
        };
        self.done.push((name.to_owned(), seconds, kept));
        value
    }

    fn failures(&self) -> Vec<String> {
        self.done
            .iter()
            .filter_map(|(n, _, r)| r.as_ref().err().map(|e| format!("{n}: {e}")))
            .collect()
    }
}

/// RSA keys for the benchmarks, a PKI for the end-to-end server, and the inputs.
fn inputs(dir: &Path) -> Result<(), String> {
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
    let keys = format!(
        "[{}, {}]",
        quote(&read(&pki.join("rsa-ca.key"))?),
        quote(&read(&pki.join("rsa-leaf.key"))?)
    );
    let input = |host: &str, rounds: usize, bulk: usize, bulk_rounds: usize, only: &str| {
        format!(
            "{{\"host\": \"{host}\", \"rounds\": {rounds}, \"handshakes\": 20, \
             \"bulk_bytes\": {bulk}, \"bulk_rounds\": {bulk_rounds}, \"connections\": 1000, \
             \"only\": [{only}], \"rsa_keys_pem\": {keys}}}\n"
        )
    };
    // Native rounds take milliseconds: more of them, so that a moment's contention moves
    // the median less.
    write(
        &dir.join("native-input.json"),
        &input("native", NATIVE_ROUNDS, NATIVE_BULK, 3, ""),
    )?;
    write(
        &dir.join("wasm-input.json"),
        &input("wasm", WASM_ROUNDS, WASM_BULK, 3, ""),
    )?;
    // Three rounds per call; chromium.mjs makes passes over the builds, interleaved.
    write(
        &dir.join("levers-input.json"),
        &input(
            "lever",
            3,
            LEVER_BULK,
            3,
            "\"tls13-ecdsa\", \"bulk-aes128gcm\", \"bulk-chacha20\", \"p256-verify\", \"x25519\"",
        ),
    )
}

fn build_native(root: &Path) -> Result<(), String> {
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

fn run_native(root: &Path, dir: &Path) -> Result<Json, String> {
    let text = capture(
        Command::new(root.join(NATIVE_BENCH))
            .arg("--input")
            .arg(dir.join("native-input.json"))
            .arg("--json"),
    )?;
    write(&dir.join("native.json"), &text)?;
    Json::parse(&text)
}

fn build_wasip2(root: &Path) -> Result<(), String> {
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

fn run_wasmtime(root: &Path, dir: &Path) -> Result<Json, String> {
    let input = fs::File::open(dir.join("wasm-input.json")).map_err(|e| e.to_string())?;
    let text = capture(
        Command::new("wasmtime")
            .arg("run")
            .arg(root.join(WASM_BENCH))
            .args(["--input", "-", "--json"])
            .stdin(input),
    )?;
    write(&dir.join("wasmtime.json"), &text)?;
    Json::parse(&text)
}

/// Builds the bench crate for the page into `out` (wasm-bindgen, then wasm-opt as the
/// package is), and an un-optimized copy into `raw` if given.
fn build_web(
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
    wasm_opt(root, &out.join("wasm_tls_bench_bg.wasm"), simd)
}

/// The package's wasm, bound and optimized as `pkg::build` does it, in `out`; returns
/// (wasm, wasm gzipped, JS, JS gzipped) with the package's own index.js.
fn package_like(
    root: &Path,
    built: &Path,
    out: &Path,
    simd: bool,
    optimize: bool,
) -> Result<[u64; 4], String> {
    mkdir(out)?;
    wasm_bindgen(built, out, "wasm_tls")?;
    let wasm = out.join("wasm_tls_bg.wasm");
    if optimize {
        wasm_opt(root, &wasm, simd)?;
    }
    let js = [out.join("wasm_tls.js"), root.join("pkg/index.js")];
    Ok([
        file_len(&wasm)?,
        gzip_len(&wasm)?,
        js.iter().map(|p| file_len(p)).sum::<Result<u64, _>>()?,
        js.iter().map(|p| gzip_len(p)).sum::<Result<u64, _>>()?,
    ])
}

/// Runs bench/chromium.mjs with `args` and reads what it wrote to `out`.
fn chromium(root: &Path, args: &[std::ffi::OsString], out: &Path) -> Result<Json, String> {
    run(Command::new("node")
        .arg(root.join("bench/chromium.mjs"))
        .args(args)
        .arg("--out")
        .arg(out)
        .current_dir(root))?;
    let json = Json::parse(&read(out)?)?;
    if let Some(first) = json.get("errors").arr().first() {
        return Err(format!("in Chromium: {}", first.str().unwrap_or("?")));
    }
    Ok(json)
}

/// Starts the rustls test server (release build) with the PKI's leaf.
fn start_test_server(root: &Path, pki: &Path) -> Result<(Guard, u16), String> {
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

// ---- how busy the machine was ----

/// CPU time of the whole machine (busy and all) and of this process and its waited-for
/// children, in clock ticks.
struct CpuTimes {
    busy: u64,
    all: u64,
    ours: u64,
}

fn cpu_times() -> Option<CpuTimes> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let v: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is within user)
    let busy = v[0] + v[1] + v[2] + v.get(5)? + v.get(6)? + v.get(7)?;
    let all = busy + v[3] + v[4];
    let me = fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<u64> = me
        .rsplit(')')
        .next()?
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|x| x.parse().ok())
        .collect();
    Some(CpuTimes {
        busy,
        all,
        ours: fields.iter().sum(),
    })
}

/// How many CPUs other processes kept busy on average between `a` and `b`.
fn others_cpus(a: &CpuTimes, b: &CpuTimes, cpus: f64) -> Option<f64> {
    let elapsed = (b.all.checked_sub(a.all)? as f64 / cpus).max(1.0);
    let others = b.busy.checked_sub(a.busy)? as f64 - b.ours.checked_sub(a.ours)? as f64;
    Some((others / elapsed).max(0.0))
}

/// Interference above which a host's run is repeated once (the quieter run is kept).
const BUSY: f64 = 1.0;
/// The same for runs in Chromium: its helper processes are not waited for by their
/// launcher, so their CPU time counts as other processes' (about 0.9 CPU here).
const BUSY_CHROMIUM: f64 = 1.5;

/// Runs a measurement once; returns it and how many CPUs other processes kept busy.
fn measured<T>(f: impl FnOnce() -> Result<T, String>) -> Result<(T, Option<f64>), String> {
    let cpus: f64 = version("nproc", &[]).parse().unwrap_or(1.0);
    let before = cpu_times();
    let value = f()?;
    let busy = before
        .zip(cpu_times())
        .and_then(|(a, b)| others_cpus(&a, &b, cpus));
    Ok((value, busy))
}

/// Runs a measurement; if other processes kept more than `limit` CPUs busy meanwhile,
/// runs it once more and keeps the quieter run. Returns it and that interference.
fn quiet<T>(
    limit: f64,
    mut f: impl FnMut() -> Result<T, String>,
) -> Result<(T, Option<f64>), String> {
    let cpus: f64 = version("nproc", &[]).parse().unwrap_or(1.0);
    let mut best: Option<(T, Option<f64>)> = None;
    for attempt in 0..2 {
        let before = cpu_times();
        let value = f()?;
        let busy = before
            .zip(cpu_times())
            .and_then(|(a, b)| others_cpus(&a, &b, cpus));
        eprintln!(
            "other processes kept {} CPUs busy meanwhile",
            busy.map_or("?".into(), |b| format!("{b:.2}"))
        );
        let better = match (&best, busy) {
            (None, _) => true,
            (Some((_, Some(old))), Some(new)) => new < *old,
            _ => false,
        };
        if better {
            best = Some((value, busy));
        }
        if attempt == 0 && busy.is_some_and(|b| b > limit) {
            eprintln!("the machine was busy: measuring once more");
            continue;
        }
        break;
    }
    best.ok_or_else(|| "no run".to_owned())
}

// ---- the levers ----

struct Lever {
    id: &'static str,
    what: &'static str,
    env: &'static [(&'static str, &'static str)],
    config: &'static [&'static str],
    simd: bool,
}

const SIMD: &str = "-C target-feature=+simd128";

/// The build as the package ships it: the baseline.
const SHIPPED: Lever = Lever {
    id: "shipped",
    what: "`[profile.wasm-release]`: opt-level \"z\", ring at 3, fat LTO, `+simd128` for Rust \
           code (.cargo/config.toml); then `wasm-opt -Oz`",
    env: &[],
    config: &[],
    simd: true,
};

const LEVERS: &[Lever] = &[
    Lever {
        id: "ring-z",
        what: "ring at opt-level \"z\" like the rest (no per-package override)",
        env: &[],
        config: &["profile.wasm-release.package.ring.opt-level=\"z\""],
        simd: true,
    },
    Lever {
        id: "o3",
        what: "opt-level 3 for every crate",
        env: &[],
        config: &["profile.wasm-release.opt-level=3"],
        simd: true,
    },
    Lever {
        id: "no-simd128",
        what: "without `+simd128` (an empty `RUSTFLAGS` overrides .cargo/config.toml)",
        env: &[("RUSTFLAGS", "")],
        config: &[],
        simd: false,
    },
    Lever {
        id: "simd128-rust-c",
        what: "`+simd128` for Rust and `CFLAGS_wasm32_unknown_unknown=-msimd128` for ring's C",
        env: &[
            ("RUSTFLAGS", SIMD),
            ("CFLAGS_wasm32_unknown_unknown", "-msimd128"),
        ],
        config: &[],
        simd: true,
    },
];

fn target_dir_of(l: &Lever) -> String {
    if l.id == SHIPPED.id {
        BUILD_DIR.to_owned()
    } else {
        format!("target/bench-levers/{}", l.id)
    }
}

fn lever_command(l: &Lever) -> String {
    let mut s = format!("CARGO_TARGET_DIR={} ", target_dir_of(l));
    for (k, v) in l.env {
        let _ = write!(s, "{k}='{v}' ");
    }
    s.push_str(
        "CC_wasm32_unknown_unknown=clang cargo build --profile wasm-release \
         --target wasm32-unknown-unknown -p wasm-tls-bench -p wasm-tls --lib --no-default-features",
    );
    for c in l.config {
        let _ = write!(s, " --config '{c}'");
    }
    s
}

/// Builds the bench page and the package's wasm (without the bundled roots, as
/// `pkg::build` does) with one lever, in the lever's target directory. The page goes to
/// target/bench/variants/ID/web (and web-raw, not through wasm-opt, if `raw`). Returns
/// the package's gzipped wasm, and without wasm-opt if `raw`.
fn build_variant(
    root: &Path,
    dir: &Path,
    l: &Lever,
    raw: bool,
) -> Result<(u64, Option<u64>), String> {
    let target_dir = root.join(target_dir_of(l));
    let mut cmd = cargo(&[
        "build",
        "-j2",
        "--profile",
        "wasm-release",
        "--target",
        "wasm32-unknown-unknown",
        "-p",
        "wasm-tls-bench",
        "-p",
        "wasm-tls",
        "--lib",
        "--no-default-features",
    ]);
    for c in l.config {
        cmd.args(["--config", c]);
    }
    for (k, v) in l.env {
        cmd.env(k, v);
    }
    cmd.env("CARGO_TARGET_DIR", &target_dir);
    run(pkg::wasm_env(&mut cmd))?;
    let out = dir.join("variants").join(l.id);
    build_web(
        root,
        &target_dir,
        &out.join("web"),
        raw.then(|| out.join("web-raw")).as_deref(),
        l.simd,
    )?;
    let built = target_dir.join("wasm32-unknown-unknown/wasm-release/wasm_tls.wasm");
    let sizes = package_like(root, &built, &out.join("pkg"), l.simd, true)?;
    let raw_size = if raw {
        Some(package_like(root, &built, &out.join("pkg-raw"), l.simd, false)?[1])
    } else {
        None
    };
    Ok((sizes[1], raw_size))
}

/// A row of the levers' table.
struct LeverRow {
    name: String,
    what: String,
    how: String,
    web: PathBuf,
    /// The package's gzipped wasm; None if the build failed.
    size_gz: Option<u64>,
}

// ---------------------------------------------------------------------------------------
// The command
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct Results {
    /// Each host's report and how many CPUs other processes kept busy meanwhile.
    native: Option<(Json, Option<f64>)>,
    wasmtime: Option<(Json, Option<f64>)>,
    chromium: Option<(Json, Option<f64>)>,
    package: Option<pkg::Sizes>,
    wasi: Vec<(String, u64, u64)>,
    levers: Vec<LeverRow>,
    levers_run: Option<(Json, Option<f64>)>,
    /// The Wisp figures of tests/browser/wisp.test.mjs, from one Chromium run.
    wisp: Option<Json>,
}

pub fn main(root: &Path, args: &[String]) -> Result<(), String> {
    if let Some(result) = datapath::only(root, args) {
        return result;
    }
    let started = Instant::now();
    let with_levers = !args.iter().any(|a| a == "--no-levers");
    let load_before = load_average();
    let dir = root.join("target/bench");
    mkdir(&dir.join("levers"))?;
    let mut stages = Stages { done: Vec::new() };

    stages
        .run("install", || {
            install::apt(&["clang", "openssl", "chromium", "nodejs", "npm"])?;
            install::for_pkg(root)?;
            install::rustup_target("wasm32-wasip2")?;
            install::wasmtime()?;
            install::npm(root, "tests/browser")
        })
        .ok_or("cannot install what the benchmarks need")?;
    stages
        .run("certificates and inputs", || inputs(&dir))
        .ok_or("cannot make the inputs")?;

    let mut r = Results::default();
    if stages.run("native: build", || build_native(root)).is_some() {
        r.native = stages.run("native: run", || quiet(BUSY, || run_native(root, &dir)));
    }
    if stages
        .run("wasm32-wasip2: build", || build_wasip2(root))
        .is_some()
    {
        r.wasmtime = stages.run("wasmtime: run", || quiet(BUSY, || run_wasmtime(root, &dir)));
    }

    // Size: the real package, which the end-to-end figure also loads.
    r.package = stages.run("size: the npm package (pkg::build)", || pkg::build(root));
    // The WASI components: as `cargo xtask build-wasi` leaves them, else cargo's output.
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
                r.wasi.push((format!("{sub}/{name}"), len, gz));
            }
        }
        if !r.wasi.is_empty() {
            break;
        }
    }

    let shipped = stages.run(
        "wasm32-unknown-unknown: build the bench page as the package ships",
        || build_variant(root, &dir, &SHIPPED, true),
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
                    let (server, port) = start_test_server(root, &dir.join("pki"))?;
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
                chromium(root, &args, &dir.join("chromium.json"))
            })
        });
    }

    if servers_built.is_some() && r.package.is_some() {
        let out = dir.join("wisp.json");
        r.wisp = stages.run(
            "Chromium: 20 connections at once, raw and over Wisp",
            || {
                let _ = fs::remove_file(&out);
                run(Command::new("node")
                    .args([
                        "--test",
                        "--test-concurrency=1",
                        "--test-name-pattern=^figures:",
                    ])
                    .arg("tests/browser/wisp.test.mjs")
                    .env("WASM_TLS_WISP_FIGURES", &out)
                    .current_dir(root))?;
                Json::parse(
                    &fs::read_to_string(&out).map_err(|e| format!("{}: {e}", out.display()))?,
                )
            },
        );
    }

    stages.run("data path: the package against its ceiling", || {
        datapath::run_all(root, args, r.package.is_none())
    });

    if let (true, Some((shipped_gz, raw_gz))) = (with_levers, shipped) {
        r.levers.push(LeverRow {
            name: "as shipped".into(),
            what: SHIPPED.what.into(),
            how: lever_command(&SHIPPED),
            web: web.clone(),
            size_gz: Some(shipped_gz),
        });
        r.levers.push(LeverRow {
            name: "no wasm-opt".into(),
            what: "the same build; wasm-bindgen's output not run through `wasm-opt -Oz`".into(),
            how: "as shipped, without the wasm-opt step".into(),
            web: dir.join("variants/shipped/web-raw"),
            size_gz: raw_gz,
        });
        for l in LEVERS {
            let size = stages.run(&format!("lever: {} (build)", l.id), || {
                build_variant(root, &dir, l, false).map(|(gz, _)| gz)
            });
            r.levers.push(LeverRow {
                name: l.id.into(),
                what: l.what.into(),
                how: lever_command(l),
                web: dir.join("variants").join(l.id).join("web"),
                size_gz: size,
            });
        }
        let list: Vec<String> = r
            .levers
            .iter()
            .filter(|l| l.size_gz.is_some())
            .map(|l| {
                format!(
                    "{{\"name\": {}, \"web\": {}}}",
                    quote(&lever_key(&l.name)),
                    quote(&l.web.to_string_lossy())
                )
            })
            .collect();
        let list_file = dir.join("levers/builds.json");
        r.levers_run = stages.run("levers: run in Chromium, interleaved", || {
            write(&list_file, &format!("[{}]\n", list.join(", ")))?;
            measured(|| {
                chromium(
                    root,
                    &[
                        "--levers".into(),
                        list_file.clone().into(),
                        "--input".into(),
                        dir.join("levers-input.json").into(),
                        "--passes".into(),
                        LEVER_PASSES.to_string().into(),
                    ],
                    &dir.join("levers/result.json"),
                )
            })
        });
    }

    let total = started.elapsed().as_secs_f64();
    let doc = render(root, &r, &stages, total, &load_before, with_levers);
    let path = root.join("docs/benchmarks.md");
    mkdir(&root.join("docs"))?;
    let old = fs::read_to_string(&path).unwrap_or_default();
    write(&path, &datapath::keep_section(&old, doc))?;
    eprintln!("\nwrote {} ({total:.0} s in all)", path.display());
    for (name, secs, result) in &stages.done {
        eprintln!(
            "  {name:<55} {secs:>7.1} s  {}",
            if result.is_ok() { "ok" } else { "FAILED" }
        );
    }
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

/// Passes over the levers in Chromium (each a round of every lever figure).
const LEVER_PASSES: usize = 5;

/// A lever's name as a URL path segment.
fn lever_key(name: &str) -> String {
    name.replace(' ', "-")
}

// ---------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------

fn f0(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{v:.0}"))
}

fn f1(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| {
        if v >= 100.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.1}")
        }
    })
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn times(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{v:.1}×"))
}

fn kb(bytes: u64) -> String {
    format!("{:.1} KB", bytes as f64 / 1000.0)
}

fn machine() -> (String, String, String) {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            let model = s
                .lines()
                .find(|l| l.starts_with("model name"))?
                .split(':')
                .nth(1)?
                .trim()
                .to_owned();
            let aes = s
                .lines()
                .find(|l| l.starts_with("flags"))
                .is_some_and(|l| l.split_whitespace().any(|f| f == "aes"));
            Some(format!(
                "{model} ({})",
                if aes { "with AES-NI" } else { "no AES-NI" }
            ))
        })
        .unwrap_or_else(|| "unknown".into());
    let mem = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            let kib: f64 = s
                .lines()
                .find(|l| l.starts_with("MemTotal"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some(format!("{:.1} GiB", kib / 1024.0 / 1024.0))
        })
        .unwrap_or_else(|| "unknown".into());
    let os = fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    (cpu, mem, os)
}

fn locked_version(root: &Path, name: &str) -> String {
    let lock = fs::read_to_string(root.join("Cargo.lock")).unwrap_or_default();
    let needle = format!("name = \"{name}\"\nversion = \"");
    lock.find(&needle)
        .and_then(|i| lock[i + needle.len()..].split('"').next())
        .unwrap_or("?")
        .to_owned()
}

fn render(
    root: &Path,
    r: &Results,
    stages: &Stages,
    total: f64,
    load_before: &str,
    with_levers: bool,
) -> String {
    fn json(x: &Option<(Json, Option<f64>)>) -> &Json {
        x.as_ref().map_or(&NULL, |(j, _)| j)
    }
    let busy = |x: &Option<(Json, Option<f64>)>| {
        x.as_ref()
            .and_then(|(_, b)| *b)
            .map_or("?".to_owned(), |b| format!("{b:.2}"))
    };
    let nat = json(&r.native);
    let wt = json(&r.wasmtime);
    let chr_all = json(&r.chromium);
    let chr = chr_all.get("bench");
    let e2e = chr_all.get("e2e");
    let hosts = [nat, wt, chr];
    let (cpu, mem, os) = machine();
    let nproc = version("nproc", &[]);
    let date = version("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let chromium_version = chr_all
        .get("chromium")
        .str()
        .map(str::to_owned)
        .unwrap_or_else(|| version("chromium", &["--version"]));

    let mut d = String::new();
    let _ = writeln!(d, "# Benchmarks\n");
    let _ = writeln!(
        d,
        "Written by `cargo xtask bench` ({total:.0} s on this run, builds included) on {date}. \
         Every figure below comes from that one run; rerun the command to refresh them all. \
         Each row names the benchmark's id: `--only ID` runs just that figure (see \
         [Reproducing a figure](#reproducing-a-figure)).\n"
    );
    let _ = writeln!(d, "| | |\n|---|---|");
    let _ = writeln!(d, "| machine | {nproc} CPUs, {cpu}, {mem} memory, {os} |");
    let _ = writeln!(
        d,
        "| other processes | load average {load_before} at the start, {} at the end. CPUs kept busy by other processes while each host ran (from /proc/stat; a run above {BUSY} is repeated once and the quieter one kept): native {}, wasmtime {}, Chromium {}{} (the Chromium figures include Chromium's own helper processes, which its launcher does not wait for, so they count as others; its limit is {BUSY_CHROMIUM}). Medians of rounds damp such noise; they do not remove it |",
        load_average(),
        busy(&r.native),
        busy(&r.wasmtime),
        busy(&r.chromium),
        if with_levers { format!(", levers {}", busy(&r.levers_run)) } else { String::new() }
    );
    let _ = writeln!(
        d,
        "| crates | rustls {}, ring {}, rustls-webpki {}, rcgen {} (certificates) |",
        locked_version(root, "rustls"),
        locked_version(root, "ring"),
        locked_version(root, "rustls-webpki"),
        locked_version(root, "rcgen")
    );
    let _ = writeln!(
        d,
        "| tools | {}; {}; wasmtime {}; Node.js {}; Chromium {chromium_version} (headless, playwright-core); {}; wasm-opt {}; {} |",
        version("rustc", &["-V"]),
        version("clang", &["--version"]),
        version("wasmtime", &["--version"]).trim_start_matches("wasmtime "),
        version("node", &["--version"]),
        version("wasm-bindgen", &["--version"]),
        version(
            &root.join("xtask/npm/node_modules/.bin/wasm-opt").to_string_lossy(),
            &["--version"]
        )
        .trim_start_matches("wasm-opt "),
        version("openssl", &["version"]),
    );
    let _ = writeln!(
        d,
        "| builds | native: `--release` (opt-level 3, fat LTO); wasm: `--profile wasm-release` (opt-level \"z\", ring at 3, fat LTO, panic=abort), as the package and the WASI components ship; the page's module also goes through `wasm-opt -Oz` like the package |"
    );
    let _ = writeln!(
        d,
        "| timers | native and wasmtime: `std::time::Instant`; Chromium: `performance.now()`, which this page sees in steps of {} µs, so the client's time is measured over batches (see [Method](#method)) |",
        f1(chr.get("timer_resolution_us").num())
    );
    d.push('\n');

    // ---- summary ----
    let _ = writeln!(d, "## Summary\n");
    let hs = |h: &Json, id: &str, k: &str| h.get("handshakes").by_id(id).get(k).num();
    let bk = |h: &Json, id: &str, k: &str| h.get("bulk").by_id(id).get(k).num();
    let (cn, cw, cc) = (
        hs(nat, "tls13-ecdsa-full", "client_us"),
        hs(wt, "tls13-ecdsa-full", "client_us"),
        hs(chr, "tls13-ecdsa-full", "client_us"),
    );
    let _ = writeln!(
        d,
        "- **Full TLS 1.3 handshake** (X25519, ECDSA P-256), the client's time: {} µs native, \
         {} µs wasmtime, {} µs Chromium: **{} native in Chromium** ({} in wasmtime). {} \
         (§1).",
        f0(cn),
        f0(cw),
        f0(cc),
        times(ratio(cc, cn)),
        times(ratio(cw, cn)),
        {
            let two_verifies = chr
                .get("primitives")
                .by_id("p256-verify")
                .get("value")
                .num()
                .map(|v| 2.0 * v);
            match (cn, cc, two_verifies) {
                (Some(n), Some(c), _) if c <= 2.0 * n => "The target, within 2×, is met".to_owned(),
                (Some(n), Some(_), Some(v)) if v > 2.0 * n => format!(
                    "The target, within 2×, is out of reach while the two P-256 \
                     verifications alone take {v:.0} µs in Chromium"
                ),
                _ => "The target, within 2×, is not met".to_owned(),
            }
        }
    );
    let (rn, rc) = (
        hs(nat, "tls13-ecdsa-resumed", "client_us"),
        hs(chr, "tls13-ecdsa-resumed", "client_us"),
    );
    let _ = writeln!(
        d,
        "- **Resumed TLS 1.3 handshake**: {} µs native, {} µs Chromium ({}).",
        f0(rn),
        f0(rc),
        times(ratio(rc, rn))
    );
    let _ = writeln!(
        d,
        "- **Bulk**, Chromium, decrypt / encrypt: ChaCha20-Poly1305 {} / {} MB/s ({} / {} \
         slower than native), AES-128-GCM {} / {} MB/s ({} / {}); bound by the cipher (§2).",
        f0(bk(chr, "bulk-chacha20", "decrypt_mbps")),
        f0(bk(chr, "bulk-chacha20", "encrypt_mbps")),
        times(ratio(
            bk(nat, "bulk-chacha20", "decrypt_mbps"),
            bk(chr, "bulk-chacha20", "decrypt_mbps")
        )),
        times(ratio(
            bk(nat, "bulk-chacha20", "encrypt_mbps"),
            bk(chr, "bulk-chacha20", "encrypt_mbps")
        )),
        f0(bk(chr, "bulk-aes128gcm", "decrypt_mbps")),
        f0(bk(chr, "bulk-aes128gcm", "encrypt_mbps")),
        times(ratio(
            bk(nat, "bulk-aes128gcm", "decrypt_mbps"),
            bk(chr, "bulk-aes128gcm", "decrypt_mbps")
        )),
        times(ratio(
            bk(nat, "bulk-aes128gcm", "encrypt_mbps"),
            bk(chr, "bulk-aes128gcm", "encrypt_mbps")
        )),
    );
    let m = chr.get("memory");
    let _ = writeln!(
        d,
        "- **Memory**: an idle connection holds {} KiB in Chromium (target: under 64 KiB); \
         1,000 open connections grew the linear memory by {} MiB (§3).",
        f1(m.get("idle_bytes").num().map(|v| v / 1024.0)),
        f1(m.get("many_linear_memory_growth")
            .num()
            .map(|v| v / 1048576.0))
    );
    if let Some(p) = &r.package {
        let _ = writeln!(
            d,
            "- **Size**: a page loads {} gzipped with its own CA (wasm and JS), {} with \
             Mozilla's roots (`roots.bin` too) (§4).",
            kb(p.wasm_gz + p.js_gz),
            kb(p.wasm_gz + p.js_gz + p.roots_gz)
        );
    }
    if let Some(mbps) = e2e.get("download").get("medianMbps").num() {
        let _ = writeln!(
            d,
            "- **End to end** in Chromium through the relay on this machine: a full handshake \
             in {} ms (WebSocket and TCP connects included), a download at {mbps:.0} MB/s (§5).",
            f1(e2e.get("full").get("medianMs").num())
        );
    }
    if with_levers {
        let _ = writeln!(
            d,
            "- **Levers** tried in the same run (§6): opt-level, ring's opt-level, wasm-opt, \
             `+simd128` for Rust and for C; what each changed is listed there."
        );
    }
    d.push('\n');

    // ---- handshakes ----
    let _ = writeln!(d, "## 1. Handshakes\n");
    let _ = writeln!(
        d,
        "µs per handshake: **client** = time inside `wasm_tls::TlsClient` calls (`new`, \
         `connect`, `push_ciphertext`, `take_ciphertext`), with the session tickets taken in; \
         in brackets the **total** with the in-memory rustls server's work. Ratios are \
         wasm ÷ native for the client (total in brackets). Median of {NATIVE_ROUNDS} \
         (native) or {WASM_ROUNDS} (wasm) rounds of 20 handshakes, after an untimed round. Certificates: a root and a leaf for `localhost` (the server sends the \
         leaf; the client trusts the root), made by rcgen at start-up.\n"
    );
    let _ = writeln!(
        d,
        "| handshake | id | native | wasmtime | Chromium | wasmtime ÷ native | Chromium ÷ native | negotiated (Chromium) |"
    );
    let _ = writeln!(d, "|---|---|---:|---:|---:|---:|---:|---|");
    let hs_ids = [
        "tls13-ecdsa-full",
        "tls13-ecdsa-resumed",
        "tls13-rsa-full",
        "tls13-rsa-resumed",
        "tls12-ecdsa-full",
        "tls12-ecdsa-resumed",
    ];
    for id in hs_ids {
        let figs: Vec<&Json> = hosts
            .iter()
            .map(|h| h.get("handshakes").by_id(id))
            .collect();
        let c = |i: usize| figs[i].get("client_us").num();
        let t = |i: usize| figs[i].get("total_us").num();
        let name = figs.iter().find_map(|f| f.get("name").str()).unwrap_or(id);
        let kind = if id.ends_with("resumed") {
            if id.starts_with("tls12") {
                "resumed (session ID: no key exchange, no signatures)"
            } else {
                "resumed (PSK with X25519)"
            }
        } else {
            "full"
        };
        let cell = |i: usize| format!("{} ({})", f0(c(i)), f0(t(i)));
        let rat = |i: usize| {
            format!(
                "{} ({})",
                times(ratio(c(i), c(0))),
                times(ratio(t(i), t(0)))
            )
        };
        let _ = writeln!(
            d,
            "| {name}, {kind} | `{id}` | {} | {} | {} | {} | {} | {} |",
            cell(0),
            cell(1),
            cell(2),
            rat(1),
            rat(2),
            figs[2].get("negotiated").str().unwrap_or("—")
        );
    }
    d.push('\n');

    // The target and what bounds it.
    let p256 = |h: &Json| h.get("primitives").by_id("p256-verify").get("value").num();
    let x25519 = |h: &Json| h.get("primitives").by_id("x25519").get("value").num();
    let client_full = |h: &Json| {
        h.get("handshakes")
            .by_id("tls13-ecdsa-full")
            .get("client_us")
            .num()
    };
    let client_res = |h: &Json| {
        h.get("handshakes")
            .by_id("tls13-ecdsa-resumed")
            .get("client_us")
            .num()
    };
    if let (Some(cn), Some(cc)) = (client_full(nat), client_full(chr)) {
        let r_c = cc / cn;
        let r_w = client_full(wt).map(|w| w / cn);
        let _ = writeln!(
            d,
            "**Target: wasm within 2× of native rustls for the ECDSA handshake — {}.** The \
             client's full TLS 1.3 ECDSA handshake costs {:.0} µs natively and {:.0} µs in \
             Chromium ({r_c:.1}×){}.",
            if r_c <= 2.0 {
                "met in Chromium"
            } else {
                "not met"
            },
            cn,
            cc,
            r_w.map_or(String::new(), |r| format!(", {r:.1}× in wasmtime"))
        );
        if let (Some(pc), Some(xc), Some(pn)) = (p256(chr), x25519(chr), p256(nat)) {
            let share = (2.0 * pc + xc) / cc * 100.0;
            let floor = 2.0 * pc / cn;
            let _ = writeln!(
                d,
                "What bounds it: the handshake makes two P-256 signature checks (the leaf's \
                 certificate signature and CertificateVerify) and one X25519 key generation \
                 and agreement. In Chromium one P-256 verify costs {pc:.0} µs (native {pn:.0} \
                 µs, {:.1}×) and X25519 {xc:.0} µs, together {share:.0}% of the client's \
                 handshake. On wasm32 ring compiles its portable fiat-crypto C for P-256 and \
                 X25519 with 32-bit limbs (a 32-bit target; wasm has 64-bit integers but no \
                 64×64→128-bit multiply, and ring has no wasm assembly), where natively it \
                 runs assembly for P-256 and 64-bit code for X25519. The two verifications alone take {floor:.1}× the \
                 whole native client handshake, so no change outside P-256 can reach 2×: that \
                 needs a faster P-256 verify in wasm. Resumption skips the certificate and \
                 both signatures{}.\n",
                pc / pn,
                client_res(chr)
                    .zip(client_res(nat))
                    .map_or(String::new(), |(c, n)| format!(
                        ": the resumed handshake costs the client {c:.0} µs in Chromium ({:.1}× native)",
                        c / n
                    ))
            );
        } else {
            d.push('\n');
        }
    }

    // ---- primitives ----
    let _ = writeln!(d, "### ring's primitives alone\n");
    let _ = writeln!(
        d,
        "µs per operation, or MB/s for the AEADs (sealing 16 KiB records in place); median \
         of {NATIVE_ROUNDS} (native) or {WASM_ROUNDS} (wasm) rounds. These bound the figures above and below.\n"
    );
    let _ = writeln!(
        d,
        "| operation | id | native | wasmtime | Chromium | wasmtime ÷ native | Chromium ÷ native |"
    );
    let _ = writeln!(d, "|---|---|---:|---:|---:|---:|---:|");
    for id in [
        "p256-verify",
        "x25519",
        "rsa2048-verify",
        "aead-aes128gcm",
        "aead-aes256gcm",
        "aead-chacha20",
    ] {
        let figs: Vec<&Json> = hosts
            .iter()
            .map(|h| h.get("primitives").by_id(id))
            .collect();
        let v = |i: usize| figs[i].get("value").num();
        let name = figs.iter().find_map(|f| f.get("name").str()).unwrap_or(id);
        let unit = figs.iter().find_map(|f| f.get("unit").str()).unwrap_or("");
        let slow = |i: usize| {
            if unit == "MB/s" {
                ratio(v(0), v(i))
            } else {
                ratio(v(i), v(0))
            }
        };
        let _ = writeln!(
            d,
            "| {name} ({unit}) | `{id}` | {} | {} | {} | {} | {} |",
            f1(v(0)),
            f1(v(1)),
            f1(v(2)),
            times(slow(1)),
            times(slow(2))
        );
    }
    d.push('\n');

    // ---- bulk ----
    let _ = writeln!(d, "## 2. Bulk throughput\n");
    let _ = writeln!(
        d,
        "MB/s (10⁶ bytes of application data per second) through the real API, the client's \
         time only. **decrypt** = server to client: the transport hands `push_ciphertext` \
         64 KiB at a time and the application calls `read` with a 64 KiB buffer. \
         **encrypt** = client to server: `write` of the whole remaining buffer (it takes up to \
         64 KiB, `BUFFER_LIMIT`), then `take_ciphertext`. The server is forced to the one \
         suite. {} MiB per round natively, {} MiB in wasm; median of 3 rounds, each on a \
         fresh connection. Ratios are native ÷ wasm (how many times slower).\n",
        NATIVE_BULK >> 20,
        WASM_BULK >> 20
    );
    let _ = writeln!(
        d,
        "| suite | direction | id | native | wasmtime | Chromium | native ÷ wasmtime | native ÷ Chromium |"
    );
    let _ = writeln!(d, "|---|---|---|---:|---:|---:|---:|---:|");
    for id in ["bulk-aes128gcm", "bulk-aes256gcm", "bulk-chacha20"] {
        let figs: Vec<&Json> = hosts.iter().map(|h| h.get("bulk").by_id(id)).collect();
        let suite = figs.iter().find_map(|f| f.get("suite").str()).unwrap_or(id);
        for (dir, key) in [("decrypt", "decrypt_mbps"), ("encrypt", "encrypt_mbps")] {
            let v = |i: usize| figs[i].get(key).num();
            let _ = writeln!(
                d,
                "| {suite} | {dir} | `{id}` | {} | {} | {} | {} | {} |",
                f0(v(0)),
                f1(v(1)),
                f1(v(2)),
                times(ratio(v(0), v(1))),
                times(ratio(v(0), v(2)))
            );
        }
    }
    d.push('\n');
    let bulk_of = |h: &Json, id: &str, key: &str| h.get("bulk").by_id(id).get(key).num();
    let aead_of = |h: &Json, id: &str| h.get("primitives").by_id(id).get("value").num();
    let mut bound = Vec::new();
    for (bulk_id, aead_id, name) in [
        ("bulk-aes128gcm", "aead-aes128gcm", "AES-128-GCM"),
        ("bulk-chacha20", "aead-chacha20", "ChaCha20-Poly1305"),
    ] {
        if let (Some(api), Some(aead)) =
            (bulk_of(chr, bulk_id, "encrypt_mbps"), aead_of(chr, aead_id))
        {
            bound.push(format!(
                "{name}: the AEAD alone seals {aead:.0} MB/s in Chromium, the API encrypts {api:.0} MB/s, so the cipher is {:.0}% of the time",
                (api / aead * 100.0).min(100.0)
            ));
        }
    }
    let native_copy = match (
        bulk_of(nat, "bulk-aes128gcm", "decrypt_mbps"),
        aead_of(nat, "aead-aes128gcm"),
    ) {
        (Some(api), Some(aead)) => format!(
            " Natively it is the other way round: AES-NI seals {aead:.0} MB/s, and the API's \
             {api:.0} MB/s decrypting is bound by rustls' record handling and the copies \
             (`push_ciphertext` goes through `read_tls`, which takes at most 4 KiB per call \
             and moves the buffer; `read` copies the plaintext out)."
        ),
        _ => String::new(),
    };
    let _ = writeln!(
        d,
        "What the wasm path is bound by: **the cipher**. ring has no AES instructions in wasm \
         and uses its constant-time bitsliced `aes_nohw` and the portable GHASH; ChaCha20 and \
         Poly1305 run as portable 32-bit code, which suits wasm far better: ChaCha20-Poly1305 \
         is several times faster than AES-GCM in wasm (the reverse of native), which is why \
         the core offers it first on wasm32. {}.{native_copy} The copies in the API (one on \
         the way in, one out, and `take_ciphertext` handing over a fresh `Vec` each time) are \
         small next to the wasm cipher.\n",
        if bound.is_empty() {
            "(primitive figures missing)".to_owned()
        } else {
            bound.join("; ")
        }
    );

    // ---- memory ----
    let _ = writeln!(d, "## 3. Memory\n");
    let _ = writeln!(
        d,
        "Heap bytes a client holds, counted by a global allocator in the bench crate that \
         wraps the system's (bytes requested; malloc's own overhead not included) as the \
         bytes freed when the clients are dropped; and on wasm the growth of the linear memory \
         (`memory.size`, what the page or the runtime actually reserves). TLS 1.3, ECDSA, \
         resumption on, session tickets taken in. For the 1,000 connections each server is \
         dropped after its handshake, so the growth is the clients'.\n"
    );
    let _ = writeln!(d, "| figure | native | wasmtime | Chromium |");
    let _ = writeln!(d, "|---|---:|---:|---:|");
    let mem = |h: &Json, k: &str| h.get("memory").get(k).num();
    let row = |d: &mut String, label: &str, f: &dyn Fn(&Json) -> Option<f64>| {
        let cells: Vec<String> = hosts
            .iter()
            .map(|h| {
                f(h).map_or("—".into(), |v| {
                    if v >= 1048576.0 {
                        format!("{:.1} MiB", v / 1048576.0)
                    } else {
                        format!("{:.1} KiB", v / 1024.0)
                    }
                })
            })
            .collect();
        let _ = writeln!(d, "| {label} | {} |", cells.join(" | "));
    };
    row(
        &mut d,
        "one idle connection after its handshake (heap)",
        &|h| mem(h, "idle_bytes"),
    );
    row(
        &mut d,
        "one connection after 1 MiB each way went through it (heap)",
        &|h| mem(h, "after_transfer_bytes"),
    );
    row(
        &mut d,
        "1,000 open connections: heap per connection",
        &|h| mem(h, "many_bytes_per_connection"),
    );
    row(
        &mut d,
        "1,000 open connections: linear memory growth per connection",
        &|h| ratio(mem(h, "many_linear_memory_growth"), mem(h, "connections")),
    );
    row(
        &mut d,
        "1,000 open connections: linear memory growth in all",
        &|h| mem(h, "many_linear_memory_growth"),
    );
    d.push('\n');
    let worst_idle = hosts
        .iter()
        .filter_map(|h| {
            [
                mem(h, "idle_bytes"),
                mem(h, "many_bytes_per_connection"),
                ratio(mem(h, "many_linear_memory_growth"), mem(h, "connections")),
            ]
            .into_iter()
            .flatten()
            .reduce(f64::max)
        })
        .reduce(f64::max);
    let worst_busy = hosts
        .iter()
        .filter_map(|h| mem(h, "after_transfer_bytes"))
        .reduce(f64::max);
    if let Some(w) = worst_idle {
        let _ = writeln!(
            d,
            "**Target: under 64 KiB per idle connection — {}** (at most {:.1} KiB over the \
             hosts and measures above).{} Configurations are shared and not counted per \
             connection.\n",
            if w < 65536.0 { "met" } else { "not met" },
            w / 1024.0,
            worst_busy.map_or(String::new(), |b| format!(
                " A connection that has just carried traffic holds more ({:.1} KiB): buffers \
                 grown for full 16 KiB records (rustls shrinks its incoming-record buffer back \
                 to 4 KiB only at its next read that finds it empty).",
                b / 1024.0
            ))
        );
    }

    // ---- size ----
    let _ = writeln!(d, "## 4. Size\n");
    let _ = writeln!(
        d,
        "What a page loads from the real npm package, as `cargo xtask build-pkg` builds it: \
         the wasm after wasm-bindgen and `wasm-opt -Oz`, the JS (wasm-bindgen's glue and the \
         package's `index.js`), and `roots.bin` (Mozilla's roots, fetched only by pages that \
         use them); gzipped with `gzip -9`.\n"
    );
    let _ = writeln!(d, "| file | size | gzipped |\n|---|---:|---:|");
    if let Some(s) = &r.package {
        for (name, len, gz) in [
            ("`wasm_tls_bg.wasm`", s.wasm, s.wasm_gz),
            ("JS (`wasm_tls.js`, `index.js`)", s.js, s.js_gz),
            ("`roots.bin`", s.roots, s.roots_gz),
        ] {
            let _ = writeln!(d, "| {name} | {} | {} |", kb(len), kb(gz));
        }
        let _ = writeln!(
            d,
            "| **a page with its own CA** (wasm and JS) | {} | **{}** |",
            kb(s.wasm + s.js),
            kb(s.wasm_gz + s.js_gz)
        );
        let _ = writeln!(
            d,
            "| **a page with Mozilla's roots** (and `roots.bin`) | {} | **{}** |",
            kb(s.wasm + s.js + s.roots),
            kb(s.wasm_gz + s.js_gz + s.roots_gz)
        );
    } else {
        let _ = writeln!(d, "| npm package | not built | |");
    }
    d.push('\n');
    if r.wasi.is_empty() {
        let _ = writeln!(
            d,
            "WASI components: none found in `target/wasi/` (`cargo xtask build-wasi`) or \
             `target/wasm32-wasip2/wasm-release/` at the time of the run.\n"
        );
    } else {
        let _ = writeln!(
            d,
            "WASI components as found at the time of the run (built by `cargo xtask \
             build-wasi`, profile `wasm-release`; this command does not rebuild them):\n"
        );
        let _ = writeln!(d, "| component | size | gzipped |\n|---|---:|---:|");
        for (name, len, gz) in &r.wasi {
            let _ = writeln!(d, "| `{name}` | {} | {} |", kb(*len), kb(*gz));
        }
        d.push('\n');
    }

    // ---- end to end ----
    let _ = writeln!(d, "## 5. End to end in Chromium, through the relay\n");
    let _ = writeln!(
        d,
        "The npm package in a page (headless Chromium) connects through `wasm-tls-relay` \
         (release build) to the rustls test server (`examples/test_server.rs`, release \
         build) on 127.0.0.1; everything on this machine. A handshake here is `connect()` \
         until `opened` resolves: the WebSocket to the relay, the relay's TCP connection, the \
         TLS handshake over both hops. The download is `GET /bytes/N` read to the end with \
         `download()` from tests/browser/client.mjs.\n"
    );
    if let Some(err) = e2e.get("error").get("message").str() {
        let _ = writeln!(d, "Not measured: {err}\n");
    } else if e2e.get("download").get("medianMbps").num().is_some() {
        let full = e2e.get("full");
        let res = e2e.get("resumed");
        let n = res.get("timesMs").arr().len();
        let dl = e2e.get("download");
        let _ = writeln!(d, "| figure | value |\n|---|---:|");
        let _ = writeln!(
            d,
            "| loading the package (`init()`: fetch, compile, instantiate the wasm) | {} ms |",
            f1(e2e.get("initMs").num())
        );
        let _ = writeln!(
            d,
            "| first connection of the page, full handshake | {} ms |",
            f1(e2e.get("first").num())
        );
        let _ = writeln!(
            d,
            "| full handshake, median of {} (`resumption: false`) | {} ms |",
            full.get("timesMs").arr().len(),
            f1(full.get("medianMs").num())
        );
        let _ = writeln!(
            d,
            "| resumed handshake, median of {n} (default options; {} of {n} resumed) | {} ms |",
            res.get("resumed")
                .num()
                .map_or("?".into(), |c| format!("{c:.0}")),
            f1(res.get("medianMs").num())
        );
        let _ = writeln!(
            d,
            "| download of {} MiB, median of {} ({} {}) | **{} MB/s** |",
            dl.get("bytes").num().unwrap_or(0.0) / 1048576.0,
            dl.get("rounds").arr().len(),
            dl.get("protocol").str().unwrap_or("?"),
            dl.get("cipherSuite").str().unwrap_or("?"),
            f1(dl.get("medianMbps").num())
        );
        d.push('\n');
        if let (Some(e), Some(c)) = (
            dl.get("medianMbps").num(),
            bulk_of(chr, "bulk-chacha20", "decrypt_mbps"),
        ) {
            let _ = writeln!(
                d,
                "The download reaches {:.0}% of what the client decrypts in memory with the same \
                 suite in Chromium ({c:.0} MB/s): the TLS core is a small part of the page's \
                 time; the rest goes to the WebSocket, the JS streams, the copies between them \
                 and the relay and the server, all on the same 2 CPUs.\n",
                e / c * 100.0
            );
        }
    } else {
        let _ = writeln!(d, "Not measured in this run (see the stages below).\n");
    }

    // ---- Wisp ----
    let _ = writeln!(d, "## 5b. Many connections over one WebSocket: Wisp\n");
    if let Some(w) = &r.wisp {
        let open20 = w.get("open20");
        let _ = writeln!(
            d,
            "From one Chromium run ({}) of `node --test --test-name-pattern=^figures: \
             tests/browser/wisp.test.mjs`: the page opens TLS connections at once through \
             `wasm-tls-relay` ({} build) to the rustls test server, each with a WebSocket of its \
             own (raw) or all on one Wisp WebSocket; median of {} runs. Chromium throttles \
             pending WebSocket handshakes per page, which is what Wisp avoids.\n",
            w.get("chromium").str().unwrap_or("?"),
            w.get("relayBuild").str().unwrap_or("?"),
            f1(w.get("runs").num())
        );
        let _ = writeln!(d, "| figure | raw WebSockets | Wisp |");
        let _ = writeln!(d, "|---|---:|---:|");
        let _ = writeln!(
            d,
            "| 20 connections opened at once, all handshakes done (ms) | {} | **{}** |",
            f1(open20.get("rawMs").num()),
            f1(open20.get("wispMs").num())
        );
        let _ = writeln!(
            d,
            "| the same, each with an HTTP GET done (ms) | {} | {} |",
            f1(open20.get("withGetRawMs").num()),
            f1(open20.get("withGetWispMs").num())
        );
        let _ = writeln!(
            d,
            "| 200 connections at once, handshakes done (ms) | — | {} |",
            f1(w.get("open200").get("wispMs").num())
        );
        let _ = writeln!(
            d,
            "| bulk download, 64 MiB on one connection (MB/s) | {} | {} |",
            f1(w.get("bulk64MiB").get("rawMBps").num()),
            f1(w.get("bulk64MiB").get("wispMBps").num())
        );
        let _ = writeln!(
            d,
            "| a small GET beside a bulk download on the same WebSocket, median (ms) | — | {} |\n",
            f1(w.get("smallGetBesideBulkWisp").get("medianMs").num())
        );
        let met = open20.get("wispMs").num().is_some_and(|ms| ms <= 150.0);
        let _ = writeln!(
            d,
            "Target: 20 connections over Wisp in at most 150 ms on loopback: **{}**.\n",
            if met { "met" } else { "not met in this run" }
        );
    } else {
        let _ = writeln!(d, "Not measured in this run (see the stages below).\n");
    }

    // ---- levers ----
    let _ = writeln!(d, "## 6. Speed levers\n");
    if !with_levers {
        let _ = writeln!(d, "Not run (`--no-levers`).\n");
    } else {
        let _ = writeln!(
            d,
            "Each lever is a build of the bench page and of the package with one change (its \
             own target directory under `target/bench-levers/`). All builds are loaded in one \
             Chromium, a page each, and run a subset of the figures in turn (3 rounds each, \
             {} MiB bulk rounds), {LEVER_PASSES} passes after a warm-up pass, so that a busy machine weighs \
             on all alike; each cell is the median of the passes. The last column is the \
             package's wasm, gzipped, built with the lever. Percentages are the median over the passes of each pass's ratio to \"as \
             shipped\" (paired, as the builds ran one after the other); differences within \
             about ±10% are noise on this machine.\n",
            LEVER_BULK >> 20
        );
        let _ = writeln!(
            d,
            "| lever | ECDSA full, client µs | resumed, client µs | P-256 verify µs | X25519 µs | AES-128-GCM decrypt / encrypt MB/s | ChaCha20-Poly1305 decrypt / encrypt MB/s | package wasm gzipped |"
        );
        let _ = writeln!(d, "|---|---:|---:|---:|---:|---:|---:|---:|");
        let runs = json(&r.levers_run).get("levers");
        // (key, list, figure id, field, label, whether higher is better)
        const FIGS: &[(&str, &str, &str, &str, &str, bool)] = &[
            (
                "full",
                "handshakes",
                "tls13-ecdsa-full",
                "client_us",
                "full handshake",
                false,
            ),
            (
                "resumed",
                "handshakes",
                "tls13-ecdsa-resumed",
                "client_us",
                "resumed handshake",
                false,
            ),
            (
                "p256",
                "primitives",
                "p256-verify",
                "value",
                "P-256 verify",
                false,
            ),
            ("x25519", "primitives", "x25519", "value", "X25519", false),
            (
                "aes-d",
                "bulk",
                "bulk-aes128gcm",
                "decrypt_mbps",
                "AES-128-GCM decrypt",
                true,
            ),
            (
                "aes-e",
                "bulk",
                "bulk-aes128gcm",
                "encrypt_mbps",
                "AES-128-GCM encrypt",
                true,
            ),
            (
                "cha-d",
                "bulk",
                "bulk-chacha20",
                "decrypt_mbps",
                "ChaCha20-Poly1305 decrypt",
                true,
            ),
            (
                "cha-e",
                "bulk",
                "bulk-chacha20",
                "encrypt_mbps",
                "ChaCha20-Poly1305 encrypt",
                true,
            ),
        ];
        let fig = |name: &str, key: &str| {
            let &(_, list, id, field, _, _) = FIGS.iter().find(|f| f.0 == key)?;
            let f = runs.get(&lever_key(name)).get(list).by_id(id);
            let passes: Vec<Option<f64>> = f
                .get(&format!("passes_{field}"))
                .arr()
                .iter()
                .map(Json::num)
                .collect();
            Some((f.get(field).num(), passes))
        };
        // The change against the baseline: the median over passes of the ratio within
        // each pass (the builds ran one after the other in every pass).
        let paired = |name: &str, base: &str, key: &str| -> Option<f64> {
            let (_, a) = fig(name, key)?;
            let (_, b) = fig(base, key)?;
            let mut ratios: Vec<f64> = a
                .iter()
                .zip(&b)
                .filter_map(|(x, y)| ratio(*x, *y))
                .collect();
            ratios.sort_by(f64::total_cmp);
            let n = ratios.len();
            match n {
                0 => None,
                _ if n % 2 == 1 => Some(ratios[n / 2] - 1.0),
                _ => Some((ratios[n / 2 - 1] + ratios[n / 2]) / 2.0 - 1.0),
            }
        };
        let base = r.levers.first();
        let mut summary = Vec::new();
        for (i, l) in r.levers.iter().enumerate() {
            let cell = |key: &str| {
                let v = fig(&l.name, key).and_then(|f| f.0);
                match (base, v) {
                    (Some(b), Some(v)) if i > 0 => match paired(&l.name, &b.name, key) {
                        Some(p) => format!("{} ({:+.0}%)", f1(Some(v)), p * 100.0),
                        None => f1(Some(v)),
                    },
                    _ => f1(v),
                }
            };
            let size = match (l.size_gz, base.and_then(|b| b.size_gz)) {
                (Some(gz), Some(b)) if i > 0 => {
                    format!("{} ({:+.1}%)", kb(gz), (gz as f64 / b as f64 - 1.0) * 100.0)
                }
                (Some(gz), _) => kb(gz),
                (None, _) => "not built".into(),
            };
            let _ = writeln!(
                d,
                "| {} | {} | {} | {} | {} | {} / {} | {} / {} | {size} |",
                l.name,
                cell("full"),
                cell("resumed"),
                cell("p256"),
                cell("x25519"),
                cell("aes-d"),
                cell("aes-e"),
                cell("cha-d"),
                cell("cha-e"),
            );
            if let (Some(b), true) = (base, i > 0) {
                let mut changes: Vec<String> = FIGS
                    .iter()
                    .filter_map(|&(key, _, _, _, label, higher_better)| {
                        let p = paired(&l.name, &b.name, key)?;
                        if p.abs() < 0.10 {
                            return None;
                        }
                        let better = (p > 0.0) == higher_better;
                        Some(format!(
                            "{label} {:+.0}% ({})",
                            p * 100.0,
                            if better { "better" } else { "worse" }
                        ))
                    })
                    .collect();
                if let (Some(gz), Some(bgz)) = (l.size_gz, b.size_gz) {
                    changes.push(format!(
                        "package {:+.1}% gzipped",
                        (gz as f64 / bgz as f64 - 1.0) * 100.0
                    ));
                }
                summary.push(format!(
                    "- **{}**: {}",
                    l.name,
                    if changes.len() <= 1 {
                        format!("no speed change beyond ±10%; {}", changes.join(""))
                    } else {
                        changes.join(", ")
                    }
                ));
            }
        }
        d.push('\n');
        if !summary.is_empty() {
            let _ = writeln!(
                d,
                "What changed in this run (changes of 10% or more, paired within passes):\n"
            );
            for line in summary {
                let _ = writeln!(d, "{line}");
            }
            d.push('\n');
        }
        let _ = writeln!(d, "How each was built:\n");
        for l in &r.levers {
            let _ = writeln!(d, "- **{}**: {}. `{}`", l.name, l.what, l.how);
        }
        d.push('\n');
    }

    // ---- method ----
    let _ = writeln!(d, "## Method\n");
    let _ = writeln!(
        d,
        "- One crate, `bench/`, holds the benchmarks; three hosts run it: natively and on \
         wasmtime as the `wasm-tls-bench` bin, in Chromium as the `runBenchmarks(json)` export \
         (wasm-bindgen `--target web`, loaded by `bench/chromium.mjs` through playwright-core).\n\
         - In memory: the client is `wasm_tls::TlsClient`, the real API; the server is a rustls \
         `ServerConnection` in the same process and thread. No sockets, so the figures are CPU \
         cost.\n\
         - Handshakes run 20 connections in lock step: every client takes its turn (timed as one \
         batch), then every server. Batching keeps Chromium's coarse `performance.now()` \
         accurate. \"Total\" is the wall time of the batch divided by 20. The resumed figures \
         prime one configuration per connection with a full handshake first (untimed), so that \
         each has its own ticket.\n\
         - Bulk rounds prepare the server's records first (untimed), then time only the client.\n\
         - The benchmarks build in `target/bench-build/` (and the levers in \
         `target/bench-levers/`), apart from `target/`, so that they never replace what the \
         package's and the WASI builds leave there. The wasm builds use `wasm-tls` without its \
         default features, as the package does.\n\
         - Every figure is the median of its rounds; the rounds are in `target/bench/*.json`.\n\
         - Nothing generated is committed: the RSA-2048 keys come from `openssl genpkey` at each \
         run (ring cannot generate RSA keys) and are passed in the input JSON; rcgen makes the \
         certificates at start-up in each host.\n"
    );

    // ---- reproducing ----
    let _ = writeln!(d, "## Reproducing a figure\n");
    let _ = writeln!(
        d,
        "`cargo xtask bench` leaves its inputs in `target/bench/` (`native-input.json`, \
         `wasm-input.json`, with the RSA keys). With those, one host, one figure (`--only` takes \
         id prefixes, comma-separated: `tls13-ecdsa`, `bulk`, `memory`, `p256-verify`, …):\n"
    );
    let _ = writeln!(
        d,
        "```sh\n\
         export CARGO_TARGET_DIR={BUILD_DIR}   # where `cargo xtask bench` builds them\n\
         # native\n\
         cargo run --release -p wasm-tls-bench -- --input target/bench/native-input.json --only tls13-ecdsa-full\n\
         # wasmtime\n\
         CC_wasm32_wasip2=clang cargo build --profile wasm-release --target wasm32-wasip2 -p wasm-tls-bench --bin wasm-tls-bench\n\
         wasmtime run {WASM_BENCH} --input - --only tls13-ecdsa-full < target/bench/wasm-input.json\n\
         # Chromium: the page's module, built as the package is (\"as shipped\" in section 6),\n\
         # is in target/bench/variants/shipped/web after `cargo xtask bench`\n\
         node bench/chromium.mjs --web target/bench/variants/shipped/web --input target/bench/wasm-input.json --out /tmp/chromium.json\n\
         unset CARGO_TARGET_DIR\n\
         # size\n\
         cargo xtask build-pkg\n\
         # end to end: the test server (prints its port), the relay (prints its URL), then the page\n\
         cargo build --release -p wasm-tls-relay && cargo build --release -p wasm-tls --example test_server\n\
         target/release/examples/test_server --cert target/bench/pki/server.pem --key target/bench/pki/server.key &\n\
         target/release/wasm-tls-relay --listen 127.0.0.1:0 --allow-private --allow 127.0.0.1:PORT &\n\
         node bench/chromium.mjs --relay ws://127.0.0.1:RELAYPORT --target 127.0.0.1:PORT --ca target/bench/pki/ca.pem --out /tmp/e2e.json\n\
         ```\n\n\
         Without `--input`, the bin runs everything but the RSA figures with the defaults. \
         Without `--json` it prints a table. The Chromium script runs the whole input (add \
         `\"only\": [\"…\"]` to the JSON to narrow it). The levers: each is built with the \
         command shown in section 6, then bound and optimized into \
         `target/bench/variants/ID/web`; `node bench/chromium.mjs --levers \
         target/bench/levers/builds.json --input target/bench/levers-input.json --out \
         /tmp/levers.json` runs them again.\n"
    );

    // ---- the run ----
    let _ = writeln!(d, "## This run\n");
    let _ = writeln!(d, "| stage | seconds | |\n|---|---:|---|");
    for (name, secs, result) in &stages.done {
        let _ = writeln!(
            d,
            "| {name} | {secs:.1} | {} |",
            match result {
                Ok(()) => "ok".to_owned(),
                Err(e) => format!("failed: {}", e.replace('|', "\\|")),
            }
        );
    }
    let _ = writeln!(d, "| total | {total:.1} | |\n");
    let mut errors = Vec::new();
    for (host, h) in [("native", nat), ("wasmtime", wt), ("Chromium", chr)] {
        for e in h.get("errors").arr() {
            errors.push(format!("{host}: {}", e.str().unwrap_or("?")));
        }
    }
    if !errors.is_empty() {
        let _ = writeln!(d, "Figures that could not be measured:\n");
        for e in errors {
            let _ = writeln!(d, "- {e}");
        }
        d.push('\n');
    }
    d
}
