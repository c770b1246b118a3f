//! The report's sections on bulk throughput (§2), memory (§3), size (§4) and the end
//! to end figures in Chromium (§5, §5b); the prose is in benchmarks.md.in.

use std::fmt::Write as _;

use serde_json::Value;

use super::render::{f0, f1, kb, ratio, times, ById, Template};
use super::{Results, NATIVE_BULK, WASM_BULK};

fn bulk_of(h: &Value, id: &str, key: &str) -> Option<f64> {
    h["bulk"].by_id(id)[key].as_f64()
}

fn aead_of(h: &Value, id: &str) -> Option<f64> {
    h["primitives"].by_id(id)["value"].as_f64()
}

/// §2: bulk throughput through the API, and what bounds it.
pub fn bulk(t: &Template, hosts: [&Value; 3]) -> String {
    let [nat, _, chr] = hosts;
    let mut rows = String::new();
    for id in ["bulk-aes128gcm", "bulk-aes256gcm", "bulk-chacha20"] {
        let figs: Vec<&Value> = hosts.iter().map(|h| h["bulk"].by_id(id)).collect();
        let suite = figs.iter().find_map(|f| f["suite"].as_str()).unwrap_or(id);
        for (dir, key) in [("decrypt", "decrypt_mbps"), ("encrypt", "encrypt_mbps")] {
            let v = |i: usize| figs[i][key].as_f64();
            let _ = writeln!(
                rows,
                "| {suite} | {dir} | `{id}` | {} | {} | {} | {} | {} |",
                f0(v(0)),
                f1(v(1)),
                f1(v(2)),
                times(ratio(v(0), v(1))),
                times(ratio(v(0), v(2)))
            );
        }
    }
    let mut bound = Vec::new();
    for (bulk_id, aead_id, name) in [
        ("bulk-aes128gcm", "aead-aes128gcm", "AES-128-GCM"),
        ("bulk-chacha20", "aead-chacha20", "ChaCha20-Poly1305"),
    ] {
        if let (Some(api), Some(aead)) =
            (bulk_of(chr, bulk_id, "encrypt_mbps"), aead_of(chr, aead_id))
        {
            bound.push(t.fill(
                "bulk-bound",
                values! {
                    name: name,
                    aead: format!("{aead:.0}"),
                    api: format!("{api:.0}"),
                    share: format!("{:.0}", (api / aead * 100.0).min(100.0)),
                },
            ));
        }
    }
    let native_copy = match (
        bulk_of(nat, "bulk-aes128gcm", "decrypt_mbps"),
        aead_of(nat, "aead-aes128gcm"),
    ) {
        (Some(api), Some(aead)) => t.fill(
            "bulk-native",
            values! { aead: format!("{aead:.0}"), api: format!("{api:.0}") },
        ),
        _ => String::new(),
    };
    t.fill(
        "bulk",
        values! {
            native_mib: NATIVE_BULK >> 20,
            wasm_mib: WASM_BULK >> 20,
            rows: rows,
            bound: if bound.is_empty() {
                t.fill("bulk-bound-missing", &[])
            } else {
                bound.join("; ")
            },
            native_copy: native_copy,
        },
    )
}

