// wasm-tls: TLS from the page (or Node.js) to any TCP server, through a WebSocket relay
// that sees only ciphertext.
//
// Two layers:
// - TlsConfig / TlsConnection (re-exported from the wasm-bindgen output): OpenSSL's
//   SSL_connect contract, for any transport the caller pumps itself.
// - connect(target, options): a socket with readable / writable streams, shaped after
//   the sockets API of Cloudflare Workers, pumped over a WebSocket: one per connection
//   (a raw relay), or one shared by many connections (a Wisp server).

import initWasm, { TlsConfig, TlsConnection, takePanicMessage } from './wasm_tls.js';

export { TlsConfig, TlsConnection };

let ready = null;

/**
 * Loads and instantiates the WebAssembly module once. `connect()` calls it; call it
 * yourself to pass the module (a URL, a Response, bytes or a WebAssembly.Module) when
 * the default location does not suit your bundler.
 */
export function init(module) {
  if (!ready) {
    ready = (async () => {
      if (module === undefined && isNode()) {
        const { readFile } = await import('node:fs/promises');
        module = await readFile(new URL('./wasm_tls_bg.wasm', import.meta.url));
      }
      await initWasm(module === undefined ? undefined : { module_or_path: module });
    })();
    ready.catch(() => {
      ready = null;
    });
  }
  return ready;
}

function isNode() {
  return typeof process !== 'undefined' && process.versions != null && process.versions.node != null;
}

/** An Error with a stable `code`, like the ones the wasm module throws. */
export class TlsError extends Error {
  constructor(code, message, sslError) {
    super(message);
    this.name = 'TlsError';
    this.code = code;
    if (sslError) this.sslError = sslError;
  }
}

/** Runs a call into wasm; turns a trap after a Rust panic into a TlsError that says why. */
function guard(fn) {
  try {
    return fn();
  } catch (err) {
    if (err instanceof WebAssembly.RuntimeError) {
      const message = takePanicMessage();
      throw new TlsError('panic', `wasm-tls failed internally: ${message || err.message}`);
    }
    throw err;
  }
}

// ---- transport: one WebSocket per connection, to a relay ----

const SEND_HIGH_WATER = 1 << 20; // bytes queued in the WebSocket before writers wait
const PRE_OPEN_LIMIT = 16 << 20; // bytes a WebSocket may queue before it opens
// Plaintext handed to the TLS core (or sent in plaintext) at a time: three full records,
// whose ciphertext fits one Wisp DATA packet, and the pump can yield to CONTINUE between.
const WRITE_PIECE = 48 * 1024;
const PLAIN_PIECE = 64 * 1024; // the same for plaintext: one Wisp DATA packet
const RECEIVE_LIMIT = 8 << 20; // ciphertext parked while the application is not reading

function relayUrl(relay, host, port) {
  const base = String(relay).replace(/\/+$/, '');
  const hostPart = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `${base}/${hostPart}:${port}`;
}

class WebSocketTransport {
  constructor(options, host, port) {
    this.ondata = null;
    this.onclose = null;
    this.onopen = null;
    if (options.webSocket) {
      this.ws = options.webSocket;
    } else {
      const WS = options.WebSocket || globalThis.WebSocket;
      if (!WS) {
        throw new TlsError('invalid-config', 'no WebSocket here: pass options.WebSocket (for example from the "ws" package)');
      }
      if (!options.relay) {
        throw new TlsError('invalid-config', 'options.relay (the relay\'s ws:// or wss:// URL) is required');
      }
      this.ws = new WS(relayUrl(options.relay, host, port), ['binary']);
    }
    this.ws.binaryType = 'arraybuffer';
    this.open = this.ws.readyState === 1;
    this.closed = false;
    // A WebSocket throws on send() while CONNECTING: what is sent before it opens waits here.
    this._preOpen = [];
    this._preOpenBytes = 0;
    this.ws.onopen = () => {
      this.open = true;
      const queued = this._preOpen;
      this._preOpen = [];
      this._preOpenBytes = 0;
      for (const bytes of queued) this.send(bytes);
      if (this.onopen) this.onopen();
    };
    this.ws.onmessage = (event) => {
      const data = event.data;
      if (typeof data === 'string') {
        this.fail(new TlsError('transport-error', 'the relay sent a text frame; it must send binary frames'));
        return;
      }
      if (this.ondata) this.ondata(new Uint8Array(data));
    };
    this.ws.onerror = () => {
      // The close event that follows carries the detail.
    };
    this.ws.onclose = (event) => {
      this.closed = true;
      if (this.onclose) this.onclose(event.code, event.reason || '');
    };
  }

  get bufferedAmount() {
    return this._preOpenBytes + (this.ws.bufferedAmount || 0);
  }

  send(bytes) {
    if (this.closed) return;
    if (!this.open) {
      this._preOpen.push(bytes);
      this._preOpenBytes += bytes.length;
      if (this._preOpenBytes > PRE_OPEN_LIMIT) {
        this.fail(new TlsError('send-overflow', `more than ${PRE_OPEN_LIMIT} bytes written before the WebSocket opened`));
      }
      return;
    }
    this.ws.send(bytes);
  }

  fail(error) {
    this.failure = error;
    this.close(1002, error.message.slice(0, 100));
  }

