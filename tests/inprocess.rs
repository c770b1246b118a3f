//! Handshakes and data between [`TlsClient`] and an in-process rustls server, with the
//! ciphertext moved between them in memory in chunks of chosen sizes.

use std::io::{Read, Write};
use std::sync::{Arc, LazyLock, Mutex};

use proptest::prelude::*;
use rcgen::ExtendedKeyUsagePurpose;
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection};
use wasm_tls::{
    Config, ConfigBuilder, Error, HandshakeInfo, Shutdown, SslError, Status, TlsClient, TlsVersion,
    BUFFER_LIMIT,
};
use wasm_tls_test_kit::pki::{self, ecdsa_p256_key, Ca};

const SERVER_NAME: &str = "server.test";

/// A CA, a leaf it issued for [`SERVER_NAME`] with the server's key, and a client
/// certificate it issued (all ECDSA P-256).
struct Pki {
    ca_pem: String,
    chain: Vec<CertificateDer<'static>>,
    key: PrivatePkcs8KeyDer<'static>,
    client_cert_pem: String,
    client_key_pem: String,
}

static PKI: LazyLock<Pki> = LazyLock::new(|| {
    let key = || ecdsa_p256_key().expect("a P-256 key");
    let ca = Ca::root("wasm-tls test CA", key()).expect("CA certificate");
    let leaf_params = pki::server_leaf_params(SERVER_NAME, &[SERVER_NAME]).expect("params");
    let leaf = ca.issue(&leaf_params, key()).expect("leaf certificate");
    let client_params = pki::leaf_params(
        "wasm-tls test client",
        &[],
        ExtendedKeyUsagePurpose::ClientAuth,
    )
    .expect("params");
    let client = ca.issue(&client_params, key()).expect("client certificate");
    Pki {
        ca_pem: ca.pem.clone(),
        chain: vec![
            CertificateDer::from(leaf.der.clone()),
            CertificateDer::from(ca.der.clone()),
        ],
        key: PrivatePkcs8KeyDer::from(leaf.key_der.clone()),
        client_cert_pem: client.pem,
        client_key_pem: client.key_pem,
    }
});

/// A server for both TLS 1.2 and 1.3 that prefers ALPN `http/1.1`, with rustls'
/// default session cache (so it resumes sessions).
static SERVER_CONFIG: LazyLock<Arc<ServerConfig>> = LazyLock::new(|| {
    let mut config = server_config(&[&rustls::version::TLS13, &rustls::version::TLS12]);
    config.alpn_protocols = vec![b"http/1.1".to_vec(), b"h2".to_vec()];
    Arc::new(config)
});

fn server_config(versions: &[&'static rustls::SupportedProtocolVersion]) -> ServerConfig {
    wasm_tls_test_kit::server::server_config(
        PKI.chain.clone(),
        PKI.key.clone_key().into(),
        versions,
    )
    .expect("server configuration")
}

/// A client configuration trusting only the test CA.
fn client_builder() -> ConfigBuilder {
    Config::builder(SERVER_NAME)
        .without_bundled_roots()
        .add_roots_pem(&PKI.ca_pem)
}

fn client_config() -> Config {
    client_builder().build().expect("client config")
}

/// Deterministic pseudo-random bytes (xorshift64*), so that payloads shrink well.
fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

/// How ciphertext is cut up on its way from one side to the other.
#[derive(Debug, Clone)]
enum Chunking {
    /// Everything that is waiting, in one piece.
    Whole,
    /// One byte at a time.
    OneByte,
    /// These sizes, in turn, over and over (a size of 0 counts as 1).
    Sizes(Vec<usize>),
}

struct Chunker {
    policy: Chunking,
    turn: usize,
}

impl Chunker {
    fn new(policy: Chunking) -> Self {
        Self { policy, turn: 0 }
    }

    fn next_size(&mut self) -> usize {
        match &self.policy {
            Chunking::Whole => usize::MAX,
            Chunking::OneByte => 1,
            Chunking::Sizes(sizes) if sizes.is_empty() => usize::MAX,
            Chunking::Sizes(sizes) => {
                let size = sizes[self.turn % sizes.len()];
                self.turn += 1;
                size.max(1)
            }
        }
    }
}

/// A client and a server joined by two in-memory pipes.
struct Pair {
    client: TlsClient,
    server: ServerConnection,
    to_server: Chunker,
    to_client: Chunker,
    /// Ciphertext the server wrote; `in_flight_to_client[delivered..]` is not taken yet.
    in_flight_to_client: Vec<u8>,
    delivered: usize,
    /// Plaintext the server received.
    server_received: Vec<u8>,
    /// Plaintext the server is to send once its handshake is complete.
    server_outbox: Vec<u8>,
    /// Bytes moved in either direction so far, to detect a stall.
    moved: usize,
    /// Whether the server may fail (else its failure fails the test).
    server_may_fail: bool,
    /// The server's failure; its alert is then on its way to the client.
    server_error: Option<rustls::Error>,
}

impl Pair {
    fn new(config: &Config, to_server: Chunking, to_client: Chunking) -> Self {
        Self::with_server(config, SERVER_CONFIG.clone(), to_server, to_client)
    }

    fn with_server(
        config: &Config,
        server_config: Arc<ServerConfig>,
        to_server: Chunking,
        to_client: Chunking,
    ) -> Self {
        Self {
            client: TlsClient::new(config).expect("client"),
            server: ServerConnection::new(server_config).expect("server"),
            to_server: Chunker::new(to_server),
            to_client: Chunker::new(to_client),
            in_flight_to_client: Vec::new(),
            delivered: 0,
            server_received: Vec::new(),
            server_outbox: Vec::new(),
            moved: 0,
            server_may_fail: false,
            server_error: None,
        }
    }

    /// Moves one chunk of the client's pending ciphertext into the server, which
    /// processes it. Returns how many bytes moved.
    fn step_to_server(&mut self) -> usize {
        let size = self
            .to_server
            .next_size()
            .min(self.client.pending_ciphertext());
        if size == 0 {
            return 0;
        }
        let mut chunk = vec![0; size];
        assert_eq!(self.client.pull_ciphertext(&mut chunk), size);
        self.feed_server(&chunk);
        self.moved += size;
        size
    }

    /// Gives the server ciphertext, which it processes.
    fn feed_server(&mut self, mut rest: &[u8]) {
        while !rest.is_empty() && self.server_error.is_none() {
            if self.server.read_tls(&mut rest).expect("server read_tls") == 0 {
                // The server has processed close_notify and reads nothing more.
                break;
            }
            match self.server.process_new_packets() {
                Ok(_) => self.server_read_plaintext(),
                Err(err) if self.server_may_fail => self.server_error = Some(err),
                Err(err) => panic!("the server refused the client's bytes: {err:?}"),
            }
        }
    }

    fn server_read_plaintext(&mut self) {
        let mut buf = [0; 16 * 1024];
        loop {
            match self.server.reader().read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.server_received.extend_from_slice(&buf[..n]),
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(err) => panic!("server read: {err}"),
            }
        }
    }

    /// Lets the server encrypt what it has to send and collects its ciphertext.
    fn server_flush(&mut self) {
        if !self.server.is_handshaking() && !self.server_outbox.is_empty() {
            let n = self
                .server
                .writer()
                .write(&self.server_outbox)
                .expect("server write");
            self.server_outbox.drain(..n);
        }
        while self.server.wants_write() {
            self.server
                .write_tls(&mut self.in_flight_to_client)
                .expect("server write_tls");
        }
    }

    /// Pushes one chunk of the server's ciphertext into the client. Returns how many
    /// bytes the client took.
    fn step_to_client(&mut self) -> usize {
        self.server_flush();
        let in_flight = &self.in_flight_to_client[self.delivered..];
        let size = self.to_client.next_size().min(in_flight.len());
        if size == 0 {
            return 0;
        }
        let taken = self.client.push_ciphertext(&in_flight[..size]);
        assert!(taken <= size, "push_ciphertext took more than it was given");
        self.delivered += taken;
        if self.delivered == self.in_flight_to_client.len() {
            self.in_flight_to_client.clear();
            self.delivered = 0;
        }
        self.moved += taken;
        taken
    }

    /// Takes the server's ciphertext that the client has not been given yet.
    fn take_in_flight(&mut self) -> Vec<u8> {
        let mut in_flight = std::mem::take(&mut self.in_flight_to_client);
        in_flight.drain(..self.delivered);
        self.delivered = 0;
        in_flight
    }

    /// One chunk each way. Returns whether anything moved.
    fn pump(&mut self) -> bool {
        let to_server = self.step_to_server();
        let to_client = self.step_to_client();
        to_server + to_client > 0
    }

    /// Calls `op` and serves its WantWrite and WantRead until it returns something
    /// else, or WantRead when nothing more can move.
    fn drive<T>(
        &mut self,
        mut op: impl FnMut(&mut TlsClient) -> Result<Status<T>, Error>,
    ) -> Result<Status<T>, Error> {
        loop {
            match op(&mut self.client)? {
                Status::WantWrite => {
                    assert!(
                        self.step_to_server() > 0,
                        "WantWrite with no ciphertext pending"
                    );
                }
                Status::WantRead => {
                    if !self.pump() {
                        return Ok(Status::WantRead);
                    }
                }
                done_or_closed => return Ok(done_or_closed),
            }
        }
    }

    fn handshake(&mut self) -> HandshakeInfo {
        assert_eq!(self.drive(TlsClient::connect), Ok(Status::Done(())));
        self.client.handshake_info().expect("handshake info")
    }

    /// Sends all of `data` from the client and waits until the server has it.
    fn client_send(&mut self, data: &[u8]) {
        let start = self.server_received.len();
        let mut written = 0;
        while written < data.len() {
            match self.drive(|c| c.write(&data[written..])) {
                Ok(Status::Done(n)) => written += n,
                other => panic!("write: {other:?}"),
            }
        }
        while self.step_to_server() > 0 {}
        assert_eq!(&self.server_received[start..], data);
    }

    /// Reads until the client has `len` bytes.
    fn client_receive(&mut self, len: usize) -> Vec<u8> {
        let mut received = Vec::with_capacity(len);
        let mut buf = vec![0; 8 * 1024];
        while received.len() < len {
            match self.drive(|c| c.read(&mut buf)) {
                Ok(Status::Done(n)) => received.extend_from_slice(&buf[..n]),
                other => panic!("read after {} of {len} bytes: {other:?}", received.len()),
            }
        }
        received
    }

    /// Reads everything that can be read now; returns it and what the last read said.
    fn client_read_all(&mut self) -> (Vec<u8>, Result<Status<usize>, Error>) {
        let mut received = Vec::new();
        let mut buf = vec![0; 8 * 1024];
        loop {
            match self.drive(|c| c.read(&mut buf)) {
                Ok(Status::Done(n)) => received.extend_from_slice(&buf[..n]),
                other => return (received, other),
            }
        }
    }

    /// Delivers everything the server has written to the client, with no client call
    /// in between.
    fn deliver_all_to_client(&mut self) {
        while self.step_to_client() > 0 {}
        assert!(
            self.take_in_flight().is_empty(),
            "the client refused ciphertext"
        );
    }
}

