//! `tls-client --starttls`: each protocol's plaintext exchange, then TLS, against real
//! servers on 127.0.0.1: dovecot (IMAP with a LOGIN after the upgrade, POP3), PostgreSQL
//! (a StartupMessage after the upgrade), and servers scripted here for SMTP, FTP, XMPP
//! and LDAP (a TCP server that speaks the plaintext part, then TLS with rustls), plus
//! the refusals, a server that injects data after its answer, and the bounds in time
//! and size.
//!
//! Every test runs twice: `native::` with the command built for the host, and
//! `wasmtime::` with `tls-client.wasm` under the wasmtime CLI. The latter are ignored by
//! a plain `cargo test`; `cargo xtask test` runs them (`-- --ignored`) right after it
//! builds the component, naming it in `WASM_TLS_CLIENT_WASM`. `wasmtime::` also checks
//! the messages for a capability wasmtime was not given.
//!
//! dovecot and PostgreSQL are Debian's (`cargo xtask setup` installs them); both start
//! as root, each with its own configuration in a temporary directory, and stop when the
//! test ends.

mod common;

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::{compiled_wasm, free_port, fresh_dir, path_str, pki};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// Bounds how long a scripted server waits for anything.
const SERVER_WAIT: Duration = Duration::from_secs(10);
/// Bounds one run of the command.
const RUN_LIMIT: Duration = Duration::from_secs(30);
/// Bounds a server's start.
const START_LIMIT: Duration = Duration::from_secs(20);

/// The user dovecot knows (from its passwd-file), and the password.
const MAIL_USER: &str = "alice";
const MAIL_PASSWORD: &str = "s3cret-Pw";

// ---------------------------------------------------------------------------------------
// The command, natively or under wasmtime
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Client {
    Native,
    Wasm,
}

#[derive(Debug)]
struct Output {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
    took: Duration,
}

impl Output {
    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    fn assert_handshake(&self) {
        assert_eq!(self.code, Some(0), "tls-client failed:\n{}", self.stderr);
        assert!(
            self.stderr.contains("\nProtocol  : TLSv1."),
            "no handshake summary:\n{}",
            self.stderr
        );
        assert!(self.stderr.contains(" 0 s:CN=localhost"), "{}", self.stderr);
    }

    /// Failed before TLS with `message` as its error line.
    fn assert_error(&self, message: &str) {
        let line = self.assert_error_starting(message);
        assert_eq!(line, message, "the error line");
    }

    /// Failed before TLS with an error line starting with `prefix`; returns the line.
    fn assert_error_starting(&self, prefix: &str) -> &str {
        assert_eq!(self.code, Some(1), "expected a failure:\n{}", self.stderr);
        assert!(!self.stderr.contains("Protocol  :"), "{}", self.stderr);
        assert!(self.stdout.is_empty(), "{}", self.stdout_text());
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        let line = self
            .stderr
            .lines()
            .find_map(|l| l.strip_prefix("tls-client: error: "))
            .unwrap_or_else(|| panic!("no error line:\n{}", self.stderr));
        assert!(
            line.starts_with(prefix),
            "expected an error line starting\n  {prefix}\ngot:\n{}",
            self.stderr
        );
        line
    }
}

/// The wasmtime flags that give the command what it needs: the network, name lookup,
/// and the test PKI as /certs.
fn wasmtime_grants() -> Vec<String> {
    vec![
        "-S".to_owned(),
        "inherit-network".to_owned(),
        "-S".to_owned(),
        "allow-ip-name-lookup".to_owned(),
        "--dir".to_owned(),
        format!("{}::/certs", path_str(&pki().dir)),
    ]
}

impl Client {
    /// The CA file as this client names it.
    fn cafile(self) -> String {
        let root = &pki().ecdsa.root_file;
        match self {
            Self::Native => path_str(root),
            Self::Wasm => format!(
                "/certs/{}",
                root.file_name()
                    .and_then(|n| n.to_str())
                    .expect("a file name")
            ),
        }
    }