  close(code = 1000, reason = '') {
    if (this.closed) return;
    try {
      this.ws.close(code, reason);
    } catch {
      this.ws.close();
    }
  }
}

// ---- transport: Wisp, many TCP streams over one shared WebSocket ----
//
// Wisp (MercuryWorkshop's protocol) frames every WebSocket message as one packet:
// type (u8), stream id (u32 LE), payload. CONNECT opens a stream, DATA carries bytes,
// CONTINUE grants the client credit (DATA packets the server can buffer for that
// stream), CLOSE ends a stream with a reason. Version 2 adds INFO packets that
// negotiate extensions, among them password authentication.

const WISP_CONNECT = 0x01;
const WISP_DATA = 0x02;
const WISP_CONTINUE = 0x03;
const WISP_CLOSE = 0x04;
const WISP_INFO = 0x05;
const WISP_TCP = 0x01;
const WISP_EXT_PASSWORD = 0x02;
const WISP_SUBPROTOCOL = 'wisp-v2'; // what @mercuryworkshop/wisp-js offers for v2
const WISP_MAX_PAYLOAD = 64 * 1024; // per DATA packet: well under servers' message limits
const WISP_QUEUE_LIMIT = 16 << 20; // bytes one stream may queue while it has no credit
const WISP_HANDSHAKE_MS = 10000;
const WISP_IDLE_MS = 5000; // a WebSocket with no streams closes after this long
const WISP_CLOSE_LINGER_MS = 10000; // a closing stream waits this long for credit

const WISP_REASONS = {
  0x01: 'reason unspecified',
  0x02: 'closed voluntarily',
  0x03: 'a network error',
  0x04: 'incompatible extensions',
  0x41: 'invalid destination (address or port)',
  0x42: 'the destination host is unreachable',
  0x43: 'the connection to the destination timed out',
  0x44: 'the destination refused the connection',
  0x47: 'the data transfer timed out',
  0x48: 'the destination is blocked by the server',
  0x49: 'throttled (too many streams)',
  0x81: 'client error',
  0xc0: 'wrong username or password',
  0xc1: 'invalid signature',
  0xc2: 'credentials required',
};
// Reasons that mean the server did not (or no longer would) open the stream.
const WISP_REFUSALS = new Set([0x41, 0x42, 0x43, 0x44, 0x48, 0x49, 0xc0, 0xc1, 0xc2]);

function hexByte(n) {
  return `0x${n.toString(16).padStart(2, '0')}`;
}

/** The TlsError for a Wisp CLOSE reason on a stream (or on stream 0: the connection). */
function wispCloseError(reason, target) {
  const words = WISP_REASONS[reason] || 'unknown reason';
  const what = target ? `the stream to ${target}` : 'the connection';
  const err = WISP_REFUSALS.has(reason)
    ? new TlsError('relay-refused', `the Wisp server refused ${what}: ${words} (${hexByte(reason)})`)
    : new TlsError('transport-closed', `the Wisp server closed ${what}: ${words} (${hexByte(reason)})`);
  err.wispReason = reason;
  return err;
}

function wispUrl(url) {
  let parsed;
  try {
    parsed = new URL(String(url));
  } catch {
    parsed = null;
  }
  if (!parsed || !/^wss?:$/.test(parsed.protocol)) {
    throw new TlsError('invalid-config', `options.wisp must be a ws:// or wss:// URL, not "${url}"`);
  }
  // Wisp endpoints end with a slash; without it the path would name a raw relay's target.
  if (!parsed.pathname.endsWith('/')) parsed.pathname += '/';
  return parsed.href;
}

function checkWispAuth(auth) {
  if (auth === undefined || auth === null) return null;
  const { username, password } = auth;
  if (typeof username !== 'string' || typeof password !== 'string') {
    throw new TlsError('invalid-config', 'options.wispAuth must be { username, password }, both strings');
  }
  const user = new TextEncoder().encode(username);
  const pass = new TextEncoder().encode(password);
  // The extension gives the lengths one and two bytes.
  if (user.length === 0 || user.length > 255 || pass.length > 65535) {
    throw new TlsError('invalid-config', 'options.wispAuth: the username must be 1 to 255 bytes, the password at most 65535');
  }
  return { user, pass };
}

// Shared connections: WebSocket constructor → "url \n username \n password" → connection.
const wispConnections = new Map();

/** One WebSocket to a Wisp server and the streams it carries. */
class WispConnection {
  static get(options) {
    const WS = options.WebSocket || globalThis.WebSocket;
    if (!WS) {
      throw new TlsError('invalid-config', 'no WebSocket here: pass options.WebSocket (for example from the "ws" package)');
    }
    const url = wispUrl(options.wisp);
    const auth = checkWispAuth(options.wispAuth);
    const key = auth ? `${url}\n${options.wispAuth.username}\n${options.wispAuth.password}` : url;
    let byKey = wispConnections.get(WS);
    if (!byKey) {
      byKey = new Map();
      wispConnections.set(WS, byKey);
    }
    let conn = byKey.get(key);
    if (!conn || conn.closed) {
      conn = new WispConnection(WS, url, auth);
      if (conn.closed) throw conn.failure; // the WebSocket constructor threw
      conn._forget = () => {
        if (byKey.get(key) === conn) byKey.delete(key);
      };
      byKey.set(key, conn);
    }
    return conn;
  }

