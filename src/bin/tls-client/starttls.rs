//! `--starttls`: the plaintext exchange some protocols have before the TLS handshake, as
//! `openssl s_client -starttls` does it, over the socket the pump then takes over.
//!
//! Every answer of the server is bounded in size and by `--timeout`. An answer that is
//! not the expected one becomes an error quoting a short, escaped excerpt of it. Bytes
//! the server sends after accepting STARTTLS are refused: a client that kept them would
//! take injected plaintext for part of the protected session (CVE-2011-0411).

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::pump::Backoff;

mod ldap;
mod plain;
mod xmpp;

use ldap::ldap;
use plain::{find, joined, Plain};
use xmpp::xmpp;

/// The longest line (or message) read from the server.
const MAX_LINE: usize = 8 * 1024;
/// All the server may send during the exchange.
const MAX_TOTAL: usize = 64 * 1024;
/// The most bytes of an answer an error message quotes.
const EXCERPT: usize = 160;

/// The protocols `--starttls` speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Smtp,
    Imap,
    Pop3,
    Ftp,
    Postgres,
    Xmpp,
    Ldap,
}

impl Protocol {
    /// The names `--starttls` takes.
    pub const NAMES: &'static str = "smtp, imap, pop3, ftp, postgres, xmpp, ldap";

    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "smtp" => Self::Smtp,
            "imap" => Self::Imap,
            "pop3" => Self::Pop3,
            "ftp" => Self::Ftp,
            "postgres" => Self::Postgres,
            "xmpp" => Self::Xmpp,
            "ldap" => Self::Ldap,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Smtp => "SMTP",
            Self::Imap => "IMAP",
            Self::Pop3 => "POP3",
            Self::Ftp => "FTP",
            Self::Postgres => "PostgreSQL",
            Self::Xmpp => "XMPP",
            Self::Ldap => "LDAP",
        }
    }
}

/// What the exchanges need besides the socket.
pub struct Params<'a> {
    /// The server's name: XMPP's `to=`.
    pub server_name: &'a str,
    /// The client's name in SMTP's EHLO.
    pub ehlo_name: &'a str,
    /// Bounds each wait for an answer.
    pub timeout: Duration,
    /// Print each line sent and received to stderr.
    pub trace: bool,
}

/// Runs `protocol`'s exchange up to the point where the TLS handshake starts. Leaves the
/// stream non-blocking, with nothing of the server's unread.
pub fn negotiate(
    stream: &mut TcpStream,
    protocol: Protocol,
    params: &Params<'_>,
) -> Result<(), String> {
    stream
        .set_nonblocking(true)
        .map_err(|err| format!("socket error: {err}"))?;
    let mut conn = Plain {
        stream,
        protocol,
        buf: Vec::new(),
        total: 0,
        eof: false,
        timeout: params.timeout,
        trace: params.trace,
    };
    match protocol {
        Protocol::Smtp => smtp(&mut conn, params.ehlo_name),
        Protocol::Imap => imap(&mut conn),
        Protocol::Pop3 => pop3(&mut conn),
        Protocol::Ftp => ftp(&mut conn),
        Protocol::Postgres => postgres(&mut conn),
        Protocol::Xmpp => xmpp(&mut conn, params.server_name),
        Protocol::Ldap => ldap(&mut conn),
    }?;
    conn.finish()
}