/// §3: what a connection holds, and the target.
pub fn memory(t: &Template, hosts: [&Value; 3]) -> String {
    let mem = |h: &Value, k: &str| h["memory"][k].as_f64();
    let cells = |f: &dyn Fn(&Value) -> Option<f64>| {
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
        cells.join(" | ")
    };
    let per_connection =
        |h: &Value| ratio(mem(h, "many_linear_memory_growth"), mem(h, "connections"));
    let mut d = t.fill(
        "memory",
        values! {
            idle: cells(&|h| mem(h, "idle_bytes")),
            after_transfer: cells(&|h| mem(h, "after_transfer_bytes")),
            many_heap: cells(&|h| mem(h, "many_bytes_per_connection")),
            many_linear: cells(&per_connection),
            many_linear_all: cells(&|h| mem(h, "many_linear_memory_growth")),
        },
    );
    let worst_idle = hosts
        .iter()
        .filter_map(|h| {
            [
                mem(h, "idle_bytes"),
                mem(h, "many_bytes_per_connection"),
                per_connection(h),
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
        d.push_str(&t.fill(
            "memory-target",
            values! {
                verdict: if w < 65536.0 { "met" } else { "not met" },
                worst: format!("{:.1}", w / 1024.0),
                busy: worst_busy.map_or(String::new(), |b| {
                    t.fill("memory-busy", values! { kib: format!("{:.1}", b / 1024.0) })
                }),
            },
        ));
    }
    d
}

/// §4: the npm package and the WASI components.
pub fn size(t: &Template, r: &Results) -> String {
    let rows = match &r.package {
        Some(s) => t.fill(
            "size-package",
            values! {
                wasm: kb(s.wasm),
                wasm_gz: kb(s.wasm_gz),
                js: kb(s.js),
                js_gz: kb(s.js_gz),
                roots: kb(s.roots),
                roots_gz: kb(s.roots_gz),
                page: kb(s.wasm + s.js),
                page_gz: kb(s.wasm_gz + s.js_gz),
                page_roots: kb(s.wasm + s.js + s.roots),
                page_roots_gz: kb(s.wasm_gz + s.js_gz + s.roots_gz),
            },
        ),
        None => t.fill("size-no-package", &[]),
    };
    let mut d = t.fill("size", values! { rows: rows });
    if r.wasi.is_empty() {
        d.push_str(&t.fill("size-no-wasi", &[]));
    } else {
        let mut rows = String::new();
        for (name, len, gz) in &r.wasi {
            let _ = writeln!(rows, "| `{name}` | {} | {} |", kb(*len), kb(*gz));
        }
        d.push_str(&t.fill("size-wasi", values! { rows: rows }));
    }
    d
}

/// §5 and §5b: the package in Chromium through the relay, and Wisp.
pub fn end_to_end(t: &Template, r: &Results, chr: &Value, e2e: &Value) -> String {
    let mut d = t.fill("e2e", &[]);
    if let Some(err) = e2e["error"]["message"].as_str() {
        d.push_str(&t.fill("e2e-error", values! { error: err }));
    } else if let Some(mbps) = e2e["download"]["medianMbps"].as_f64() {
        let full = &e2e["full"];
        let res = &e2e["resumed"];
        let dl = &e2e["download"];
        let count = |v: &Value| v.as_array().map_or(0, Vec::len);
        d.push_str(&t.fill(
            "e2e-figures",
            values! {
                init_ms: f1(e2e["initMs"].as_f64()),
                first_ms: f1(e2e["first"].as_f64()),
                full_n: count(&full["timesMs"]),
                full_ms: f1(full["medianMs"].as_f64()),
                resumed_n: count(&res["timesMs"]),
                resumed: res["resumed"].as_f64().map_or("?".into(), |c| format!("{c:.0}")),
                resumed_ms: f1(res["medianMs"].as_f64()),
                download_mib: dl["bytes"].as_f64().unwrap_or(0.0) / 1048576.0,
                download_n: count(&dl["rounds"]),
                protocol: dl["protocol"].as_str().unwrap_or("?"),
                suite: dl["cipherSuite"].as_str().unwrap_or("?"),
                download_mbps: f1(Some(mbps)),
            },
        ));
        if let Some(c) = bulk_of(chr, "bulk-chacha20", "decrypt_mbps") {
            d.push_str(&t.fill(
                "e2e-bound",
                values! {
                    share: format!("{:.0}", mbps / c * 100.0),
                    in_memory: format!("{c:.0}"),
                },
            ));
        }
    } else {
        d.push_str(&t.fill("not-measured", &[]));
    }

    d.push_str(&t.fill("wisp-title", &[]));
    let Some(w) = &r.wisp else {
        d.push_str(&t.fill("not-measured", &[]));
        return d;
    };
    let open20 = &w["open20"];
    let met = open20["wispMs"].as_f64().is_some_and(|ms| ms <= 150.0);
    d.push_str(&t.fill(
        "wisp",
        values! {
            chromium: w["chromium"].as_str().unwrap_or("?"),
            relay_build: w["relayBuild"].as_str().unwrap_or("?"),
            runs: f1(w["runs"].as_f64()),
            open20_raw: f1(open20["rawMs"].as_f64()),
            open20_wisp: f1(open20["wispMs"].as_f64()),
            get_raw: f1(open20["withGetRawMs"].as_f64()),
            get_wisp: f1(open20["withGetWispMs"].as_f64()),
            open200_wisp: f1(w["open200"]["wispMs"].as_f64()),
            bulk_raw: f1(w["bulk64MiB"]["rawMBps"].as_f64()),
            bulk_wisp: f1(w["bulk64MiB"]["wispMBps"].as_f64()),
            small_get_wisp: f1(w["smallGetBesideBulkWisp"]["medianMs"].as_f64()),
            verdict: t.fill(if met { "wisp-met" } else { "wisp-not-met" }, &[]),
        },
    ));
    d
}
