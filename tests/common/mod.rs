//! Shared support for the tests against real servers: a throwaway PKI made at test time
//! with the test kit's certificate factory and written to files for OpenSSL,
//! a guard around `openssl s_server`, a blocking [`wasm_tls::Stream`] over `TcpStream`,
//! and a runner for the `tls-client` command.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rcgen::{date_time_ymd, CertificateParams, ExtendedKeyUsagePurpose, KeyPair};
use wasm_tls::{Config, ConfigBuilder, Error, TlsClient};
use wasm_tls_test_kit::pki::{self, ecdsa_p256_key, Ca};
use wasm_tls_test_kit::server::{chain_of, server_config};

/// Bounds every single wait on a socket.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Bounds a whole exchange (handshake, or reading a response to its end).
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// The request `openssl s_server -www` answers with its status page.
pub const GET: &[u8] = b"GET / HTTP/1.0\r\n\r\n";

// ---------------------------------------------------------------------------------------
// Temporary directories
// ---------------------------------------------------------------------------------------

/// A new, empty directory under the system's temporary directory.
pub fn fresh_dir(tag: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let base = std::env::temp_dir().join("wasm-tls-tests");
    remove_stale(&base);
    let dir = base.join(format!("{tag}-{}-{nanos}-{n}", std::process::id()));
    fs::create_dir_all(&dir).expect("create a temporary directory");
    dir
}

/// Removes directories earlier test runs left behind (older than an hour).
fn remove_stale(base: &Path) {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let Ok(entries) = fs::read_dir(base) else {
            return;
        };
        for entry in entries.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > Duration::from_secs(3600));
            if old {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    });
}

fn write_file(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, contents).expect("write a test file");
    path
}

// ---------------------------------------------------------------------------------------
// The test PKI
// ---------------------------------------------------------------------------------------

/// A certificate and key a server (or a client) presents, as files and as data.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The end-entity certificate (PEM file), for `-cert`.
    pub cert_file: PathBuf,
    /// Its private key (PKCS#8 PEM file), for `-key`.
    pub key_file: PathBuf,
    /// The certificates sent after the end-entity one (PEM file), for `-cert_chain`.
    pub chain_file: Option<PathBuf>,
    /// The end-entity certificate (DER).
    pub leaf_der: Vec<u8>,
    /// The certificates sent after it (DER), in order.
    pub chain_der: Vec<Vec<u8>>,
    /// The end-entity certificate followed by the chain (PEM).
    pub full_chain_pem: String,
    /// The private key (PEM).
    pub key_pem: String,
}

impl Identity {
    /// `s_server` arguments that present this identity.
    pub fn server_args(&self) -> Vec<String> {
        let mut args = vec![
            "-cert".to_owned(),
            path_str(&self.cert_file),
            "-key".to_owned(),
            path_str(&self.key_file),
        ];
        if let Some(chain) = &self.chain_file {
            args.push("-cert_chain".to_owned());
            args.push(path_str(chain));
        }
        args
    }
}

/// A root CA, an intermediate CA under it, and a good leaf for `localhost` and
/// `127.0.0.1` under the intermediate.
pub struct Hierarchy {
    /// The root certificate (PEM), to trust.
    pub root_pem: String,
    /// The same, as a file (for `--cafile`).
    pub root_file: PathBuf,
    /// The root certificate (DER).
    pub root_der: Vec<u8>,
    /// The intermediate's subject common name.
    pub intermediate_cn: String,
    /// The good leaf; the server sends it with the intermediate.
    pub leaf: Identity,
    /// Whether the keys are RSA (else ECDSA P-256).
    pub is_rsa: bool,
}

