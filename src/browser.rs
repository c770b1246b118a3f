//! JavaScript bindings (wasm-bindgen) for browsers and Node.js.
//!
//! This module only translates: JS option objects into [`ConfigOptions`], [`Status`] and
//! [`Error`] into OpenSSL's 1 / 0 / -1 plus `getError()`, Rust errors into JS `Error`s
//! with a `code`. The TLS logic is the core's. The hand-written wrapper in `pkg/` builds
//! the socket API on top of these classes.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use js_sys::{Array, Function, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;

use crate::{
    ClientAuthPem, Config, ConfigOptions, Error, HandshakeInfo, PipeState, Shutdown, SslError,
    Status, TlsClient, TlsPipe, TlsVersion,
};

static PANIC_MESSAGE: Mutex<Option<String>> = Mutex::new(None);

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(message: &str);
}

/// Installs a panic hook that keeps the message, so that the JS wrapper can turn the
/// trap that follows into an `Error` that says what happened.
#[wasm_bindgen(start)]
fn start() {
    std::panic::set_hook(Box::new(|info| {
        let message = info.to_string();
        console_error(&format!("wasm-tls panicked: {message}"));
        if let Ok(mut slot) = PANIC_MESSAGE.lock() {
            *slot = Some(message);
        }
    }));
}

/// The message of the last Rust panic, if one happened (the instance is unusable after).
#[wasm_bindgen(js_name = takePanicMessage)]
pub fn take_panic_message() -> Option<String> {
    PANIC_MESSAGE.lock().ok().and_then(|mut slot| slot.take())
}

/// A JS `Error` with the error's stable `code` and its OpenSSL class as `sslError`.
fn js_error(err: &Error) -> JsValue {
    let js = js_sys::Error::new(&err.to_string());
    js.set_name("TlsError");
    let _ = Reflect::set(&js, &"code".into(), &err.code().into());
    let _ = Reflect::set(&js, &"sslError".into(), &err.ssl_error().name().into());
    js.into()
}

fn get(obj: &JsValue, key: &str) -> Option<JsValue> {
    Reflect::get(obj, &key.into())
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_null())
}

fn get_string(obj: &JsValue, key: &str) -> Result<Option<String>, JsValue> {
    match get(obj, key) {
        None => Ok(None),
        Some(v) => v.as_string().map(Some).ok_or_else(|| {
            js_error(&Error::InvalidConfig {
                reason: format!("option '{key}' must be a string"),
            })
        }),
    }
}

/// A list option: an array of strings, or one string.
fn get_strings(obj: &JsValue, key: &str) -> Vec<String> {
    match get(obj, key) {
        Some(v) if Array::is_array(&v) => Array::from(&v)
            .iter()
            .filter_map(|v| v.as_string())
            .collect(),
        Some(v) => v.as_string().into_iter().collect(),
        None => Vec::new(),
    }
}

fn config_error(reason: &str) -> JsValue {
    js_error(&Error::invalid_config(reason))
}

/// The connection options of a JS object, in the core's terms.
fn config_options(options: &JsValue) -> Result<ConfigOptions, JsValue> {
    let server_name =
        get_string(options, "serverName")?.ok_or_else(|| config_error("serverName is required"))?;
    let mut out = ConfigOptions::new(server_name);
    out.roots_pem = get_strings(options, "ca");
    if let Some(bundle) = get(options, "trustAnchors") {
        let bundle = bundle
            .dyn_into::<Uint8Array>()
            .map_err(|_| config_error("trustAnchors must be a Uint8Array (roots.bin)"))?;
        out.trust_anchor_bundles.push(bundle.to_vec());
    }
    let flag = |key: &str| get(options, key).and_then(|v| v.as_bool());
    out.bundled_roots = flag("bundledRoots").unwrap_or(true);
    out.resumption = flag("resumption").unwrap_or(true);
    out.post_quantum = flag("postQuantum").unwrap_or(true);
    out.alpn = get_strings(options, "alpn");
    let version = |key: &str| -> Result<Option<TlsVersion>, JsValue> {
        get_string(options, key)?
            .map(|v| TlsVersion::parse(&v).map_err(|e| js_error(&e)))
            .transpose()
    };
    out.min_version = version("minVersion")?;
    out.max_version = version("maxVersion")?;
    out.client_auth = match (get_string(options, "cert")?, get_string(options, "key")?) {
        (Some(cert_chain_pem), Some(key_pem)) => Some(ClientAuthPem {
            cert_chain_pem,
            key_pem,
        }),
        (None, None) => None,
        _ => return Err(config_error("cert and key go together")),
    };
    Ok(out)
}

