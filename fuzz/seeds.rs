//! Writes seed corpora for the fuzz targets, recorded from real in-memory handshakes
//! with a rustls server: `seeds DIR` fills `DIR/server_bytes/` and `DIR/api_sequence/`.
//! The corpora are made at run time and never committed.

use std::fs;
use std::path::Path;
use std::process::ExitCode;

use wasm_tls::Status;
use wasm_tls_fuzz::{client, server, server_receive, server_send, ServerOptions};

/// The server's whole byte stream in a real handshake (every flight, and the session
/// tickets after it), and the length of its first flight.
fn record(opts: ServerOptions, alpn: bool) -> (Vec<u8>, usize) {
    let mut tls = client(alpn);
    let mut server = server(opts);
    let mut stream = Vec::new();
    let mut first = 0;
    for _ in 0..32 {
        match tls.connect() {
            Ok(Status::Done(())) => break,
            Ok(Status::WantWrite) => {
                let flight = tls.take_ciphertext();
                let mut answer = Vec::new();
                server_receive(&mut server, &flight, &mut answer, &mut Vec::new());
                if first == 0 {
                    first = answer.len();
                }
                tls.push_ciphertext(&answer);
                stream.extend_from_slice(&answer);
            }
            Ok(Status::WantRead) => {
                let mut answer = Vec::new();
                server_send(&mut server, &mut answer);
                if answer.is_empty() {
                    break;
                }
                tls.push_ciphertext(&answer);
                stream.extend_from_slice(&answer);
            }
            Ok(Status::Closed) | Err(_) => break,
        }
    }
    let mut tickets = Vec::new();
    server_send(&mut server, &mut tickets);
    stream.extend_from_slice(&tickets);
    (stream, first)
}

fn raw(bytes: &[u8]) -> Vec<u8> {
    let mut op = vec![0];
    op.extend_from_slice(&u16::try_from(bytes.len()).unwrap_or(u16::MAX).to_be_bytes());
    op.extend_from_slice(bytes);
    op
}