/// Every certificate the tests use, in one temporary directory.
pub struct Pki {
    /// Where the files are.
    pub dir: PathBuf,
    /// ECDSA P-256 throughout.
    pub ecdsa: Hierarchy,
    /// RSA-2048 throughout.
    pub rsa: Hierarchy,
    /// Under the ECDSA hierarchy, valid 2000-01-01 to 2001-01-01.
    pub expired: Identity,
    /// Under the ECDSA hierarchy, valid from 2090-01-01.
    pub not_yet_valid: Identity,
    /// Under the ECDSA hierarchy, for `other.example` only.
    pub wrong_name: Identity,
    /// A self-signed certificate for `localhost`.
    pub self_signed: Identity,
    /// A leaf for `localhost` under another root, sent as leaf, intermediate and root.
    pub untrusted_root: Identity,
    /// The subject common name of the untrusted root.
    pub untrusted_root_cn: String,
    /// A good leaf under the ECDSA intermediate, sent without the intermediate.
    pub missing_intermediate: Identity,
    /// The CA that issues client certificates (PEM file, for `-CAfile`).
    pub client_ca_file: PathBuf,
    /// A client certificate under that CA.
    pub client: Identity,
    /// The client certificate's subject common name.
    pub client_cn: String,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum KeyKind {
    Ecdsa,
    Rsa,
}

fn new_key(kind: KeyKind) -> KeyPair {
    match kind {
        KeyKind::Ecdsa => ecdsa_p256_key().expect("generate a P-256 key"),
        KeyKind::Rsa => {
            // ring cannot generate RSA keys: have OpenSSL make one (PKCS#8 PEM).
            let out = Command::new("openssl")
                .args([
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    "rsa_keygen_bits:2048",
                ])
                .stderr(Stdio::inherit())
                .output()
                .expect("run openssl genpkey");
            assert!(out.status.success(), "openssl genpkey failed");
            let pem = String::from_utf8(out.stdout).expect("PEM is text");
            KeyPair::from_pem(&pem).expect("load the RSA key")
        }
    }
}

fn server_leaf_params(cn: &str, sans: &[&str]) -> CertificateParams {
    pki::server_leaf_params(cn, sans).expect("valid subject alternative names")
}

fn self_signed_ca(cn: &str, kind: KeyKind) -> Ca {
    Ca::root(cn, new_key(kind)).expect("sign a root")
}

fn sub_ca(cn: &str, kind: KeyKind, parent: &Ca) -> Ca {
    parent
        .intermediate(cn, new_key(kind))
        .expect("sign an intermediate")
}

/// Signs `params` under `issuer` (or self-signs it) and writes the identity's files.
fn identity(
    dir: &Path,
    file_stem: &str,
    params: &CertificateParams,
    kind: KeyKind,
    issuer: Option<&Ca>,
    sent_after: &[&Ca],
) -> Identity {
    let key = new_key(kind);
    let cert = match issuer {
        Some(ca) => ca.issue(params, key),
        None => pki::self_signed(params, key),
    }
    .expect("sign a leaf");
    let cert_file = write_file(dir, &format!("{file_stem}.pem"), &cert.pem);
    let key_file = write_file(dir, &format!("{file_stem}.key"), &cert.key_pem);
    let chain_pem: String = sent_after.iter().map(|ca| ca.pem.as_str()).collect();
    let chain_file = (!sent_after.is_empty())
        .then(|| write_file(dir, &format!("{file_stem}-chain.pem"), &chain_pem));
    Identity {
        cert_file,
        key_file,
        chain_file,
        leaf_der: cert.der,
        chain_der: sent_after.iter().map(|ca| ca.der.clone()).collect(),
        full_chain_pem: format!("{}{chain_pem}", cert.pem),
        key_pem: cert.key_pem,
    }
}

const LOCALHOST: &[&str] = &["localhost", "127.0.0.1"];

fn hierarchy(dir: &Path, kind: KeyKind) -> (Hierarchy, Ca, Ca) {
    let tag = match kind {
        KeyKind::Ecdsa => "ecdsa",
        KeyKind::Rsa => "rsa",
    };
    let root = self_signed_ca(&format!("wasm-tls Test Root {tag}"), kind);
    let intermediate_cn = format!("wasm-tls Test Intermediate {tag}");
    let inter = sub_ca(&intermediate_cn, kind, &root);
    let leaf = identity(
        dir,
        &format!("{tag}-leaf"),
        &server_leaf_params("localhost", LOCALHOST),
        kind,
        Some(&inter),
        &[&inter],
    );
    let root_file = write_file(dir, &format!("{tag}-root.pem"), &root.pem);
    let hierarchy = Hierarchy {
        root_pem: root.pem.clone(),
        root_file,
        root_der: root.der.clone(),
        intermediate_cn,
        leaf,
        is_rsa: kind == KeyKind::Rsa,
    };
    (hierarchy, root, inter)
}

fn make_pki() -> Pki {
    let dir = fresh_dir("pki");
    let (ecdsa, _root, inter) = hierarchy(&dir, KeyKind::Ecdsa);
    let (rsa, _, _) = hierarchy(&dir, KeyKind::Rsa);
    let e = KeyKind::Ecdsa;

    let mut expired = server_leaf_params("localhost", LOCALHOST);
    expired.not_before = date_time_ymd(2000, 1, 1);
    expired.not_after = date_time_ymd(2001, 1, 1);
    let expired = identity(&dir, "expired", &expired, e, Some(&inter), &[&inter]);

    let mut not_yet = server_leaf_params("localhost", LOCALHOST);
    not_yet.not_before = date_time_ymd(2090, 1, 1);
    not_yet.not_after = date_time_ymd(2099, 1, 1);
    let not_yet_valid = identity(&dir, "not-yet-valid", &not_yet, e, Some(&inter), &[&inter]);

    let wrong = server_leaf_params("other.example", &["other.example"]);
    let wrong_name = identity(&dir, "wrong-name", &wrong, e, Some(&inter), &[&inter]);

    let self_signed = identity(
        &dir,
        "self-signed",
        &server_leaf_params("localhost", LOCALHOST),
        e,
        None,
        &[],
    );

    let untrusted_root_cn = "wasm-tls Untrusted Root".to_owned();
    let other_root = self_signed_ca(&untrusted_root_cn, e);
    let other_inter = sub_ca("wasm-tls Untrusted Intermediate", e, &other_root);
    let untrusted_root = identity(
        &dir,
        "untrusted-root",
        &server_leaf_params("localhost", LOCALHOST),
        e,
        Some(&other_inter),
        &[&other_inter, &other_root],
    );

    let missing_intermediate = identity(
        &dir,
        "missing-intermediate",
        &server_leaf_params("localhost", LOCALHOST),
        e,
        Some(&inter),
        &[],
    );

    let client_ca = self_signed_ca("wasm-tls Test Client CA", e);
    let client_ca_file = write_file(&dir, "client-ca.pem", &client_ca.pem);
    let client_cn = "wasm-tls test client".to_owned();
    let client = identity(
        &dir,
        "client",
        &pki::leaf_params(&client_cn, &[], ExtendedKeyUsagePurpose::ClientAuth)
            .expect("client certificate parameters"),
        e,
        Some(&client_ca),
        &[],
    );

    Pki {
        dir,
        ecdsa,
        rsa,
        expired,
        not_yet_valid,
        wrong_name,
        self_signed,
        untrusted_root,
        untrusted_root_cn,
        missing_intermediate,
        client_ca_file,
        client,
        client_cn,
    }
}

/// The test PKI, made once per test binary.
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(make_pki)
}