  constructor(WS, url, auth) {
    this.url = url;
    this.auth = auth;
    this.streams = new Map(); // id → WispTransport, CONNECT sent
    this.pending = []; // WispTransports waiting for the handshake
    this.nextId = 1;
    this.ready = false;
    this.closed = false;
    this.version = 1;
    this.credit = 0; // each new stream's initial credit, from CONTINUE on stream 0
    this._infoSent = false;
    this._forget = () => {};
    this._handshakeTimer = setTimeout(() => {
      if (!this.ready) {
        this._fail(new TlsError('timeout', `the Wisp server did not complete its handshake within ${WISP_HANDSHAKE_MS} ms`));
      }
    }, WISP_HANDSHAKE_MS);
    this._connect(WS, true);
  }

  _connect(WS, offerV2) {
    let ws;
    try {
      ws = offerV2 ? new WS(this.url, [WISP_SUBPROTOCOL]) : new WS(this.url);
    } catch (err) {
      this._fail(new TlsError('invalid-config', `cannot open a WebSocket to ${this.url}: ${err.message}`));
      return;
    }
    this.ws = ws;
    ws.binaryType = 'arraybuffer';
    let opened = false;
    ws.onopen = () => {
      opened = true;
    };
    ws.onmessage = (event) => {
      if (this.ws === ws) this._onMessage(event.data);
    };
    ws.onerror = () => {
      // The close event that follows carries the detail.
    };
    ws.onclose = (event) => {
      if (this.ws !== ws || this.closed) return;
      if (!opened && offerV2) {
        // Some clients (Node's "ws") fail the upgrade when a server ignores the
        // subprotocol: try once more without it, as Wisp v1 needs none.
        this._connect(WS, false);
        return;
      }
      const code = event.code;
      const reason = event.reason || '';
      let error;
      if (code === 1008) {
        error = new TlsError('relay-refused', `the Wisp server refused the connection: ${reason || 'policy violation'}`);
      } else if (!opened) {
        error = new TlsError('transport-closed', `the WebSocket to the Wisp server at ${this.url} could not be opened (unreachable, or not a WebSocket endpoint)`);
      } else {
        error = new TlsError('transport-closed', `the WebSocket to the Wisp server closed (${code}${reason ? ': ' + reason : ''})`);
      }
      this._fail(error);
    };
  }

  /** Registers a stream; CONNECT goes out now or once the handshake is done. */
  add(transport) {
    clearTimeout(this._idleTimer);
    this._idleTimer = null;
    let id = this.nextId;
    while (id === 0 || this.streams.has(id) || this.pending.some((t) => t.id === id)) {
      id = (id + 1) >>> 0;
    }
    this.nextId = (id + 1) >>> 0;
    transport.id = id;
    if (this.ready) this._sendConnect(transport);
    else this.pending.push(transport);
  }

  _sendConnect(transport) {
    const host = new TextEncoder().encode(transport.host);
    const payload = new Uint8Array(3 + host.length);
    payload[0] = WISP_TCP;
    payload[1] = transport.port & 0xff;
    payload[2] = transport.port >> 8;
    payload.set(host, 3);
    this.streams.set(transport.id, transport);
    this.send(WISP_CONNECT, transport.id, payload);
    transport._connected(this.credit);
  }

  send(type, id, payload) {
    const packet = new Uint8Array(5 + payload.length);
    packet[0] = type;
    new DataView(packet.buffer).setUint32(1, id, true);
    packet.set(payload, 5);
    if (this.ws && this.ws.readyState === 1) this.ws.send(packet);
  }

  get bufferedAmount() {
    return (this.ws && this.ws.bufferedAmount) || 0;
  }

  /** A stream is done with: forget it, and close the WebSocket once idle. */
  remove(transport) {
    if (this.streams.get(transport.id) === transport) this.streams.delete(transport.id);
    const i = this.pending.indexOf(transport);
    if (i >= 0) this.pending.splice(i, 1);
    this._idleCheck();
  }

  _idleCheck() {
    if (this.streams.size === 0 && this.pending.length === 0 && !this.closed && !this._idleTimer) {
      this._idleTimer = setTimeout(() => {
        this._idleTimer = null;
        if (this.streams.size === 0 && this.pending.length === 0) this.close();
      }, WISP_IDLE_MS);
    }
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this._forget();
    clearTimeout(this._handshakeTimer);
    clearTimeout(this._idleTimer);
    try {
      this.ws.close(1000);
    } catch {}
  }

  _sendInfo(serverWantsPassword) {
    if (this._infoSent) return;
    this._infoSent = true;
    const parts = [new Uint8Array([2, 0])];
    // Credentials go only to a server that asked for them.
    if (serverWantsPassword && this.auth) {
      const { user, pass } = this.auth;
      const ext = new Uint8Array(5 + 3 + user.length + pass.length);
      const view = new DataView(ext.buffer);
      ext[0] = WISP_EXT_PASSWORD;
      view.setUint32(1, 3 + user.length + pass.length, true);
      ext[5] = user.length;
      view.setUint16(6, pass.length, true);
      ext.set(user, 8);
      ext.set(pass, 8 + user.length);
      parts.push(ext);
    }
    const payload = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let off = 0;
    for (const p of parts) {
      payload.set(p, off);
      off += p.length;
    }
    this.send(WISP_INFO, 0, payload);
  }

