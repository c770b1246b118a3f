//! Interoperability with a real `openssl s_server`: TLS 1.2 and 1.3, ECDSA and RSA
//! certificates, ALPN, key-exchange groups, resumption, client certificates, and the
//! `tls-client` command.

mod common;

use std::fs;

use common::{
    assert_www_page, client_args, config_for, connect_and_read, fresh_dir, get, path_str, pki,
    run_tls_client, End, Hierarchy, OpensslServer, TlsStream, GET,
};
use wasm_tls::{SslError, TlsVersion};

/// OpenSSL's name of a cipher suite, from its IANA name as `HandshakeInfo` gives it.
fn openssl_cipher_name(iana: &str) -> String {
    if let Some(rest) = iana.strip_prefix("TLS13_") {
        return format!("TLS_{rest}");
    }
    let (kx, rest) = if let Some(rest) = iana.strip_prefix("TLS_ECDHE_ECDSA_WITH_") {
        ("ECDHE-ECDSA", rest)
    } else if let Some(rest) = iana.strip_prefix("TLS_ECDHE_RSA_WITH_") {
        ("ECDHE-RSA", rest)
    } else {
        panic!("unexpected cipher suite {iana}");
    };
    let cipher = match rest {
        "AES_256_GCM_SHA384" => "AES256-GCM-SHA384",
        "AES_128_GCM_SHA256" => "AES128-GCM-SHA256",
        "CHACHA20_POLY1305_SHA256" => "CHACHA20-POLY1305",
        other => panic!("unexpected cipher {other}"),
    };
    format!("{kx}-{cipher}")
}

/// `GET /` against `s_server -www` serving `hierarchy`'s leaf with `version_flag`, and
/// every `HandshakeInfo` field checked against the server and our certificates.
fn get_and_check(hierarchy: &Hierarchy, version_flag: &str, version: TlsVersion) {
    let server = OpensslServer::www(&hierarchy.leaf, &[version_flag]);
    let config = config_for("localhost", &hierarchy.root_pem)
        .build()
        .expect("config");
    let (conn, page, end) = get(server.port, &config)
        .unwrap_or_else(|err| panic!("GET failed: {err} [{}]\n{}", err.code(), server.log()));

    assert_www_page(&page);
    assert!(matches!(end, End::Closed), "ended with {end:?}");
    assert_eq!(conn.tls.ssl_error(), SslError::ZeroReturn);

    let info = conn.tls.handshake_info().expect("handshake info");
    assert_eq!(info.version, version);
    let page = String::from_utf8_lossy(&page);
    assert!(
        page.contains(&format!("Protocol  : {}", version.name())),
        "the server saw another version"
    );
    match version {
        TlsVersion::Tls13 => assert!(info.cipher_suite.starts_with("TLS13_"), "{info:?}"),
        TlsVersion::Tls12 => {
            let family = if hierarchy.is_rsa {
                "TLS_ECDHE_RSA_WITH_"
            } else {
                "TLS_ECDHE_ECDSA_WITH_"
            };
            assert!(info.cipher_suite.starts_with(family), "{info:?}");
        }
    }
    let openssl_name = openssl_cipher_name(&info.cipher_suite);
    assert!(
        page.contains(&format!(
            "New, {}, Cipher is {openssl_name}",
            version.name()
        )),
        "the server reports another cipher than {openssl_name}"
    );
    assert_eq!(info.key_exchange_group.as_deref(), Some("X25519"));
    assert_eq!(info.alpn, None);
    assert!(!info.resumed);
    assert_eq!(info.peer_certificates.len(), 2);
    assert_eq!(info.peer_certificates[0], hierarchy.leaf.leaf_der);
    assert_eq!(info.peer_certificates[1], hierarchy.leaf.chain_der[0]);
    let summaries = info.certificate_summaries();
    let leaf = summaries[0].as_ref().expect("readable leaf");
    assert!(leaf.subject.contains("CN=localhost"), "{leaf:?}");
    assert!(leaf.issuer.contains(&hierarchy.intermediate_cn), "{leaf:?}");
}