fn sealed(typ: u8, payload: &[u8]) -> Vec<u8> {
    let mut op = vec![1, typ];
    op.extend_from_slice(
        &u16::try_from(payload.len())
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
    op.extend_from_slice(payload);
    op
}

fn handshake_message(typ: u8, body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(body.len()).unwrap_or(0).to_be_bytes();
    let mut msg = vec![typ, len[1], len[2], len[3]];
    msg.extend_from_slice(body);
    msg
}

/// Operations after the handshake: well-formed and broken records a server might send.
fn after_handshake_ops(tls13: bool) -> Vec<Vec<Vec<u8>>> {
    let ticket = {
        let mut body = Vec::new();
        body.extend_from_slice(&7200u32.to_be_bytes()); // lifetime
        if tls13 {
            body.extend_from_slice(&0x1234_5678u32.to_be_bytes()); // age_add
            body.extend_from_slice(&[1, 0]); // nonce
        }
        body.extend_from_slice(&[0, 4, 1, 2, 3, 4]); // ticket
        if tls13 {
            body.extend_from_slice(&[0, 0]); // extensions
        }
        handshake_message(4, &body)
    };
    let data = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_vec();
    let close_notify = [1, 0];
    let mut seeds = vec![
        vec![sealed(23, &data), sealed(21, &close_notify)],
        vec![sealed(22, &ticket), sealed(23, &data)],
        vec![sealed(23, &[]), sealed(23, &data)],
        vec![sealed(23, &vec![b'x'; 16 * 1024]), sealed(23, &data)],
        vec![sealed(23, &vec![b'y'; 16 * 1024 + 1])],
        vec![sealed(21, &[2, 40])],
        vec![sealed(21, &[1, 100])],
        vec![sealed(99, b"unknown content type")],
        vec![sealed(20, &[1])],
        vec![raw(&[23, 3, 3, 0, 20]), raw(&[0; 20])],
        vec![raw(&[23, 3, 3, 0x48, 1])],
        vec![raw(b"HTTP/1.1 400 Bad Request\r\n\r\n")],
        vec![sealed(22, &handshake_message(2, &[3, 3]))],
    ];
    if tls13 {
        seeds.push(vec![
            sealed(22, &handshake_message(24, &[0])),
            sealed(23, &data),
        ]);
        seeds.push(vec![
            sealed(22, &handshake_message(24, &[1])),
            sealed(23, &data),
        ]);
        seeds.push(vec![sealed(22, &handshake_message(13, &[0, 0, 0]))]);
    } else {
        seeds.push(vec![
            sealed(22, &handshake_message(0, &[])),
            sealed(23, &data),
        ]);
    }
    seeds
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    fs::write(dir.join(name), bytes)
}

fn server_bytes(dir: &Path) -> std::io::Result<usize> {
    fs::create_dir_all(dir)?;
    let mut count = 0;
    // flags bits: 32 RSA, 64 HelloRetryRequest, 128 client certificate request.
    let servers = [
        ("tls13-ecdsa", false, 0u8),
        ("tls13-rsa", false, 32),
        ("tls13-hrr", false, 64),
        ("tls13-certreq", false, 128),
        ("tls12-ecdsa", true, 0),
        ("tls12-rsa", true, 32),
        ("tls12-certreq", true, 128),
    ];
    for (name, tls12, bits) in servers {
        let opts = ServerOptions {
            tls12,
            rsa: bits & 32 != 0,
            hrr: bits & 64 != 0,
            client_auth: bits & 128 != 0,
            extract: false,
        };
        let (stream, first) = record(opts, false);
        // Mode 0: the whole recorded stream into a fresh client, in several chunkings,
        // with and without EOF after it.
        for (seed, eof) in [(7u8, false), (0, true), (3, false), (5, true)] {
            let mut input = vec![bits | if eof { 4 } else { 0 }, seed, 0, 0];
            input.extend_from_slice(&stream);
            write(dir, &format!("fresh-{name}-{seed}"), &input)?;
            count += 1;
        }
        // Mode 1: a live server's first flight (whole, or cut), then something else.
        let k = |len: usize| {
            let k = u16::try_from(len.min(0x7fff)).unwrap_or(0) | if tls12 { 0x8000 } else { 0 };
            k.to_be_bytes()
        };
        let tails: [(&str, usize, Vec<u8>); 5] = [
            ("whole", first, Vec::new()),
            ("alert", first, vec![21, 3, 3, 0, 2, 2, 40]),
            ("cut", first / 2, vec![21, 3, 3, 0, 2, 2, 10]),
            (
                "garbage",
                first,
                b"\x17\x03\x03\x00\x10garbage-garbage!".to_vec(),
            ),
            ("ccs", first, vec![20, 3, 3, 0, 1, 1]),
        ];
        for (tail, len, body) in tails {
            let k = k(len);
            let mut input = vec![1 | bits, 6, k[0], k[1]];
            input.extend_from_slice(&body);
            write(dir, &format!("live-{name}-{tail}"), &input)?;
            count += 1;
        }
    }
    // Modes 2 and 3: after a real handshake.
    for (mode, tls13) in [(2u8, true), (3, false)] {
        for (i, ops) in after_handshake_ops(tls13).into_iter().enumerate() {
            for (seed, extra) in [(6u8, 0u8), (1, 4 | 8)] {
                let mut input = vec![mode | extra, seed, 0, 0];
                for op in &ops {
                    input.extend_from_slice(op);
                }
                write(dir, &format!("after-{mode}-{i}-{seed}"), &input)?;
                count += 1;
            }
        }
    }
    Ok(count)
}

fn size(n: u16) -> [u8; 2] {
    n.to_be_bytes()
}

fn api_sequence(dir: &Path) -> std::io::Result<usize> {
    fs::create_dir_all(dir)?;
    // Operations: 0 connect, 1 read(n), 2 write(n), 3 shutdown, 4 push(n, bytes), 5 EOF,
    // 6 pull(n) to the server, 7 take to the server, 8 drop(n), 9 from the server(n),
    // 10 server write(n), 11 server close_notify, 12 server key update,
    // 13 corrupt(at, xor), 14 pump, 15 queries.
    let mut exchange = vec![14, 10];
    exchange.extend_from_slice(&size(300));
    exchange.push(14);
    exchange.push(1);
    exchange.extend_from_slice(&size(4096));
    exchange.push(2);
    exchange.extend_from_slice(&size(200));
    exchange.extend_from_slice(&[14, 12, 14, 11, 14, 1, 0x40, 0, 3, 7, 15]);

    let mut by_hand = Vec::new();
    for _ in 0..4 {
        by_hand.extend_from_slice(&[0, 7, 9, 0xff, 0xff]);
    }
    by_hand.extend_from_slice(&[0, 6, 0, 10, 6, 0xff, 0xff, 9, 0, 1, 9, 0xff, 0xff, 0, 7]);
    by_hand.extend_from_slice(&[
        10, 0xff, 0xff, 9, 0x40, 0, 9, 0x40, 0, 1, 0, 1, 1, 0xff, 0xff,
    ]);
    by_hand.extend_from_slice(&[
        9, 0xff, 0xff, 1, 0xff, 0xff, 2, 0xff, 0xff, 6, 0, 100, 3, 5, 1, 0, 10,
    ]);

    let mut corrupt = vec![0, 7, 13, 0, 40, 0x55, 9, 0xff, 0xff, 0, 7, 14, 15];
    corrupt.extend_from_slice(&[1, 0, 16]);

    let mut flooded = vec![14];
    for _ in 0..6 {
        flooded.push(10);
        flooded.extend_from_slice(&size(u16::MAX));
    }
    flooded.extend_from_slice(&[
        9, 0xff, 0xff, 9, 0xff, 0xff, 9, 0xff, 0xff, 1, 0, 1, 9, 0xff, 0xff,
    ]);
    flooded.extend_from_slice(&[
        1, 0xff, 0xff, 1, 0xff, 0xff, 5, 1, 0xff, 0xff, 1, 0xff, 0xff,
    ]);

    let mut count = 0;
    for (name, ops) in [
        ("exchange", &exchange),
        ("by-hand", &by_hand),
        ("corrupt", &corrupt),
        ("flooded", &flooded),
    ] {
        for options in [0u8, 1, 2, 4, 8, 32 | 1, 32] {
            let mut input = vec![options];
            input.extend_from_slice(ops);
            write(dir, &format!("{name}-{options}"), &input)?;
            count += 1;
        }
    }
    // A recorded TLS 1.3 server stream, pushed as if from nowhere.
    let (stream, _) = record(ServerOptions::default(), false);
    let mut pushed = vec![0, 0, 7, 4];
    pushed.extend_from_slice(&size(u16::try_from(stream.len()).unwrap_or(u16::MAX)));
    pushed.extend_from_slice(&stream);
    pushed.extend_from_slice(&[0, 1, 0, 100, 5, 1, 0, 100]);
    write(dir, "pushed-recording", &pushed)?;
    Ok(count + 1)
}

fn main() -> ExitCode {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: seeds CORPUS_DIR");
        return ExitCode::from(2);
    };
    let dir = Path::new(&dir);
    let result = server_bytes(&dir.join("server_bytes"))
        .and_then(|a| api_sequence(&dir.join("api_sequence")).map(|b| (a, b)));
    match result {
        Ok((a, b)) => {
            println!("seeds: {a} for server_bytes, {b} for api_sequence");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("seeds: {err}");
            ExitCode::FAILURE
        }
    }
}