  /** Reads the extensions of the server's INFO, and answers with the client's. */
  _onInfo(payload) {
    this.version = Math.max(this.version, payload[0] || 1);
    let offered = false;
    let required = false;
    let off = 2;
    const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    while (off + 5 <= payload.length) {
      const id = payload[off];
      const len = view.getUint32(off + 1, true);
      const body = payload.subarray(off + 5, off + 5 + len);
      if (id === WISP_EXT_PASSWORD) {
        offered = true;
        // Its one byte says whether the password is required; without it, it is.
        required = body.length === 0 || body[0] !== 0;
      }
      off += 5 + len;
    }
    if (required && !this.auth) {
      this._fail(new TlsError('relay-refused', 'the Wisp server requires a username and password: pass options.wispAuth'));
      return;
    }
    this._sendInfo(offered);
  }

  _onMessage(data) {
    if (typeof data === 'string') {
      this._fail(new TlsError('transport-error', 'the Wisp server sent a text frame; Wisp packets are binary'));
      return;
    }
    const p = new Uint8Array(data);
    if (p.length < 5) {
      this._fail(new TlsError('transport-error', 'the Wisp server sent a malformed packet (shorter than 5 bytes)'));
      return;
    }
    const type = p[0];
    const id = new DataView(p.buffer, p.byteOffset, p.byteLength).getUint32(1, true);
    const payload = p.subarray(5);
    if (id === 0) {
      if (type === WISP_INFO) {
        this._onInfo(payload);
      } else if (type === WISP_CONTINUE && !this.ready && payload.length >= 4) {
        this.credit = new DataView(p.buffer, p.byteOffset + 5, 4).getUint32(0, true);
        this.ready = true;
        clearTimeout(this._handshakeTimer);
        const pending = this.pending;
        this.pending = [];
        for (const t of pending) this._sendConnect(t);
        this._idleCheck();
      } else if (type === WISP_CLOSE) {
        this._fail(wispCloseError(payload[0] || 0x01, null));
      }
      return;
    }
    const stream = this.streams.get(id);
    if (!stream) return; // closed on our side; packets in flight are dropped
    if (type === WISP_DATA) {
      stream._onData(payload);
    } else if (type === WISP_CONTINUE && payload.length >= 4) {
      stream._onContinue(new DataView(p.buffer, p.byteOffset + 5, 4).getUint32(0, true));
    } else if (type === WISP_CLOSE) {
      this.streams.delete(id);
      stream._onRemoteClose(payload.length > 0 ? payload[0] : 0x01);
      this.remove(stream);
    }
  }

  /** The WebSocket is gone (or unusable): every stream on it fails. */
  _fail(error) {
    if (this.closed) return;
    this.closed = true;
    this.failure = error;
    this._forget();
    clearTimeout(this._handshakeTimer);
    clearTimeout(this._idleTimer);
    const all = [...this.pending, ...this.streams.values()];
    this.pending = [];
    this.streams.clear();
    try {
      this.ws.close(1000);
    } catch {}
    for (const t of all) t._onLost(error);
  }
}

/** One Wisp stream, with the transport interface Socket uses (as WebSocketTransport). */
class WispTransport {
  constructor(options, host, port) {
    this.ondata = null;
    this.onclose = null;
    this.onopen = null;
    this.open = false;
    this.closed = false;
    this.host = host;
    this.port = port;
    this._queue = [];
    this._queuedBytes = 0;
    this._credit = 0;
    this._drainChecks = [];
    this._conn = WispConnection.get(options);
    this._conn.add(this);
  }

  get _target() {
    return this.host.includes(':') ? `[${this.host}]:${this.port}` : `${this.host}:${this.port}`;
  }

  /** Bytes waiting for credit here, plus the shared WebSocket's send queue. */
  get bufferedAmount() {
    return this._queuedBytes + this._conn.bufferedAmount;
  }

  _connected(credit) {
    this._credit = credit;
    this.open = true;
    // Bytes written before the CONNECT went out follow it now.
    this._flushQueue();
    if (this.onopen) this.onopen();
  }

  send(bytes) {
    if (this.closed || this._closing) return;
    for (let off = 0; off < bytes.length; off += WISP_MAX_PAYLOAD) {
      const part = bytes.subarray(off, off + WISP_MAX_PAYLOAD);
      this._queue.push(part);
      this._queuedBytes += part.length;
    }
    if (this._queuedBytes > WISP_QUEUE_LIMIT) {
      const error = new TlsError('send-overflow', `more than ${WISP_QUEUE_LIMIT} bytes queued while the Wisp server granted no credit`);
      // The stream is given up: tell the server (if it knows the stream) and forget it,
      // or it would stay open there and in this connection's table.
      if (this.open) this._conn.send(WISP_CLOSE, this.id, new Uint8Array([0x01]));
      this._onLost(error);
      this._conn.remove(this);
      return;
    }
    this._flushQueue();
  }

  /** Sends queued DATA while there is credit; one credit is one packet. */
  _flushQueue() {
    if (!this.open || this.closed) return;
    while (this._queue.length > 0 && this._credit > 0) {
      const part = this._queue.shift();
      this._queuedBytes -= part.length;
      this._credit--;
      this._conn.send(WISP_DATA, this.id, part);
    }
    if (this._closing && this._queue.length === 0) this._finishClose();
    this._checkDrain();
  }

