//! docs/benchmarks.md from a run's results: the figures and tables here, the prose in
//! benchmarks.md.in, a template of named parts with `{{name}}` placeholders.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use super::machine::{load_average, locked_version, machine, version, BUSY, BUSY_CHROMIUM};
use super::{levers, sections, Results, BUILD_DIR, NATIVE_ROUNDS, WASM_BENCH, WASM_ROUNDS};
use crate::stages::Stages;

/// The goal for the client's full TLS 1.3 ECDSA handshake in Chromium, as a multiple of
/// native rustls (post-quantum key exchange off, as in §1's rows).
const HANDSHAKE_TARGET: f64 = 3.0;

/// The report's prose.
const PROSE: &str = include_str!("benchmarks.md.in");

/// The parts of a template: each from its marker line, `<!-- part: NAME -->` (or
/// `<!-- part: NAME clause -->` for a part used inside a sentence, without its line
/// break), to the next.
pub struct Template {
    parts: Vec<(String, String)>,
}

impl Template {
    pub fn parse(text: &str) -> Template {
        let mut parts: Vec<(String, String)> = Vec::new();
        let mut clause = false;
        for line in text.split_inclusive('\n') {
            let marker = line
                .trim_end()
                .strip_prefix("<!-- part: ")
                .and_then(|m| m.strip_suffix(" -->"));
            if let Some(marker) = marker {
                if clause {
                    trim_line_break(parts.last_mut());
                }
                let name = marker.trim_end_matches(" clause");
                clause = name.len() != marker.len();
                parts.push((name.to_owned(), String::new()));
            } else if let Some((_, text)) = parts.last_mut() {
                text.push_str(line);
            }
        }
        if clause {
            trim_line_break(parts.last_mut());
        }
        Template { parts }
    }

    /// Part `name` with each `{{key}}` replaced by its value. A part that is missing
    /// shows as such in the document (the tests render every part).
    pub fn fill(&self, name: &str, values: &[(&str, String)]) -> String {
        let Some((_, text)) = self.parts.iter().find(|(n, _)| n == name) else {
            return format!("(missing template part {name})\n");
        };
        let mut out = text.clone();
        for (key, value) in values {
            out = out.replace(&format!("{{{{{key}}}}}"), value);
        }
        out
    }
}

fn trim_line_break(part: Option<&mut (String, String)>) {
    if let Some((_, text)) = part {
        if text.ends_with('\n') {
            text.pop();
        }
    }
}

/// The element of an array of objects whose "id" is `id`, else null.
pub trait ById {
    fn by_id(&self, id: &str) -> &Value;
}

impl ById for Value {
    fn by_id(&self, id: &str) -> &Value {
        self.as_array()
            .and_then(|a| a.iter().find(|v| v["id"].as_str() == Some(id)))
            .unwrap_or(&Value::Null)
    }
}

pub fn f0(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{v:.0}"))
}

pub fn f1(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| {
        if v >= 100.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.1}")
        }
    })
}

pub fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

pub fn times(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{v:.1}×"))
}

pub fn kb(bytes: u64) -> String {
    format!("{:.1} KB", bytes as f64 / 1000.0)
}

