// Connections per origin: one HTTP/2 connection that every request shares as a stream,
// or up to `maxConnectionsPerOrigin` HTTP/1.1 connections, each kept alive for the next
// request. Until the first connection to an origin has told by ALPN which protocol it
// speaks, further requests wait for it rather than each opening a connection.

import { Connection } from './connection.js';

const ALPN = ['h2', 'http/1.1'];

class Origin {
  constructor(key) {
    this.key = key;
    this.connections = new Set();
    this.idle = [];
    this.waiters = [];
    this.opening = 0;
    this.http2 = null;
    /** The protocol, once known: true for HTTP/2. */
    this.knowsHttp2 = undefined;
  }

  get count() {
    return this.connections.size + this.opening;
  }
}

export class Pool {
  constructor(options) {
    this.options = options;
    this.max = options.maxConnectionsPerOrigin ?? 6;
    this.idleTimeout = options.idleTimeout ?? 30000;
    this.origins = new Map();
    this.closed = false;
  }

  _origin(target) {
    const key = `${target.secure ? 'https' : 'http'}://${target.host}:${target.port}`;
    let origin = this.origins.get(key);
    if (!origin) {
      origin = new Origin(key);
      this.origins.set(key, origin);
    }
    return origin;
  }

  /**
   * A connection for a request to `target` ({ secure, host, port }), marked in use:
   * hand it back with release(). `fresh`: not one that was used before.
   */
  async acquire(target, fresh = false) {
    const origin = this._origin(target);
    for (;;) {
      if (origin.http2 && origin.http2.usable()) return this._use(origin, origin.http2);
      if (!fresh) {
        while (origin.idle.length > 0) {
          const conn = origin.idle.pop();
          if (conn.usable()) return this._use(origin, conn);
        }
      }
      const unknown = origin.knowsHttp2 === undefined && origin.opening > 0;
      if (!unknown && origin.count < this.max) return this._use(origin, await this._open(origin, target));
      // Wait for a connection to be opened or handed back, then look again.
      await new Promise((resolve) => origin.waiters.push(resolve));
      fresh = false;
    }
  }

  async _open(origin, target) {
    origin.opening++;
    let conn;
    try {
      conn = await Connection.open(target, this.options, target.secure ? ALPN : null);
    } finally {
      origin.opening--;
      this._wake(origin);
    }
    origin.knowsHttp2 = conn.http2;
    origin.connections.add(conn);
    if (conn.http2) origin.http2 = conn;
    conn.onclose = () => {
      origin.connections.delete(conn);
      if (origin.http2 === conn) origin.http2 = null;
      origin.idle = origin.idle.filter((c) => c !== conn);
      clearTimeout(conn.idleTimer);
      this._wake(origin);
    };
    return conn;
  }

  _use(origin, conn) {
    clearTimeout(conn.idleTimer);
    conn.active++;
    if (conn.active === 1) conn.socket.ref();
    return conn;
  }

  /** Hands a connection back: `reusable` when its last response was read to the end. */
  release(target, conn, reusable) {
    const origin = this._origin(target);
    conn.active--;
    if (!reusable && !conn.http2) {
      conn.close();
    } else if (conn.active === 0 && !conn.closed) {
      // Idle connections let Node.js exit, and close after a while.
      conn.socket.unref();
      if (!conn.http2) origin.idle.push(conn);
      conn.idleTimer = setTimeout(() => {
        if (conn.active === 0) conn.close();
      }, this.idleTimeout);
    }
    this._wake(origin);
  }

  _wake(origin) {
    const waiters = origin.waiters.splice(0);
    for (const wake of waiters) wake();
  }

  /** Closes every connection; requests in flight fail with `aborted`. */
  close() {
    this.closed = true;
    for (const origin of this.origins.values()) {
      for (const conn of origin.connections) conn.abort('the HTTP client was closed');
      for (const conn of origin.connections) clearTimeout(conn.idleTimer);
    }
    this.origins.clear();
  }
}