  _onContinue(credit) {
    this._credit = credit;
    this._flushQueue();
  }

  _onData(payload) {
    if (this.ondata) this.ondata(payload);
  }

  /** The server closed the stream: 0x02 is an orderly end, anything else an error. */
  _onRemoteClose(reason) {
    if (this.closed) return;
    if (reason !== 0x02) this.failure = wispCloseError(reason, this._target);
    this._end();
    if (this.onclose) this.onclose(this.failure ? 1011 : 1000, this.failure ? this.failure.message : '');
  }

  /** The WebSocket under the stream is gone: whatever was in flight is lost. */
  _onLost(error) {
    if (this.closed) return;
    this.failure = error;
    this.lost = true;
    this._end();
    if (this.onclose) this.onclose(1006, error.message);
  }

  _end() {
    // `open` stays set, as on a WebSocket: Socket still decrypts what arrived.
    this.closed = true;
    this._queue = [];
    this._queuedBytes = 0;
    clearTimeout(this._lingerTimer);
    this._checkDrain();
  }

  /** Resolves once bufferedAmount is at most `limit`, or the stream has ended. */
  waitDrain(limit) {
    return new Promise((resolve) => {
      const check = () => {
        if (this.closed || this.bufferedAmount <= limit) {
          resolve();
          return true;
        }
        return false;
      };
      if (check()) return;
      this._drainChecks.push(check);
      this._pollDrain();
    });
  }

  _checkDrain() {
    if (this._drainChecks.length === 0) return;
    this._drainChecks = this._drainChecks.filter((check) => !check());
    if (this._drainChecks.length > 0) this._pollDrain();
  }

  // CONTINUE wakes waiters on this stream's queue; the WebSocket's own send
  // queue drains without an event, so that part is polled.
  _pollDrain() {
    if (this._drainTimer) return;
    this._drainTimer = setTimeout(() => {
      this._drainTimer = null;
      this._checkDrain();
    }, 5);
  }

  /** Closes the stream once what was written has gone out (as a WebSocket's close does). */
  close() {
    if (this.closed || this._closing) return;
    this._closing = true;
    if (!this.open) {
      // CONNECT never went out: nothing to tell the server.
      this._end();
      this._conn.remove(this);
      return;
    }
    if (this._queue.length === 0) {
      this._finishClose();
      return;
    }
    this._lingerTimer = setTimeout(() => this._finishClose(), WISP_CLOSE_LINGER_MS);
  }

  _finishClose() {
    if (this.closed) return;
    this._conn.send(WISP_CLOSE, this.id, new Uint8Array([0x02]));
    this._end();
    this._conn.remove(this);
  }
}

/** Turns a WebSocket close into an error, or null for a normal end of stream. */
function closeError(code, reason, transport) {
  if (transport.failure) return transport.failure;
  if (code === 1000 || code === 1005) return null;
  if (code === 1008) {
    return new TlsError('relay-refused', `the relay refused the connection: ${reason || 'policy violation'}`);
  }
  if (code === 1006) {
    return new TlsError('transport-closed', 'the WebSocket to the relay closed abnormally (the relay is unreachable, or dropped the connection)');
  }
  return new TlsError('transport-closed', `the relay closed the WebSocket (${code}${reason ? ': ' + reason : ''})`);
}

function parseTarget(target) {
  let host;
  let port;
  if (typeof target === 'object' && target !== null) {
    host = target.hostname == null ? '' : String(target.hostname);
    port = typeof target.port === 'string' && /^\d+$/.test(target.port) ? Number(target.port) : target.port;
  } else {
    const text = String(target);
    const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) || /^([^:]+):(\d+)$/.exec(text);
    if (!m) throw new TlsError('invalid-config', `target must be "host:port", not "${text}"`);
    host = m[1];
    port = Number(m[2]);
  }
  // The port goes into two bytes over Wisp and into the relay's URL path: a bad one
  // would wrap or reach somewhere else, as would a host with URL delimiters.
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new TlsError('invalid-config', `the target's port must be an integer from 1 to 65535, not "${port}"`);
  }
  if (host === '' || /[\/?#@\s]/.test(host)) {
    throw new TlsError('invalid-config', `the target's host must be a host name or address, not "${host}"`);
  }
  return { host, port };
}

// ---- the socket ----

const configCache = new Map();

let rootsPromise = null;

/**
 * Mozilla's root certificates as a trust-anchor bundle (the package's roots.bin), loaded
 * once. They ship apart from the wasm so that an application that brings its own CA
 * (`bundledRoots: false`) never downloads them. Pass the result to
 * `new TlsConfig({ trustAnchors })`; connect() does this on its own.
 */
export function loadBundledRoots() {
  if (!rootsPromise) {
    rootsPromise = (async () => {
      const url = new URL('./roots.bin', import.meta.url);
      if (isNode()) {
        const { readFile } = await import('node:fs/promises');
        return new Uint8Array(await readFile(url));
      }
      const response = await fetch(url);
      if (!response.ok) {
        throw new TlsError('invalid-config', `cannot load the bundled roots from ${url}: HTTP ${response.status}`);
      }
      return new Uint8Array(await response.arrayBuffer());
    })();
    rootsPromise.catch(() => {
      rootsPromise = null;
    });
  }
  return rootsPromise;
}

