// The socket: a TCP connection through a transport, in plaintext or TLS, with readable
// and writable streams (after the sockets API of Cloudflare Workers). Its life is one
// state:
//
//   connecting ──▶ handshaking ──▶ open ──▶ closed
//        │              │            │
//        └──────────────┴────────────┴────▶ failed
//
// A plaintext socket goes from connecting to open when the transport opens; startTls()
// hands its transport to a new, secure socket and closes this one.

import { TlsPipe } from '../wasm_tls.js';
import { LIMITS, loadBundledRoots, needsBundledRoots, tlsConfigFor } from './config.js';
import { TlsError, asTlsError } from './errors.js';
import { PlainPipe, Pump } from './pump.js';
import { guard, init } from './wasm.js';

function toBytes(chunk) {
  if (typeof chunk === 'string') return new TextEncoder().encode(chunk);
  // Only the view's own bytes, not the rest of the buffer under it.
  if (ArrayBuffer.isView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (chunk instanceof ArrayBuffer || Object.prototype.toString.call(chunk) === '[object ArrayBuffer]') return new Uint8Array(chunk);
  return null;
}

function invalidInput() {
  return new TlsError('invalid-input', 'write() takes a string, an ArrayBuffer or an ArrayBuffer view');
}

function byteSize(chunk) {
  // Not ByteLengthQueuingStrategy: a string (or anything else) has no byteLength, and
  // its NaN size would error the stream before write() could take or reject the chunk.
  return typeof chunk === 'string' ? chunk.length : Number(chunk && chunk.byteLength) || 0;
}

export class Socket {
  /**
   * transport: see transport/websocket.js; options: connect()'s; secure: whether to
   * start TLS at once.
   */
  constructor(transport, host, options, secure) {
    this._transport = transport;
    this._host = host;
    this._options = options;
    this._secure = secure;
    this.state = 'connecting';
    this.info = null;
    this._error = null;

    this.opened = new Promise((resolve, reject) => {
      this._resolveOpened = resolve;
      this._rejectOpened = reject;
    });
    this.closed = new Promise((resolve, reject) => {
      this._resolveClosed = resolve;
      this._rejectClosed = reject;
    });
    // No unhandled-rejection noise for callers that use only one of them.
    this.opened.catch(() => {});
    this.closed.catch(() => {});

    this._pump = new Pump(transport, {
      desiredSize: () => this._readController.desiredSize ?? 0,
      deliver: (bytes) => this._readController.enqueue(bytes),
      onState: (state, step) => this._onPipeState(state, step),
    }, options);

    this.readable = new ReadableStream(
      {
        start: (controller) => {
          this._readController = controller;
        },
        pull: () => this._pull(),
        cancel: () => this.close(),
      },
      { highWaterMark: LIMITS.readableHighWater, size: byteSize },
    );
    this.writable = new WritableStream(
      {
        write: (chunk) => this._write(chunk),
        close: () => this._closeWrite(),
        abort: (reason) => this._fail(asTlsError(reason, 'aborted')),
      },
      { highWaterMark: 64 * 1024, size: byteSize },
    );

    // A write of the wrong type rejects that write only: a sink's rejection would error
    // the whole writable, so writers check the type before the chunk reaches it.
    const getWriter = this.writable.getWriter.bind(this.writable);
    this.writable.getWriter = () => {
      const writer = getWriter();
      const write = writer.write.bind(writer);
      writer.write = (chunk) => (toBytes(chunk) === null ? Promise.reject(invalidInput()) : write(chunk));
      return writer;
    };

    transport.ondata = (bytes) => this._pump.onData(bytes);
    transport.onclose = (error) => this._onTransportEnd(error);
    transport.onopen = () => {
      if (!this._secure && this.state === 'connecting') this._pump.start(new PlainPipe());
    };
    if (secure) this._startTls();
    else if (transport.open) this._pump.start(new PlainPipe());
  }

  _pull() {
    if (this._readableError) {
      // The queue has been read: now the reader hears of the failure.
      if (this._readController.desiredSize >= LIMITS.readableHighWater) this._readController.error(this._readableError);
      return;
    }
    this._pump.drain();
  }

  /** Loads the module and the roots, then starts the handshake. */
  _startTls() {
    const timeout = this._options.handshakeTimeout ?? LIMITS.handshakeTimeout;
    if (timeout > 0) {
      this._handshakeTimer = setTimeout(() => {
        if (this.state === 'connecting' || this.state === 'handshaking') {
          this._fail(new TlsError('timeout', `the TLS handshake with ${this._transport.describe} did not complete within ${timeout} ms`));
        }
      }, timeout);
    }
    init()
      .then(() => (needsBundledRoots(this._options) ? loadBundledRoots() : undefined))
      .then((anchors) => {
        if (this.state !== 'connecting') return;
        const { config, owned } = tlsConfigFor(this._options, this._host, anchors);
        const pipe = guard(() => new TlsPipe(config));
        if (owned) config.free();
        this.state = 'handshaking';
        this._handshakeStart = performance.now();
        this._pump.start(pipe);
      })
      .catch((err) => this._fail(asTlsError(err, 'invalid-config')));
  }

  _onPipeState(state, step) {
    if (state === 'open') {
      clearTimeout(this._handshakeTimer);
      this.state = 'open';
      if (this._secure) {
        const info = guard(() => this._pump.pipe.handshakeInfo());
        info.secure = true;
        info.handshakeMs = performance.now() - this._handshakeStart;
        this.info = info;
        if (this._options.trace) this._options.trace({ step: 'done', info });
        this._resolveOpened(info);
      } else {
        this._resolveOpened({ secure: false, remoteAddress: this._host });
      }
    } else if (state === 'closed') {
      this._finish();
    } else if (state === 'failed') {
      this._fail(step.error || new TlsError('tls', 'the TLS connection failed'));
    }
  }

  _onTransportEnd(error) {
    if (this.state === 'closed' || this.state === 'failed') return;
    if (error) {
      this._fail(error);
    } else if (!this._pump.pipe) {
      this._fail(new TlsError('unexpected-eof', `the connection to ${this._transport.describe} closed before the TLS handshake`));
    } else {
      // The server's EOF: the pipe tells a clean close_notify from truncation once the
      // reader has taken what came before it.
      this._pump.onEof();
    }
  }

  _write(chunk) {
    if (this.state === 'closed' || this.state === 'failed') {
      return Promise.reject(this._error || new TlsError('invalid-state', 'the socket is closed'));
    }
    const bytes = toBytes(chunk);
    if (bytes === null) return Promise.reject(invalidInput());
    if (bytes.length === 0) return Promise.resolve();
    return this._pump.write(bytes);
  }

  async _closeWrite() {
    // Closing the writable sends close_notify; the readable stays open for the reply.
    if (!this._secure) return;
    if (this.state !== 'open') await this.opened;
    this._pump.closeWrite();
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
    if (this.state !== 'open' || this._pump.stopped || this._pump.eof) {
      throw new TlsError('invalid-state', 'startTls() needs an open connection; this one has closed');
    }
    this._upgraded = true;
    this._pump.stop();
    this.state = 'closed';
    try {
      this._readController.close();
    } catch {}
    this._resolveClosed();
    return new Socket(this._transport, this._host, { ...this._options, ...options }, true);
  }

  /**
   * Ends the connection at once, without close_notify and without waiting for writes in
   * flight: `opened` (if pending), `closed` and the streams fail with `reason` (code
   * `aborted` unless it is a TlsError).
   */
  abort(reason = 'the socket was aborted') {
    this._fail(asTlsError(reason, 'aborted'));
    return this.closed.catch(() => {});
  }

  /** Lets Node.js exit while this connection is open (and `ref()` undoes it). */
  unref() {
    if (this._transport.unref) this._transport.unref();
    return this;
  }

  ref() {
    if (this._transport.ref) this._transport.ref();
    return this;
  }

  /** Sends close_notify (if secure and open) and closes the connection. */
  async close() {
    if (this.state === 'closed' || this.state === 'failed') return this.closed.catch(() => {});
    if (this.state === 'open') this._pump.closeWrite();
    this._finish();
    return this.closed;
  }

  _settle() {
    clearTimeout(this._handshakeTimer);
    this._pump.stop();
    this._transport.close();
    if (this._pump.pipe) {
      this._pump.pipe.free();
    }
  }

  _finish() {
    if (this.state === 'closed' || this.state === 'failed') return;
    const wasOpen = this.state === 'open';
    this.state = 'closed';
    try {
      this._readController.close();
    } catch {}
    if (!wasOpen) {
      this._rejectOpened(new TlsError('aborted', `the socket to ${this._transport.describe} was closed before it opened`));
    }
    // Writes the TLS core took in full have resolved (or will, as the queue drains);
    // what it had not taken yet is never sent, so those writes fail.
    this._pump.rejectWrites(new TlsError('invalid-state', 'the socket closed before the data was sent'));
    this._settle();
    this._resolveClosed();
  }

  _fail(error) {
    if (this.state === 'closed' || this.state === 'failed') return;
    this.state = 'failed';
    this._error = error;
    // Plaintext already queued was received intact: the reader gets it before the error.
    if ((this._readController.desiredSize ?? 0) < LIMITS.readableHighWater) this._readableError = error;
    else this._readController.error(error);
    this._pump.rejectWrites(error);
    this._rejectOpened(error);
    this._rejectClosed(error);
    this._settle();
  }
}
