//! The failure matrix against real servers: every broken certificate, protocol version
//! or transport ending gives its own typed error, never a success and never a panic.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::{
    client_args, config_for, failed_handshake, pki, run_tls_client, End, Identity, OpensslServer,
    TlsStream, GET, IO_TIMEOUT,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use wasm_tls::{format_unix_time, Config, Error, FixedClock, SslError, Status, TlsVersion};

const VERSIONS: [&str; 2] = ["-tls1_3", "-tls1_2"];

/// Waits until the server's log contains `needle`.
fn wait_for_log(server: &OpensslServer, needle: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if server.log().contains(needle) {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Connects to `server` with `config`, expects the handshake to fail, checks the failure
/// is sticky and an SSL-class error, and returns it.
fn handshake_failure(server: &OpensslServer, config: &Config) -> Error {
    let (mut conn, err) = failed_handshake(server.port, config);
    let mut buf = [0; 16];
    assert_eq!(conn.tls.read(&mut buf), Err(err.clone()));
    assert_eq!(conn.tls.write(b"x"), Err(err.clone()));
    err
}

/// What `s_server` logs on receiving the alert `number`.
fn alert_logged(number: u8) -> String {
    format!("SSL alert number {number}\n")
}

/// Serves `identity` with each protocol version, connects as `localhost` trusting the
/// ECDSA root, and asserts every attempt fails with `code` and the server receives an
/// alert (`alert`, or any if `None`). Returns the errors.
fn certificate_failure(identity: &Identity, code: &str, alert: Option<u8>) -> Vec<Error> {
    let pki = pki();
    let config = config_for("localhost", &pki.ecdsa.root_pem)
        .build()
        .expect("config");
    VERSIONS
        .iter()
        .map(|flag| {
            let server = OpensslServer::www(identity, &[flag]);
            let err = handshake_failure(&server, &config);
            assert_eq!(err.code(), code, "{flag}: {err}");
            assert!(err.is_certificate_error());
            assert_eq!(err.ssl_error(), SslError::Ssl);
            // The client told the server why with an alert.
            let needle = alert.map_or_else(|| "SSL alert number".to_owned(), alert_logged);
            assert!(
                wait_for_log(&server, &needle),
                "{flag}: the server did not log '{}':\n{}",
                needle.trim_end(),
                server.log()
            );
            err
        })
        .collect()
}

#[test]
fn expired_certificate() {
    let pki = pki();
    for err in certificate_failure(&pki.expired, "certificate-expired", Some(45)) {
        let Error::CertificateExpired { not_after, now } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(*not_after, Some(common::unix_date(2001, 1, 1)));
        let now = now.expect("the validation time");
        assert!(now > common::unix_date(2020, 1, 1));
        assert_eq!(
            err.to_string(),
            format!(
                "certificate expired: it was valid until 2001-01-01 00:00:00 UTC, and it is now {}",
                format_unix_time(now)
            )
        );
    }
}

#[test]
fn not_yet_valid_certificate() {
    let pki = pki();
    for err in certificate_failure(&pki.not_yet_valid, "certificate-not-yet-valid", Some(45)) {
        let Error::CertificateNotYetValid { not_before, now } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(*not_before, Some(common::unix_date(2090, 1, 1)));
        assert_eq!(
            err.to_string(),
            format!(
                "certificate not yet valid: it is valid from 2090-01-01 00:00:00 UTC, and it is now {}",
                format_unix_time(now.expect("the validation time"))
            )
        );
    }
}

#[test]
fn certificate_for_another_name() {
    let pki = pki();
    for err in certificate_failure(&pki.wrong_name, "certificate-name-mismatch", Some(42)) {
        let Error::CertificateNameMismatch {
            expected,
            presented,
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!(expected, "localhost");
        assert_eq!(presented, &["other.example".to_owned()]);
        assert_eq!(
            err.to_string(),
            "certificate is not valid for the name \"localhost\": it is valid for other.example"
        );
    }
}

#[test]
fn ip_address_not_in_the_certificate() {
    // The wrong-name certificate has no IP SAN: verifying 127.0.0.1 fails by name too.
    let pki = pki();
    let server = OpensslServer::www(&pki.wrong_name, &[]);
    let config = config_for("127.0.0.1", &pki.ecdsa.root_pem)
        .build()
        .expect("config");
    let err = handshake_failure(&server, &config);
    assert_eq!(err.code(), "certificate-name-mismatch", "{err}");
    assert_eq!(
        err.to_string(),
        "certificate is not valid for the name \"127.0.0.1\": it is valid for other.example"
    );
}

#[test]
fn self_signed_certificate() {
    let pki = pki();
    for err in certificate_failure(&pki.self_signed, "certificate-self-signed", None) {
        let Error::CertificateSelfSigned { subject } = &err else {
            panic!("{err:?}");
        };
        assert!(subject.starts_with("CN=localhost"), "{subject}");
        assert_eq!(
            err.to_string(),
            format!("certificate is self-signed and not trusted: {subject} (add it with the trusted roots to accept it)")
        );
    }
}

#[test]
fn self_signed_certificate_is_accepted_when_trusted() {
    let pki = pki();
    let self_signed_pem =
        std::fs::read_to_string(&pki.self_signed.cert_file).expect("read the certificate");
    let server = OpensslServer::www(&pki.self_signed, &[]);
    let config = config_for("localhost", &self_signed_pem)
        .build()
        .expect("config");
    let (_, page, end) = common::get(server.port, &config).expect("GET");
    common::assert_www_page(&page);
    assert!(matches!(end, End::Closed), "{end:?}");
}

#[test]
fn chain_to_an_untrusted_root() {
    let pki = pki();
    for err in certificate_failure(&pki.untrusted_root, "certificate-unknown-issuer", None) {
        let Error::CertificateUnknownIssuer { issuer, root_sent } = &err else {
            panic!("{err:?}");
        };
        assert!(issuer.contains(&pki.untrusted_root_cn), "{issuer}");
        assert!(*root_sent, "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("unknown issuer: the chain ends in the root {issuer}, which is not trusted")
        );
    }
}

/// The message for an issuer neither sent nor trusted: it names the issuer and both
/// possible causes.
fn issuer_not_found(issuer: &str) -> String {
    format!(
        "unknown issuer: the issuer {issuer} was neither sent by the server nor is a trusted root: \
         either this CA is not trusted here (add it to the trusted roots), or the server does not \
         send the intermediate certificate it needs"
    )
}

#[test]
fn missing_intermediate() {
    let pki = pki();
    for err in certificate_failure(
        &pki.missing_intermediate,
        "certificate-unknown-issuer",
        None,
    ) {
        let expected = Error::CertificateUnknownIssuer {
            issuer: format!("CN={}, O=wasm-tls tests", pki.ecdsa.intermediate_cn),
            root_sent: false,
        };
        assert_eq!(err, expected);
        assert_eq!(
            err.to_string(),
            issuer_not_found(&format!(
                "CN={}, O=wasm-tls tests",
                pki.ecdsa.intermediate_cn
            ))
        );
    }
}

#[test]
fn good_chain_from_an_untrusted_ca_is_an_unknown_issuer() {
    // The RSA hierarchy's root is not trusted and not sent: as for a missing
    // intermediate, the client cannot tell which of the two it is.
    let pki = pki();
    let server = OpensslServer::www(&pki.rsa.leaf, &[]);
    let config = config_for("localhost", &pki.ecdsa.root_pem)
        .build()
        .expect("config");
    let err = handshake_failure(&server, &config);
    assert_eq!(err.code(), "certificate-unknown-issuer", "{err}");
    let Error::CertificateUnknownIssuer { issuer, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(issuer.starts_with("CN=wasm-tls Test Root"), "{issuer}");
    assert_eq!(err.to_string(), issuer_not_found(issuer));
}

#[test]
fn clock_decides_validity() {
    let pki = pki();
    let server = OpensslServer::www(&pki.ecdsa.leaf, &[]);
    for (secs, code) in [
        (common::unix_date(2100, 6, 1), "certificate-expired"),
        (common::unix_date(2019, 6, 1), "certificate-not-yet-valid"),
    ] {
        let config = config_for("localhost", &pki.ecdsa.root_pem)
            .clock(Arc::new(FixedClock(secs)))
            .build()
            .expect("config");
        let err = handshake_failure(&server, &config);
        assert_eq!(err.code(), code, "{err}");
    }
    let config = config_for("localhost", &pki.ecdsa.root_pem)
        .clock(Arc::new(FixedClock(common::unix_date(2050, 6, 1))))
        .build()
        .expect("config");
    let (_, page, _) = common::get(server.port, &config).expect("GET in 2050");
    common::assert_www_page(&page);
}

// ---- protocol versions ----

fn legacy_server(flag: &str) -> OpensslServer {
    // OpenSSL 3 refuses TLS 1.0/1.1 at the default security level (SHA-1 signatures).
    let mut args = pki().ecdsa.leaf.server_args();
    args.extend([
        flag.to_owned(),
        "-cipher".to_owned(),
        "DEFAULT:@SECLEVEL=0".to_owned(),
        "-www".to_owned(),
    ]);
    OpensslServer::start(&args)
}

#[test]
fn tls10_only_server() {
    let server = legacy_server("-tls1");
    let config = config_for("localhost", &pki().ecdsa.root_pem)
        .build()
        .expect("config");
    let err = handshake_failure(&server, &config);
    assert_eq!(err.code(), "protocol-version", "{err}");
    assert_eq!(err.ssl_error(), SslError::Ssl);
}

#[test]
fn tls11_only_server() {
    let server = legacy_server("-tls1_1");
    let config = config_for("localhost", &pki().ecdsa.root_pem)
        .build()
        .expect("config");
    let err = handshake_failure(&server, &config);
    assert_eq!(err.code(), "protocol-version", "{err}");
}

#[test]
fn client_tls13_only_against_a_tls12_server() {
    let pki = pki();
    let server = OpensslServer::www(&pki.ecdsa.leaf, &["-tls1_2"]);
    let config = config_for("localhost", &pki.ecdsa.root_pem)
        .min_version(TlsVersion::Tls13)
        .build()
        .expect("config");
    let err = handshake_failure(&server, &config);
    assert_eq!(err.code(), "protocol-version", "{err}");
}

#[test]
fn client_tls12_only_against_a_tls13_server() {
    let pki = pki();
    let server = OpensslServer::www(&pki.ecdsa.leaf, &["-tls1_3"]);
    let config = config_for("localhost", &pki.ecdsa.root_pem)
        .max_version(TlsVersion::Tls12)
        .build()
        .expect("config");
    let err = handshake_failure(&server, &config);
    assert_eq!(err.code(), "protocol-version", "{err}");
}

#[test]
fn no_common_cipher_suite() {
    // A TLS 1.2 server offering only CBC suites, which rustls does not implement.
    let pki = pki();
    let server = OpensslServer::www(
        &pki.ecdsa.leaf,
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256"],
    );
    let config = config_for("localhost", &pki.ecdsa.root_pem)
        .build()
        .expect("config");
    let err = handshake_failure(&server, &config);
    assert_eq!(err.code(), "peer-alert", "{err}");
    assert!(err.to_string().contains("handshake_failure"), "{err}");
}

// ---- the tls-client command ----

fn tls_client_failure(identity: &Identity, servername: &str, code: &str) -> String {
    let pki = pki();
    let server = OpensslServer::www(identity, &[]);
    let mut args = client_args(server.port, servername, &pki.ecdsa.root_file);
    args.extend([
        "--request".to_owned(),
        "GET / HTTP/1.0\\r\\n\\r\\n".to_owned(),
    ]);
    let out = run_tls_client(&args, None);
    assert!(!out.status.success(), "{out:?}");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(
        out.stderr.contains(&format!("[{code}]")),
        "no [{code}] in:\n{}",
        out.stderr
    );
    assert!(out.stderr.contains("tls-client: error:"), "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    out.stderr
}

#[test]
fn tls_client_expired() {
    let stderr = tls_client_failure(&pki().expired, "localhost", "certificate-expired");
    assert!(stderr.contains("2001-01-01"), "{stderr}");
}

#[test]
fn tls_client_wrong_host() {
    let stderr = tls_client_failure(
        &pki().ecdsa.leaf,
        "wrong.example",
        "certificate-name-mismatch",
    );
    assert!(stderr.contains("wrong.example"), "{stderr}");
}

#[test]
fn tls_client_other_certificate_failures() {
    let pki = pki();
    tls_client_failure(&pki.not_yet_valid, "localhost", "certificate-not-yet-valid");
    tls_client_failure(&pki.self_signed, "localhost", "certificate-self-signed");
    tls_client_failure(
        &pki.untrusted_root,
        "localhost",
        "certificate-unknown-issuer",
    );
    let stderr = tls_client_failure(
        &pki.missing_intermediate,
        "localhost",
        "certificate-unknown-issuer",
    );
    assert!(
        stderr.contains("or the server does not send the intermediate certificate it needs"),
        "{stderr}"
    );
}

#[test]
fn tls_client_legacy_server() {
    let pki = pki();
    let server = legacy_server("-tls1");
    let mut args = client_args(server.port, "localhost", &pki.ecdsa.root_file);
    args.extend([
        "--request".to_owned(),
        "GET / HTTP/1.0\\r\\n\\r\\n".to_owned(),
    ]);
    let out = run_tls_client(&args, None);
    assert!(!out.status.success(), "{out:?}");
    assert!(out.stderr.contains("[protocol-version]"), "{}", out.stderr);
}

// ---- transport endings, against a rustls server in the test ----

/// Accepts one connection on `listener`, within the I/O timeout.
fn accept(listener: &TcpListener) -> TcpStream {
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        match listener.accept() {
            Ok((sock, _)) => {
                sock.set_nonblocking(false).expect("blocking socket");
                sock.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
                sock.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
                return sock;
            }
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "no client connected");
                thread::sleep(Duration::from_millis(10));
            }
            Err(err) => panic!("accept failed: {err}"),
        }
    }
}

/// Reads until the client closes (or the timeout), so that closing ours sends a FIN and
/// never a reset.
fn drain(sock: &mut TcpStream) {
    let mut buf = [0; 4096];
    while let Ok(n) = sock.read(&mut buf) {
        if n == 0 {
            break;
        }
    }
}

/// A rustls server that completes the handshake, sends `data`, optionally sends
/// `close_notify`, and closes TCP.
fn rustls_server(
    version: &'static rustls::SupportedProtocolVersion,
    data: Vec<u8>,
    close_notify: bool,
) -> (u16, JoinHandle<()>) {
    let pki = pki();
    let leaf = &pki.ecdsa.leaf;
    let chain: Vec<CertificateDer<'static>> = std::iter::once(leaf.leaf_der.clone())
        .chain(leaf.chain_der.iter().cloned())
        .map(CertificateDer::from)
        .collect();
    let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).expect("server key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[version])
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("server certificate");
    let config = Arc::new(config);

    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let port = listener.local_addr().expect("address").port();
    let handle = thread::spawn(move || {
        let mut sock = accept(&listener);
        let mut conn = rustls::ServerConnection::new(config).expect("server connection");
        while conn.is_handshaking() {
            conn.complete_io(&mut sock).expect("server handshake");
        }
        for chunk in data.chunks(16 * 1024) {
            conn.writer().write_all(chunk).expect("queue data");
            while conn.wants_write() {
                conn.write_tls(&mut sock).expect("send");
            }
        }
        if close_notify {
            conn.send_close_notify();
        }
        while conn.wants_write() {
            conn.write_tls(&mut sock).expect("send");
        }
        sock.flush().expect("flush");
        // EOF for the client: without close_notify, this is a truncation.
        sock.shutdown(Shutdown::Write).expect("TCP shutdown");
        drain(&mut sock);
    });
    (port, handle)
}

fn payload() -> Vec<u8> {
    // More than the core's buffer limit, so that the client reads in several rounds.
    (0..200_000u32).map(|i| (i % 251) as u8).collect()
}

#[test]
fn eof_without_close_notify_is_truncated() {
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let data = payload();
        let (port, server) = rustls_server(version, data.clone(), false);
        let config = config_for("localhost", &pki().ecdsa.root_pem)
            .build()
            .expect("config");
        let mut conn = TlsStream::connect(port, &config).expect("handshake");
        let (received, end) = conn.read_to_end();
        assert_eq!(received.len(), data.len(), "{version:?}");
        assert!(received == data, "{version:?}: the data differs");
        let End::Err(err) = end else {
            panic!("{version:?}: ended with {end:?}");
        };
        assert_eq!(err.code(), "truncated", "{version:?}: {err}");
        assert_eq!(err.ssl_error(), SslError::Syscall);
        assert_eq!(conn.tls.ssl_error(), SslError::Syscall);
        assert!(!conn.tls.peer_closed());
        // Sticky.
        let mut buf = [0; 8];
        assert_eq!(conn.tls.read(&mut buf), Err(Error::Truncated));
        drop(conn);
        server.join().expect("the server thread");
    }
}

#[test]
fn close_notify_after_data_is_closed() {
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let data = payload();
        let (port, server) = rustls_server(version, data.clone(), true);
        let config = config_for("localhost", &pki().ecdsa.root_pem)
            .build()
            .expect("config");
        let mut conn = TlsStream::connect(port, &config).expect("handshake");
        let (received, end) = conn.read_to_end();
        assert!(received == data, "{version:?}: the data differs");
        assert!(
            matches!(end, End::Closed),
            "{version:?}: ended with {end:?}"
        );
        assert_eq!(conn.tls.ssl_error(), SslError::ZeroReturn);
        assert!(conn.tls.peer_closed());
        // Reading again still says closed, not an error.
        let mut buf = [0; 8];
        assert_eq!(conn.tls.read(&mut buf), Ok(Status::Closed));
        drop(conn);
        server.join().expect("the server thread");
    }
}

