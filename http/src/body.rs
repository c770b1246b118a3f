//! Bodies across the boundary: a request body that hyper pulls from JavaScript, and a
//! response body that JavaScript pulls from hyper, one chunk per call (so a slow reader
//! slows the connection: HTTP/2 flow control, or TCP under HTTP/1.1).

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use js_sys::{Function, Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, JsFuture};

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

/// The most bytes one chunk gathers from frames that are already there.
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

/// A response's body, read chunk by chunk. Dropping it (`free()`, or its collection by
/// wasm-bindgen's finalizer) before the end cancels the stream: RST_STREAM under HTTP/2;
/// under HTTP/1.1 the connection is not reused. Pulled, not pushed: while no `next()` is
/// pending, nothing in this module refers to JavaScript, so a response dropped unread can
/// be collected; while one is, the reader waiting on it stays reachable.
#[wasm_bindgen]
pub struct ResponseBody {
    incoming: Rc<RefCell<Option<Incoming>>>,
}

impl ResponseBody {
    pub(crate) fn new(incoming: Incoming) -> Self {
        ResponseBody {
            incoming: Rc::new(RefCell::new(Some(incoming))),
        }
    }
}

#[wasm_bindgen]
impl ResponseBody {
    /// A promise of the next chunk (`Uint8Array`), or `null` at the end; rejects with the
    /// HTTP layer's message if the stream broke.
    pub fn next(&self) -> Promise {
        let incoming = Rc::clone(&self.incoming);
        future_to_promise(async move {
            let mut pieces: Vec<Bytes> = Vec::new();
            let mut length = 0;
            let outcome = std::future::poll_fn(|cx| {
                let mut slot = incoming.borrow_mut();
                let Some(body) = slot.as_mut() else {
                    return Poll::Ready(Ok(false));
                };
                // Every frame that is ready now, up to COALESCE bytes, in one chunk: HTTP/2
                // servers send small DATA frames (nginx: 8 KiB), and each chunk costs a
                // promise and a copy on the way out.
                loop {
                    match Pin::new(&mut *body).poll_frame(cx) {
                        Poll::Pending if pieces.is_empty() => return Poll::Pending,
                        Poll::Pending => return Poll::Ready(Ok(true)),
                        Poll::Ready(None) => return Poll::Ready(Ok(!pieces.is_empty())),
                        Poll::Ready(Some(Err(err))) => return Poll::Ready(Err(err)),
                        Poll::Ready(Some(Ok(frame))) => {
                            // Trailers, or an empty frame: nothing for the reader.
                            if let Ok(data) = frame.into_data() {
                                if !data.is_empty() {
                                    length += data.len();
                                    pieces.push(data);
                                    if length >= COALESCE {
                                        return Poll::Ready(Ok(true));
                                    }
                                }
                            }
                        }
                    }
                }
            })
            .await;
            match outcome {
                Ok(true) => Ok(to_js(&pieces, length).into()),
                Ok(false) => {
                    incoming.borrow_mut().take();
                    Ok(JsValue::NULL)
                }
                Err(err) => {
                    incoming.borrow_mut().take();
                    Err(JsValue::from_str(&crate::client::hyper_message(&err)))
                }
            }
        })
    }

    /// Stops reading: the rest of the body is discarded.
    pub fn cancel(&self) {
        self.incoming.borrow_mut().take();
    }
}
