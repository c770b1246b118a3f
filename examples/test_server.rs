//! A small rustls TLS server for the end-to-end tests and benchmarks: HTTP/1.1 responses,
//! an SMTP-style STARTTLS upgrade, bulk downloads (`GET /bytes/N`) and an upload sink
//! (`POST /sink` reads its Content-Length and answers the count). Binds 127.0.0.1 only.
//!
//! ```text
//! cargo run --example test_server -- --cert server.pem --key server.key [--port 0]
//!     [--starttls] [--bulk BYTES] [--tls12]
//! ```
//! The first line on stdout is `listening on 127.0.0.1:PORT`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

struct Options {
    cert: String,
    key: String,
    port: u16,
    starttls: bool,
    bulk: usize,
    tls12: bool,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        cert: String::new(),
        key: String::new(),
        port: 0,
        starttls: false,
        bulk: 0,
        tls12: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut v = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--cert" => o.cert = v()?,
            "--key" => o.key = v()?,
            "--port" => o.port = v()?.parse().map_err(|_| "bad --port")?,
            "--bulk" => o.bulk = v()?.parse().map_err(|_| "bad --bulk")?,
            "--starttls" => o.starttls = true,
            "--tls12" => o.tls12 = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

fn config(o: &Options) -> Result<Arc<ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&o.cert)
        .map_err(|e| e.to_string())?
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let key = PrivateKeyDer::from_pem_file(&o.key).map_err(|e| e.to_string())?;
    let versions: &[&'static rustls::SupportedProtocolVersion] = if o.tls12 {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Reads an HTTP request head and answers it; closes with close_notify.
fn serve_http(
    mut tls: StreamOwned<ServerConnection, TcpStream>,
    bulk: usize,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if tls.read(&mut byte)? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
        if head.len() > 16 * 1024 {
            return Ok(());
        }
    }
    let request = String::from_utf8_lossy(&head);
    let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let version = match tls.conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
        _ => "TLSv1.2",
    };
    if request.starts_with("POST ") && path == "/sink" {
        return sink(tls, content_length(&request));
    }
    let size = path
        .strip_prefix("/bytes/")
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(bulk);
    if size > 0 {
        write!(
            tls,
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
        )?;
        let block = vec![b'x'; 64 * 1024];
        let mut left = size;
        while left > 0 {
            let n = left.min(block.len());
            tls.write_all(&block[..n])?;
            left -= n;
        }
    } else {
        let body = format!("hello from rustls over {version}, path {path}\n");
        write!(
            tls,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
    }
    tls.conn.send_close_notify();
    tls.flush()?;
    Ok(())
}

/// The Content-Length of a request head, or 0.
fn content_length(head: &str) -> usize {
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0)
}

/// Reads `want` bytes of request body (or up to EOF) and answers how many it got.
fn sink(mut tls: StreamOwned<ServerConnection, TcpStream>, want: usize) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0;
    while got < want {
        let n = tls.read(&mut buf[..(want - got).min(64 * 1024)])?;
        if n == 0 {
            break;
        }
        got += n;
    }
    let body = format!("{got}\n");
    write!(
        tls,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    tls.conn.send_close_notify();
    tls.flush()?;
    Ok(())
}

fn handle(
    stream: TcpStream,
    config: Arc<ServerConfig>,
    starttls: bool,
    bulk: usize,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let mut stream = stream;
    if starttls {
        stream.write_all(b"220 wasm-tls test server ESMTP\r\n")?;
        let mut reader = BufReader::new(stream.try_clone()?);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let cmd = line.trim_end().to_ascii_uppercase();
            if cmd == "STARTTLS" {
                stream.write_all(b"220 2.0.0 Ready to start TLS\r\n")?;
                break;
            } else if cmd.starts_with("EHLO") {
                stream.write_all(b"250-localhost\r\n250 STARTTLS\r\n")?;
            } else {
                stream.write_all(b"502 5.5.1 send STARTTLS first\r\n")?;
            }
        }
    }
    let conn = ServerConnection::new(config).map_err(std::io::Error::other)?;
    serve_http(StreamOwned::new(conn, stream), bulk)
}

fn main() {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("test_server: {e}");
            std::process::exit(2);
        }
    };
    let config = match config(&o) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("test_server: {e}");
            std::process::exit(2);
        }
    };
    let listener = TcpListener::bind(("127.0.0.1", o.port)).expect("bind 127.0.0.1");
    println!(
        "listening on {}",
        listener.local_addr().expect("local address")
    );
    let _ = std::io::stdout().flush();
    for stream in listener.incoming().flatten() {
        let config = config.clone();
        let (starttls, bulk) = (o.starttls, o.bulk);
        std::thread::spawn(move || {
            let _ = handle(stream, config, starttls, bulk);
        });
    }
}
