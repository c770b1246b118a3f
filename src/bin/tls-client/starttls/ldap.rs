//! LDAP's StartTLS extended operation, with just enough BER to read its result.

use super::*;

/// A BER length at the start of `buf`: (its size, the length), if complete.
pub(super) fn ber_length(buf: &[u8]) -> Result<Option<(usize, usize)>, ()> {
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
pub(super) fn ber_element(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = data.split_first()?;
    let (size, len) = ber_length(rest).ok()??;
    let contents = rest.get(size..size.checked_add(len)?)?;
    Some((tag, contents, &rest[size + len..]))
}

pub(super) fn ber_integer(contents: &[u8]) -> Option<i64> {
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

pub(super) fn ldap_result_name(code: i64) -> &'static str {
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
pub(super) fn ldap(conn: &mut Plain<'_>) -> Result<(), String> {
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
