//! `wasm_tls::Stream` against an in-process rustls server over a real TCP connection on
//! 127.0.0.1: the pump rules it holds, one test each.

mod common;

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::{config_for, pki, rustls_server, IO_TIMEOUT};
use wasm_tls::{Config, Error, Stream, TlsClient};

fn server_config() -> Arc<rustls::ServerConfig> {
    Arc::new(rustls_server(&pki().ecdsa.leaf, &[]))
}

fn client_config() -> Config {
    config_for("localhost", &pki().ecdsa.root_pem)
        .build()
        .expect("config")
}

/// Runs `serve` on the server's end of a new TCP connection; returns the client's end.
fn serve<R: Send + 'static>(
    serve: impl FnOnce(TcpStream) -> R + Send + 'static,
) -> (TcpStream, JoinHandle<R>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("address");
    let handle = thread::spawn(move || {
        let (sock, _) = listener.accept().expect("accept");
        sock.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        sock.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
        serve(sock)
    });
    let sock = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
    sock.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    sock.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
    (sock, handle)
}

/// A rustls server over `sock`, its handshake complete.
fn tls_server(sock: TcpStream) -> rustls::StreamOwned<rustls::ServerConnection, TcpStream> {
    let conn = rustls::ServerConnection::new(server_config()).expect("server connection");
    let mut server = rustls::StreamOwned::new(conn, sock);
    while server.conn.is_handshaking() {
        server
            .conn
            .complete_io(&mut server.sock)
            .expect("server handshake");
    }
    server
}

/// Reads until the client closes, so that closing ours sends a FIN, not a reset.
fn drain(sock: &mut TcpStream) {
    let mut buf = [0; 4096];
    while let Ok(1..) = sock.read(&mut buf) {}
}

/// The core's error an I/O error carries.
fn core_error(err: &io::Error) -> &Error {
    err.get_ref()
        .and_then(|e| e.downcast_ref::<Error>())
        .unwrap_or_else(|| panic!("not an error of the core: {err:?}"))
}

fn payload(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32).map(|i| ((i ^ seed) % 251) as u8).collect()
}

/// The server reads `request.len()` bytes, answers with `response`, and closes with
/// `close_notify` or without; returns what it read.
fn answering_server(
    request_len: usize,
    response: Vec<u8>,
    close_notify: bool,
) -> (TcpStream, JoinHandle<Vec<u8>>) {
    serve(move |sock| {
        let mut server = tls_server(sock);
        let mut got = vec![0; request_len];
        server.read_exact(&mut got).expect("the request");
        server.write_all(&response).expect("the response");
        if close_notify {
            server.conn.send_close_notify();
        }
        server.flush().expect("flush");
        let _ = server.sock.shutdown(Shutdown::Write);
        drain(&mut server.sock);
        got
    })
}

/// Reads to the end in small reads, so that the core fills up and refuses bytes.
fn read_all_small(stream: &mut impl Read) -> (Vec<u8>, io::Result<()>) {
    let mut data = Vec::new();
    let mut buf = [0; 100];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "the read did not finish");
        match stream.read(&mut buf) {
            Ok(0) => return (data, Ok(())),
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(err) => return (data, Err(err)),
        }
    }
}

#[test]
fn data_both_ways_then_close_notify_reads_as_zero() {
    let request = payload(100_000, 7);
    let response = payload(300_000, 11);
    let (sock, server) = answering_server(request.len(), response.clone(), true);
    let mut stream = Stream::new(TlsClient::new(&client_config()).expect("client"), sock);
    stream.connect().expect("handshake");
    assert!(stream.handshake_info().is_some());
    stream.write_all(&request).expect("write");
    stream.flush().expect("flush");
    let (got, end) = read_all_small(&mut stream);
    end.expect("a clean close");
    assert!(got == response, "the response differs");
    // Closed stays closed, and our close_notify still goes out.
    assert_eq!(stream.read(&mut [0; 8]).expect("read after close"), 0);
    assert!(stream.tls.peer_closed());
    stream.shutdown().expect("shutdown");
    drop(stream);
    assert!(
        server.join().expect("server") == request,
        "the request differs"
    );
}

