//! wasm-tls-relay: carries a browser's TLS bytes from a WebSocket to a TCP
//! target. TLS is end-to-end, so the relay only ever sees ciphertext; its job
//! is to not become an open proxy.
//!
//! The binary only parses its arguments and calls [`run`]; the modules are
//! public so that tests (and embedders) use the same configuration, policy
//! and Wisp wire format as the relay itself.

#![forbid(unsafe_code)]

pub mod config;
mod end;
pub mod log;
pub mod policy;
pub mod relay;
pub mod wisp;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub use crate::config::Config;
use crate::relay::{handle, Admission};

/// How many over-the-limit clients may be told so at once; past this, extra
/// connections are dropped without a WebSocket handshake.
const MAX_REFUSALS: usize = 64;

/// Binds `cfg.listen`, says so on stderr (`wasm-tls-relay listening on
/// ws://ADDR`, which scripts wait for), and serves until the process ends.
/// Returns only if the address cannot be bound.
pub async fn run(cfg: Config) -> Result<(), String> {
    let listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    eprintln!("wasm-tls-relay listening on ws://{local}");
    serve(listener, cfg).await
}

/// Accepts connections on `listener` and relays each in its own task, within
/// `cfg.max_connections`; never returns.
pub async fn serve(listener: TcpListener, cfg: Config) -> ! {
    let connections = Arc::new(Semaphore::new(cfg.max_connections));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    let cfg = Arc::new(cfg);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Usually out of file descriptors: back off instead of spinning.
                eprintln!("wasm-tls-relay: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let admission = match connections.clone().try_acquire_owned() {
            Ok(permit) => Admission::Admitted(permit),
            Err(_) => match refusals.clone().try_acquire_owned() {
                Ok(permit) => Admission::Full(permit),
                Err(_) => continue,
            },
        };
        tokio::spawn(handle(stream, peer, cfg.clone(), admission));
    }
}
