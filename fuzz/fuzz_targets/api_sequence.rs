//! Arbitrary sequences of API calls on a client, with a real rustls server in the loop
//! that the sequence may or may not pump, and bytes the sequence may inject, drop or
//! corrupt on the way.
//!
//! Input: `options, op...`. `options` picks the server (see `ServerOptions::from_bits`)
//! and, with bit 5, ALPN on the client. Each operation is a byte (`op % 16`, below) and
//! its arguments; sizes are two bytes, big-endian.
//!
//! Besides the contract checks every call gets (see the library), two oracles hold
//! while nobody tampered with the bytes either way and no EOF was pushed: the client
//! never fails, and what each side reads is exactly a prefix of what the other wrote.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rustls::ServerConnection;
use wasm_tls::{Shutdown, Status, TlsClient};
use wasm_tls_fuzz::{
    checked, checked_read, client, server, server_receive, server_send, server_write, ServerOptions,
};

/// The byte at `i` of a side's application-data stream.
fn pattern(seed: u8, i: usize) -> u8 {
    (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8
}

fn pattern_bytes(seed: u8, from: usize, len: usize) -> Vec<u8> {
    (from..from + len).map(|i| pattern(seed, i)).collect()
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn size(&mut self) -> Option<usize> {
        Some(usize::from(u16::from_be_bytes([
            self.byte()?,
            self.byte()?,
        ])))
    }

    fn bytes(&mut self, len: usize) -> &[u8] {
        let (head, rest) = self.0.split_at(len.min(self.0.len()));
        self.0 = rest;
        head
    }
}

struct World {
    tls: TlsClient,
    server: ServerConnection,
    server_ok: bool,
    /// Server bytes not yet delivered to the client (what it refused stays here).
    to_client: Vec<u8>,
    /// Application data the client's `write` accepted, and what the server received.
    client_sent: usize,
    server_got: Vec<u8>,
    /// Application data the server accepted, and what the client read.
    server_sent: usize,
    client_got: usize,
    /// Whether bytes towards the client / the server were injected, dropped or changed.
    tainted_down: bool,
    tainted_up: bool,
    eof: bool,
    /// The server closed before its handshake was complete, or flooded key updates.
    aborted: bool,
    /// Key updates the server sent since it last sent application data.
    key_updates: u32,
    /// The core refused pushed bytes; a read must make room before it may want more.
    refused: bool,
}

impl World {
    fn clean(&self) -> bool {
        !self.tainted_down && !self.tainted_up && !self.eof && !self.aborted
    }

    fn deliver_up(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.server_ok {
            self.server_ok = server_receive(
                &mut self.server,
                bytes,
                &mut self.to_client,
                &mut self.server_got,
            );
            if !self.tainted_up {
                // A client that failed sent an alert, which fails the server too; a
                // server that closed may refuse what follows; and a changed server
                // flight changes the client's Finished.
                assert!(
                    self.server_ok
                        || self.tls.failure().is_some()
                        || self.tls.peer_closed()
                        || self.tainted_down,
                    "the server rejected the client's honest bytes"
                );
                assert_eq!(
                    self.server_got[..],
                    pattern_bytes(0xc1, 0, self.server_got.len())[..],
                    "the server received something the client did not write"
                );
                assert!(self.server_got.len() <= self.client_sent);
            }
        }
    }

    fn push(&mut self, bytes: &[u8]) -> usize {
        let taken = self.tls.push_ciphertext(bytes);
        assert!(taken <= bytes.len());
        if taken < bytes.len() {
            assert!(
                self.tls.pending_plaintext() > 0,
                "push_ciphertext refused bytes with no plaintext to read"
            );
            self.refused = true;
        }
        taken
    }

    fn deliver_down(&mut self, n: usize) {
        if self.eof {
            return;
        }
        let n = n.min(self.to_client.len());
        let chunk: Vec<u8> = self.to_client[..n].to_vec();
        let taken = self.push(&chunk);
        self.to_client.drain(..taken);
    }

    fn connect(&mut self) {
        let result = self.tls.connect();
        let result = checked(&mut self.tls, result);
        match result {
            Ok(Status::Done(())) => assert!(self.tls.handshake_info().is_some()),
            Ok(Status::WantRead) => assert!(!self.eof, "connect wants to read after EOF"),
            Ok(_) => {}
            Err(err) => self.failed(&err),
        }
    }

    fn read(&mut self, size: usize) {
        let mut buf = vec![0; size];
        let result = self.tls.read(&mut buf);
        match checked_read(&mut self.tls, result) {
            Ok(Status::Done(n)) => {
                assert!(n <= size);
                assert!(
                    n > 0 || size == 0,
                    "read returned 0 bytes into a non-empty buffer"
                );
                if n > 0 {
                    self.refused = false;
                }
                if !self.tainted_down {
                    assert!(
                        buf[..n] == pattern_bytes(0x5e, self.client_got, n)[..],
                        "the client read something the server did not write"
                    );
                    assert!(self.client_got + n <= self.server_sent);
                }
                self.client_got += n;
            }
            Ok(Status::WantRead) => {
                assert!(!self.eof, "read wants to read after EOF");
                if size > 0 && !self.tls.is_handshaking() {
                    assert!(
                        !self.refused,
                        "read wants more input while the core refuses what it has: a host would hang"
                    );
                }
            }
            Ok(Status::Closed) => {
                self.refused = false;
                assert!(self.tls.peer_closed() || self.tls.is_handshaking());
            }
            Ok(Status::WantWrite) => {}
            Err(err) => {
                self.refused = false;
                self.failed(&err);
            }
        }
    }

    fn write(&mut self, len: usize) {
        let data = pattern_bytes(0xc1, self.client_sent, len);
        let result = self.tls.write(&data);
        match checked(&mut self.tls, result) {
            Ok(Status::Done(n)) => {
                assert!(n <= len);
                assert!(n > 0 || len == 0, "write took 0 bytes");
                self.client_sent += n;
            }
            Ok(Status::WantRead) => assert!(!self.eof, "write wants to read after EOF"),
            Ok(_) => {}
            Err(err) => self.failed(&err),
        }
    }

    fn shutdown(&mut self) {
        let result = self.tls.shutdown();
        match checked(&mut self.tls, result) {
            Ok(Status::Done(Shutdown::Complete)) => assert!(self.tls.peer_closed()),
            Ok(Status::Done(Shutdown::Sent) | Status::WantWrite) => {}
            Ok(other) => panic!("shutdown returned {other:?}"),
            Err(err) => self.failed(&err),
        }
    }

    fn failed(&mut self, err: &wasm_tls::Error) {
        if err.is_fatal() && self.clean() {
            panic!("the connection failed though nobody misbehaved: {err} ({err:?})");
        }
    }

    /// Pumps honestly both ways until nothing moves (bounded).
    fn pump(&mut self) {
        for _ in 0..64 {
            let up = self.tls.take_ciphertext();
            let had_down = self.to_client.len();
            self.deliver_up(&up);
            self.deliver_down(usize::MAX);
            if self.tls.pending_plaintext() > 0 {
                self.read(16 * 1024);
            } else if self.tls.is_handshaking() {
                self.connect();
            }
            if up.is_empty()
                && self.to_client.len() == had_down
                && self.tls.pending_ciphertext() == 0
            {
                return;
            }
        }
    }
}

/// Whether to print each operation (`WASM_TLS_FUZZ_TRACE=1`, to study a crash).
fn trace() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("WASM_TLS_FUZZ_TRACE").is_some())
}

