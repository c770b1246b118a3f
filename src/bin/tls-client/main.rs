//! `tls-client`: a command in the spirit of `openssl s_client`, built on the wasm-tls
//! core. It prints a handshake summary to stderr and the application data to stdout.
//! The same source runs natively and under wasmtime (wasm32-wasip2).

mod capability;
mod pump;
mod starttls;
mod target;

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use pump::{Pump, PumpError, ReadOutcome, Step};
use starttls::Protocol;
use target::Target;
use wasm_tls::{
    format_unix_time, CertificateSummary, ClientAuthPem, Config, ConfigOptions, TlsClient,
    TlsVersion,
};

const USAGE: &str = "\
usage: tls-client --connect HOST:PORT [options]

  --connect HOST:PORT   the server to connect to
  --servername NAME     the name to verify and send as SNI (default: HOST)
  --cafile FILE         trust the CA certificates in this PEM file too
  --no-default-roots    trust only --cafile, not the bundled Mozilla roots
  --alpn LIST           offer these ALPN protocols, comma-separated (e.g. h2,http/1.1)
  --tls1_2              use TLS 1.2 only
  --tls1_3              use TLS 1.3 only
  --no-post-quantum     offer only classical key exchange (no X25519MLKEM768)
  --cert FILE           client certificate chain (PEM) for mutual TLS
  --key FILE            the client certificate's private key (PEM)
  --request TEXT        send TEXT after the handshake (\\r \\n \\t \\\\ are unescaped)
                        instead of what stdin gives
  --starttls PROTOCOL   first upgrade a plaintext session: smtp, imap, pop3, ftp,
                        postgres, xmpp or ldap
  --name NAME           the client's name in SMTP's EHLO (default: localhost)
  --keylog FILE         append NSS key-log lines (SSLKEYLOGFILE) to FILE
  --timeout SECS        bound every wait for the peer (default 10)
  --trace               print each want-read / want-write step to stderr
  -h, --help            this text

Exit status: 0 when the handshake succeeded and the connection ended without error.";

struct Options {
    connect: String,
    target: Target,
    servername: Option<String>,
    cafile: Option<String>,
    default_roots: bool,
    alpn: Vec<String>,
    version: Option<TlsVersion>,
    post_quantum: bool,
    cert: Option<String>,
    key: Option<String>,
    request: Option<Vec<u8>>,
    keylog: Option<String>,
    starttls: Option<Protocol>,
    ehlo_name: String,
    timeout: Duration,
    trace: bool,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
    let mut opts = Options {
        connect: String::new(),
        target: Target {
            host: String::new(),
            port: 0,
        },
        servername: None,
        cafile: None,
        default_roots: true,
        alpn: Vec::new(),
        version: None,
        post_quantum: true,
        cert: None,
        key: None,
        request: None,
        keylog: None,
        starttls: None,
        ehlo_name: "localhost".to_owned(),
        timeout: Duration::from_secs(10),
        trace: false,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // Accept OpenSSL's single-dash spellings too (-connect, -servername, ...).
        let name = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-'));
        let Some(name) = name else {
            return Err(format!("unexpected argument '{arg}'"));
        };
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("option '{arg}' needs a value"))
        };
        match name {
            "connect" => opts.connect = value()?,
            "servername" => opts.servername = Some(value()?),
            "cafile" | "CAfile" => opts.cafile = Some(value()?),
            "no-default-roots" => opts.default_roots = false,
            "alpn" => {
                opts.alpn = value()?
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect()
            }
            "tls1_2" => opts.version = Some(TlsVersion::Tls12),
            "tls1_3" => opts.version = Some(TlsVersion::Tls13),
            "no-post-quantum" => opts.post_quantum = false,
            "cert" => opts.cert = Some(value()?),
            "key" => opts.key = Some(value()?),
            "request" => opts.request = Some(unescape(&value()?)),
            "keylog" => opts.keylog = Some(value()?),
            "starttls" => {
                let v = value()?;
                opts.starttls = Some(Protocol::parse(&v).ok_or_else(|| {
                    format!("--starttls wants one of {}, not '{v}'", Protocol::NAMES)
                })?);
            }
            "name" => opts.ehlo_name = value()?,
            "timeout" => {
                let v = value()?;
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s < 86_400.0)
                    .ok_or_else(|| format!("--timeout wants seconds, not '{v}'"))?;
                opts.timeout = Duration::from_secs_f64(secs);
            }
            "trace" => opts.trace = true,
            "h" | "help" => return Err(String::new()),
            _ => return Err(format!("unknown option '{arg}'")),
        }
    }
    if opts.connect.is_empty() {
        return Err("--connect HOST:PORT is required".to_owned());
    }
    opts.target = Target::parse(&opts.connect)?;
    if opts.cert.is_some() != opts.key.is_some() {
        return Err("--cert and --key go together".to_owned());
    }
    Ok(opts)
}

