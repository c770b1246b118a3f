//! The X25519MLKEM768 key exchange, offered first by default with an X25519 share in the
//! same ClientHello: negotiated with a server that speaks it (an in-process rustls server
//! on aws-lc-rs, another implementation than the client's), and X25519 with one that does
//! not (`openssl s_server` 3.0, and that rustls server limited to classical groups), with
//! no HelloRetryRequest.
//!
//! `native::` runs the core and the `tls-client` command; `wasmtime::` runs
//! `tls-client.wasm` under the wasmtime CLI, ignored by a plain `cargo test` (`cargo xtask
//! test` builds the component and runs them, naming it in `WASM_TLS_CLIENT_WASM`).

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;

use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::{config_for, pki, OpensslServer, IO_TIMEOUT};
use rustls::crypto::{aws_lc_rs, SupportedKxGroup};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{HandshakeKind, NamedGroup};
use wasm_tls::{Config, Error};

/// What the server saw of one handshake.
#[derive(Debug)]
struct Seen {
    group: Option<NamedGroup>,
    kind: Option<HandshakeKind>,
}

/// A rustls server on aws-lc-rs offering `groups`, in that order of preference, for one
/// connection on 127.0.0.1: it answers a request with the negotiated group in the body
/// (`group: NAME`), then closes.
struct RustlsServer {
    port: u16,
    handle: JoinHandle<Result<Seen, String>>,
}

impl RustlsServer {
    fn start(groups: &[&'static dyn SupportedKxGroup]) -> Self {
        let mut provider = aws_lc_rs::default_provider();
        provider.kx_groups = groups.to_vec();
        let leaf = &pki().ecdsa.leaf;
        let chain: Vec<CertificateDer<'static>> = std::iter::once(leaf.leaf_der.clone())
            .chain(leaf.chain_der.iter().cloned())
            .map(CertificateDer::from)
            .collect();
        let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).expect("server key");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server certificate");
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let port = listener.local_addr().expect("address").port();
        let handle = thread::spawn(move || serve_one(&listener, Arc::new(config)));
        Self { port, handle }
    }

    /// What the server saw, once its connection is over.
    fn seen(self) -> Seen {
        self.handle
            .join()
            .expect("the server thread")
            .unwrap_or_else(|err| panic!("the server failed: {err}"))
    }

    /// The server's error, once its connection is over.
    fn failure(self) -> String {
        match self.handle.join().expect("the server thread") {
            Ok(seen) => panic!("the server completed a handshake: {seen:?}"),
            Err(err) => err,
        }
    }
}

fn accept_within(listener: &TcpListener, limit: Duration) -> Result<TcpStream, String> {
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + limit;
    loop {
        match listener.accept() {
            Ok((sock, _)) => {
                sock.set_nonblocking(false).map_err(|e| e.to_string())?;
                return Ok(sock);
            }
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    return Err("no client connected".to_owned());
                }
                thread::sleep(Duration::from_millis(10));
            }
            Err(err) => return Err(err.to_string()),
        }
    }
}

fn serve_one(listener: &TcpListener, config: Arc<rustls::ServerConfig>) -> Result<Seen, String> {
    // wasmtime compiles the component before it connects: allow for it.
    let mut sock = accept_within(listener, Duration::from_secs(60))?;
    sock.set_read_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    sock.set_write_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let mut conn = rustls::ServerConnection::new(config).map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).map_err(|e| e.to_string())?;
    }
    let seen = Seen {
        group: conn.negotiated_key_exchange_group().map(|g| g.name()),
        kind: conn.handshake_kind(),
    };
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    let mut request = Vec::new();
    let mut buf = [0; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match tls.read(&mut buf) {
            Ok(0) => return Err("the client closed before its request".to_owned()),
            Ok(n) => request.extend_from_slice(&buf[..n]),
            Err(err) => return Err(format!("reading the request: {err}")),
        }
    }
    let group = seen.group.map(|g| format!("{g:?}")).unwrap_or_default();
    tls.write_all(format!("HTTP/1.0 200 ok\r\n\r\ngroup: {group}\n").as_bytes())
        .map_err(|e| e.to_string())?;
    conn.send_close_notify();
    conn.complete_io(&mut sock).map_err(|e| e.to_string())?;
    Ok(seen)
}

/// The client configuration, trusting the test PKI, with post-quantum on or off.
fn client_config(post_quantum: bool) -> Config {
    config_for("localhost", &pki().ecdsa.root_pem)
        .post_quantum(post_quantum)
        .build()
        .expect("config")
}

