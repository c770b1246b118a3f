//! The Wisp wire format, without I/O: packets, and the extension records of
//! the v2 handshake. The package's `pkg/src/wisp/wire.js` is the same format
//! for the client side; both run the vectors of `tests/wisp-vectors.json`.
//! The relay's tests build their packets with it too. Over 600 lines with its
//! unit tests, which run those vectors; the format itself is under 420.
//!
//! Every packet is one binary WebSocket message: type (u8), stream id
//! (u32 LE), payload. Little-endian throughout.
//!
//! | type | payload |
//! |---|---|
//! | CONNECT 0x01 | stream type (u8: 0x01 TCP, 0x02 UDP), port (u16), host (UTF-8, the rest) |
//! | DATA 0x02 | bytes of the stream |
//! | CONTINUE 0x03 | credit (u32) |
//! | CLOSE 0x04 | reason (u8) |
//! | INFO 0x05 | major (u8), minor (u8), extension records: id (u8), length (u32), body |
//!
//! Extensions: 0x02 password authentication (the server's body is one byte,
//! non-zero when credentials are required, and an empty body means required;
//! the client's is username length (u8), password length (u16), username,
//! password), and [`EXT_CLIENT_CREDIT`], this relay's own.
//!
//! # Client credit (`EXT_CLIENT_CREDIT`, 0xE0)
//!
//! Wisp's CONTINUE lets the server slow the client down per stream, but
//! nothing lets a client slow one stream down: the server sends each target's
//! bytes as fast as the WebSocket takes them. With this extension the client
//! grants the server credit per stream, in DATA packets:
//!
//! - The server offers it in its INFO with an empty body. A client accepts by
//!   listing it in its INFO reply with a body of at least 4 bytes: the
//!   initial credit of every stream (u32, non-zero). Later bytes are reserved
//!   and ignored. A shorter body or a zero credit is a protocol violation.
//! - Once accepted, for each stream opened after the client's INFO the server
//!   sends at most that many DATA packets until the client grants more. The
//!   client grants with a CONTINUE on that stream, of the same layout as the
//!   server's, whose u32 is an increment added to the stream's credit (as
//!   HTTP/2's WINDOW_UPDATE), not the absolute "buffer remaining" of the
//!   server's CONTINUE: an absolute value would race with the packets in
//!   flight. Credit saturates at `u32::MAX`.
//! - While a stream has no credit the server does not read its target, so
//!   the target's TCP window fills and it slows down; the other streams of
//!   the WebSocket keep flowing. A DATA packet carries at most 64 KiB, so a
//!   client buffers at most credit × 64 KiB per stream.
//! - Without the extension nothing changes, and a client's CONTINUE means
//!   nothing.
//!
//! The id: 0x01 (UDP), 0x02 (password), 0x03 (certificate authentication)
//! and 0x04 (server MOTD) are MercuryWorkshop's, which numbers its extensions
//! from 0x01 upwards; 0xF0 has been used by other implementations. 0xE0 is
//! far from both, where neither is likely to grow.

use std::fmt;

use tokio_tungstenite::tungstenite::Bytes;

/// Type, then stream id.
pub const HEADER: usize = 5;

/// Packet types.
pub const CONNECT: u8 = 0x01;
/// Stream bytes, either way.
pub const DATA: u8 = 0x02;
/// Credit: the server's for the client's DATA; with [`EXT_CLIENT_CREDIT`],
/// also the client's increments for the server's DATA.
pub const CONTINUE: u8 = 0x03;
/// Ends a stream (or, on stream 0, the connection) with a reason.
pub const CLOSE: u8 = 0x04;
/// v2's handshake: version and extensions.
pub const INFO: u8 = 0x05;

/// CONNECT's stream type for TCP.
pub const STREAM_TCP: u8 = 0x01;
/// CONNECT's stream type for UDP (not served here).
pub const STREAM_UDP: u8 = 0x02;

/// Password authentication.
pub const EXT_PASSWORD: u8 = 0x02;
/// Per-stream credit from the client (see the module's documentation).
pub const EXT_CLIENT_CREDIT: u8 = 0xE0;

