//! Bodies across the boundary: a request body that hyper pulls from JavaScript, and a
//! response body that this module pushes into JavaScript while its reader wants more (so
//! a slow reader slows the connection: HTTP/2 flow control, or TCP under HTTP/1.1).

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use js_sys::{Function, Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{spawn_local, JsFuture};

/// A failure of the request body's source (its `ReadableStream` errored).
#[derive(Debug)]
pub struct BodySourceError(String);

impl fmt::Display for BodySourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the request body failed: {}", self.0)
    }
}

impl std::error::Error for BodySourceError {}

/// A request body: empty, or pulled from a JavaScript function that returns a promise of
/// the next `Uint8Array` (`null` at the end).
pub struct RequestBody {
    pull: Option<Function>,
    pending: Option<JsFuture>,
    length: Option<u64>,
}

impl RequestBody {
    /// A body pulled from `pull`; `length` when it is known (sent as Content-Length).
    pub fn new(pull: Option<Function>, length: Option<u64>) -> Self {
        RequestBody {
            pull,
            pending: None,
            length,
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BodySourceError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodySourceError>>> {
        let this = self.get_mut();
        loop {
            let Some(pull) = this.pull.as_ref() else {
                return Poll::Ready(None);
            };
            if this.pending.is_none() {
                let next = pull
                    .call0(&JsValue::UNDEFINED)
                    .map_err(|e| BodySourceError(describe(&e)))?;
                this.pending = Some(JsFuture::from(Promise::resolve(&next)));
            }
            let Some(pending) = this.pending.as_mut() else {
                continue;
            };
            let value = std::task::ready!(Pin::new(pending).poll(cx));
            this.pending = None;
            let value = value.map_err(|e| BodySourceError(describe(&e)))?;
            if value.is_null() || value.is_undefined() {
                this.pull = None;
                return Poll::Ready(None);
            }
            let Ok(bytes) = value.dyn_into::<Uint8Array>() else {
                return Poll::Ready(Some(Err(BodySourceError(
                    "a chunk was not a Uint8Array".to_owned(),
                ))));
            };
            if bytes.length() > 0 {
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from(bytes.to_vec())))));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pull.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match (self.pull.is_none(), self.length) {
            (true, _) => SizeHint::with_exact(0),
            (false, Some(n)) => SizeHint::with_exact(n),
            (false, None) => SizeHint::default(),
        }
    }
}

/// A JavaScript value's message, for an error.
pub fn describe(value: &JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"))
}

/// The most bytes one `next()` gathers from frames that are already there.
const COALESCE: usize = 256 * 1024;

/// `pieces` (`length` bytes in all) as one `Uint8Array`. Several are joined in wasm first
/// (one `memory.copy` each): a crossing into JavaScript per piece cost more than the
/// copy.
fn to_js(pieces: &[Bytes], length: usize) -> Uint8Array {
    if let [one] = pieces {
        return Uint8Array::from(&one[..]);
    }
    let mut joined = Vec::with_capacity(length);
    for piece in pieces {
        joined.extend_from_slice(piece);
    }
    Uint8Array::from(&joined[..])
}

/// A response's body, streamed into JavaScript: [`ResponseBody::stream`] hands each
/// chunk to a sink while the sink wants more, and waits for [`ResponseBody::more`]
/// when it does not (so a slow reader slows the connection: HTTP/2 flow control, or TCP
/// under HTTP/1.1). Pushing spares a promise and a closure per chunk that pulling cost.
/// Cancelling before the end resets the stream under HTTP/2; under HTTP/1.1 the
/// connection is not reused.
#[wasm_bindgen]
pub struct ResponseBody {
    state: Rc<RefCell<BodyState>>,
}

struct BodyState {
    incoming: Option<Incoming>,
    /// The sink wants a chunk.
    wanted: bool,
    /// The streaming task, whatever it waits for.
    task: Option<Waker>,
}

impl ResponseBody {
    pub(crate) fn new(incoming: Incoming) -> Self {
        ResponseBody {
            state: Rc::new(RefCell::new(BodyState {
                incoming: Some(incoming),
                wanted: false,
                task: None,
            })),
        }
    }
}