/// Connects with the core, sends a request, and returns the group `handshake_info`
/// names and the response.
fn core_get(port: u16, config: &Config) -> Result<(Option<String>, String), Error> {
    let mut conn = common::TlsStream::connect(port, config)?;
    let group = conn
        .handshake_info()
        .expect("the handshake is complete")
        .key_exchange_group;
    conn.write_all(common::GET)?;
    let (data, end) = conn.read_to_end();
    assert_eq!(end.code(), "closed", "{end:?}");
    Ok((group, String::from_utf8_lossy(&data).into_owned()))
}

/// `openssl s_server -www` (OpenSSL 3.0: no ML-KEM) for TLS 1.3 with `-msg`, so that its
/// log shows each handshake message it receives.
fn openssl_tls13_server() -> OpensslServer {
    OpensslServer::www(&pki().ecdsa.leaf, &["-tls1_3", "-msg"])
}

/// The lengths of the ClientHellos in an `s_server -msg` log: lines such as
/// `<<< TLS 1.3, Handshake [length 05f0], ClientHello`.
fn client_hello_lengths(log: &str) -> Vec<usize> {
    log.lines()
        .filter(|line| line.starts_with("<<<") && line.trim_end().ends_with("ClientHello"))
        .filter_map(|line| {
            let hex = line.split("[length ").nth(1)?.split(']').next()?;
            usize::from_str_radix(hex, 16).ok()
        })
        .collect()
}

/// A ClientHello with an ML-KEM-768 encapsulation key (1184 bytes) in it is longer than
/// this; one without is some 300 bytes.
const LONGER_THAN_A_CLASSICAL_HELLO: usize = 1184;

/// The classical groups of rustls' aws-lc-rs provider.
fn classical_groups() -> Vec<&'static dyn SupportedKxGroup> {
    vec![
        aws_lc_rs::kx_group::X25519,
        aws_lc_rs::kx_group::SECP256R1,
        aws_lc_rs::kx_group::SECP384R1,
    ]
}

/// The aws-lc-rs server's groups, post-quantum first, as its `prefer-post-quantum`
/// feature orders them.
fn post_quantum_first_groups() -> Vec<&'static dyn SupportedKxGroup> {
    let mut groups = vec![aws_lc_rs::kx_group::X25519MLKEM768];
    groups.extend(classical_groups());
    groups
}

mod native {
    use super::*;

    #[test]
    fn a_post_quantum_server_negotiates_x25519mlkem768_by_default() {
        let server = RustlsServer::start(&post_quantum_first_groups());
        let (group, page) =
            core_get(server.port, &client_config(true)).expect("the handshake succeeds");
        assert_eq!(group.as_deref(), Some("X25519MLKEM768"));
        assert!(page.ends_with("group: X25519MLKEM768\n"), "{page}");
        let seen = server.seen();
        assert_eq!(seen.group, Some(NamedGroup::X25519MLKEM768));
        assert_eq!(seen.kind, Some(HandshakeKind::Full));
    }

    #[test]
    fn a_classical_server_costs_no_hello_retry() {
        let server = RustlsServer::start(&classical_groups());
        let (group, _) = core_get(server.port, &client_config(true)).expect("handshake");
        assert_eq!(group.as_deref(), Some("X25519"));
        let seen = server.seen();
        assert_eq!(seen.group, Some(NamedGroup::X25519));
        assert_eq!(seen.kind, Some(HandshakeKind::Full));
    }

    #[test]
    fn a_server_with_a_group_the_client_sent_no_share_for_asks_again() {
        // What a HelloRetryRequest looks like from the server, so that the checks of
        // `Full` above can fail: P-256 is offered, but its share is not sent.
        let server = RustlsServer::start(&[aws_lc_rs::kx_group::SECP256R1]);
        let (group, _) = core_get(server.port, &client_config(true)).expect("handshake");
        assert_eq!(group.as_deref(), Some("secp256r1"));
        let seen = server.seen();
        assert_eq!(seen.kind, Some(HandshakeKind::FullWithHelloRetryRequest));
    }

    #[test]
    fn post_quantum_off_offers_no_ml_kem() {
        let server = RustlsServer::start(&post_quantum_first_groups());
        let (group, _) = core_get(server.port, &client_config(false)).expect("handshake");
        assert_eq!(group.as_deref(), Some("X25519"));
        assert_eq!(server.seen().group, Some(NamedGroup::X25519));

        // A server with ML-KEM only then has nothing in common with the client.
        let server = RustlsServer::start(&[aws_lc_rs::kx_group::X25519MLKEM768]);
        let err = core_get(server.port, &client_config(false)).expect_err("no common group");
        assert_eq!(err.code(), "peer-alert", "{err}");
        assert!(err.to_string().contains("handshake_failure"), "{err}");
        let failure = server.failure();
        assert!(failure.contains("NoKxGroupsInCommon"), "{failure}");
    }

