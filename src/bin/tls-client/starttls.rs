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

fn joined(lines: &[Vec<u8>]) -> Vec<u8> {
    lines.join(&b'\n')
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The plaintext side of the socket, before TLS.
struct Plain<'a> {
    stream: &'a mut TcpStream,
    protocol: Protocol,
    /// Received and not yet taken.
    buf: Vec<u8>,
    /// All received so far.
    total: usize,
    eof: bool,
    timeout: Duration,
    trace: bool,
}

impl Plain<'_> {
    fn socket_error(&self, err: &io::Error) -> String {
        format!(
            "socket error during the {} STARTTLS exchange: {err}",
            self.protocol.name()
        )
    }

    fn send(&mut self, data: &[u8]) -> Result<(), String> {
        if self.trace {
            eprintln!("[starttls] C: {}", excerpt(data));
        }
        let deadline = Instant::now() + self.timeout;
        let mut backoff = Backoff::new();
        let mut rest = data;
        while !rest.is_empty() {
            match self.stream.write(rest) {
                Ok(0) => return Err(self.socket_error(&io::ErrorKind::WriteZero.into())),
                Ok(n) => rest = &rest[n..],
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return Err(format!(
                            "timed out sending to the server ({} STARTTLS)",
                            self.protocol.name()
                        ));
                    }
                    backoff.wait();
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(self.socket_error(&err)),
            }
        }
        Ok(())
    }

    /// Receives more of the server's `what` into the buffer, by `deadline`.
    fn fill(&mut self, deadline: Instant, what: &str) -> Result<(), String> {
        let mut chunk = [0; 4096];
        let mut backoff = Backoff::new();
        loop {
            let room = MAX_TOTAL.saturating_sub(self.total);
            if room == 0 {
                return Err(format!(
                    "the server sent more than {MAX_TOTAL} bytes before the TLS handshake \
                     ({} STARTTLS, waiting for its {what})",
                    self.protocol.name()
                ));
            }
            if self.eof {
                return Err(self.closed(what));
            }
            let want = room.min(chunk.len());
            match self.stream.read(&mut chunk[..want]) {
                Ok(0) => {
                    self.eof = true;
                    return Err(self.closed(what));
                }
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    self.total += n;
                    return Ok(());
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        let mut msg = format!(
                            "timed out after {:.1} s waiting for the server's {what} ({} STARTTLS)",
                            self.timeout.as_secs_f64(),
                            self.protocol.name()
                        );
                        if !self.buf.is_empty() {
                            let _ = write!(msg, "; it sent {}", excerpt(&self.buf));
                        }
                        return Err(msg);
                    }
                    backoff.wait();
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(self.socket_error(&err)),
            }
        }
    }

    fn closed(&self, what: &str) -> String {
        let mut msg = format!(
            "the server closed the connection instead of sending its {what} ({} STARTTLS)",
            self.protocol.name()
        );
        if !self.buf.is_empty() {
            let _ = write!(msg, "; it sent {}", excerpt(&self.buf));
        }
        msg
    }

    fn trace_received(&self, data: &[u8]) {
        if self.trace {
            eprintln!("[starttls] S: {}", excerpt(data));
        }
    }

    /// Takes the first `n` bytes of the buffer.
    fn take(&mut self, n: usize) -> Vec<u8> {
        let taken: Vec<u8> = self.buf.drain(..n).collect();
        self.trace_received(&taken);
        taken
    }

    /// One line, without its CRLF (or LF).
    fn line(&mut self, what: &str) -> Result<Vec<u8>, String> {
        let deadline = Instant::now() + self.timeout;
        let mut scanned = 0;
        loop {
            if let Some(i) = self.buf[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + i;
                if end > MAX_LINE {
                    break;
                }
                let mut line = self.take(end + 1);
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            scanned = self.buf.len();
            if scanned > MAX_LINE {
                break;
            }
            self.fill(deadline, what)?;
        }
        Err(format!(
            "the server's {what} has a line longer than {MAX_LINE} bytes: {}",
            excerpt(&self.buf)
        ))
    }

    /// Exactly `n` bytes.
    fn exact(&mut self, n: usize, what: &str) -> Result<Vec<u8>, String> {
        let deadline = Instant::now() + self.timeout;
        while self.buf.len() < n {
            self.fill(deadline, what)?;
        }
        Ok(self.take(n))
    }

    /// The buffer up to the end `complete` finds in it (at most [`MAX_TOTAL`] bytes).
    fn until(
        &mut self,
        what: &str,
        complete: impl Fn(&[u8]) -> Option<usize>,
    ) -> Result<Vec<u8>, String> {
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(end) = complete(&self.buf) {
                return Ok(self.take(end));
            }
            self.fill(deadline, what)?;
        }
    }

    /// What the server sends until it closes, at most `max` bytes, within the timeout;
    /// for the explanation that comes with a refusal.
    fn rest(&mut self, max: usize) -> Vec<u8> {
        let deadline = Instant::now() + self.timeout;
        while self.buf.len() < max && self.fill(deadline, "explanation").is_ok() {}
        let n = self.buf.len().min(max);
        self.take(n)
    }

    /// Numbered lines (SMTP, FTP): `CODE-text` lines (FTP allows others between them)
    /// until one that is `CODE text` or just `CODE`. Returns the code and the lines.
    fn numbered_reply(&mut self, what: &str) -> Result<(u16, Vec<Vec<u8>>), String> {
        let first = self.line(what)?;
        let Some(code) = reply_code(&first) else {
            return Err(format!(
                "the server's {what} is not an {} reply: {}",
                self.protocol.name(),
                excerpt(&first)
            ));
        };
        let continued = first.get(3) == Some(&b'-');
        let mut lines = vec![first];
        if continued {
            loop {
                let line = self.line(what)?;
                let end = reply_code(&line) == Some(code) && line.get(3) != Some(&b'-');
                lines.push(line);
                if end {
                    break;
                }
            }
        }
        Ok((code, lines))
    }

    /// Refuses what the server sent after its last answer, and returns the socket to
    /// the pump.
    fn finish(mut self) -> Result<(), String> {
        // Bytes in the same segment as the answer, or right behind it.
        let mut chunk = [0; 512];
        if let Ok(n) = self.stream.read(&mut chunk) {
            self.buf.extend_from_slice(&chunk[..n]);
        }
        if self.buf.is_empty() {
            return Ok(());
        }
        Err(format!(
            "the server sent data after accepting STARTTLS, before the TLS handshake: {}; \
             refusing it, as it could be injected plaintext",
            excerpt(&self.buf)
        ))
    }
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