#[test]
fn eof_during_the_handshake_is_unexpected_eof() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let port = listener.local_addr().expect("address").port();
    let server = thread::spawn(move || {
        let mut sock = accept(&listener);
        // Take the ClientHello, then hang up without a word.
        let mut buf = [0; 4096];
        let _ = sock.read(&mut buf);
        let _ = sock.shutdown(Shutdown::Write);
        drain(&mut sock);
    });
    let config = config_for("localhost", &pki().ecdsa.root_pem)
        .build()
        .expect("config");
    let mut conn = TlsStream::open(port, &config);
    let err = conn.handshake().expect_err("must not succeed");
    assert_eq!(err.code(), "unexpected-eof", "{err}");
    assert_eq!(err.ssl_error(), SslError::Syscall);
    assert_eq!(conn.tls.ssl_error(), SslError::Syscall);
    drop(conn);
    server.join().expect("the server thread");
}

#[test]
fn plaintext_server_is_a_protocol_violation() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let port = listener.local_addr().expect("address").port();
    let server = thread::spawn(move || {
        let mut sock = accept(&listener);
        let mut buf = [0; 4096];
        let _ = sock.read(&mut buf);
        let _ = sock.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        let _ = sock.shutdown(Shutdown::Write);
        drain(&mut sock);
    });
    let config = config_for("localhost", &pki().ecdsa.root_pem)
        .build()
        .expect("config");
    let mut conn = TlsStream::open(port, &config);
    let err = conn.handshake().expect_err("must not succeed");
    assert_eq!(err.code(), "protocol-violation", "{err}");
    assert_eq!(err.ssl_error(), SslError::Ssl);
    drop(conn);
    server.join().expect("the server thread");
}