/// The whole report (but the data path's section, which `datapath` keeps).
pub fn render(
    root: &Path,
    r: &Results,
    stages: &Stages,
    total: f64,
    load_before: &str,
    with_levers: bool,
) -> String {
    let t = Template::parse(PROSE);
    let json =
        |x: &Option<(Value, Option<f64>)>| x.as_ref().map_or(Value::Null, |(j, _)| j.clone());
    let busy = |x: &Option<(Value, Option<f64>)>| {
        x.as_ref()
            .and_then(|(_, b)| *b)
            .map_or("?".to_owned(), |b| format!("{b:.2}"))
    };
    let nat = json(&r.native);
    let wt = json(&r.wasmtime);
    let chr_all = json(&r.chromium);
    let chr = &chr_all["bench"];
    let e2e = &chr_all["e2e"];
    let hosts = [&nat, &wt, chr];
    let (cpu, mem, os) = machine();
    let chromium_version = chr_all["chromium"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| version("chromium", &["--version"]));
    let wasm_opt = root.join("xtask/npm/node_modules/.bin/wasm-opt");

    let mut d = t.fill(
        "header",
        values! {
            total: format!("{total:.0}"),
            date: version("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            nproc: version("nproc", &[]),
            cpu: cpu,
            mem: mem,
            os: os,
            load_before: load_before,
            load_after: load_average(),
            busy_limit: BUSY,
            busy_native: busy(&r.native),
            busy_wasmtime: busy(&r.wasmtime),
            busy_chromium: busy(&r.chromium),
            busy_levers: if with_levers {
                t.fill("busy-levers", values! { busy: busy(&r.levers_run) })
            } else {
                String::new()
            },
            busy_limit_chromium: BUSY_CHROMIUM,
            rustls: locked_version(root, "rustls"),
            ring: locked_version(root, "ring"),
            webpki: locked_version(root, "rustls-webpki"),
            rcgen: locked_version(root, "rcgen"),
            rustc: version("rustc", &["-V"]),
            clang: version("clang", &["--version"]),
            wasmtime: version("wasmtime", &["--version"]).trim_start_matches("wasmtime "),
            node: version("node", &["--version"]),
            chromium: chromium_version,
            wasm_bindgen: version("wasm-bindgen", &["--version"]),
            wasm_opt: version(&wasm_opt.to_string_lossy(), &["--version"])
                .trim_start_matches("wasm-opt "),
            openssl: version("openssl", &["version"]),
            timer_us: f1(chr["timer_resolution_us"].as_f64()),
        },
    );
    d.push_str(&summary(&t, r, hosts, e2e, with_levers));
    d.push_str(&handshakes(&t, hosts));
    d.push_str(&sections::bulk(&t, hosts));
    d.push_str(&sections::memory(&t, hosts));
    d.push_str(&sections::size(&t, r));
    d.push_str(&sections::end_to_end(&t, r, chr, e2e));
    d.push_str(&levers::section(&t, r, with_levers));
    d.push_str(&t.fill(
        "method",
        values! { build_dir: BUILD_DIR, wasm_bench: WASM_BENCH },
    ));
    d.push_str(&this_run(&t, stages, total, hosts));
    d
}

fn summary(
    t: &Template,
    r: &Results,
    hosts: [&Value; 3],
    e2e: &Value,
    with_levers: bool,
) -> String {
    let [nat, wt, chr] = hosts;
    let hs = |h: &Value, id: &str, k: &str| h["handshakes"].by_id(id)[k].as_f64();
    let bk = |h: &Value, id: &str, k: &str| h["bulk"].by_id(id)[k].as_f64();
    let (cn, cw, cc) = (
        hs(nat, "tls13-ecdsa-full", "client_us"),
        hs(wt, "tls13-ecdsa-full", "client_us"),
        hs(chr, "tls13-ecdsa-full", "client_us"),
    );
    let verify = chr["primitives"].by_id("p256-verify")["value"].as_f64();
    let verdict = match (cn, cc, verify) {
        (Some(n), Some(c), _) if c <= HANDSHAKE_TARGET * n => t.fill("verdict-met", &[]),
        (Some(n), Some(_), Some(v)) if v > HANDSHAKE_TARGET * n => t.fill(
            "verdict-out-of-reach",
            values! { verifies: format!("{v:.0}") },
        ),
        _ => t.fill("verdict-not-met", &[]),
    };
    let (rn, rc) = (
        hs(nat, "tls13-ecdsa-resumed", "client_us"),
        hs(chr, "tls13-ecdsa-resumed", "client_us"),
    );
    let slower = |id: &str, k: &str| times(ratio(bk(nat, id, k), bk(chr, id, k)));
    let m = &chr["memory"];
    let mut more = String::new();
    if let Some(p) = &r.package {
        more.push_str(&t.fill(
            "summary-size",
            values! {
                own_ca: kb(p.wasm_gz + p.js_gz),
                with_roots: kb(p.wasm_gz + p.js_gz + p.roots_gz),
            },
        ));
    }
    if let Some(mbps) = e2e["download"]["medianMbps"].as_f64() {
        more.push_str(&t.fill(
            "summary-e2e",
            values! {
                full_ms: f1(e2e["full"]["medianMs"].as_f64()),
                mbps: format!("{mbps:.0}"),
            },
        ));
    }
    if with_levers {
        more.push_str(&t.fill("summary-levers", &[]));
    }
    t.fill(
        "summary",
        values! {
            native: f0(cn),
            wasmtime: f0(cw),
            chromium: f0(cc),
            chromium_ratio: times(ratio(cc, cn)),
            wasmtime_ratio: times(ratio(cw, cn)),
            verdict: verdict,
            resumed_native: f0(rn),
            resumed_chromium: f0(rc),
            resumed_ratio: times(ratio(rc, rn)),
            chacha_decrypt: f0(bk(chr, "bulk-chacha20", "decrypt_mbps")),
            chacha_encrypt: f0(bk(chr, "bulk-chacha20", "encrypt_mbps")),
            chacha_decrypt_ratio: slower("bulk-chacha20", "decrypt_mbps"),
            chacha_encrypt_ratio: slower("bulk-chacha20", "encrypt_mbps"),
            aes_decrypt: f0(bk(chr, "bulk-aes128gcm", "decrypt_mbps")),
            aes_encrypt: f0(bk(chr, "bulk-aes128gcm", "encrypt_mbps")),
            aes_decrypt_ratio: slower("bulk-aes128gcm", "decrypt_mbps"),
            aes_encrypt_ratio: slower("bulk-aes128gcm", "encrypt_mbps"),
            idle_kib: f1(m["idle_bytes"].as_f64().map(|v| v / 1024.0)),
            many_mib: f1(m["many_linear_memory_growth"].as_f64().map(|v| v / 1048576.0)),
            more: more,
        },
    )
}

/// §1: the handshakes, the target and what bounds it, and ring's primitives.
fn handshakes(t: &Template, hosts: [&Value; 3]) -> String {
    let [nat, wt, chr] = hosts;
    let mut rows = String::new();
    for id in [
        "tls13-ecdsa-full",
        "tls13-ecdsa-resumed",
        "tls13-ecdsa-first-full",
        "tls13-ecdsa-pq-full",
        "tls13-ecdsa-pq-resumed",
        "tls13-rsa-full",
        "tls13-rsa-resumed",
        "tls12-ecdsa-full",
        "tls12-ecdsa-resumed",
    ] {
        let figs: Vec<&Value> = hosts.iter().map(|h| h["handshakes"].by_id(id)).collect();
        let c = |i: usize| figs[i]["client_us"].as_f64();
        let total = |i: usize| figs[i]["total_us"].as_f64();
        let name = figs.iter().find_map(|f| f["name"].as_str()).unwrap_or(id);
        let kind = match (id.ends_with("resumed"), id.starts_with("tls12")) {
            (false, _) => t.fill("kind-full", &[]),
            (true, true) => t.fill("kind-resumed-tls12", &[]),
            // The PSK's key exchange is the scenario's group.
            (true, false) if id.contains("-pq-") => t
                .fill("kind-resumed-tls13", &[])
                .replace("X25519", "X25519MLKEM768"),
            (true, false) => t.fill("kind-resumed-tls13", &[]),
        };
        let cell = |i: usize| format!("{} ({})", f0(c(i)), f0(total(i)));
        let rat = |i: usize| {
            format!(
                "{} ({})",
                times(ratio(c(i), c(0))),
                times(ratio(total(i), total(0)))
            )
        };
        let _ = writeln!(
            rows,
            "| {name}, {kind} | `{id}` | {} | {} | {} | {} | {} | {} |",
            cell(0),
            cell(1),
            cell(2),
            rat(1),
            rat(2),
            figs[2]["negotiated"].as_str().unwrap_or("—")
        );
    }
    let mut d = t.fill(
        "handshakes",
        values! { native_rounds: NATIVE_ROUNDS, wasm_rounds: WASM_ROUNDS, rows: rows },
    );

    // The target and what bounds it.
    let p256 = |h: &Value| h["primitives"].by_id("p256-verify")["value"].as_f64();
    let x25519 = |h: &Value| h["primitives"].by_id("x25519")["value"].as_f64();
    let client = |h: &Value, id: &str| h["handshakes"].by_id(id)["client_us"].as_f64();
    if let (Some(cn), Some(cc)) = (
        client(nat, "tls13-ecdsa-full"),
        client(chr, "tls13-ecdsa-full"),
    ) {
        let r_c = cc / cn;
        let bounds = match (p256(chr), x25519(chr), p256(nat)) {
            (Some(pc), Some(xc), Some(pn)) => {
                let resumed = client(chr, "tls13-ecdsa-resumed")
                    .zip(client(nat, "tls13-ecdsa-resumed"))
                    .map_or(String::new(), |(c, n)| {
                        t.fill(
                            "handshake-bounds-resumed",
                            values! { chromium: format!("{c:.0}"), ratio: format!("{:.1}", c / n) },
                        )
                    });
                t.fill(
                    "handshake-bounds",
                    values! {
                        p256: format!("{pc:.0}"),
                        p256_native: format!("{pn:.0}"),
                        p256_ratio: format!("{:.1}", pc / pn),
                        x25519: format!("{xc:.0}"),
                        share: format!("{:.0}", (pc + xc) / cc * 100.0),
                        floor: format!("{:.1}", pc / cn),
                        resumed: resumed,
                    },
                )
            }
            _ => String::new(),
        };
        let wasmtime = client(wt, "tls13-ecdsa-full").map_or(String::new(), |w| {
            t.fill(
                "target-wasmtime",
                values! { ratio: format!("{:.1}", w / cn) },
            )
        });
        d.push_str(&t.fill(
            "handshake-target",
            values! {
                verdict: t.fill(
                    if r_c <= HANDSHAKE_TARGET {
                        "target-met"
                    } else {
                        "target-not-met"
                    },
                    &[],
                ),
                native: format!("{cn:.0}"),
                chromium: format!("{cc:.0}"),
                ratio: format!("{r_c:.1}"),
                wasmtime: wasmtime,
                bounds: bounds,
            },
        ));
    }

    let mut rows = String::new();
    for id in [
        "p256-verify",
        "p256-verify-rustcrypto-0.13",
        "p256-verify-rustcrypto-0.14",
        "x25519",
        "x25519mlkem768",
        "rsa2048-verify",
        "aead-aes128gcm",
        "aead-aes256gcm",
        "aead-chacha20",
    ] {
        let figs: Vec<&Value> = hosts.iter().map(|h| h["primitives"].by_id(id)).collect();
        let v = |i: usize| figs[i]["value"].as_f64();
        let name = figs.iter().find_map(|f| f["name"].as_str()).unwrap_or(id);
        let unit = figs.iter().find_map(|f| f["unit"].as_str()).unwrap_or("");
        // How many times slower than native.
        let slow = |i: usize| {
            if unit == "MB/s" {
                ratio(v(0), v(i))
            } else {
                ratio(v(i), v(0))
            }
        };
        let _ = writeln!(
            rows,
            "| {name} ({unit}) | `{id}` | {} | {} | {} | {} | {} |",
            f1(v(0)),
            f1(v(1)),
            f1(v(2)),
            times(slow(1)),
            times(slow(2))
        );
    }
    d.push_str(&t.fill(
        "primitives",
        values! { native_rounds: NATIVE_ROUNDS, wasm_rounds: WASM_ROUNDS, rows: rows },
    ));
    d
}

/// The stages' table and the figures the hosts could not measure.
fn this_run(t: &Template, stages: &Stages, total: f64, hosts: [&Value; 3]) -> String {
    let mut rows = String::new();
    for s in &stages.done {
        let _ = writeln!(
            rows,
            "| {} | {:.1} | {} |",
            s.name,
            s.seconds,
            match &s.result {
                Ok(()) => "ok".to_owned(),
                Err(e) => format!("failed: {}", e.replace('|', "\\|")),
            }
        );
    }
    let mut d = t.fill(
        "this-run",
        values! { rows: rows, total: format!("{total:.1}") },
    );
    let mut errors = String::new();
    for (host, h) in ["native", "wasmtime", "Chromium"].into_iter().zip(hosts) {
        for e in h["errors"].as_array().map_or(&[][..], Vec::as_slice) {
            let _ = writeln!(errors, "- {host}: {}", e.as_str().unwrap_or("?"));
        }
    }
    if !errors.is_empty() {
        d.push_str(&t.fill("errors", values! { lines: errors }));
    }
    d
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn clauses_lose_their_line_break_and_parts_keep_theirs() {
        let t = Template::parse(
            "comment\n<!-- part: a -->\nA {{x}}\n\n<!-- part: b clause -->\nB {{y}}\n<!-- part: c -->\nC\n",
        );
        assert_eq!(t.fill("a", values! { x: 1 }), "A 1\n\n");
        assert_eq!(t.fill("b", values! { y: "z" }), "B z");
        assert_eq!(t.fill("c", &[]), "C\n");
        assert!(t.fill("d", &[]).contains("missing template part d"));
    }

    /// Every part the report uses exists and every placeholder is filled, with figures
    /// and without.
    #[test]
    fn the_report_fills_every_placeholder() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut stages = Stages::new("");
        stages.run("a stage", || Err::<(), _>("it | broke".to_owned()));
        let host = json!({
            "handshakes": [
                {"id": "tls13-ecdsa-full", "client_us": 900.0, "total_us": 1200.0},
                {"id": "tls13-ecdsa-resumed", "client_us": 170.0, "total_us": 350.0},
            ],
            "primitives": [
                {"id": "p256-verify", "value": 400.0, "unit": "µs"},
                {"id": "x25519", "value": 100.0, "unit": "µs"},
                {"id": "aead-aes128gcm", "value": 80.0, "unit": "MB/s"},
                {"id": "aead-chacha20", "value": 500.0, "unit": "MB/s"},
            ],
            "bulk": [
                {"id": "bulk-aes128gcm", "decrypt_mbps": 80.0, "encrypt_mbps": 79.0},
                {"id": "bulk-chacha20", "decrypt_mbps": 490.0, "encrypt_mbps": 500.0},
            ],
            "memory": {"idle_bytes": 6000.0, "after_transfer_bytes": 35000.0},
            "errors": ["x25519: failed"],
        });
        let with_figures = Results {
            native: Some((host.clone(), Some(0.1))),
            wasmtime: Some((host.clone(), None)),
            chromium: Some((
                json!({"chromium": "1.0", "bench": host, "e2e": {"download": {"medianMbps": 60.0}}}),
                Some(0.5),
            )),
            wisp: Some(json!({"open20": {"wispMs": 100.0}})),
            wasi: vec![("target/wasi/a.wasm".into(), 1000, 500)],
            ..Results::default()
        };
        let without = Results {
            chromium: Some((json!({"chromium": "1.0"}), None)),
            ..Results::default()
        };
        for r in [&with_figures, &without] {
            for with_levers in [true, false] {
                let doc = render(&root, r, &stages, 1.0, "0 0 0", with_levers);
                assert!(!doc.contains("{{"), "{doc}");
                assert!(!doc.contains("missing template part"), "{doc}");
                assert!(doc.starts_with("# Benchmarks\n\n"));
                assert!(doc.contains("\n## Method\n"));
                assert!(doc.contains("| a stage | "));
            }
        }
    }
}