#[test]
fn tls13_ecdsa_get() {
    get_and_check(&pki().ecdsa, "-tls1_3", TlsVersion::Tls13);
}

#[test]
fn tls13_rsa_get() {
    get_and_check(&pki().rsa, "-tls1_3", TlsVersion::Tls13);
}

#[test]
fn tls12_ecdsa_get() {
    get_and_check(&pki().ecdsa, "-tls1_2", TlsVersion::Tls12);
}

#[test]
fn tls12_rsa_get() {
    get_and_check(&pki().rsa, "-tls1_2", TlsVersion::Tls12);
}

#[test]
fn default_server_negotiates_tls13() {
    let pki = pki();
    let server = OpensslServer::www(&pki.ecdsa.leaf, &[]);
    let config = config_for("localhost", &pki.ecdsa.root_pem)
        .build()
        .expect("config");
    let (conn, page, end) = get(server.port, &config).expect("GET");
    assert_www_page(&page);
    assert!(matches!(end, End::Closed), "ended with {end:?}");
    let info = conn.tls.handshake_info().expect("info");
    assert_eq!(info.version, TlsVersion::Tls13);
}

#[test]
fn client_max_tls12_against_a_tls13_server() {
    let pki = pki();
    let server = OpensslServer::www(&pki.rsa.leaf, &[]);
    let config = config_for("localhost", &pki.rsa.root_pem)
        .max_version(TlsVersion::Tls12)
        .build()
        .expect("config");
    let (conn, page, _) = get(server.port, &config).expect("GET");
    assert_www_page(&page);
    let info = conn.tls.handshake_info().expect("info");
    assert_eq!(info.version, TlsVersion::Tls12);
    assert!(String::from_utf8_lossy(&page).contains("Protocol  : TLSv1.2"));
}

#[test]
fn server_name_as_ip_address_matches_the_ip_san() {
    let pki = pki();
    let server = OpensslServer::www(&pki.ecdsa.leaf, &[]);
    let config = config_for("127.0.0.1", &pki.ecdsa.root_pem)
        .build()
        .expect("config");
    let (_, page, end) = get(server.port, &config).expect("GET");
    assert_www_page(&page);
    assert!(matches!(end, End::Closed), "ended with {end:?}");
}

#[test]
fn key_exchange_group_p256_when_the_server_insists() {
    let pki = pki();
    for (flag, version) in [
        ("-tls1_3", TlsVersion::Tls13),
        ("-tls1_2", TlsVersion::Tls12),
    ] {
        // TLS 1.3: the client's X25519 key share is refused, a HelloRetryRequest follows.
        let server = OpensslServer::www(&pki.ecdsa.leaf, &[flag, "-groups", "P-256"]);
        let config = config_for("localhost", &pki.ecdsa.root_pem)
            .build()
            .expect("config");
        let (conn, page, _) = get(server.port, &config).expect("GET");
        assert_www_page(&page);
        let info = conn.tls.handshake_info().expect("info");
        assert_eq!(info.version, version);
        assert_eq!(info.key_exchange_group.as_deref(), Some("secp256r1"));
    }
}

#[test]
fn resumption_with_the_same_config() {
    let pki = pki();
    for flag in ["-tls1_3", "-tls1_2"] {
        let server = OpensslServer::www(&pki.ecdsa.leaf, &[flag]);
        let config = config_for("localhost", &pki.ecdsa.root_pem)
            .build()
            .expect("config");
        let (first, page, _) = get(server.port, &config).expect("first GET");
        assert_www_page(&page);
        assert!(!first.tls.handshake_info().expect("info").resumed);
        // s_server serves one connection at a time: end the first before the second.
        drop(first);
        let (second, page, _) = get(server.port, &config).expect("second GET");
        assert_www_page(&page);
        let info = second.tls.handshake_info().expect("info");
        assert!(
            info.resumed,
            "{flag}: the second connection was not resumed"
        );
        assert!(
            String::from_utf8_lossy(&page).contains("Reused, "),
            "{flag}: the server did not see a resumption"
        );
    }
}

