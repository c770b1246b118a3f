//! Writes Mozilla's roots (webpki-roots) as a trust-anchor bundle, the browser package's
//! `roots.bin`: `cargo run --example export_roots -- pkg/roots.bin`.

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: export_roots OUTPUT");
        std::process::exit(2);
    };
    let bundle = wasm_tls::bundled_trust_anchors();
    if let Err(err) = std::fs::write(&path, &bundle) {
        eprintln!("export_roots: cannot write {path}: {err}");
        std::process::exit(1);
    }
    eprintln!("wrote {} bytes of trust anchors to {path}", bundle.len());
}
