//! The data path of a connection: the handshake inside `connect`, then one task per
//! direction, left running after `connect` returns (`spawn_local` continues the
//! component's task after its result).
//!
//! Both directions write ciphertext (the receiving side answers key updates and sends
//! alerts), so the ciphertext stream sits behind an async mutex; the [`TlsPipe`] is
//! shared by the two tasks, borrowed only between awaits.

use std::cell::RefCell;
use std::rc::Rc;

use futures::lock::Mutex;
use wasm_tls::{PipeState, TlsPipe};
use wit_bindgen::{FutureWriter, StreamReader, StreamResult, StreamWriter};

use crate::{settings, Direction, Error, Outcome, TlsError};

/// How much is read from a stream at once, and how much plaintext one `receive` of the
/// core may produce before it is written out: a TLS record's worth and a little more,
/// so that one read usually carries whole records.
const CHUNK: usize = 64 * 1024;

/// The connection both tasks drive.
struct Shared {
    pipe: RefCell<TlsPipe>,
    /// `None` once the sending side closed it (after `close_notify`) or it was dropped.
    ciphertext: Mutex<Option<StreamWriter<u8>>>,
}

impl Shared {
    /// Writes the ciphertext the core has queued. False if the transport went away.
    async fn flush(&self) -> bool {
        let bytes = self.pipe.borrow_mut().take_ciphertext();
        if bytes.is_empty() {
            return true;
        }
        let mut writer = self.ciphertext.lock().await;
        match writer.as_mut() {
            Some(stream) => stream.write_all(bytes).await.is_empty(),
            None => false,
        }
    }

    fn state(&self) -> PipeState {
        self.pipe.borrow().state()
    }

    /// The outcome once the connection failed, else `ok`.
    fn failure_or(&self, ok: Outcome) -> Outcome {
        match self.pipe.borrow().error() {
            Some(err) => Err(TlsError::from_core(err)),
            None => ok,
        }
    }
}

/// Reads the next chunk; `None` at the end of the stream.
async fn read_chunk(input: &mut StreamReader<u8>) -> Option<Vec<u8>> {
    loop {
        let (result, bytes) = input.read(Vec::with_capacity(CHUNK)).await;
        match result {
            StreamResult::Complete(_) if !bytes.is_empty() => return Some(bytes),
            StreamResult::Complete(_) | StreamResult::Cancelled => continue,
            StreamResult::Dropped => return None,
        }
    }
}

/// Runs the handshake over the two directions' ciphertext streams; once it succeeds,
/// starts the tasks that move the data and returns.
pub async fn connect(server_name: &str, send: Direction, receive: Direction) -> Result<(), Error> {
    let pipe = match settings::config(server_name).and_then(|config| TlsPipe::new(&config)) {
        Ok(pipe) => pipe,
        Err(err) => return fail(send, receive, &err),
    };
    let shared = Rc::new(Shared {
        pipe: RefCell::new(pipe),
        ciphertext: Mutex::new(Some(send.output)),
    });
    let Direction {
        input: mut ciphertext_in,
        output: cleartext_out,
        outcome: receive_outcome,
    } = receive;

    // Plaintext that came with the handshake's last flight, delivered first.
    let mut early = Vec::new();
    // Ciphertext the core refused once the handshake was done (plaintext waiting).
    let mut leftover = Vec::new();
    let mut transport_gone = false;
    while shared.state() == PipeState::Handshaking {
        if !shared.flush().await {
            transport_gone = true;
            break;
        }
        match read_chunk(&mut ciphertext_in).await {
            Some(bytes) => {
                let taken = shared.pipe.borrow_mut().receive(&bytes, CHUNK, &mut early);
                leftover = bytes[taken..].to_vec();
            }
            None => shared.pipe.borrow_mut().receive_eof(CHUNK, &mut early),
        }
    }
    // The alert that tells the server why, or the client's last flight.
    let flushed = shared.flush().await;
    let outcome = if transport_gone || !flushed && shared.state() == PipeState::Open {
        // The core's own failure, if any, says more than the transport's end.
        shared.failure_or(Err(TlsError::transport(
            "the ciphertext stream was closed during the handshake; keep the transport open until connect() returns",
        )))
    } else {
        shared.failure_or(Ok(()))
    };
    if let Err(err) = outcome {
        settle(send.outcome, Err(copy(&err)));
        settle(receive_outcome, Err(copy(&err)));
        return Err(err);
    }

    let sending = Rc::clone(&shared);
    wit_bindgen::spawn_local(async move {
        let outcome = send_cleartext(&sending, send.input).await;
        let _ = send.outcome.write(outcome).await;
    });
    wit_bindgen::spawn_local(async move {
        let outcome = receive_ciphertext(&shared, ciphertext_in, cleartext_out, early, leftover);
        let outcome = outcome.await;
        let _ = receive_outcome.write(outcome).await;
    });
    Ok(())
}