// ---- ALPN ----

fn alpn_against(server_protocols: &str, offered: &[&str]) -> Option<Vec<u8>> {
    let pki = pki();
    let server = OpensslServer::www(&pki.ecdsa.leaf, &["-alpn", server_protocols]);
    let config = config_for("localhost", &pki.ecdsa.root_pem)
        .alpn(offered)
        .build()
        .expect("config");
    let (conn, page, end) = get(server.port, &config).expect("GET");
    assert_www_page(&page);
    assert!(matches!(end, End::Closed), "ended with {end:?}");
    conn.tls.handshake_info().expect("info").alpn
}

#[test]
fn alpn_http11_is_negotiated() {
    assert_eq!(
        alpn_against("h2,http/1.1", &["http/1.1"]).as_deref(),
        Some(&b"http/1.1"[..])
    );
}

#[test]
fn alpn_follows_the_server_preference() {
    assert_eq!(
        alpn_against("h2,http/1.1", &["http/1.1", "h2"]).as_deref(),
        Some(&b"h2"[..])
    );
}

#[test]
fn alpn_without_overlap_is_refused_by_the_server() {
    // OpenSSL 3's s_server answers with the fatal alert no_application_protocol
    // (RFC 7301 section 3.2) rather than ignoring the extension.
    let pki = pki();
    let server = OpensslServer::www(&pki.ecdsa.leaf, &["-alpn", "h2,http/1.1"]);
    let config = config_for("localhost", &pki.ecdsa.root_pem)
        .alpn(&["spdy/3"])
        .build()
        .expect("config");
    let err = connect_and_read(server.port, &config).expect_err("must not succeed");
    assert_eq!(err.code(), "no-application-protocol", "{err}");
    assert!(err.to_string().contains("ALPN"), "{err}");
}

// ---- client certificates ----

fn client_auth_server(version_flag: &str) -> OpensslServer {
    let pki = pki();
    let ca = path_str(&pki.client_ca_file);
    OpensslServer::www(
        &pki.ecdsa.leaf,
        &[
            version_flag,
            "-Verify",
            "1",
            "-verify_return_error",
            "-CAfile",
            &ca,
        ],
    )
}

#[test]
fn client_certificate_is_accepted() {
    let pki = pki();
    for flag in ["-tls1_3", "-tls1_2"] {
        let server = client_auth_server(flag);
        let config = config_for("localhost", &pki.ecdsa.root_pem)
            .client_auth_pem(&pki.client.full_chain_pem, &pki.client.key_pem)
            .build()
            .expect("config");
        let (_, page, end) = get(server.port, &config)
            .unwrap_or_else(|err| panic!("{flag}: {err} [{}]\n{}", err.code(), server.log()));
        assert_www_page(&page);
        assert!(matches!(end, End::Closed), "ended with {end:?}");
        let page = String::from_utf8_lossy(&page);
        assert!(
            page.contains("Client certificate") && page.contains(&pki.client_cn),
            "{flag}: the server did not see our certificate"
        );
    }
}

#[test]
fn missing_client_certificate_tls13_is_certificate_required() {
    // In TLS 1.3 the client's handshake completes before the server checks its (empty)
    // certificate: the certificate_required alert arrives on the first read.
    let pki = pki();
    let server = client_auth_server("-tls1_3");
    let config = config_for("localhost", &pki.ecdsa.root_pem)
        .build()
        .expect("config");
    let err = connect_and_read(server.port, &config).expect_err("must not succeed");
    assert_eq!(err.code(), "client-certificate-required", "{err}");
    assert_eq!(err.ssl_error(), SslError::Ssl);
}