fn unescape(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            Some('r') => out.push(b'\r'),
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('\\') => out.push(b'\\'),
            Some(other) => {
                out.push(b'\\');
                let mut buf = [0; 4];
                out.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
            }
            None => out.push(b'\\'),
        }
    }
    out
}

fn read_file(path: &str, what: &str) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map_err(|err| capability::file_error(&format!("read {what}"), path, &err, false))
}

/// The name to verify, sent as SNI (and as XMPP's `to=`).
fn server_name(opts: &Options) -> String {
    opts.servername
        .clone()
        .unwrap_or_else(|| opts.target.host.clone())
}

fn build_config(opts: &Options) -> Result<Config, String> {
    let mut options = ConfigOptions::new(server_name(opts));
    options.bundled_roots = opts.default_roots;
    options.alpn = opts.alpn.clone();
    if let Some(path) = &opts.cafile {
        options.roots_pem.push(read_file(path, "CA file")?);
    }
    options.min_version = opts.version;
    options.max_version = opts.version;
    if let (Some(cert), Some(key)) = (&opts.cert, &opts.key) {
        options.client_auth = Some(ClientAuthPem {
            cert_chain_pem: read_file(cert, "certificate")?,
            key_pem: read_file(key, "key")?,
        });
    }
    options.post_quantum = opts.post_quantum;
    let mut builder = options.builder();
    if let Some(path) = &opts.keylog {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|err| capability::file_error("open key-log file", path, &err, true))?;
        let file = Mutex::new(file);
        builder = builder.key_log(Arc::new(move |line: &str| {
            if let Ok(mut f) = file.lock() {
                let _ = writeln!(f, "{line}");
            }
        }));
    }
    builder
        .build()
        .map_err(|err| format!("{err} [{}]", err.code()))
}

fn connect_tcp(target: &str, timeout: Duration) -> Result<TcpStream, String> {
    let addrs: Vec<_> = target
        .to_socket_addrs()
        .map_err(|err| capability::resolve_error(target, &err))?
        .collect();
    let mut last = None;
    for addr in &addrs {
        // On WASI, std's connect_timeout returns a stream even when the connection was
        // refused (the error shows only on the first write): connect there, unbounded.
        #[cfg(target_os = "wasi")]
        let attempt = {
            let _ = timeout;
            TcpStream::connect(addr)
        };
        #[cfg(not(target_os = "wasi"))]
        let attempt = TcpStream::connect_timeout(addr, timeout);
        match attempt {
            Ok(stream) => return Ok(stream),
            // connect_timeout is not on every platform; fall back to connect.
            Err(err) if err.kind() == io::ErrorKind::Unsupported => {
                match TcpStream::connect(addr) {
                    Ok(stream) => return Ok(stream),
                    Err(err) => last = Some(err),
                }
            }
            Err(err) => last = Some(err),
        }
    }
    Err(match last {
        Some(err) => capability::connect_error(target, &err),
        None => format!("'{target}' resolves to no address"),
    })
}

fn print_summary(pump: &Pump, opts: &Options, elapsed: Duration) {
    let Some(info) = pump.handshake_info() else {
        return;
    };
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "Connected to {}", opts.connect);
    let _ = writeln!(err, "Protocol  : {}", info.version.name());
    let _ = writeln!(err, "Cipher    : {}", info.cipher_suite);
    let _ = writeln!(
        err,
        "Group     : {}",
        info.key_exchange_group.as_deref().unwrap_or("(none)")
    );
    let _ = writeln!(err, "ALPN      : {}", info.alpn_str().unwrap_or("(none)"));
    let _ = writeln!(
        err,
        "Resumed   : {}",
        if info.resumed { "yes" } else { "no" }
    );
    let _ = writeln!(err, "Handshake : {:.1} ms", elapsed.as_secs_f64() * 1000.0);
    let _ = writeln!(err, "Certificate chain");
    for (i, (der, summary)) in info
        .peer_certificates
        .iter()
        .zip(info.certificate_summaries())
        .enumerate()
    {
        match summary {
            Some(CertificateSummary {
                subject,
                issuer,
                not_before,
                not_after,
            }) => {
                let _ = writeln!(err, " {i} s:{subject}");
                let _ = writeln!(err, "   i:{issuer}");
                let _ = writeln!(
                    err,
                    "   v:NotBefore: {}; NotAfter: {}",
                    format_unix_time(not_before),
                    format_unix_time(not_after)
                );
            }
            None => {
                let _ = writeln!(err, " {i} ({} bytes, not readable)", der.len());
            }
        }
    }
    let _ = writeln!(err, "---");
}