    /// `--starttls protocol` to 127.0.0.1:`port`, verified as localhost against the test
    /// root only, then `extra`.
    fn args(self, port: u16, protocol: &str, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = [
            "--connect",
            &format!("127.0.0.1:{port}"),
            "--servername",
            "localhost",
            "--cafile",
            &self.cafile(),
            "--no-default-roots",
            "--timeout",
            "5",
            "--starttls",
            protocol,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    }

    fn run(self, args: &[String], stdin: Option<&[u8]>) -> Output {
        match self {
            Self::Native => run(Path::new(env!("CARGO_BIN_EXE_tls-client")), args, stdin),
            Self::Wasm => run_wasm(&wasmtime_grants(), args, stdin),
        }
    }

    /// Runs `--starttls protocol` against `port` with `--request request`.
    fn request(self, port: u16, protocol: &str, request: &str) -> Output {
        self.run(&self.args(port, protocol, &["--request", request]), None)
    }
}

/// `wasmtime run` with `grants` on the compiled component.
fn run_wasm(grants: &[String], args: &[String], stdin: Option<&[u8]>) -> Output {
    let (wasmtime, compiled) = compiled_wasm();
    let mut all = vec!["run".to_owned(), "--allow-precompiled".to_owned()];
    all.extend(grants.iter().cloned());
    all.push(path_str(compiled));
    all.extend(args.iter().cloned());
    run(wasmtime, &all, stdin)
}

/// Runs `program` to its end (killed after [`RUN_LIMIT`]), feeding it `stdin` then EOF.
fn run(program: &Path, args: &[String], stdin: Option<&[u8]>) -> Output {
    let dir = fresh_dir("starttls-run");
    let stdout_file = dir.join("stdout");
    let stderr_file = dir.join("stderr");
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(fs::File::create(&stdout_file).expect("create the stdout file"))
        .stderr(fs::File::create(&stderr_file).expect("create the stderr file"))
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", program.display()));
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(data).expect("write the command's stdin");
    }
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the command") {
            break status;
        }
        if started.elapsed() >= RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} did not finish in {RUN_LIMIT:?}; stderr:\n{}",
                program.display(),
                fs::read_to_string(&stderr_file).unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(10));
    };
    let output = Output {
        code: status.code(),
        stdout: fs::read(&stdout_file).unwrap_or_default(),
        stderr: fs::read_to_string(&stderr_file).unwrap_or_default(),
        took: started.elapsed(),
    };
    let _ = fs::remove_dir_all(&dir);
    output
}

// ---------------------------------------------------------------------------------------
// Processes and files
// ---------------------------------------------------------------------------------------

fn require_root(what: &str) {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    assert_eq!(
        uid, "0",
        "{what} is started as root (it switches to its own users): run the tests as root"
    );
}

fn chown(path: &Path, owner: &str) {
    let status = Command::new("chown")
        .arg("-R")
        .arg(owner)
        .arg(path)
        .status()
        .expect("run chown");
    assert!(status.success(), "chown {owner} {} failed", path.display());
}

/// Sends `signal` to `pid` (the shell's kill: no libc in the tests).
fn signal(pid: u32, signal: &str) {
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -{signal} {pid} 2>/dev/null"))
        .status();
}

/// Waits up to `limit` for `child` to exit.
fn exited_within(child: &mut Child, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Whether 127.0.0.1:`port` accepts a TCP connection within `limit`, while `child` runs.
fn accepts_within(child: &mut Child, port: u16, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        let addr = (Ipv4Addr::LOCALHOST, port).into();
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Runs a command to its end within [`START_LIMIT`]; its output on failure.
fn run_quietly(cmd: &mut Command, log: &Path) -> Result<(), String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(fs::File::create(log).expect("create a log"))
        .stderr(fs::File::create(log.with_extension("err")).expect("create a log"))
        .spawn()
        .map_err(|err| format!("cannot run {cmd:?}: {err}"))?;
    if !exited_within(&mut child, START_LIMIT) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("{cmd:?} did not finish in {START_LIMIT:?}"));
    }
    let status = child.wait().map_err(|err| err.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed ({status}):\n{}{}",
            fs::read_to_string(log).unwrap_or_default(),
            fs::read_to_string(log.with_extension("err")).unwrap_or_default()
        ))
    }
}

/// The test PKI's localhost certificate, chain included, and its key, as files in `dir`.
fn server_identity(dir: &Path) -> (PathBuf, PathBuf) {
    let leaf = &pki().ecdsa.leaf;
    let cert = dir.join("server.crt");
    let key = dir.join("server.key");
    fs::write(&cert, &leaf.full_chain_pem).expect("write the certificate");
    fs::write(&key, &leaf.key_pem).expect("write the key");
    (cert, key)
}

// ---------------------------------------------------------------------------------------
// dovecot
// ---------------------------------------------------------------------------------------

/// dovecot (IMAP and POP3) on 127.0.0.1, with a passwd-file user and no system
/// authentication; stopped when dropped.
struct Dovecot {
    child: Child,
    dir: PathBuf,
    imap: u16,
    pop3: u16,
}

