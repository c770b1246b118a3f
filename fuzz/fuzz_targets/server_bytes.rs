//! Arbitrary server bytes, in arbitrary chunks, into a client: at the start of the
//! handshake, part-way through a real one, or after a completed one (as raw bytes or as
//! records properly encrypted with the server's keys).
//!
//! Input: `flags, chunk_seed, k_hi, k_lo, body...`
//!
//! - `flags & 3`: 0 = a fresh client after its ClientHello gets `body` (the seeds are
//!   recorded server flights); 1 = a real server's first `k & 0x7fff` bytes (TLS 1.2
//!   if `k & 0x8000`, else 1.3), then `body`;
//!   2 = a real TLS 1.3 handshake, then `body` as operations; 3 = the same with TLS 1.2.
//! - `flags & 4`: push EOF at the end; `flags & 8`: read one byte at a time;
//!   `flags & 16`: the client writes between chunks; `flags & 32`: RSA certificate;
//!   `flags & 64`: HelloRetryRequest (TLS 1.3); `flags & 128`: the server asks for a
//!   client certificate.
//! - After the handshake, `body` is a list of operations: `0, len(2), bytes` sends raw
//!   bytes; `1, type, len(2), bytes` sends one encrypted record of that content type.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wasm_tls::Status;
use wasm_tls_fuzz::{
    client, handshake, server, server_receive, Chunker, Host, Sealer, ServerOptions,
};

/// The server's bytes that follow the client's ClientHello.
fn stream(data: &[u8]) -> Option<(Host, Vec<u8>)> {
    let (&flags, rest) = data.split_first()?;
    let (&_seed, rest) = rest.split_first()?;
    let (k, body) = rest.split_at_checked(2)?;
    let k = usize::from(u16::from_be_bytes([k[0], k[1]]));
    let read_size = if flags & 8 != 0 { 1 } else { 16 * 1024 };
    let opts = |tls12: bool, extract: bool| ServerOptions {
        tls12,
        rsa: flags & 32 != 0,
        hrr: flags & 64 != 0,
        client_auth: flags & 128 != 0,
        extract,
    };
    let alpn = flags & 16 != 0;
    let mut tls = client(alpn);
    match flags & 3 {
        0 => {
            // Take the ClientHello out, as a host would send it.
            let mut host = Host::new(tls, read_size);
            host.settle();
            Some((host, body.to_vec()))
        }
        1 => {
            let tls12 = k & 0x8000 != 0;
            let k = k & 0x7fff;
            let mut server = server(opts(tls12, false));
            let Ok(Status::WantWrite) = tls.connect() else {
                panic!("a new client has no ClientHello to send");
            };
            let hello = tls.take_ciphertext();
            let mut flight = Vec::new();
            server_receive(&mut server, &hello, &mut flight, &mut Vec::new());
            flight.truncate(k);
            flight.extend_from_slice(body);
            Some((Host::new(tls, read_size), flight))
        }
        mode => {
            let mut server = server(opts(mode == 3, true));
            let tickets = handshake(&mut tls, &mut server)?;
            let mut sealer = Sealer::new(server).expect("secrets of a finished server");
            let mut out = tickets;
            let mut ops = body;
            while let Some((&op, rest)) = ops.split_first() {
                let (typ, rest) = if op & 1 == 0 {
                    (None, rest)
                } else {
                    let (&typ, rest) = rest.split_first()?;
                    (Some(typ), rest)
                };
                let (len, rest) = rest.split_at_checked(2)?;
                let len = usize::from(u16::from_be_bytes([len[0], len[1]])).min(rest.len());
                let (payload, rest) = rest.split_at(len);
                match typ {
                    None => out.extend_from_slice(payload),
                    Some(typ) => out.extend_from_slice(&sealer.seal(typ, payload)),
                }
                ops = rest;
            }
            let mut host = Host::new(tls, read_size);
            host.connected = true;
            Some((host, out))
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((mut host, bytes)) = stream(data) else {
        return;
    };
    let flags = data[0];
    let mut chunker = Chunker::new(data[1]);
    let mut rest = &bytes[..];
    while !rest.is_empty() && !host.ended() {
        let n = chunker.next_size().min(rest.len());
        host.push(&rest[..n]);
        rest = &rest[n..];
        if flags & 16 != 0 {
            host.write_some(b"GET / HTTP/1.1\r\n\r\n");
        }
    }
    if flags & 4 != 0 {
        host.push_eof();
        assert!(
            host.ended(),
            "EOF was pushed and the connection did not end"
        );
    }
    host.shutdown();
});
