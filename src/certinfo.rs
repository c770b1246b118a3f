//! A small, strict reader of the X.509 fields a person wants to see (RFC 5280 §4.1):
//! subject, issuer and validity. Verification never depends on it; it only describes
//! certificates in summaries and error messages, so that hosts need no X.509 parser.

/// What a person wants to know of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSummary {
    /// The subject's distinguished name, RFC 4514 style (`CN=example.com, O=Example`).
    pub subject: String,
    /// The issuer's distinguished name.
    pub issuer: String,
    /// `notBefore`, in seconds since the Unix epoch.
    pub not_before: u64,
    /// `notAfter`, in seconds since the Unix epoch.
    pub not_after: u64,
}

impl CertificateSummary {
    /// Reads a DER certificate. Returns `None` if it is not one this reader understands.
    pub fn from_der(der: &[u8]) -> Option<Self> {
        let (cert, _) = Der::new(der).expect(0x30)?;
        let (tbs, _) = cert.expect(0x30)?;
        let mut rest = tbs;
        // version [0] EXPLICIT is optional
        if rest.peek_tag() == Some(0xa0) {
            rest = rest.expect(0xa0)?.1;
        }
        let (_serial, rest) = rest.expect(0x02)?;
        let (_sig_alg, rest) = rest.expect(0x30)?;
        let (issuer, rest) = rest.expect(0x30)?;
        let (validity, rest) = rest.expect(0x30)?;
        let (subject, _) = rest.expect(0x30)?;
        let (not_before, after) = validity.any_time()?;
        let (not_after, _) = after.any_time()?;
        Some(Self {
            subject: format_name(parse_name(subject)?),
            issuer: format_name(parse_name(issuer)?),
            not_before,
            not_after,
        })
    }

    /// Whether subject and issuer are the same name (a root or a self-signed certificate).
    pub fn is_self_issued(&self) -> bool {
        self.subject == self.issuer
    }
}

