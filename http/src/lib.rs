//! HTTP for wasm-tls's `wasm-tls/http` entry point, in its own WebAssembly module so that
//! pages using only sockets load none of it.
//!
//! It speaks plaintext: JavaScript opens each connection with the package's TLS socket
//! (so the relay sees only ciphertext, and TLS errors keep their codes) and hands its
//! bytes in and out. hyper 1.x runs HTTP/1.1 and HTTP/2 over it (`client.rs`, `io.rs`,
//! `body.rs`), tungstenite the WebSocket protocol (`websocket.rs`).

#![cfg(all(target_arch = "wasm32", target_os = "unknown"))]
#![forbid(unsafe_code)]

mod body;
mod client;
mod io;
mod websocket;

pub use body::ResponseBody;
pub use client::{open_http_connection, HttpConnection, HttpResponse};
pub use websocket::WebSocketSession;
