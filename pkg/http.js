// wasm-tls/http: fetch() and WebSocket over the package's TLS sockets, end to end through
// a relay that sees only ciphertext. HTTP/2 and HTTP/1.1 (by ALPN) come from hyper, the
// WebSocket protocol from tungstenite, both in a WebAssembly module of their own
// (wasm_tls_http_bg.wasm) that pages importing only 'wasm-tls' never load.
//
// - src/http/connection.js: a socket with hyper on it;
// - src/http/pool.js: connections per origin (one HTTP/2, or a bounded HTTP/1.1 pool);
// - src/http/fetch.js: the Fetch standard's shapes, redirects, abort, decoding;
// - src/http/websocket.js: the browser's WebSocket interface.

import { TlsError } from './src/errors.js';
import { fetchOver } from './src/http/fetch.js';
import { Pool } from './src/http/pool.js';
import { webSocketClass } from './src/http/websocket.js';
import { initHttp } from './src/http/wasm.js';

export { TlsError } from './src/errors.js';
export { initHttp } from './src/http/wasm.js';

/**
 * An HTTP client whose connections are TLS sockets of the package: `options` are
 * connect()'s (`relay`, `wisp`, `transport`, `ca`, `bundledRoots`, `cert`/`key`,
 * `handshakeTimeout` …) plus `maxConnectionsPerOrigin` (HTTP/1.1, default 6) and
 * `idleTimeout` (ms an unused connection is kept, default 30000).
 */
export function createClient(options = {}) {
  if (!options.relay && !options.wisp && !options.transport && !options.webSocket) {
    throw new TlsError('invalid-config', 'createClient() needs `relay`, `wisp` or `transport`');
  }
  if (options.webSocket) {
    throw new TlsError('invalid-config', 'createClient() opens connections of its own: pass `relay`, `wisp` or `transport`, not `webSocket`');
  }
  const socketOptions = { ...options };
  delete socketOptions.maxConnectionsPerOrigin;
  delete socketOptions.idleTimeout;
  delete socketOptions.alpn;
  const pool = new Pool({ ...socketOptions, maxConnectionsPerOrigin: options.maxConnectionsPerOrigin, idleTimeout: options.idleTimeout });
  const WebSocket = webSocketClass(socketOptions);
  return {
    /** The Fetch standard's fetch(), through the client's connections. */
    async fetch(input, init) {
      if (pool.closed) throw new TlsError('invalid-state', 'the HTTP client is closed');
      await initHttp();
      return fetchOver(pool, input, init);
    },
    /** The browser's WebSocket class, over the client's options. */
    WebSocket,
    /** `new client.WebSocket(url, protocols)`. */
    webSocket(url, protocols) {
      return new WebSocket(url, protocols);
    },
    /** Closes every pooled connection; requests in flight fail with `aborted`. */
    close() {
      pool.close();
    },
  };
}
