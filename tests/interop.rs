//! The interop matrix: `tls-client` against other TLS stacks on 127.0.0.1 — OpenSSL
//! (`s_server -www`), GnuTLS (`gnutls-serv --http`), nginx (OpenSSL), and lighttpd with
//! mbedTLS and with wolfSSL — for TLS 1.2 and 1.3, with RSA and ECDSA certificates,
//! natively and (when `target/wasm32-wasip2/wasm-release/tls-client.wasm` exists) under
//! wasmtime. Each cell is a handshake, an HTTP GET, and a check of the negotiated
//! version.
//!
//! A server whose program is missing is skipped with a note (`cargo xtask test`
//! installs them all). A version a server's library cannot do is recorded as such once
//! `openssl s_client` confirms it. With `WASM_TLS_WRITE_INTEROP=1` (set by `cargo xtask
//! test`) the table is written to `docs/interop.md`; otherwise the test only asserts.
//!
//! `gnutls-serv` cannot be told which address to bind, so it runs in a network
//! namespace of its own (`unshare --net`) that has only a loopback interface, and the
//! clients join that namespace with `nsenter`.

mod common;

use std::fmt::Write as _;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{fresh_dir, path_str, pki, Hierarchy};

/// Bounds one client run (handshake, request, response).
const RUN_TIMEOUT: Duration = Duration::from_secs(30);
/// Bounds a server's start.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// The port gnutls-serv listens on inside its own network namespace.
const NETNS_PORT: u16 = 4433;
/// Every server answers this (s_server and gnutls-serv with a status page, nginx and
/// lighttpd with a small file) and then closes the connection.
const REQUEST: &str = "GET /index.html HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n";
/// What nginx and lighttpd serve.
const PAGE: &str = "hello from the interop matrix\n";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Server {
    Openssl,
    Gnutls,
    Nginx,
    LighttpdMbedtls,
    LighttpdWolfssl,
}

const SERVERS: [Server; 5] = [
    Server::Openssl,
    Server::Gnutls,
    Server::Nginx,
    Server::LighttpdMbedtls,
    Server::LighttpdWolfssl,
];

impl Server {
    fn name(self) -> &'static str {
        match self {
            Self::Openssl => "openssl s_server -www",
            Self::Gnutls => "gnutls-serv --http",
            Self::Nginx => "nginx",
            Self::LighttpdMbedtls => "lighttpd + mod_mbedtls",
            Self::LighttpdWolfssl => "lighttpd + mod_wolfssl",
        }
    }

    /// Why it cannot run here, if it cannot.
    fn missing(self) -> Option<String> {
        let need: &[&str] = match self {
            Self::Openssl => &["openssl"],
            Self::Gnutls => &["gnutls-serv", "unshare", "nsenter", "ip"],
            Self::Nginx => &["nginx"],
            Self::LighttpdMbedtls | Self::LighttpdWolfssl => &["lighttpd"],
        };
        for program in need {
            if which(program).is_none() {
                return Some(format!("`{program}` is not installed"));
            }
        }
        if self == Self::Gnutls {
            // A network namespace needs root (CAP_SYS_ADMIN).
            let netns = Command::new("unshare")
                .args(["--net", "true"])
                .stderr(Stdio::null())
                .status();
            if !netns.is_ok_and(|s| s.success()) {
                return Some("a network namespace cannot be made here (not root?)".to_owned());
            }
        }
        let module = match self {
            Self::LighttpdMbedtls => "mod_mbedtls",
            Self::LighttpdWolfssl => "mod_wolfssl",
            _ => return None,
        };
        let path = Path::new("/usr/lib/lighttpd").join(format!("{module}.so"));
        (!path.exists()).then(|| format!("{} is not installed", path.display()))
    }

    /// The server's (and its TLS library's) version.
    fn version(self) -> String {
        let first_line = |program: &str, args: &[&str]| {
            let out = Command::new(program).args(args).output().ok();
            out.map(|o| {
                let text = if o.stdout.is_empty() {
                    o.stderr
                } else {
                    o.stdout
                };
                String::from_utf8_lossy(&text)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_owned()
            })
            .unwrap_or_default()
        };
        let package = |pattern: &str| {
            let out = Command::new("dpkg-query")
                .args(["-W", "-f", "${Package} ${Version}\\n", pattern])
                .output()
                .ok();
            out.and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .find_map(|l| l.split_once(' ').map(|(_, v)| v.to_owned()))
            })
            .unwrap_or_else(|| "?".to_owned())
        };
        match self {
            Self::Openssl => first_line("openssl", &["version"])
                .split(" (")
                .next()
                .unwrap_or("")
                .to_owned(),
            Self::Gnutls => {
                first_line("gnutls-serv", &["--version"]).replace("gnutls-serv ", "GnuTLS ")
            }
            Self::Nginx => format!(
                "{} ({})",
                first_line("nginx", &["-v"]).replace("nginx version: ", ""),
                first_line("openssl", &["version"])
                    .split(" (")
                    .next()
                    .unwrap_or("")
            ),
            Self::LighttpdMbedtls | Self::LighttpdWolfssl => {
                let lighttpd = first_line("lighttpd", &["-v"]);
                let lighttpd = lighttpd.split(' ').next().unwrap_or("");
                let lib = if self == Self::LighttpdMbedtls {
                    format!("mbedTLS {}", package("libmbedtls[0-9]*"))
                } else {
                    format!("wolfSSL {}", package("libwolfssl[0-9]*"))
                };
                format!("{lighttpd} ({lib})")
            }
        }
    }
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tls {
    V12,
    V13,
}