fn print_trace(pump: &mut Pump) {
    let trace = pump.take_trace();
    if !trace.is_empty() {
        let mut err = io::stderr().lock();
        for step in trace {
            let _ = match step {
                Step::WantWrite(n) => writeln!(err, "[pump] want-write: sent {n} bytes"),
                Step::WantRead(0) => writeln!(err, "[pump] want-read: EOF"),
                Step::WantRead(n) => writeln!(err, "[pump] want-read: received {n} bytes"),
            };
        }
    }
}

/// Where the data to send comes from.
enum Input {
    Request(Option<Vec<u8>>),
    Stdin(mpsc::Receiver<Vec<u8>>),
}

impl Input {
    fn stdin() -> Self {
        let (tx, rx) = mpsc::channel();
        let reader = move || {
            let mut stdin = io::stdin().lock();
            let mut buf = vec![0; 16 * 1024];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                }
            }
        };
        // WASI has no threads: there, read stdin to its end first.
        match std::thread::Builder::new()
            .name("stdin".into())
            .spawn(reader)
        {
            Ok(_) => Self::Stdin(rx),
            Err(_) => {
                let mut all = Vec::new();
                let _ = io::stdin().read_to_end(&mut all);
                Self::Request(Some(all))
            }
        }
    }

    /// Data ready to send now; `None` once the input has ended.
    fn poll(&mut self) -> Option<Vec<u8>> {
        match self {
            Self::Request(data) => data.take(),
            Self::Stdin(rx) => match rx.try_recv() {
                Ok(data) => Some(data),
                Err(mpsc::TryRecvError::Empty) => Some(Vec::new()),
                Err(mpsc::TryRecvError::Disconnected) => None,
            },
        }
    }
}

fn run(opts: &Options) -> Result<(), String> {
    let config = build_config(opts)?;
    let tls = TlsClient::new(&config).map_err(|err| format!("{err} [{}]", err.code()))?;
    let mut stream = connect_tcp(&opts.connect, opts.timeout)?;
    if let Some(protocol) = opts.starttls {
        let params = starttls::Params {
            server_name: &server_name(opts),
            ehlo_name: &opts.ehlo_name,
            timeout: opts.timeout,
            trace: opts.trace,
        };
        starttls::negotiate(&mut stream, protocol, &params)?;
    }
    let mut pump = Pump::new(stream, tls, opts.timeout).map_err(|err| err.to_string())?;
    if opts.trace {
        pump.enable_trace();
    }
    let started = Instant::now();
    let handshake = pump.handshake();
    print_trace(&mut pump);
    handshake.map_err(|err| err.to_string())?;
    print_summary(&pump, opts, started.elapsed());

    let mut input = match &opts.request {
        Some(request) => Input::Request(Some(request.clone())),
        None => Input::stdin(),
    };
    let mut out = io::stdout().lock();
    let mut buf = vec![0; 64 * 1024];
    let mut input_done = false;
    let mut idle_since = Instant::now();
    let result = loop {
        if !input_done {
            match input.poll() {
                Some(data) if !data.is_empty() => {
                    if let Err(err) = pump.write_all(&data) {
                        break Err(err);
                    }
                    idle_since = Instant::now();
                }
                Some(_) => {}
                None => {
                    input_done = true;
                    idle_since = Instant::now();
                }
            }
        }
        // While input may still come, look at the socket briefly and go back to stdin;
        // once it has ended, wait for the peer up to the timeout.
        let wait = if input_done {
            opts.timeout.saturating_sub(idle_since.elapsed())
        } else {
            Duration::from_millis(20)
        };
        match pump.read(&mut buf, wait) {
            Ok(ReadOutcome::Data(n)) => {
                if out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
                    break Ok(());
                }
                idle_since = Instant::now();
            }
            Ok(ReadOutcome::Closed) => break Ok(()),
            Ok(ReadOutcome::Idle) => {
                if input_done && idle_since.elapsed() >= opts.timeout {
                    eprintln!(
                        "note: the peer sent nothing for {:.1} s after the input ended; closing",
                        opts.timeout.as_secs_f64()
                    );
                    break Ok(());
                }
            }
            Err(err) => break Err(err),
        }
        print_trace(&mut pump);
    };
    print_trace(&mut pump);
    match result {
        Ok(()) => {
            // Best effort: the peer may already be gone.
            let closed = pump.shutdown();
            print_trace(&mut pump);
            if let Err(PumpError::Tls(err)) = closed {
                return Err(format!("{err} [{}]", err.code()));
            }
            Ok(())
        }
        Err(err) => Err(err.to_string()),
    }
}

fn main() -> ExitCode {
    let opts = match parse_args(std::env::args().skip(1)) {
        Ok(opts) => opts,
        Err(msg) if msg.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("tls-client: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("tls-client: error: {msg}");
            ExitCode::FAILURE
        }
    }
}
