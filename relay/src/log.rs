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

/// Writes one line to stderr, e.g.
/// `2025-01-02T03:04:05.678Z client=127.0.0.1:50000 target=example.com:443
/// outcome=ok reason="server closed" c2s=517 s2c=4096 duration=0.250s`.
/// A Wisp stream's line has `stream=ID` after the client, e.g. `...
/// client=127.0.0.1:50000 stream=3 target=example.com:443 outcome=refused
/// reason="target not allowed" ...`.
pub fn log_line(
    client: SocketAddr,
    stream: Option<u32>,
    target: Option<&str>,
    outcome: &Outcome,
    c2s: u64,
    s2c: u64,
    duration: Duration,
) {
    let now = SystemTime::now();
    let line = format_line(now, client, stream, target, outcome, c2s, s2c, duration);
    eprintln!("{line}");
}

#[allow(clippy::too_many_arguments)]
fn format_line(
    now: SystemTime,
    client: SocketAddr,
    stream: Option<u32>,
    target: Option<&str>,
    outcome: &Outcome,
    c2s: u64,
    s2c: u64,
    duration: Duration,
) -> String {
    let (kind, reason) = match outcome {
        Outcome::Ok(r) => ("ok", r),
        Outcome::Refused(r) => ("refused", r),
        Outcome::Error(r) => ("error", r),
    };
    // Targets and reasons can hold text from the client: both are cut short,
    // and `{:?}` quotes and escapes them so that no line can be forged.
    let stream = stream.map(|id| format!(" stream={id}")).unwrap_or_default();
    let target = target.map_or(Cow::Borrowed("-"), field);
    format!(
        "{} client={client}{stream} target={target} outcome={kind} reason={:?} c2s={c2s} s2c={s2c} duration={:.3}s",
        utc_timestamp(now),
        clip(reason),
        duration.as_secs_f64(),
    )
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
        let line = format_line(
            UNIX_EPOCH,
            client,
            Some(1),
            Some(&format!("{forged}:443")),
            &Outcome::Refused(format!("target not allowed: {forged}\r")),
            0,
            0,
            Duration::ZERO,
        );
        assert!(!line.contains('\n') && !line.contains('\r'), "{line}");
        assert!(line.contains(" target=\"x\\n1970"), "{line}");
        let huge = "a".repeat(1 << 20);
        let line = format_line(
            UNIX_EPOCH,
            client,
            Some(1),
            Some(&huge),
            &Outcome::Refused(huge.clone()),
            0,
            0,
            Duration::ZERO,
        );
        assert!(line.len() < 2 * MAX_FIELD + 200, "{}", line.len());
        assert!(line.contains(&format!(" target={}... ", "a".repeat(MAX_FIELD))));
        assert_eq!(field("[::1]:443"), "[::1]:443");
        assert_eq!(field("a b:1"), "\"a b:1\"");
        assert_eq!(clip("short"), "short");
    }

    #[test]
    fn line_format() {
        let line = format_line(
            UNIX_EPOCH,
            "127.0.0.1:5000".parse().expect("address"),
            None,
            Some("example.com:443"),
            &Outcome::Refused("target not allowed: \"x\"".into()),
            1,
            2,
            Duration::from_millis(1500),
        );
        assert_eq!(
            line,
            "1970-01-01T00:00:00.000Z client=127.0.0.1:5000 target=example.com:443 \
             outcome=refused reason=\"target not allowed: \\\"x\\\"\" c2s=1 s2c=2 duration=1.500s"
        );
        let line = format_line(
            UNIX_EPOCH,
            "127.0.0.1:5000".parse().expect("address"),
            Some(7),
            None,
            &Outcome::Ok("server closed".into()),
            0,
            0,
            Duration::ZERO,
        );
        assert!(
            line.contains(" client=127.0.0.1:5000 stream=7 target=- outcome=ok "),
            "{line}"
        );
    }
}
