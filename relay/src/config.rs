//! Command-line options.

use std::net::SocketAddr;
use std::time::Duration;

use crate::policy::{Pattern, Target};

/// Usage text printed by `--help`.
pub const USAGE: &str = "\
wasm-tls-relay: WebSocket-to-TCP relay for wasm-tls (websockify-compatible binary framing)

USAGE:
    wasm-tls-relay [OPTIONS]

Raw mode: clients name the target in the URL: ws://RELAY/HOST:PORT,
ws://RELAY/[IPV6]:PORT or ws://RELAY/?target=HOST:PORT. Binary messages carry raw
bytes both ways, one TCP connection per WebSocket.

Wisp mode: ws://RELAY/wisp/ carries many TCP streams over one WebSocket (Wisp v1,
and v2 when the client offers a subprotocol, wisp-v2 or any, or a password is
required).
Each stream gets the same checks as a raw connection; UDP streams are refused.
Each stream gets a credit of 64 packets; all the streams of one WebSocket
together queue at most 16 MiB for their targets, after which the relay stops
reading that WebSocket until the targets catch up. A v2 client may pace what each
stream sends it by accepting the client credit extension (0xE0) that the relay
offers: a stream then sends only the DATA packets the client granted.

OPTIONS:
    --listen ADDR:PORT       Address to listen on [default: 127.0.0.1:8080]
    --allow PATTERN          Allow targets matching HOST:PORT (repeatable). HOST may be
                             a name, an IP ([v6] in brackets), '*' or '*.suffix' (one or
                             more labels); PORT may be '*'. Nothing is allowed by default.
    --target HOST:PORT       Fixed target; the URL's target is ignored
    --allow-private          Allow private, loopback and link-local addresses
                             (checked after DNS resolution)
    --max-connections N      Concurrent WebSockets; more are refused [default: 256]
    --max-message BYTES      Largest WebSocket message or frame [default: 1048576]
    --idle-timeout SECS      Close a tunnel with no traffic for this long [default: 300]
    --connect-timeout SECS   Time allowed for DNS and the TCP connect [default: 10]
    --wisp-path PATH         Where Wisp is served [default: /wisp/]
    --no-wisp                Serve the raw mode only
    --max-streams N          Concurrent Wisp streams per WebSocket, counting streams
                             still connecting or closing [default: 128]
    --wisp-auth-file FILE    Require Wisp v2 password authentication; FILE has one
                             USER:PASSWORD a line. The raw mode is then refused, as
                             it cannot authenticate.
    -h, --help               Print this help
    -V, --version            Print the version
";

/// The relay's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address the WebSocket listener binds.
    pub listen: SocketAddr,
    /// Targets clients may name.
    pub allow: Vec<Pattern>,
    /// Operator-fixed target; when set, the URL's target is ignored.
    pub target: Option<Target>,
    /// Whether private and loopback addresses may be reached.
    pub allow_private: bool,
    /// Concurrent WebSocket connections before new ones are refused.
    pub max_connections: usize,
    /// Largest WebSocket message (and frame) accepted, in bytes.
    pub max_message: usize,
    /// A tunnel with no traffic either way for this long is closed.
    pub idle_timeout: Duration,
    /// Time allowed for name resolution plus the TCP connect.
    pub connect_timeout: Duration,
    /// The URL path that speaks Wisp; `None` turns Wisp off.
    pub wisp_path: Option<String>,
    /// Concurrent Wisp streams on one WebSocket before CONNECTs are refused.
    pub max_streams: usize,
    /// Accepted Wisp credentials (user, password); empty means no authentication.
    pub wisp_auth: Vec<(String, String)>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            allow: Vec::new(),
            target: None,
            allow_private: false,
            max_connections: 256,
            max_message: 1 << 20,
            idle_timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(10),
            wisp_path: Some("/wisp/".into()),
            max_streams: 128,
            wisp_auth: Vec::new(),
        }
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Run the relay.
    Run(Box<Config>),
    /// Print usage.
    Help,
    /// Print the version.
    Version,
}

/// Parses the arguments after the program name. Accepts `--flag VALUE` and
/// `--flag=VALUE`.
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
    let mut cfg = Config::default();
    let mut wisp_path = None;
    let mut no_wisp = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--listen" => {
                let v = value()?;
                cfg.listen = v
                    .parse()
                    .map_err(|_| format!("--listen: expected ADDR:PORT, got {v}"))?;
            }
            "--allow" => cfg
                .allow
                .push(Pattern::parse(&value()?).map_err(|e| format!("--allow: {e}"))?),
            "--target" => {
                cfg.target = Some(Target::parse(&value()?).map_err(|e| format!("--target: {e}"))?)
            }
            "--allow-private" => {
                if inline.is_some() {
                    return Err("--allow-private takes no value".into());
                }
                cfg.allow_private = true;
            }
            "--max-connections" => cfg.max_connections = positive(&flag, &value()?)?,
            "--max-message" => cfg.max_message = positive(&flag, &value()?)?,
            "--idle-timeout" => cfg.idle_timeout = secs(&flag, &value()?)?,
            "--connect-timeout" => cfg.connect_timeout = secs(&flag, &value()?)?,
            "--wisp-path" => {
                let v = value()?;
                // A path must not look like a raw-mode target, or it would hide one.
                if !v.starts_with('/') || v.contains('?') || v.contains(':') {
                    return Err(format!(
                        "--wisp-path: expected a path such as /wisp/, got {v}"
                    ));
                }
                wisp_path = Some(v);
            }
            "--no-wisp" => {
                if inline.is_some() {
                    return Err("--no-wisp takes no value".into());
                }
                no_wisp = true;
            }
            "--max-streams" => cfg.max_streams = positive(&flag, &value()?)?,
            "--wisp-auth-file" => {
                let path = value()?;
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("--wisp-auth-file: cannot read {path}: {e}"))?;
                cfg.wisp_auth = parse_credentials(&text)
                    .map_err(|e| format!("--wisp-auth-file: {path}: {e}"))?;
            }
            _ => return Err(format!("unknown argument: {arg}")),
        }
    }
    if no_wisp {
        if wisp_path.is_some() || !cfg.wisp_auth.is_empty() {
            return Err("--no-wisp conflicts with --wisp-path and --wisp-auth-file".into());
        }
        cfg.wisp_path = None;
    } else if let Some(path) = wisp_path {
        cfg.wisp_path = Some(path);
    }
    Ok(Command::Run(Box::new(cfg)))
}

