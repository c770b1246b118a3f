//! Servers that misbehave on purpose, scripted on 127.0.0.1: garbage, oversized records,
//! an alert mid-handshake, a downgrade to TLS 1.2 behind a client that offered 1.3, a
//! close without close_notify, and a server that stalls. Each is driven through the core
//! (a blocking `TcpStream` pump) and through the `tls-client` command with
//! `--timeout 2`, and each must end in its typed error: never a success, never a panic,
//! never a hang.
//!
//! The scripts are hand-written bytes on a `std::net::TcpListener`, or a real rustls
//! server whose keys are taken over after its handshake so that it can send any record,
//! well-formed or not, properly encrypted.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::{
    config_for, failed_handshake, path_str, pki, run_tls_client, rustls_server, CommandOutput, End,
    TlsStream,
};
use wasm_tls::{Config, Error, SslError, Status, TlsClient, TlsVersion};
use wasm_tls_test_kit::sealer::Sealer;

/// Bounds how long a scripted server waits for anything.
const SERVER_WAIT: Duration = Duration::from_secs(10);

/// The request the command sends once connected.
const REQUEST: &str = "GET / HTTP/1.0\\r\\n\\r\\n";

/// The TLS 1.3 downgrade sentinel (RFC 8446, section 4.1.3): "DOWNGRD" and 01.
const DOWNGRADE_TLS12: [u8; 8] = *b"DOWNGRD\x01";

fn client_config() -> Config {
    config_for("localhost", &pki().ecdsa.root_pem)
        .build()
        .expect("config")
}

// ---------------------------------------------------------------------------------------
// Scripted servers
// ---------------------------------------------------------------------------------------

/// A server for one connection, running `script` on the accepted socket.
struct Scripted {
    port: u16,
    handle: JoinHandle<()>,
}

impl Scripted {
    fn start(script: impl FnOnce(TcpStream) + Send + 'static) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("address").port();
        let handle = thread::spawn(move || {
            if let Some(sock) = accept(&listener) {
                script(sock);
            }
        });
        Self { port, handle }
    }

    fn join(self) {
        self.handle.join().expect("the server thread panicked");
    }
}

fn accept(listener: &TcpListener) -> Option<TcpStream> {
    listener.set_nonblocking(true).ok()?;
    let deadline = Instant::now() + SERVER_WAIT;
    loop {
        match listener.accept() {
            Ok((sock, _)) => {
                sock.set_nonblocking(false).ok()?;
                sock.set_read_timeout(Some(SERVER_WAIT)).ok()?;
                sock.set_write_timeout(Some(SERVER_WAIT)).ok()?;
                return Some(sock);
            }
            Err(err) if err.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return None,
        }
    }
}

/// Reads one TLS record (the ClientHello); returns it.
fn read_record(sock: &mut TcpStream) -> Vec<u8> {
    let mut header = [0; 5];
    if sock.read_exact(&mut header).is_err() {
        return Vec::new();
    }
    let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
    let mut body = vec![0; len];
    let _ = sock.read_exact(&mut body);
    let mut record = header.to_vec();
    record.extend_from_slice(&body);
    record
}

/// Reads what the client sends until it closes (or the wait ends), so that closing
/// our side sends a FIN and never a reset that could overtake our last bytes.
fn drain(sock: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0; 4096];
    while let Ok(n) = sock.read(&mut buf) {
        if n == 0 {
            break;
        }
        all.extend_from_slice(&buf[..n]);
    }
    all
}

/// Takes the ClientHello, sends `bytes`, and waits for the client to hang up.
fn after_hello(bytes: Vec<u8>) -> Scripted {
    Scripted::start(move |mut sock| {
        read_record(&mut sock);
        let _ = sock.write_all(&bytes);
        drain(&mut sock);
    })
}