/// The number of seconds since the Unix epoch of `date_time_ymd(y, m, d)`.
pub fn unix_date(y: i32, m: u8, d: u8) -> u64 {
    u64::try_from(date_time_ymd(y, m, d).unix_timestamp()).expect("a date after 1970")
}

/// A rustls server configuration presenting `identity`, for `versions` (rustls' safe
/// defaults when empty).
pub fn rustls_server(
    identity: &Identity,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ServerConfig {
    use rustls::pki_types::pem::PemObject;
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes())
        .expect("the identity's key");
    let chain = chain_of(&identity.leaf_der, &identity.chain_der);
    server_config(chain, key, versions).expect("a server configuration")
}

/// A client configuration for `server_name` that trusts only `root_pem`.
pub fn config_for(server_name: &str, root_pem: &str) -> ConfigBuilder {
    Config::builder(server_name)
        .without_bundled_roots()
        .add_roots_pem(root_pem)
}

pub fn path_str(path: &Path) -> String {
    path.to_str().expect("a UTF-8 temporary path").to_owned()
}

// ---------------------------------------------------------------------------------------
// openssl s_server
// ---------------------------------------------------------------------------------------

/// A running `openssl s_server` on 127.0.0.1, killed when dropped.
pub struct OpensslServer {
    child: Child,
    /// The port it accepts on.
    pub port: u16,
    dir: PathBuf,
    stdout_file: PathBuf,
    stderr_file: PathBuf,
}