/// Makes Mozilla's roots (the package's `roots.bin`) what `bundledRoots` means: the
/// browser build leaves them out of the code. Throws a `TlsError` if the bundle is bad.
#[wasm_bindgen(js_name = registerBundledRoots)]
pub fn register_bundled_roots(bundle: &[u8]) -> Result<(), JsValue> {
    crate::register_bundled_roots(bundle).map_err(|err| js_error(&err))
}

/// A client configuration, shared by the connections made from it (they resume each
/// other's sessions).
#[wasm_bindgen(js_name = TlsConfig)]
pub struct JsConfig {
    config: Config,
}

#[wasm_bindgen(js_class = TlsConfig)]
impl JsConfig {
    /// `options`: `{ serverName, ca?, trustAnchors?, bundledRoots?, alpn?, minVersion?,
    /// maxVersion?, cert?, key?, resumption?, postQuantum?, keyLog? }`. Equal options
    /// (without `keyLog`) give the same shared configuration. Throws a `TlsError` with
    /// code `invalid-config` on a bad option.
    #[wasm_bindgen(constructor)]
    pub fn new(options: JsValue) -> Result<JsConfig, JsValue> {
        let parsed = config_options(&options)?;
        let key_log = get(&options, "keyLog").and_then(|v| v.dyn_into::<Function>().ok());
        let config = match key_log {
            // Its lines belong to this caller: a configuration of its own.
            Some(callback) => parsed
                .builder()
                .key_log(Arc::new(JsKeyLog::new(callback)))
                .build(),
            None => parsed.shared(),
        };
        config
            .map(|config| JsConfig { config })
            .map_err(|err| js_error(&err))
    }

    /// The name the server's certificate is verified against.
    #[wasm_bindgen(getter, js_name = serverName)]
    pub fn server_name(&self) -> String {
        self.config.server_name()
    }
}

thread_local! {
    /// Key-log callbacks by id. rustls wants a `Send + Sync` sink and a JS function is
    /// neither; the sink holds only the id, and the one thread looks the function up.
    static KEY_LOG_CALLBACKS: RefCell<HashMap<u32, Function>> = RefCell::new(HashMap::new());
    static NEXT_KEY_LOG_ID: Cell<u32> = const { Cell::new(0) };
}

struct JsKeyLog(u32);

impl JsKeyLog {
    fn new(callback: Function) -> Self {
        let id = NEXT_KEY_LOG_ID.with(|next| {
            let id = next.get();
            next.set(id.wrapping_add(1));
            id
        });
        KEY_LOG_CALLBACKS.with(|map| map.borrow_mut().insert(id, callback));
        Self(id)
    }
}

impl Drop for JsKeyLog {
    fn drop(&mut self) {
        let _ = KEY_LOG_CALLBACKS.try_with(|map| map.borrow_mut().remove(&self.0));
    }
}

impl crate::KeyLogSink for JsKeyLog {
    fn log_line(&self, line: &str) {
        let callback = KEY_LOG_CALLBACKS.with(|map| map.borrow().get(&self.0).cloned());
        if let Some(callback) = callback {
            let _ = callback.call1(&JsValue::NULL, &line.into());
        }
    }
}

/// A TLS connection with OpenSSL's SSL_connect contract. The host moves ciphertext with
/// `pushCiphertext` / `pullCiphertext` and calls `connect`, `read`, `write`, `shutdown`
/// until they succeed; `getError()` says what a -1 or 0 meant.
#[wasm_bindgen(js_name = TlsConnection)]
pub struct JsConnection {
    tls: TlsClient,
    last_error: Option<Error>,
}

impl JsConnection {
    /// Turns a core result into OpenSSL's return value, remembering the error.
    fn ret<T>(&mut self, result: Result<Status<T>, Error>, done: impl FnOnce(T) -> i32) -> i32 {
        match result {
            Ok(Status::Done(value)) => {
                self.last_error = None;
                done(value)
            }
            Ok(Status::Closed) => {
                self.last_error = None;
                0
            }
            Ok(_) => {
                self.last_error = None;
                -1
            }
            Err(err) => {
                let ret = if self.tls.closed_by_peer_alert() {
                    0
                } else {
                    -1
                };
                self.last_error = Some(err);
                ret
            }
        }
    }
}

#[wasm_bindgen(js_class = TlsConnection)]
impl JsConnection {
    /// A new connection from a `TlsConfig`.
    #[wasm_bindgen(constructor)]
    pub fn new(config: &JsConfig) -> Result<JsConnection, JsValue> {
        TlsClient::new(&config.config)
            .map(|tls| JsConnection {
                tls,
                last_error: None,
            })
            .map_err(|err| js_error(&err))
    }

    /// Drives the handshake: 1 done, 0 closed by the peer, -1 see `getError()`.
    pub fn connect(&mut self) -> i32 {
        let result = self.tls.connect();
        self.ret(result, |()| 1)
    }