const XMPP_TLS_NS: &[u8] = b"urn:ietf:params:xml:ns:xmpp-tls";

/// Where an element that starts at `start` ends: after `/>`, or after `</name>`.
fn xml_element_end(buf: &[u8], start: usize, name: &[u8]) -> Option<usize> {
    let open_end = start + buf[start..].iter().position(|&b| b == b'>')?;
    if open_end > 0 && buf[open_end - 1] == b'/' {
        return Some(open_end + 1);
    }
    let mut close = b"</".to_vec();
    close.extend_from_slice(name);
    close.push(b'>');
    find(&buf[open_end..], &close).map(|i| open_end + i + close.len())
}

/// The end of the first of `names`' elements found in `buf`, and which it is.
fn xml_first(buf: &[u8], names: &[&'static [u8]]) -> Option<(usize, &'static [u8])> {
    let mut first: Option<(usize, &'static [u8])> = None;
    for &name in names {
        let mut open = b"<".to_vec();
        open.extend_from_slice(name);
        // `<name>`, `<name/>` or `<name attr...`.
        let start = buf.windows(open.len() + 1).position(|w| {
            w[..open.len()] == open[..]
                && matches!(w[open.len()], b'>' | b'/' | b' ' | b'\t' | b'\r' | b'\n')
        });
        if let Some(start) = start {
            if first.is_none_or(|(s, _)| start < s) {
                first = Some((start, name));
            }
        }
    }
    let (start, name) = first?;
    xml_element_end(buf, start, name).map(|end| (end, name))
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('\'', "&apos;")
        .replace('<', "&lt;")
}

/// RFC 6120: a stream header to the server, its features with <starttls>, <starttls/>,
/// then <proceed/> (or <failure/>).
fn xmpp(conn: &mut Plain<'_>, server_name: &str) -> Result<(), String> {
    let header = format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
         xmlns:stream='http://etherx.jabber.org/streams' to='{}' version='1.0'>",
        xml_escape(server_name)
    );
    conn.send(header.as_bytes())?;
    let features = conn.until("stream features", |buf| {
        xml_first(buf, &[b"stream:features", b"stream:error"])
            .map(|(end, _)| end)
            .or_else(|| find(buf, b"</stream:stream>").map(|i| i + 16))
    })?;
    let Some(at) = find(&features, b"<stream:features") else {
        let from = find(&features, b"<stream:error").unwrap_or(0);
        return Err(format!(
            "the server ended the stream: {}",
            excerpt(&features[from..])
        ));
    };
    let features = &features[at..];
    let offered =
        find(features, b"<starttls").is_some_and(|i| find(&features[i..], XMPP_TLS_NS).is_some());
    if !offered {
        return Err(not_offered("its stream features are", features));
    }
    conn.send(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")?;
    let answer = conn.until("answer to <starttls/>", |buf| {
        xml_first(buf, &[b"proceed", b"failure", b"stream:error"]).map(|(end, _)| end)
    })?;
    let proceed = xml_first(&answer, &[b"proceed", b"failure", b"stream:error"])
        .is_some_and(|(_, name)| name == b"proceed");
    let start = answer.iter().position(|&b| b == b'<').unwrap_or_default();
    if !proceed {
        return Err(refused(&answer[start..]));
    }
    Ok(())
}

/// A BER length at the start of `buf`: (its size, the length), if complete.
fn ber_length(buf: &[u8]) -> Result<Option<(usize, usize)>, ()> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if first < 0x80 {
        return Ok(Some((1, usize::from(first))));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 {
        return Err(());
    }
    let Some(bytes) = buf.get(1..=n) else {
        return Ok(None);
    };
    let len = bytes
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    Ok(Some((1 + n, len)))
}

/// One BER element of `data`: (tag, contents, what follows).
fn ber_element(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = data.split_first()?;
    let (size, len) = ber_length(rest).ok()??;
    let contents = rest.get(size..size.checked_add(len)?)?;
    Some((tag, contents, &rest[size + len..]))
}

fn ber_integer(contents: &[u8]) -> Option<i64> {
    if contents.is_empty() || contents.len() > 8 {
        return None;
    }
    let negative = contents[0] & 0x80 != 0;
    let init: i64 = if negative { -1 } else { 0 };
    Some(
        contents
            .iter()
            .fold(init, |acc, &b| (acc << 8) | i64::from(b)),
    )
}

fn ldap_result_name(code: i64) -> &'static str {
    match code {
        0 => "success",
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        7 => "authMethodNotSupported",
        8 => "strongerAuthRequired",
        12 => "unavailableCriticalExtension",
        13 => "confidentialityRequired",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        80 => "other",
        _ => "unknown result",
    }
}

/// RFC 4511 and 4513: the StartTLS extended request (OID 1.3.6.1.4.1.1466.20037) as
/// message 1, and an extended response to it with resultCode success.
fn ldap(conn: &mut Plain<'_>) -> Result<(), String> {
    const OID: &[u8] = b"1.3.6.1.4.1.1466.20037";
    // LDAPMessage { messageID 1, [APPLICATION 23] ExtendedRequest { [0] requestName } }
    let mut op = vec![0x80, OID.len() as u8];
    op.extend_from_slice(OID);
    let mut body = vec![0x02, 0x01, 0x01, 0x77, op.len() as u8];
    body.extend_from_slice(&op);
    let mut request = vec![0x30, body.len() as u8];
    request.extend_from_slice(&body);
    conn.send(&request)?;

    let what = "answer to the StartTLS request";
    let deadline = Instant::now() + conn.timeout;
    let message = loop {
        if let Some(&tag) = conn.buf.first() {
            if tag != 0x30 {
                let shown = conn.rest(EXCERPT);
                return Err(format!("not an LDAP message: {}", excerpt(&shown)));
            }
            match ber_length(&conn.buf[1..]) {
                Err(()) => {
                    let shown = conn.rest(EXCERPT);
                    return Err(format!("not an LDAP message: {}", excerpt(&shown)));
                }
                Ok(Some((size, len))) => {
                    let total = 1 + size + len;
                    if total > MAX_LINE {
                        return Err(format!(
                            "the server's {what} is longer than {MAX_LINE} bytes ({total})"
                        ));
                    }
                    if conn.buf.len() >= total {
                        break conn.take(total);
                    }
                }
                Ok(None) => {}
            }
        }
        conn.fill(deadline, what)?;
    };
    let malformed = || format!("a malformed LDAP message: {}", excerpt(&message));
    let (_, contents, _) = ber_element(&message).ok_or_else(malformed)?;
    let (tag, id, rest) = ber_element(contents).ok_or_else(malformed)?;
    let id = (tag == 0x02)
        .then(|| ber_integer(id))
        .flatten()
        .ok_or_else(malformed)?;
    let (op_tag, response, _) = ber_element(rest).ok_or_else(malformed)?;
    if op_tag != 0x78 {
        return Err(format!(
            "the server's {what} is not an extended response (protocolOp tag 0x{op_tag:02x}): {}",
            excerpt(&message)
        ));
    }
    let (tag, code, rest) = ber_element(response).ok_or_else(malformed)?;
    let code = (tag == 0x0a)
        .then(|| ber_integer(code))
        .flatten()
        .ok_or_else(malformed)?;
    let diagnostic = ber_element(rest)
        .and_then(|(_, _, rest)| ber_element(rest))
        .map(|(_, text, _)| text)
        .unwrap_or_default();
    let said = if diagnostic.is_empty() {
        format!("resultCode {code} ({})", ldap_result_name(code))
    } else {
        format!(
            "resultCode {code} ({}), {}",
            ldap_result_name(code),
            excerpt(diagnostic)
        )
    };
    if id == 0 {
        // An unsolicited notification: the server is ending the session.
        return Err(format!("the server ended the session: {said}"));
    }
    if id != 1 {
        return Err(format!(
            "the server answered message {id}, not the StartTLS request: {said}"
        ));
    }
    if code != 0 {
        return Err(format!("the server refused STARTTLS: {said}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
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