/// The client's side of a random interleaving.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// `read` into a buffer of this size.
    Read(usize),
    /// `write` at most this many bytes of the request.
    Write(usize),
    /// Move one chunk each way without a client call.
    Pump,
}

struct Outcome {
    info: HandshakeInfo,
    server_received: Vec<u8>,
    client_received: Vec<u8>,
}

/// Sends `request` from the client and `response` from the server at the same time,
/// the client calling `read` and `write` in the order `ops` gives (cyclically), from
/// the start: the handshake is driven by those calls.
fn exchange(
    config: &Config,
    to_server: Chunking,
    to_client: Chunking,
    ops: &[Op],
    request: &[u8],
    response: &[u8],
) -> Outcome {
    let mut pair = Pair::new(config, to_server, to_client);
    pair.server_outbox = response.to_vec();
    // Make sure the cycle both reads and writes.
    let ops: Vec<Op> = ops
        .iter()
        .copied()
        .chain([Op::Read(4096), Op::Write(4096)])
        .collect();
    let mut written = 0;
    let mut client_received = Vec::new();
    let mut buf = vec![0; 64 * 1024];
    let mut idle_steps = 0;
    for step in 0.. {
        let done = !pair.client.is_handshaking()
            && written == request.len()
            && pair.server_received.len() == request.len()
            && client_received.len() == response.len();
        if done {
            break;
        }
        let before = (pair.moved, written, client_received.len());
        let status = match ops[step % ops.len()] {
            Op::Read(size) => pair.client.read(&mut buf[..size]).map(|status| {
                if let Status::Done(n) = status {
                    client_received.extend_from_slice(&buf[..n]);
                }
                status_kind(&status)
            }),
            Op::Write(size) if written < request.len() => {
                let end = request.len().min(written + size);
                pair.client.write(&request[written..end]).map(|status| {
                    if let Status::Done(n) = status {
                        written += n;
                    }
                    status_kind(&status)
                })
            }
            Op::Write(_) | Op::Pump => {
                pair.pump();
                Ok(Status::Done(()))
            }
        };
        match status {
            Ok(Status::WantWrite) => {
                assert!(
                    pair.step_to_server() > 0,
                    "WantWrite with no ciphertext pending"
                );
            }
            Ok(Status::WantRead) => {
                pair.pump();
            }
            Ok(Status::Done(())) => {}
            other => panic!("step {step}: {other:?}"),
        }
        if before == (pair.moved, written, client_received.len()) {
            idle_steps += 1;
            assert!(
                idle_steps <= 2 * ops.len() + 4,
                "stalled: written {written}/{}, server has {}/{}, client has {}/{}",
                request.len(),
                pair.server_received.len(),
                request.len(),
                client_received.len(),
                response.len()
            );
        } else {
            idle_steps = 0;
        }
    }
    Outcome {
        info: pair.client.handshake_info().expect("handshake info"),
        server_received: pair.server_received,
        client_received,
    }
}