impl Tls {
    fn name(self) -> &'static str {
        match self {
            Self::V12 => "TLSv1.2",
            Self::V13 => "TLSv1.3",
        }
    }

    fn client_flag(self) -> &'static str {
        match self {
            Self::V12 => "--tls1_2",
            Self::V13 => "--tls1_3",
        }
    }

    fn openssl_flag(self) -> &'static str {
        match self {
            Self::V12 => "-tls1_2",
            Self::V13 => "-tls1_3",
        }
    }
}

// ---------------------------------------------------------------------------------------
// Running servers
// ---------------------------------------------------------------------------------------

/// A server process on 127.0.0.1 (or in its own network namespace), killed when dropped.
struct Running {
    child: Child,
    port: u16,
    dir: PathBuf,
    /// The network namespace to join (gnutls-serv's), as `/proc/PID/ns/net`.
    netns: Option<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Running {
    fn log(&self) -> String {
        let mut all = String::new();
        for name in ["stdout", "stderr", "error.log"] {
            if let Ok(text) = fs::read_to_string(self.dir.join(name)) {
                let _ = writeln!(all, "--- {name} ---\n{text}");
            }
        }
        all
    }

    /// Waits until the port accepts connections; false if the server died first.
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            let ready = match &self.netns {
                // A LISTEN socket on the port, in the namespace's own table.
                Some(_) => {
                    let table = fs::read_to_string(format!("/proc/{}/net/tcp", self.child.id()))
                        .unwrap_or_default();
                    let port = format!(":{:04X} ", self.port);
                    table
                        .lines()
                        .any(|l| l.contains(&port) && l.split_whitespace().nth(3) == Some("0A"))
                }
                None => TcpStream::connect_timeout(
                    &SocketAddr::from((Ipv4Addr::LOCALHOST, self.port)),
                    Duration::from_millis(200),
                )
                .is_ok(),
            };
            if ready {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

fn spawn(mut cmd: Command, dir: &Path) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(fs::File::create(dir.join("stdout")).expect("stdout file"))
        .stderr(fs::File::create(dir.join("stderr")).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {:?}: {err}", cmd.get_program()))
}

/// Writes the identity's chain and key where a server's configuration can name them.
fn write_identity(dir: &Path, hierarchy: &Hierarchy) -> (PathBuf, PathBuf) {
    let chain = dir.join("chain.pem");
    let key = dir.join("key.pem");
    fs::write(&chain, &hierarchy.leaf.full_chain_pem).expect("write the chain");
    fs::write(&key, &hierarchy.leaf.key_pem).expect("write the key");
    (chain, key)
}

fn start(server: Server, hierarchy: &Hierarchy, tls: Tls) -> Result<Running, String> {
    let mut last = String::new();
    // A port found free may be taken before the server binds it: try again.
    for _ in 0..3 {
        let dir = fresh_dir("interop");
        let (chain, key) = write_identity(&dir, hierarchy);
        let port = if server == Server::Gnutls {
            NETNS_PORT
        } else {
            common::free_port()
        };
        let mut netns = None;
        let child = match server {
            Server::Openssl => {
                let mut cmd = Command::new("openssl");
                cmd.arg("s_server")
                    .arg("-accept")
                    .arg(format!("127.0.0.1:{port}"))
                    .args(hierarchy.leaf.server_args())
                    .args(["-www", tls.openssl_flag()]);
                spawn(cmd, &dir)
            }
            Server::Gnutls => {
                let priority = match tls {
                    Tls::V12 => "NORMAL:-VERS-ALL:+VERS-TLS1.2",
                    Tls::V13 => "NORMAL:-VERS-ALL:+VERS-TLS1.3",
                };
                let script = format!(
                    "ip link set lo up && exec gnutls-serv --http --port {port} --x509certfile '{}' --x509keyfile '{}' --priority {priority} --disable-client-cert --nodb",
                    path_str(&chain),
                    path_str(&key)
                );
                let mut cmd = Command::new("unshare");
                cmd.args(["--net", "--", "sh", "-c", &script]);
                let child = spawn(cmd, &dir);
                netns = Some(format!("/proc/{}/ns/net", child.id()));
                child
            }
            Server::Nginx => {
                for sub in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
                    fs::create_dir_all(dir.join(sub)).expect("nginx temp dir");
                }
                let d = path_str(&dir);
                let protocol = tls.name();
                let conf = format!(
                    "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
                     events {{ worker_connections 64; }}\n\
                     http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
                     \x20 server {{\n    listen 127.0.0.1:{port} ssl;\n    ssl_certificate {chain};\n    ssl_certificate_key {key};\n    ssl_protocols {protocol};\n\
                     \x20   location / {{ default_type text/plain; return 200 \"{page}\"; }}\n  }}\n}}\n",
                    chain = path_str(&chain),
                    key = path_str(&key),
                    page = PAGE.replace('\n', "\\n"),
                );
                fs::write(dir.join("nginx.conf"), conf).expect("nginx.conf");
                let mut cmd = Command::new(which("nginx").expect("nginx"));
                cmd.arg("-p")
                    .arg(&dir)
                    .arg("-c")
                    .arg(dir.join("nginx.conf"))
                    .arg("-e")
                    .arg(dir.join("error.log"));
                spawn(cmd, &dir)
            }
            Server::LighttpdMbedtls | Server::LighttpdWolfssl => {
                let module = if server == Server::LighttpdMbedtls {
                    "mod_mbedtls"
                } else {
                    "mod_wolfssl"
                };
                let www = dir.join("www");
                fs::create_dir_all(&www).expect("document root");
                fs::write(www.join("index.html"), PAGE).expect("index.html");
                // wolfSSL aborts a handshake whose ClientHello asks for OCSP stapling
                // (rustls always does; so does `openssl s_client -status`) unless it can
                // verify its own chain: give it the intermediate and the root.
                let cas = dir.join("cas.pem");
                let intermediate = hierarchy
                    .leaf
                    .chain_file
                    .as_ref()
                    .map(|f| fs::read_to_string(f).expect("the intermediate"))
                    .unwrap_or_default();
                fs::write(&cas, format!("{intermediate}{}", hierarchy.root_pem)).expect("cas.pem");
                let protocol = tls.name();
                let conf = format!(
                    "server.modules = (\"{module}\")\nserver.bind = \"127.0.0.1\"\nserver.port = {port}\n\
                     server.document-root = \"{www}\"\nserver.errorlog = \"{d}/error.log\"\n\
                     ssl.engine = \"enable\"\nssl.pemfile = \"{chain}\"\nssl.privkey = \"{key}\"\n\
                     ssl.ca-file = \"{root}\"\n\
                     ssl.openssl.ssl-conf-cmd = (\"MinProtocol\" => \"{protocol}\", \"MaxProtocol\" => \"{protocol}\")\n",
                    www = path_str(&www),
                    d = path_str(&dir),
                    chain = path_str(&chain),
                    key = path_str(&key),
                    root = path_str(&cas),
                );
                fs::write(dir.join("lighttpd.conf"), conf).expect("lighttpd.conf");
                let mut cmd = Command::new(which("lighttpd").expect("lighttpd"));
                cmd.arg("-D").arg("-f").arg(dir.join("lighttpd.conf"));
                spawn(cmd, &dir)
            }
        };
        let mut running = Running {
            child,
            port,
            dir,
            netns,
        };
        if running.wait_ready() {
            return Ok(running);
        }
        last = running.log();
    }
    Err(format!("{} did not start:\n{last}", server.name()))
}

// ---------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------

/// What a client run produced.
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs `program args` (inside `netns` if given) to its end, or kills it after the
/// timeout.
fn run(program: &Path, args: &[String], netns: Option<&str>) -> Run {
    let dir = fresh_dir("interop-client");
    let mut cmd = match netns {
        Some(ns) => {
            let mut cmd = Command::new("nsenter");
            cmd.arg(format!("--net={ns}")).arg("--").arg(program);
            cmd
        }
        None => Command::new(program),
    };
    let mut child = cmd
        .args(args)
        .stdin(Stdio::null())
        .stdout(fs::File::create(dir.join("stdout")).expect("stdout file"))
        .stderr(fs::File::create(dir.join("stderr")).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", program.display()));
    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the client") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let read = |name: &str| {
        String::from_utf8_lossy(&fs::read(dir.join(name)).unwrap_or_default()).into_owned()
    };
    let mut stderr = read("stderr");
    if status.is_none() {
        stderr.push_str("\n(killed after the timeout)");
    }
    let out = Run {
        success: status.is_some_and(|s| s.success()),
        stdout: read("stdout"),
        stderr,
    };
    let _ = fs::remove_dir_all(&dir);
    out
}

/// tls-client's arguments for `port`, trusting `root` (as the client names the file).
fn client_args(port: u16, root: &str, tls: Tls) -> Vec<String> {
    [
        "--connect",
        &format!("127.0.0.1:{port}"),
        "--servername",
        "localhost",
        "--cafile",
        root,
        "--no-default-roots",
        tls.client_flag(),
        "--timeout",
        "10",
        "--request",
        REQUEST,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// The outcome of one client against one server.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    Failed(String),
    /// The server's library cannot do this version (openssl s_client agrees).
    Unsupported,
    NotRun(String),
}

impl Outcome {
    fn cell(&self) -> String {
        match self {
            Self::Ok => "ok".to_owned(),
            Self::Failed(why) => format!("**FAILED**: {why}"),
            Self::Unsupported => "n/a (server lacks it)".to_owned(),
            Self::NotRun(why) => format!("not run ({why})"),
        }
    }
}

/// A summary line of tls-client's stderr, e.g. `Protocol  : TLSv1.3` → `TLSv1.3`.
fn summary<'a>(stderr: &'a str, field: &str) -> Option<&'a str> {
    stderr.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        (name.trim() == field).then(|| value.trim())
    })
}

/// Checks a client run: success, the version asked for, an HTTP 200 with the page.
fn judge(server: Server, tls: Tls, run: &Run) -> (Outcome, Option<String>) {
    let cipher = summary(&run.stderr, "Cipher").map(str::to_owned);
    let error = || {
        run.stderr
            .lines()
            .find(|l| l.contains("error:") || l.contains("killed"))
            .unwrap_or("failed")
            .trim()
            .replace("tls-client: error: ", "")
    };
    if summary(&run.stderr, "Protocol").is_none() {
        return (Outcome::Failed(error()), None);
    }
    if summary(&run.stderr, "Protocol") != Some(tls.name()) {
        let got = summary(&run.stderr, "Protocol").unwrap_or("?");
        return (Outcome::Failed(format!("negotiated {got}")), cipher);
    }
    if !run.success {
        return (Outcome::Failed(error()), cipher);
    }
    let status_ok =
        run.stdout.starts_with("HTTP/1.0 200") || run.stdout.starts_with("HTTP/1.1 200");
    let body_ok = match server {
        Server::Openssl => run.stdout.contains("s_server") && run.stdout.contains("</HTML>"),
        Server::Gnutls => run.stdout.contains("GnuTLS") && run.stdout.contains("</HTML>"),
        _ => run.stdout.ends_with(PAGE),
    };
    if !(status_ok && body_ok) {
        let head: String = run.stdout.chars().take(80).collect();
        return (
            Outcome::Failed(format!("unexpected response {head:?}")),
            cipher,
        );
    }
    (Outcome::Ok, cipher)
}

/// Whether `openssl s_client` can do `tls` with the server: tells a version the server
/// lacks from a client failure.
fn openssl_can(running: &Running, root: &Path, tls: Tls) -> bool {
    let openssl = which("openssl").expect("openssl");
    let args: Vec<String> = [
        "s_client",
        "-connect",
        &format!("127.0.0.1:{}", running.port),
        "-servername",
        "localhost",
        "-CAfile",
        &path_str(root),
        tls.openssl_flag(),
        "-verify_return_error",
        "-brief",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let out = run(&openssl, &args, running.netns.as_deref());
    out.stderr.contains("Protocol version:") || out.stdout.contains("Protocol version:")
}

/// The wasmtime column's runner: `wasmtime run` on a component compiled once.
struct Wasm {
    wasmtime: PathBuf,
    compiled: PathBuf,
    _dir: PathBuf,
}

impl Wasm {
    fn find() -> Result<Self, String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let wasm = root.join("target/wasm32-wasip2/wasm-release/tls-client.wasm");
        if !wasm.exists() {
            return Err("tls-client.wasm not built".to_owned());
        }
        let wasmtime = which("wasmtime")
            .or_else(|| {
                let home = std::env::var_os("HOME")?;
                let p = Path::new(&home).join(".cargo/bin/wasmtime");
                p.is_file().then_some(p)
            })
            .ok_or("wasmtime not installed")?;
        let dir = fresh_dir("interop-wasm");
        let compiled = dir.join("tls-client.cwasm");
        let out = Command::new(&wasmtime)
            .arg("compile")
            .arg("-o")
            .arg(&compiled)
            .arg(&wasm)
            .output()
            .map_err(|err| format!("cannot run wasmtime: {err}"))?;
        if !out.status.success() {
            return Err(format!(
                "wasmtime compile failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Self {
            wasmtime,
            compiled,
            _dir: dir,
        })
    }

    fn run(&self, running: &Running, certs: &Path, tls: Tls, root_name: &str) -> Run {
        let mut args: Vec<String> = [
            "run",
            "--allow-precompiled",
            "-S",
            "inherit-network",
            "-S",
            "allow-ip-name-lookup",
            "--dir",
            &format!("{}::/certs", path_str(certs)),
            &path_str(&self.compiled),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend(client_args(
            running.port,
            &format!("/certs/{root_name}"),
            tls,
        ));
        run(&self.wasmtime, &args, running.netns.as_deref())
    }
}

// ---------------------------------------------------------------------------------------
// The matrix
// ---------------------------------------------------------------------------------------

struct Row {
    server: Server,
    version: String,
    tls: Tls,
    cert: &'static str,
    native: Outcome,
    wasm: Outcome,
    cipher: String,
}

fn run_cell(
    server: Server,
    hierarchy: &Hierarchy,
    tls: Tls,
    wasm: &Result<Wasm, String>,
) -> (Outcome, Outcome, String) {
    let running = match start(server, hierarchy, tls) {
        Ok(running) => running,
        Err(log) => {
            return (
                Outcome::Failed(log.clone()),
                Outcome::Failed(log),
                String::new(),
            )
        }
    };
    let native = run(
        Path::new(env!("CARGO_BIN_EXE_tls-client")),
        &client_args(running.port, &path_str(&hierarchy.root_file), tls),
        running.netns.as_deref(),
    );
    let (mut native_outcome, cipher) = judge(server, tls, &native);
    let unsupported =
        native_outcome != Outcome::Ok && !openssl_can(&running, &hierarchy.root_file, tls);
    if unsupported {
        native_outcome = Outcome::Unsupported;
    } else if native_outcome != Outcome::Ok {
        eprintln!(
            "{} {} ({}): native client failed\n--- tls-client stderr ---\n{}\n--- stdout ---\n{}\n{}",
            server.name(),
            tls.name(),
            if hierarchy.is_rsa { "RSA" } else { "ECDSA" },
            native.stderr,
            native.stdout.chars().take(400).collect::<String>(),
            running.log()
        );
    }
    let wasm_outcome = match wasm {
        Err(why) => Outcome::NotRun(why.clone()),
        Ok(_) if unsupported => Outcome::Unsupported,
        Ok(wasm) => {
            let certs = hierarchy.root_file.parent().expect("the PKI directory");
            let root_name = hierarchy
                .root_file
                .file_name()
                .and_then(|n| n.to_str())
                .expect("a file name");
            let out = wasm.run(&running, certs, tls, root_name);
            let (outcome, _) = judge(server, tls, &out);
            if outcome != Outcome::Ok {
                eprintln!(
                    "{} {}: wasmtime client failed\n{}\n{}",
                    server.name(),
                    tls.name(),
                    out.stderr,
                    running.log()
                );
            }
            outcome
        }
    };
    (native_outcome, wasm_outcome, cipher.unwrap_or_default())
}

fn table(rows: &[Row], skipped: &[(Server, String)], wasm: &Result<Wasm, String>) -> String {
    let mut out = String::new();
    out.push_str("# Interop matrix\n\n");
    out.push_str(
        "`tls-client` (the wasm-tls core over a `TcpStream`) against other TLS stacks on \
         127.0.0.1: a handshake restricted to one protocol version on both sides, an HTTP \
         GET, and a check of the response and of the negotiated version. \"native\" is the \
         command built for the host; \"wasmtime\" is `tls-client.wasm` (wasm32-wasip2) run \
         by wasmtime over WASI sockets. Written by `tests/interop.rs` when `cargo xtask \
         test` runs it (`WASM_TLS_WRITE_INTEROP=1`); the certificates are made at test time \
         (a root, an intermediate and a leaf for `localhost`, all RSA-2048 or all ECDSA \
         P-256).\n\n",
    );
    out.push_str(
        "| server | server version | TLS | certificate | native | wasmtime | negotiated cipher |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|\n");
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.server.name(),
            r.version,
            r.tls.name(),
            r.cert,
            r.native.cell(),
            r.wasm.cell(),
            if r.cipher.is_empty() {
                "—"
            } else {
                &r.cipher
            }
        );
    }
    out.push('\n');
    out.push_str("Notes:\n\n");
    out.push_str(
        "- \"n/a (server lacks it)\": the client's handshake failed and `openssl s_client` \
         fails the same way, so the server cannot do that version (Debian's mbedTLS 2.28 \
         has no TLS 1.3).\n",
    );
    out.push_str(
        "- `gnutls-serv` has no option to choose the address it binds, so it runs in a \
         network namespace of its own with only a loopback interface (`unshare --net`), \
         and both clients join it with `nsenter`.\n",
    );
    out.push_str(
        "- lighttpd with wolfSSL aborts every handshake whose ClientHello asks for OCSP \
         stapling (`status_request`, which rustls always sends; `openssl s_client -status` \
         fails the same way) unless `ssl.ca-file` holds the server's own intermediate and \
         root, so that wolfSSL can verify its chain; the configuration here does that.\n",
    );
    if let Err(why) = wasm {
        let _ = writeln!(out, "- The wasmtime column was not run: {why}.");
    }
    for (server, why) in skipped {
        let _ = writeln!(out, "- {} was not run: {why}.", server.name());
    }
    out
}

#[test]
fn interop_matrix() {
    let pki = pki();
    let wasm = Wasm::find();
    if let Err(why) = &wasm {
        eprintln!("note: the wasmtime column is not run: {why}");
    }
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    for server in SERVERS {
        if let Some(why) = server.missing() {
            eprintln!("note: skipping {}: {why}", server.name());
            skipped.push((server, why));
            continue;
        }
        let version = server.version();
        for tls in [Tls::V13, Tls::V12] {
            for (cert, hierarchy) in [("ECDSA P-256", &pki.ecdsa), ("RSA 2048", &pki.rsa)] {
                let started = Instant::now();
                let (native, wasm_outcome, cipher) = run_cell(server, hierarchy, tls, &wasm);
                eprintln!(
                    "{:<24} {} {:<11} native: {:<10} wasmtime: {:<10} {cipher} ({:.1} s)",
                    server.name(),
                    tls.name(),
                    cert,
                    native.cell(),
                    wasm_outcome.cell(),
                    started.elapsed().as_secs_f64()
                );
                rows.push(Row {
                    server,
                    version: version.clone(),
                    tls,
                    cert,
                    native,
                    wasm: wasm_outcome,
                    cipher,
                });
            }
        }
    }
    let text = table(&rows, &skipped, &wasm);
    if std::env::var_os("WASM_TLS_WRITE_INTEROP").is_some_and(|v| v == "1") {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/interop.md");
        fs::create_dir_all(path.parent().expect("docs/")).expect("create docs/");
        fs::write(&path, &text).expect("write docs/interop.md");
        eprintln!("wrote {}", path.display());
    }
    let failures: Vec<String> = rows
        .iter()
        .flat_map(|r| {
            [("native", &r.native), ("wasmtime", &r.wasm)]
                .into_iter()
                .filter(|(_, o)| matches!(o, Outcome::Failed(_)))
                .map(move |(col, o)| {
                    format!(
                        "{} {} {} {col}: {}",
                        r.server.name(),
                        r.tls.name(),
                        r.cert,
                        o.cell()
                    )
                })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "interop failures:\n{}",
        failures.join("\n")
    );
    // Only a library that lacks a version may be excused, and only Debian's mbedTLS 2.28
    // is known to (no TLS 1.3).
    for r in &rows {
        if r.native == Outcome::Unsupported {
            assert!(
                r.server == Server::LighttpdMbedtls && r.tls == Tls::V13,
                "{} claims to lack {}",
                r.server.name(),
                r.tls.name()
            );
        }
    }
}
