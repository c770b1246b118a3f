//! The one log line written per tunnel (a raw WebSocket, or one Wisp stream).

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

/// How a connection ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The tunnel ran and ended normally; the text says how.
    Ok(String),
    /// The relay's policy refused the connection; the text is the close reason.
    Refused(String),
    /// Something failed.
    Error(String),
}

/// One tunnel's (or one Wisp stream's) line in the log, e.g.
/// `2025-01-02T03:04:05.678Z client=127.0.0.1:50000 target=example.com:443
/// outcome=ok reason="server closed" c2s=517 s2c=4096 duration=0.250s`.
/// A Wisp stream's line has `stream=ID` after the client, e.g. `...
/// client=127.0.0.1:50000 stream=3 target=example.com:443 outcome=refused
/// reason="target not allowed" ...`.
pub struct LogLine<'a> {
    /// The WebSocket client's address.
    pub client: SocketAddr,
    /// The Wisp stream, if the line is one stream's.
    pub stream: Option<u32>,
    /// The target as the client named it, if it got that far.
    pub target: Option<&'a str>,
    /// How it ended.
    pub outcome: &'a Outcome,
    /// Bytes client to server.
    pub c2s: u64,
    /// Bytes server to client.
    pub s2c: u64,
    /// From the start to the end.
    pub duration: Duration,
}

impl<'a> LogLine<'a> {
    /// The line of something refused before any byte moved.
    pub fn refusal(
        client: SocketAddr,
        stream: Option<u32>,
        target: Option<&'a str>,
        outcome: &'a Outcome,
    ) -> Self {
        LogLine {
            client,
            stream,
            target,
            outcome,
            c2s: 0,
            s2c: 0,
            duration: Duration::ZERO,
        }
    }

    /// Writes the line to stderr.
    pub fn write(&self) {
        eprintln!("{}", self.format(SystemTime::now()));
    }

    fn format(&self, now: SystemTime) -> String {
        let (kind, reason) = match self.outcome {
            Outcome::Ok(r) => ("ok", r),
            Outcome::Refused(r) => ("refused", r),
            Outcome::Error(r) => ("error", r),
        };
        // Targets and reasons can hold text from the client: both are cut short,
        // and `{:?}` quotes and escapes them so that no line can be forged.
        let stream = self
            .stream
            .map(|id| format!(" stream={id}"))
            .unwrap_or_default();
        let target = self.target.map_or(Cow::Borrowed("-"), field);
        format!(
            "{} client={}{stream} target={target} outcome={kind} reason={:?} c2s={} s2c={} duration={:.3}s",
            utc_timestamp(now),
            self.client,
            clip(reason),
            self.c2s,
            self.s2c,
            self.duration.as_secs_f64(),
        )
    }
}

/// Characters of client-controlled text kept in a log line.
const MAX_FIELD: usize = 255;

/// `s` cut to [`MAX_FIELD`] characters, marked with "..." if cut.
fn clip(s: &str) -> Cow<'_, str> {
    match s.char_indices().nth(MAX_FIELD) {
        None => Cow::Borrowed(s),
        Some((end, _)) => Cow::Owned(format!("{}...", &s[..end])),
    }
}

/// A field's value: bare if it is plainly a HOST:PORT, otherwise quoted and
/// escaped; cut short either way.
fn field(s: &str) -> Cow<'_, str> {
    let s = clip(s);
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._:[]*".contains(c));
    if plain {
        s
    } else {
        Cow::Owned(format!("{s:?}"))
    }
}

/// RFC 3339 UTC time with milliseconds.
fn utc_timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn timestamps() {
        let at = |s: u64, ms: u64| {
            utc_timestamp(UNIX_EPOCH + Duration::from_secs(s) + Duration::from_millis(ms))
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_735_787_045, 678), "2025-01-02T03:04:05.678Z");
        assert_eq!(at(4_107_542_399, 999), "2100-02-28T23:59:59.999Z");
    }

    #[test]
    fn client_text_cannot_forge_lines() {
        let client = "127.0.0.1:5000".parse().expect("address");
        let forged = "x\n1970-01-01T00:00:00.000Z client=6.6.6.6:1 target=evil:1 outcome=ok";
        let line = LogLine {
            client,
            stream: Some(1),
            target: Some(&format!("{forged}:443")),
            outcome: &Outcome::Refused(format!("target not allowed: {forged}\r")),
            c2s: 0,
            s2c: 0,
            duration: Duration::ZERO,
        }
        .format(UNIX_EPOCH);
        assert!(!line.contains('\n') && !line.contains('\r'), "{line}");
        assert!(line.contains(" target=\"x\\n1970"), "{line}");
        let huge = "a".repeat(1 << 20);
        let line = LogLine {
            client,
            stream: Some(1),
            target: Some(&huge),
            outcome: &Outcome::Refused(huge.clone()),
            c2s: 0,
            s2c: 0,
            duration: Duration::ZERO,
        }
        .format(UNIX_EPOCH);
        assert!(line.len() < 2 * MAX_FIELD + 200, "{}", line.len());
        assert!(line.contains(&format!(" target={}... ", "a".repeat(MAX_FIELD))));
        assert_eq!(field("[::1]:443"), "[::1]:443");
        assert_eq!(field("a b:1"), "\"a b:1\"");
        assert_eq!(clip("short"), "short");
    }

    #[test]
    fn line_format() {
        let line = LogLine {
            client: "127.0.0.1:5000".parse().expect("address"),
            stream: None,
            target: Some("example.com:443"),
            outcome: &Outcome::Refused("target not allowed: \"x\"".into()),
            c2s: 1,
            s2c: 2,
            duration: Duration::from_millis(1500),
        }
        .format(UNIX_EPOCH);
        assert_eq!(
            line,
            "1970-01-01T00:00:00.000Z client=127.0.0.1:5000 target=example.com:443 \
             outcome=refused reason=\"target not allowed: \\\"x\\\"\" c2s=1 s2c=2 duration=1.500s"
        );
        let line = LogLine {
            client: "127.0.0.1:5000".parse().expect("address"),
            stream: Some(7),
            target: None,
            outcome: &Outcome::Ok("server closed".into()),
            c2s: 0,
            s2c: 0,
            duration: Duration::ZERO,
        }
        .format(UNIX_EPOCH);
        assert!(
            line.contains(" client=127.0.0.1:5000 stream=7 target=- outcome=ok "),
            "{line}"
        );
    }
}