/// A quoted excerpt of what the server sent: printable ASCII as it is, anything else
/// escaped, at most [`EXCERPT`] bytes of it.
pub fn excerpt(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for &b in bytes.iter().take(EXCERPT) {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('"');
    if bytes.len() > EXCERPT {
        let _ = write!(out, "... ({} bytes)", bytes.len());
    }
    out
}

fn refused(answer: &[u8]) -> String {
    format!("the server refused STARTTLS: {}", excerpt(answer))
}

fn not_offered(where_: &str, answer: &[u8]) -> String {
    format!(
        "the server does not offer STARTTLS: {where_} {}",
        excerpt(answer)
    )
}

/// The three digits that begin an SMTP or FTP reply line.
fn reply_code(line: &[u8]) -> Option<u16> {
    let digits = line.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) || !matches!(line.get(3), None | Some(b' ' | b'-')) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// RFC 3207: the greeting (220), EHLO and STARTTLS among its answer, STARTTLS (220).
fn smtp(conn: &mut Plain<'_>, ehlo_name: &str) -> Result<(), String> {
    let (code, greeting) = conn.numbered_reply("greeting")?;
    if code != 220 {
        return Err(format!(
            "the server is not ready: its greeting is {}",
            excerpt(&joined(&greeting))
        ));
    }
    conn.send(format!("EHLO {ehlo_name}\r\n").as_bytes())?;
    let (code, ehlo) = conn.numbered_reply("answer to EHLO")?;
    if code != 250 {
        return Err(format!(
            "the server did not accept EHLO: {}",
            excerpt(&joined(&ehlo))
        ));
    }
    let offered = ehlo.iter().skip(1).any(|line| {
        line.get(4..)
            .and_then(|rest| rest.split(|&b| b == b' ').next())
            .is_some_and(|keyword| keyword.eq_ignore_ascii_case(b"STARTTLS"))
    });
    if !offered {
        return Err(not_offered("its answer to EHLO is", &joined(&ehlo)));
    }
    conn.send(b"STARTTLS\r\n")?;
    let (code, answer) = conn.numbered_reply("answer to STARTTLS")?;
    if code != 220 {
        return Err(refused(&joined(&answer)));
    }
    Ok(())
}

/// Lines until the one tagged `tag`; returns the untagged ones and the tagged one.
fn imap_tagged(
    conn: &mut Plain<'_>,
    tag: &[u8],
    what: &str,
) -> Result<(Vec<Vec<u8>>, Vec<u8>), String> {
    let mut untagged = Vec::new();
    loop {
        let line = conn.line(what)?;
        if line.starts_with(tag) && line.get(tag.len()) == Some(&b' ') {
            return Ok((untagged, line));
        }
        untagged.push(line);
    }
}

/// The status word of an IMAP response line after `tag ` (OK, NO, BAD, PREAUTH, BYE).
fn imap_status<'l>(line: &'l [u8], tag: &[u8]) -> &'l [u8] {
    line.get(tag.len() + 1..)
        .and_then(|rest| rest.split(|&b| b == b' ').next())
        .unwrap_or_default()
}

/// RFC 3501: the greeting (OK), `a CAPABILITY` with STARTTLS among them, STARTTLS (OK).
fn imap(conn: &mut Plain<'_>) -> Result<(), String> {
    let greeting = conn.line("greeting")?;
    let status = if greeting.starts_with(b"* ") {
        imap_status(&greeting, b"*")
    } else {
        b""
    };
    if status.eq_ignore_ascii_case(b"PREAUTH") {
        return Err(format!(
            "the server's greeting is PREAUTH, after which STARTTLS is not allowed: {}",
            excerpt(&greeting)
        ));
    }
    if !status.eq_ignore_ascii_case(b"OK") {
        return Err(format!(
            "the server is not ready: its greeting is {}",
            excerpt(&greeting)
        ));
    }
    conn.send(b"a CAPABILITY\r\n")?;
    let (untagged, done) = imap_tagged(conn, b"a", "answer to CAPABILITY")?;
    if !imap_status(&done, b"a").eq_ignore_ascii_case(b"OK") {
        return Err(format!(
            "the server did not answer CAPABILITY: {}",
            excerpt(&done)
        ));
    }
    let capabilities: Vec<&Vec<u8>> = untagged
        .iter()
        .filter(|l| {
            l.get(..13)
                .is_some_and(|p| p.eq_ignore_ascii_case(b"* CAPABILITY "))
        })
        .collect();
    let offered = capabilities.iter().any(|l| {
        l.split(|&b| b == b' ')
            .any(|word| word.eq_ignore_ascii_case(b"STARTTLS"))
    });
    if !offered {
        let shown = capabilities.first().map_or(&done, |l| *l);
        return Err(not_offered("its capabilities are", shown));
    }
    conn.send(b"b STARTTLS\r\n")?;
    let (_, answer) = imap_tagged(conn, b"b", "answer to STARTTLS")?;
    if !imap_status(&answer, b"b").eq_ignore_ascii_case(b"OK") {
        return Err(refused(&answer));
    }
    Ok(())
}

/// RFC 2595: the greeting (+OK), STLS (+OK).
fn pop3(conn: &mut Plain<'_>) -> Result<(), String> {
    let greeting = conn.line("greeting")?;
    if !greeting.starts_with(b"+OK") {
        return Err(format!(
            "the server is not ready: its greeting is {}",
            excerpt(&greeting)
        ));
    }
    conn.send(b"STLS\r\n")?;
    let answer = conn.line("answer to STLS")?;
    if !answer.starts_with(b"+OK") {
        return Err(refused(&answer));
    }
    Ok(())
}

