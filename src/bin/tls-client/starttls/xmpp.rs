//! XMPP's STARTTLS: the stream header, the features, `<starttls/>` and `<proceed/>`.

use super::*;

pub(super) const XMPP_TLS_NS: &[u8] = b"urn:ietf:params:xml:ns:xmpp-tls";

/// Where an element that starts at `start` ends: after `/>`, or after `</name>`.
pub(super) fn xml_element_end(buf: &[u8], start: usize, name: &[u8]) -> Option<usize> {
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
pub(super) fn xml_first(buf: &[u8], names: &[&'static [u8]]) -> Option<(usize, &'static [u8])> {
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

pub(super) fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('\'', "&apos;")
        .replace('<', "&lt;")
}

/// RFC 6120: a stream header to the server, its features with <starttls>, <starttls/>,
/// then <proceed/> (or <failure/>).
pub(super) fn xmpp(conn: &mut Plain<'_>, server_name: &str) -> Result<(), String> {
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