#[test]
fn eof_without_close_notify_is_truncated() {
    let response = payload(50_000, 3);
    let (sock, server) = answering_server(5, response.clone(), false);
    let mut stream = Stream::new(TlsClient::new(&client_config()).expect("client"), sock);
    stream
        .write_all(b"hello")
        .expect("write, handshake included");
    let (got, end) = read_all_small(&mut stream);
    assert!(got == response, "the data before EOF differs");
    let err = end.expect_err("EOF without close_notify must not read as a close");
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    assert_eq!(core_error(&err).code(), "truncated");
    // Sticky.
    let again = stream.read(&mut [0; 8]).expect_err("still truncated");
    assert_eq!(core_error(&again).code(), "truncated");
    drop(stream);
    server.join().expect("server");
}

#[test]
fn handshake_failure_sends_the_alert() {
    let (sock, server) = serve(|sock| {
        let conn = rustls::ServerConnection::new(server_config()).expect("server connection");
        let mut server = rustls::StreamOwned::new(conn, sock);
        loop {
            if let Err(err) = server.conn.complete_io(&mut server.sock) {
                let err = err
                    .into_inner()
                    .and_then(|e| e.downcast::<rustls::Error>().ok());
                return err.map(|e| *e);
            }
            if !server.conn.is_handshaking() {
                return None;
            }
        }
    });
    // Trusts the RSA root only: the ECDSA chain is from an unknown issuer.
    let config = config_for("localhost", &pki().rsa.root_pem)
        .build()
        .expect("config");
    let mut stream = Stream::new(TlsClient::new(&config).expect("client"), sock);
    let err = stream.connect().expect_err("the handshake must fail");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(core_error(&err).is_certificate_error(), "{err}");
    let received = server.join().expect("server");
    assert!(
        matches!(received, Some(rustls::Error::AlertReceived(_))),
        "the server did not receive the alert: {received:?}"
    );
}

#[test]
fn eof_during_the_handshake_is_unexpected_eof() {
    let (sock, server) = serve(|mut sock| {
        let _ = sock.read(&mut [0; 4096]);
        let _ = sock.shutdown(Shutdown::Write);
        drain(&mut sock);
    });
    let mut stream = Stream::new(TlsClient::new(&client_config()).expect("client"), sock);
    let err = stream.connect().expect_err("the handshake must fail");
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    assert_eq!(core_error(&err).code(), "unexpected-eof");
    drop(stream);
    server.join().expect("server");
}

#[test]
fn close_notify_during_the_handshake_is_unexpected_eof() {
    let (sock, server) = serve(|mut sock| {
        let _ = sock.read(&mut [0; 4096]);
        // A plaintext warning alert, close_notify.
        let _ = sock.write_all(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x01, 0x00]);
        let _ = sock.shutdown(Shutdown::Write);
        drain(&mut sock);
    });
    let mut stream = Stream::new(TlsClient::new(&client_config()).expect("client"), sock);
    let err = stream
        .read(&mut [0; 16])
        .expect_err("a close during the handshake is not a clean end");
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    assert_eq!(core_error(&err).code(), "unexpected-eof");
    drop(stream);
    server.join().expect("server");
}

/// A socket that says `WouldBlock` on every other call and moves at most 7 bytes at a
/// time, as a non-blocking socket may.
struct Choppy {
    sock: TcpStream,
    turn: bool,
}

impl Read for Choppy {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.turn = !self.turn;
        if self.turn {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(7);
        self.sock.read(&mut buf[..n])
    }
}

impl Write for Choppy {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.turn = !self.turn;
        if self.turn {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.sock.write(&buf[..buf.len().min(7)])
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sock.flush()
    }
}

/// Calls `f` again while it says `WouldBlock`.
fn again<R>(mut f: impl FnMut() -> io::Result<R>) -> io::Result<R> {
    loop {
        match f() {
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            result => return result,
        }
    }
}

#[test]
fn would_block_loses_nothing() {
    let request = payload(20_000, 5);
    let response = payload(40_000, 9);
    let (sock, server) = answering_server(request.len(), response.clone(), true);
    let sock = Choppy { sock, turn: false };
    let mut stream = Stream::new(TlsClient::new(&client_config()).expect("client"), sock);
    again(|| stream.connect()).expect("handshake");
    let mut rest = &request[..];
    while !rest.is_empty() {
        let n = again(|| stream.write(rest)).expect("write");
        rest = &rest[n..];
    }
    again(|| stream.flush()).expect("flush");
    let mut got = Vec::new();
    let mut buf = [0; 1000];
    loop {
        match again(|| stream.read(&mut buf)).expect("read") {
            0 => break,
            n => got.extend_from_slice(&buf[..n]),
        }
    }
    assert!(got == response, "the response differs");
    drop(stream);
    assert!(
        server.join().expect("server") == request,
        "the request differs"
    );
}