/// A `Status` without its value.
fn status_kind<T>(status: &Status<T>) -> Status<()> {
    match status {
        Status::Done(_) => Status::Done(()),
        Status::WantRead => Status::WantRead,
        Status::WantWrite => Status::WantWrite,
        Status::Closed => Status::Closed,
    }
}

fn chunking() -> impl Strategy<Value = Chunking> {
    prop_oneof![
        1 => Just(Chunking::Whole),
        1 => Just(Chunking::OneByte),
        4 => prop::collection::vec(
            prop_oneof![1..=16usize, 1..=2_000usize, 1..=40_000usize],
            1..8
        )
        .prop_map(Chunking::Sizes),
    ]
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            (0..=20_000usize).prop_map(Op::Read),
            (1..=70_000usize).prop_map(Op::Write),
            Just(Op::Pump),
        ],
        0..12,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_chunking_and_interleaving_gives_the_same_result(
        to_server in chunking(),
        to_client in chunking(),
        ops in ops(),
        request_len in 0..=64 * 1024usize,
        response_len in 0..=64 * 1024usize,
        seed in any::<u64>(),
    ) {
        let config = client_builder().resumption(false).build().expect("config");
        let request = pseudo_random_bytes(request_len, seed);
        let response = pseudo_random_bytes(response_len, !seed);
        let reference = exchange(&config, Chunking::Whole, Chunking::Whole, &[], b"", b"");

        let outcome = exchange(&config, to_server, to_client, &ops, &request, &response);
        prop_assert!(outcome.server_received == request, "the server got other bytes");
        prop_assert!(outcome.client_received == response, "the client got other bytes");
        prop_assert_eq!(outcome.info, reference.info);
    }
}

#[test]
fn one_byte_at_a_time() {
    let config = client_config();
    let request = pseudo_random_bytes(5_000, 1);
    let response = pseudo_random_bytes(20_000, 2);
    let ops = [Op::Write(1_000), Op::Read(100)];
    let outcome = exchange(
        &config,
        Chunking::OneByte,
        Chunking::OneByte,
        &ops,
        &request,
        &response,
    );
    assert_eq!(outcome.server_received, request);
    assert_eq!(outcome.client_received, response);
    assert_eq!(outcome.info.version, TlsVersion::Tls13);

    // The handshake alone, through connect, one byte at a time.
    let mut pair = Pair::new(&config, Chunking::OneByte, Chunking::OneByte);
    let info = pair.handshake();
    assert_eq!(info.peer_certificates.len(), 2);
    pair.client_send(b"ping");
    pair.server_outbox = b"pong".to_vec();
    assert_eq!(pair.client_receive(4), b"pong");
}

fn check_negotiation(min: TlsVersion, max: TlsVersion) -> HandshakeInfo {
    let config = client_builder()
        .min_version(min)
        .max_version(max)
        .alpn(&["h2", "http/1.1"])
        .build()
        .expect("config");
    let mut pair = Pair::new(&config, Chunking::Whole, Chunking::Whole);
    let info = pair.handshake();
    assert_eq!(info.alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(info.alpn_str(), Some("http/1.1"));
    let expected_chain: Vec<Vec<u8>> = PKI.chain.iter().map(|c| c.to_vec()).collect();
    assert_eq!(info.peer_certificates, expected_chain);
    assert!(!info.resumed);
    assert_eq!(info.key_exchange_group.as_deref(), Some("X25519"));
    let server_suite = pair
        .server
        .negotiated_cipher_suite()
        .expect("server suite")
        .suite();
    assert_eq!(Some(info.cipher_suite.as_str()), server_suite.as_str());

    pair.client_send(b"hello");
    pair.server_outbox = b"world".to_vec();
    assert_eq!(pair.client_receive(5), b"world");
    info
}

#[test]
fn tls13_negotiation() {
    let info = check_negotiation(TlsVersion::Tls13, TlsVersion::Tls13);
    assert_eq!(info.version, TlsVersion::Tls13);
    assert!(
        info.cipher_suite.starts_with("TLS13_"),
        "{}",
        info.cipher_suite
    );
}

#[test]
fn tls12_negotiation() {
    let info = check_negotiation(TlsVersion::Tls12, TlsVersion::Tls12);
    assert_eq!(info.version, TlsVersion::Tls12);
    assert!(
        info.cipher_suite.starts_with("TLS_ECDHE_ECDSA_WITH_"),
        "{}",
        info.cipher_suite
    );
}

#[test]
fn default_versions_negotiate_tls13() {
    let info = check_negotiation(TlsVersion::Tls12, TlsVersion::Tls13);
    assert_eq!(info.version, TlsVersion::Tls13);
}

#[test]
fn no_alpn_offered_means_none_negotiated() {
    let mut pair = Pair::new(&client_config(), Chunking::Whole, Chunking::Whole);
    assert_eq!(pair.handshake().alpn, None);
}

fn check_resumption(version: TlsVersion) {
    let config = client_builder()
        .min_version(version)
        .max_version(version)
        .build()
        .expect("config");

    let mut first = Pair::new(&config, Chunking::Whole, Chunking::Whole);
    assert!(!first.handshake().resumed);
    // TLS 1.3 tickets come after the handshake: read so that the client processes them.
    first.server_outbox = b"ticket?".to_vec();
    assert_eq!(first.client_receive(7), b"ticket?");

    let mut second = Pair::new(&config, Chunking::Whole, Chunking::Whole);
    let info = second.handshake();
    assert!(
        info.resumed,
        "{version:?}: the second connection did not resume"
    );
    assert_eq!(info.version, version);
    second.client_send(b"resumed");
}

#[test]
fn tls13_resumption() {
    check_resumption(TlsVersion::Tls13);
}

#[test]
fn tls12_resumption() {
    check_resumption(TlsVersion::Tls12);
}

#[test]
fn resumption_disabled() {
    let config = client_builder().resumption(false).build().expect("config");
    let mut first = Pair::new(&config, Chunking::Whole, Chunking::Whole);
    first.handshake();
    first.server_outbox = b"x".to_vec();
    first.client_receive(1);
    let mut second = Pair::new(&config, Chunking::Whole, Chunking::Whole);
    assert!(!second.handshake().resumed);
}

fn key_log_lines(version: TlsVersion) -> Vec<String> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let config = client_builder()
        .min_version(version)
        .max_version(version)
        .key_log(Arc::new(move |line: &str| {
            sink.lock().expect("key log lock").push(line.to_owned())
        }))
        .build()
        .expect("config");
    let mut pair = Pair::new(&config, Chunking::Whole, Chunking::Whole);
    pair.handshake();
    pair.client_send(b"logged");
    let lines = lines.lock().expect("key log lock").clone();
    for line in &lines {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 3, "{line}");
        let is_hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        assert!(
            fields[0]
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
            "{line}"
        );
        assert!(fields[1].len() == 64 && is_hex(fields[1]), "{line}");
        assert!(
            fields[2].len() >= 64 && fields[2].len() % 2 == 0 && is_hex(fields[2]),
            "{line}"
        );
    }
    let randoms: Vec<&str> = lines.iter().filter_map(|l| l.split(' ').nth(1)).collect();
    assert!(
        randoms.windows(2).all(|w| w[0] == w[1]),
        "one connection, one client random: {lines:?}"
    );
    lines
}

