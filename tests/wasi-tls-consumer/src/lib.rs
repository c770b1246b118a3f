//! A program that knows only the standard: it opens a TCP connection with
//! `wasi:sockets` (0.3), runs `wasi:tls` (0.3.0-draft) over it, sends an HTTP/1.0 GET and
//! prints the response. Nothing here names wasm-tls: the host (`wasmtime -S tls`) or a
//! component plugged in with `wac plug` provides `wasi:tls`.
//!
//! Arguments: `<ipv4>:<port> <server-name> [path]`. Exit status 1, with the error's
//! `to-debug-string` on stderr, when the connection fails. With `TIMING` in the
//! environment it also prints, on stderr, how long `connect` (the handshake) and the
//! response took, for the figures in docs/benchmarks.md. With `HALF_CLOSE` it ends its
//! side (close_notify) right after the request, before reading the response.

use std::io::Write;
use std::net::SocketAddrV4;
use std::time::Instant;

use bindings::exports::wasi::cli::run::Guest;
use bindings::wasi::sockets::types::{
    IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, TcpSocket,
};
use bindings::wasi::tls::client::Connector;
use bindings::wit_stream;

#[allow(missing_docs, unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        inline: "
            package wasi-tls-test:consumer;

            world consumer {
                import wasi:sockets/types@0.3.0;
                import wasi:tls/client@0.3.0-draft;
                export wasi:cli/run@0.3.0;
            }
        ",
        path: "../../wit",
        generate_all,
    });
}

struct Consumer;

impl Guest for Consumer {
    async fn run() -> Result<(), ()> {
        let args: Vec<String> = std::env::args().collect();
        let (Some(target), Some(server_name)) = (args.get(1), args.get(2)) else {
            eprintln!("usage: wasi-tls-consumer <ipv4>:<port> <server-name> [path]");
            return Err(());
        };
        let path = args.get(3).map_or("/", String::as_str);
        match fetch(target, server_name, path).await {
            Ok(response) => {
                let mut stdout = std::io::stdout();
                stdout
                    .write_all(&response)
                    .and_then(|()| stdout.flush())
                    .map_err(|err| eprintln!("error: stdout: {err}"))
            }
            Err(message) => {
                eprintln!("error: {message}");
                Err(())
            }
        }
    }
}

/// Connects, runs TLS over the socket's streams, and returns the whole response.
async fn fetch(target: &str, server_name: &str, path: &str) -> Result<Vec<u8>, String> {
    let target: SocketAddrV4 = target
        .parse()
        .map_err(|err| format!("bad address {target}: {err}"))?;
    let [a, b, c, d] = target.ip().octets();
    let socket = TcpSocket::create(IpAddressFamily::Ipv4).map_err(|e| format!("tcp: {e:?}"))?;
    socket
        .connect(IpSocketAddress::Ipv4(Ipv4SocketAddress {
            port: target.port(),
            address: (a, b, c, d),
        }))
        .await
        .map_err(|e| format!("tcp connect: {e:?}"))?;

    // The socket's streams go straight into the connector: the host moves the bytes.
    let connector = Connector::new();
    let (mut request, cleartext) = wit_stream::new::<u8>();
    let (ciphertext_out, send_outcome) = connector.send(cleartext);
    let tcp_sent = socket.send(ciphertext_out);
    let (ciphertext_in, tcp_received) = socket.receive();
    let (response, receive_outcome) = connector.receive(ciphertext_in);

    let started = Instant::now();
    Connector::connect(connector, server_name.to_string())
        .await
        .map_err(|e| e.to_debug_string())?;
    let connected = Instant::now();

    let get = format!("GET {path} HTTP/1.0\r\nHost: {server_name}\r\n\r\n");
    if !request.write_all(get.into_bytes()).await.is_empty() {
        return Err("the connection stopped taking the request".into());
    }
    // With HALF_CLOSE, the request stream ends before the response is read: the
    // connection sends close_notify first and the response still arrives.
    let mut request = Some(request);
    if std::env::var_os("HALF_CLOSE").is_some() {
        request = None;
    }
    let body = response.collect().await;
    if std::env::var_os("TIMING").is_some() {
        eprintln!(
            "timing: connect {} us, response {} bytes in {} us",
            (connected - started).as_micros(),
            body.len(),
            connected.elapsed().as_micros()
        );
    }
    // The end of the request stream: close_notify, then the socket's sending side (a
    // server that waits for it before closing TCP, as s_server does, needs it first).
    drop(request);
    // Whether the response is whole: the server's close_notify, not just the end of TCP.
    let received = receive_outcome
        .await
        .map_err(|e| format!("receiving: {}", e.to_debug_string()));
    // The server has closed by now, so failures here say nothing of the response.
    if let Err(e) = send_outcome.await {
        eprintln!("note: closing: {}", e.to_debug_string());
    }
    if let Err(e) = tcp_sent.await {
        eprintln!("note: tcp send: {e:?}");
    }
    if let Err(e) = tcp_received.await {
        eprintln!("note: tcp receive: {e:?}");
    }
    received.map(|()| body)
}

bindings::export!(Consumer with_types_in bindings);
