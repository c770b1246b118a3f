//! The npm package's data path against the limit of its path: `cargo xtask bench --only
//! datapath`, and a stage of `cargo xtask bench`. Builds the relay, the rustls test
//! server, the package and a copy of it whose wasm keeps its function names (for the
//! profiles), then runs `node bench/datapath.mjs`, which measures and writes its
//! section of docs/benchmarks.md, between the markers below.
//!
//! Flags (after `--only datapath`, or with the whole `cargo xtask bench`):
//! `--datapath-bytes N` (bytes per transfer, with a KiB/MiB/GiB suffix if wanted;
//! default 256 MiB) and `--datapath-rounds N` (default 3).

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::{cargo, install, pkg, run};

/// Where this benchmark builds and keeps its files.
const DIR: &str = "target/bench/datapath";

/// For `cargo xtask bench --only datapath`: installs what it needs and runs; None when
/// the command line asks for something else.
pub fn only(root: &Path, args: &[String]) -> Option<Result<(), String>> {
    only_run(root, args, "datapath", "data path", run_all)
}

/// `cargo xtask bench --only NAME` for a benchmark run by Node.js in Chromium and Node
/// (`run_all(root, args, build_pkg)`): installs what those need, runs it and prints its
/// time; None when the command line asks for something else.
pub fn only_run(
    root: &Path,
    args: &[String],
    name: &str,
    label: &str,
    run_all: fn(&Path, &[String], bool) -> Result<(), String>,
) -> Option<Result<(), String>> {
    let i = args.iter().position(|a| a == "--only")?;
    if args.get(i + 1).map(String::as_str) != Some(name) {
        return None;
    }
    let started = std::time::Instant::now();
    let result = install::apt(&["clang", "openssl", "chromium", "nodejs", "npm"])
        .and_then(|()| install::for_pkg(root))
        .and_then(|()| install::npm(root, "tests/browser"))
        .and_then(|()| run_all(root, args, true));
    eprintln!(
        "{label}: {} in {:.0} s",
        if result.is_ok() { "done" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    );
    Some(result)
}

/// Builds what the benchmark needs (the package too, unless `build_pkg` is false
/// because the caller just built it) and runs bench/datapath.mjs.
pub fn run_all(root: &Path, args: &[String], build_pkg: bool) -> Result<(), String> {
    let dir = root.join(DIR);
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // websockify is the second relay; without it those rows are left out.
    if let Err(e) = install::apt(&["websockify"]) {
        eprintln!("data path: no websockify ({e}); its rows are left out");
    }
    build_servers()?;
    if build_pkg {
        pkg::build(root)?;
    }
    let named = dir.join("pkg-named");
    let named_ok = match named_package(root, &named) {
        Ok(()) => true,
        Err(e) => {
            eprintln!("data path: no copy with function names ({e}); profiles show wasm functions by index");
            false
        }
    };
    let pki = dir.join("pki");
    crate::demo::make_pki(&pki, "wasm-tls benchmarks")?;

    let mut node = Command::new("node");
    node.arg(root.join("bench/datapath.mjs"))
        .arg("--pki")
        .arg(&pki)
        .arg("--out")
        .arg(root.join("target/bench/datapath.json"))
        .arg("--doc")
        .arg(doc_path(root, args))
        .current_dir(root);
    if named_ok {
        node.arg("--named-pkg").arg(&named);
    }
    let mut command = String::from("cargo xtask bench --only datapath");
    for (flag, to) in [
        ("--datapath-bytes", "--bytes"),
        ("--datapath-rounds", "--rounds"),
    ] {
        if let Some(v) = value(args, flag) {
            node.arg(to).arg(v);
            command.push_str(&format!(" {flag} {v}"));
        }
    }
    node.arg("--command").arg(command);
    run(&mut node)
}

/// The relay and the rustls test server, release builds: what the end-to-end figures
/// run against.
pub fn build_servers() -> Result<(), String> {
    run(&mut cargo(&[
        "build",
        "-j2",
        "--release",
        "-p",
        "wasm-tls-relay",
    ]))?;
    run(&mut cargo(&[
        "build",
        "-j2",
        "--release",
        "-p",
        "wasm-tls",
        "--example",
        "test_server",
    ]))
}

/// Where the report goes: docs/benchmarks.md, or the file after `--doc` (a copy to
/// compare, say).
pub fn doc_path(root: &Path, args: &[String]) -> std::path::PathBuf {
    value(args, "--doc").map_or_else(|| root.join("docs/benchmarks.md"), |p| root.join(p))
}

fn value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let i = args.iter().position(|a| a == flag)?;
    args.get(i + 1).map(String::as_str)
}