/// Parses `USER:PASSWORD` lines; blank lines and `#` comments are skipped.
fn parse_credentials(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        // Wisp sends the user name's length in one byte and the password's in two.
        match line.split_once(':') {
            Some((user, pass)) if !user.is_empty() && user.len() <= 255 && pass.len() <= 65535 => {
                out.push((user.to_string(), pass.to_string()))
            }
            _ => return Err(format!("line {}: expected USER:PASSWORD", n + 1)),
        }
    }
    if out.is_empty() {
        return Err("no credentials".into());
    }
    Ok(out)
}

fn positive(flag: &str, v: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{flag}: expected a positive integer, got {v}")),
    }
}

fn secs(flag: &str, v: &str) -> Result<Duration, String> {
    // Capped at a year so deadlines computed from it cannot overflow.
    match v.parse::<u64>() {
        Ok(n) if n > 0 && n <= 365 * 24 * 3600 => Ok(Duration::from_secs(n)),
        _ => Err(format!(
            "{flag}: expected seconds between 1 and 31536000, got {v}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Config, String> {
        match parse_args(args.iter().map(|s| s.to_string()))? {
            Command::Run(cfg) => Ok(*cfg),
            other => Err(format!("unexpected {other:?}")),
        }
    }

    #[test]
    fn defaults() {
        let cfg = run(&[]).expect("defaults parse");
        assert_eq!(cfg.listen.to_string(), "127.0.0.1:8080");
        assert!(cfg.allow.is_empty());
        assert!(cfg.target.is_none());
        assert!(!cfg.allow_private);
        assert_eq!(cfg.max_connections, 256);
        assert_eq!(cfg.max_message, 1 << 20);
        assert_eq!(cfg.idle_timeout, Duration::from_secs(300));
        assert_eq!(cfg.connect_timeout, Duration::from_secs(10));
        assert_eq!(cfg.wisp_path.as_deref(), Some("/wisp/"));
        assert_eq!(cfg.max_streams, 128);
        assert!(cfg.wisp_auth.is_empty());
    }

    #[test]
    fn wisp_flags() {
        let cfg = run(&["--wisp-path", "/mux/", "--max-streams=7"]).expect("flags parse");
        assert_eq!(cfg.wisp_path.as_deref(), Some("/mux/"));
        assert_eq!(cfg.max_streams, 7);
        assert_eq!(run(&["--no-wisp"]).expect("parses").wisp_path, None);
        for bad in [
            &["--wisp-path", "wisp/"][..],
            &["--wisp-path", "/a:1/"],
            &["--no-wisp", "--wisp-path", "/w/"],
            &["--max-streams", "0"],
            &["--wisp-auth-file", "/nonexistent/wasm-tls-relay-auth"],
        ] {
            assert!(run(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn credentials() {
        let creds =
            parse_credentials("# users\nalice:s3cret:with:colons\n\nbob:\r\n").expect("parses");
        assert_eq!(
            creds,
            vec![
                ("alice".to_string(), "s3cret:with:colons".to_string()),
                ("bob".to_string(), String::new())
            ]
        );
        assert!(parse_credentials("nocolon\n").is_err());
        assert!(parse_credentials(":pass\n").is_err());
        assert!(parse_credentials("# only a comment\n").is_err());
    }

    #[test]
    fn flags() {
        let cfg = run(&[
            "--listen",
            "[::1]:0",
            "--allow",
            "*.example.com:443",
            "--allow=127.0.0.1:*",
            "--target",
            "mail.example.com:993",
            "--allow-private",
            "--max-connections=3",
            "--max-message",
            "4096",
            "--idle-timeout",
            "5",
            "--connect-timeout=2",
        ])
        .expect("flags parse");
        assert_eq!(cfg.listen.to_string(), "[::1]:0");
        assert_eq!(cfg.allow.len(), 2);
        assert_eq!(
            cfg.target.map(|t| t.to_string()).as_deref(),
            Some("mail.example.com:993")
        );
        assert!(cfg.allow_private);
        assert_eq!(cfg.max_connections, 3);
        assert_eq!(cfg.max_message, 4096);
        assert_eq!(cfg.idle_timeout, Duration::from_secs(5));
        assert_eq!(cfg.connect_timeout, Duration::from_secs(2));
    }

    #[test]
    fn help_and_errors() {
        assert!(matches!(
            parse_args(["--help".to_string()]),
            Ok(Command::Help)
        ));
        for bad in [
            &["--listen"][..],
            &["--listen", "localhost"],
            &["--allow", "example.com"],
            &["--target", "x"],
            &["--max-connections", "0"],
            &["--idle-timeout", "-1"],
            &["--allow-private=yes"],
            &["--bogus"],
        ] {
            assert!(run(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
