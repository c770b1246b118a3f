// A WebSocket as a channel of binary messages, with the flow control each kind has:
// - the browser's WebSocketStream: reading stops when paused, so the browser stops
//   reading the TCP connection, and writes resolve when sent;
// - the `ws` package in Node.js: pause()/resume() stop reading the socket, and each
//   send's callback says when its bytes reached the kernel;
// - the browser's WebSocket: no pushing back on what arrives (canPause is false), and
//   the send queue is polled through bufferedAmount.
//
// Channel: { onopen(), onmessage(bytes), onclose({ code, reason, opened }), send(bytes),
//   bufferedAmount, drained(limit) → Promise, pause(), resume(), canPause,
//   close(code, reason), protocol, url }

import { TlsError } from '../errors.js';
import { DrainWaiters } from './drain.js';

const POLL_MS = 2;

/** Opens a channel to `url`; `options` as connect()'s (WebSocket, webSocketStream). */
export function openChannel(url, protocols, options) {
  const WS = options.WebSocket || globalThis.WebSocket;
  if (!options.WebSocket && options.webSocketStream !== false && typeof globalThis.WebSocketStream === 'function') {
    return new StreamChannel(url, protocols);
  }
  if (!WS) {
    throw new TlsError('invalid-config', 'no WebSocket here: pass options.WebSocket (for example from the "ws" package)');
  }
  let ws;
  try {
    ws = protocols && protocols.length ? new WS(url, protocols) : new WS(url);
  } catch (err) {
    throw new TlsError('invalid-config', `cannot open a WebSocket to ${url}: ${err.message}`);
  }
  return new SocketChannel(ws, url);
}

/** Wraps a WebSocket the caller opened (options.webSocket). */
export function wrapWebSocket(ws) {
  return new SocketChannel(ws, ws.url);
}

class BaseChannel {
  constructor(url) {
    this.url = url;
    this.onopen = null;
    this.onmessage = null;
    this.onclose = null;
    this.opened = false;
    this.closed = false;
    this.paused = false;
    this.protocol = '';
    this._preOpen = [];
    this._preOpenBytes = 0;
    this._drain = new DrainWaiters(() => ({ amount: this.bufferedAmount, closed: this.closed }));
    this._pollTimer = null;
  }

  send(bytes) {
    if (this.closed) return;
    if (!this.opened) {
      this._preOpen.push(bytes);
      this._preOpenBytes += bytes.length;
      return;
    }
    this._send(bytes);
  }

  _opened(protocol) {
    this.opened = true;
    this.protocol = protocol || '';
    const queued = this._preOpen;
    this._preOpen = [];
    this._preOpenBytes = 0;
    for (const bytes of queued) this._send(bytes);
    if (this.onopen) this.onopen();
  }

  _message(data) {
    if (this.closed) return;
    if (typeof data === 'string') {
      this.failure = new TlsError('transport-error', 'the server sent a text frame; it must send binary frames');
      this.close(1003, 'binary frames only');
      return;
    }
    if (this.onmessage) this.onmessage(data instanceof Uint8Array ? data : new Uint8Array(data));
  }

  _closed(code, reason) {
    if (this.closed && this._closeReported) return;
    this.closed = true;
    this._closeReported = true;
    this._preOpen = [];
    this._preOpenBytes = 0;
    this._wake();
    if (this.onclose) this.onclose({ code, reason: reason || '', opened: this.opened, failure: this.failure });
  }

  /** Resolves once at most `limit` bytes wait to be sent, or the channel closed. */
  drained(limit) {
    const done = this._drain.wait(limit);
    // Where sends do not report completion, the queue is polled.
    if (this._drain.waiting && !this._eventDriven) this._poll();
    return done;
  }

  _wake() {
    this._drain.wake();
  }

  _poll() {
    if (this._pollTimer) return;
    this._pollTimer = setTimeout(() => {
      this._pollTimer = null;
      this._wake();
      if (this._drain.waiting) this._poll();
    }, POLL_MS);
  }
}

