// One HTTP connection: a TLS socket of the package (ALPN chooses HTTP/2 or HTTP/1.1) with
// hyper on it. The socket's plaintext goes in and out through the `io` object the wasm
// module reads (see http/src/io.rs); the socket's own error, with its stable code, is
// what a failed request reports, when there is one.

import { connect } from '../../index.js';
import { TlsError, asTlsError } from '../errors.js';
import { Inbox, openHttpConnection } from '../../wasm_tls_http.js';

/**
 * The plaintext of `socket` for the wasm module: what it reads is pushed into `inbox`
 * (which answers whether it has room, and calls back when it has again) until the
 * socket ends or fails, queued bytes included; what it writes goes through the object
 * returned, whose `stop()` ends the reading once nothing will read the inbox any more.
 */
function socketIo(socket, inbox) {
  const reader = socket.readable.getReader();
  const writer = socket.writable.getWriter();
  let wake = null;
  let stopped = null;
  const resume = () => {
    const w = wake;
    wake = null;
    if (w) w();
  };
  inbox.onRoom(resume);
  (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return inbox.end();
        if (!inbox.push(value)) await new Promise((resolve) => (wake = resolve));
        if (stopped !== null) {
          reader.cancel().catch(() => {});
          return inbox.fail(stopped);
        }
      }
    } catch (err) {
      return inbox.fail(err instanceof Error ? err.message : String(err));
    }
  })();
  return {
    // The write is taken at once; the promise is the socket's room for the next one.
    write: (bytes) => {
      writer.write(bytes).catch(() => {});
      return writer.ready;
    },
    close: () => writer.close().catch(() => {}),
    stop: (message) => {
      if (stopped === null) stopped = message;
      resume();
    },
  };
}

export class Connection {
  /**
   * Opens a connection to `origin` (`{ secure, host, port }`); `protocols`: the ALPN
   * offer, or null for plaintext (HTTP/1.1).
   */
  static async open(origin, options, alpn) {
    const socket = connect(
      { hostname: origin.host, port: origin.port },
      {
        ...options,
        alpn: origin.secure ? alpn : undefined,
        secureTransport: origin.secure ? 'on' : 'off',
        transport: typeof options.transport === 'function' ? () => options.transport(origin.host, origin.port) : options.transport,
      },
    );
    const info = await socket.opened;
    const http2 = info.secure && info.alpn === 'h2';
    const conn = new Connection(socket, http2);
    try {
      const inbox = new Inbox();
      conn.io = socketIo(socket, inbox);
      conn.http = await openHttpConnection(inbox, conn.io, http2, (message) => {
        // hyper reads no more: a reader waiting for room stops too.
        conn.io.stop(message || 'the HTTP connection ended');
        conn._ended(message);
      });
    } catch (err) {
      socket.abort();
      throw conn.error(err);
    }
    return conn;
  }

  constructor(socket, http2) {
    this.socket = socket;
    this.http2 = http2;
    this.io = null;
    this.closed = false;
    this.active = 0;
    this.socketError = null;
    this.onclose = null;
    socket.closed.then(
      () => this._ended(),
      (err) => {
        this.socketError = err;
        this._ended();
      },
    );
  }

  _ended(message) {
    if (message && !this.failure) this.failure = message;
    if (this.closed) return;
    this.closed = true;
    if (this.onclose) this.onclose(this);
  }

  /** Whether a new request may go on this connection. */
  usable() {
    return !this.closed && this.http && !this.http.isClosed();
  }

  /**
   * The error to report for a failure of the HTTP layer (`err`): the socket's TlsError
   * if the socket failed, else `http-protocol` with hyper's message.
   */
  error(err) {
    // The socket's own error is set before its readable fails, so it is known even when
    // hyper reports the failed read before `closed` has rejected.
    const socketError = this.socketError || this.socket._error;
    if (socketError) return socketError;
    if (err instanceof TlsError || (err instanceof Error && err.name === 'TlsError')) return err;
    const message = err instanceof Error ? err.message : String(err);
    return new TlsError('http-protocol', `HTTP over ${this.http2 ? 'HTTP/2' : 'HTTP/1.1'} failed: ${message}`);
  }

  /** Ends the connection at once. */
  abort(reason) {
    this.io?.stop('the HTTP connection was aborted');
    this.socket.abort(asTlsError(reason || 'the HTTP connection was closed', 'aborted')).catch(() => {});
    this._ended();
  }

  /** Closes it cleanly (close_notify). */
  close() {
    this.socket.close().catch(() => {});
    this._ended();
  }
}