/// A TLS record.
fn record(typ: u8, version: [u8; 2], body: &[u8]) -> Vec<u8> {
    let len = u16::try_from(body.len()).expect("a record's length fits 16 bits");
    let mut out = vec![typ, version[0], version[1]];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// A ServerHello handshake message for TLS 1.2 with `random` and no extensions.
fn tls12_server_hello(random: [u8; 32]) -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend_from_slice(&random);
    body.push(0); // no session id
    body.extend_from_slice(&[0xc0, 0x2b]); // ECDHE-ECDSA-AES128-GCM-SHA256
    body.push(0); // null compression
    let len = u32::try_from(body.len()).expect("short").to_be_bytes();
    let mut msg = vec![2, len[1], len[2], len[3]];
    msg.extend_from_slice(&body);
    record(0x16, [3, 3], &msg)
}

// ---------------------------------------------------------------------------------------
// A rustls server whose records we write ourselves after the handshake
// ---------------------------------------------------------------------------------------

/// A rustls server (ECDSA, `version` only) that completes the handshake, hands its
/// socket and keys to `script`, then waits for the client to hang up.
fn rustls_then(
    version: &'static rustls::SupportedProtocolVersion,
    script: impl FnOnce(&mut TcpStream, &mut Sealer) + Send + 'static,
) -> Scripted {
    let mut config = rustls_server(&pki().ecdsa.leaf, &[version]);
    config.enable_secret_extraction = true;
    let config = Arc::new(config);
    Scripted::start(move |mut sock| {
        let mut conn = rustls::ServerConnection::new(config).expect("server connection");
        while conn.is_handshaking() {
            if conn.complete_io(&mut sock).is_err() {
                return;
            }
        }
        // Session tickets, so that nothing is queued when the keys are taken.
        while conn.wants_write() {
            if conn.write_tls(&mut sock).is_err() {
                return;
            }
        }
        let mut sealer = Sealer::new(conn).expect("the server's keys");
        script(&mut sock, &mut sealer);
        drain(&mut sock);
    })
}

const TLS13: &rustls::SupportedProtocolVersion = &rustls::version::TLS13;
const TLS12: &rustls::SupportedProtocolVersion = &rustls::version::TLS12;

// ---------------------------------------------------------------------------------------
// The two ways to drive a client
// ---------------------------------------------------------------------------------------

/// Runs the core's handshake against `server`; it must fail. Checks the failure is
/// sticky and classified, and returns it.
fn core_handshake_error(server: Scripted, config: &Config) -> Error {
    let (conn, err) = failed_handshake(server.port, config);
    drop(conn);
    server.join();
    err
}

/// Completes the handshake, sends a request, and reads until the connection ends; it
/// must end in an error (returned with the data read before it).
fn core_read_error(server: Scripted) -> (Vec<u8>, Error) {
    let mut conn = TlsStream::connect(server.port, &client_config()).expect("handshake");
    conn.write_all(b"GET / HTTP/1.0\r\n\r\n").expect("request");
    let (data, end) = conn.read_to_end();
    let End::Err(err) = end else {
        panic!("the connection ended cleanly ({end:?})");
    };
    assert_eq!(conn.tls.failure(), Some(&err));
    let mut buf = [0; 8];
    assert_eq!(conn.tls.read(&mut buf), Err(err.clone()), "not sticky");
    drop(conn);
    server.join();
    (data, err)
}