function needsBundledRoots(options) {
  return !(options.config instanceof TlsConfig) && options.bundledRoots !== false;
}

function tlsConfigFor(options, host, bundledAnchors) {
  if (options.config instanceof TlsConfig) return options.config;
  const plain = {
    serverName: options.serverName || host,
    ca: options.ca,
    bundledRoots: options.bundledRoots,
    alpn: options.alpn,
    minVersion: options.minVersion,
    maxVersion: options.maxVersion,
    cert: options.cert,
    key: options.key,
    resumption: options.resumption,
  };
  const anchors = options.trustAnchors || bundledAnchors;
  const build = (extra) => guard(() => new TlsConfig({ ...plain, trustAnchors: anchors, ...extra }));
  if (options.keyLog || options.trustAnchors) {
    // A key-log callback or a caller's own anchor bundle is per connection: no cache.
    return build({ keyLog: options.keyLog });
  }
  // Connections with equal options share a config, so they resume each other's sessions.
  const key = JSON.stringify(plain);
  let config = configCache.get(key);
  if (!config) {
    config = build({});
    if (configCache.size >= 64) {
      const [oldest] = configCache.keys();
      configCache.get(oldest).free();
      configCache.delete(oldest);
    }
    configCache.set(key, config);
  }
  return config;
}

/**
 * A TCP connection through the relay, in plaintext (secureTransport 'off' or before
 * startTls()) or TLS.
 */
class Socket {
  constructor(transport, tlsOptions, host, trace) {
    this._transport = transport;
    this._host = host;
    this._trace = trace;
    this._tls = null;
    this._parked = [];
    this._parkedBytes = 0;
    this._writes = [];
    this._done = false;
    this._upgraded = false;
    this._readBuffer = new Uint8Array(64 * 1024);

    let openedResolve, openedReject, closedResolve, closedReject;
    this.opened = new Promise((res, rej) => ((openedResolve = res), (openedReject = rej)));
    this.closed = new Promise((res, rej) => ((closedResolve = res), (closedReject = rej)));
    // Avoid unhandled-rejection noise for callers that use only one of them.
    this.opened.catch(() => {});
    this.closed.catch(() => {});
    this._openedResolve = openedResolve;
    this._openedReject = openedReject;
    this._closedResolve = closedResolve;
    this._closedReject = closedReject;

    this.readable = new ReadableStream(
      {
        start: (controller) => {
          this._readController = controller;
        },
        pull: () => this._pump(),
        cancel: () => this.close(),
      },
      new ByteLengthQueuingStrategy({ highWaterMark: 64 * 1024 }),
    );
    this.writable = new WritableStream(
      {
        write: (chunk) => this._write(chunk),
        close: () => this._shutdownWrite(),
        abort: (reason) => this._fail(reason instanceof Error ? reason : new TlsError('aborted', String(reason))),
      },
      // Not ByteLengthQueuingStrategy: a string (or anything else) has no byteLength, and
      // its NaN size would error the stream before write() could take or reject the chunk.
      { highWaterMark: 64 * 1024, size: (chunk) => (typeof chunk === 'string' ? chunk.length : Number(chunk && chunk.byteLength) || 0) },
    );

    this._secure = Boolean(tlsOptions);
    this._attach();
    if (tlsOptions) {
      // The wasm module may still be loading; ciphertext that arrives meanwhile is parked.
      init()
        .then(() => (needsBundledRoots(tlsOptions) ? loadBundledRoots() : undefined))
        .then((anchors) => {
          if (this._done) return;
          this._startTlsEngine(tlsOptions, anchors);
          this._pump();
        })
        .catch((err) => this._fail(err));
    }
  }

  _attach() {
    const t = this._transport;
    t.ondata = (bytes) => this._onData(bytes);
    t.onclose = (code, reason) => this._onTransportClose(code, reason);
    t.onopen = () => {
      if (!this._secure) this._openedResolve(this._plainInfo());
      this._pump();
    };
    if (t.open && !this._secure) this._openedResolve(this._plainInfo());
  }

  _plainInfo() {
    return { secure: false, remoteAddress: this._host };
  }

  _startTlsEngine(tlsOptions, anchors) {
    const config = tlsConfigFor(tlsOptions, this._host, anchors);
    this._tls = guard(() => new TlsConnection(config));
    this._handshakeStart = performance.now();
    if (tlsOptions.handshakeTimeout > 0) {
      this._handshakeTimer = setTimeout(() => {
        if (this._tls && this._tls.isHandshaking) {
          this._fail(new TlsError('timeout', `the TLS handshake did not complete within ${tlsOptions.handshakeTimeout} ms`));
        }
      }, tlsOptions.handshakeTimeout);
    }
  }

  /**
   * Upgrades a plaintext socket (secureTransport 'starttls') to TLS on the same
   * connection, and returns the new, secure socket; this one is closed.
   */
  startTls(options = {}) {
    if (this._secure || this._upgraded) {
      throw new TlsError('invalid-state', 'startTls() is for a plaintext socket, once');
    }
    // A closed connection has no peer left to answer the handshake: it would wait forever.
    if (this._done || this._transport.closed) {
      throw new TlsError('invalid-state', 'startTls() needs an open connection; this one has closed');
    }
    this._upgraded = true;
    const secure = new Socket(this._transport, { ...this._tlsOptions, ...options }, this._host, this._trace);
    this._done = true;
    try {
      this._readController.close();
    } catch {}
    this._closedResolve();
    secure._pump();
    return secure;
  }

