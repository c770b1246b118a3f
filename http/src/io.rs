//! hyper's `rt::Read` and `rt::Write` over a connection that JavaScript moves: a TLS
//! socket of the package (its plaintext).
//!
//! - Reading: JavaScript pushes what the socket gives into an [`Inbox`] (`push`, then
//!   `end` or `fail`), which wakes hyper. A push answers whether the inbox has room for
//!   more; when it has not, JavaScript waits for the inbox's `onRoom` callback before
//!   reading the socket again, so a reader that does not read holds the socket back.
//!   Pushing spares a promise and two closures per chunk that pulling cost.
//! - Writing, through an object with two methods: `write(bytes)` takes the bytes at once
//!   and returns a promise that resolves when the socket has room for more (its
//!   backpressure); `close()` ends the writing side (close_notify).
//!
//! A failure carries the message JavaScript gives; JavaScript keeps the socket's own
//! error (with its stable code) to report instead of hyper's.

use std::cell::{RefCell, RefMut};
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use hyper::rt::{Read, ReadBufCursor, Write};
use js_sys::{Function, Promise, Reflect, Uint8Array};
use std::future::Future;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// What the inbox holds past which a push answers "no room".
const ROOM: usize = 256 * 1024;

/// Bytes pushed and not yet read: `buf[at..len]`; how the stream ended, once it has.
#[derive(Default)]
struct InboxState {
    buf: Vec<u8>,
    at: usize,
    len: usize,
    /// None while open; Some(None) at the end; Some(Some(message)) after a failure.
    end: Option<Option<String>>,
    /// hyper's task, waiting for bytes.
    reader: Option<Waker>,
    /// JavaScript's callback for room, and whether a push found none.
    on_room: Option<Function>,
    full: bool,
}

/// The reading side of one connection, fed by JavaScript (see the module's text).
#[wasm_bindgen]
#[derive(Default)]
pub struct Inbox(Rc<RefCell<InboxState>>);

#[wasm_bindgen]
impl Inbox {
    #[wasm_bindgen(constructor)]
    pub fn new() -> Inbox {
        Inbox::default()
    }

    /// Takes the socket's next bytes; false when the inbox is full, and `onRoom`'s
    /// callback is called once hyper has read it below that.
    pub fn push(&self, bytes: &Uint8Array) -> bool {
        let mut s = self.0.borrow_mut();
        let n = bytes.length() as usize;
        if s.at == s.len {
            (s.at, s.len) = (0, 0);
        } else if s.at > 0 && s.len + n > s.buf.len() {
            // Unread bytes move to the front only when the end has no room for these:
            // HTTP/2 reads 8 KiB at a time, and moving them on every push cost more than
            // hyper's own work.
            let (at, len) = (s.at, s.len);
            s.buf.copy_within(at..len, 0);
            (s.at, s.len) = (0, len - at);
        }
        // The buffer is only grown, never zero-filled again: that cost as much as the
        // copy itself.
        let end = s.len + n;
        if s.buf.len() < end {
            s.buf.resize(end, 0);
        }
        let start = s.len;
        bytes.copy_to(&mut s.buf[start..end]);
        s.len = end;
        s.full = end - s.at >= ROOM;
        let room = !s.full;
        wake_reader(s);
        room
    }

    /// The socket's end: hyper reads what is left, then EOF.
    pub fn end(&self) {
        self.finish(None);
    }

    /// The socket failed: hyper reads what is left, then this error.
    pub fn fail(&self, message: String) {
        self.finish(Some(message));
    }

    /// `callback()` is called whenever a full inbox has room again.
    #[wasm_bindgen(js_name = onRoom)]
    pub fn on_room(&self, callback: Function) {
        self.0.borrow_mut().on_room = Some(callback);
    }
}

impl Inbox {
    fn finish(&self, failure: Option<String>) {
        let mut s = self.0.borrow_mut();
        if s.end.is_none() {
            s.end = Some(failure);
        }
        wake_reader(s);
    }
}

/// Wakes hyper's task if it waits for bytes, after the borrow ends (it may run at once).
fn wake_reader(mut s: RefMut<'_, InboxState>) {
    let reader = s.reader.take();
    drop(s);
    if let Some(reader) = reader {
        reader.wake();
    }
}

/// The JavaScript side of one connection.
pub struct JsIo {
    inbox: Rc<RefCell<InboxState>>,
    target: JsValue,
    write_fn: Function,
    close_fn: Function,
    /// The last write's promise: the socket's room for the next one.
    writing: Option<JsFuture>,
    closing: Option<JsFuture>,
    /// The writing side has ended.
    shut: bool,
}

fn method(target: &JsValue, name: &str) -> Result<Function, JsValue> {
    Reflect::get(target, &JsValue::from_str(name))?
        .dyn_into::<Function>()
        .map_err(|_| JsValue::from_str(&format!("the connection object has no {name}()")))
}

fn js_error(value: JsValue) -> io::Error {
    let text = value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| "the connection failed".to_owned());
    io::Error::other(text)
}

fn call(f: &Function, target: &JsValue, arg: Option<&JsValue>) -> io::Result<JsFuture> {
    let value = match arg {
        Some(arg) => f.call1(target, arg),
        None => f.call0(target),
    }
    .map_err(js_error)?;
    Ok(JsFuture::from(Promise::resolve(&value)))
}

impl JsIo {
    /// Reads from `inbox`, writes through `target`; fails if it lacks `write` or `close`.
    pub fn new(inbox: &Inbox, target: JsValue) -> Result<Self, JsValue> {
        Ok(JsIo {
            inbox: Rc::clone(&inbox.0),
            write_fn: method(&target, "write")?,
            close_fn: method(&target, "close")?,
            target,
            writing: None,
            closing: None,
            shut: false,
        })
    }

    fn poll_written(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(writing) = self.writing.as_mut() {
            let result = std::task::ready!(Pin::new(writing).poll(cx));
            self.writing = None;
            result.map_err(js_error)?;
        }
        Poll::Ready(Ok(()))
    }
}

impl Read for JsIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let mut s = self.inbox.borrow_mut();
        if s.at < s.len {
            let n = buf.remaining().min(s.len - s.at);
            buf.put_slice(&s.buf[s.at..s.at + n]);
            s.at += n;
            // Room again: JavaScript goes on reading the socket.
            let on_room = if s.full && s.len - s.at < ROOM {
                s.full = false;
                s.on_room.clone()
            } else {
                None
            };
            drop(s);
            if let Some(on_room) = on_room {
                let _ = on_room.call0(&JsValue::UNDEFINED);
            }
            return Poll::Ready(Ok(()));
        }
        match &s.end {
            Some(None) => Poll::Ready(Ok(())),
            Some(Some(message)) => Poll::Ready(Err(io::Error::other(message.clone()))),
            None => {
                s.reader = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Write for JsIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_written(cx))?;
        // A copy in JavaScript's heap: the socket holds it until it is encrypted and sent.
        let chunk = Uint8Array::from(buf);
        this.writing = Some(call(&this.write_fn, &this.target, Some(&chunk))?);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_written(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.shut {
            return Poll::Ready(Ok(()));
        }
        std::task::ready!(this.poll_written(cx))?;
        if this.closing.is_none() {
            this.closing = Some(call(&this.close_fn, &this.target, None)?);
        }
        if let Some(closing) = this.closing.as_mut() {
            std::task::ready!(Pin::new(closing).poll(cx)).map_err(js_error)?;
        }
        // A finished JsFuture is not polled again.
        this.closing = None;
        this.shut = true;
        Poll::Ready(Ok(()))
    }
}
