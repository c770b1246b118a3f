//! What the fuzz targets share: a fixed test PKI, client and server configurations, an
//! in-memory handshake with a rustls server, a sealer that encrypts arbitrary records
//! with a finished server's keys, and a host that drives a [`TlsClient`] while checking
//! the core's contract on every call.
//!
//! The contract checked here is the one a host relies on to never hang and never
//! misread: `WantWrite` comes with ciphertext to send; `WantRead` never comes after EOF,
//! nor while the core refuses bytes that a `read` would make room for; errors are sticky
//! and classified consistently; buffers stay bounded; and what the client reads is
//! exactly what the server sent, when nobody tampered with it.
//!
//! [`Host`] drives the [`TlsClient`] call by call rather than through `wasm_tls::Stream`
//! or `wasm_tls::TlsPipe`: those hold the pump's rules so that hosts need not, and the
//! point here is to check, on every call, the contract those rules rest on.

use std::io::{Read, Write};
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};
use wasm_tls::{Config, Error, FixedClock, Status, TlsClient, TlsVersion, BUFFER_LIMIT};

/// The test root (ECDSA P-256) that issued both server certificates.
pub const ROOT_PEM: &str = include_str!("../pki/root.pem");
const ECDSA_CERT: &str = include_str!("../pki/ecdsa.pem");
const ECDSA_KEY: &str = include_str!("../pki/ecdsa.key");
const RSA_CERT: &str = include_str!("../pki/rsa.pem");
const RSA_KEY: &str = include_str!("../pki/rsa.key");

/// The validation time: inside the fixture certificates' validity (2026 to 2125).
pub const NOW: u64 = 1_830_000_000;

/// Room the core may hold beyond [`BUFFER_LIMIT`] for record overhead, alerts and
/// key updates queued alongside application data.
pub const CIPHERTEXT_SLACK: usize = 1024;
/// rustls stops taking records at 16 KiB of unread plaintext; one more record may land.
pub const PLAINTEXT_BOUND: usize = 2 * 16 * 1024 + 2048;

/// What the server is made of.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerOptions {
    /// TLS 1.2 only (else TLS 1.3 only).
    pub tls12: bool,
    /// An RSA certificate (else ECDSA).
    pub rsa: bool,
    /// Only P-256 for key exchange, so a TLS 1.3 client's X25519 share gets a
    /// HelloRetryRequest.
    pub hrr: bool,
    /// Ask for a client certificate (optional, so the handshake still completes).
    pub client_auth: bool,
    /// Allow `dangerous_extract_secrets`, for sealing records after the handshake.
    pub extract: bool,
}

impl ServerOptions {
    /// Options from the low five bits of `bits`.
    pub fn from_bits(bits: u8) -> Self {
        Self {
            tls12: bits & 1 != 0,
            rsa: bits & 2 != 0,
            hrr: bits & 4 != 0,
            client_auth: bits & 8 != 0,
            extract: bits & 16 != 0,
        }
    }

    fn index(self) -> usize {
        usize::from(self.tls12)
            | usize::from(self.rsa) << 1
            | usize::from(self.hrr) << 2
            | usize::from(self.client_auth) << 3
            | usize::from(self.extract) << 4
    }
}

fn certs(pem: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .expect("fixture certificates parse")
}

