//! Bulk throughput through the real API: server to client (the client decrypts with
//! `push_ciphertext` and `read`) and client to server (`write` and `take_ciphertext`).

use std::io::{Read, Write};

use rustls::CipherSuite;
use serde::Serialize;
use wasm_tls::Status;

use crate::clock::now_us;
use crate::median;
use crate::pair::connect;
use crate::pki::{client_config, server_config, Identity};

/// The size of what the transport hands over at once, and of the read buffer.
pub const CHUNK: usize = 64 * 1024;

/// One cipher suite's figures, in MB/s (10^6 bytes per second) of application data.
#[derive(Debug, Serialize)]
pub struct BulkFigure {
    /// The figure's id, e.g. "bulk-chacha20" (`--only` selects by it).
    pub id: String,
    /// The cipher suite, as rustls names it.
    pub suite: String,
    /// Median over rounds: the client decrypting (server to client).
    pub decrypt_mbps: f64,
    /// Median over rounds: the client encrypting (client to server).
    pub encrypt_mbps: f64,
    /// Each round's decrypting figure.
    pub rounds_decrypt_mbps: Vec<f64>,
    /// Each round's encrypting figure.
    pub rounds_encrypt_mbps: Vec<f64>,
    /// Application bytes per round, each way.
    pub bytes_per_round: usize,
}

fn mbps(bytes: usize, us: f64) -> f64 {
    bytes as f64 / us
}

pub fn measure(
    id: &str,
    suite: CipherSuite,
    identity: &Identity,
    bytes: usize,
    rounds: usize,
) -> Result<BulkFigure, String> {
    let server = server_config(identity, &[&rustls::version::TLS13], Some(suite))?;
    let config = client_config(identity, false, false)?;
    let data: Vec<u8> = (0..bytes).map(|i| (i % 251) as u8).collect();
    let mut buf = vec![0u8; CHUNK];
    let mut decrypt = Vec::new();
    let mut encrypt = Vec::new();
    for round in 0..rounds {
        let mut pair = connect(&config, &server)?;
        let negotiated = pair.client.handshake_info().map(|i| i.cipher_suite);
        if negotiated.as_deref() != suite.as_str() {
            return Err(format!("{id}: negotiated {negotiated:?}"));
        }

        // Server to client: the server's records are made first, untimed.
        pair.server.set_buffer_limit(None);
        pair.server
            .writer()
            .write_all(&data)
            .map_err(|e| format!("server write: {e}"))?;
        let mut ciphertext = Vec::with_capacity(bytes + bytes / 64 + 1024);
        while pair.server.wants_write() {
            pair.server
                .write_tls(&mut ciphertext)
                .map_err(|e| format!("server write_tls: {e}"))?;
        }
        let start = now_us();
        let (mut pushed, mut received) = (0, 0);
        while received < bytes {
            if pushed < ciphertext.len() {
                let end = (pushed + CHUNK).min(ciphertext.len());
                pushed += pair.client.push_ciphertext(&ciphertext[pushed..end]);
            }
            loop {
                match pair.client.read(&mut buf) {
                    Ok(Status::Done(n)) => received += n,
                    Ok(Status::WantRead) => break,
                    other => return Err(format!("{id}: client read: {other:?}")),
                }
            }
            if pushed == ciphertext.len() && received < bytes {
                return Err(format!("{id}: decrypted {received} of {bytes} bytes"));
            }
        }
        decrypt.push(mbps(bytes, now_us() - start));
        drop(ciphertext);

        // Client to server.
        let keep = round == 0;
        let mut sent = Vec::new();
        let start = now_us();
        let mut taken = 0;
        while taken < bytes {
            match pair.client.write(&data[taken..]) {
                Ok(Status::Done(n)) => taken += n,
                Ok(Status::WantWrite) => {}
                other => return Err(format!("{id}: client write: {other:?}")),
            }
            let out = pair.client.take_ciphertext();
            if keep {
                sent.push(out);
            }
        }
        encrypt.push(mbps(bytes, now_us() - start));

        // Once, check that the server reads it all back (untimed).
        if keep {
            let mut got = 0;
            for chunk in &sent {
                let mut rd = &chunk[..];
                while !rd.is_empty() {
                    pair.server
                        .read_tls(&mut rd)
                        .map_err(|e| format!("server read_tls: {e}"))?;
                    pair.server
                        .process_new_packets()
                        .map_err(|e| format!("server: {e}"))?;
                    loop {
                        match pair.server.reader().read(&mut buf) {
                            Ok(0) => break,
                            Ok(n) => got += n,
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                            Err(e) => return Err(format!("server read: {e}")),
                        }
                    }
                }
            }
            if got != bytes {
                return Err(format!("{id}: the server read {got} of {bytes} bytes"));
            }
        }
    }
    Ok(BulkFigure {
        id: id.to_owned(),
        suite: suite.as_str().unwrap_or("?").to_owned(),
        decrypt_mbps: median(&decrypt),
        encrypt_mbps: median(&encrypt),
        rounds_decrypt_mbps: decrypt,
        rounds_encrypt_mbps: encrypt,
        bytes_per_round: bytes,
    })
}
