//! Command-line options.

use std::net::SocketAddr;
use std::time::Duration;

use crate::policy::{Pattern, Target};

/// Usage text printed by `--help`.
pub const USAGE: &str = "\
wasm-tls-relay: WebSocket-to-TCP relay for wasm-tls (websockify-compatible binary framing)

USAGE:
    wasm-tls-relay [OPTIONS]

Clients name the target in the URL: ws://RELAY/HOST:PORT, ws://RELAY/[IPV6]:PORT
or ws://RELAY/?target=HOST:PORT. Binary messages carry raw bytes both ways.

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
        }
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Run the relay.
    Run(Config),
    /// Print usage.
    Help,
    /// Print the version.
    Version,
}

/// Parses the arguments after the program name. Accepts `--flag VALUE` and
/// `--flag=VALUE`.
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
    let mut cfg = Config::default();
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
            _ => return Err(format!("unknown argument: {arg}")),
        }
    }
    Ok(Command::Run(cfg))
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
            Command::Run(cfg) => Ok(cfg),
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