  _onData(bytes) {
    if (this._done) return;
    if (!this._secure) {
      // Plaintext: straight to the reader.
      this._enqueue(bytes.slice());
      return;
    }
    this._parked.push(bytes);
    this._parkedBytes += bytes.length;
    if (this._parkedBytes > RECEIVE_LIMIT) {
      this._fail(new TlsError('receive-overflow', `more than ${RECEIVE_LIMIT} bytes arrived while the application was not reading`));
      return;
    }
    if (this._trace) this._trace({ step: 'want-read', bytes: bytes.length });
    this._pump();
  }

  _onTransportClose(code, reason) {
    if (this._done) return;
    const err = closeError(code, reason, this._transport);
    if (!this._secure) {
      if (err) this._fail(err);
      else this._finish();
      return;
    }
    // Before the handshake any error is the error; after it, a lost transport
    // (a dropped Wisp WebSocket) is too, while a close lets the core tell a clean
    // close_notify from truncation.
    if (err && (!this._opened || this._transport.lost)) {
      this._fail(err);
      return;
    }
    // EOF: the core decides between a clean close_notify and truncation.
    this._eof = true;
    this._pump();
  }

  _enqueue(bytes) {
    try {
      this._readController.enqueue(bytes);
    } catch {}
  }

  _flush() {
    const out = guard(() => this._tls.pullCiphertext());
    if (out.length > 0) {
      if (this._trace) this._trace({ step: 'want-write', bytes: out.length });
      this._transport.send(out);
    }
  }

  _pushParked() {
    while (this._parked.length > 0) {
      const head = this._parked[0];
      const taken = guard(() => this._tls.pushCiphertext(head));
      this._parkedBytes -= taken;
      if (taken < head.length) {
        this._parked[0] = head.subarray(taken);
        return;
      }
      this._parked.shift();
    }
    if (this._eof && !this._eofPushed) {
      this._eofPushed = true;
      guard(() => this._tls.pushEof());
    }
  }

  /** Handles a -1 or 0 from the core. Returns 'read', 'write' or 'stop'. */
  _want(ret) {
    const code = guard(() => this._tls.getError());
    if (code === 'WANT_WRITE') {
      this._flush();
      return 'write';
    }
    if (code === 'WANT_READ') return 'read';
    if (code === 'ZERO_RETURN') {
      this._finish();
      return 'stop';
    }
    const err = guard(() => this._tls.lastError());
    this._flush(); // the alert that tells the peer why
    this._fail(err || new TlsError('tls', `TLS failed (${code})`));
    return 'stop';
  }

  _pump() {
    if (this._done || !this._tls || !this._transport.open) return;
    if (this._pumping) {
      this._again = true;
      return;
    }
    this._pumping = true;
    try {
      do {
        this._again = false;
        this._step();
      } while (this._again && !this._done);
    } catch (err) {
      this._fail(err);
    } finally {
      this._pumping = false;
    }
  }

  _step() {
    const tls = this._tls;
    this._pushParked();
    if (!this._opened) {
      for (;;) {
        const ret = guard(() => tls.connect());
        if (ret === 1) break;
        if (this._want(ret) !== 'write') {
          if (this._eofPushed && !this._done) {
            this._fail(new TlsError('unexpected-eof', 'the connection closed during the handshake'));
          }
          return;
        }
      }
      this._opened = true;
      clearTimeout(this._handshakeTimer);
      const info = guard(() => tls.handshakeInfo());
      info.secure = true;
      info.handshakeMs = performance.now() - this._handshakeStart;
      this.info = info;
      this._openedResolve(info);
      if (this._trace) this._trace({ step: 'done', info });
    }
    // Application data in.
    while (!this._done && this._readController.desiredSize > 0) {
      const n = guard(() => tls.read(this._readBuffer));
      if (n > 0) {
        this._enqueue(this._readBuffer.slice(0, n));
        this._pushParked();
        continue;
      }
      const next = this._want(n);
      if (next === 'write') continue;
      break;
    }
    // Application data out, a piece at a time, and only while the transport's send
    // queue is short: past it, wait for the drain (over Wisp, for CONTINUE) rather than
    // encrypt a large write in one go and overflow the queue.
    while (!this._done && this._writes.length > 0) {
      if (this._transport.bufferedAmount > SEND_HIGH_WATER) {
        this._resumeAfterDrain();
        break;
      }
      const w = this._writes[0];
      const n = guard(() => tls.write(w.chunk.subarray(w.offset, w.offset + WRITE_PIECE)));
      if (n > 0) {
        w.offset += n;
        this._flush();
        if (w.offset === w.chunk.length) {
          this._writes.shift();
          this._whenDrained(w.resolve);
        }
        continue;
      }
      if (this._want(n) !== 'write') break;
    }
    if (!this._done) this._flush();
  }

  /** Pumps again once the send queue has drained (once, however often asked). */
  _resumeAfterDrain() {
    if (this._drainWaiting) return;
    this._drainWaiting = true;
    this._whenDrained(() => {
      this._drainWaiting = false;
      this._pump();
    });
  }

