// wasm-tls: TLS from the page (or Node.js) to any TCP server, through a WebSocket relay
// that sees only ciphertext.
//
// Layers, each in its own module under src/:
// - connect(target, options): a socket with readable / writable streams (socket.js),
//   whose data path (pump.js) runs over a transport: one WebSocket per connection to a
//   raw relay (transport/websocket.js) or streams on one shared WebSocket to a Wisp
//   server (transport/wisp.js, wire format in wisp/wire.js).
// - TlsPipe: the data path's binding, one call per message each way.
// - TlsConfig / TlsConnection: OpenSSL's SSL_connect contract, for any transport the
//   caller pumps itself.

import { TlsError } from './src/errors.js';
import { Socket } from './src/socket.js';
import { formatTarget, parseTarget } from './src/target.js';
import { StreamTransport } from './src/transport/streams.js';
import { RelayTransport } from './src/transport/websocket.js';
import { WispStream, closeAllWisp } from './src/transport/wisp.js';

export { TlsConfig, TlsConnection, TlsPipe } from './wasm_tls.js';
export { TlsError } from './src/errors.js';
export { init, wasmMemoryBytes } from './src/wasm.js';
export { loadBundledRoots } from './src/config.js';

/**
 * Opens a TCP connection to `target` ("host:port") through a WebSocket relay, and
 * speaks TLS on it (or plaintext first, with secureTransport 'starttls').
 *
 * With `relay`, each connection opens its own WebSocket to relay/host:port. With
 * `wisp` (a Wisp endpoint, e.g. 'wss://relay.example/wisp/'), connections become
 * streams on one shared WebSocket, opened on first use and reopened after a drop. With
 * `transport` ({ readable, writable } byte streams already connected to the target, or
 * a function that returns them), no relay is involved.
 * pkg/README.md lists the options.
 */
export function connect(target, options = {}) {
  const { host, port } = parseTarget(target);
  const mode = options.secureTransport || 'on';
  if (!['on', 'starttls', 'off'].includes(mode)) {
    throw new TlsError('invalid-config', `secureTransport must be 'on', 'starttls' or 'off', not '${mode}'`);
  }
  const transport = options.transport
    ? new StreamTransport(options.transport, formatTarget(host, port))
    : options.wisp
      ? new WispStream(options, host, port)
      : new RelayTransport(options, host, port);
  return new Socket(transport, host, options, mode === 'on');
}

/** Closes every shared Wisp WebSocket now (their open streams fail with `aborted`). */
export function closeAll() {
  closeAllWisp();
}