    #[test]
    fn openssl_3_0_negotiates_x25519_from_the_first_client_hello() {
        let server = openssl_tls13_server();
        let (group, page) =
            core_get(server.port, &client_config(true)).expect("the handshake succeeds");
        common::assert_www_page(page.as_bytes());
        assert_eq!(group.as_deref(), Some("X25519"));
        let log = server.log();
        let hellos = client_hello_lengths(&log);
        assert_eq!(hellos.len(), 1, "one ClientHello, no retry:\n{log}");
        assert!(
            hellos[0] > LONGER_THAN_A_CLASSICAL_HELLO,
            "the ClientHello carries the ML-KEM share: {hellos:?}"
        );
        assert!(!log.contains("HelloRetryRequest"), "{log}");
    }

    #[test]
    fn post_quantum_off_sends_a_classical_client_hello() {
        let server = openssl_tls13_server();
        let (group, _) = core_get(server.port, &client_config(false)).expect("handshake");
        assert_eq!(group.as_deref(), Some("X25519"));
        let hellos = client_hello_lengths(&server.log());
        assert_eq!(hellos.len(), 1, "{hellos:?}");
        assert!(hellos[0] < 600, "a classical ClientHello: {hellos:?}");
    }

    #[test]
    fn the_command_names_the_group() {
        let server = RustlsServer::start(&post_quantum_first_groups());
        let mut args = common::client_args(server.port, "localhost", &pki().ecdsa.root_file);
        args.extend([
            "--request".to_owned(),
            "GET / HTTP/1.0\\r\\n\\r\\n".to_owned(),
        ]);
        let out = common::run_tls_client(&args, None);
        assert!(out.status.success(), "{}", out.stderr);
        assert!(
            out.stderr.contains("Group     : X25519MLKEM768"),
            "{}",
            out.stderr
        );
        assert!(
            out.stdout.ends_with("group: X25519MLKEM768\n"),
            "{}",
            out.stdout
        );
        assert_eq!(server.seen().group, Some(NamedGroup::X25519MLKEM768));
    }

    #[test]
    fn the_command_can_turn_it_off() {
        let server = RustlsServer::start(&post_quantum_first_groups());
        let mut args = common::client_args(server.port, "localhost", &pki().ecdsa.root_file);
        args.extend([
            "--no-post-quantum".to_owned(),
            "--request".to_owned(),
            "GET / HTTP/1.0\\r\\n\\r\\n".to_owned(),
        ]);
        let out = common::run_tls_client(&args, None);
        assert!(out.status.success(), "{}", out.stderr);
        assert!(
            out.stderr.contains("Group     : X25519\n"),
            "{}",
            out.stderr
        );
        assert_eq!(server.seen().group, Some(NamedGroup::X25519));
    }
}

mod wasmtime {
    use super::*;

    /// `tls-client.wasm` under wasmtime to `port` as `localhost`, trusting the test root.
    fn run_wasm(port: u16) -> (bool, String, String) {
        let root = &pki().ecdsa.root_file;
        let dir = root.parent().unwrap_or(Path::new("/"));
        let name = root
            .file_name()
            .and_then(|n| n.to_str())
            .expect("a file name");
        let args: Vec<String> = [
            "--connect",
            &SocketAddr::from((Ipv4Addr::LOCALHOST, port)).to_string(),
            "--servername",
            "localhost",
            "--cafile",
            &format!("/certs/{name}"),
            "--no-default-roots",
            "--timeout",
            "10",
            "--request",
            "GET / HTTP/1.0\\r\\n\\r\\n",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let out = common::run_tls_client_wasm(dir, &args);
        (out.status.success(), out.stdout, out.stderr)
    }

    #[test]
    #[ignore = "needs tls-client.wasm: cargo xtask test runs it"]
    fn a_post_quantum_server_negotiates_x25519mlkem768() {
        let server = RustlsServer::start(&post_quantum_first_groups());
        let (ok, stdout, stderr) = run_wasm(server.port);
        assert!(ok, "{stderr}");
        assert!(stderr.contains("Group     : X25519MLKEM768"), "{stderr}");
        assert!(stdout.ends_with("group: X25519MLKEM768\n"), "{stdout}");
        let seen = server.seen();
        assert_eq!(seen.group, Some(NamedGroup::X25519MLKEM768));
        assert_eq!(seen.kind, Some(HandshakeKind::Full));
    }

    #[test]
    #[ignore = "needs tls-client.wasm: cargo xtask test runs it"]
    fn a_classical_server_costs_no_hello_retry() {
        let server = RustlsServer::start(&classical_groups());
        let (ok, _, stderr) = run_wasm(server.port);
        assert!(ok, "{stderr}");
        assert!(stderr.contains("Group     : X25519\n"), "{stderr}");
        assert_eq!(server.seen().kind, Some(HandshakeKind::Full));
    }
}