/// RFC 4217: the greeting (220, perhaps after 1xx), AUTH TLS (234).
fn ftp(conn: &mut Plain<'_>) -> Result<(), String> {
    let (mut code, mut greeting) = conn.numbered_reply("greeting")?;
    // "120 Service ready in nnn minutes" comes before the 220.
    while (100..200).contains(&code) {
        (code, greeting) = conn.numbered_reply("greeting")?;
    }
    if code != 220 {
        return Err(format!(
            "the server is not ready: its greeting is {}",
            excerpt(&joined(&greeting))
        ));
    }
    conn.send(b"AUTH TLS\r\n")?;
    let (code, answer) = conn.numbered_reply("answer to AUTH TLS")?;
    if code != 234 {
        return Err(refused(&joined(&answer)));
    }
    Ok(())
}

/// PostgreSQL's SSLRequest: its length (8) and code 80877103; the answer is one byte,
/// 'S' (go ahead) or 'N' (no SSL).
fn postgres(conn: &mut Plain<'_>) -> Result<(), String> {
    let mut request = Vec::with_capacity(8);
    request.extend_from_slice(&8u32.to_be_bytes());
    request.extend_from_slice(&80_877_103u32.to_be_bytes());
    conn.send(&request)?;
    let answer = conn.exact(1, "answer to the SSLRequest")?;
    match answer[0] {
        b'S' => Ok(()),
        b'N' => Err(
            "the server refused STARTTLS: it answered the SSLRequest with \"N\" (no SSL)"
                .to_owned(),
        ),
        b'E' => {
            // An ErrorResponse: Int32 length, then fields of a type byte and a C string.
            let rest = conn.rest(MAX_LINE);
            let message = rest
                .get(4..)
                .unwrap_or_default()
                .split(|&b| b == 0)
                .find_map(|field| field.strip_prefix(b"M"))
                .unwrap_or(&rest);
            Err(refused(message))
        }
        _ => {
            let mut shown = answer;
            shown.extend(conn.rest(EXCERPT));
            Err(format!(
                "not a PostgreSQL answer to the SSLRequest: {}",
                excerpt(&shown)
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ldap::*;
    use super::xmpp::*;
    use super::*;

    #[test]
    fn excerpts_escape_and_cut() {
        assert_eq!(
            excerpt(b"454 TLS not available"),
            "\"454 TLS not available\""
        );
        assert_eq!(
            excerpt(b"a\"b\\\r\n\x1b\xff"),
            "\"a\\\"b\\\\\\r\\n\\x1b\\xff\""
        );
        let long = vec![b'x'; 500];
        assert_eq!(
            excerpt(&long),
            format!("\"{}\"... (500 bytes)", "x".repeat(160))
        );
    }

    #[test]
    fn reply_codes() {
        assert_eq!(reply_code(b"220 ready"), Some(220));
        assert_eq!(reply_code(b"250-STARTTLS"), Some(250));
        assert_eq!(reply_code(b"250"), Some(250));
        assert_eq!(reply_code(b"25x ready"), None);
        assert_eq!(reply_code(b"2200 ready"), None);
    }

    #[test]
    fn xml_elements() {
        let buf = b"<stream:stream id='1'><stream:features><starttls xmlns='x'><required/></starttls></stream:features>";
        let (end, name) = xml_first(buf, &[b"stream:features"]).expect("complete");
        assert_eq!((end, name), (buf.len(), &b"stream:features"[..]));
        assert!(xml_first(&buf[..buf.len() - 1], &[b"stream:features"]).is_none());
        let (end, name) =
            xml_first(b"<proceed xmlns='x'/>", &[b"proceed", b"failure"]).expect("done");
        assert_eq!((end, name), (20, &b"proceed"[..]));
        // `<proceedings>` is not `<proceed>`.
        assert!(xml_first(b"<proceedings/>", &[b"proceed"]).is_none());
    }

    #[test]
    fn ber() {
        assert_eq!(ber_length(&[0x05]), Ok(Some((1, 5))));
        assert_eq!(ber_length(&[0x82, 0x01, 0x00]), Ok(Some((3, 256))));
        assert_eq!(ber_length(&[0x82, 0x01]), Ok(None));
        assert_eq!(ber_length(&[0x80]), Err(()));
        assert_eq!(ber_integer(&[0x01]), Some(1));
        assert_eq!(ber_integer(&[0xff]), Some(-1));
        let (tag, contents, rest) = ber_element(&[0x0a, 0x01, 0x35, 0x04]).expect("an element");
        assert_eq!((tag, contents, rest), (0x0a, &[0x35][..], &[0x04][..]));
    }
}