fuzz_target!(|data: &[u8]| {
    let mut input = Reader(data);
    let Some(options) = input.byte() else {
        return;
    };
    let mut opts = ServerOptions::from_bits(options);
    opts.extract = false;
    let mut world = World {
        tls: client(options & 32 != 0),
        server: server(opts),
        server_ok: true,
        to_client: Vec::new(),
        client_sent: 0,
        server_got: Vec::new(),
        server_sent: 0,
        client_got: 0,
        tainted_down: false,
        tainted_up: false,
        eof: false,
        aborted: false,
        key_updates: 0,
        refused: false,
    };
    for _ in 0..512 {
        let Some(op) = input.byte() else {
            break;
        };
        if trace() {
            eprintln!(
                "op {} (pending out {}, plaintext {}, to client {}, handshaking {}, failure {:?})",
                op % 16,
                world.tls.pending_ciphertext(),
                world.tls.pending_plaintext(),
                world.to_client.len(),
                world.tls.is_handshaking(),
                world.tls.failure().map(|e| e.code())
            );
        }
        match op % 16 {
            0 => world.connect(),
            1 => {
                let Some(n) = input.size() else { break };
                world.read(n);
            }
            2 => {
                let Some(n) = input.size() else { break };
                world.write(n);
            }
            3 => world.shutdown(),
            4 => {
                let Some(n) = input.size() else { break };
                let bytes = input.bytes(n).to_vec();
                world.tainted_down = true;
                world.push(&bytes);
            }
            5 => {
                world.eof = true;
                world.tls.push_eof();
            }
            6 => {
                let Some(n) = input.size() else { break };
                let before = world.tls.pending_ciphertext();
                let mut buf = vec![0; n];
                let got = world.tls.pull_ciphertext(&mut buf);
                assert_eq!(
                    got,
                    n.min(before),
                    "pull_ciphertext copied the wrong amount"
                );
                assert_eq!(world.tls.pending_ciphertext(), before - got);
                world.deliver_up(&buf[..got]);
            }
            7 => {
                let before = world.tls.pending_ciphertext();
                let all = world.tls.take_ciphertext();
                assert_eq!(all.len(), before, "take_ciphertext took the wrong amount");
                assert_eq!(world.tls.pending_ciphertext(), 0);
                world.deliver_up(&all);
            }
            8 => {
                let Some(n) = input.size() else { break };
                let mut buf = vec![0; n];
                if world.tls.pull_ciphertext(&mut buf) > 0 {
                    world.tainted_up = true;
                }
            }
            9 => {
                let Some(n) = input.size() else { break };
                world.deliver_down(n);
            }
            10 => {
                let Some(n) = input.size() else { break };
                if world.server_ok {
                    let data = pattern_bytes(0x5e, world.server_sent, n);
                    let taken = server_write(&mut world.server, &data, &mut world.to_client);
                    world.server_sent += taken;
                    if taken > 0 {
                        world.key_updates = 0;
                    }
                }
            }
            11 => {
                // close_notify during the handshake is an abort: rustls reports it as an
                // alert.
                world.aborted |= world.server.is_handshaking();
                world.server.send_close_notify();
                server_send(&mut world.server, &mut world.to_client);
            }
            12 => {
                if !world.server.is_handshaking() && world.server.refresh_traffic_keys().is_ok() {
                    // Like BoringSSL, rustls takes 32 key updates in a row, then calls it
                    // an attack.
                    world.key_updates += 1;
                    world.aborted |= world.key_updates >= 32;
                    server_send(&mut world.server, &mut world.to_client);
                }
            }
            13 => {
                let (Some(at), Some(xor)) = (input.size(), input.byte()) else {
                    break;
                };
                if !world.to_client.is_empty() && xor != 0 {
                    let len = world.to_client.len();
                    world.to_client[at % len] ^= xor;
                    world.tainted_down = true;
                }
            }
            14 => world.pump(),
            _ => {
                // Queries never change anything.
                let _ = world.tls.handshake_info();
                let _ = world.tls.closed_by_peer_alert();
                let _ = format!("{:?}", world.tls);
                if world.tls.closed_by_peer_alert() {
                    assert_eq!(
                        world.tls.failure().map(|e| e.is_fatal()),
                        Some(true),
                        "closed by an alert, but not failed"
                    );
                }
            }
        }
    }
    // Whatever happened, an honest pump to the end must neither hang nor panic.
    world.pump();
    if world.clean() && world.server_ok && !world.server.is_handshaking() {
        assert!(
            !world.tls.is_handshaking() || world.tls.failure().is_some() || world.tls.peer_closed()
        );
    }
});
