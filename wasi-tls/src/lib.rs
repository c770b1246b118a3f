//! A component that exports the standard `wasi:tls@0.3.0-draft` client interface
//! (WASIp3, the version wasmtime 48 implements), built on wasm-tls's core: a program
//! written against the standard gets TLS by composition (`wac plug`) on hosts that do
//! not provide it, with the same verification everywhere.
//!
//! `send` and `receive` only set up the streams; `connect` runs the handshake over
//! them and, once it succeeds, leaves two tasks moving the data (see [`pump`]). The
//! settings the interface leaves to the host come from the environment
//! ([`settings`]). Errors carry wasm-tls's stable code: `to-debug-string` is
//! `<code>: <message>`.

mod pump;
mod settings;

use std::cell::RefCell;

use bindings::exports::wasi::tls::client::{Connector, GuestConnector};
use bindings::exports::wasi::tls::types::{Error, GuestError};
use bindings::{wit_future, wit_stream};
use wit_bindgen::{FutureReader, FutureWriter, StreamReader, StreamWriter};

#[allow(missing_docs, unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        inline: "
            package wasm-tls:wasi-tls-provider;

            world provider {
                export wasi:tls/types@0.3.0-draft;
                export wasi:tls/client@0.3.0-draft;
            }
        ",
        path: "../wit/deps/tls-0.3.0-draft",
    });
}

/// The outcome of one direction, written to the future `send` or `receive` returned.
type Outcome = Result<(), Error>;

/// One direction of a connection, as `send` or `receive` set it up: the stream it
/// reads, the stream it writes, and the future its outcome goes to.
struct Direction {
    input: StreamReader<u8>,
    output: StreamWriter<u8>,
    outcome: FutureWriter<Outcome>,
}

/// A `connector` before `connect`: the directions set up so far.
#[derive(Default)]
struct ConnectorState {
    send: RefCell<Option<Direction>>,
    receive: RefCell<Option<Direction>>,
}

/// The error a direction's future carries if it ends without an outcome (the
/// connector was dropped before `connect`).
fn not_connected() -> Outcome {
    Err(TlsError::misuse(
        "the connector was dropped before connect(); call connect() to start the connection",
    ))
}

/// The error of a second `send` or `receive` on one connector: its future is dropped at
/// once, so it carries this.
fn set_up_twice() -> Outcome {
    Err(TlsError::misuse(
        "send() or receive() was already called on this connector; call each once",
    ))
}

impl ConnectorState {
    /// Sets up one direction: `input` in, a new stream out; refuses a second time.
    fn set_up(
        slot: &RefCell<Option<Direction>>,
        input: StreamReader<u8>,
    ) -> (StreamReader<u8>, FutureReader<Outcome>) {
        let mut slot = slot.borrow_mut();
        let twice = slot.is_some();
        let (output, output_reader) = wit_stream::new::<u8>();
        let (outcome, outcome_reader) =
            wit_future::new::<Outcome>(if twice { set_up_twice } else { not_connected });
        if twice {
            // Dropping the new ends closes the stream; the future's default says why.
            drop((input, output, outcome));
        } else {
            *slot = Some(Direction {
                input,
                output,
                outcome,
            });
        }
        (output_reader, outcome_reader)
    }
}

impl GuestConnector for ConnectorState {
    fn new() -> Self {
        Self::default()
    }

    fn send(&self, cleartext: StreamReader<u8>) -> (StreamReader<u8>, FutureReader<Outcome>) {
        Self::set_up(&self.send, cleartext)
    }

    fn receive(&self, ciphertext: StreamReader<u8>) -> (StreamReader<u8>, FutureReader<Outcome>) {
        Self::set_up(&self.receive, ciphertext)
    }

    async fn connect(this: Connector, server_name: String) -> Result<(), Error> {
        let state: ConnectorState = this.into_inner();
        let (send, receive) = (state.send.into_inner(), state.receive.into_inner());
        let (Some(send), Some(receive)) = (send, receive) else {
            return Err(TlsError::misuse(
                "send() and receive() must both be called before connect()",
            ));
        };
        pump::connect(&server_name, send, receive).await
    }
}

/// The `error` resource: wasm-tls's stable code and its sentence.
pub struct TlsError {
    code: &'static str,
    message: String,
}

impl TlsError {
    /// The resource for one of the core's errors.
    fn from_core(err: &wasm_tls::Error) -> Error {
        Error::new(Self {
            code: err.code(),
            message: err.to_string(),
        })
    }

    /// The resource for a call out of order.
    fn misuse(message: &str) -> Error {
        Error::new(Self {
            code: "invalid-state",
            message: message.to_string(),
        })
    }

    /// The resource for a transport that went away under the connection.
    fn transport(message: &str) -> Error {
        Error::new(Self {
            code: "transport-closed",
            message: message.to_string(),
        })
    }
}

impl GuestError for TlsError {
    fn to_debug_string(&self) -> String {
        format!("{}: {}", self.code, self.message)
    }
}

struct Provider;

impl bindings::exports::wasi::tls::types::Guest for Provider {
    type Error = TlsError;
}

impl bindings::exports::wasi::tls::client::Guest for Provider {
    type Connector = ConnectorState;
}

bindings::export!(Provider with_types_in bindings);
