//! A WebSocket client's protocol, tungstenite's (the Upgrade handshake, framing, masking,
//! ping/pong, the closing handshake), over buffers that JavaScript fills and drains: bytes
//! read from the TLS socket go in with `receive`, bytes to send come out of
//! `takeOutput`. Nothing here blocks: an empty input is `WouldBlock` to tungstenite.

use std::collections::VecDeque;
use std::io::{self, Read, Write};

use js_sys::{Array, Uint8Array};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::ClientHandshake;
use tungstenite::handshake::{HandshakeError, MidHandshake};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tungstenite::{Error, Message, WebSocket};
use wasm_bindgen::prelude::*;

/// The socket as tungstenite sees it: what arrived, and what to send.
#[derive(Default)]
struct Buffers {
    input: VecDeque<u8>,
    eof: bool,
    output: Vec<u8>,
}

impl Read for Buffers {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() {
            return if self.eof {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        self.input.read(buf)
    }
}

impl Write for Buffers {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

enum State {
    Handshaking(MidHandshake<ClientHandshake<Buffers>>),
    Open(Box<WebSocket<Buffers>>),
    Done,
}

/// One WebSocket connection's protocol state.
#[wasm_bindgen]
pub struct WebSocketSession {
    state: State,
}

fn error_text(err: &Error) -> String {
    err.to_string()
}

/// An event for JavaScript: `[kind, data, extra]`.
fn event(kind: &str, data: JsValue, extra: JsValue) -> JsValue {
    Array::of3(&JsValue::from_str(kind), &data, &extra).into()
}

#[wasm_bindgen]
impl WebSocketSession {
    /// Starts the Upgrade handshake for `url` (ws: or wss:) asking for `protocols`;
    /// messages up to `max_message` bytes. The request is then in `takeOutput()`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        url: &str,
        protocols: Vec<String>,
        max_message: usize,
    ) -> Result<WebSocketSession, JsValue> {
        let mut request = url
            .into_client_request()
            .map_err(|e| JsValue::from_str(&error_text(&e)))?;
        if !protocols.is_empty() {
            let value = protocols
                .join(", ")
                .parse()
                .map_err(|_| JsValue::from_str("a subprotocol is not a valid header value"))?;
            request
                .headers_mut()
                .insert("sec-websocket-protocol", value);
        }
        let config = WebSocketConfig::default()
            .max_message_size(Some(max_message))
            .max_frame_size(Some(max_message));
        let state = match tungstenite::client::client_with_config(
            request,
            Buffers::default(),
            Some(config),
        ) {
            Ok((ws, _)) => State::Open(Box::new(ws)),
            Err(HandshakeError::Interrupted(mid)) => State::Handshaking(mid),
            Err(HandshakeError::Failure(e)) => return Err(JsValue::from_str(&error_text(&e))),
        };
        Ok(WebSocketSession { state })
    }

    /// Takes bytes read from the socket and returns the events they made, in order:
    /// `['open', protocol]`, `['text', string]`, `['binary', Uint8Array]`,
    /// `['close', code, reason]` (the server's close frame), `['error', message]`.
    /// Pings are answered on their own (see `takeOutput`).
    pub fn receive(&mut self, bytes: &[u8]) -> Array {
        if let Some(buffers) = self.buffers_mut() {
            buffers.input.extend(bytes);
        }
        self.advance()
    }

    /// The socket reached its end; returns the events as `receive` does.
    #[wasm_bindgen(js_name = receiveEof)]
    pub fn receive_eof(&mut self) -> Array {
        if let Some(buffers) = self.buffers_mut() {
            buffers.eof = true;
        }
        self.advance()
    }

    /// The bytes to send to the socket now (the handshake, frames, pongs, close), if any.
    #[wasm_bindgen(js_name = takeOutput)]
    pub fn take_output(&mut self) -> Option<Uint8Array> {
        let buffers = self.buffers_mut()?;
        if buffers.output.is_empty() {
            return None;
        }
        let out = Uint8Array::from(&buffers.output[..]);
        buffers.output.clear();
        Some(out)
    }