/// What one read of the body gave.
enum Read {
    Chunk(Uint8Array),
    End,
    Failed(String),
    Cancelled,
}

/// The next chunk: every frame that is ready, up to COALESCE bytes. HTTP/2 servers send
/// small DATA frames (nginx: 8 KiB), and each chunk costs a call and a copy on the way
/// out. Waits first until the sink wants one.
async fn read_chunk(state: &Rc<RefCell<BodyState>>) -> Read {
    let mut pieces: Vec<Bytes> = Vec::new();
    let mut length = 0;
    std::future::poll_fn(|cx| {
        let mut s = state.borrow_mut();
        s.task = Some(cx.waker().clone());
        if !s.wanted && s.incoming.is_some() {
            return Poll::Pending;
        }
        let Some(body) = s.incoming.as_mut() else {
            return Poll::Ready(Read::Cancelled);
        };
        loop {
            match Pin::new(&mut *body).poll_frame(cx) {
                Poll::Pending if pieces.is_empty() => return Poll::Pending,
                Poll::Pending => return Poll::Ready(Read::Chunk(to_js(&pieces, length))),
                Poll::Ready(None) if pieces.is_empty() => return Poll::Ready(Read::End),
                Poll::Ready(None) => return Poll::Ready(Read::Chunk(to_js(&pieces, length))),
                Poll::Ready(Some(Err(err))) => {
                    return Poll::Ready(Read::Failed(crate::client::hyper_message(&err)))
                }
                Poll::Ready(Some(Ok(frame))) => {
                    // Trailers, or an empty frame: nothing for the reader.
                    if let Ok(data) = frame.into_data() {
                        if !data.is_empty() {
                            length += data.len();
                            pieces.push(data);
                            if length >= COALESCE {
                                return Poll::Ready(Read::Chunk(to_js(&pieces, length)));
                            }
                        }
                    }
                }
            }
        }
    })
    .await
}

#[wasm_bindgen]
impl ResponseBody {
    /// Streams the body into `sink`: `sink.chunk(bytes)` per chunk, which returns
    /// whether it wants another now (else reading waits for `more()`); then
    /// `sink.end()`, or `sink.fail(message)` with the HTTP layer's message if the stream
    /// broke. Nothing more after `cancel()`.
    pub fn stream(&self, sink: JsValue) -> Result<(), JsValue> {
        let method = |name: &str| {
            js_sys::Reflect::get(&sink, &JsValue::from_str(name))?
                .dyn_into::<Function>()
                .map_err(|_| JsValue::from_str(&format!("the body's sink has no {name}()")))
        };
        let (chunk, end, fail) = (method("chunk")?, method("end")?, method("fail")?);
        let state = Rc::clone(&self.state);
        spawn_local(async move {
            loop {
                let read = read_chunk(&state).await;
                // No borrow is held while the sink runs: it may call more() or cancel().
                match read {
                    Read::Chunk(bytes) => {
                        let wanted = chunk.call1(&sink, &bytes).is_ok_and(|v| v.is_truthy());
                        state.borrow_mut().wanted = wanted;
                    }
                    Read::End => {
                        state.borrow_mut().incoming.take();
                        let _ = end.call0(&sink);
                        return;
                    }
                    Read::Failed(message) => {
                        state.borrow_mut().incoming.take();
                        let _ = fail.call1(&sink, &JsValue::from_str(&message));
                        return;
                    }
                    Read::Cancelled => return,
                }
            }
        });
        Ok(())
    }

    /// The sink wants another chunk (its queue has room again).
    pub fn more(&self) {
        let mut s = self.state.borrow_mut();
        s.wanted = true;
        let task = s.task.take();
        drop(s);
        if let Some(task) = task {
            task.wake();
        }
    }

    /// Stops reading: the rest of the body is discarded.
    pub fn cancel(&self) {
        let mut s = self.state.borrow_mut();
        s.incoming.take();
        let task = s.task.take();
        drop(s);
        if let Some(task) = task {
            task.wake();
        }
    }
}
