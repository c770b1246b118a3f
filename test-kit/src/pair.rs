//! A client and a server connected in memory. The client is the real API
//! ([`wasm_tls::TlsClient`]); the server is a rustls `ServerConnection`.
//!
//! It pumps the core itself rather than through `wasm_tls::Stream`: the pairs run in
//! lock step in one thread, where a blocking stream would wait for a peer that only
//! moves on its next turn, and a benchmark can time the clients' calls alone. It keeps
//! the pump's rules: refused bytes stay in flight and are offered first.

use rustls::ServerConnection;
use wasm_tls::{Status, TlsClient};

/// A client and its server, with the bytes in flight between them.
pub struct Pair {
    /// The client under test.
    pub client: TlsClient,
    /// Its server.
    pub server: ServerConnection,
    c2s: Vec<u8>,
    s2c: Vec<u8>,
    client_done: bool,
}

impl Pair {
    /// A pair whose handshake has not started.
    pub fn new(client: TlsClient, server: ServerConnection) -> Self {
        Self {
            client,
            server,
            c2s: Vec::new(),
            s2c: Vec::new(),
            client_done: false,
        }
    }

    /// The client's turn: it takes what the server sent and drives the handshake; what it
    /// has to send is queued for the server. Every call here is a `TlsClient` call.
    pub fn client_turn(&mut self) -> Result<(), String> {
        if !self.s2c.is_empty() {
            let n = self.client.push_ciphertext(&self.s2c);
            self.s2c.drain(..n);
        }
        loop {
            match self.client.connect() {
                Ok(Status::Done(())) => {
                    self.client_done = true;
                    return Ok(());
                }
                Ok(Status::WantWrite) => {
                    let out = self.client.take_ciphertext();
                    if self.c2s.is_empty() {
                        self.c2s = out;
                    } else {
                        self.c2s.extend_from_slice(&out);
                    }
                }
                Ok(Status::WantRead) => return Ok(()),
                Ok(Status::Closed) => return Err("the server closed the connection".into()),
                Err(e) => return Err(format!("client: {e}")),
            }
        }
    }

    /// The server's turn: it processes what the client sent and queues its answer.
    pub fn server_turn(&mut self) -> Result<(), String> {
        let mut incoming = &self.c2s[..];
        while !incoming.is_empty() {
            self.server
                .read_tls(&mut incoming)
                .map_err(|e| format!("server read_tls: {e}"))?;
            self.server
                .process_new_packets()
                .map_err(|e| format!("server: {e}"))?;
        }
        self.c2s.clear();
        while self.server.wants_write() {
            self.server
                .write_tls(&mut self.s2c)
                .map_err(|e| format!("server write_tls: {e}"))?;
        }
        Ok(())
    }

    /// Whether the handshake is over on both sides and nothing is in flight (TLS 1.3
    /// session tickets included: the client has taken them in).
    pub fn settled(&self) -> bool {
        self.client_done
            && !self.server.is_handshaking()
            && self.c2s.is_empty()
            && self.s2c.is_empty()
            && !self.server.wants_write()
    }
}

/// Runs the handshakes of all pairs in lock step: every client takes its turn, then
/// every server. `clients` runs the clients' turns it is given, so that a benchmark
/// can time them as one batch (a coarse clock still measures well).
pub fn handshake_all(
    pairs: &mut [Pair],
    mut clients: impl FnMut(&mut dyn FnMut() -> Result<(), String>) -> Result<(), String>,
) -> Result<(), String> {
    for _ in 0..32 {
        clients(&mut || pairs.iter_mut().try_for_each(Pair::client_turn))?;
        if pairs.iter().all(Pair::settled) {
            return Ok(());
        }
        pairs.iter_mut().try_for_each(Pair::server_turn)?;
    }
    Err("the handshakes did not complete in 32 turns".into())
}

/// One connected pair.
pub fn connect(
    config: &wasm_tls::Config,
    server: &std::sync::Arc<rustls::ServerConfig>,
) -> Result<Pair, String> {
    let client = TlsClient::new(config).map_err(|e| format!("client: {e}"))?;
    let server = ServerConnection::new(server.clone()).map_err(|e| format!("server: {e}"))?;
    let mut pair = [Pair::new(client, server)];
    handshake_all(&mut pair, |turns| turns())?;
    let [pair] = pair;
    Ok(pair)
}