fn labels(lines: &[String]) -> Vec<&str> {
    lines.iter().filter_map(|l| l.split(' ').next()).collect()
}

#[test]
fn key_log_tls13() {
    let lines = key_log_lines(TlsVersion::Tls13);
    let labels = labels(&lines);
    for label in [
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
    ] {
        assert!(labels.contains(&label), "{label} missing from {lines:?}");
    }
}

#[test]
fn key_log_tls12() {
    let lines = key_log_lines(TlsVersion::Tls12);
    assert_eq!(labels(&lines), ["CLIENT_RANDOM"]);
    // The master secret is 48 bytes.
    assert_eq!(lines[0].split(' ').nth(2).map(str::len), Some(96));
}

#[test]
fn server_close_notify_after_data() {
    let mut pair = Pair::new(&client_config(), Chunking::Whole, Chunking::Whole);
    pair.handshake();
    let data = pseudo_random_bytes(100_000, 3);
    pair.server_outbox = data.clone();
    // The server sends all its data, then close_notify.
    while !pair.server_outbox.is_empty() {
        pair.server_flush();
    }
    pair.server.send_close_notify();
    pair.server_flush();

    let (received, last) = pair.client_read_all();
    assert_eq!(received, data);
    assert_eq!(last, Ok(Status::Closed));
    assert_eq!(pair.client.ssl_error(), SslError::ZeroReturn);
    assert!(pair.client.peer_closed());
    // Closed again, however often it is asked.
    let mut buf = [0; 16];
    assert_eq!(pair.client.read(&mut buf), Ok(Status::Closed));
    // EOF after close_notify is no truncation.
    pair.client.push_eof();
    assert_eq!(pair.client.read(&mut buf), Ok(Status::Closed));
    assert_eq!(pair.client.failure(), None);

    // Our close_notify completes the exchange.
    assert_eq!(pair.client.shutdown(), Ok(Status::WantWrite));
    assert!(pair.step_to_server() > 0);
    assert_eq!(pair.client.shutdown(), Ok(Status::Done(Shutdown::Complete)));
}

#[test]
fn client_shutdown_then_server_close_notify() {
    let mut pair = Pair::new(&client_config(), Chunking::Whole, Chunking::Whole);
    pair.handshake();
    pair.client_send(b"bye");

    assert_eq!(pair.client.shutdown(), Ok(Status::WantWrite));
    assert_eq!(
        pair.drive(TlsClient::shutdown),
        Ok(Status::Done(Shutdown::Sent))
    );
    assert_eq!(pair.client.ssl_error(), SslError::None);
    // Shutdown again before the peer answered: still Sent.
    assert_eq!(pair.client.shutdown(), Ok(Status::Done(Shutdown::Sent)));
    assert!(pair
        .server
        .process_new_packets()
        .expect("server state")
        .peer_has_closed());

    // No more writing; the error is misuse, not a failure of the connection.
    let err = pair
        .client
        .write(b"more")
        .expect_err("write after shutdown");
    assert_eq!(err.code(), "invalid-state");
    assert!(!err.is_fatal());
    assert_eq!(pair.client.failure(), None);

    // The server may still send before its close_notify: it is half-closed.
    pair.server_outbox = b"last words".to_vec();
    pair.server_flush();
    pair.server.send_close_notify();
    pair.server_flush();
    let (received, last) = pair.client_read_all();
    assert_eq!(received, b"last words");
    assert_eq!(last, Ok(Status::Closed));
    assert_eq!(pair.client.shutdown(), Ok(Status::Done(Shutdown::Complete)));
}

#[test]
fn eof_without_close_notify_is_truncation() {
    let mut pair = Pair::new(
        &client_config(),
        Chunking::Whole,
        Chunking::Sizes(vec![777]),
    );
    pair.handshake();
    // Less than the client buffers unread, so that all of it is in before EOF.
    let data = pseudo_random_bytes(10_000, 4);
    pair.server_outbox = data.clone();
    while !pair.server_outbox.is_empty() {
        pair.server_flush();
    }
    pair.deliver_all_to_client();
    pair.client.push_eof();

    let (received, last) = pair.client_read_all();
    assert_eq!(received, data, "all data before EOF is read first");
    let err = last.expect_err("truncated");
    assert_eq!(err.code(), "truncated");
    assert_eq!(err.ssl_error(), SslError::Syscall);
    assert_eq!(pair.client.ssl_error(), SslError::Syscall);
    // Sticky.
    let mut buf = [0; 16];
    assert_eq!(pair.client.read(&mut buf), Err(err.clone()));
    assert_eq!(pair.client.write(b"x"), Err(err.clone()));
    assert_eq!(pair.client.shutdown(), Err(err));
}

#[test]
fn eof_during_handshake() {
    // Before the server said anything.
    let mut client = TlsClient::new(&client_config()).expect("client");
    assert_eq!(client.connect(), Ok(Status::WantWrite));
    assert!(!client.take_ciphertext().is_empty());
    assert_eq!(client.connect(), Ok(Status::WantRead));
    client.push_eof();
    let err = client.connect().expect_err("EOF");
    assert_eq!(err.code(), "unexpected-eof");
    assert_eq!(err.ssl_error(), SslError::Syscall);
    assert_eq!(client.connect(), Err(err));

    // In the middle of the server's first flight.
    let mut pair = Pair::new(
        &client_config(),
        Chunking::Whole,
        Chunking::Sizes(vec![100]),
    );
    assert_eq!(pair.client.connect(), Ok(Status::WantWrite));
    pair.step_to_server();
    assert!(pair.step_to_client() > 0);
    assert_eq!(pair.client.connect(), Ok(Status::WantRead));
    pair.client.push_eof();
    let err = pair.client.connect().expect_err("EOF");
    assert_eq!(err.code(), "unexpected-eof");
    let mut buf = [0; 16];
    assert_eq!(pair.client.read(&mut buf), Err(err));
}

#[test]
fn read_and_write_before_connect_drive_the_handshake() {
    let config = client_config();

    let mut pair = Pair::new(&config, Chunking::Whole, Chunking::Whole);
    assert_eq!(pair.client.write(b"early"), Ok(Status::WantWrite));
    assert!(pair.client.pending_ciphertext() > 0, "the ClientHello");
    assert_eq!(pair.drive(|c| c.write(b"early")), Ok(Status::Done(5)));
    while pair.step_to_server() > 0 {}
    assert_eq!(pair.server_received, b"early");

    let mut pair = Pair::new(&config, Chunking::Whole, Chunking::Whole);
    let mut buf = [0; 64];
    assert_eq!(pair.client.read(&mut buf), Ok(Status::WantWrite));
    pair.server_outbox = b"first".to_vec();
    assert_eq!(pair.drive(|c| c.read(&mut buf)), Ok(Status::Done(5)));
    assert_eq!(&buf[..5], b"first");
}