impl Dovecot {
    fn start(ssl: bool) -> Self {
        require_root("dovecot");
        let mut last = String::new();
        // A port may be taken between finding it free and dovecot binding it: retry.
        for _ in 0..3 {
            let dir = fresh_dir("dovecot");
            let (imap, pop3) = (free_port(), free_port());
            let (cert, key) = server_identity(&dir);
            let home = dir.join("home");
            fs::create_dir_all(home.join(MAIL_USER)).expect("create the home directory");
            chown(&home, "nobody:nogroup");
            fs::create_dir_all(dir.join("state")).expect("create the state directory");
            fs::write(
                dir.join("passwd"),
                format!("{MAIL_USER}:{{PLAIN}}{MAIL_PASSWORD}\n"),
            )
            .expect("write the passwd-file");
            let d = path_str(&dir);
            // LOGIN is allowed only after STARTTLS (disable_plaintext_auth), so a login
            // that works shows the upgrade happened.
            let conf = format!(
                "base_dir = {d}/run\n\
                 state_dir = {d}/state\n\
                 log_path = {d}/dovecot.log\n\
                 protocols = imap pop3\n\
                 listen = 127.0.0.1\n\
                 ssl = {ssl}\n\
                 ssl_cert = <{cert}\n\
                 ssl_key = <{key}\n\
                 disable_plaintext_auth = yes\n\
                 auth_mechanisms = plain\n\
                 first_valid_uid = 1\n\
                 passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {d}/passwd\n}}\n\
                 userdb {{\n  driver = static\n  args = uid=nobody gid=nogroup home={d}/home/%u\n}}\n\
                 mail_location = maildir:~/Maildir\n\
                 service imap-login {{\n  inet_listener imap {{\n    port = {imap}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
                 service pop3-login {{\n  inet_listener pop3 {{\n    port = {pop3}\n  }}\n  inet_listener pop3s {{\n    port = 0\n  }}\n}}\n",
                ssl = if ssl { "yes" } else { "no" },
                cert = path_str(&cert),
                key = path_str(&key),
            );
            let conf_file = dir.join("dovecot.conf");
            fs::write(&conf_file, conf).expect("write dovecot.conf");
            let child = Command::new("dovecot")
                .arg("-F")
                .arg("-c")
                .arg(&conf_file)
                .stdin(Stdio::null())
                .stdout(fs::File::create(dir.join("stdout")).expect("create a log"))
                .stderr(fs::File::create(dir.join("stderr")).expect("create a log"))
                .spawn()
                .expect("start dovecot (Debian's dovecot-imapd; cargo xtask setup installs it)");
            let mut server = Self {
                child,
                dir,
                imap,
                pop3,
            };
            if accepts_within(&mut server.child, imap, START_LIMIT)
                && accepts_within(&mut server.child, pop3, START_LIMIT)
            {
                return server;
            }
            last = server.log();
        }
        panic!("dovecot did not start:\n{last}");
    }

