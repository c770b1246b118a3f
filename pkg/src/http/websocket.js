// The browser's WebSocket interface over a TLS socket of the package (wss:, ALPN
// http/1.1) or a plaintext one (ws:), with tungstenite's protocol in the HTTP module
// (http/src/websocket.rs): the Upgrade handshake, framing, masking, ping/pong, close.

import { connect } from '../../index.js';
import { TlsError } from '../errors.js';
import { WebSocketSession } from '../../wasm_tls_http.js';
import { httpGuard, initHttp } from './wasm.js';

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;
/** The largest message taken or sent, bytes. */
const MAX_MESSAGE = 64 << 20;
/** How long to wait for the server to end the connection after the closing handshake. */
const CLOSE_WAIT_MS = 5000;

class CloseEventShim extends Event {
  constructor(type, init = {}) {
    super(type);
    this.code = init.code ?? 0;
    this.reason = init.reason ?? '';
    this.wasClean = init.wasClean ?? false;
  }
}
const CloseEventClass = typeof CloseEvent === 'function' ? CloseEvent : CloseEventShim;

function messageEvent(data) {
  if (typeof MessageEvent === 'function') return new MessageEvent('message', { data });
  const event = new Event('message');
  event.data = data;
  return event;
}

function byteLength(data) {
  if (typeof data === 'string') return new TextEncoder().encode(data).length;
  return data.byteLength ?? data.size ?? 0;
}

function parseUrl(url) {
  let parsed;
  try {
    parsed = new URL(String(url));
  } catch {
    throw new SyntaxError(`'${url}' is not a valid URL`);
  }
  if (parsed.protocol === 'https:') parsed.protocol = 'wss:';
  if (parsed.protocol === 'http:') parsed.protocol = 'ws:';
  if (parsed.protocol !== 'wss:' && parsed.protocol !== 'ws:') throw new SyntaxError(`the URL's scheme must be ws: or wss:, not ${parsed.protocol}`);
  if (parsed.hash) throw new SyntaxError('a WebSocket URL cannot have a fragment');
  return parsed;
}