#[test]
fn empty_buffers() {
    let mut pair = Pair::new(&client_config(), Chunking::Whole, Chunking::Whole);
    assert_eq!(pair.client.pull_ciphertext(&mut []), 0);
    assert!(pair.client.take_ciphertext().is_empty());
    assert_eq!(pair.client.push_ciphertext(&[]), 0);
    // An empty read still drives the handshake.
    assert_eq!(pair.client.read(&mut []), Ok(Status::WantWrite));
    assert_eq!(pair.client.pull_ciphertext(&mut []), 0);
    assert!(pair.client.pending_ciphertext() > 0);
    pair.handshake();

    assert_eq!(pair.client.read(&mut []), Ok(Status::Done(0)));
    assert_eq!(pair.client.write(&[]), Ok(Status::Done(0)));
    assert_eq!(pair.client.push_ciphertext(&[]), 0);
    assert_eq!(pair.client.pending_ciphertext(), 0);
    assert!(pair.client.take_ciphertext().is_empty());
    // Nothing changed: the connection still works.
    pair.client_send(b"still fine");
}

#[test]
fn huge_write_is_taken_in_parts() {
    let mut pair = Pair::new(&client_config(), Chunking::Whole, Chunking::Whole);
    pair.handshake();
    let data = pseudo_random_bytes(10 << 20, 5);

    let first = pair.client.write(&data).expect("write");
    let Status::Done(taken) = first else {
        panic!("the first write takes something: {first:?}");
    };
    assert!(taken > 0 && taken <= BUFFER_LIMIT, "took {taken}");
    // Nothing pulled: the next write takes nothing more.
    assert_eq!(pair.client.write(&data[taken..]), Ok(Status::WantWrite));

    let mut written = taken;
    while written < data.len() {
        match pair.drive(|c| c.write(&data[written..])) {
            Ok(Status::Done(n)) => {
                assert!(n > 0 && n <= BUFFER_LIMIT, "took {n}");
                written += n;
            }
            other => panic!("write: {other:?}"),
        }
    }
    while pair.step_to_server() > 0 {}
    assert!(pair.server_received == data, "the server got other bytes");
}

#[test]
fn garbage_blob_is_a_typed_error_and_sticky() {
    let mut client = TlsClient::new(&client_config()).expect("client");
    assert_eq!(client.connect(), Ok(Status::WantWrite));
    client.take_ciphertext();

    let garbage = pseudo_random_bytes(4 << 20, 6);
    let taken = client.push_ciphertext(&garbage);
    assert!(taken <= garbage.len());
    let err = client.connect().expect_err("garbage is refused");
    assert!(err.is_fatal(), "{err:?}");
    assert_eq!(err.ssl_error(), SslError::Ssl);
    assert_eq!(client.failure(), Some(&err));
    assert_eq!(client.ssl_error(), SslError::Ssl);

    // The same error from every call, however often.
    assert_eq!(client.connect(), Err(err.clone()));
    let mut buf = [0; 16];
    assert_eq!(client.read(&mut buf), Err(err.clone()));
    assert_eq!(client.write(b"x"), Err(err.clone()));
    assert_eq!(client.shutdown(), Err(err.clone()));
    assert_eq!(client.connect(), Err(err.clone()));
    // More bytes, and EOF, after the failure change nothing.
    assert_eq!(client.push_ciphertext(&garbage[..1000]), 1000);
    client.push_eof();
    assert_eq!(client.read(&mut buf), Err(err.clone()));
    assert!(client.handshake_info().is_none());
}

#[test]
fn bytes_pushed_after_eof_count_as_before_it() {
    // Garbage is still garbage.
    let mut client = TlsClient::new(&client_config()).expect("client");
    assert_eq!(client.connect(), Ok(Status::WantWrite));
    client.take_ciphertext();
    client.push_eof();
    client.push_eof();
    assert_eq!(client.push_ciphertext(b"late bytes"), 10);
    let err = client.connect().expect_err("garbage");
    assert_eq!(err.code(), "protocol-violation");
    assert_eq!(client.push_ciphertext(b"later still"), 11);
    assert_eq!(client.connect(), Err(err));

    // A host that reports EOF before pushing the last bytes it held (the peer's
    // close_notify) still sees a clean close, not a truncation.
    let mut pair = Pair::new(&client_config(), Chunking::Whole, Chunking::Whole);
    pair.handshake();
    pair.server.send_close_notify();
    let mut close_notify = Vec::new();
    pair.server
        .write_tls(&mut close_notify)
        .expect("server writes");
    pair.client.push_eof();
    assert_eq!(
        pair.client.push_ciphertext(&close_notify),
        close_notify.len()
    );
    let mut buf = [0; 16];
    assert_eq!(pair.client.read(&mut buf), Ok(Status::Closed));

    // Half a record, then EOF: truncated.
    let mut pair = Pair::new(&client_config(), Chunking::Whole, Chunking::Whole);
    pair.handshake();
    pair.client.push_eof();
    assert_eq!(pair.client.push_ciphertext(&[0x17, 0x03, 0x03, 0x00]), 4);
    assert_eq!(
        pair.client.read(&mut buf).map_err(|e| e.code()),
        Err("truncated")
    );
}

#[test]
fn backpressure_when_the_client_does_not_read() {
    let mut pair = Pair::new(&client_config(), Chunking::Whole, Chunking::Whole);
    pair.handshake();
    let data = pseudo_random_bytes(1 << 20, 7);
    pair.server_outbox = data.clone();
    while !pair.server_outbox.is_empty() {
        pair.server_flush();
    }
    let ciphertext = pair.take_in_flight();
    assert!(ciphertext.len() > data.len());

    let mut offset = 0;
    let mut received = Vec::new();
    let mut buf = vec![0; 10_000];
    let mut refusals = 0;
    while offset < ciphertext.len() {
        let taken = pair.client.push_ciphertext(&ciphertext[offset..]);
        offset += taken;
        if offset < ciphertext.len() {
            refusals += 1;
            assert!(
                pair.client.pending_plaintext() > 0,
                "a push stopped early with nothing to read"
            );
        }
        // Read what is there, as a host does before pushing the rest.
        loop {
            match pair.client.read(&mut buf) {
                Ok(Status::Done(n)) => received.extend_from_slice(&buf[..n]),
                Ok(Status::WantRead) => break,
                other => panic!("read: {other:?}"),
            }
        }
    }
    assert!(refusals > 0, "the client never pushed back");
    assert!(received == data, "the client got other bytes");
}

#[test]
fn buffered_plaintext_is_bounded() {
    let mut pair = Pair::new(&client_config(), Chunking::Whole, Chunking::Whole);
    pair.handshake();
    pair.server_outbox = pseudo_random_bytes(1 << 20, 8);
    while !pair.server_outbox.is_empty() {
        pair.server_flush();
    }
    let ciphertext = pair.take_in_flight();
    let taken = pair.client.push_ciphertext(&ciphertext);
    assert!(taken < ciphertext.len());
    assert!(
        pair.client.pending_plaintext() <= BUFFER_LIMIT,
        "{} bytes of plaintext buffered",
        pair.client.pending_plaintext()
    );
    // Pushing again without reading takes nothing.
    assert_eq!(pair.client.push_ciphertext(&ciphertext[taken..]), 0);
}