    fn log(&self) -> String {
        ["stdout", "stderr", "dovecot.log"]
            .iter()
            .map(|f| fs::read_to_string(self.dir.join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // SIGTERM: the master stops its services, which SIGKILL would leave running.
        signal(self.child.id(), "TERM");
        if !exited_within(&mut self.child, Duration::from_secs(10)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------------------

/// The directory of Debian's newest PostgreSQL programs.
fn postgres_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .expect("no /usr/lib/postgresql: install Debian's postgresql (cargo xtask setup)")
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .expect("no PostgreSQL server in /usr/lib/postgresql/*/bin")
}

/// PostgreSQL on 127.0.0.1 as the `postgres` user, in a temporary directory it owns
/// (data, certificate, unix sockets), with trust authentication; stopped when dropped.
struct Postgres {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Postgres {
    fn start(ssl: bool) -> Self {
        require_root("PostgreSQL");
        let bin = postgres_bin();
        let dir = fresh_dir("postgres");
        let (cert, key) = server_identity(&dir);
        chown(&dir, "postgres:postgres");
        let status = Command::new("chmod")
            .arg("600")
            .arg(&key)
            .status()
            .expect("run chmod");
        assert!(status.success(), "chmod of the key failed");
        let data = dir.join("data");
        run_quietly(
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"]),
            &dir.join("initdb.log"),
        )
        .unwrap_or_else(|err| panic!("initdb: {err}"));
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port();
            let log = dir.join("postgres.log");
            let child = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(bin.join("postgres"))
                .arg("-D")
                .arg(&data)
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k"])
                .arg(&dir)
                .args(["-c", &format!("ssl={}", if ssl { "on" } else { "off" })])
                .args(["-c", &format!("ssl_cert_file={}", path_str(&cert))])
                .args(["-c", &format!("ssl_key_file={}", path_str(&key))])
                .args(["-c", "fsync=off"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(fs::File::create(&log).expect("create the log"))
                .spawn()
                .expect("run runuser");
            let mut child = child;
            if accepts_within(&mut child, port, START_LIMIT)
                && postgres_ready_within(&mut child, &data, START_LIMIT)
            {
                return Self { child, dir, port };
            }
            last = fs::read_to_string(&log).unwrap_or_default();
            stop_postgres(&mut child, &dir);
        }
        let _ = fs::remove_dir_all(&dir);
        panic!("postgres did not start:\n{last}");
    }
}

/// Whether the postmaster says it is ready within `limit`: it listens before it
/// accepts sessions ("the database system is starting up"). Its status is the 8th
/// line of postmaster.pid.
fn postgres_ready_within(child: &mut Child, data: &Path, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        let status = fs::read_to_string(data.join("postmaster.pid")).unwrap_or_default();
        if status.lines().nth(7).map(str::trim) == Some("ready") {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Fast shutdown of the postmaster (runuser's child, in `dir`), after which runuser
/// ends too.
fn stop_postgres(runuser: &mut Child, dir: &Path) {
    let pid = fs::read_to_string(dir.join("data/postmaster.pid"))
        .ok()
        .and_then(|text| text.lines().next()?.trim().parse::<u32>().ok());
    if let Some(pid) = pid {
        signal(pid, "INT");
    }
    if !exited_within(runuser, Duration::from_secs(10)) {
        if let Some(pid) = pid {
            signal(pid, "KILL");
        }
        let _ = runuser.kill();
    }
    let _ = runuser.wait();
}

impl Drop for Postgres {
    fn drop(&mut self) {
        stop_postgres(&mut self.child, &self.dir);
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A StartupMessage (protocol 3.0) for user and database `postgres`, then Terminate.
fn postgres_startup_and_terminate() -> Vec<u8> {
    let mut params = Vec::new();
    for text in ["user", "postgres", "database", "postgres", ""] {
        params.extend_from_slice(text.as_bytes());
        params.push(0);
    }
    let len = u32::try_from(8 + params.len()).expect("a short message");
    let mut message = len.to_be_bytes().to_vec();
    message.extend_from_slice(&196_608u32.to_be_bytes());
    message.extend_from_slice(&params);
    message.extend_from_slice(b"X\x00\x00\x00\x04");
    message
}

// ---------------------------------------------------------------------------------------
// Scripted servers
// ---------------------------------------------------------------------------------------

/// The plaintext side of a scripted server's connection.
struct Peer {
    sock: TcpStream,
    buf: Vec<u8>,
}

impl Peer {
    fn send(&mut self, data: &str) -> std::io::Result<()> {
        self.sock.write_all(data.as_bytes())
    }

    /// Reads up to and including `end`.
    fn until(&mut self, end: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut chunk = [0; 4096];
        loop {
            if let Some(i) = self.buf.windows(end.len()).position(|w| w == end) {
                return Ok(self.buf.drain(..i + end.len()).collect());
            }
            if self.buf.len() > 64 * 1024 {
                return Err(ErrorKind::InvalidData.into());
            }
            let n = self.sock.read(&mut chunk)?;
            if n == 0 {
                return Err(ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// One CRLF line, without its CRLF.
    fn line(&mut self) -> std::io::Result<String> {
        let mut line = self.until(b"\r\n")?;
        line.truncate(line.len() - 2);
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    fn exact(&mut self, n: usize) -> std::io::Result<Vec<u8>> {
        while self.buf.len() < n {
            let mut chunk = [0; 4096];
            let got = self.sock.read(&mut chunk)?;
            if got == 0 {
                return Err(ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..got]);
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Reads until the client closes or the wait ends, so that closing ours sends a FIN,
    /// never a reset that could overtake the last bytes.
    fn drain(&mut self) {
        let mut chunk = [0; 4096];
        while matches!(self.sock.read(&mut chunk), Ok(n) if n > 0) {}
    }
}

/// What a script decides once the plaintext part is over.
enum Then {
    /// TLS: read one line, answer `echo: LINE`, close with close_notify.
    Tls,
    /// No TLS: wait for the client to hang up.
    Hang,
}

/// What a scripted server saw.
#[derive(Debug, Default)]
struct Seen {
    /// What the client sent in plaintext, in order.
    plaintext: Vec<String>,
    /// The line it sent over TLS.
    tls_line: Option<String>,
}

type Script = Box<dyn FnOnce(&mut Peer, &mut Seen) -> std::io::Result<Then> + Send>;

/// A server on 127.0.0.1 for one connection: `script` over plaintext, then TLS with
/// rustls (the test PKI's localhost certificate) if the script says so.
struct Scripted {
    port: u16,
    handle: JoinHandle<Result<Seen, String>>,
}

fn tls_config() -> Arc<ServerConfig> {
    static CONFIG: OnceLock<Arc<ServerConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let leaf = &pki().ecdsa.leaf;
            let chain: Vec<CertificateDer<'static>> = std::iter::once(leaf.leaf_der.clone())
                .chain(leaf.chain_der.iter().cloned())
                .map(CertificateDer::from)
                .collect();
            let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).expect("the key");
            let config = ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("the certificate");
            Arc::new(config)
        })
        .clone()
}

impl Scripted {
    fn start(script: Script) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("an address").port();
        let handle = thread::spawn(move || serve(&listener, script));
        Self { port, handle }
    }

    fn join(self) -> Seen {
        match self.handle.join() {
            Ok(Ok(seen)) => seen,
            Ok(Err(err)) => panic!("the scripted server failed: {err}"),
            Err(_) => panic!("the scripted server panicked"),
        }
    }
}

fn serve(listener: &TcpListener, script: Script) -> Result<Seen, String> {
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + SERVER_WAIT;
    let sock = loop {
        match listener.accept() {
            Ok((sock, _)) => break sock,
            Err(err) if err.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(5));
            }
            Err(err) => return Err(format!("no client came: {err}")),
        }
    };
    let setup = |sock: &TcpStream| -> std::io::Result<()> {
        sock.set_nonblocking(false)?;
        sock.set_read_timeout(Some(SERVER_WAIT))?;
        sock.set_write_timeout(Some(SERVER_WAIT))
    };
    setup(&sock).map_err(|e| e.to_string())?;
    let mut peer = Peer {
        sock,
        buf: Vec::new(),
    };
    let mut seen = Seen::default();
    let then = script(&mut peer, &mut seen).map_err(|e| format!("{e} (so far: {seen:?})"))?;
    match then {
        Then::Hang => {
            peer.drain();
            Ok(seen)
        }
        Then::Tls => {
            if !peer.buf.is_empty() {
                return Err(format!("the client sent {:?} before TLS", peer.buf));
            }
            let conn = ServerConnection::new(tls_config()).map_err(|e| e.to_string())?;
            let mut tls = StreamOwned::new(conn, peer.sock);
            let mut line = Vec::new();
            let mut byte = [0; 1];
            while line.last() != Some(&b'\n') && line.len() < 1024 {
                tls.read_exact(&mut byte)
                    .map_err(|e| format!("reading over TLS: {e}"))?;
                line.push(byte[0]);
            }
            let text = String::from_utf8_lossy(&line).trim_end().to_owned();
            tls.write_all(format!("echo: {text}\r\n").as_bytes())
                .map_err(|e| e.to_string())?;
            tls.conn.send_close_notify();
            tls.flush().map_err(|e| e.to_string())?;
            seen.tls_line = Some(text);
            let mut rest = Vec::new();
            let _ = tls.read_to_end(&mut rest);
            Ok(seen)
        }
    }
}

/// Reads a line from the client, records it, and checks it is `expected`.
fn expect_line(peer: &mut Peer, seen: &mut Seen, expected: &str) -> std::io::Result<()> {
    let line = peer.line()?;
    seen.plaintext.push(line.clone());
    if line == expected {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "expected {expected:?}, got {line:?}"
        )))
    }
}

/// Runs `protocol` against a scripted server with `--request 'hello over TLS\n'`.
fn scripted(client: Client, protocol: &str, extra: &[&str], script: Script) -> (Output, Seen) {
    let server = Scripted::start(script);
    let mut extra: Vec<&str> = extra.to_vec();
    extra.extend(["--request", "hello over TLS\\n"]);
    let out = client.run(&client.args(server.port, protocol, &extra), None);
    let seen = server.join();
    (out, seen)
}

/// A scripted upgrade worked: the TLS line went through and came back.
fn assert_upgraded(out: &Output, seen: &Seen) {
    out.assert_handshake();
    assert_eq!(seen.tls_line.as_deref(), Some("hello over TLS"), "{seen:?}");
    assert_eq!(out.stdout_text(), "echo: hello over TLS\r\n");
}

const XMPP_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";

/// The XMPP server's side up to its features: reads the client's stream header,
/// answers with its own and then `features`, in two writes.
fn xmpp_until_features(peer: &mut Peer, seen: &mut Seen, features: &str) -> std::io::Result<()> {
    let header = peer.until(b"version='1.0'>")?;
    seen.plaintext
        .push(String::from_utf8_lossy(&header).into_owned());
    peer.send(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
         xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='localhost' \
         version='1.0'>",
    )?;
    thread::sleep(Duration::from_millis(20));
    peer.send(features)
}

/// The LDAP StartTLS request the client must send: message 1, OID 1.3.6.1.4.1.1466.20037.
const LDAP_STARTTLS: &[u8] = b"\x30\x1d\x02\x01\x01\x77\x18\x80\x16\
1.3.6.1.4.1.1466.20037";

/// An LDAP ExtendedResponse to message 1: `result`, no matched DN, `diagnostic`, and the
/// StartTLS OID as its responseName.
fn ldap_response(result: u8, diagnostic: &str) -> Vec<u8> {
    let oid = b"1.3.6.1.4.1.1466.20037";
    let mut op = vec![0x0a, 0x01, result, 0x04, 0x00, 0x04, diagnostic.len() as u8];
    op.extend_from_slice(diagnostic.as_bytes());
    op.push(0x8a);
    op.push(oid.len() as u8);
    op.extend_from_slice(oid);
    let mut body = vec![0x02, 0x01, 0x01, 0x78, op.len() as u8];
    body.extend_from_slice(&op);
    let mut message = vec![0x30, body.len() as u8];
    message.extend_from_slice(&body);
    message
}

fn ldap_script(result: u8, diagnostic: &'static str) -> Script {
    Box::new(move |peer, seen| {
        let request = peer.exact(LDAP_STARTTLS.len())?;
        seen.plaintext.push(format!("{request:02x?}"));
        if request != LDAP_STARTTLS {
            return Err(std::io::Error::other(format!(
                "not the StartTLS request: {request:02x?}"
            )));
        }
        peer.sock.write_all(&ldap_response(result, diagnostic))?;
        Ok(if result == 0 { Then::Tls } else { Then::Hang })
    })
}

// ---------------------------------------------------------------------------------------
// The tests, for either client
// ---------------------------------------------------------------------------------------

fn imap_dovecot_login(client: Client) {
    let dovecot = Dovecot::start(true);
    let request =
        format!("a LOGIN {MAIL_USER} {MAIL_PASSWORD}\\r\\nb SELECT INBOX\\r\\nc LOGOUT\\r\\n");
    let out = client.request(dovecot.imap, "imap", &request);
    out.assert_handshake();
    let text = out.stdout_text();
    assert!(text.contains("\r\na OK "), "{text}\n{}", dovecot.log());
    assert!(text.contains("Logged in"), "{text}");
    assert!(text.contains("\r\nb OK [READ-WRITE]"), "{text}");
    assert!(text.contains("\r\nc OK Logout completed"), "{text}");
    assert!(dovecot.log().contains(", TLS"), "{}", dovecot.log());
}

fn imap_dovecot_without_ssl(client: Client) {
    let dovecot = Dovecot::start(false);
    let out = client.request(dovecot.imap, "imap", "a LOGOUT\\r\\n");
    let prefix = "the server does not offer STARTTLS: its capabilities are \"* CAPABILITY ";
    let line = out.assert_error_starting(prefix);
    assert!(line[prefix.len()..].contains("IMAP4rev1"), "{line}");
    assert!(!line[prefix.len()..].contains("STARTTLS"), "{line}");
}

fn pop3_dovecot(client: Client) {
    let dovecot = Dovecot::start(true);
    let request = format!("USER {MAIL_USER}\\r\\nPASS {MAIL_PASSWORD}\\r\\nSTAT\\r\\nQUIT\\r\\n");
    let out = client.request(dovecot.pop3, "pop3", &request);
    out.assert_handshake();
    let text = out.stdout_text();
    assert!(text.contains("+OK Logged in."), "{text}\n{}", dovecot.log());
    assert!(text.contains("+OK 0 0\r\n"), "{text}");
    assert!(text.contains("+OK Logging out."), "{text}");
}

fn pop3_dovecot_without_ssl(client: Client) {
    let dovecot = Dovecot::start(false);
    let out = client.request(dovecot.pop3, "pop3", "QUIT\\r\\n");
    out.assert_error_starting("the server refused STARTTLS: \"-ERR ");
}

fn postgres_startup(client: Client) {
    let server = Postgres::start(true);
    let args = client.args(server.port, "postgres", &[]);
    let out = client.run(&args, Some(&postgres_startup_and_terminate()));
    out.assert_handshake();
    // AuthenticationOk ('R', length 8, code 0), then the session's messages, among
    // them ReadyForQuery ('Z', length 5, idle).
    assert!(
        out.stdout.starts_with(b"R\x00\x00\x00\x08\x00\x00\x00\x00"),
        "not an AuthenticationOk: {:?}",
        &out.stdout[..out.stdout.len().min(64)]
    );
    assert!(
        out.stdout.windows(6).any(|w| w == b"Z\x00\x00\x00\x05I"),
        "no ReadyForQuery: {:?}",
        out.stdout
    );
}

fn postgres_ssl_off(client: Client) {
    let server = Postgres::start(false);
    let out = client.run(
        &client.args(server.port, "postgres", &[]),
        Some(&postgres_startup_and_terminate()),
    );
    out.assert_error("the server refused STARTTLS: it answered the SSLRequest with \"N\" (no SSL)");
}

fn smtp(client: Client) {
    let (out, seen) = scripted(
        client,
        "smtp",
        &["--name", "client.test"],
        Box::new(|peer, seen| {
            peer.send("220-mx.test ESMTP scripted\r\n220 ready\r\n")?;
            expect_line(peer, seen, "EHLO client.test")?;
            peer.send("250-mx.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n")?;
            expect_line(peer, seen, "STARTTLS")?;
            peer.send("220 2.0.0 Ready to start TLS\r\n")?;
            Ok(Then::Tls)
        }),
    );
    assert_upgraded(&out, &seen);
}

fn smtp_refused(client: Client) {
    let (out, _) = scripted(
        client,
        "smtp",
        &[],
        Box::new(|peer, seen| {
            peer.send("220 mx.test ESMTP\r\n")?;
            expect_line(peer, seen, "EHLO localhost")?;
            peer.send("250-mx.test\r\n250 STARTTLS\r\n")?;
            expect_line(peer, seen, "STARTTLS")?;
            peer.send("454 4.7.0 TLS not available due to local problem\r\n")?;
            Ok(Then::Hang)
        }),
    );
    out.assert_error(
        "the server refused STARTTLS: \"454 4.7.0 TLS not available due to local problem\"",
    );
}

fn smtp_not_offered(client: Client) {
    let (out, _) = scripted(
        client,
        "smtp",
        &[],
        Box::new(|peer, seen| {
            peer.send("220 mx.test ESMTP\r\n")?;
            expect_line(peer, seen, "EHLO localhost")?;
            peer.send("250-mx.test\r\n250 SIZE 1000\r\n")?;
            Ok(Then::Hang)
        }),
    );
    out.assert_error(
        "the server does not offer STARTTLS: its answer to EHLO is \"250-mx.test\\n250 SIZE 1000\"",
    );
}

fn smtp_injected_data(client: Client) {
    let (out, _) = scripted(
        client,
        "smtp",
        &[],
        Box::new(|peer, seen| {
            peer.send("220 mx.test ESMTP\r\n")?;
            expect_line(peer, seen, "EHLO localhost")?;
            peer.send("250-mx.test\r\n250 STARTTLS\r\n")?;
            expect_line(peer, seen, "STARTTLS")?;
            // The answer and a forged reply in one segment.
            peer.send("220 go ahead\r\n250 2.1.0 injected\r\n")?;
            Ok(Then::Hang)
        }),
    );
    out.assert_error(
        "the server sent data after accepting STARTTLS, before the TLS handshake: \
         \"250 2.1.0 injected\\r\\n\"; refusing it, as it could be injected plaintext",
    );
}

fn smtp_silent_server_times_out(client: Client) {
    let server = Scripted::start(Box::new(|_, _| Ok(Then::Hang)));
    let mut args = client.args(server.port, "smtp", &["--request", "x"]);
    args.extend(["--timeout".to_owned(), "1".to_owned()]);
    let out = client.run(&args, None);
    server.join();
    out.assert_error("timed out after 1.0 s waiting for the server's greeting (SMTP STARTTLS)");
    assert!(out.took < Duration::from_secs(10), "took {:?}", out.took);
}

fn smtp_endless_line(client: Client) {
    let (out, _) = scripted(
        client,
        "smtp",
        &[],
        Box::new(|peer, _| {
            peer.send(&format!("220 {}", "x".repeat(9000)))?;
            Ok(Then::Hang)
        }),
    );
    let line = out.assert_error_starting(&format!(
        "the server's greeting has a line longer than 8192 bytes: \"220 {}\"... (",
        "x".repeat(156)
    ));
    assert!(line.ends_with(" bytes)"), "{line}");
    // The excerpt is short however long the line.
    assert!(out.stderr.len() < 1000, "{}", out.stderr);
}

fn imap_refused(client: Client) {
    let (out, _) = scripted(
        client,
        "imap",
        &[],
        Box::new(|peer, seen| {
            peer.send("* OK IMAP4rev1 scripted ready\r\n")?;
            expect_line(peer, seen, "a CAPABILITY")?;
            peer.send("* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\na OK done\r\n")?;
            expect_line(peer, seen, "b STARTTLS")?;
            peer.send("b NO [UNAVAILABLE] TLS \x1b[31mnot\x1b[0m available\r\n")?;
            Ok(Then::Hang)
        }),
    );
    // Control characters come escaped, never raw.
    out.assert_error(
        "the server refused STARTTLS: \"b NO [UNAVAILABLE] TLS \\x1b[31mnot\\x1b[0m available\"",
    );
}

fn pop3_refused(client: Client) {
    let (out, _) = scripted(
        client,
        "pop3",
        &[],
        Box::new(|peer, seen| {
            peer.send("+OK POP3 scripted ready\r\n")?;
            expect_line(peer, seen, "STLS")?;
            peer.send("-ERR TLS not available\r\n")?;
            Ok(Then::Hang)
        }),
    );
    out.assert_error("the server refused STARTTLS: \"-ERR TLS not available\"");
}

fn ftp(client: Client) {
    let (out, seen) = scripted(
        client,
        "ftp",
        &[],
        Box::new(|peer, seen| {
            peer.send("220-Welcome\r\n to a scripted FTP server\r\n220 ready\r\n")?;
            expect_line(peer, seen, "AUTH TLS")?;
            peer.send("234 AUTH TLS successful\r\n")?;
            Ok(Then::Tls)
        }),
    );
    assert_upgraded(&out, &seen);
}

fn ftp_refused(client: Client) {
    let (out, _) = scripted(
        client,
        "ftp",
        &[],
        Box::new(|peer, seen| {
            peer.send("220 ready\r\n")?;
            expect_line(peer, seen, "AUTH TLS")?;
            peer.send("534 Local policy on server does not allow TLS\r\n")?;
            Ok(Then::Hang)
        }),
    );
    out.assert_error(
        "the server refused STARTTLS: \"534 Local policy on server does not allow TLS\"",
    );
}

fn xmpp(client: Client) {
    let (out, seen) = scripted(
        client,
        "xmpp",
        &[],
        Box::new(|peer, seen| {
            xmpp_until_features(
                peer,
                seen,
                &format!(
                    "<stream:features><starttls xmlns='{XMPP_TLS}'><required/></starttls>\
                     <mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
                     <mechanism>PLAIN</mechanism></mechanisms></stream:features>"
                ),
            )?;
            let request = peer.until(b"/>")?;
            seen.plaintext
                .push(String::from_utf8_lossy(&request).into_owned());
            peer.send(&format!("<proceed xmlns='{XMPP_TLS}'/>"))?;
            Ok(Then::Tls)
        }),
    );
    assert_upgraded(&out, &seen);
    assert!(
        seen.plaintext[0].contains("<stream:stream ")
            && seen.plaintext[0].contains(" to='localhost' "),
        "{seen:?}"
    );
    assert_eq!(seen.plaintext[1], format!("<starttls xmlns='{XMPP_TLS}'/>"));
}

fn xmpp_refused(client: Client) {
    let (out, _) = scripted(
        client,
        "xmpp",
        &[],
        Box::new(|peer, seen| {
            xmpp_until_features(
                peer,
                seen,
                &format!("<stream:features><starttls xmlns='{XMPP_TLS}'/></stream:features>"),
            )?;
            peer.until(b"/>")?;
            peer.send(&format!("<failure xmlns='{XMPP_TLS}'/></stream:stream>"))?;
            Ok(Then::Hang)
        }),
    );
    out.assert_error(&format!(
        "the server refused STARTTLS: \"<failure xmlns='{XMPP_TLS}'/>\""
    ));
}

fn ldap(client: Client) {
    let (out, seen) = scripted(client, "ldap", &[], ldap_script(0, ""));
    assert_upgraded(&out, &seen);
}

fn ldap_refused(client: Client) {
    let (out, _) = scripted(
        client,
        "ldap",
        &[],
        ldap_script(2, "unsupported extended operation"),
    );
    out.assert_error(
        "the server refused STARTTLS: resultCode 2 (protocolError), \
         \"unsupported extended operation\"",
    );
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod native {
            $(
                #[test]
                fn $name() {
                    super::$name(super::Client::Native)
                }
            )*
        }

        mod wasmtime {
            $(
                #[test]
                #[ignore = "needs tls-client.wasm: cargo xtask test runs it"]
                fn $name() {
                    super::$name(super::Client::Wasm)
                }
            )*
        }
    };
}

both!(
    imap_dovecot_login,
    imap_dovecot_without_ssl,
    pop3_dovecot,
    pop3_dovecot_without_ssl,
    postgres_startup,
    postgres_ssl_off,
    smtp,
    smtp_refused,
    smtp_not_offered,
    smtp_injected_data,
    smtp_silent_server_times_out,
    smtp_endless_line,
    imap_refused,
    pop3_refused,
    ftp,
    ftp_refused,
    xmpp,
    xmpp_refused,
    ldap,
    ldap_refused,
);

#[test]
fn an_unknown_protocol_is_a_usage_error() {
    let out = Client::Native.run(
        &[
            "--connect".to_owned(),
            "127.0.0.1:1".to_owned(),
            "--starttls".to_owned(),
            "gopher".to_owned(),
        ],
        None,
    );
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "tls-client: --starttls wants one of smtp, imap, pop3, ftp, postgres, xmpp, ldap, \
             not 'gopher'"
        ),
        "{}",
        out.stderr
    );
}

// ---------------------------------------------------------------------------------------
// Under wasmtime: an error from a missing capability names the flag that grants it
// ---------------------------------------------------------------------------------------

mod wasmtime_capabilities {
    use super::*;

    /// A port that accepts connections, for the runs that must not get that far.
    fn listener() -> (TcpListener, u16) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("an address").port();
        (listener, port)
    }

    fn grants_without(flag: &str) -> Vec<String> {
        let all = wasmtime_grants();
        let out: Vec<String> = all
            .chunks(2)
            .filter(|pair| pair[0] != flag && pair[1] != flag)
            .flatten()
            .cloned()
            .collect();
        assert_eq!(out.len(), all.len() - 2, "{flag} not among {all:?}");
        out
    }

    #[test]
    #[ignore = "needs tls-client.wasm: cargo xtask test runs it"]
    fn a_ca_file_outside_every_dir() {
        let (_listener, port) = listener();
        let args = Client::Wasm.args(port, "smtp", &[]);
        let out = run_wasm(&grants_without("--dir"), &args, None);
        let cafile = Client::Wasm.cafile();
        out.assert_error(&format!(
            "cannot read CA file '{cafile}': no such file in the directories this program \
             may read (run wasmtime with --dir HOST_DIR::/certs)"
        ));
    }

    #[test]
    #[ignore = "needs tls-client.wasm: cargo xtask test runs it"]
    fn a_missing_file_inside_a_dir_is_only_missing() {
        let (_listener, port) = listener();
        let mut args = Client::Wasm.args(port, "smtp", &[]);
        let at = args.iter().position(|a| a == "--cafile").expect("--cafile") + 1;
        args[at] = "/certs/no-such-file.pem".to_owned();
        let out = run_wasm(&wasmtime_grants(), &args, None);
        out.assert_error(
            "cannot read CA file '/certs/no-such-file.pem': No such file or directory (os error 44)",
        );
    }

    #[test]
    #[ignore = "needs tls-client.wasm: cargo xtask test runs it"]
    fn a_key_log_outside_every_dir() {
        let (_listener, port) = listener();
        let args = Client::Wasm.args(port, "smtp", &["--keylog", "/logs/keys.txt"]);
        let out = run_wasm(&wasmtime_grants(), &args, None);
        out.assert_error(
            "cannot open key-log file '/logs/keys.txt': not in the directories this program \
             may write (run wasmtime with --dir HOST_DIR::/logs)",
        );
    }

    #[test]
    #[ignore = "needs tls-client.wasm: cargo xtask test runs it"]
    fn no_network() {
        let (_listener, port) = listener();
        let args = Client::Wasm.args(port, "smtp", &[]);
        let out = run_wasm(&grants_without("inherit-network"), &args, None);
        out.assert_error(&format!(
            "cannot connect to 127.0.0.1:{port}: network access denied (run wasmtime with \
             -S inherit-network, and -S allow-ip-name-lookup for host names)"
        ));
    }

    #[test]
    #[ignore = "needs tls-client.wasm: cargo xtask test runs it"]
    fn no_name_lookup() {
        let (_listener, port) = listener();
        let mut args = Client::Wasm.args(port, "smtp", &[]);
        args[1] = format!("localhost:{port}");
        let out = run_wasm(&grants_without("allow-ip-name-lookup"), &args, None);
        out.assert_error(&format!(
            "cannot resolve 'localhost:{port}': name lookup denied or failed (run wasmtime \
             with -S allow-ip-name-lookup, and -S inherit-network to connect)"
        ));
    }
}
