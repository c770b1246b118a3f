//! Builds the npm package: the crate for wasm32-unknown-unknown, wasm-bindgen's glue
//! into pkg/, wasm-opt, and the size a page loads.

use std::path::Path;
use std::process::Command;

use crate::{cargo, output, run};

/// ring's C code needs a compiler that targets wasm32.
pub fn wasm_env(cmd: &mut Command) -> &mut Command {
    cmd.env("CC_wasm32_unknown_unknown", "clang")
}

/// Sizes, in bytes, of what a page loads: the wasm and the JS always, and `roots.bin`
/// (Mozilla's roots) unless the application brings its own CA.
pub struct Sizes {
    pub wasm: u64,
    pub wasm_gz: u64,
    pub js: u64,
    pub js_gz: u64,
    pub roots: u64,
    pub roots_gz: u64,
}

/// The size of `path` compressed with `gzip -9`, as a server would send it.
pub fn gzip_len(path: &Path) -> Result<u64, String> {
    let out = output(
        Command::new("sh")
            .arg("-c")
            .arg("gzip -9 -c \"$1\" | wc -c")
            .arg("sh")
            .arg(path),
    )
    .ok_or_else(|| format!("cannot gzip {}", path.display()))?;
    out.trim()
        .parse()
        .map_err(|_| format!("unexpected gzip output '{out}'"))
}

/// The size of `path`.
pub fn file_len(path: &Path) -> Result<u64, String> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|err| format!("{}: {err}", path.display()))
}

/// Builds the crate for the browser, binds it with wasm-bindgen into `out` and runs
/// wasm-opt: the package's wasm. `names` keeps the name section (cargo's `strip` off,
/// wasm-opt `-g`) so that CPU profiles name the wasm functions; `target_dir` keeps such
/// a build apart from the package's.
pub fn build_wasm(
    root: &Path,
    out: &Path,
    target_dir: Option<&Path>,
    names: bool,
) -> Result<(), String> {
    build_wasm_variant(root, out, target_dir, names, &Variant::default())
}

/// A change to how the package's wasm is built, for the benchmark's speed levers; the
/// default is the package as it ships.
#[derive(Default)]
pub struct Variant<'a> {
    /// Environment for cargo (`RUSTFLAGS`, `CFLAGS_…`).
    pub env: &'a [(&'a str, &'a str)],
    /// `--config` settings for cargo.
    pub config: &'a [&'a str],
    /// The build has no `+simd128`: wasm-opt without `--enable-simd`.
    pub no_simd: bool,
    /// wasm-bindgen's output as it is, not run through wasm-opt.
    pub no_wasm_opt: bool,
}

/// [`build_wasm`] with the changes of `variant`.
pub fn build_wasm_variant(
    root: &Path,
    out: &Path,
    target_dir: Option<&Path>,
    names: bool,
    variant: &Variant,
) -> Result<(), String> {
    let mut build = cargo(&[
        "build",
        "-j2",
        "--lib",
        "--target",
        "wasm32-unknown-unknown",
        "--profile",
        "wasm-release",
        // The roots ship as roots.bin, loaded only by pages that use them.
        "--no-default-features",
    ]);
    wasm_env(&mut build);
    let target = match target_dir {
        Some(dir) => {
            build.env("CARGO_TARGET_DIR", dir);
            dir.to_path_buf()
        }
        None => root.join("target"),
    };
    if names {
        build.env("CARGO_PROFILE_WASM_RELEASE_STRIP", "none");
    }
    for setting in variant.config {
        build.args(["--config", setting]);
    }
    build.envs(variant.env.iter().copied());
    run(&mut build)?;
    let built = target.join("wasm32-unknown-unknown/wasm-release/wasm_tls.wasm");
    run(Command::new("wasm-bindgen")
        .args(["--target", "web", "--out-name", "wasm_tls", "--out-dir"])
        .arg(out)
        .arg(&built))?;
    if variant.no_wasm_opt {
        return Ok(());
    }
    wasm_opt(root, &out.join("wasm_tls_bg.wasm"), !variant.no_simd, names)
}

