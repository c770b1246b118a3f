//! Unit tests of the JavaScript bindings, run in headless Chromium by wasm-bindgen-test
//! (`cargo xtask test` runs them; see xtask/src/web.rs for the runner's setup).

#![cfg(all(target_arch = "wasm32", target_os = "unknown"))]

use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;
use wasm_tls::browser::{JsConfig, JsConnection};

wasm_bindgen_test_configure!(run_in_browser);

fn options(pairs: &[(&str, JsValue)]) -> JsValue {
    let obj = Object::new();
    for (k, v) in pairs {
        Reflect::set(&obj, &(*k).into(), v).expect("set");
    }
    obj.into()
}

fn code_of(err: &JsValue) -> String {
    Reflect::get(err, &"code".into())
        .ok()
        .and_then(|c| c.as_string())
        .unwrap_or_default()
}

fn config() -> JsConfig {
    JsConfig::new(options(&[("serverName", "example.com".into())])).expect("config")
}

#[wasm_bindgen_test]
fn bad_options_throw_invalid_config() {
    for opts in [
        options(&[]),
        options(&[("serverName", "not a name!".into())]),
        options(&[
            ("serverName", "example.com".into()),
            ("ca", "not a pem".into()),
        ]),
        options(&[
            ("serverName", "example.com".into()),
            ("minVersion", "SSLv3".into()),
        ]),
        options(&[("serverName", "example.com".into()), ("cert", "x".into())]),
        options(&[
            ("serverName", "example.com".into()),
            (
                "cert",
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into(),
            ),
            ("key", "garbage".into()),
        ]),
        options(&[("serverName", 42.into())]),
    ] {
        let err = JsConfig::new(opts).err().expect("must throw");
        assert!(err.is_instance_of::<js_sys::Error>());
        assert_eq!(code_of(&err), "invalid-config");
    }
}

#[wasm_bindgen_test]
fn options_are_read() {
    let alpn = Array::of2(&"h2".into(), &"http/1.1".into());
    let cfg = JsConfig::new(options(&[
        ("serverName", "[::1]".into()),
        ("alpn", alpn.into()),
        ("minVersion", "TLSv1.3".into()),
        ("resumption", false.into()),
    ]))
    .expect("config");
    assert_eq!(cfg.server_name(), "::1");
}

#[wasm_bindgen_test]
fn connect_wants_write_then_read() {
    let mut conn = JsConnection::new(&config()).expect("connection");
    assert_eq!(conn.connect(), -1);
    assert_eq!(conn.get_error(), "WANT_WRITE");
    let hello = conn.pull_ciphertext();
    assert!(hello.len() > 100);
    assert_eq!(hello[0], 0x16, "a handshake record");
    assert_eq!(conn.pending_ciphertext(), 0);
    assert_eq!(conn.connect(), -1);
    assert_eq!(conn.get_error(), "WANT_READ");
    assert!(conn.is_handshaking());
    assert!(conn.handshake_info().is_undefined());
    // A write before the handshake is done drives the handshake and takes nothing.
    assert_eq!(conn.write(b"early"), -1);
    assert_eq!(conn.get_error(), "WANT_READ");
}

#[wasm_bindgen_test]
fn garbage_from_the_peer_is_a_typed_sticky_error() {
    let mut conn = JsConnection::new(&config()).expect("connection");
    assert_eq!(conn.connect(), -1);
    let _ = conn.pull_ciphertext();
    assert_eq!(conn.push_ciphertext(&[0x16; 64]), 64);
    assert_eq!(conn.connect(), -1);
    assert_eq!(conn.get_error(), "SSL");
    assert_eq!(code_of(&conn.last_error()), "protocol-violation");
    // The alert telling the peer why is queued.
    assert!(conn.pending_ciphertext() > 0);
    // Sticky: every later call reports the same error.
    let mut buf = [0u8; 16];
    assert_eq!(conn.read(&mut buf), -1);
    assert_eq!(code_of(&conn.last_error()), "protocol-violation");
    assert_eq!(conn.write(b"x"), -1);
    assert_eq!(conn.shutdown(), -1);
    assert_eq!(code_of(&conn.last_error()), "protocol-violation");
    // Input after the failure is taken and ignored.
    assert_eq!(conn.push_ciphertext(&[1, 2, 3]), 3);
}

#[wasm_bindgen_test]
fn eof_during_the_handshake_is_syscall() {
    let mut conn = JsConnection::new(&config()).expect("connection");
    assert_eq!(conn.connect(), -1);
    let _ = conn.pull_ciphertext();
    conn.push_eof();
    conn.push_eof();
    assert_eq!(conn.connect(), -1);
    assert_eq!(conn.get_error(), "SYSCALL");
    assert_eq!(code_of(&conn.last_error()), "unexpected-eof");
}

#[wasm_bindgen_test]
fn empty_and_huge_buffers_do_not_panic() {
    let mut conn = JsConnection::new(&config()).expect("connection");
    assert_eq!(conn.read(&mut []), -1);
    assert_eq!(code_of(&conn.last_error()), "invalid-input");
    assert_eq!(conn.write(&[]), -1);
    assert_eq!(code_of(&conn.last_error()), "invalid-input");
    assert_eq!(conn.push_ciphertext(&[]), 0);
    // A misuse error does not fail the connection.
    assert_eq!(conn.connect(), -1);
    assert_eq!(conn.get_error(), "WANT_WRITE");
    let _ = conn.pull_ciphertext();
    // 4 MiB of garbage: refused as a typed error, not a trap.
    let huge = vec![0xffu8; 4 << 20];
    let _ = conn.push_ciphertext(&huge);
    assert_eq!(conn.connect(), -1);
    assert_eq!(conn.get_error(), "SSL");
    assert!(!code_of(&conn.last_error()).is_empty());
}

#[wasm_bindgen_test]
fn key_log_callback_is_called_per_config() {
    let lines = Array::new();
    let sink = lines.clone();
    let callback = wasm_bindgen::closure::Closure::<dyn Fn(JsValue)>::new(move |line: JsValue| {
        sink.push(&line);
    });
    let cfg = JsConfig::new(options(&[
        ("serverName", "example.com".into()),
        ("keyLog", callback.as_ref().clone()),
    ]))
    .expect("config");
    let mut conn = JsConnection::new(&cfg).expect("connection");
    assert_eq!(conn.connect(), -1);
    // Nothing to log before the server's hello; the callback stays registered until the
    // config is freed.
    assert_eq!(lines.length(), 0);
    drop(conn);
    drop(cfg);
    drop(callback);
    let _ = Uint8Array::new_with_length(0);
}