/// Close reasons, as the Wisp specification numbers them.
pub mod reason {
    /// No reason given (also what an empty CLOSE payload means).
    pub const UNSPECIFIED: u8 = 0x01;
    /// An orderly end.
    pub const VOLUNTARY: u8 = 0x02;
    /// The target's connection failed.
    pub const NETWORK_ERROR: u8 = 0x03;
    /// The handshake's extensions cannot work together.
    pub const INCOMPATIBLE_EXTENSIONS: u8 = 0x04;
    /// The CONNECT was invalid.
    pub const INVALID_INFO: u8 = 0x41;
    /// The target did not resolve or has no route.
    pub const UNREACHABLE: u8 = 0x42;
    /// The target did not answer in time.
    pub const CONNECT_TIMEOUT: u8 = 0x43;
    /// The target refused the connection.
    pub const CONNECTION_REFUSED: u8 = 0x44;
    /// No traffic for too long.
    pub const TRANSFER_TIMEOUT: u8 = 0x47;
    /// The server's policy refuses the target.
    pub const BLOCKED: u8 = 0x48;
    /// Too many streams, or a client past its credit.
    pub const THROTTLED: u8 = 0x49;
    /// Wrong username or password.
    pub const AUTH_BAD_PASSWORD: u8 = 0xc0;
    /// Credentials required and not given.
    pub const AUTH_MISSING: u8 = 0xc2;
}

/// Input that is not a well-formed Wisp packet or record; the text says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError(pub String);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(text: impl Into<String>) -> Result<T, WireError> {
    Err(WireError(text.into()))
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// One packet; the payload shares the message's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Packet type; unknown types are passed on (extensions may add some).
    pub kind: u8,
    /// Stream id; 0 is the connection itself.
    pub stream: u32,
    /// Everything after the header.
    pub payload: Bytes,
}

/// Splits a message into header and payload.
pub fn decode_packet(message: Bytes) -> Result<Packet, WireError> {
    if message.len() < HEADER {
        return err(format!(
            "malformed Wisp packet ({} bytes, shorter than the 5-byte header)",
            message.len()
        ));
    }
    Ok(Packet {
        kind: message[0],
        stream: u32_at(&message, 1),
        payload: message.slice(HEADER..),
    })
}

/// Header and payload, in one buffer.
pub fn encode_packet(kind: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(HEADER + payload.len());
    p.push(kind);
    p.extend_from_slice(&stream.to_le_bytes());
    p.extend_from_slice(payload);
    p
}

/// Writes a DATA header into the first [`HEADER`] bytes of `buf`, whose rest
/// is the payload already read there: the target's bytes are not copied.
pub fn write_data_header(buf: &mut [u8], stream: u32) {
    buf[0] = DATA;
    buf[1..HEADER].copy_from_slice(&stream.to_le_bytes());
}

/// A CONNECT's payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// [`STREAM_TCP`] or [`STREAM_UDP`] (or an unknown type).
    pub stream_type: u8,
    /// Target port.
    pub port: u16,
    /// Target host name or address, as sent.
    pub host: String,
}

/// Reads a CONNECT's payload.
pub fn decode_connect(payload: &[u8]) -> Result<Connect, WireError> {
    if payload.len() < 3 {
        return err(format!(
            "malformed CONNECT ({} payload bytes: a stream type and a 2-byte port come first)",
            payload.len()
        ));
    }
    let Ok(host) = std::str::from_utf8(&payload[3..]) else {
        return err("malformed CONNECT (the host is not UTF-8)");
    };
    Ok(Connect {
        stream_type: payload[0],
        port: u16_at(payload, 1),
        host: host.to_string(),
    })
}

/// A CONNECT for a TCP stream (what a client sends).
pub fn encode_connect(stream: u32, host: &str, port: u16) -> Vec<u8> {
    encode_connect_of(stream, STREAM_TCP, host, port)
}

/// A CONNECT for a stream of any type, as [`STREAM_UDP`] or one unknown.
pub fn encode_connect_of(stream: u32, stream_type: u8, host: &str, port: u16) -> Vec<u8> {
    let mut payload = vec![stream_type];
    payload.extend_from_slice(&port.to_le_bytes());
    payload.extend_from_slice(host.as_bytes());
    encode_packet(CONNECT, stream, &payload)
}

/// A CONTINUE granting `credit`.
pub fn encode_continue(stream: u32, credit: u32) -> Vec<u8> {
    encode_packet(CONTINUE, stream, &credit.to_le_bytes())
}

/// Reads a CONTINUE's credit; bytes after the first 4 are ignored.
pub fn decode_continue(payload: &[u8]) -> Result<u32, WireError> {
    if payload.len() < 4 {
        return err(format!(
            "malformed CONTINUE ({} payload bytes, fewer than 4)",
            payload.len()
        ));
    }
    Ok(u32_at(payload, 0))
}

/// A CLOSE with `reason`.
pub fn encode_close(stream: u32, reason: u8) -> Vec<u8> {
    encode_packet(CLOSE, stream, &[reason])
}