/// Runs `wasm-opt -Oz` on a wasm-bindgen output in place, as the package ships: the one
/// definition of its flags (the benchmark's page goes through it too). `simd` when the
/// module was built with `+simd128` (.cargo/config.toml builds the browser target so);
/// `names` keeps the name section (`-g`) instead of stripping it.
pub fn wasm_opt(root: &Path, wasm: &Path, simd: bool, names: bool) -> Result<(), String> {
    let mut cmd = Command::new(root.join("xtask/npm/node_modules/.bin/wasm-opt"));
    // wasm-bindgen removed the producers/target-features sections that wasm-opt would
    // read, so name the features Rust enables by default for this target.
    cmd.args([
        "-Oz",
        "--enable-bulk-memory",
        "--enable-nontrapping-float-to-int",
        "--enable-sign-ext",
        "--enable-mutable-globals",
        "--enable-reference-types",
        "--enable-multivalue",
    ]);
    if simd {
        cmd.arg("--enable-simd");
    }
    cmd.args([
        if names { "-g" } else { "--strip-debug" },
        "--strip-producers",
    ]);
    run(cmd.arg(wasm).arg("-o").arg(wasm))
}

/// The HTTP entry point's own module (crate `http/`, `wasm-tls/http`): hyper and
/// tungstenite over the package's sockets, bound into `out` as `wasm_tls_http*`. Its
/// size is printed apart: only pages that import `wasm-tls/http` load it.
pub fn build_http_wasm(root: &Path, out: &Path) -> Result<(), String> {
    run(&mut cargo(&[
        "build",
        "-j2",
        "--lib",
        "--package",
        "wasm-tls-http",
        "--target",
        "wasm32-unknown-unknown",
        "--profile",
        "wasm-release",
    ]))?;
    let built = root.join("target/wasm32-unknown-unknown/wasm-release/wasm_tls_http.wasm");
    run(Command::new("wasm-bindgen")
        .args([
            "--target",
            "web",
            "--out-name",
            "wasm_tls_http",
            "--out-dir",
        ])
        .arg(out)
        .arg(&built))?;
    let wasm = out.join("wasm_tls_http_bg.wasm");
    wasm_opt(root, &wasm, true, false)?;
    let mut js = vec![out.join("wasm_tls_http.js"), out.join("http.js")];
    js.extend(js_files(&out.join("src/http"))?);
    eprintln!(
        "wasm-tls/http adds: wasm {} bytes ({} gzipped), JS {} bytes ({} gzipped)",
        file_len(&wasm)?,
        gzip_len(&wasm)?,
        js.iter().map(|p| file_len(p)).sum::<Result<u64, _>>()?,
        js.iter().map(|p| gzip_len(p)).sum::<Result<u64, _>>()?,
    );
    Ok(())
}

pub fn build(root: &Path) -> Result<Sizes, String> {
    let out = root.join("pkg");
    build_wasm(root, &out, None, false)?;
    let wasm = out.join("wasm_tls_bg.wasm");
    let roots = out.join("roots.bin");
    run(cargo(&["run", "-j2", "--quiet", "--example", "export_roots", "--"]).arg(&roots))?;
    let mut js = vec![out.join("wasm_tls.js"), out.join("index.js")];
    // Not src/http/: a page that uses only sockets does not load the HTTP entry point.
    js.extend(
        js_files(&out.join("src"))?
            .into_iter()
            .filter(|p| !p.starts_with(out.join("src/http"))),
    );
    let sizes = Sizes {
        wasm: file_len(&wasm)?,
        wasm_gz: gzip_len(&wasm)?,
        js: js.iter().map(|p| file_len(p)).sum::<Result<u64, _>>()?,
        js_gz: js.iter().map(|p| gzip_len(p)).sum::<Result<u64, _>>()?,
        roots: file_len(&roots)?,
        roots_gz: gzip_len(&roots)?,
    };
    let page = sizes.wasm_gz + sizes.js_gz;
    eprintln!(
        "package size: wasm {} bytes ({} gzipped), JS {} bytes ({} gzipped), roots.bin {} bytes ({} gzipped)\n\
         a page loads {} KB gzipped with Mozilla's roots, {} KB with its own CA",
        sizes.wasm,
        sizes.wasm_gz,
        sizes.js,
        sizes.js_gz,
        sizes.roots,
        sizes.roots_gz,
        (page + sizes.roots_gz).div_ceil(1000),
        page.div_ceil(1000)
    );
    build_http_wasm(root, &out)?;
    Ok(sizes)
}

/// The package's JS modules under `dir`, recursively.
fn js_files(dir: &Path) -> Result<Vec<std::path::PathBuf>, String> {
    let mut files = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|err| err.to_string())?.path();
        if path.is_dir() {
            files.extend(js_files(&path)?);
        } else if path.extension().is_some_and(|e| e == "js") {
            files.push(path);
        }
    }
    Ok(files)
}