#[test]
fn missing_client_certificate_tls12_is_a_handshake_failure_alert() {
    // OpenSSL answers a TLS 1.2 client without a certificate with handshake_failure.
    let pki = pki();
    let server = client_auth_server("-tls1_2");
    let config = config_for("localhost", &pki.ecdsa.root_pem)
        .build()
        .expect("config");
    let err = connect_and_read(server.port, &config).expect_err("must not succeed");
    assert_eq!(err.code(), "peer-alert", "{err}");
    assert!(err.to_string().contains("handshake_failure"), "{err}");
}

#[test]
fn client_certificate_from_another_ca_is_rejected() {
    // The server trusts only the client CA; a certificate from the server hierarchy is
    // refused with an alert, never a success.
    let pki = pki();
    for flag in ["-tls1_3", "-tls1_2"] {
        let server = client_auth_server(flag);
        let config = config_for("localhost", &pki.ecdsa.root_pem)
            .client_auth_pem(&pki.ecdsa.leaf.full_chain_pem, &pki.ecdsa.leaf.key_pem)
            .build()
            .expect("config");
        let err = connect_and_read(server.port, &config).expect_err("must not succeed");
        assert_eq!(err.code(), "peer-alert", "{flag}: {err}");
    }
}

// ---- the tls-client command ----

fn request_args(port: u16, pki: &common::Pki) -> Vec<String> {
    let mut args = client_args(port, "localhost", &pki.ecdsa.root_file);
    args.push("--request".to_owned());
    args.push("GET / HTTP/1.0\\r\\n\\r\\n".to_owned());
    args
}

fn tls_client_get(version_flag: &str, version: TlsVersion) {
    let pki = pki();
    let server = OpensslServer::www(&pki.ecdsa.leaf, &[version_flag]);
    let out = run_tls_client(&request_args(server.port, pki), None);
    assert!(out.status.success(), "{out:?}");
    assert_www_page(out.stdout.as_bytes());
    assert!(
        out.stderr
            .contains(&format!("Protocol  : {}", version.name())),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("Cipher    : TLS"), "{}", out.stderr);
    assert!(out.stderr.contains("Group     : X25519"), "{}", out.stderr);
    assert!(out.stderr.contains(" 0 s:"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&pki.ecdsa.intermediate_cn),
        "{}",
        out.stderr
    );
}

#[test]
fn tls_client_get_tls13() {
    tls_client_get("-tls1_3", TlsVersion::Tls13);
}

#[test]
fn tls_client_get_tls12() {
    tls_client_get("-tls1_2", TlsVersion::Tls12);
}

#[test]
fn tls_client_version_flags() {
    let pki = pki();
    let server = OpensslServer::www(&pki.rsa.leaf, &[]);
    for (flag, version) in [("--tls1_2", "TLSv1.2"), ("--tls1_3", "TLSv1.3")] {
        let mut args = client_args(server.port, "localhost", &pki.rsa.root_file);
        args.extend([
            flag.to_owned(),
            "--request".to_owned(),
            "GET / HTTP/1.0\\r\\n\\r\\n".to_owned(),
        ]);
        let out = run_tls_client(&args, None);
        assert!(out.status.success(), "{out:?}");
        assert!(
            out.stderr.contains(&format!("Protocol  : {version}")),
            "{}",
            out.stderr
        );
        assert!(out.stdout.contains(&format!("Protocol  : {version}")));
    }
}

#[test]
fn tls_client_alpn() {
    let pki = pki();
    let server = OpensslServer::www(&pki.ecdsa.leaf, &["-alpn", "h2,http/1.1"]);
    let mut args = request_args(server.port, pki);
    args.extend(["--alpn".to_owned(), "http/1.1".to_owned()]);
    let out = run_tls_client(&args, None);
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stderr.contains("ALPN      : http/1.1"),
        "{}",
        out.stderr
    );
}

