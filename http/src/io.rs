//! hyper's `rt::Read` and `rt::Write` over a connection that JavaScript moves: a TLS
//! socket of the package (its plaintext), through an object with three methods:
//!
//! - `read()`: a promise of the next bytes (`Uint8Array`), or `null` at the end;
//! - `write(bytes)`: takes the bytes at once and returns a promise that resolves when the
//!   socket has room for more (its backpressure);
//! - `close()`: ends the writing side (close_notify).
//!
//! A rejected promise is an I/O error; JavaScript keeps the socket's own error (with its
//! stable code) to report instead of hyper's.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};
use js_sys::{Function, Promise, Reflect, Uint8Array};
use std::future::Future;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// The JavaScript side of one connection.
pub struct JsIo {
    target: JsValue,
    read_fn: Function,
    write_fn: Function,
    close_fn: Function,
    reading: Option<JsFuture>,
    /// Bytes read but not yet taken by hyper: `unread[unread_at..unread_len]`.
    unread: Vec<u8>,
    unread_at: usize,
    unread_len: usize,
    eof: bool,
    /// The last write's promise: the socket's room for the next one.
    writing: Option<JsFuture>,
    closing: Option<JsFuture>,
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
    /// Wraps the object; fails if it lacks `read`, `write` or `close`.
    pub fn new(target: JsValue) -> Result<Self, JsValue> {
        Ok(JsIo {
            read_fn: method(&target, "read")?,
            write_fn: method(&target, "write")?,
            close_fn: method(&target, "close")?,
            target,
            reading: None,
            unread: Vec::new(),
            unread_at: 0,
            unread_len: 0,
            eof: false,
            writing: None,
            closing: None,
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
        let this = self.get_mut();
        loop {
            if this.unread_at < this.unread_len {
                let n = buf.remaining().min(this.unread_len - this.unread_at);
                buf.put_slice(&this.unread[this.unread_at..this.unread_at + n]);
                this.unread_at += n;
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            if this.reading.is_none() {
                this.reading = Some(call(&this.read_fn, &this.target, None)?);
            }
            let Some(reading) = this.reading.as_mut() else {
                continue;
            };
            let result = std::task::ready!(Pin::new(reading).poll(cx));
            this.reading = None;
            let value = result.map_err(js_error)?;
            if value.is_null() || value.is_undefined() {
                this.eof = true;
                continue;
            }
            let bytes = value
                .dyn_into::<Uint8Array>()
                .map_err(|_| io::Error::other("read() gave something other than bytes"))?;
            // The buffer is reused and only grown: zero-filling it per chunk cost as much
            // as the copy itself.
            let n = bytes.length() as usize;
            if this.unread.len() < n {
                this.unread.resize(n, 0);
            }
            bytes.copy_to(&mut this.unread[..n]);
            this.unread_len = n;
            this.unread_at = 0;
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
        std::task::ready!(this.poll_written(cx))?;
        if this.closing.is_none() {
            this.closing = Some(call(&this.close_fn, &this.target, None)?);
        }
        if let Some(closing) = this.closing.as_mut() {
            std::task::ready!(Pin::new(closing).poll(cx)).map_err(js_error)?;
        }
        Poll::Ready(Ok(()))
    }
}
