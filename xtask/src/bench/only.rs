//! `cargo xtask bench --only ID[,ID…]`: a few figures on the three hosts, from the same
//! builds and inputs as the whole run, printed instead of written to docs/benchmarks.md.
//! The ids are the report's, or their prefixes or groups (`tls13-ecdsa-full`, `bulk`,
//! `memory`, …); `--only datapath` is the data path's benchmark (datapath.rs), `--only
//! http` wasm-tls/http's (http.rs).

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use super::levers::{build_page, SHIPPED};
use super::run::{self, mkdir, parse, read, write};
use super::{install_for_bench, NATIVE_BENCH, WASM_BENCH};
use crate::stages::Stages;

/// The figures `--only` asks for; None without `--only` or for `--only datapath` or
/// `--only http`.
pub fn figures(args: &[String]) -> Option<&str> {
    let i = args.iter().position(|a| a == "--only")?;
    args.get(i + 1)
        .map(String::as_str)
        .filter(|ids| *ids != "datapath" && *ids != "http")
}

/// Runs the figures `ids` (comma-separated) natively, in wasmtime and in Chromium.
pub fn run_figures(root: &Path, ids: &str) -> Result<(), String> {
    let dir = root.join("target/bench/only");
    mkdir(&dir)?;
    let mut stages = Stages::new("bench: ");
    stages
        .run("install", || install_for_bench(root))
        .ok_or("cannot install what the benchmarks need")?;
    stages
        .run("certificates and inputs", || {
            run::inputs(&dir)?;
            for file in ["native-input.json", "wasm-input.json"] {
                let path = dir.join(file);
                let mut input = parse(&read(&path)?, &path)?;
                input["only"] = json!(ids.split(',').collect::<Vec<_>>());
                write(&path, &format!("{input}\n"))?;
            }
            Ok(())
        })
        .ok_or("cannot make the inputs")?;

    // The bins print their table.
    if stages
        .run("native: build", || run::build_native(root))
        .is_some()
    {
        stages.run("native: run", || {
            crate::run(
                Command::new(root.join(NATIVE_BENCH))
                    .arg("--input")
                    .arg(dir.join("native-input.json")),
            )
        });
    }
    if stages
        .run("wasm32-wasip2: build", || run::build_wasip2(root))
        .is_some()
    {
        stages.run("wasmtime: run", || {
            let input = fs::File::open(dir.join("wasm-input.json")).map_err(|e| e.to_string())?;
            crate::run(
                Command::new("wasmtime")
                    .arg("run")
                    .arg(root.join(WASM_BENCH))
                    .args(["--input", "-"])
                    .stdin(input),
            )
        });
    }
    let page = stages.run("wasm32-unknown-unknown: build the bench page", || {
        build_page(root, &dir, &SHIPPED, false)
    });
    if let Some(page) = page {
        stages.run("Chromium: run", || {
            let report = run::chromium(
                root,
                &[
                    "--web".into(),
                    page.join("web").into(),
                    "--input".into(),
                    dir.join("wasm-input.json").into(),
                ],
                &dir.join("chromium.json"),
            )?;
            print_figures(&report["bench"]);
            Ok(())
        });
    }
    eprintln!();
    stages.print_timings(55);
    let failures = stages.failures();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

/// Chromium's figures, one line each, without their rounds.
fn print_figures(report: &Value) {
    let figures = ["handshakes", "bulk", "primitives"]
        .iter()
        .filter_map(|list| report[list].as_array())
        .flatten()
        .chain(report.get("memory").filter(|m| !m.is_null()));
    println!("Chromium:");
    for figure in figures {
        let Some(fields) = figure.as_object() else {
            continue;
        };
        let shown: Vec<String> = fields
            .iter()
            .filter(|(k, _)| *k != "id" && !k.starts_with("rounds"))
            .map(|(k, v)| match v.as_f64() {
                Some(x) if v.is_f64() => format!("{k} {x:.1}"),
                _ => format!("{k} {v}"),
            })
            .collect();
        let id = figure["id"].as_str().unwrap_or("memory");
        println!("  {id}: {}", shown.join(", "));
    }
    for e in report["errors"].as_array().into_iter().flatten() {
        println!("  error: {}", e.as_str().unwrap_or("?"));
    }
}
