// The package's public types as a Node.js program uses them (@types/node, no "dom"), with
// the `ws` package. Only compiled (tsc --noEmit), never run. The lines that carry an
// expect-error directive must NOT compile.

import { readFile } from 'node:fs/promises';
import { WebSocket } from 'ws';
import { connect, init, TlsConfig, TlsConnection, TlsError, type SecureSocketInfo, type Socket } from 'wasm-tls';

const relay = 'wss://relay.example/';

// pkg/README's Node.js example: Node 20 has no global WebSocket, so pass the `ws` one.
async function withWs(): Promise<void> {
  const socket = connect('example.com:443', { relay, WebSocket });
  const info: SecureSocketInfo = await socket.opened;
  console.log(info.protocol, info.cipherSuite, info.alpn);

  const writer = socket.writable.getWriter();
  await writer.write(Buffer.from('GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n'));
  await writer.write('text');
  writer.releaseLock();
  const chunks: Uint8Array[] = [];
  for await (const chunk of socket.readable) chunks.push(chunk);
  console.log(Buffer.concat(chunks).toString('utf8'));
  await socket.close();

  // Wisp, with the same constructor.
  const overWisp: Socket<SecureSocketInfo> = connect('example.com:443', { wisp: 'wss://relay.example/wisp/', WebSocket });
  await overWisp.closed.catch((err: unknown) => {
    if (err instanceof TlsError && err.code === 'relay-refused') console.log(err.wispReason);
  });

  // An already-open `ws` WebSocket.
  const ws = new WebSocket('wss://relay.example/example.com:443', ['binary']);
  connect('example.com:443', { webSocket: ws });

  // @ts-expect-error: the WebSocket option is the class, not an instance
  connect('example.com:443', { relay, WebSocket: ws });
  // @ts-expect-error: not a WebSocket class
  connect('example.com:443', { relay, WebSocket: Buffer });
}

// Node 22's global WebSocket (undici's) fits too.
function withGlobalWebSocket(): void {
  connect('example.com:443', { relay, WebSocket: globalThis.WebSocket });
}

// The low level with the module read from disk.
async function lowLevel(): Promise<void> {
  await init(await readFile(new URL('./wasm_tls_bg.wasm', import.meta.url)));
  // @ts-expect-error: not a module (lib "dom" declares WebAssembly.Module as {}, which takes anything)
  await init(42);
  const tls = new TlsConnection(new TlsConfig({ serverName: 'example.com', bundledRoots: false, ca: 'PEM' }));
  if (tls.connect() === -1 && tls.getError() === 'SSL') {
    const err = tls.lastError();
    console.log(err?.code);
  }
  tls.free();
}

export { withWs, withGlobalWebSocket, lowLevel };
