//! wasm-tls-relay: carries a browser's TLS bytes from a WebSocket to a TCP
//! target. TLS is end-to-end, so the relay only ever sees ciphertext; its job
//! is to not become an open proxy.

mod config;
mod log;
mod policy;
mod relay;
mod wisp;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::config::{parse_args, Command, Config, USAGE};
use crate::relay::{handle, Admission};

/// How many over-the-limit clients may be told so at once; past this, extra
/// connections are dropped without a WebSocket handshake.
const MAX_REFUSALS: usize = 64;

fn main() -> ExitCode {
    let cfg = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Run(cfg)) => *cfg,
        Ok(Command::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("wasm-tls-relay {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("wasm-tls-relay: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wasm-tls-relay: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wasm-tls-relay: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cfg: Config) -> Result<(), String> {
    let listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    eprintln!("wasm-tls-relay listening on ws://{local}");

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
