//! A small static file server for the demo page and the browser tests: GET only, files
//! under www/ and pkg/, plus named extra files.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::thread;

/// Serves `root`'s www/ and pkg/ (and `extra` URL paths mapped to files) on `listener`,
/// on a thread of its own.
pub fn spawn(listener: TcpListener, root: PathBuf, extra: Vec<(String, PathBuf)>) {
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let root = root.clone();
            let extra = extra.clone();
            thread::spawn(move || {
                let _ = handle(stream, &root, &extra);
            });
        }
    });
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("json") => "application/json",
        Some("pem") => "application/x-pem-file",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

fn handle(stream: TcpStream, root: &Path, extra: &[(String, PathBuf)]) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" || header == "\n" {
            break;
        }
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("/");
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let mut out = stream;
    if method != "GET" && method != "HEAD" {
        return respond(
            &mut out,
            "405 Method Not Allowed",
            "text/plain",
            b"GET only\n",
            method,
        );
    }
    if path == "/" {
        let body = b"see /www/index.html\n";
        write!(
            out,
            "HTTP/1.1 302 Found\r\nLocation: /www/index.html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )?;
        return out.write_all(body);
    }
    let file = if let Some((_, file)) = extra.iter().find(|(url, _)| url == path) {
        Some(file.clone())
    } else if (path.starts_with("/www/") || path.starts_with("/pkg/"))
        && !path
            .split('/')
            .any(|seg| seg == ".." || seg.starts_with('.'))
    {
        Some(root.join(&path[1..]))
    } else {
        None
    };
    match file.and_then(|f| std::fs::read(&f).ok().map(|body| (f, body))) {
        Some((f, body)) => respond(&mut out, "200 OK", content_type(&f), &body, method),
        None => respond(
            &mut out,
            "404 Not Found",
            "text/plain",
            b"not found\n",
            method,
        ),
    }
}

fn respond(
    out: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
    method: &str,
) -> std::io::Result<()> {
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if method != "HEAD" {
        out.write_all(body)?;
    }
    out.flush()
}