/// Reads a CLOSE's reason; an empty payload gives no reason (0x01). The
/// relay acts the same whatever a client's reason.
pub fn decode_close(payload: &[u8]) -> u8 {
    payload.first().copied().unwrap_or(reason::UNSPECIFIED)
}

/// One extension record of an INFO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// Extension id.
    pub id: u8,
    /// Its body, whose meaning depends on the id and on who sent it.
    pub body: Vec<u8>,
}

/// An INFO's payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// Major version.
    pub major: u8,
    /// Minor version.
    pub minor: u8,
    /// Extension records, in order.
    pub extensions: Vec<Extension>,
}

impl Info {
    /// The body of extension `id`, if listed (the first, if listed twice).
    pub fn extension(&self, id: u8) -> Option<&[u8]> {
        self.extensions
            .iter()
            .find(|e| e.id == id)
            .map(|e| e.body.as_slice())
    }
}

/// An INFO packet (always on stream 0).
pub fn encode_info(info: &Info) -> Vec<u8> {
    let mut payload = vec![info.major, info.minor];
    for ext in &info.extensions {
        payload.push(ext.id);
        let len = u32::try_from(ext.body.len()).unwrap_or(u32::MAX);
        payload.extend_from_slice(&len.to_le_bytes());
        payload.extend_from_slice(&ext.body);
    }
    encode_packet(INFO, 0, &payload)
}

/// Reads an INFO's payload; every byte must belong to a whole record.
pub fn decode_info(payload: &[u8]) -> Result<Info, WireError> {
    if payload.len() < 2 {
        return err(format!(
            "malformed INFO ({} payload bytes: the 2 version bytes come first)",
            payload.len()
        ));
    }
    let mut info = Info {
        major: payload[0],
        minor: payload[1],
        extensions: Vec::new(),
    };
    let mut rest = &payload[2..];
    while !rest.is_empty() {
        if rest.len() < 5 {
            return err(format!(
                "malformed INFO (an extension record cut short: {} bytes of its 5-byte header)",
                rest.len()
            ));
        }
        let id = rest[0];
        let len = u32_at(rest, 1) as usize;
        let Some(body) = rest.get(5..).and_then(|b| b.get(..len)) else {
            return err(format!(
                "malformed INFO (extension {id:#04x} claims {len} bytes, {} remain)",
                rest.len() - 5
            ));
        };
        info.extensions.push(Extension {
            id,
            body: body.to_vec(),
        });
        rest = &rest[5 + len..];
    }
    Ok(info)
}

/// The server's password extension: whether credentials are required.
pub fn server_password_extension(required: bool) -> Extension {
    Extension {
        id: EXT_PASSWORD,
        body: vec![u8::from(required)],
    }
}

/// Reads the server's password extension body: an empty body means required.
pub fn password_required(body: &[u8]) -> bool {
    body.first().is_none_or(|&b| b != 0)
}

/// The client's password extension. The username takes 1 to 255 bytes, the
/// password at most 65535.
pub fn password_extension(user: &str, pass: &str) -> Result<Extension, WireError> {
    let (Ok(user_len), Ok(pass_len)) = (u8::try_from(user.len()), u16::try_from(pass.len())) else {
        return err("the username must be 1 to 255 bytes, the password at most 65535");
    };
    if user_len == 0 {
        return err("the username must be 1 to 255 bytes, the password at most 65535");
    }
    let mut body = vec![user_len];
    body.extend_from_slice(&pass_len.to_le_bytes());
    body.extend_from_slice(user.as_bytes());
    body.extend_from_slice(pass.as_bytes());
    Ok(Extension {
        id: EXT_PASSWORD,
        body,
    })
}

/// Reads the client's password extension body: username and password.
pub fn decode_password(body: &[u8]) -> Result<(String, String), WireError> {
    if body.len() < 3 {
        return err(format!(
            "malformed password extension ({} bytes, shorter than its 3 length bytes)",
            body.len()
        ));
    }
    let user_len = usize::from(body[0]);
    let pass_len = usize::from(u16_at(body, 1));
    if body.len() != 3 + user_len + pass_len {
        return err(format!(
            "malformed password extension ({} bytes where its lengths say {})",
            body.len(),
            3 + user_len + pass_len
        ));
    }
    let (Ok(user), Ok(pass)) = (
        std::str::from_utf8(&body[3..3 + user_len]),
        std::str::from_utf8(&body[3 + user_len..]),
    ) else {
        return err("malformed password extension (not UTF-8)");
    };
    Ok((user.to_string(), pass.to_string()))
}