/** A WebSocket with the browser's API, or the `ws` package's. */
class SocketChannel extends BaseChannel {
  constructor(ws, url) {
    super(url);
    this.ws = ws;
    // The `ws` package: pause/resume reach the socket, and sends report completion.
    this._node = typeof ws.pause === 'function' && typeof ws.on === 'function';
    this.canPause = this._node;
    this._eventDriven = this._node;
    this._inFlight = 0;
    // `ws` hands over its own Buffer (a Uint8Array) as it is; an ArrayBuffer would be a copy.
    ws.binaryType = this._node ? 'nodebuffer' : 'arraybuffer';
    ws.onopen = () => this._opened(ws.protocol);
    ws.onmessage = (event) => this._message(event.data);
    ws.onerror = () => {
      // The close event that follows carries the detail.
    };
    ws.onclose = (event) => this._closed(event.code, event.reason);
    if (ws.readyState === 1) queueMicrotask(() => !this.opened && this._opened(ws.protocol));
  }

  get bufferedAmount() {
    return this._preOpenBytes + (this._node ? this._inFlight : this.ws.bufferedAmount || 0);
  }

  _send(bytes) {
    if (!this._node) {
      this.ws.send(bytes);
      return;
    }
    const n = bytes.length;
    this._inFlight += n;
    this.ws.send(bytes, () => {
      this._inFlight -= n;
      this._wake();
    });
  }

  pause() {
    if (this.paused) return;
    this.paused = true;
    if (this._node) this.ws.pause();
  }

  resume() {
    if (!this.paused) return;
    this.paused = false;
    if (this._node) this.ws.resume();
  }

  close(code = 1000, reason = '') {
    if (this.closed) return;
    this.closed = true;
    this._preOpen = [];
    this._preOpenBytes = 0;
    this._wake();
    try {
      this.ws.close(code, reason);
    } catch {
      this.ws.close();
    }
  }

  /** Lets Node.js exit while only this channel is open. */
  unref() {
    const socket = this.ws._socket;
    if (socket && typeof socket.unref === 'function') socket.unref();
  }

  ref() {
    const socket = this.ws._socket;
    if (socket && typeof socket.ref === 'function') socket.ref();
  }
}

/** The browser's WebSocketStream (Chromium): backpressure both ways. */
class StreamChannel extends BaseChannel {
  constructor(url, protocols) {
    super(url);
    this.canPause = true;
    this._eventDriven = true;
    this._inFlight = 0;
    this._reading = false;
    try {
      this.wss = new globalThis.WebSocketStream(url, protocols && protocols.length ? { protocols } : {});
    } catch (err) {
      throw new TlsError('invalid-config', `cannot open a WebSocket to ${url}: ${err.message}`);
    }
    this.wss.opened.then(
      ({ readable, writable, protocol }) => {
        if (this.closed) return;
        this._reader = readable.getReader();
        this._writer = writable.getWriter();
        this._opened(protocol);
        this._read();
      },
      () => {},
    );
    // A close before the open (a relay's refusal) rejects with a WebSocketError that
    // still carries the close code and reason.
    this.wss.closed.then(
      ({ closeCode, reason }) => this._remoteClose(closeCode || 1005, reason),
      (err) => this._remoteClose((err && err.closeCode) || 1006, (err && err.reason) || ''),
    );
  }

  /**
   * The closing handshake is done, but messages may still wait in the readable (the
   * application paused reading): the close is reported once they have been read.
   */
  _remoteClose(code, reason) {
    this._pendingClose = { code, reason };
    if (!this._reader || this._readDone) this._closed(code, reason);
    else if (!this.paused) this._read();
  }

  _readEnded() {
    this._readDone = true;
    if (this._pendingClose) this._closed(this._pendingClose.code, this._pendingClose.reason);
  }

  get bufferedAmount() {
    return this._preOpenBytes + this._inFlight;
  }

  async _read() {
    if (this._reading) return;
    this._reading = true;
    try {
      while (!this.paused && !this.closed) {
        const { value, done } = await this._reader.read();
        if (done) {
          this._readEnded();
          break;
        }
        this._message(value);
      }
    } catch {
      // The closed promise reports how it ended.
      this._readEnded();
    } finally {
      this._reading = false;
    }
  }

  _send(bytes) {
    const n = bytes.length;
    this._inFlight += n;
    this._writer.write(bytes).then(
      () => {
        this._inFlight -= n;
        this._wake();
      },
      () => {
        this._inFlight -= n;
        this._wake();
      },
    );
  }

  pause() {
    this.paused = true;
  }

  resume() {
    if (!this.paused) return;
    this.paused = false;
    if (this._reader && !this.closed) this._read();
  }

  close(code = 1000, reason = '') {
    if (this.closed) return;
    this.closed = true;
    this._wake();
    try {
      this.wss.close({ closeCode: code, reason });
    } catch {
      this.wss.close();
    }
  }
}