#[test]
fn request_then_truncated_response_over_s_server_is_not_success() {
    // s_server without -www, killed mid-connection: the TCP connection ends without
    // close_notify after the handshake.
    let pki = pki();
    let server = OpensslServer::start(&pki.ecdsa.leaf.server_args());
    let config = config_for("localhost", &pki.ecdsa.root_pem)
        .build()
        .expect("config");
    let mut conn = TlsStream::connect(server.port, &config).expect("handshake");
    conn.write_all(GET).expect("write");
    drop(server);
    let (_, end) = conn.read_to_end();
    assert_eq!(end.code(), "truncated", "{end:?}");
}

// ---- a scripted server that answers with a ServerHello of a given version ----

/// A TLS record carrying a ServerHello for `version`, without extensions.
fn server_hello_record(version: [u8; 2]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&version);
    body.extend_from_slice(&[0x42; 32]); // random
    body.push(0); // session_id
    body.extend_from_slice(&[0xc0, 0x2b]); // ECDHE-ECDSA-AES128-GCM-SHA256
    body.push(0); // null compression
    let mut handshake = vec![0x02, 0, 0, u8::try_from(body.len()).expect("short")];
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01, 0];
    record.push(u8::try_from(handshake.len()).expect("short"));
    record.extend_from_slice(&handshake);
    record
}

