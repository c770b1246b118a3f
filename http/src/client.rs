//! One HTTP connection, HTTP/1.1 or HTTP/2 (what ALPN chose), driven by hyper on the
//! page's event loop: `spawn_local` runs the connection's task and, for HTTP/2, each
//! stream's.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

use hyper::client::conn::{http1, http2};
use hyper::{Request, Uri};
use js_sys::{Array, Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, spawn_local};

use crate::body::{RequestBody, ResponseBody};
use crate::io::{Inbox, JsIo};

/// hyper's executor for HTTP/2's background tasks: the page's (or Node's) event loop.
#[derive(Clone, Copy)]
struct LocalExecutor;

impl<F> hyper::rt::Executor<F> for LocalExecutor
where
    F: Future + 'static,
{
    fn execute(&self, future: F) {
        spawn_local(async move {
            future.await;
        });
    }
}

enum Sender {
    Http1(http1::SendRequest<RequestBody>),
    Http2(http2::SendRequest<RequestBody>),
}

/// hyper's error with its causes, as one sentence.
pub fn hyper_message(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// An HTTP connection over a JavaScript byte connection (see `io.rs`).
#[wasm_bindgen]
pub struct HttpConnection {
    sender: Rc<RefCell<Sender>>,
}

/// Opens HTTP (`http2`: HTTP/2, else HTTP/1.1) reading from `inbox` and writing through
/// `io` (see `io.rs`). `on_close` is called once the connection has ended: with nothing,
/// or with the HTTP layer's message if it failed.
#[wasm_bindgen(js_name = openHttpConnection)]
pub fn open_http_connection(
    inbox: &Inbox,
    io: JsValue,
    http2: bool,
    on_close: Function,
) -> Promise {
    let io = JsIo::new(inbox, io);
    future_to_promise(async move {
        let io = io?;
        let report = move |result: Result<(), hyper::Error>| {
            let arg = match result {
                Ok(()) => JsValue::UNDEFINED,
                Err(err) => JsValue::from_str(&hyper_message(&err)),
            };
            let _ = on_close.call1(&JsValue::UNDEFINED, &arg);
        };
        let sender = if http2 {
            let (sender, connection) = http2::Builder::new(LocalExecutor)
                // Windows as large as a browser's (Firefox: 12 MiB a stream): the bytes
                // in flight include every buffer between nginx and hyper (the relay's,
                // the transport's, the socket's), and with 4 MiB a 64 MiB download ran
                // at 0.6 of HTTP/1.1's rate, waiting for WINDOW_UPDATEs. What a stalled
                // reader costs: up to 12 MiB of its stream buffered in this module. The
                // connection's window holds four of those, so that three bodies left
                // unread do not stall a fourth request (an abandoned body is reset when
                // its response is collected, which gives its share back).
                .initial_stream_window_size(12 << 20)
                .initial_connection_window_size(48 << 20)
                .max_frame_size(1 << 16)
                // h2 timestamps the streams it keeps after a local reset with
                // Instant::now(), which wasm32-unknown-unknown lacks (a trap): keep none.
                // Frames still arriving for a forgotten stream are answered with a reset.
                .max_concurrent_reset_streams(0)
                .handshake(io)
                .await
                .map_err(|e| JsValue::from_str(&hyper_message(&e)))?;
            spawn_local(async move { report(connection.await) });
            Sender::Http2(sender)
        } else {
            let (sender, connection) = http1::Builder::new()
                .handshake(io)
                .await
                .map_err(|e| JsValue::from_str(&hyper_message(&e)))?;
            spawn_local(async move { report(connection.await) });
            Sender::Http1(sender)
        };
        Ok(HttpConnection {
            sender: Rc::new(RefCell::new(sender)),
        }
        .into())
    })
}

#[wasm_bindgen]
impl HttpConnection {
    /// Whether a request can be sent now (HTTP/1.1: no other request in flight).
    #[wasm_bindgen(js_name = isReady)]
    pub fn is_ready(&self) -> bool {
        match &*self.sender.borrow() {
            Sender::Http1(s) => s.is_ready(),
            Sender::Http2(s) => s.is_ready(),
        }
    }

    /// Whether the connection has ended (no request can be sent on it any more).
    #[wasm_bindgen(js_name = isClosed)]
    pub fn is_closed(&self) -> bool {
        match &*self.sender.borrow() {
            Sender::Http1(s) => s.is_closed(),
            Sender::Http2(s) => s.is_closed(),
        }
    }

    /// Sends a request. `uri`: the absolute URL for HTTP/2, the path and query for
    /// HTTP/1.1 (with a `host` header). `headers`: name, value, name, value …
    /// `body`: a function returning a promise of the next chunk, or null for none;
    /// `length`: its size when known. Resolves to the response (head and body).
    pub fn send(
        &self,
        method: &str,
        uri: &str,
        headers: Array,
        body: Option<Function>,
        length: Option<f64>,
    ) -> Promise {
        let sender = Rc::clone(&self.sender);
        let built = build_request(method, uri, &headers, body, length);
        future_to_promise(async move {
            let request = built?;
            // Wait for room without holding the borrow across the await: other requests
            // on an HTTP/2 connection go on meanwhile.
            std::future::poll_fn(|cx| match &mut *sender.borrow_mut() {
                Sender::Http1(s) => s.poll_ready(cx),
                Sender::Http2(s) => s.poll_ready(cx),
            })
            .await
            .map_err(|e| JsValue::from_str(&hyper_message(&e)))?;
            let response: PendingResponse = match &mut *sender.borrow_mut() {
                Sender::Http1(s) => Box::pin(s.send_request(request)),
                Sender::Http2(s) => Box::pin(s.send_request(request)),
            };
            let response = response
                .await
                .map_err(|e| JsValue::from_str(&hyper_message(&e)))?;
            Ok(HttpResponse::from(response).into())
        })
    }
}

type PendingResponse =
    std::pin::Pin<Box<dyn Future<Output = hyper::Result<hyper::Response<hyper::body::Incoming>>>>>;

fn build_request(
    method: &str,
    uri: &str,
    headers: &Array,
    body: Option<Function>,
    length: Option<f64>,
) -> Result<Request<RequestBody>, JsValue> {
    let invalid = |what: &str, err: &dyn std::fmt::Display| {
        JsValue::from_str(&format!("invalid request {what}: {err}"))
    };
    let uri: Uri = uri.parse().map_err(|e| invalid("URL", &e))?;
    let mut builder = Request::builder().method(method).uri(uri);
    let pairs = headers.to_vec();
    for pair in pairs.chunks(2) {
        if let [name, value] = pair {
            let name = name.as_string().unwrap_or_default();
            let value = value.as_string().unwrap_or_default();
            builder = builder.header(name, value);
        }
    }
    let length = length.map(|n| n as u64);
    builder
        .body(RequestBody::new(body, length))
        .map_err(|e| invalid("head", &e))
}

/// A response's head, and its body to read.
#[wasm_bindgen]
pub struct HttpResponse {
    status: u16,
    version: &'static str,
    headers: Array,
    body: Option<ResponseBody>,
}

impl From<hyper::Response<hyper::body::Incoming>> for HttpResponse {
    fn from(response: hyper::Response<hyper::body::Incoming>) -> Self {
        let (head, incoming) = response.into_parts();
        let headers = Array::new();
        for (name, value) in &head.headers {
            headers.push(&JsValue::from_str(name.as_str()));
            // Header values may hold bytes that are not UTF-8: as Latin-1, like fetch.
            let text: String = value.as_bytes().iter().map(|&b| b as char).collect();
            headers.push(&JsValue::from_str(&text));
        }
        let version = match head.version {
            http::Version::HTTP_2 => "HTTP/2",
            http::Version::HTTP_10 => "HTTP/1.0",
            _ => "HTTP/1.1",
        };
        HttpResponse {
            status: head.status.as_u16(),
            version,
            headers,
            body: Some(ResponseBody::new(incoming)),
        }
    }
}

#[wasm_bindgen]
impl HttpResponse {
    /// The status code.
    #[wasm_bindgen(getter)]
    pub fn status(&self) -> u16 {
        self.status
    }

    /// `HTTP/2`, `HTTP/1.1` or `HTTP/1.0`.
    #[wasm_bindgen(getter)]
    pub fn version(&self) -> String {
        self.version.to_owned()
    }

    /// The headers as name, value, name, value … (names in lower case).
    #[wasm_bindgen(getter)]
    pub fn headers(&self) -> Array {
        self.headers.clone()
    }

    /// The body, once.
    #[wasm_bindgen(js_name = takeBody)]
    pub fn take_body(&mut self) -> Option<ResponseBody> {
        self.body.take()
    }
}