impl OpensslServer {
    /// Starts `openssl s_server` with `args` (everything but `-accept`) on a free port,
    /// and waits until the port accepts TCP connections.
    pub fn start<S: AsRef<OsStr>>(args: &[S]) -> Self {
        let mut last_log = String::new();
        // The port may be taken between finding it free and s_server binding it: retry.
        for _ in 0..3 {
            let dir = fresh_dir("s_server");
            let port = free_port();
            let stdout_file = dir.join("stdout");
            let stderr_file = dir.join("stderr");
            let child = Command::new("openssl")
                .arg("s_server")
                .arg("-accept")
                .arg(format!("127.0.0.1:{port}"))
                .args(args)
                // s_server reads stdin in its interactive mode: keep it open, silent.
                .stdin(Stdio::piped())
                .stdout(fs::File::create(&stdout_file).expect("create the stdout log"))
                .stderr(fs::File::create(&stderr_file).expect("create the stderr log"))
                .spawn()
                .expect("start openssl s_server");
            let mut server = Self {
                child,
                port,
                dir,
                stdout_file,
                stderr_file,
            };
            if server.wait_ready() {
                return server;
            }
            last_log = server.log();
        }
        panic!("openssl s_server did not start; its output:\n{last_log}");
    }

    /// Serves `identity` with `-www` (a status page for `GET /`), plus `extra` flags.
    pub fn www(identity: &Identity, extra: &[&str]) -> Self {
        let mut args = identity.server_args();
        args.push("-www".to_owned());
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        Self::start(&args)
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// What the server printed so far (stdout, then stderr), for diagnostics.
    pub fn log(&self) -> String {
        let out = fs::read_to_string(&self.stdout_file).unwrap_or_default();
        let err = fs::read_to_string(&self.stderr_file).unwrap_or_default();
        format!("--- stdout ---\n{out}--- stderr ---\n{err}")
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if TcpStream::connect_timeout(&self.addr(), Duration::from_millis(200)).is_ok() {
                // Something listens; if the port was taken by another process between
                // finding it free and s_server binding it, s_server exits at once.
                std::thread::sleep(Duration::from_millis(100));
                return matches!(self.child.try_wait(), Ok(None));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for OpensslServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

// ---------------------------------------------------------------------------------------
// A blocking TLS stream over TcpStream
// ---------------------------------------------------------------------------------------

/// How a read to the end finished.
#[derive(Debug)]
pub enum End {
    /// The peer sent `close_notify` (`SSL_ERROR_ZERO_RETURN`).
    Closed,
    /// The connection failed.
    Err(Error),
}

impl End {
    /// The error code, or `"closed"`.
    pub fn code(&self) -> &'static str {
        match self {
            End::Closed => "closed",
            End::Err(err) => err.code(),
        }
    }
}

/// A [`wasm_tls::Stream`] over a blocking `TcpStream` with timeouts, its results as the
/// core's [`Error`]s. It dereferences to the stream, whose parts `tls` and `sock` the
/// tests drive by hand where they need to.
pub struct TlsStream {
    inner: wasm_tls::Stream<TcpStream>,
}

impl std::ops::Deref for TlsStream {
    type Target = wasm_tls::Stream<TcpStream>;

    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl std::ops::DerefMut for TlsStream {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}

/// The core's error an I/O error carries; a socket error or a timeout fails the test.
fn core_error(err: io::Error, what: &str) -> Error {
    match err.get_ref().and_then(|e| e.downcast_ref::<Error>()) {
        Some(tls) => tls.clone(),
        None if matches!(
            err.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ) =>
        {
            panic!("timed out waiting for the server during {what} ({err})")
        }
        None => panic!("socket error during {what}: {err}"),
    }
}

impl TlsStream {
    /// Opens a TCP connection to 127.0.0.1:`port`; no TLS yet.
    pub fn open(port: u16, config: &Config) -> Self {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect to the server");
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .expect("set a read timeout");
        stream
            .set_write_timeout(Some(IO_TIMEOUT))
            .expect("set a write timeout");
        let _ = stream.set_nodelay(true);
        let tls = TlsClient::new(config).expect("make a client");
        Self {
            inner: wasm_tls::Stream::new(tls, stream),
        }
    }

    /// Opens a connection and completes the handshake.
    pub fn connect(port: u16, config: &Config) -> Result<Self, Error> {
        let mut conn = Self::open(port, config);
        conn.handshake()?;
        Ok(conn)
    }

    /// Drives `connect` to completion.
    pub fn handshake(&mut self) -> Result<(), Error> {
        self.inner
            .connect()
            .map_err(|err| core_error(err, "the handshake"))
    }

    /// Writes all of `data`. A peer that is gone is not an error here: the read side
    /// reports why.
    pub fn write_all(&mut self, data: &[u8]) -> Result<(), Error> {
        match self.inner.write_all(data) {
            Err(err) if err.kind() == io::ErrorKind::BrokenPipe && err.get_ref().is_none() => {
                Ok(())
            }
            result => result.map_err(|err| core_error(err, "a write")),
        }
    }

    /// Reads some application data: `Ok(Some(n))`, or `Ok(None)` on `close_notify`.
    pub fn read_some(&mut self, buf: &mut [u8]) -> Result<Option<usize>, Error> {
        match self.inner.read(buf) {
            Ok(0) if !buf.is_empty() => Ok(None),
            Ok(n) => Ok(Some(n)),
            Err(err) => Err(core_error(err, "a read")),
        }
    }

    /// Reads until `close_notify` or an error; returns the data and how it ended.
    pub fn read_to_end(&mut self) -> (Vec<u8>, End) {
        let mut data = Vec::new();
        let mut buf = vec![0; 16 * 1024];
        let deadline = Instant::now() + EXCHANGE_TIMEOUT;
        loop {
            assert!(Instant::now() < deadline, "the read did not finish");
            match self.read_some(&mut buf) {
                Ok(Some(n)) => data.extend_from_slice(&buf[..n]),
                Ok(None) => return (data, End::Closed),
                Err(err) => return (data, End::Err(err)),
            }
        }
    }

    /// Sends `close_notify` (without waiting for the peer's).
    pub fn shutdown(&mut self) -> Result<(), Error> {
        self.inner
            .shutdown()
            .map(drop)
            .map_err(|err| core_error(err, "the shutdown"))
    }
}

/// Runs the handshake to `port`; it must fail. Checks that the failure is recorded,
/// classified and sticky, and returns it with the connection.
pub fn failed_handshake(port: u16, config: &Config) -> (TlsStream, Error) {
    let mut conn = TlsStream::open(port, config);
    let err = match conn.handshake() {
        Ok(()) => panic!(
            "the handshake succeeded: {:?}",
            conn.tls.handshake_info().map(|i| i.version)
        ),
        Err(err) => err,
    };
    assert_eq!(conn.tls.failure(), Some(&err));
    assert_eq!(conn.tls.ssl_error(), err.ssl_error());
    assert_eq!(conn.tls.connect(), Err(err.clone()), "not sticky");
    assert!(conn.tls.handshake_info().is_none());
    (conn, err)
}

/// Connects, sends `GET /`, and reads the response to its end.
pub fn get(port: u16, config: &Config) -> Result<(TlsStream, Vec<u8>, End), Error> {
    let mut conn = TlsStream::connect(port, config)?;
    conn.write_all(GET)?;
    let (data, end) = conn.read_to_end();
    Ok((conn, data, end))
}

/// Connects and reads until the connection ends; the error of the handshake or of the
/// first read. For failures that a server reports after the client's handshake is done.
pub fn connect_and_read(port: u16, config: &Config) -> Result<Vec<u8>, Error> {
    let mut conn = TlsStream::connect(port, config)?;
    let mut buf = vec![0; 16 * 1024];
    let mut data = Vec::new();
    loop {
        match conn.read_some(&mut buf)? {
            Some(n) => data.extend_from_slice(&buf[..n]),
            None => return Ok(data),
        }
    }
}

/// Asserts `page` is a complete `s_server -www` status page.
pub fn assert_www_page(page: &[u8]) {
    let page = String::from_utf8_lossy(page);
    assert!(
        page.starts_with("HTTP/1.0 200 ok\r\n"),
        "not an HTTP response: {page:.200}"
    );
    assert!(page.contains("s_server"), "no s_server page: {page:.400}");
    assert!(
        page.contains("Ciphers supported in s_server binary"),
        "no cipher list: {page:.400}"
    );
    assert!(
        page.trim_end().ends_with("</pre></BODY></HTML>"),
        "the page is cut short: {}",
        &page[page.len().saturating_sub(200)..]
    );
}

// ---------------------------------------------------------------------------------------
// The tls-client command
// ---------------------------------------------------------------------------------------

/// What a run of `tls-client` produced.
#[derive(Debug)]
pub struct CommandOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `tls-client` with `args`, feeding it `stdin` (then EOF) or nothing, and waits
/// at most 30 s for it.
pub fn run_tls_client<S: AsRef<OsStr>>(args: &[S], stdin: Option<&[u8]>) -> CommandOutput {
    let dir = fresh_dir("tls-client");
    let stdout_file = dir.join("stdout");
    let stderr_file = dir.join("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tls-client"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(fs::File::create(&stdout_file).expect("create stdout file"))
        .stderr(fs::File::create(&stderr_file).expect("create stderr file"))
        .spawn()
        .expect("start tls-client");
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(data).expect("write tls-client's stdin");
        // Dropping the pipe is EOF on stdin.
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for tls-client") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "tls-client did not finish in 30 s; stderr:\n{}",
                fs::read_to_string(&stderr_file).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = CommandOutput {
        status,
        stdout: fs::read_to_string(&stdout_file).unwrap_or_default(),
        stderr: fs::read_to_string(&stderr_file).unwrap_or_default(),
    };
    let _ = fs::remove_dir_all(&dir);
    output
}

/// Runs `tls-client.wasm` under wasmtime with `args`, the network, and `certs` as
/// `/certs` (name files there `/certs/NAME`), and waits for it.
pub fn run_tls_client_wasm(certs: &Path, args: &[String]) -> CommandOutput {
    let (wasmtime, compiled) = compiled_wasm();
    let out = Command::new(wasmtime)
        .args([
            "run",
            "--allow-precompiled",
            "-S",
            "inherit-network",
            "--dir",
        ])
        .arg(format!("{}::/certs", path_str(certs)))
        .arg(compiled)
        .args(args)
        .output()
        .expect("run wasmtime");
    CommandOutput {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `tls-client` arguments for a server on 127.0.0.1:`port` verified as `servername`
/// against `cafile` only.
pub fn client_args(port: u16, servername: &str, cafile: &Path) -> Vec<String> {
    vec![
        "--connect".to_owned(),
        format!("127.0.0.1:{port}"),
        "--servername".to_owned(),
        servername.to_owned(),
        "--cafile".to_owned(),
        path_str(cafile),
        "--no-default-roots".to_owned(),
        "--timeout".to_owned(),
        "5".to_owned(),
    ]
}

/// `program` on PATH or in one of `extra` directories.
pub fn find_program(program: &str, extra: &[PathBuf]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra.iter().cloned())
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// `tls-client.wasm` (or `$WASM_TLS_CLIENT_WASM`) compiled by wasmtime once per test
/// binary, and the wasmtime to run it with.
pub fn compiled_wasm() -> &'static (PathBuf, PathBuf) {
    static COMPILED: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    COMPILED.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let wasm = std::env::var_os("WASM_TLS_CLIENT_WASM")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target/wasi/tls-client.wasm"));
        assert!(
            wasm.is_file(),
            "{} is missing: run cargo xtask build-wasi",
            wasm.display()
        );
        let wasmtime = find_program(
            "wasmtime",
            &[std::env::var_os("HOME")
                .map(|h| Path::new(&h).join(".cargo/bin"))
                .unwrap_or_default()],
        )
        .expect("wasmtime is not installed: run cargo xtask setup");
        // One file, replaced whole each run (a rename), rather than one per run.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let compiled = dir.join(format!("{}-tls-client.cwasm", env!("CARGO_CRATE_NAME")));
        let partial = dir.join(format!(
            "{}-tls-client.{}.part",
            env!("CARGO_CRATE_NAME"),
            std::process::id()
        ));
        let out = Command::new(&wasmtime)
            .arg("compile")
            .arg("-o")
            .arg(&partial)
            .arg(&wasm)
            .output()
            .expect("run wasmtime compile");
        assert!(
            out.status.success(),
            "wasmtime compile failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        fs::rename(&partial, &compiled).expect("move the compiled component in place");
        (wasmtime, compiled)
    })
}
