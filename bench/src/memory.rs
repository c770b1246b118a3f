//! Memory held by open connections: heap bytes (counted by the global allocator) freed
//! when the clients are dropped, and on wasm the growth of the linear memory.

use std::sync::Arc;

use rustls::ServerConfig;
use serde::Serialize;
use wasm_tls::{Status, TlsClient};

use crate::bulk::CHUNK;
use crate::counting::{linear_memory_bytes, live_bytes};
use crate::pair::connect;
use crate::pki::client_config;
use crate::pki::Identity;

/// What clients hold, in bytes.
#[derive(Debug, Serialize)]
pub struct MemoryFigure {
    /// Heap bytes of one idle client after its handshake (TLS 1.3, ECDSA, tickets taken).
    pub idle_bytes: usize,
    /// The same after 1 MiB each way went through it.
    pub after_transfer_bytes: usize,
    /// How many connections were held open at once.
    pub connections: usize,
    /// Heap bytes per client with that many open.
    pub many_bytes_per_connection: f64,
    /// Heap bytes of all of them.
    pub many_bytes_total: usize,
    /// Growth of the linear memory while opening them (wasm only).
    pub many_linear_memory_growth: Option<usize>,
    /// The linear memory before opening them (wasm only).
    pub linear_memory_before: Option<usize>,
    /// The linear memory after (wasm only).
    pub linear_memory_after: Option<usize>,
}

const TRANSFER: usize = 1 << 20;

/// Runs 1 MiB each way through `client` (the server side is untimed, unmeasured).
fn transfer(pair: &mut crate::pair::Pair) -> Result<(), String> {
    use std::io::{Read, Write};
    let data = vec![7u8; CHUNK];
    let mut buf = vec![0u8; CHUNK];
    // Server to client.
    let mut received = 0;
    while received < TRANSFER {
        pair.server
            .writer()
            .write_all(&data)
            .map_err(|e| e.to_string())?;
        let mut ct = Vec::new();
        while pair.server.wants_write() {
            pair.server.write_tls(&mut ct).map_err(|e| e.to_string())?;
        }
        let mut pushed = 0;
        while pushed < ct.len() {
            pushed += pair.client.push_ciphertext(&ct[pushed..]);
            while let Ok(Status::Done(n)) = pair.client.read(&mut buf) {
                received += n;
            }
        }
    }
    // Client to server.
    let mut sent = 0;
    while sent < TRANSFER {
        if let Ok(Status::Done(n)) = pair.client.write(&data) {
            sent += n;
        }
        let ct = pair.client.take_ciphertext();
        let mut rd = &ct[..];
        while !rd.is_empty() {
            pair.server.read_tls(&mut rd).map_err(|e| e.to_string())?;
            pair.server
                .process_new_packets()
                .map_err(|e| e.to_string())?;
            while pair.server.reader().read(&mut buf).is_ok_and(|n| n > 0) {}
        }
    }
    Ok(())
}

pub fn measure(
    identity: &Identity,
    server: &Arc<ServerConfig>,
    connections: usize,
) -> Result<MemoryFigure, String> {
    let config = client_config(identity, false, true)?;
    // Warm up: the first connection makes the session cache's entries and such.
    drop(connect(&config, server)?);

    // One connection, idle (boxed, so that its struct is on the heap and counted, as
    // it is behind a JS handle).
    let client = Box::new(connect(&config, server)?.client);
    let with = live_bytes();
    drop(client);
    let idle_bytes = with.saturating_sub(live_bytes());

    // One connection after traffic.
    let mut pair = connect(&config, server)?;
    transfer(&mut pair)?;
    let client = Box::new(pair.client);
    drop(pair.server);
    let with = live_bytes();
    drop(client);
    let after_transfer_bytes = with.saturating_sub(live_bytes());

    // Many: each server is dropped right after its handshake, so that the linear memory
    // grows by the clients' needs. The vector's buffer holds the clients' structs.
    let linear_before = linear_memory_bytes();
    let mut clients: Vec<TlsClient> = Vec::with_capacity(connections);
    for _ in 0..connections {
        clients.push(connect(&config, server)?.client);
    }
    let with = live_bytes();
    let linear_after = linear_memory_bytes();
    drop(clients);
    let total = with.saturating_sub(live_bytes());
    Ok(MemoryFigure {
        idle_bytes,
        after_transfer_bytes,
        connections,
        many_bytes_per_connection: total as f64 / connections as f64,
        many_bytes_total: total,
        many_linear_memory_growth: match (linear_before, linear_after) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        },
        linear_memory_before: linear_before,
        linear_memory_after: linear_after,
    })
}