/// Runs `tls-client --timeout 2` against `server`, which must make it fail.
fn command(server: Scripted, extra: &[&str]) -> (CommandOutput, Duration) {
    let mut args = vec![
        "--connect".to_owned(),
        format!("127.0.0.1:{}", server.port),
        "--servername".to_owned(),
        "localhost".to_owned(),
        "--cafile".to_owned(),
        path_str(&pki().ecdsa.root_file),
        "--no-default-roots".to_owned(),
        "--timeout".to_owned(),
        "2".to_owned(),
        "--request".to_owned(),
        REQUEST.to_owned(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let started = Instant::now();
    let out = run_tls_client(&args, None);
    let took = started.elapsed();
    server.join();
    assert!(!out.status.success(), "tls-client succeeded: {out:?}");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        !out.stderr.contains("panicked"),
        "tls-client panicked: {}",
        out.stderr
    );
    (out, took)
}

/// Asserts the command failed with the typed error `code`.
fn command_error(server: Scripted, extra: &[&str], code: &str) -> CommandOutput {
    let (out, _) = command(server, extra);
    assert!(
        out.stderr.contains(&format!("[{code}]")),
        "expected [{code}]: {}",
        out.stderr
    );
    out
}

// ---------------------------------------------------------------------------------------
// Garbage
// ---------------------------------------------------------------------------------------

/// Bytes that are no TLS record: an invalid content type.
fn garbage() -> Vec<u8> {
    (0..200u32)
        .map(|i| (i.wrapping_mul(97) % 251) as u8 | 0x80)
        .collect()
}

#[test]
fn garbage_instead_of_a_server_hello() {
    let err = core_handshake_error(after_hello(garbage()), &client_config());
    assert_eq!(err.code(), "protocol-violation", "{err}");
    assert_eq!(err.ssl_error(), SslError::Ssl);
    assert!(err.to_string().contains("InvalidContentType"), "{err}");
    command_error(after_hello(garbage()), &[], "protocol-violation");
}

#[test]
fn garbage_after_the_handshake() {
    for version in [TLS13, TLS12] {
        let script = |sock: &mut TcpStream, _: &mut Sealer| {
            let _ = sock.write_all(&garbage());
        };
        let (data, err) = core_read_error(rustls_then(version, script));
        assert!(data.is_empty());
        assert_eq!(err.code(), "protocol-violation", "{version:?}: {err}");
        command_error(rustls_then(version, script), &[], "protocol-violation");
    }
}

#[test]
fn a_forged_record_after_the_handshake_is_a_decrypt_error() {
    // Well framed, but not encrypted with the session's keys.
    for version in [TLS13, TLS12] {
        let script = |sock: &mut TcpStream, _: &mut Sealer| {
            let _ = sock.write_all(&record(0x17, [3, 3], &[0x5a; 64]));
        };
        let (_, err) = core_read_error(rustls_then(version, script));
        assert_eq!(err.code(), "decrypt-error", "{version:?}: {err}");
        command_error(rustls_then(version, script), &[], "decrypt-error");
    }
}

// ---------------------------------------------------------------------------------------
// Oversized records
// ---------------------------------------------------------------------------------------

/// A record header announcing `len` bytes, and that many bytes.
fn oversized(typ: u8, len: usize) -> Vec<u8> {
    let mut out = vec![typ, 3, 3];
    out.extend_from_slice(&u16::try_from(len).expect("fits").to_be_bytes());
    out.resize(5 + len, 0);
    out
}

#[test]
fn oversized_record_during_the_handshake() {
    // 2^14 + 2048 + 1: over every version's limit; and 2^14 + 257: over TLS 1.3's for a
    // protected record, and over 2^14 for a plaintext one.
    for len in [16_384 + 2_048 + 1, 16_384 + 257] {
        let err = core_handshake_error(after_hello(oversized(0x16, len)), &client_config());
        assert_eq!(err.code(), "protocol-violation", "{len}: {err}");
        command_error(after_hello(oversized(0x16, len)), &[], "protocol-violation");
    }
}

#[test]
fn oversized_record_after_the_handshake() {
    for version in [TLS13, TLS12] {
        // The header alone is enough: 2^14 + 2048 + 1 is refused before decryption.
        let script = |sock: &mut TcpStream, _: &mut Sealer| {
            let _ = sock.write_all(&oversized(0x17, 16_384 + 2_048 + 1));
        };
        let (_, err) = core_read_error(rustls_then(version, script));
        assert_eq!(err.code(), "protocol-violation", "{version:?}: {err}");
        command_error(rustls_then(version, script), &[], "protocol-violation");
    }
}

#[test]
fn properly_encrypted_record_over_2_pow_14() {
    // A server that encrypts 2^14 + 1 bytes of application data into one record.
    for version in [TLS13, TLS12] {
        let script = |sock: &mut TcpStream, sealer: &mut Sealer| {
            let _ = sock.write_all(&sealer.seal(0x17, b"HTTP/1.0 200 ok\r\n\r\n"));
            let _ = sock.write_all(&sealer.seal(0x17, &[b'x'; 16_385]));
        };
        let (data, err) = core_read_error(rustls_then(version, script));
        // Both records arrive in one push: rustls fails on the second before the first
        // is read, and a failed connection reads nothing more.
        assert!(data.is_empty() || data == b"HTTP/1.0 200 ok\r\n\r\n");
        assert_eq!(err.code(), "protocol-violation", "{version:?}: {err}");
        assert_eq!(err.ssl_error(), SslError::Ssl);
        command_error(rustls_then(version, script), &[], "protocol-violation");
    }
}

// ---------------------------------------------------------------------------------------
// Alerts
// ---------------------------------------------------------------------------------------

#[test]
fn fatal_alert_instead_of_a_server_hello() {
    // handshake_failure (40), fatal, in a plaintext record.
    let alert = || record(0x15, [3, 3], &[2, 40]);
    let server = after_hello(alert());
    let mut conn = TlsStream::open(server.port, &client_config());
    let err = conn.handshake().expect_err("must fail");
    assert_eq!(err.code(), "peer-alert", "{err}");
    assert_eq!(
        err,
        Error::PeerAlert {
            alert: "handshake_failure".to_owned()
        }
    );
    assert!(conn.tls.closed_by_peer_alert());
    drop(conn);
    server.join();
    let out = command_error(after_hello(alert()), &[], "peer-alert");
    assert!(out.stderr.contains("handshake_failure"), "{}", out.stderr);
}

#[test]
fn alert_after_the_server_hello() {
    // A real ServerHello for TLS 1.2 (so the rest is plaintext), then internal_error.
    let mut random = [0x42; 32];
    random[0] = 1;
    let mut bytes = tls12_server_hello(random);
    bytes.extend_from_slice(&record(0x15, [3, 3], &[2, 80]));
    let config = config_for("localhost", &pki().ecdsa.root_pem)
        .max_version(TlsVersion::Tls12)
        .build()
        .expect("config");
    let err = core_handshake_error(after_hello(bytes.clone()), &config);
    assert_eq!(
        err,
        Error::PeerAlert {
            alert: "internal_error".to_owned()
        }
    );
    command_error(after_hello(bytes), &["--tls1_2"], "peer-alert");
}

#[test]
fn fatal_alert_after_the_handshake() {
    for version in [TLS13, TLS12] {
        let script = |sock: &mut TcpStream, sealer: &mut Sealer| {
            let _ = sock.write_all(&sealer.seal(0x15, &[2, 80]));
        };
        let (_, err) = core_read_error(rustls_then(version, script));
        assert_eq!(
            err,
            Error::PeerAlert {
                alert: "internal_error".to_owned()
            },
            "{version:?}"
        );
        command_error(rustls_then(version, script), &[], "peer-alert");
    }
}

// ---------------------------------------------------------------------------------------
// Downgrade
// ---------------------------------------------------------------------------------------

/// A TLS 1.2 ServerHello whose random ends in the TLS 1.3 downgrade sentinel; the
/// server returns what the client sent after it.
fn downgrading_server() -> (Scripted, std::sync::mpsc::Receiver<Vec<u8>>) {
    let mut random = [0x24; 32];
    random[24..].copy_from_slice(&DOWNGRADE_TLS12);
    let hello = tls12_server_hello(random);
    let (tx, rx) = std::sync::mpsc::channel();
    let server = Scripted::start(move |mut sock| {
        read_record(&mut sock);
        let _ = sock.write_all(&hello);
        let _ = tx.send(drain(&mut sock));
    });
    (server, rx)
}

#[test]
fn downgrade_sentinel_to_a_client_that_offered_tls13() {
    let (server, sent) = downgrading_server();
    let err = core_handshake_error(server, &client_config());
    assert_eq!(err.code(), "protocol-violation", "{err}");
    assert!(
        err.to_string()
            .contains("AttemptedDowngradeToTls12WhenTls13IsSupported"),
        "{err}"
    );
    // The client told the server why: a fatal illegal_parameter (47) alert.
    let sent = sent
        .recv_timeout(SERVER_WAIT)
        .expect("what the client sent");
    assert_eq!(
        sent.get(..7),
        Some(&[0x15, 3, 3, 0, 2, 2, 47][..]),
        "{sent:?}"
    );

    let (server, _) = downgrading_server();
    let out = command_error(server, &[], "protocol-violation");
    assert!(out.stderr.contains("Downgrade"), "{}", out.stderr);
}

#[test]
fn downgrade_sentinel_is_not_checked_by_a_tls12_only_client() {
    // RFC 8446 4.1.3 binds clients that offered TLS 1.3; a TLS 1.2-only client goes on
    // and waits for the Certificate, which never comes: the server hangs up instead.
    let mut random = [0x24; 32];
    random[24..].copy_from_slice(&DOWNGRADE_TLS12);
    let hello = tls12_server_hello(random);
    let server = Scripted::start(move |mut sock| {
        read_record(&mut sock);
        let _ = sock.write_all(&hello);
        thread::sleep(Duration::from_millis(200));
        let _ = sock.shutdown(Shutdown::Write);
        drain(&mut sock);
    });
    let config = config_for("localhost", &pki().ecdsa.root_pem)
        .max_version(TlsVersion::Tls12)
        .build()
        .expect("config");
    let err = core_handshake_error(server, &config);
    assert_eq!(err.code(), "unexpected-eof", "{err}");
}

// ---------------------------------------------------------------------------------------
// Closes without close_notify
// ---------------------------------------------------------------------------------------

#[test]
fn close_without_close_notify_after_data_is_truncated() {
    for version in [TLS13, TLS12] {
        let script = |sock: &mut TcpStream, sealer: &mut Sealer| {
            let _ = sock.write_all(&sealer.seal(0x17, b"HTTP/1.0 200 ok\r\n\r\npartial"));
            let _ = sock.shutdown(Shutdown::Write);
        };
        let (data, err) = core_read_error(rustls_then(version, script));
        assert_eq!(data, b"HTTP/1.0 200 ok\r\n\r\npartial");
        assert_eq!(err, Error::Truncated, "{version:?}");
        assert_eq!(err.ssl_error(), SslError::Syscall);
        let out = command_error(rustls_then(version, script), &[], "truncated");
        assert_eq!(out.stdout, "HTTP/1.0 200 ok\r\n\r\npartial");
    }
}

#[test]
fn close_during_the_handshake_is_unexpected_eof() {
    // After a partial record, and after a complete ServerHello.
    let cut = || vec![0x16, 3, 3, 0, 80, 2, 0];
    let mut random = [0x11; 32];
    random[0] = 0;
    let whole_hello = || tls12_server_hello(random);
    for bytes in [cut(), whole_hello()] {
        let server = Scripted::start({
            let bytes = bytes.clone();
            move |mut sock| {
                read_record(&mut sock);
                let _ = sock.write_all(&bytes);
                let _ = sock.shutdown(Shutdown::Write);
                drain(&mut sock);
            }
        });
        let config = config_for("localhost", &pki().ecdsa.root_pem)
            .max_version(TlsVersion::Tls12)
            .build()
            .expect("config");
        let err = core_handshake_error(server, &config);
        assert_eq!(err, Error::UnexpectedEof);
        assert_eq!(err.ssl_error(), SslError::Syscall);
        let server = Scripted::start(move |mut sock| {
            read_record(&mut sock);
            let _ = sock.write_all(&bytes);
            let _ = sock.shutdown(Shutdown::Write);
            drain(&mut sock);
        });
        command_error(server, &["--tls1_2"], "unexpected-eof");
    }
}

// ---------------------------------------------------------------------------------------
// Stalls
// ---------------------------------------------------------------------------------------

/// Takes the ClientHello, sends `bytes`, then says nothing until the client leaves.
fn stalling(bytes: Vec<u8>) -> Scripted {
    after_hello(bytes)
}

/// Calls `f` many times: every call must say want-read at once, and queue nothing.
fn assert_waits_without_spinning(
    tls: &mut TlsClient,
    mut f: impl FnMut(&mut TlsClient) -> SslError,
) {
    let started = Instant::now();
    for _ in 0..10_000 {
        assert_eq!(f(tls), SslError::WantRead);
        assert_eq!(
            tls.pending_ciphertext(),
            0,
            "the core queued bytes while waiting"
        );
        assert!(tls.failure().is_none());
    }
    // Ten thousand calls that find nothing to do are cheap: the core never loops or
    // sleeps on its own.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "waiting calls took {:?}",
        started.elapsed()
    );
}