/// The server's offer of [`EXT_CLIENT_CREDIT`]: an empty body.
pub fn client_credit_offer() -> Extension {
    Extension {
        id: EXT_CLIENT_CREDIT,
        body: Vec::new(),
    }
}

/// The client's [`EXT_CLIENT_CREDIT`]: the initial credit of every stream.
pub fn client_credit_extension(initial: u32) -> Result<Extension, WireError> {
    if initial == 0 {
        return err("the initial credit must be at least 1 packet");
    }
    Ok(Extension {
        id: EXT_CLIENT_CREDIT,
        body: initial.to_le_bytes().to_vec(),
    })
}

/// Reads the client's [`EXT_CLIENT_CREDIT`] body: the initial credit, at
/// least 1; bytes after the first 4 are reserved.
pub fn decode_client_credit(body: &[u8]) -> Result<u32, WireError> {
    if body.len() < 4 {
        return err(format!(
            "malformed client credit extension ({} bytes, fewer than 4)",
            body.len()
        ));
    }
    match u32_at(body, 0) {
        0 => err("client credit extension with an initial credit of 0"),
        n => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    //! Runs the vectors shared with the package (`tests/wisp-vectors.json`).

    use super::*;
    use serde_json::Value;

    fn vectors() -> Vec<Value> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/wisp-vectors.json");
        let text = std::fs::read_to_string(path).expect("read tests/wisp-vectors.json");
        let doc: Value = serde_json::from_str(&text).expect("vectors are JSON");
        doc["vectors"].as_array().expect("a vectors list").clone()
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        assert!(s.len() % 2 == 0, "odd hex {s:?}");
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
            .collect()
    }

    fn num<T: TryFrom<u64>>(v: &Value) -> T {
        let n = v.as_u64().unwrap_or_else(|| panic!("a number: {v}"));
        T::try_from(n).unwrap_or_else(|_| panic!("{n} out of range"))
    }

    fn text(v: &Value) -> &str {
        v.as_str().unwrap_or_else(|| panic!("a string: {v}"))
    }

    /// Checks a decoded extension against its vector; returns the body that
    /// the typed fields encode to, when they say enough to build it.
    fn check_extension(name: &str, got: &Extension, want: &Value) -> Option<Vec<u8>> {
        assert_eq!(got.id, num::<u8>(&want["id"]), "{name}: extension id");
        assert_eq!(got.body, hex(text(&want["body"])), "{name}: extension body");
        if let Some(required) = want.get("passwordRequired") {
            let required = required.as_bool().expect("a boolean");
            assert_eq!(password_required(&got.body), required, "{name}");
            return Some(server_password_extension(required).body);
        }
        if let Some(creds) = want.get("password") {
            let (user, pass) = (text(&creds["user"]), text(&creds["pass"]));
            let decoded = decode_password(&got.body).expect(name);
            assert_eq!(
                (decoded.0.as_str(), decoded.1.as_str()),
                (user, pass),
                "{name}"
            );
            return Some(password_extension(user, pass).expect(name).body);
        }
        if let Some(credit) = want.get("clientCredit") {
            if credit.is_null() {
                // The server's offer.
                assert!(got.body.is_empty(), "{name}");
                return Some(client_credit_offer().body);
            }
            let credit = num::<u32>(credit);
            assert_eq!(
                decode_client_credit(&got.body).expect(name),
                credit,
                "{name}"
            );
            return Some(client_credit_extension(credit).expect(name).body);
        }
        // An extension this side does not know: its raw body.
        Some(got.body.clone())
    }

    /// Decodes `bytes` as the vector says, and returns what encoding its
    /// fields gives.
    fn check_valid(name: &str, bytes: &[u8], v: &Value) -> Vec<u8> {
        let p = decode_packet(Bytes::copy_from_slice(bytes)).expect(name);
        let stream = num::<u32>(&v["stream"]);
        assert_eq!(p.kind, num::<u8>(&v["type"]), "{name}: type");
        assert_eq!(p.stream, stream, "{name}: stream");
        if let Some(c) = v.get("connect") {
            let want = Connect {
                stream_type: num(&c["streamType"]),
                port: num(&c["port"]),
                host: text(&c["host"]).to_string(),
            };
            assert_eq!(decode_connect(&p.payload).expect(name), want, "{name}");
            if want.stream_type == STREAM_TCP {
                encode_connect(stream, &want.host, want.port)
            } else {
                // Clients here open TCP streams only: such vectors are decodeOnly.
                Vec::new()
            }
        } else if let Some(d) = v.get("data") {
            assert_eq!(p.kind, DATA, "{name}");
            assert_eq!(&p.payload[..], hex(text(d)), "{name}: data");
            encode_packet(DATA, stream, &hex(text(d)))
        } else if let Some(d) = v.get("payload") {
            assert_eq!(&p.payload[..], hex(text(d)), "{name}: payload");
            encode_packet(p.kind, stream, &hex(text(d)))
        } else if let Some(c) = v.get("credit") {
            assert_eq!(p.kind, CONTINUE, "{name}");
            assert_eq!(
                decode_continue(&p.payload).expect(name),
                num::<u32>(c),
                "{name}"
            );
            encode_continue(stream, num(c))
        } else if let Some(r) = v.get("reason") {
            assert_eq!(p.kind, CLOSE, "{name}");
            assert_eq!(decode_close(&p.payload), num::<u8>(r), "{name}");
            encode_close(stream, num(r))
        } else if let Some(i) = v.get("info") {
            assert_eq!(p.kind, INFO, "{name}");
            let info = decode_info(&p.payload).expect(name);
            assert_eq!(info.major, num::<u8>(&i["major"]), "{name}: major");
            assert_eq!(info.minor, num::<u8>(&i["minor"]), "{name}: minor");
            let want = i["extensions"].as_array().expect("an extensions list");
            assert_eq!(info.extensions.len(), want.len(), "{name}: extensions");
            let extensions = info
                .extensions
                .iter()
                .zip(want)
                .map(|(got, want)| Extension {
                    id: got.id,
                    body: check_extension(name, got, want).expect(name),
                })
                .collect();
            encode_info(&Info {
                major: info.major,
                minor: info.minor,
                extensions,
            })
        } else {
            panic!("{name}: the vector gives no fields");
        }
    }

    /// Whether the decoder that the vector names rejects it.
    fn check_malformed(name: &str, bytes: &[u8], stage: &str) {
        let p = decode_packet(Bytes::copy_from_slice(bytes));
        if stage == "packet" {
            assert!(p.is_err(), "{name}: accepted");
            return;
        }
        let p = p.expect(name);
        let rejected = match stage {
            "connect" => decode_connect(&p.payload).is_err(),
            "continue" => decode_continue(&p.payload).is_err(),
            "info" => decode_info(&p.payload).is_err(),
            "password" | "clientCredit" => {
                let info = decode_info(&p.payload).expect(name);
                let id = if stage == "password" {
                    EXT_PASSWORD
                } else {
                    EXT_CLIENT_CREDIT
                };
                let body = info.extension(id).expect(name);
                if stage == "password" {
                    decode_password(body).is_err()
                } else {
                    decode_client_credit(body).is_err()
                }
            }
            other => panic!("{name}: unknown stage {other}"),
        };
        assert!(rejected, "{name}: accepted");
    }

    #[test]
    fn shared_vectors() {
        let vectors = vectors();
        assert!(vectors.len() >= 30, "only {} vectors", vectors.len());
        let mut kinds = std::collections::BTreeSet::new();
        for v in &vectors {
            let name = text(&v["name"]);
            let bytes = hex(text(&v["hex"]));
            if let Some(stage) = v.get("malformed") {
                check_malformed(name, &bytes, text(stage));
                continue;
            }
            kinds.insert(num::<u8>(&v["type"]));
            let encoded = check_valid(name, &bytes, v);
            if v.get("decodeOnly").and_then(Value::as_bool) != Some(true) {
                assert_eq!(hex_of(&encoded), hex_of(&bytes), "{name}: encoding");
            }
        }
        for kind in [CONNECT, DATA, CONTINUE, CLOSE, INFO] {
            assert!(kinds.contains(&kind), "no vector of type {kind}");
        }
    }

    fn hex_of(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn encoders_refuse_what_cannot_be_sent() {
        assert!(password_extension("", "pw").is_err());
        assert!(password_extension(&"u".repeat(256), "pw").is_err());
        assert!(password_extension("u", &"p".repeat(65536)).is_err());
        assert!(password_extension(&"u".repeat(255), &"p".repeat(65535)).is_ok());
        assert!(client_credit_extension(0).is_err());
    }

    #[test]
    fn data_header_in_place() {
        let mut buf = vec![0, 0, 0, 0, 0, b'h', b'i'];
        write_data_header(&mut buf, 0x0102_0304);
        assert_eq!(buf, encode_packet(DATA, 0x0102_0304, b"hi"));
    }
}
