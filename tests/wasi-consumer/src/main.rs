//! A test component that imports `wasm-tls:client/tls` and drives it over a WASI TCP
//! socket, so that the interface is exercised across a real component boundary (the
//! library component is plugged in with `wac plug`).
//!
//! ```text
//! wasmtime run -S inherit-network --dir CERTS::/certs composed.wasm \
//!     --connect 127.0.0.1:PORT --servername localhost --cafile /certs/ca.pem [--tls1_2]
//! ```
//!
//! It prints one `ok ...` line per check, then the server's response; on the first
//! failed check it prints `FAIL ...` and exits with status 1.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;

wit_bindgen::generate!({
    inline: "
        package wasm-tls:consumer;

        world consumer {
            import wasm-tls:client/tls@0.1.0;
        }
    ",
    path: "../../wit",
    world: "wasm-tls:consumer/consumer",
    // The imported interface lives in another package (wit/): generate it here too.
    generate_all,
});

use wasm_tls::client::tls::{
    ClientAuth, Config, Connection, ErrorCode, ShutdownState, SslError, TlsVersion,
};

type Check<T> = Result<T, String>;

/// The WIT name of a code, e.g. `certificate-expired`, from the generated Rust name.
fn code_name(code: ErrorCode) -> String {
    let debug = format!("{code:?}");
    let camel = debug.rsplit("::").next().unwrap_or(&debug);
    let mut out = String::new();
    for (i, ch) in camel.chars().enumerate() {
        if ch.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

fn describe(err: &SslError) -> String {
    match err {
        SslError::WantRead => "want-read".to_owned(),
        SslError::WantWrite => "want-write".to_owned(),
        SslError::ZeroReturn => "zero-return".to_owned(),
        SslError::Syscall(r) => format!("syscall {}: {}", code_name(r.code), r.message),
        SslError::Ssl(r) => format!("ssl {}: {}", code_name(r.code), r.message),
    }
}

/// The code of a fatal `ssl-error`, if it is one.
fn code_of(err: &SslError) -> Option<ErrorCode> {
    match err {
        SslError::Syscall(r) | SslError::Ssl(r) => Some(r.code),
        _ => None,
    }
}

fn ok(what: &str) {
    println!("ok {what}");
}

fn expect_code<T>(what: &str, result: Result<T, SslError>, code: ErrorCode) -> Check<()> {
    match result {
        Err(err) if code_of(&err) == Some(code) => {
            ok(&format!("{what}: {}", code_name(code)));
            Ok(())
        }
        Err(err) => Err(format!(
            "{what}: expected {}, got {}",
            code_name(code),
            describe(&err)
        )),
        Ok(_) => Err(format!("{what}: expected {}, got success", code_name(code))),
    }
}

struct Args {
    connect: String,
    servername: String,
    cafile: String,
    version: Option<TlsVersion>,
}

fn parse_args() -> Check<Args> {
    let mut args = Args {
        connect: String::new(),
        servername: "localhost".to_owned(),
        cafile: String::new(),
        version: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--connect" => args.connect = value()?,
            "--servername" => args.servername = value()?,
            "--cafile" => args.cafile = value()?,
            "--tls1_2" => args.version = Some(TlsVersion::Tls12),
            "--tls1_3" => args.version = Some(TlsVersion::Tls13),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.connect.is_empty() || args.cafile.is_empty() {
        return Err("usage: --connect HOST:PORT --cafile FILE [--servername NAME]".to_owned());
    }
    Ok(args)
}

fn config(args: &Args, ca: &str) -> Config {
    Config {
        server_name: args.servername.clone(),
        extra_roots_pem: vec![ca.to_owned()],
        bundled_roots: false,
        alpn: vec!["http/1.1".to_owned()],
        min_version: args.version,
        max_version: args.version,
        client_auth: None,
        key_log: true,
        post_quantum: true,
    }
}

/// Configurations the interface must refuse with `invalid-config`, never a trap.
fn bad_configs(good: &Config) -> Check<()> {
    let cases: Vec<(&str, Config)> = vec![
        (
            "an unparseable PEM",
            Config {
                extra_roots_pem: vec![
                    "-----BEGIN CERTIFICATE-----\n!!not base64!!\n-----END CERTIFICATE-----\n"
                        .to_owned(),
                ],
                ..good.clone()
            },
        ),
        (
            "a PEM without certificates",
            Config {
                extra_roots_pem: vec!["hello".to_owned()],
                ..good.clone()
            },
        ),
        (
            "no trusted roots",
            Config {
                extra_roots_pem: Vec::new(),
                bundled_roots: false,
                ..good.clone()
            },
        ),
        (
            "an empty server name",
            Config {
                server_name: String::new(),
                ..good.clone()
            },
        ),
        (
            "a client key that does not parse",
            Config {
                client_auth: Some(ClientAuth {
                    cert_chain_pem: good.extra_roots_pem[0].clone(),
                    key_pem: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
                        .to_owned(),
                }),
                ..good.clone()
            },
        ),
        (
            "a minimum version above the maximum",
            Config {
                min_version: Some(TlsVersion::Tls13),
                max_version: Some(TlsVersion::Tls12),
                ..good.clone()
            },
        ),
    ];
    for (what, config) in cases {
        match Connection::create(&config) {
            Err(reason) if reason.code == ErrorCode::InvalidConfig => {
                ok(&format!("create with {what}: invalid-config"));
            }
            Err(reason) => {
                return Err(format!(
                    "create with {what}: expected invalid-config, got {}",
                    code_name(reason.code)
                ))
            }
            Ok(_) => return Err(format!("create with {what}: accepted")),
        }
    }
    Ok(())
}

/// Empty and huge buffers, garbage, and every call after the fatal error it causes.
fn bad_calls(good: &Config) -> Check<()> {
    let conn = Connection::create(good).map_err(|r| r.message)?;
    expect_code("read of zero bytes", conn.read(0), ErrorCode::InvalidInput)?;
    expect_code(
        "write of no bytes",
        conn.write(&[]),
        ErrorCode::InvalidInput,
    )?;
    if !conn.pull_ciphertext(u32::MAX).is_empty() || conn.push_ciphertext(&[]) != 0 {
        return Err("empty pull or push moved bytes".to_owned());
    }
    ok("pull-ciphertext(u32::MAX) and push-ciphertext([]) with nothing to move");
    // A 4 MiB handshake record header followed by junk: the peer is broken.
    let mut garbage = vec![0x16, 0x03, 0x03, 0xff, 0xff];
    garbage.resize(4 << 20, 0xa5);
    let taken = conn.push_ciphertext(&garbage);
    ok(&format!(
        "push-ciphertext of 4 MiB of garbage: took {taken}"
    ));
    let first = match conn.connect() {
        Err(err) => code_of(&err).ok_or(format!("connect after garbage: {}", describe(&err)))?,
        Ok(()) => return Err("connect after garbage succeeded".to_owned()),
    };
    ok(&format!("connect after garbage: {}", code_name(first)));
    expect_code("connect again", conn.connect(), first)?;
    expect_code(
        "read(u32::MAX) after the failure",
        conn.read(u32::MAX),
        first,
    )?;
    expect_code("write after the failure", conn.write(b"x"), first)?;
    expect_code("shutdown after the failure", conn.shutdown(), first)?;
    if conn.push_ciphertext(&garbage) as usize != garbage.len() {
        return Err("push after the failure did not discard".to_owned());
    }
    conn.push_eof();
    conn.push_eof();
    expect_code("connect after push-eof", conn.connect(), first)?;
    let _alert = conn.pull_ciphertext(u32::MAX);
    if conn.handshake_info().is_some() {
        return Err("handshake-info after a failed handshake".to_owned());
    }
    ok("push after the failure discarded, push-eof twice, no handshake-info");
    Ok(())
}

/// A connection and its socket, pumped as `SSL_connect` wants.
struct Pump {
    conn: Connection,
    stream: TcpStream,
    buf: Vec<u8>,
    parked: Vec<u8>,
}

impl Pump {
    fn open(args: &Args, config: &Config) -> Check<Self> {
        let conn = Connection::create(config)
            .map_err(|r| format!("create: {} {}", code_name(r.code), r.message))?;
        let stream = TcpStream::connect(&args.connect)
            .map_err(|err| format!("cannot connect to {}: {err}", args.connect))?;
        Ok(Self {
            conn,
            stream,
            buf: vec![0; 16 * 1024],
            parked: Vec::new(),
        })
    }

    fn flush(&mut self) -> Check<()> {
        while self.conn.pending_ciphertext() > 0 {
            let bytes = self.conn.pull_ciphertext(u32::MAX);
            self.stream
                .write_all(&bytes)
                .map_err(|err| format!("send: {err}"))?;
        }
        Ok(())
    }

    fn fill(&mut self) -> Check<()> {
        if !self.parked.is_empty() {
            let taken = self.conn.push_ciphertext(&self.parked) as usize;
            self.parked.drain(..taken);
            return Ok(());
        }
        let n = self
            .stream
            .read(&mut self.buf)
            .map_err(|err| format!("receive: {err}"))?;
        if n == 0 {
            self.conn.push_eof();
        } else {
            let taken = self.conn.push_ciphertext(&self.buf[..n]) as usize;
            self.parked.extend_from_slice(&self.buf[taken..n]);
        }
        Ok(())
    }

    /// Calls `f` until it neither wants to read nor to write.
    fn drive<T>(
        &mut self,
        mut f: impl FnMut(&Connection) -> Result<T, SslError>,
    ) -> Check<Result<T, SslError>> {
        loop {
            match f(&self.conn) {
                Err(SslError::WantWrite) => self.flush()?,
                Err(SslError::WantRead) => {
                    self.flush()?;
                    self.fill()?;
                }
                other => return Ok(other),
            }
        }
    }
}

fn exchange(args: &Args, config: &Config) -> Check<()> {
    let mut pump = Pump::open(args, config)?;
    pump.drive(Connection::connect)?
        .map_err(|err| format!("handshake: {}", describe(&err)))?;
    let info = pump
        .conn
        .handshake_info()
        .ok_or("no handshake-info after the handshake")?;
    println!(
        "handshake: {} {} {} alpn={} certificates={} resumed={}",
        match info.version {
            TlsVersion::Tls12 => "TLSv1.2",
            TlsVersion::Tls13 => "TLSv1.3",
        },
        info.cipher_suite,
        info.group.as_deref().unwrap_or("(none)"),
        info.alpn.as_deref().unwrap_or("(none)"),
        info.peer_certificates.len(),
        info.resumed
    );
    let key_log = pump.conn.take_key_log();
    if key_log.is_empty() || !pump.conn.take_key_log().is_empty() {
        return Err("take-key-log: expected lines once, then none".to_owned());
    }
    ok(&format!("take-key-log: {} lines", key_log.len()));

    let request = b"GET / HTTP/1.0\r\n\r\n";
    let mut sent = 0;
    while sent < request.len() {
        let n = pump
            .drive(|c| c.write(&request[sent..]))?
            .map_err(|err| format!("write: {}", describe(&err)))?;
        sent += n as usize;
    }
    pump.flush()?;
    let mut response = Vec::new();
    let end = loop {
        match pump.drive(|c| c.read(u32::MAX))? {
            Ok(data) if data.is_empty() => return Err("read returned no bytes".to_owned()),
            Ok(data) => response.extend_from_slice(&data),
            Err(err) => break err,
        }
    };
    if !matches!(end, SslError::ZeroReturn) {
        return Err(format!("end of the response: {}", describe(&end)));
    }
    ok(&format!(
        "response: {} bytes, then zero-return",
        response.len()
    ));
    match pump.drive(Connection::shutdown)? {
        Ok(ShutdownState::Complete) => ok("shutdown: complete"),
        Ok(ShutdownState::Sent) => ok("shutdown: sent"),
        Err(err) => return Err(format!("shutdown: {}", describe(&err))),
    }
    expect_code(
        "write after shutdown",
        pump.conn.write(b"x"),
        ErrorCode::InvalidState,
    )?;
    println!("---");
    print!("{}", String::from_utf8_lossy(&response));
    Ok(())
}

/// A huge write takes at most what the connection buffers, and misuse does not fail it.
fn huge_write(args: &Args, config: &Config) -> Check<()> {
    let mut pump = Pump::open(args, config)?;
    pump.drive(Connection::connect)?
        .map_err(|err| format!("handshake: {}", describe(&err)))?;
    expect_code(
        "read of zero bytes",
        pump.conn.read(0),
        ErrorCode::InvalidInput,
    )?;
    let huge = vec![b'x'; 4 << 20];
    let taken = pump
        .conn
        .write(&huge)
        .map_err(|err| format!("write of 4 MiB: {}", describe(&err)))?;
    if taken == 0 || taken > 64 * 1024 {
        return Err(format!("write of 4 MiB took {taken} bytes"));
    }
    let pending = pump.conn.pending_ciphertext();
    let pulled = pump.conn.pull_ciphertext(u32::MAX).len();
    if pulled as u32 != pending || pulled <= taken as usize {
        return Err(format!("pending {pending}, pulled {pulled}, taken {taken}"));
    }
    ok(&format!(
        "write of 4 MiB: took {taken}, then {pulled} bytes of ciphertext"
    ));
    Ok(())
}

fn run() -> Check<()> {
    let args = parse_args()?;
    let ca = std::fs::read_to_string(&args.cafile)
        .map_err(|err| format!("cannot read {}: {err}", args.cafile))?;
    let good = config(&args, &ca);
    bad_configs(&good)?;
    bad_calls(&good)?;
    huge_write(&args, &good)?;
    exchange(&args, &good)
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            println!("FAIL {msg}");
            ExitCode::FAILURE
        }
    }
}