#[test]
fn stalled_handshake_core_wants_read_and_does_not_spin() {
    // Silent after the ClientHello, and silent in the middle of a record.
    for bytes in [Vec::new(), vec![0x16, 3, 3]] {
        let server = stalling(bytes.clone());
        let mut conn = TlsStream::open(server.port, &client_config());
        assert_eq!(conn.tls.connect(), Ok(Status::WantWrite));
        let hello = conn.tls.take_ciphertext();
        conn.sock.write_all(&hello).expect("send the ClientHello");
        if !bytes.is_empty() {
            let mut buf = [0; 16];
            let n = conn.sock.read(&mut buf).expect("the partial record");
            assert_eq!(conn.tls.push_ciphertext(&buf[..n]), n);
        }
        assert_waits_without_spinning(&mut conn.tls, |tls| match tls.connect() {
            Ok(status) => status.ssl_error(),
            Err(err) => panic!("{err}"),
        });
        // The socket has nothing either: the server really is silent.
        conn.sock
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let mut buf = [0; 16];
        let silent = matches!(
            conn.sock.read(&mut buf),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
        );
        assert!(silent, "the stalling server sent something");
        drop(conn);
        server.join();
    }
}

#[test]
fn stalled_handshake_command_times_out() {
    for bytes in [Vec::new(), vec![0x16, 3, 3]] {
        let (out, took) = command(stalling(bytes), &[]);
        assert!(
            out.stderr
                .contains("timed out waiting for the peer during the handshake"),
            "{}",
            out.stderr
        );
        assert!(
            took >= Duration::from_secs(2) && took < Duration::from_secs(8),
            "--timeout 2 took {took:?}"
        );
    }
}

#[test]
fn stalled_after_the_handshake_core_wants_read_and_does_not_spin() {
    for version in [TLS13, TLS12] {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let server = rustls_then(version, move |_, _| {
            // Silent until the client is done looking.
            let _ = rx.recv_timeout(SERVER_WAIT);
        });
        let mut conn = TlsStream::connect(server.port, &client_config()).expect("handshake");
        // Take in what the server sent after its handshake (TLS 1.3 session tickets).
        conn.sock
            .set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
        let mut buf = vec![0; 16 * 1024];
        while let Ok(n) = conn.sock.read(&mut buf) {
            if n == 0 {
                break;
            }
            assert_eq!(conn.tls.push_ciphertext(&buf[..n]), n);
        }
        assert_waits_without_spinning(&mut conn.tls, |tls| {
            let mut buf = [0; 64];
            match tls.read(&mut buf) {
                Ok(status) => status.ssl_error(),
                Err(err) => panic!("{err}"),
            }
        });
        tx.send(()).expect("release the server");
        drop(conn);
        server.join();
    }
}