/// Where the garbage goes.
#[derive(Debug, Clone, Copy)]
enum GarbageAt {
    /// After this many bytes of the server's first flight.
    Handshake(usize),
    /// After a complete handshake.
    Established,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn garbage_never_panics(
        at in prop_oneof![
            (0..3_000usize).prop_map(GarbageAt::Handshake),
            Just(GarbageAt::Established),
        ],
        garbage in prop::collection::vec(any::<u8>(), 1..8_000),
        chunks in prop::collection::vec(1..2_000usize, 1..6),
        tls12 in any::<bool>(),
    ) {
        let max = if tls12 { TlsVersion::Tls12 } else { TlsVersion::Tls13 };
        let config = client_builder().max_version(max).build().expect("config");
        let mut pair = Pair::new(&config, Chunking::Whole, Chunking::Whole);
        match at {
            GarbageAt::Handshake(prefix) => {
                prop_assert_eq!(pair.client.connect(), Ok(Status::WantWrite));
                pair.step_to_server();
                pair.server_flush();
                let flight = pair.take_in_flight();
                let prefix = prefix.min(flight.len() - 1);
                prop_assert_eq!(pair.client.push_ciphertext(&flight[..prefix]), prefix);
            }
            GarbageAt::Established => {
                pair.handshake();
            }
        }

        let mut chunker = Chunker::new(Chunking::Sizes(chunks));
        let mut rest = &garbage[..];
        let mut buf = [0; 1024];
        let mut last = Ok(Status::WantRead);
        while !rest.is_empty() {
            let size = chunker.next_size().min(rest.len());
            let taken = pair.client.push_ciphertext(&rest[..size]);
            rest = &rest[taken..];
            // The client may have something to send first (in TLS 1.3, its
            // ChangeCipherSpec after the ServerHello): drop it, and ask again.
            last = pair.client.read(&mut buf);
            while last == Ok(Status::WantWrite) {
                prop_assert!(pair.client.pending_ciphertext() > 0);
                pair.client.take_ciphertext();
                last = pair.client.read(&mut buf);
            }
            prop_assert!(
                matches!(last, Ok(Status::WantRead) | Err(_)),
                "garbage gave {:?}",
                last
            );
            if last.is_err() || taken == 0 {
                break;
            }
        }
        match last {
            Ok(Status::WantRead) => {
                prop_assert_eq!(pair.client.failure(), None);
            }
            Err(err) => {
                prop_assert!(err.is_fatal());
                prop_assert_eq!(pair.client.failure(), Some(&err));
                prop_assert_eq!(pair.client.connect(), Err(err.clone()));
                prop_assert_eq!(pair.client.read(&mut buf), Err(err));
            }
            other => prop_assert!(false, "garbage ended in {:?}", other),
        }
    }
}

/// Runs a handshake that is to fail on the client; returns the client's error.
fn failed_handshake(pair: &mut Pair) -> Error {
    pair.server_may_fail = true;
    let err = pair
        .drive(TlsClient::connect)
        .expect_err("the handshake fails");
    assert_eq!(pair.client.failure(), Some(&err));
    assert_eq!(pair.client.ssl_error(), err.ssl_error());
    assert_eq!(pair.client.connect(), Err(err.clone()));
    err
}

#[test]
fn server_alerts_are_typed() {
    // No protocol in common: the server refuses with no_application_protocol.
    let mut h3_only = server_config(&[&rustls::version::TLS13]);
    h3_only.alpn_protocols = vec![b"h3".to_vec()];
    let config = client_builder().alpn(&["h2"]).build().expect("config");
    let mut pair = Pair::with_server(&config, Arc::new(h3_only), Chunking::Whole, Chunking::Whole);
    let err = failed_handshake(&mut pair);
    assert_eq!(err.code(), "no-application-protocol", "{err}");
    assert!(matches!(
        pair.server_error,
        Some(rustls::Error::NoApplicationProtocol)
    ));

    // No version in common, either way round.
    for (server_version, client_version) in [
        (&rustls::version::TLS12, TlsVersion::Tls13),
        (&rustls::version::TLS13, TlsVersion::Tls12),
    ] {
        let config = client_builder()
            .min_version(client_version)
            .max_version(client_version)
            .build()
            .expect("config");
        let server = Arc::new(server_config(&[server_version]));
        let mut pair = Pair::with_server(&config, server, Chunking::Whole, Chunking::Whole);
        let err = failed_handshake(&mut pair);
        assert_eq!(err.code(), "protocol-version", "{err}");
        assert_eq!(err.ssl_error(), SslError::Ssl);
    }
}

#[test]
fn certificate_failures_in_the_handshake() {
    let check = |config: Config, code: &str| {
        let mut pair = Pair::new(&config, Chunking::Whole, Chunking::Sizes(vec![300]));
        let err = failed_handshake(&mut pair);
        assert_eq!(err.code(), code, "{err}");
        assert!(err.is_certificate_error());
        // The client told the server why.
        while pair.step_to_server() > 0 {}
        assert!(
            matches!(pair.server_error, Some(rustls::Error::AlertReceived(_))),
            "{code}: the server got {:?}",
            pair.server_error
        );
        err
    };

    let wrong_name = Config::builder("other.test")
        .without_bundled_roots()
        .add_roots_pem(&PKI.ca_pem)
        .build()
        .expect("config");
    check(wrong_name, "certificate-name-mismatch");

    let other_ca = Ca::root("another CA", ecdsa_p256_key().expect("key")).expect("cert");
    let other_pem = other_ca.pem;
    let untrusted = Config::builder(SERVER_NAME)
        .without_bundled_roots()
        .add_roots_pem(&other_pem)
        .build()
        .expect("config");
    let err = check(untrusted, "certificate-unknown-issuer");
    assert!(err.to_string().contains("wasm-tls test CA"), "{err}");

    // The test kit's certificates are valid from 2020 to 2099.
    let expired = client_builder()
        .clock(Arc::new(wasm_tls::FixedClock(100_000_000_000)))
        .build()
        .expect("config");
    check(expired, "certificate-expired");
    let not_yet_valid = client_builder()
        .clock(Arc::new(wasm_tls::FixedClock(0)))
        .build()
        .expect("config");
    check(not_yet_valid, "certificate-not-yet-valid");
}

#[test]
fn verify_server_certificate_agrees_with_the_handshake() {
    let config = client_config();
    let intermediates = [PKI.chain[1].as_ref()];
    assert_eq!(
        config.verify_server_certificate(&PKI.chain[0], &intermediates, SERVER_NAME),
        Ok(())
    );
    let err = config
        .verify_server_certificate(&PKI.chain[0], &intermediates, "other.test")
        .expect_err("wrong name");
    assert_eq!(err.code(), "certificate-name-mismatch");
}

fn client_auth_server() -> Arc<ServerConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(PKI.chain[1].clone()).expect("CA");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .expect("client verifier");
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(PKI.chain.clone(), PKI.key.clone_key().into())
        .expect("server certificate");
    Arc::new(config)
}