/// The failure before the handshake started (a bad setting): both futures carry it.
fn fail(send: Direction, receive: Direction, err: &wasm_tls::Error) -> Result<(), Error> {
    settle(send.outcome, Err(TlsError::from_core(err)));
    settle(receive.outcome, Err(TlsError::from_core(err)));
    Err(TlsError::from_core(err))
}

/// Writes a direction's outcome in the background: the write completes only when the
/// application reads the future, which it may do after `connect` returns.
fn settle(future: FutureWriter<Outcome>, outcome: Outcome) {
    wit_bindgen::spawn_local(async move {
        let _ = future.write(outcome).await;
    });
}

/// A second resource with the same code and message (each future owns its own).
fn copy(err: &Error) -> Error {
    let inner: &TlsError = err.get();
    Error::new(TlsError {
        code: inner.code,
        message: inner.message.clone(),
    })
}

/// The sending direction: cleartext in, encrypted out; at the end of the cleartext
/// stream, `close_notify`, then the ciphertext stream ends.
async fn send_cleartext(shared: &Shared, mut cleartext: StreamReader<u8>) -> Outcome {
    while let Some(bytes) = read_chunk(&mut cleartext).await {
        if shared.state() != PipeState::Open {
            break;
        }
        if let Err(err) = shared.pipe.borrow_mut().send(&bytes) {
            return Err(TlsError::from_core(&err));
        }
        if !shared.flush().await {
            return shared.failure_or(Err(TlsError::transport(
                "the ciphertext stream was closed while data was being sent",
            )));
        }
    }
    drop(cleartext);
    let closed = shared.pipe.borrow_mut().close();
    let flushed = shared.flush().await;
    // The end of the ciphertext stream lets the transport close its sending side.
    shared.ciphertext.lock().await.take();
    if let Err(err) = closed {
        return Err(TlsError::from_core(&err));
    }
    if !flushed {
        return shared.failure_or(Err(TlsError::transport(
            "the ciphertext stream was closed before close_notify was sent",
        )));
    }
    shared.failure_or(Ok(()))
}

/// The receiving direction: ciphertext in, decrypted out, until the server's
/// `close_notify` (success), the end of the transport without it (`truncated`), or a
/// failure. Bytes the core refuses while plaintext waits are offered again after the
/// plaintext has been written out.
async fn receive_ciphertext(
    shared: &Shared,
    mut ciphertext: StreamReader<u8>,
    mut cleartext: StreamWriter<u8>,
    early: Vec<u8>,
    leftover: Vec<u8>,
) -> Outcome {
    if !early.is_empty() && !cleartext.write_all(early).await.is_empty() {
        return Ok(()); // The application stopped reading: nothing more to deliver.
    }
    let mut offered = leftover;
    loop {
        let mut plaintext = Vec::new();
        if offered.is_empty() {
            offered = match read_chunk(&mut ciphertext).await {
                Some(bytes) => bytes,
                None => {
                    shared.pipe.borrow_mut().receive_eof(CHUNK, &mut plaintext);
                    deliver(&mut cleartext, plaintext).await;
                    shared.flush().await;
                    return shared.failure_or(Ok(()));
                }
            };
        }
        while !offered.is_empty() {
            let taken = shared
                .pipe
                .borrow_mut()
                .receive(&offered, CHUNK, &mut plaintext);
            offered.drain(..taken);
            let delivered = deliver(&mut cleartext, std::mem::take(&mut plaintext)).await;
            shared.flush().await;
            if !delivered {
                return Ok(());
            }
            if shared.state() != PipeState::Open {
                return shared.failure_or(Ok(()));
            }
        }
    }
}

/// Writes plaintext to the application; false if it stopped reading.
async fn deliver(cleartext: &mut StreamWriter<u8>, plaintext: Vec<u8>) -> bool {
    plaintext.is_empty() || cleartext.write_all(plaintext).await.is_empty()
}