fn make_server_config(opts: ServerOptions) -> Arc<ServerConfig> {
    let mut provider = rustls::crypto::ring::default_provider();
    if opts.hrr {
        provider.kx_groups = vec![rustls::crypto::ring::kx_group::SECP256R1];
    }
    let versions: &[&'static rustls::SupportedProtocolVersion] = if opts.tls12 {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let builder = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .expect("protocol versions");
    let builder = if opts.client_auth {
        let mut roots = RootCertStore::empty();
        for cert in certs(ROOT_PEM) {
            roots.add(cert).expect("fixture root");
        }
        let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
            .allow_unauthenticated()
            .build()
            .expect("client verifier");
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let (cert, key) = if opts.rsa {
        (RSA_CERT, RSA_KEY)
    } else {
        (ECDSA_CERT, ECDSA_KEY)
    };
    let mut chain = certs(cert);
    chain.extend(certs(ROOT_PEM));
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("fixture key");
    let mut config = builder
        .with_single_cert(chain, key)
        .expect("server certificate");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.enable_secret_extraction = opts.extract;
    Arc::new(config)
}

/// A server configuration, made once per set of options.
pub fn server_config(opts: ServerOptions) -> Arc<ServerConfig> {
    static CONFIGS: [OnceLock<Arc<ServerConfig>>; 32] = [const { OnceLock::new() }; 32];
    CONFIGS[opts.index()]
        .get_or_init(|| make_server_config(opts))
        .clone()
}

/// A new server connection.
pub fn server(opts: ServerOptions) -> ServerConnection {
    ServerConnection::new(server_config(opts)).expect("server connection")
}

/// A client configuration for `localhost` trusting only the fixture root, at [`NOW`],
/// without resumption (so that runs do not depend on each other).
pub fn client_config(alpn: bool) -> Config {
    static CONFIGS: [OnceLock<Config>; 2] = [const { OnceLock::new() }; 2];
    CONFIGS[usize::from(alpn)]
        .get_or_init(|| {
            let mut builder = Config::builder("localhost")
                .without_bundled_roots()
                .add_roots_pem(ROOT_PEM)
                .clock(Arc::new(FixedClock(NOW)))
                .resumption(false)
                .min_version(TlsVersion::Tls12)
                .max_version(TlsVersion::Tls13);
            if alpn {
                builder = builder.alpn(&["h2", "http/1.1"]);
            }
            builder.build().expect("client configuration")
        })
        .clone()
}

/// A new client.
pub fn client(alpn: bool) -> TlsClient {
    TlsClient::new(&client_config(alpn)).expect("client")
}

/// Hands `bytes` to the server and processes them; returns false if the server failed.
/// Whatever the server answers is appended to `out`, and the plaintext it received to
/// `plaintext` (read as it arrives, so that the server never refuses bytes).
pub fn server_receive(
    server: &mut ServerConnection,
    mut bytes: &[u8],
    out: &mut Vec<u8>,
    plaintext: &mut Vec<u8>,
) -> bool {
    let mut ok = true;
    while !bytes.is_empty() {
        match server.read_tls(&mut bytes) {
            Ok(0) => break,
            Ok(_) => {}
            // Its plaintext buffer is full: read it out and offer the rest again.
            Err(_) => {
                let before = plaintext.len();
                server_plaintext(server, plaintext);
                if plaintext.len() == before {
                    break;
                }
                continue;
            }
        }
        if let Err(err) = server.process_new_packets() {
            if std::env::var_os("WASM_TLS_FUZZ_TRACE").is_some() {
                eprintln!("server failed: {err:?}");
            }
            ok = false;
            break;
        }
        server_plaintext(server, plaintext);
    }
    server_send(server, out);
    ok
}

/// Appends everything the server has queued to `out`.
pub fn server_send(server: &mut ServerConnection, out: &mut Vec<u8>) {
    while server.wants_write() {
        match server.write_tls(out) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

/// Reads all the plaintext the server has received into `into`.
pub fn server_plaintext(server: &mut ServerConnection, into: &mut Vec<u8>) {
    let mut buf = [0; 4096];
    loop {
        match server.reader().read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => into.extend_from_slice(&buf[..n]),
        }
    }
}

/// Runs a complete handshake between `client` and `server` in memory. Returns the
/// server's bytes sent after the client's last flight (TLS 1.3 session tickets), which
/// the client has not seen yet; `None` if the handshake failed (it never should).
pub fn handshake(client: &mut TlsClient, server: &mut ServerConnection) -> Option<Vec<u8>> {
    for _ in 0..32 {
        match client.connect() {
            Ok(Status::Done(())) => {
                let mut rest = Vec::new();
                server_send(server, &mut rest);
                return (!server.is_handshaking()).then_some(rest);
            }
            Ok(Status::WantWrite) => {
                let flight = client.take_ciphertext();
                let mut answer = Vec::new();
                if !server_receive(server, &flight, &mut answer, &mut Vec::new()) {
                    return None;
                }
                if !answer.is_empty() && client.push_ciphertext(&answer) != answer.len() {
                    return None;
                }
            }
            Ok(Status::WantRead) => {
                let mut answer = Vec::new();
                server_send(server, &mut answer);
                if answer.is_empty() || client.push_ciphertext(&answer) != answer.len() {
                    return None;
                }
            }
            Ok(Status::Closed) | Err(_) => return None,
        }
    }
    None
}

/// Encrypts arbitrary records with a finished server's keys (made with
/// [`ServerOptions::extract`]).
pub use wasm_tls_test_kit::sealer::Sealer;

/// Splits a byte stream into chunks whose sizes come from a small generator seeded by
/// the input, so that the fuzzer controls how records straddle `push_ciphertext` calls.
pub struct Chunker {
    state: u32,
    max: usize,
}

impl Chunker {
    /// `seed` picks both the sequence and the largest chunk (1 byte to 20 KB).
    pub fn new(seed: u8) -> Self {
        const MAX: [usize; 8] = [1, 2, 5, 13, 64, 700, 4096, 20_000];
        Self {
            state: u32::from(seed).wrapping_mul(2_654_435_761) | 1,
            max: MAX[usize::from(seed & 7)],
        }
    }

    /// The next chunk size, 1 to the maximum.
    pub fn next_size(&mut self) -> usize {
        // xorshift32
        self.state ^= self.state << 13;
        self.state ^= self.state >> 17;
        self.state ^= self.state << 5;
        1 + (self.state as usize) % self.max
    }
}

/// Asserts the result of a call is consistent with what the core reports about itself,
/// and that a fatal error is sticky across the four calls. Returns the result.
pub fn checked<T>(
    tls: &mut TlsClient,
    result: Result<Status<T>, Error>,
) -> Result<Status<T>, Error> {
    check(tls, result, false)
}

/// [`checked`] for `read`, which may still deliver the plaintext that arrived intact
/// before the connection failed (then the error).
pub fn checked_read(
    tls: &mut TlsClient,
    result: Result<Status<usize>, Error>,
) -> Result<Status<usize>, Error> {
    check(tls, result, true)
}

fn check<T>(
    tls: &mut TlsClient,
    result: Result<Status<T>, Error>,
    is_read: bool,
) -> Result<Status<T>, Error> {
    match &result {
        Ok(status) => {
            assert_eq!(tls.ssl_error(), status.ssl_error(), "ssl_error after Ok");
            if matches!(status, Status::WantWrite) {
                assert!(
                    tls.pending_ciphertext() > 0,
                    "want-write with nothing to send"
                );
            }
        }
        Err(err) => {
            assert_eq!(tls.ssl_error(), err.ssl_error(), "ssl_error after {err}");
            assert!(!err.code().is_empty());
            let _ = err.to_string();
            if err.is_fatal() {
                assert_eq!(tls.failure(), Some(err), "a fatal error is not recorded");
                assert_sticky(tls, err);
            }
        }
    }
    if let Some(failure) = tls.failure() {
        if let (Ok(Status::Done(_)), false) = (&result, is_read) {
            panic!("a call succeeded after the connection failed with {failure}");
        }
    }
    assert!(
        tls.pending_ciphertext() <= BUFFER_LIMIT + CIPHERTEXT_SLACK,
        "unsent ciphertext grew to {}",
        tls.pending_ciphertext()
    );
    assert!(
        tls.pending_plaintext() <= PLAINTEXT_BOUND,
        "unread plaintext grew to {}",
        tls.pending_plaintext()
    );
    if let Ok(Status::Done(_)) = &result {
        assert!(
            tls.handshake_info().is_some(),
            "done, but no handshake information"
        );
    }
    result
}

/// Every call on a failed connection gives its error again.
pub fn assert_sticky(tls: &mut TlsClient, err: &Error) {
    let mut buf = [0; 8];
    assert_eq!(
        tls.connect().err().as_ref(),
        Some(err),
        "connect is not sticky"
    );
    // Plaintext that arrived before the failure is read first (bounded), then the error.
    let mut read = tls.read(&mut buf);
    for _ in 0..PLAINTEXT_BOUND {
        match read {
            Ok(Status::Done(n)) if n > 0 => read = tls.read(&mut buf),
            _ => break,
        }
    }
    assert_eq!(read.err().as_ref(), Some(err), "read is not sticky");
    assert_eq!(
        tls.write(b"x").err().as_ref(),
        Some(err),
        "write is not sticky"
    );
    assert_eq!(
        tls.shutdown().err().as_ref(),
        Some(err),
        "shutdown is not sticky"
    );
    assert_eq!(tls.ssl_error(), err.ssl_error());
    // Bytes after a failure are taken and dropped.
    assert_eq!(tls.push_ciphertext(&[0x17, 3, 3, 0, 1, 0]), 6);
}

/// A host that pumps a client from pushed server bytes, discarding what the client
/// sends, and checks the contract on every call.
pub struct Host {
    /// The client.
    pub tls: TlsClient,
    /// Whether `connect` has returned `Done`.
    pub connected: bool,
    /// The error the connection failed with.
    pub error: Option<Error>,
    /// Whether the peer's close_notify was reported.
    pub closed: bool,
    /// Whether EOF was pushed.
    pub eof: bool,
    /// The size of the buffer passed to `read`.
    pub read_size: usize,
    /// Plaintext read so far (counted, not kept).
    pub received: usize,
    buf: Vec<u8>,
}

impl Host {
    /// A host for `tls`, reading `read_size` bytes at a time (at least 1).
    pub fn new(tls: TlsClient, read_size: usize) -> Self {
        let read_size = read_size.max(1);
        Self {
            tls,
            connected: false,
            error: None,
            closed: false,
            eof: false,
            read_size,
            received: 0,
            buf: vec![0; read_size],
        }
    }

    /// Whether the connection has ended (failed or closed by the peer).
    pub fn ended(&self) -> bool {
        self.error.is_some() || self.closed
    }

    /// Pushes `bytes`, reading whenever the core takes less than all of them. Asserts
    /// that a refusal always leaves something to read, and that reading makes room.
    pub fn push(&mut self, mut bytes: &[u8]) {
        let mut rounds = 0;
        while !bytes.is_empty() {
            let taken = self.tls.push_ciphertext(bytes);
            assert!(taken <= bytes.len());
            if taken < bytes.len() {
                assert!(
                    self.tls.pending_plaintext() > 0,
                    "push_ciphertext refused bytes with no plaintext to read: the host would hang"
                );
                let before = self.received;
                self.settle();
                assert!(
                    self.received > before || self.ended(),
                    "bytes refused, and reading made no progress"
                );
            } else {
                self.settle();
            }
            bytes = &bytes[taken..];
            rounds += 1;
            assert!(rounds < 100_000, "push never completed");
        }
    }

    /// Pushes EOF and settles; the core must not ask for more input afterwards.
    pub fn push_eof(&mut self) {
        self.eof = true;
        self.tls.push_eof();
        self.settle();
    }

    /// Calls `connect` (during the handshake) or `read` (after) until the core needs
    /// input or the connection ends.
    pub fn settle(&mut self) {
        for _ in 0..200_000 {
            if self.ended() {
                return;
            }
            if !self.connected {
                let result = self.tls.connect();
                match checked(&mut self.tls, result) {
                    Ok(Status::Done(())) => {
                        assert!(self.tls.handshake_info().is_some());
                        self.connected = true;
                    }
                    Ok(Status::WantWrite) => {
                        let out = self.tls.take_ciphertext();
                        assert!(!out.is_empty());
                    }
                    Ok(Status::WantRead) => {
                        assert!(!self.eof, "connect wants to read after EOF");
                        return;
                    }
                    Ok(Status::Closed) => self.closed = true,
                    Err(err) => self.fail(err),
                }
            } else {
                let result = self.tls.read(&mut self.buf);
                match checked_read(&mut self.tls, result) {
                    Ok(Status::Done(n)) => {
                        assert!(n > 0 && n <= self.read_size, "read returned {n}");
                        self.received += n;
                    }
                    Ok(Status::WantWrite) => {
                        let out = self.tls.take_ciphertext();
                        assert!(!out.is_empty());
                    }
                    Ok(Status::WantRead) => {
                        assert!(!self.eof, "read wants to read after EOF");
                        return;
                    }
                    Ok(Status::Closed) => {
                        assert!(self.tls.peer_closed());
                        self.closed = true;
                    }
                    Err(err) => self.fail(err),
                }
            }
        }
        panic!("the core never asked for input and never ended");
    }

    fn fail(&mut self, err: Error) {
        assert!(
            err.is_fatal(),
            "a misuse error from a well-behaved host: {err}"
        );
        self.error = Some(err);
    }

    /// Writes a little application data if the connection is up (and sends it nowhere).
    pub fn write_some(&mut self, data: &[u8]) {
        if !self.connected || self.ended() {
            return;
        }
        let result = self.tls.write(data);
        match checked(&mut self.tls, result) {
            Ok(Status::Done(n)) => assert!(n > 0 && n <= data.len()),
            Ok(Status::WantWrite) => {}
            Ok(other) => panic!("write after the handshake returned {other:?}"),
            Err(err) => self.fail(err),
        }
        let _ = self.tls.take_ciphertext();
    }

    /// Sends close_notify if the connection is up.
    pub fn shutdown(&mut self) {
        if !self.connected || self.error.is_some() {
            return;
        }
        for _ in 0..4 {
            let result = self.tls.shutdown();
            match checked(&mut self.tls, result) {
                Ok(Status::WantWrite) => {
                    assert!(!self.tls.take_ciphertext().is_empty());
                }
                Ok(Status::Done(_)) => {
                    // Writing after shutdown is refused, without failing the connection.
                    let result = self.tls.write(b"late");
                    match checked(&mut self.tls, result) {
                        Err(err) => assert_eq!(err.code(), "invalid-state", "{err}"),
                        Ok(other) => panic!("write after shutdown returned {other:?}"),
                    }
                    return;
                }
                Ok(other) => panic!("shutdown returned {other:?}"),
                Err(err) => {
                    self.fail(err);
                    return;
                }
            }
        }
        panic!("shutdown kept asking to write");
    }
}

/// Writes `data` into the server and sends it all to `out`; returns how much it took.
pub fn server_write(server: &mut ServerConnection, data: &[u8], out: &mut Vec<u8>) -> usize {
    let taken = server.writer().write(data).unwrap_or(0);
    server_send(server, out);
    taken
}
