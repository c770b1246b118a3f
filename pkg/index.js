// wasm-tls: TLS from the page (or Node.js) to any TCP server, through a WebSocket relay
// that sees only ciphertext.
//
// Two layers:
// - TlsConfig / TlsConnection (re-exported from the wasm-bindgen output): OpenSSL's
//   SSL_connect contract, for any transport the caller pumps itself.
// - connect(target, options): a socket with readable / writable streams, shaped after
//   the sockets API of Cloudflare Workers, pumped over a WebSocket.

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
    this.ws.onopen = () => {
      this.open = true;
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
    return this.ws.bufferedAmount || 0;
  }

  send(bytes) {
    if (!this.closed) this.ws.send(bytes);
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
  if (typeof target === 'object' && target !== null) {
    return { host: String(target.hostname), port: Number(target.port) };
  }
  const text = String(target);
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) || /^([^:]+):(\d+)$/.exec(text);
  if (!m) throw new TlsError('invalid-config', `target must be "host:port", not "${text}"`);
  return { host: m[1], port: Number(m[2]) };
}

// ---- the socket ----

const configCache = new Map();

function tlsConfigFor(options, host) {
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
  if (options.keyLog) {
    // A key-log callback is per connection: no cache.
    return guard(() => new TlsConfig({ ...plain, keyLog: options.keyLog }));
  }
  // Connections with equal options share a config, so they resume each other's sessions.
  const key = JSON.stringify(plain);
  let config = configCache.get(key);
  if (!config) {
    config = guard(() => new TlsConfig(plain));
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
      new ByteLengthQueuingStrategy({ highWaterMark: 64 * 1024 }),
    );

    this._secure = Boolean(tlsOptions);
    this._attach();
    if (tlsOptions) {
      // The wasm module may still be loading; ciphertext that arrives meanwhile is parked.
      init()
        .then(() => {
          if (this._done) return;
          this._startTlsEngine(tlsOptions);
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

  _startTlsEngine(tlsOptions) {
    const config = tlsConfigFor(tlsOptions, this._host);
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
    if (err && !this._opened) {
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
    // Application data out.
    while (!this._done && this._writes.length > 0) {
      const w = this._writes[0];
      const n = guard(() => tls.write(w.chunk.subarray(w.offset)));
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

  /** Resolves once the WebSocket's send queue is below the high-water mark. */
  _whenDrained(resolve) {
    if (this._transport.bufferedAmount <= SEND_HIGH_WATER || this._done) {
      resolve();
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
    if (typeof chunk === 'string') chunk = new TextEncoder().encode(chunk);
    if (!(chunk instanceof Uint8Array)) chunk = new Uint8Array(chunk.buffer || chunk);
    if (chunk.length === 0) return Promise.resolve();
    if (!this._secure) {
      this._transport.send(chunk.slice());
      return new Promise((resolve) => this._whenDrained(resolve));
    }
    return new Promise((resolve, reject) => {
      this._writes.push({ chunk, offset: 0, resolve, reject });
      this._pump();
    });
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
 * options: { relay, WebSocket?, webSocket?, serverName?, alpn?, ca?, bundledRoots?,
 *   cert?, key?, minVersion?, maxVersion?, resumption?, keyLog?, config?,
 *   secureTransport?: 'on' | 'starttls' | 'off', handshakeTimeout? (ms), trace? }
 */
export function connect(target, options = {}) {
  const { host, port } = parseTarget(target);
  const mode = options.secureTransport || 'on';
  if (!['on', 'starttls', 'off'].includes(mode)) {
    throw new TlsError('invalid-config', `secureTransport must be 'on', 'starttls' or 'off', not '${mode}'`);
  }
  const transport = new WebSocketTransport(options, host, port);
  const socket = new Socket(transport, mode === 'on' ? options : null, host, options.trace);
  socket._tlsOptions = options;
  return socket;
}
