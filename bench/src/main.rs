//! The native and WASI host: `wasm-tls-bench [--input FILE|-] [--json] [--only ID,…]`.
//!
//! Without `--json` it prints a table; `cargo xtask bench` passes `--input` with RSA
//! keys and the sizes, and `--json`.

use std::io::Read;

fn main() {
    let mut input = wasm_tls_bench::Input::default();
    let mut json = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => json = true,
            "--input" => {
                let path = args
                    .next()
                    .unwrap_or_else(|| usage("--input needs a value"));
                let text = if path == "-" {
                    let mut s = String::new();
                    std::io::stdin()
                        .read_to_string(&mut s)
                        .unwrap_or_else(|e| usage(&format!("stdin: {e}")));
                    s
                } else {
                    std::fs::read_to_string(&path)
                        .unwrap_or_else(|e| usage(&format!("{path}: {e}")))
                };
                input =
                    serde_json::from_str(&text).unwrap_or_else(|e| usage(&format!("{path}: {e}")));
            }
            "--only" => {
                let list = args.next().unwrap_or_else(|| usage("--only needs a value"));
                input.only = list.split(',').map(str::to_owned).collect();
            }
            _ => usage(&format!("unknown argument {arg}")),
        }
    }
    let report = wasm_tls_bench::run(&input);
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => usage(&format!("output: {e}")),
        }
        return;
    }
    println!(
        "{} ({}), timer {}",
        report.host, report.target, report.timer
    );
    if input.rsa_keys_pem.is_empty() {
        println!("(RSA figures skipped: pass two PKCS#8 RSA keys in --input)");
    }
    if let Some(m) = &report.memory {
        println!(
            "memory: idle {} B, after 1 MiB each way {} B, {} open: {:.0} B each",
            m.idle_bytes, m.after_transfer_bytes, m.connections, m.many_bytes_per_connection
        );
    }
    for h in &report.handshakes {
        println!(
            "{:<24} client {:>9.1} µs  total {:>9.1} µs  ({})",
            h.id, h.client_us, h.total_us, h.negotiated
        );
    }
    for b in &report.bulk {
        println!(
            "{:<24} decrypt {:>8.1} MB/s  encrypt {:>8.1} MB/s",
            b.id, b.decrypt_mbps, b.encrypt_mbps
        );
    }
    for p in &report.primitives {
        println!("{:<24} {:>9.1} {}  ({})", p.id, p.value, p.unit, p.name);
    }
    for e in &report.errors {
        println!("error: {e}");
    }
    println!("{:.1} s", report.seconds);
}

fn usage(msg: &str) -> ! {
    eprintln!(
        "wasm-tls-bench: {msg}\nusage: wasm-tls-bench [--input FILE|-] [--json] [--only ID,...]"
    );
    std::process::exit(2)
}