  /** Resolves once the WebSocket's send queue is below the high-water mark. */
  _whenDrained(resolve) {
    if (this._transport.bufferedAmount <= SEND_HIGH_WATER || this._done) {
      resolve();
      return;
    }
    if (this._transport.waitDrain) {
      // Wisp: woken by the server's CONTINUE instead of polling.
      this._transport.waitDrain(SEND_HIGH_WATER).then(resolve);
      return;
    }
    const check = () => {
      if (this._transport.bufferedAmount <= SEND_HIGH_WATER || this._done) resolve();
      else setTimeout(check, 5);
    };
    setTimeout(check, 5);
  }

  _write(chunk) {
    if (this._done) return Promise.reject(this._error || new TlsError('invalid-state', 'the socket is closed'));
    if (typeof chunk === 'string') {
      chunk = new TextEncoder().encode(chunk);
    } else if (ArrayBuffer.isView(chunk)) {
      // Only the view's own bytes, not the rest of the buffer under it.
      chunk = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    } else if (chunk instanceof ArrayBuffer || Object.prototype.toString.call(chunk) === '[object ArrayBuffer]') {
      chunk = new Uint8Array(chunk);
    } else {
      return Promise.reject(new TlsError('invalid-input', 'write() takes a string, an ArrayBuffer or an ArrayBuffer view'));
    }
    if (chunk.length === 0) return Promise.resolve();
    if (!this._secure) return this._writePlain(chunk);
    return new Promise((resolve, reject) => {
      this._writes.push({ chunk, offset: 0, resolve, reject });
      this._pump();
    });
  }

  /** Sends plaintext a piece at a time, each once the send queue has drained. */
  async _writePlain(chunk) {
    for (let off = 0; off < chunk.length; off += PLAIN_PIECE) {
      if (this._done) throw this._error || new TlsError('invalid-state', 'the socket closed before the data was sent');
      // A copy: the caller may reuse its buffer once write() resolves.
      this._transport.send(chunk.slice(off, off + PLAIN_PIECE));
      await new Promise((resolve) => this._whenDrained(resolve));
    }
  }

  async _shutdownWrite() {
    // Closing the writable sends close_notify; the readable stays open for the reply.
    if (!this._secure || this._done) return;
    await this.opened;
    if (!this._tls) return;
    const ret = guard(() => this._tls.shutdown());
    if (ret < 0) this._want(ret);
    this._flush();
  }

  _finish() {
    if (this._done) return;
    this._done = true;
    clearTimeout(this._handshakeTimer);
    try {
      this._readController.close();
    } catch {}
    if (!this._opened && this._secure) {
      this._openedReject(new TlsError('unexpected-eof', 'the peer closed the connection during the handshake'));
    }
    // Writes the TLS core took in full have resolved (or will, as the queue drains);
    // what it had not taken yet is never sent, so those writes fail.
    const unsent = new TlsError('invalid-state', 'the socket closed before the data was sent');
    for (const w of this._writes) w.reject(unsent);
    this._writes = [];
    this._closedResolve();
    this._teardown(1000);
  }

  _fail(error) {
    if (this._done) return;
    this._done = true;
    this._error = error;
    clearTimeout(this._handshakeTimer);
    try {
      this._readController.error(error);
    } catch {}
    for (const w of this._writes) w.reject(error);
    this._writes = [];
    this._openedReject(error);
    this._closedReject(error);
    this._teardown(1000);
  }

  _teardown(code) {
    this._transport.close(code);
    if (this._tls) {
      this._tls.free();
      this._tls = null;
    }
    this._parked = [];
  }

  /** Sends close_notify (if secure) and closes the connection. */
  async close() {
    if (this._done) return this.closed.catch(() => {});
    if (this._tls && this._opened) {
      guard(() => this._tls.shutdown());
      this._flush();
    }
    this._finish();
    return this.closed;
  }
}

/**
 * Opens a TCP connection to `target` ("host:port") through a WebSocket relay, and
 * speaks TLS on it (or plaintext first, with secureTransport 'starttls').
 *
 * options: { relay | wisp, wispAuth?, WebSocket?, webSocket?, serverName?, alpn?, ca?,
 *   bundledRoots?, cert?, key?, minVersion?, maxVersion?, resumption?, keyLog?, config?,
 *   secureTransport?: 'on' | 'starttls' | 'off', handshakeTimeout? (ms), trace? }
 *
 * With `relay`, each connection opens its own WebSocket to relay/host:port. With
 * `wisp` (a Wisp endpoint, e.g. 'wss://relay.example/wisp/'), connections become
 * streams on one shared WebSocket, opened on first use and reopened after a drop.
 */
export function connect(target, options = {}) {
  const { host, port } = parseTarget(target);
  const mode = options.secureTransport || 'on';
  if (!['on', 'starttls', 'off'].includes(mode)) {
    throw new TlsError('invalid-config', `secureTransport must be 'on', 'starttls' or 'off', not '${mode}'`);
  }
  const transport = options.wisp ? new WispTransport(options, host, port) : new WebSocketTransport(options, host, port);
  const socket = new Socket(transport, mode === 'on' ? options : null, host, options.trace);
  socket._tlsOptions = options;
  return socket;
}