fn parse_name(name: Der<'_>) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rdns = name;
    while !rdns.is_empty() {
        let (set, rest) = rdns.expect(0x31)?;
        rdns = rest;
        let mut atvs = set;
        while !atvs.is_empty() {
            let (atv, rest) = atvs.expect(0x30)?;
            atvs = rest;
            let (oid, value) = atv.expect(0x06)?;
            let (tag, text, _) = value.any()?;
            let text = match tag {
                // UTF8String, PrintableString, IA5String, TeletexString (latin-1 in practice)
                0x0c | 0x13 | 0x16 | 0x14 => String::from_utf8_lossy(text.0).into_owned(),
                // BMPString
                0x1e => {
                    let units: Vec<u16> = text
                        .0
                        .chunks_exact(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .collect();
                    String::from_utf16_lossy(&units)
                }
                _ => hex(text.0),
            };
            out.push((oid_name(oid.0), text));
        }
    }
    Some(out)
}

fn format_name(parts: Vec<(String, String)>) -> String {
    if parts.is_empty() {
        return "(empty name)".to_owned();
    }
    // Most significant last, as RFC 4514 and OpenSSL's -nameopt RFC2253 print it.
    parts
        .iter()
        .rev()
        .map(|(k, v)| format!("{k}={}", escape(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn oid_name(oid: &[u8]) -> String {
    match oid {
        [0x55, 0x04, 0x03] => "CN".to_owned(),
        [0x55, 0x04, 0x06] => "C".to_owned(),
        [0x55, 0x04, 0x07] => "L".to_owned(),
        [0x55, 0x04, 0x08] => "ST".to_owned(),
        [0x55, 0x04, 0x0a] => "O".to_owned(),
        [0x55, 0x04, 0x0b] => "OU".to_owned(),
        [0x55, 0x04, 0x05] => "serialNumber".to_owned(),
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "emailAddress".to_owned(),
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC".to_owned(),
        other => dotted_oid(other),
    }
}

/// An OID's contents in dotted form (`1.2.840.10045.4.3.4`).
pub(crate) fn dotted_oid(oid: &[u8]) -> String {
    let mut arcs = Vec::new();
    let mut value: u64 = 0;
    for &b in oid {
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            arcs.push(value);
            value = 0;
        }
    }
    let mut out = String::new();
    if let Some((&first, rest)) = arcs.split_first() {
        let (a, b) = if first < 80 {
            (first / 40, first % 40)
        } else {
            (2, first - 80)
        };
        out = format!("{a}.{b}");
        for arc in rest {
            out.push_str(&format!(".{arc}"));
        }
    }
    out
}

/// Escapes what could forge or hide text where a name is printed (a log line, a
/// terminal): control characters as `\0`, `\n`, `\x7f`; other invisible or
/// direction-changing characters as `\u{202e}`; and the backslash itself.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\x00'..='\x1f' | '\x7f' => out.push_str(&format!("\\x{:02x}", u32::from(ch))),
            '\u{80}'..='\u{9f}'
            | '\u{ad}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}' => out.push_str(&format!("\\u{{{:x}}}", u32::from(ch))),
            _ => out.push(ch),
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::from("#");
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A DER cursor over the contents of a constructed value.
#[derive(Clone, Copy)]
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self(bytes)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn peek_tag(&self) -> Option<u8> {
        self.0.first().copied()
    }

    /// Reads one TLV: returns its tag, its contents and what follows it.
    fn any(self) -> Option<(u8, Der<'a>, Der<'a>)> {
        let (&tag, rest) = self.0.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            (len, &rest[n..])
        };
        if rest.len() < len {
            return None;
        }
        let (contents, after) = rest.split_at(len);
        Some((tag, Der(contents), Der(after)))
    }

    fn expect(self, tag: u8) -> Option<(Der<'a>, Der<'a>)> {
        let (t, contents, after) = self.any()?;
        (t == tag).then_some((contents, after))
    }

    fn any_time(self) -> Option<(u64, Der<'a>)> {
        let (tag, contents, after) = self.any()?;
        let text = std::str::from_utf8(contents.0).ok()?;
        let t = match tag {
            0x17 => parse_time(text, false)?,
            0x18 => parse_time(text, true)?,
            _ => return None,
        };
        Some((t, after))
    }
}

/// Parses `YYMMDDHHMMSSZ` (UTCTime) or `YYYYMMDDHHMMSSZ` (GeneralizedTime).
fn parse_time(text: &str, generalized: bool) -> Option<u64> {
    let digits = text.strip_suffix('Z')?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |s: &str| s.parse::<u64>().ok();
    let (year, rest) = if generalized {
        (num(digits.get(..4)?)?, digits.get(4..)?)
    } else {
        let yy = num(digits.get(..2)?)?;
        (
            if yy >= 50 { 1900 + yy } else { 2000 + yy },
            digits.get(2..)?,
        )
    };
    if rest.len() != 10 {
        return None;
    }
    let month = num(&rest[0..2])?;
    let day = num(&rest[2..4])?;
    let hour = num(&rest[4..6])?;
    let minute = num(&rest[6..8])?;
    let second = num(&rest[8..10])?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if year < 1970 {
        return Some(0);
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second.min(60))
}

// Howard Hinnant's days_from_civil, for years from 1970.
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).saturating_sub(719_468)
}

/// Formats seconds since the Unix epoch as `2024-01-31 23:59:59 UTC`.
pub fn format_unix_time(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // civil_from_days
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        assert_eq!(parse_time("700101000000Z", false), Some(0));
        assert_eq!(parse_time("20240229120000Z", true), Some(1_709_208_000));
        assert_eq!(format_unix_time(1_709_208_000), "2024-02-29 12:00:00 UTC");
        assert_eq!(parse_time("991231235959Z", false), Some(946_684_799));
        assert_eq!(parse_time("garbage", false), None);
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert_eq!(CertificateSummary::from_der(&[]), None);
        assert_eq!(CertificateSummary::from_der(&[0x30, 0x84, 0xff]), None);
        assert_eq!(
            CertificateSummary::from_der(&[0x30, 0x02, 0x30, 0x00]),
            None
        );
    }

    #[test]
    fn names_are_escaped() {
        assert_eq!(escape("\x7f\0\0\x01"), "\\x7f\\0\\0\\x01");
        assert_eq!(escape("a\nb\\c"), "a\\nb\\\\c");
        assert_eq!(escape("evil\u{202e}moc.x"), "evil\\u{202e}moc.x");
        assert_eq!(escape("Résumé, Inc."), "Résumé, Inc.");
    }

    #[test]
    fn dotted_oids() {
        assert_eq!(
            dotted_oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]),
            "1.2.840.113549"
        );
    }
}