#[test]
fn client_certificate() {
    let server = client_auth_server();
    for version in [TlsVersion::Tls13, TlsVersion::Tls12] {
        let config = client_builder()
            .max_version(version)
            .client_auth_pem(&PKI.client_cert_pem, &PKI.client_key_pem)
            .build()
            .expect("config");
        let mut pair = Pair::with_server(&config, server.clone(), Chunking::Whole, Chunking::Whole);
        assert_eq!(pair.handshake().version, version);
        pair.client_send(b"authenticated");
        let presented = pair.server.peer_certificates().expect("client chain");
        assert_eq!(presented.len(), 1);
    }
}

#[test]
fn missing_client_certificate() {
    let server = client_auth_server();

    // TLS 1.3: the client finishes its handshake before the server judges it, so the
    // refusal arrives at the first read.
    let config = client_builder().build().expect("config");
    let mut pair = Pair::with_server(&config, server.clone(), Chunking::Whole, Chunking::Whole);
    pair.server_may_fail = true;
    assert_eq!(pair.drive(TlsClient::connect), Ok(Status::Done(())));
    let mut buf = [0; 16];
    let err = pair
        .drive(|c| c.read(&mut buf))
        .expect_err("the server refuses");
    assert_eq!(err.code(), "client-certificate-required", "{err}");
    assert_eq!(pair.client.read(&mut buf), Err(err));

    // TLS 1.2: the refusal ends the handshake.
    let config = client_builder()
        .max_version(TlsVersion::Tls12)
        .build()
        .expect("config");
    let mut pair = Pair::with_server(&config, server, Chunking::Whole, Chunking::Whole);
    let err = failed_handshake(&mut pair);
    assert_eq!(err.code(), "client-certificate-required", "{err}");
}

#[test]
fn shutdown_during_the_handshake_is_refused() {
    // As SSL_shutdown: there is no connection to close yet; the connection is unaffected.
    let mut client = TlsClient::new(&client_config()).expect("client");
    assert_eq!(
        client.shutdown().map_err(|e| e.code()),
        Err("invalid-state")
    );
    assert_eq!(client.connect(), Ok(Status::WantWrite));
    assert!(!client.take_ciphertext().is_empty());
    assert_eq!(
        client.shutdown().map_err(|e| e.code()),
        Err("invalid-state")
    );
    assert_eq!(client.connect(), Ok(Status::WantRead));
    client.push_eof();
    assert_eq!(
        client.connect().map_err(|e| e.code()),
        Err("unexpected-eof")
    );
}

#[test]
fn partial_pull_then_take() {
    let mut pair = Pair::new(&client_config(), Chunking::Whole, Chunking::Whole);
    assert_eq!(pair.client.connect(), Ok(Status::WantWrite));
    let pending = pair.client.pending_ciphertext();
    let mut head = [0; 10];
    assert_eq!(pair.client.pull_ciphertext(&mut head), 10);
    assert_eq!(pair.client.pending_ciphertext(), pending - 10);
    let tail = pair.client.take_ciphertext();
    assert_eq!(tail.len(), pending - 10);
    assert_eq!(pair.client.pending_ciphertext(), 0);
    assert_eq!(pair.client.pull_ciphertext(&mut head), 0);

    pair.feed_server(&head);
    pair.feed_server(&tail);
    pair.handshake();
    pair.client_send(b"whole");
}

/// Runs a handshake between `client` and `server` with everything delivered at once.
fn raw_handshake(client: &mut TlsClient, server: &mut ServerConnection) {
    for _ in 0..10 {
        if let Ok(Status::Done(())) = client.connect() {
            if !server.is_handshaking() {
                return;
            }
        }
        let to_server = client.take_ciphertext();
        server
            .read_tls(&mut to_server.as_slice())
            .expect("server reads");
        server.process_new_packets().expect("server processes");
        let mut to_client = Vec::new();
        server.write_tls(&mut to_client).expect("server writes");
        client.push_ciphertext(&to_client);
    }
    panic!("the handshake did not complete");
}

#[test]
fn data_before_a_bad_record_is_delivered_first() {
    let mut client = TlsClient::new(&client_config()).expect("client");
    let mut server = ServerConnection::new(SERVER_CONFIG.clone()).expect("server");
    raw_handshake(&mut client, &mut server);
    std::io::Write::write_all(&mut server.writer(), b"intact data").expect("write");
    let mut flight = Vec::new();
    server.write_tls(&mut flight).expect("server writes");
    // An application-data record that fails to authenticate, in the same push.
    flight.extend_from_slice(&[0x17, 0x03, 0x03, 0x00, 0x20]);
    flight.extend_from_slice(&[0xaa; 0x20]);
    assert_eq!(client.push_ciphertext(&flight), flight.len());
    let mut buf = [0u8; 64];
    assert_eq!(client.read(&mut buf), Ok(Status::Done(11)));
    assert_eq!(&buf[..11], b"intact data");
    let err = client.read(&mut buf).expect_err("then the error");
    assert_eq!(err.code(), "decrypt-error", "{err}");
    assert_eq!(client.read(&mut buf), Err(err));
}

#[test]
fn close_notify_during_the_handshake_is_a_clean_close() {
    let mut client = TlsClient::new(&client_config()).expect("client");
    assert_eq!(client.connect(), Ok(Status::WantWrite));
    let _hello = client.take_ciphertext();
    // The server answers the ClientHello with a close_notify (sent at fatal level; a
    // warning-level one before the handshake completes is ignored, as rustls does).
    client.push_ciphertext(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x00]);
    assert_eq!(client.connect(), Ok(Status::Closed));
    assert_eq!(client.ssl_error(), SslError::ZeroReturn);
    assert!(client.peer_closed());
    assert_eq!(client.failure(), None);
    let mut buf = [0u8; 8];
    assert_eq!(client.read(&mut buf), Ok(Status::Closed));
    assert_eq!(client.write(b"x"), Ok(Status::Closed));
}

// ---- TlsPipe: the core driven by whole buffers ----

mod pipe {
    use super::*;
    use wasm_tls::{PipeState, TlsPipe};

    /// A rustls server in memory, fed and drained in whole buffers.
    struct Server(ServerConnection, Vec<u8>);

    impl Server {
        fn new() -> Self {
            let mut conn = ServerConnection::new(SERVER_CONFIG.clone()).expect("server");
            conn.set_buffer_limit(None);
            Self(conn, Vec::new())
        }

        fn receive(&mut self, mut bytes: &[u8]) {
            while !bytes.is_empty() {
                self.0.read_tls(&mut bytes).expect("server read_tls");
                self.0.process_new_packets().expect("server process");
                let _ = self.0.reader().read_to_end(&mut self.1);
            }
        }

        fn output(&mut self) -> Vec<u8> {
            let mut out = Vec::new();
            while self.0.wants_write() {
                self.0.write_tls(&mut out).expect("server write_tls");
            }
            out
        }

        fn read_all(&mut self) -> Vec<u8> {
            let _ = self.0.reader().read_to_end(&mut self.1);
            std::mem::take(&mut self.1)
        }
    }