    /// Reads plaintext into `buf`: the byte count (> 0), 0 closed, -1 see `getError()`.
    pub fn read(&mut self, buf: &mut [u8]) -> i32 {
        if buf.is_empty() {
            self.last_error = Some(Error::InvalidInput {
                reason: "read into an empty buffer".to_owned(),
            });
            return -1;
        }
        let result = self.tls.read(buf);
        self.ret(result, |n| i32::try_from(n).unwrap_or(i32::MAX))
    }

    /// Encrypts `data`: the byte count taken (> 0), -1 see `getError()`.
    pub fn write(&mut self, data: &[u8]) -> i32 {
        if data.is_empty() {
            self.last_error = Some(Error::InvalidInput {
                reason: "write of an empty buffer".to_owned(),
            });
            return -1;
        }
        let result = self.tls.write(data);
        self.ret(result, |n| i32::try_from(n).unwrap_or(i32::MAX))
    }

    /// Sends close_notify: 1 both sides closed, 0 ours sent, -1 see `getError()`.
    pub fn shutdown(&mut self) -> i32 {
        let result = self.tls.shutdown();
        self.ret(result, |state| match state {
            Shutdown::Complete => 1,
            Shutdown::Sent => 0,
        })
    }

    /// `WANT_READ`, `WANT_WRITE`, `ZERO_RETURN`, `SYSCALL`, `SSL` or `NONE`, for the
    /// last call.
    #[wasm_bindgen(js_name = getError)]
    pub fn get_error(&self) -> String {
        match &self.last_error {
            Some(Error::InvalidInput { .. }) | Some(Error::InvalidState { .. }) => {
                SslError::Ssl.name().to_owned()
            }
            Some(err) => err.ssl_error().name().to_owned(),
            None => self.tls.ssl_error().name().to_owned(),
        }
    }

    /// The last call's error as a JS `Error` with `code`, or `undefined`.
    #[wasm_bindgen(js_name = lastError)]
    pub fn last_error(&self) -> JsValue {
        self.last_error
            .as_ref()
            .map(js_error)
            .unwrap_or(JsValue::UNDEFINED)
    }

    /// Hands over bytes received from the transport; returns how many were taken.
    #[wasm_bindgen(js_name = pushCiphertext)]
    pub fn push_ciphertext(&mut self, data: &[u8]) -> usize {
        self.tls.push_ciphertext(data)
    }

    /// The transport reached EOF.
    #[wasm_bindgen(js_name = pushEof)]
    pub fn push_eof(&mut self) {
        self.tls.push_eof()
    }

    /// Bytes waiting to be sent.
    #[wasm_bindgen(js_name = pendingCiphertext)]
    pub fn pending_ciphertext(&self) -> usize {
        self.tls.pending_ciphertext()
    }

    /// Takes all bytes waiting to be sent (empty if none).
    #[wasm_bindgen(js_name = pullCiphertext)]
    pub fn pull_ciphertext(&mut self) -> Vec<u8> {
        self.tls.take_ciphertext()
    }

    /// Received plaintext ready to read.
    #[wasm_bindgen(js_name = pendingPlaintext)]
    pub fn pending_plaintext(&self) -> usize {
        self.tls.pending_plaintext()
    }

    /// Whether the handshake is still in progress.
    #[wasm_bindgen(getter, js_name = isHandshaking)]
    pub fn is_handshaking(&self) -> bool {
        self.tls.is_handshaking()
    }

    /// `{ protocol, cipherSuite, group, alpn, resumed, peerCertificates, certificates }`
    /// once the handshake is complete, else `undefined`.
    #[wasm_bindgen(js_name = handshakeInfo)]
    pub fn handshake_info(&self) -> JsValue {
        self.tls
            .handshake_info()
            .map_or(JsValue::UNDEFINED, |info| info_object(&info))
    }
}

/// `{ protocol, cipherSuite, group, alpn, resumed, peerCertificates, certificates }`.
fn info_object(info: &HandshakeInfo) -> JsValue {
    let obj = Object::new();
    let set = |k: &str, v: JsValue| {
        let _ = Reflect::set(&obj, &k.into(), &v);
    };
    set("protocol", info.version.name().into());
    set("cipherSuite", info.cipher_suite.as_str().into());
    set(
        "group",
        info.key_exchange_group
            .as_deref()
            .map(JsValue::from)
            .unwrap_or(JsValue::NULL),
    );
    set(
        "alpn",
        info.alpn_str().map(JsValue::from).unwrap_or(JsValue::NULL),
    );
    set("resumed", info.resumed.into());
    let ders = Array::new();
    let summaries = Array::new();
    for (der, summary) in info
        .peer_certificates
        .iter()
        .zip(info.certificate_summaries())
    {
        ders.push(&Uint8Array::from(der.as_slice()));
        let s = Object::new();
        if let Some(summary) = summary {
            let _ = Reflect::set(&s, &"subject".into(), &summary.subject.into());
            let _ = Reflect::set(&s, &"issuer".into(), &summary.issuer.into());
            let _ = Reflect::set(
                &s,
                &"notBefore".into(),
                &js_sys::Date::new(&((summary.not_before as f64) * 1000.0).into()),
            );
            let _ = Reflect::set(
                &s,
                &"notAfter".into(),
                &js_sys::Date::new(&((summary.not_after as f64) * 1000.0).into()),
            );
        }
        summaries.push(&s);
    }
    set("peerCertificates", ders.into());
    set("certificates", summaries.into());
    obj.into()
}