/// Answers the ClientHello with a ServerHello for `version`; returns what the client
/// sent after it.
fn scripted_server(version: [u8; 2]) -> (u16, JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let port = listener.local_addr().expect("address").port();
    let handle = thread::spawn(move || {
        let mut sock = accept(&listener);
        let mut buf = [0; 4096];
        let _ = sock.read(&mut buf);
        sock.write_all(&server_hello_record(version))
            .expect("send the ServerHello");
        let mut after = Vec::new();
        let _ = sock.read_to_end(&mut after);
        after
    });
    (port, handle)
}

/// The handshake error against `scripted_server(version)`, and whether the client sent
/// the fatal alert protocol_version.
fn scripted_failure(version: [u8; 2], config: &Config) -> (Error, bool) {
    let (port, server) = scripted_server(version);
    let mut conn = TlsStream::open(port, config);
    let err = conn.handshake().expect_err("must not succeed");
    drop(conn);
    let sent = server.join().expect("the server thread");
    let alert = sent.len() >= 7 && sent[0] == 0x15 && sent[5..7] == [2, 70];
    (err, alert)
}

#[test]
fn server_hello_tls10_is_protocol_version() {
    let config = config_for("localhost", &pki().ecdsa.root_pem)
        .build()
        .expect("config");
    for version in [[3, 1], [3, 2]] {
        let (err, alert) = scripted_failure(version, &config);
        assert_eq!(err.code(), "protocol-version", "{version:?}: {err}");
        assert!(err.to_string().contains("TLS 1.1 or older"), "{err}");
        assert!(alert, "{version:?}: no protocol_version alert was sent");
    }
}

#[test]
fn server_hello_tls12_to_a_tls13_only_client_is_protocol_version() {
    let config = config_for("localhost", &pki().ecdsa.root_pem)
        .min_version(TlsVersion::Tls13)
        .build()
        .expect("config");
    let (err, alert) = scripted_failure([3, 3], &config);
    assert!(alert, "no protocol_version alert was sent");
    assert_eq!(err.code(), "protocol-version", "{err}");
}