    /// A pipe and a server with the handshake done; the server's NewSessionTicket
    /// messages are still on their way to the client.
    fn open_pair() -> (TlsPipe, Server) {
        let mut pipe = TlsPipe::new(&client_config()).expect("pipe");
        let mut server = Server::new();
        let mut plaintext = Vec::new();
        for _ in 0..10 {
            server.receive(&pipe.take_ciphertext());
            let out = server.output();
            if pipe.state() == PipeState::Open && out.is_empty() {
                break;
            }
            assert_eq!(pipe.receive(&out, 0, &mut plaintext), out.len());
        }
        assert_eq!(pipe.state(), PipeState::Open);
        assert!(plaintext.is_empty());
        (pipe, server)
    }

    #[test]
    fn the_client_hello_is_ready_at_once() {
        let mut pipe = TlsPipe::new(&client_config()).expect("pipe");
        assert_eq!(pipe.state(), PipeState::Handshaking);
        assert!(!pipe.take_ciphertext().is_empty());
        assert!(pipe.take_ciphertext().is_empty());
    }

    #[test]
    fn whole_messages_in_one_call_each_way() {
        let (mut pipe, mut server) = open_pair();
        let data = pseudo_random_bytes(300_000, 11);
        assert_eq!(pipe.send(&data), Ok(data.len()));
        server.receive(&pipe.take_ciphertext());
        assert_eq!(server.read_all(), data);

        server.0.writer().write_all(&data).expect("server write");
        let flight = server.output();
        let mut plaintext = Vec::new();
        // One call takes the whole flight when the budget allows.
        assert_eq!(
            pipe.receive(&flight, usize::MAX, &mut plaintext),
            flight.len()
        );
        assert_eq!(plaintext, data);
    }

    #[test]
    fn a_spent_budget_leaves_the_rest_to_the_host_in_order() {
        let (mut pipe, mut server) = open_pair();
        let data = pseudo_random_bytes(500_000, 12);
        server.0.writer().write_all(&data).expect("server write");
        let mut pending = server.output();
        let mut plaintext = Vec::new();
        let mut calls = 0;
        // A reader that takes 10,000 bytes at a time: the pipe consumes only what it can
        // hold, and the host offers the rest again.
        while plaintext.len() < data.len() {
            calls += 1;
            assert!(calls < 10_000, "no progress");
            let before = plaintext.len();
            let consumed = pipe.receive(&pending, 10_000, &mut plaintext);
            assert!(plaintext.len() - before <= 10_000);
            pending.drain(..consumed);
        }
        assert_eq!(plaintext, data);
        assert!(pending.is_empty());
        // A budget of nothing delivers nothing and takes at most what the core holds.
        server.0.writer().write_all(&data).expect("server write");
        let flight = server.output();
        let consumed = pipe.receive(&flight, 0, &mut plaintext);
        assert!(consumed < flight.len());
        assert_eq!(plaintext.len(), data.len());
    }

    #[test]
    fn close_notify_closes_after_the_data_and_eof_without_it_truncates() {
        let (mut pipe, mut server) = open_pair();
        server
            .0
            .writer()
            .write_all(b"last words")
            .expect("server write");
        server.0.send_close_notify();
        let flight = server.output();
        let mut plaintext = Vec::new();
        pipe.receive(&flight, 4, &mut plaintext);
        assert_eq!(plaintext, b"last");
        assert_eq!(pipe.state(), PipeState::Open);
        pipe.receive(&[], 100, &mut plaintext);
        assert_eq!(plaintext, b"last words");
        assert_eq!(pipe.state(), PipeState::Closed);
        assert!(pipe.error().is_none());
        // Our close_notify answers theirs (RFC 8446 §6.1), and the server reads it.
        pipe.take_ciphertext();
        pipe.close().expect("close after the peer's close_notify");
        let reply = pipe.take_ciphertext();
        assert!(!reply.is_empty(), "no close_notify in reply");
        server.receive(&reply);
        let mut rest = Vec::new();
        let read = server.0.reader().read_to_end(&mut rest);
        assert!(
            read.is_ok(),
            "the server did not see a clean close: {read:?}"
        );

        let (mut pipe, mut server) = open_pair();
        server.0.writer().write_all(b"cut").expect("server write");
        let flight = server.output();
        let mut plaintext = Vec::new();
        pipe.receive(&flight, 0, &mut plaintext);
        pipe.receive_eof(0, &mut plaintext);
        // The data before the EOF first, then the truncation.
        pipe.receive(&[], 100, &mut plaintext);
        assert_eq!(plaintext, b"cut");
        assert_eq!(pipe.state(), PipeState::Failed);
        assert_eq!(pipe.error().map(Error::code), Some("truncated"));
    }

    #[test]
    fn eof_during_the_handshake_is_an_unexpected_eof() {
        let mut pipe = TlsPipe::new(&client_config()).expect("pipe");
        pipe.take_ciphertext();
        pipe.receive_eof(0, &mut Vec::new());
        assert_eq!(pipe.state(), PipeState::Failed);
        assert_eq!(pipe.error().map(Error::code), Some("unexpected-eof"));
    }

    #[test]
    fn a_failure_leaves_the_alert_to_send() {
        let config = Config::builder("other.test")
            .without_bundled_roots()
            .add_roots_pem(&PKI.ca_pem)
            .build()
            .expect("config");
        let mut pipe = TlsPipe::new(&config).expect("pipe");
        let mut server = Server::new();
        server.receive(&pipe.take_ciphertext());
        let flight = server.output();
        // Bytes after the failure are consumed and discarded.
        assert_eq!(pipe.receive(&flight, 100, &mut Vec::new()), flight.len());
        assert_eq!(pipe.state(), PipeState::Failed);
        assert_eq!(
            pipe.error().map(Error::code),
            Some("certificate-name-mismatch")
        );
        let alert = pipe.take_ciphertext();
        assert!(!alert.is_empty(), "no alert for the server");
        let err = {
            let mut bytes = alert.as_slice();
            server.0.read_tls(&mut bytes).expect("read_tls");
            server.0.process_new_packets().expect_err("the alert")
        };
        assert!(matches!(err, rustls::Error::AlertReceived(_)), "{err:?}");
    }

    #[test]
    fn sending_waits_for_the_handshake_and_stops_at_close() {
        let mut pipe = TlsPipe::new(&client_config()).expect("pipe");
        assert_eq!(pipe.send(b"early"), Ok(0));
        let (mut pipe2, mut server) = open_pair();
        pipe2.close().expect("close");
        let mut bytes = &pipe2.take_ciphertext()[..];
        server.0.read_tls(&mut bytes).expect("read_tls");
        assert!(server
            .0
            .process_new_packets()
            .expect("state")
            .peer_has_closed());
        let err = pipe2.send(b"late").expect_err("write after close");
        assert_eq!(err.code(), "invalid-state");
        // A misuse does not fail the connection: the peer's data still arrives.
        assert_eq!(pipe2.state(), PipeState::Open);
        server.0.writer().write_all(b"reply").expect("server write");
        let flight = server.output();
        let mut plaintext = Vec::new();
        pipe2.receive(&flight, 100, &mut plaintext);
        assert_eq!(plaintext, b"reply");
        // Closing during the handshake is refused: close the transport instead.
        assert_eq!(pipe.close().map_err(|e| e.code()), Err("invalid-state"));
        assert_eq!(pipe.state(), PipeState::Handshaking);
    }
}