/// A copy of the package whose wasm keeps its name section: the same sources, profile
/// and `wasm-opt -Oz`, but built with `strip = "none"` and optimized with `-g` instead
/// of `--strip-debug` (the name section kept), so that CPU profiles name the wasm
/// functions. In its own target
/// directory, so that the package's build is untouched.
fn named_package(root: &Path, out: &Path) -> Result<(), String> {
    if out.exists() {
        fs::remove_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    copy_tree(&root.join("pkg"), out)?;
    pkg::build_wasm(root, out, Some(&root.join(DIR).join("build")), true)
}

/// Copies the package's files (its JS modules and roots.bin), not node_modules.
fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    let entries = fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            if name != "node_modules" {
                copy_tree(&path, &to.join(&name))?;
            }
        } else {
            fs::copy(&path, to.join(&name)).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// The sections of docs/benchmarks.md that other commands measure and write, each
/// between `<!-- NAME:begin -->` and `<!-- NAME:end -->`: `cargo xtask bench` keeps them
/// as they are when it rewrites the rest.
pub const KEPT_SECTIONS: [&str; 4] = ["datapath", "post-quantum", "wasi-tls", "http"];

/// `new` with every kept section of `old` (docs/benchmarks.md before the rewrite).
pub fn keep_sections(old: &str, new: String) -> String {
    KEPT_SECTIONS
        .iter()
        .fold(new, |doc, name| keep_section(old, doc, name))
}

/// The section `name` of `old` put into `new`: where `new` has its markers, else (the
/// data path) before "## Method", else at the end. `new` unchanged if `old` has no
/// such section.
fn keep_section(old: &str, new: String, name: &str) -> String {
    let (begin, end) = (
        format!("<!-- {name}:begin -->"),
        format!("<!-- {name}:end -->"),
    );
    let (Some(a), Some(b)) = (old.find(&begin), old.find(&end)) else {
        return new;
    };
    if b < a {
        return new;
    }
    let section = &old[a..b + end.len()];
    if let (Some(x), Some(y)) = (new.find(&begin), new.find(&end)) {
        if x < y {
            return format!("{}{section}{}", &new[..x], &new[y + end.len()..]);
        }
    }
    match new.find("\n## Method").filter(|_| name == "datapath") {
        Some(m) => format!("{}{section}\n\n{}", &new[..=m], &new[m + 1..]),
        None => format!("{}\n\n{section}\n", new.trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEGIN: &str = "<!-- datapath:begin -->";
    const END: &str = "<!-- datapath:end -->";

    #[test]
    fn the_section_survives_a_rewrite() {
        let old = format!("# B\n\n{BEGIN}\n## 7. x\n{END}\n\n## Method\nold\n");
        let new = "# B\nnew\n\n## Method\nnew\n".to_owned();
        let kept = keep_sections(&old, new);
        assert_eq!(
            kept,
            format!("# B\nnew\n\n{BEGIN}\n## 7. x\n{END}\n\n## Method\nnew\n")
        );
        assert_eq!(keep_sections("# B\n", "# C\n".into()), "# C\n");
        assert_eq!(
            keep_sections(&old, "# C".into()),
            format!("# C\n\n{BEGIN}\n## 7. x\n{END}\n")
        );
        // Another kept section goes where the new text has its markers, else at the end.
        let old = "x\n<!-- http:begin -->\n## H\n<!-- http:end -->\n<!-- wasi-tls:begin -->W<!-- wasi-tls:end -->\n";
        let new = "# N\n<!-- http:begin --><!-- http:end -->\n## Method\n".to_owned();
        assert_eq!(
            keep_sections(old, new),
            "# N\n<!-- http:begin -->\n## H\n<!-- http:end -->\n## Method\n\n<!-- wasi-tls:begin -->W<!-- wasi-tls:end -->\n"
        );
    }
}
