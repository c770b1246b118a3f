//! The speed levers: builds of the bench page and of the package, each with one change
//! against the package as it ships, run side by side in one Chromium, and their section
//! of the report (§6).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::machine::measured;
use super::render::{f1, kb, ratio, ById, Template};
use super::run::{build_web, chromium, mkdir, write};
use super::{Results, BUILD_DIR, LEVER_BULK};
use crate::pkg::{self, gzip_len};
use crate::stages::Stages;
use crate::{cargo, run};

/// Passes over the levers in Chromium (each a round of every lever figure).
const LEVER_PASSES: usize = 5;

pub struct Lever {
    id: &'static str,
    what: &'static str,
    /// Environment for cargo.
    env: &'static [(&'static str, &'static str)],
    /// `--config` settings for cargo.
    config: &'static [&'static str],
    /// Whether the build has `+simd128` (wasm-opt is told so).
    simd: bool,
}

const SIMD: &str = "-C target-feature=+simd128";

/// The build as the package ships it: the baseline.
pub const SHIPPED: Lever = Lever {
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

/// A row of the levers' table.
pub struct LeverRow {
    name: String,
    what: String,
    how: String,
    web: PathBuf,
    /// The package's gzipped wasm; None if the build failed.
    size_gz: Option<u64>,
}

fn target_dir_of(l: &Lever) -> String {
    if l.id == SHIPPED.id {
        BUILD_DIR.to_owned()
    } else {
        format!("target/bench-levers/{}", l.id)
    }
}

/// The bench page's build with the lever, as a shell command for the report.
fn lever_command(l: &Lever) -> String {
    let mut s = format!("CARGO_TARGET_DIR={} ", target_dir_of(l));
    for (k, v) in l.env {
        let _ = write!(s, "{k}='{v}' ");
    }
    s.push_str(
        "CC_wasm32_unknown_unknown=clang cargo build --profile wasm-release \
         --target wasm32-unknown-unknown -p wasm-tls-bench --lib",
    );
    for c in l.config {
        let _ = write!(s, " --config '{c}'");
    }
    s
}

/// A lever's name as a URL path segment.
fn lever_key(name: &str) -> String {
    name.replace(' ', "-")
}

/// Builds the bench page with one lever, in the lever's target directory, into
/// `dir`/variants/ID/web (and web-raw, not through wasm-opt, if `raw`); returns
/// `dir`/variants/ID.
pub fn build_page(root: &Path, dir: &Path, l: &Lever, raw: bool) -> Result<PathBuf, String> {
    let target_dir = root.join(target_dir_of(l));
    let mut page = cargo(&[
        "build",
        "-j2",
        "--profile",
        "wasm-release",
        "--target",
        "wasm32-unknown-unknown",
        "-p",
        "wasm-tls-bench",
        "--lib",
    ]);
    for c in l.config {
        page.args(["--config", c]);
    }
    page.envs(l.env.iter().copied());
    page.env("CARGO_TARGET_DIR", &target_dir);
    run(pkg::wasm_env(&mut page))?;
    let out = dir.join("variants").join(l.id);
    build_web(
        root,
        &target_dir,
        &out.join("web"),
        raw.then(|| out.join("web-raw")).as_deref(),
        l.simd,
    )?;
    Ok(out)
}

/// Builds the bench page (see [`build_page`]) and the package's wasm (through
/// `pkg::build_wasm_variant`, the function `cargo xtask build-pkg` builds with) with one
/// lever. Returns the package's gzipped wasm, and without wasm-opt if `raw`.
pub fn build_variant(
    root: &Path,
    dir: &Path,
    l: &Lever,
    raw: bool,
) -> Result<(u64, Option<u64>), String> {
    let out = build_page(root, dir, l, raw)?;
    let target_dir = root.join(target_dir_of(l));
    let package = |sub: &str, no_wasm_opt: bool| {
        let variant = pkg::Variant {
            env: l.env,
            config: l.config,
            no_simd: !l.simd,
            no_wasm_opt,
        };
        let pkg_dir = out.join(sub);
        mkdir(&pkg_dir)?;
        pkg::build_wasm_variant(root, &pkg_dir, Some(&target_dir), false, &variant)?;
        gzip_len(&pkg_dir.join("wasm_tls_bg.wasm"))
    };
    let size = package("pkg", false)?;
    let raw_size = if raw {
        Some(package("pkg-raw", true)?)
    } else {
        None
    };
    Ok((size, raw_size))
}

/// The levers' stages: each lever's build, then all of them in Chromium, interleaved.
/// `shipped` is the baseline's package sizes (with wasm-opt, and without), from the build
/// whose page is at `web`.
pub fn run_all(
    stages: &mut Stages,
    root: &Path,
    dir: &Path,
    shipped: (u64, Option<u64>),
    web: &Path,
) -> (Vec<LeverRow>, Option<(Value, Option<f64>)>) {
    let mut rows = vec![
        LeverRow {
            name: "as shipped".into(),
            what: SHIPPED.what.into(),
            how: lever_command(&SHIPPED),
            web: web.to_path_buf(),
            size_gz: Some(shipped.0),
        },
        LeverRow {
            name: "no wasm-opt".into(),
            what: "the same build; wasm-bindgen's output not run through `wasm-opt -Oz`".into(),
            how: "as shipped, without the wasm-opt step".into(),
            web: dir.join("variants/shipped/web-raw"),
            size_gz: shipped.1,
        },
    ];
    for l in LEVERS {
        let size = stages.run(&format!("lever: {} (build)", l.id), || {
            build_variant(root, dir, l, false).map(|(gz, _)| gz)
        });
        rows.push(LeverRow {
            name: l.id.into(),
            what: l.what.into(),
            how: lever_command(l),
            web: dir.join("variants").join(l.id).join("web"),
            size_gz: size,
        });
    }
    let list: Vec<Value> = rows
        .iter()
        .filter(|l| l.size_gz.is_some())
        .map(|l| json!({"name": lever_key(&l.name), "web": l.web.to_string_lossy()}))
        .collect();
    let list_file = dir.join("levers/builds.json");
    let result = stages.run("levers: run in Chromium, interleaved", || {
        write(&list_file, &format!("{}\n", Value::Array(list)))?;
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
    (rows, result)
}

/// A figure of the levers' table: its key in the code, the list, id and field that find
/// it in a host's report, its label in the summary, and whether higher is better.
type LeverFigure = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
);

// A table: one figure a line.
#[rustfmt::skip]
const FIGURES: &[LeverFigure] = &[
    ("full", "handshakes", "tls13-ecdsa-full", "client_us", "full handshake", false),
    ("resumed", "handshakes", "tls13-ecdsa-resumed", "client_us", "resumed handshake", false),
    ("p256", "primitives", "p256-verify", "value", "P-256 verify", false),
    ("x25519", "primitives", "x25519", "value", "X25519", false),
    ("aes-d", "bulk", "bulk-aes128gcm", "decrypt_mbps", "AES-128-GCM decrypt", true),
    ("aes-e", "bulk", "bulk-aes128gcm", "encrypt_mbps", "AES-128-GCM encrypt", true),
    ("cha-d", "bulk", "bulk-chacha20", "decrypt_mbps", "ChaCha20-Poly1305 decrypt", true),
    ("cha-e", "bulk", "bulk-chacha20", "encrypt_mbps", "ChaCha20-Poly1305 encrypt", true),
];

/// §6 of the report.
pub fn section(t: &Template, r: &Results, with_levers: bool) -> String {
    let mut d = t.fill("levers-title", &[]);
    if !with_levers {
        d.push_str(&t.fill("levers-not-run", &[]));
        return d;
    }
    let runs = r.levers_run.as_ref().map(|(j, _)| &j["levers"]);
    let runs = runs.unwrap_or(&Value::Null);
    // A figure of a lever: its median and each pass's value.
    let fig = |name: &str, key: &str| {
        let &(_, list, id, field, _, _) = FIGURES.iter().find(|f| f.0 == key)?;
        let f = runs[lever_key(name)][list].by_id(id);
        let passes: Vec<Option<f64>> = f[format!("passes_{field}")]
            .as_array()
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .map(Value::as_f64)
            .collect();
        Some((f[field].as_f64(), passes))
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
    let mut rows = String::new();
    let mut summary = String::new();
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
            rows,
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
        let Some(b) = base.filter(|_| i > 0) else {
            continue;
        };
        let mut changes: Vec<String> = FIGURES
            .iter()
            .filter_map(|&(key, _, _, _, label, higher_is_better)| {
                let p = paired(&l.name, &b.name, key)?;
                if p.abs() < 0.10 {
                    return None;
                }
                let better = (p > 0.0) == higher_is_better;
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
        let changed = if changes.len() <= 1 {
            t.fill("levers-no-change", &[("size", changes.join(""))])
        } else {
            changes.join(", ")
        };
        let _ = writeln!(summary, "- **{}**: {changed}", l.name);
    }
    d.push_str(&t.fill(
        "levers",
        &[
            ("bulk_mib", (LEVER_BULK >> 20).to_string()),
            ("passes", LEVER_PASSES.to_string()),
            ("rows", rows),
        ],
    ));
    if !summary.is_empty() {
        d.push_str(&t.fill("levers-changes", &[("lines", summary)]));
    }
    let mut how = String::new();
    for l in &r.levers {
        let _ = writeln!(how, "- **{}**: {}. `{}`", l.name, l.what, l.how);
    }
    d.push_str(&t.fill("levers-how", &[("lines", how)]));
    d
}
