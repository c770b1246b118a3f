//! The test kit's in-memory client and server pair, with the clients' turns of a
//! handshake timed by a [`Stopwatch`].

pub use wasm_tls_test_kit::pair::{connect, Pair};

use crate::clock::Stopwatch;

/// Runs the handshakes of all pairs in lock step; `client_time` gets the clients' turns,
/// timed as one batch each.
pub fn handshake_all(pairs: &mut [Pair], client_time: &mut Stopwatch) -> Result<(), String> {
    wasm_tls_test_kit::pair::handshake_all(pairs, |turns| client_time.time(turns))
}
