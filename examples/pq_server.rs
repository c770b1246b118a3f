//! A TLS 1.3 server that speaks X25519MLKEM768, for the post-quantum tests in the
//! browser: rustls on aws-lc-rs (an implementation of ML-KEM other than the client's).
//! Each connection gets one response whose body says what the handshake was:
//! `group: X25519MLKEM768, handshake: Full` (or `FullWithHelloRetryRequest`). Binds
//! 127.0.0.1 only.
//!
//! ```text
//! cargo run --example pq_server -- --cert server.pem --key server.key [--port 0] [--classical]
//! ```
//! `--classical` offers X25519, P-256 and P-384 only, as a server without ML-KEM does.
//! The first line on stdout is `listening on 127.0.0.1:PORT`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::aws_lc_rs;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection};

struct Options {
    cert: String,
    key: String,
    port: u16,
    classical: bool,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        cert: String::new(),
        key: String::new(),
        port: 0,
        classical: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut v = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--cert" => o.cert = v()?,
            "--key" => o.key = v()?,
            "--port" => o.port = v()?.parse().map_err(|_| "bad --port")?,
            "--classical" => o.classical = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if o.cert.is_empty() || o.key.is_empty() {
        return Err("--cert and --key are required".into());
    }
    Ok(o)
}

fn config(o: &Options) -> Result<Arc<ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&o.cert)
        .map_err(|e| e.to_string())?
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let key = PrivateKeyDer::from_pem_file(&o.key).map_err(|e| e.to_string())?;
    let mut provider = aws_lc_rs::default_provider();
    provider.kx_groups = vec![
        aws_lc_rs::kx_group::X25519,
        aws_lc_rs::kx_group::SECP256R1,
        aws_lc_rs::kx_group::SECP384R1,
    ];
    if !o.classical {
        provider
            .kx_groups
            .insert(0, aws_lc_rs::kx_group::X25519MLKEM768);
    }
    let config = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(config))
}

/// One connection: the handshake, the request's head, the response, close_notify.
fn serve(mut sock: TcpStream, config: Arc<ServerConfig>) -> Result<(), String> {
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let mut conn = ServerConnection::new(config).map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).map_err(|e| e.to_string())?;
    }
    let group = conn
        .negotiated_key_exchange_group()
        .map(|g| format!("{:?}", g.name()))
        .unwrap_or_default();
    let kind = conn
        .handshake_kind()
        .map(|k| format!("{k:?}"))
        .unwrap_or_default();
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    let mut head = Vec::new();
    let mut buf = [0; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match tls.read(&mut buf).map_err(|e| e.to_string())? {
            0 => return Ok(()),
            n => head.extend_from_slice(&buf[..n]),
        }
    }
    let body = format!("group: {group}, handshake: {kind}\n");
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(response.as_bytes())
        .map_err(|e| e.to_string())?;
    conn.send_close_notify();
    conn.complete_io(&mut sock).map_err(|e| e.to_string())?;
    Ok(())
}

fn main() {
    let options = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("pq_server: {e}");
            std::process::exit(2);
        }
    };
    let config = match config(&options) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pq_server: {e}");
            std::process::exit(1);
        }
    };
    let listener = match TcpListener::bind(("127.0.0.1", options.port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("pq_server: cannot listen: {e}");
            std::process::exit(1);
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    println!("listening on 127.0.0.1:{port}");
    let _ = std::io::stdout().flush();
    for sock in listener.incoming().flatten() {
        let config = config.clone();
        std::thread::spawn(move || {
            if let Err(e) = serve(sock, config) {
                eprintln!("pq_server: {e}");
            }
        });
    }
}