#[test]
fn tls_client_with_client_certificate() {
    let pki = pki();
    let server = client_auth_server("-tls1_3");
    let mut args = request_args(server.port, pki);
    args.extend([
        "--cert".to_owned(),
        path_str(&pki.client.cert_file),
        "--key".to_owned(),
        path_str(&pki.client.key_file),
    ]);
    let out = run_tls_client(&args, None);
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.contains(&pki.client_cn), "{}", out.stdout);
}

#[test]
fn tls_client_keylog_writes_nss_lines() {
    let pki = pki();
    for (flag, labels) in [
        (
            "-tls1_3",
            &[
                "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
                "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                "CLIENT_TRAFFIC_SECRET_0",
                "SERVER_TRAFFIC_SECRET_0",
            ][..],
        ),
        ("-tls1_2", &["CLIENT_RANDOM"][..]),
    ] {
        let server = OpensslServer::www(&pki.ecdsa.leaf, &[flag]);
        let dir = fresh_dir("keylog");
        let keylog = dir.join("keys.log");
        let mut args = request_args(server.port, pki);
        args.extend(["--keylog".to_owned(), path_str(&keylog)]);
        let out = run_tls_client(&args, None);
        assert!(out.status.success(), "{out:?}");
        let log = fs::read_to_string(&keylog).expect("the key log was written");
        for line in log.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            assert_eq!(fields.len(), 3, "not an NSS key-log line: {line}");
            assert_eq!(fields[1].len(), 64, "client random: {line}");
            assert!(
                fields[1..]
                    .iter()
                    .all(|f| f.chars().all(|c| c.is_ascii_hexdigit())),
                "not hex: {line}"
            );
        }
        for label in labels {
            assert!(
                log.lines().any(|l| l.starts_with(&format!("{label} "))),
                "{flag}: no {label} line in\n{log}"
            );
        }
        let _ = fs::remove_dir_all(&dir);
    }
}

#[test]
fn tls_client_wrong_servername_fails_with_the_code() {
    let pki = pki();
    let server = OpensslServer::www(&pki.ecdsa.leaf, &[]);
    let mut args = client_args(server.port, "wrong.example", &pki.ecdsa.root_file);
    args.extend([
        "--request".to_owned(),
        "GET / HTTP/1.0\\r\\n\\r\\n".to_owned(),
    ]);
    let out = run_tls_client(&args, None);
    assert!(!out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(
        out.stderr.contains("[certificate-name-mismatch]"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("wrong.example"), "{}", out.stderr);
    assert!(out.stderr.contains("localhost"), "{}", out.stderr);
}

#[test]
fn tls_client_reads_the_request_from_stdin() {
    let pki = pki();
    let server = OpensslServer::www(&pki.ecdsa.leaf, &[]);
    let args = client_args(server.port, "localhost", &pki.ecdsa.root_file);
    let out = run_tls_client(&args, Some(GET));
    assert!(out.status.success(), "{out:?}");
    assert_www_page(out.stdout.as_bytes());
    assert!(out.stderr.contains("Protocol  : TLSv1.3"), "{}", out.stderr);
}

// ---- the pump itself ----

#[test]
fn large_request_and_echo_over_s_server() {
    // Without -www, s_server echoes nothing but prints what it receives: send more than
    // the core's buffer limit in one write_all and check the server got all of it.
    let pki = pki();
    let mut args = pki.ecdsa.leaf.server_args();
    args.push("-quiet".to_owned());
    let server = OpensslServer::start(&args);
    let config = config_for("localhost", &pki.ecdsa.root_pem)
        .build()
        .expect("config");
    let mut conn = TlsStream::connect(server.port, &config).expect("handshake");
    let line = "0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ\n";
    let data = line.repeat(2000);
    conn.write_all(data.as_bytes()).expect("write");
    conn.shutdown().expect("shutdown");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let log = server.log();
        if log.matches(line).count() == 2000 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server received {} of 2000 lines",
            log.matches(line).count()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