/** Makes the WebSocket class of a client with these socket options. */
export function webSocketClass(options) {
  return class WebSocket extends EventTarget {
    static CONNECTING = CONNECTING;
    static OPEN = OPEN;
    static CLOSING = CLOSING;
    static CLOSED = CLOSED;

    constructor(url, protocols = []) {
      super();
      const parsed = parseUrl(url);
      const list = typeof protocols === 'string' ? [protocols] : [...protocols];
      if (new Set(list).size !== list.length) throw new SyntaxError('a subprotocol is named twice');
      this.url = parsed.href;
      this.protocol = '';
      this.extensions = '';
      this.binaryType = 'blob';
      this.readyState = CONNECTING;
      this.bufferedAmount = 0;
      this.onopen = null;
      this.onmessage = null;
      this.onerror = null;
      this.onclose = null;
      this._sendQueue = Promise.resolve();
      this._start(parsed, list).catch((err) => this._fail(err));
    }

    get CONNECTING() {
      return CONNECTING;
    }
    get OPEN() {
      return OPEN;
    }
    get CLOSING() {
      return CLOSING;
    }
    get CLOSED() {
      return CLOSED;
    }

    _emit(event) {
      const handler = this[`on${event.type}`];
      if (typeof handler === 'function') handler.call(this, event);
      this.dispatchEvent(event);
    }

    async _start(url, protocols) {
      await initHttp();
      // close() while the module loaded: nothing to open.
      if (this.readyState === CLOSED) return;
      const secure = url.protocol === 'wss:';
      const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
      const port = Number(url.port) || (secure ? 443 : 80);
      this._socket = connect(
        { hostname: host, port },
        {
          ...options,
          alpn: secure ? ['http/1.1'] : undefined,
          secureTransport: secure ? 'on' : 'off',
          transport: typeof options.transport === 'function' ? () => options.transport(host, port) : options.transport,
        },
      );
      this._writer = this._socket.writable.getWriter();
      this._session = httpGuard(() => new WebSocketSession(url.href, protocols, MAX_MESSAGE));
      if (this.readyState === CLOSED) return;
      this._flush();
      const reader = this._socket.readable.getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (this.readyState === CLOSED) return;
        const events = httpGuard(() => (done ? this._session.receiveEof() : this._session.receive(value)));
        this._flush();
        for (const [kind, data, extra] of events) this._onEvent(kind, data, extra);
        if (done || this.readyState === CLOSED) {
          if (this.readyState !== CLOSED) this._finish(1006, '', false);
          return;
        }
      }
    }

    /** Sends what the protocol has to send (the handshake, frames, pongs, close). */
    _flush() {
      const out = httpGuard(() => this._session.takeOutput());
      if (!out) return Promise.resolve();
      const written = this._writer.write(out);
      written.catch(() => {});
      return written;
    }

    _onEvent(kind, data, extra) {
      if (kind === 'open') {
        this.protocol = data;
        this.readyState = OPEN;
        this._emit(new Event('open'));
      } else if (kind === 'text') {
        this._emit(messageEvent(data));
      } else if (kind === 'binary') {
        this._emit(messageEvent(this.binaryType === 'arraybuffer' ? data.buffer : new Blob([data])));
      } else if (kind === 'close') {
        // The server's close frame: tungstenite echoed it; the server ends the connection.
        this._closeFrame = { code: data, reason: extra };
        this.readyState = CLOSING;
        clearTimeout(this._closeTimer);
        this._closeTimer = setTimeout(() => this._finish(data, extra, true), CLOSE_WAIT_MS);
      } else if (kind === 'end') {
        const frame = this._closeFrame || { code: 1005, reason: '' };
        this._finish(frame.code, frame.reason, Boolean(this._closeFrame));
      } else if (kind === 'error') {
        this._fail(new TlsError('http-protocol', `the WebSocket to ${this.url} failed: ${data}`));
      }
    }

    send(data) {
      if (this.readyState === CONNECTING) throw new DOMException('the WebSocket is still connecting', 'InvalidStateError');
      if (this.readyState !== OPEN) return;
      const size = byteLength(data);
      this.bufferedAmount += size;
      // In order, also behind a Blob still being read.
      this._sendQueue = this._sendQueue
        .then(async () => {
          if (this.readyState !== OPEN) return;
          if (typeof data === 'string') httpGuard(() => this._session.sendText(data));
          else {
            let bytes;
            if (typeof Blob !== 'undefined' && data instanceof Blob) bytes = new Uint8Array(await data.arrayBuffer());
            else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
            else bytes = new Uint8Array(data);
            if (this.readyState !== OPEN) return;
            httpGuard(() => this._session.sendBinary(bytes));
          }
          await this._flush();
        })
        .catch((err) => this._fail(err))
        .finally(() => {
          this.bufferedAmount -= size;
        });
    }

    /** Sends a ping (beyond the browser's interface: browsers ping on their own). */
    ping(data = new Uint8Array(0)) {
      if (this.readyState !== OPEN) return;
      httpGuard(() => this._session.ping(data));
      this._flush().catch(() => {});
    }

    close(code, reason = '') {
      if (code !== undefined && code !== 1000 && !(code >= 3000 && code <= 4999)) {
        throw new DOMException(`close code ${code} is neither 1000 nor in 3000-4999`, 'InvalidAccessError');
      }
      if (new TextEncoder().encode(reason).length > 123) throw new DOMException('the close reason is longer than 123 bytes', 'SyntaxError');
      if (this.readyState === CLOSING || this.readyState === CLOSED) return;
      if (this.readyState === CONNECTING) {
        this._fail(new TlsError('aborted', `the WebSocket to ${this.url} was closed before it opened`));
        return;
      }
      this.readyState = CLOSING;
      this._sendQueue = this._sendQueue.then(() => {
        httpGuard(() => this._session.close(code ?? null, reason));
        return this._flush();
      });
      this._sendQueue.catch(() => {});
      this._closeTimer = setTimeout(() => this._finish(1006, '', false), CLOSE_WAIT_MS);
    }

    _fail(err) {
      if (this.readyState === CLOSED) return;
      this.error = err instanceof TlsError || err?.name === 'TlsError' ? err : new TlsError('http-protocol', String(err?.message ?? err));
      const event = new Event('error');
      event.error = this.error;
      this._emit(event);
      this._finish(1006, '', false);
    }

    _finish(code, reason, wasClean) {
      if (this.readyState === CLOSED) return;
      this.readyState = CLOSED;
      clearTimeout(this._closeTimer);
      this._socket?.close().catch(() => {});
      this._session?.free();
      this._session = null;
      this._emit(new CloseEventClass('close', { code, reason, wasClean }));
    }
  };
}