    /// Sends a text message.
    #[wasm_bindgen(js_name = sendText)]
    pub fn send_text(&mut self, text: String) -> Result<(), JsValue> {
        self.send(Message::text(text))
    }

    /// Sends a binary message.
    #[wasm_bindgen(js_name = sendBinary)]
    pub fn send_binary(&mut self, data: Vec<u8>) -> Result<(), JsValue> {
        self.send(Message::binary(data))
    }

    /// Sends a ping.
    pub fn ping(&mut self, data: Vec<u8>) -> Result<(), JsValue> {
        self.send(Message::Ping(data.into()))
    }

    /// Starts the closing handshake with `code` (None: no status) and `reason`.
    pub fn close(&mut self, code: Option<u16>, reason: String) -> Result<(), JsValue> {
        let State::Open(ws) = &mut self.state else {
            return Ok(());
        };
        let frame = code.map(|code| CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        });
        match ws.close(frame).and_then(|()| ws.flush()) {
            Ok(()) | Err(Error::ConnectionClosed) | Err(Error::AlreadyClosed) => Ok(()),
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(JsValue::from_str(&error_text(&e))),
        }
    }

    fn send(&mut self, message: Message) -> Result<(), JsValue> {
        let State::Open(ws) = &mut self.state else {
            return Err(JsValue::from_str("the WebSocket is not open"));
        };
        ws.send(message)
            .map_err(|e| JsValue::from_str(&error_text(&e)))
    }

    fn buffers_mut(&mut self) -> Option<&mut Buffers> {
        match &mut self.state {
            State::Handshaking(mid) => Some(mid.get_mut().get_mut()),
            State::Open(ws) => Some(ws.get_mut()),
            State::Done => None,
        }
    }

    fn advance(&mut self) -> Array {
        let events = Array::new();
        if let State::Handshaking(_) = self.state {
            let State::Handshaking(mid) = std::mem::replace(&mut self.state, State::Done) else {
                return events;
            };
            match mid.handshake() {
                Ok((ws, response)) => {
                    let protocol = response
                        .headers()
                        .get("sec-websocket-protocol")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    events.push(&event("open", protocol.into(), JsValue::UNDEFINED));
                    self.state = State::Open(Box::new(ws));
                }
                Err(HandshakeError::Interrupted(mid)) => {
                    self.state = State::Handshaking(mid);
                    return events;
                }
                Err(HandshakeError::Failure(e)) => {
                    events.push(&event("error", error_text(&e).into(), JsValue::UNDEFINED));
                    return events;
                }
            }
        }
        let State::Open(ws) = &mut self.state else {
            return events;
        };
        loop {
            match ws.read() {
                Ok(Message::Text(text)) => {
                    events.push(&event("text", text.as_str().into(), JsValue::UNDEFINED));
                }
                Ok(Message::Binary(data)) => {
                    let bytes = Uint8Array::from(&data[..]);
                    events.push(&event("binary", bytes.into(), JsValue::UNDEFINED));
                }
                Ok(Message::Close(frame)) => {
                    let (code, reason) = match frame {
                        Some(f) => (u16::from(f.code), f.reason.as_str().to_owned()),
                        None => (1005, String::new()),
                    };
                    events.push(&event("close", code.into(), reason.into()));
                }
                // Pongs are queued by tungstenite; pongs and raw frames mean nothing here.
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
                Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(Error::ConnectionClosed | Error::AlreadyClosed) => {
                    self.state = State::Done;
                    events.push(&event("end", JsValue::UNDEFINED, JsValue::UNDEFINED));
                    break;
                }
                Err(e) => {
                    events.push(&event("error", error_text(&e).into(), JsValue::UNDEFINED));
                    // Keep the buffers: a close frame may still be queued to send.
                    break;
                }
            }
        }
        // Replies queued while reading (pong, the close echo) go out with the next output.
        if let State::Open(ws) = &mut self.state {
            let _ = ws.flush();
        }
        events
    }
}