/// The data path: the core driven by whole buffers, one call per transport message
/// received and one per piece written (see the core's `TlsPipe`). Each call returns a
/// step, `{ state, consumed, plaintext?, ciphertext?, error? }`: the state
/// (`handshaking`, `open`, `closed`, `failed`), how many input bytes it took, the
/// plaintext for the application, the ciphertext to send, and the `TlsError` once
/// failed. Bytes are copied once into wasm and once out.
#[wasm_bindgen(js_name = TlsPipe)]
pub struct JsPipe {
    pipe: TlsPipe,
    /// Reused for every step's plaintext, so receiving allocates nothing in wasm.
    plaintext: Vec<u8>,
}

#[wasm_bindgen(js_class = TlsPipe)]
impl JsPipe {
    /// A new connection from a `TlsConfig`; its ClientHello is the first step's
    /// ciphertext (`receive(new Uint8Array(0), 0)`).
    #[wasm_bindgen(constructor)]
    pub fn new(config: &JsConfig) -> Result<JsPipe, JsValue> {
        TlsPipe::new(&config.config)
            .map(|pipe| JsPipe {
                pipe,
                plaintext: Vec::new(),
            })
            .map_err(|err| js_error(&err))
    }

    /// Takes ciphertext from the transport and decrypts up to `budget` bytes. Offer the
    /// bytes past `consumed` again, first, once the application has read.
    pub fn receive(&mut self, ciphertext: &[u8], budget: u32) -> JsValue {
        let mut plaintext = std::mem::take(&mut self.plaintext);
        plaintext.clear();
        let consumed = self
            .pipe
            .receive(ciphertext, budget as usize, &mut plaintext);
        let step = self.step(consumed, &plaintext);
        self.plaintext = plaintext;
        step
    }

    /// The transport reached EOF; `receive` delivers what came before it, then the
    /// state is `closed` (after close_notify) or `failed` (`truncated`).
    #[wasm_bindgen(js_name = receiveEof)]
    pub fn receive_eof(&mut self) -> JsValue {
        self.pipe.receive_eof(0, &mut Vec::new());
        self.step(0, &[])
    }

    /// Encrypts as much of `plaintext` as it can (all of it once open; nothing during
    /// the handshake). Throws `invalid-state` after `close()`.
    pub fn send(&mut self, plaintext: &[u8]) -> Result<JsValue, JsValue> {
        let consumed = self.pipe.send(plaintext).map_err(|err| js_error(&err))?;
        Ok(self.step(consumed, &[]))
    }

    /// Queues close_notify; data from the peer may still arrive. Throws
    /// `invalid-state` during the handshake (close the transport instead).
    pub fn close(&mut self) -> Result<JsValue, JsValue> {
        self.pipe.close().map_err(|err| js_error(&err))?;
        Ok(self.step(0, &[]))
    }

    /// What was negotiated (as `TlsConnection.handshakeInfo()`), or `undefined`.
    #[wasm_bindgen(js_name = handshakeInfo)]
    pub fn handshake_info(&self) -> JsValue {
        self.pipe
            .handshake_info()
            .map_or(JsValue::UNDEFINED, |info| info_object(&info))
    }
}

impl JsPipe {
    fn step(&mut self, consumed: usize, plaintext: &[u8]) -> JsValue {
        let obj = Object::new();
        let set = |k: &str, v: &JsValue| {
            let _ = Reflect::set(&obj, &k.into(), v);
        };
        let state = self.pipe.state();
        set("state", &state.name().into());
        set("consumed", &(consumed as f64).into());
        if !plaintext.is_empty() {
            set("plaintext", &Uint8Array::from(plaintext).into());
        }
        if !self.pipe.pending_ciphertext().is_empty() {
            let bytes = self.pipe.take_ciphertext();
            set("ciphertext", &Uint8Array::from(bytes.as_slice()).into());
        }
        if state == PipeState::Failed {
            if let Some(err) = self.pipe.error() {
                set("error", &js_error(err));
            }
        }
        obj.into()
    }
}
