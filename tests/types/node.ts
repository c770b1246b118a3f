// The package's public types as a Node.js program uses them (@types/node, no "dom"), with
// the `ws` package. Only compiled (tsc --noEmit), never run. The lines that carry an
// expect-error directive must NOT compile.

import { readFile } from 'node:fs/promises';
import http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { connect, init, TlsConfig, TlsConnection, TlsError, type SecureSocketInfo, type Socket } from 'wasm-tls';
// wasm-tls/node, by its path: tsconfig maps only the 'wasm-tls' specifier.
import { createConnection, TLSSocket, type CreateConnectionOptions } from 'wasm-tls/node';

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

// wasm-tls/node: a Duplex shaped like tls.TLSSocket, for libraries that take a socket.
async function nodeStream(ca: string): Promise<void> {
  const socket: TLSSocket = createConnection(
    { relay, WebSocket, host: 'example.com', port: 443, ca, ALPNProtocols: ['h2', 'http/1.1'], timeout: 30000 },
    () => console.log('secure'),
  );
  const duplex: Duplex = socket;
  socket.once('secureConnect', () => {
    const cert = socket.getPeerCertificate();
    console.log(cert.subject.CN, cert.valid_to, cert.raw.length, cert.fingerprint256);
    const detailed = socket.getPeerCertificate(true);
    console.log(detailed.issuerCertificate?.subject.O);
    console.log(socket.getCipher().standardName, socket.getProtocol(), socket.alpnProtocol, socket.authorized);
    console.log(socket.handshakeInfo?.cipherSuite, socket.getPeerX509Certificate()?.fingerprint256);
  });
  socket.on('error', (err: Error) => {
    if (err instanceof TlsError && err.code === 'certificate-expired') console.log(err.message);
  });
  socket.setTimeout(5000, () => socket.destroy()).setNoDelay(true).setKeepAlive(true, 1000).unref();
  socket.on('data', (chunk: Buffer) => console.log(chunk.length));
  socket.end('bye');
  console.log(duplex.writable);

  // http2 over it: createConnection takes any Duplex.
  http2.connect('https://example.com', { createConnection: () => createConnection({ wisp: 'wss://relay.example/wisp/', WebSocket, host: 'example.com', port: 443, ALPNProtocols: ['h2'] }) });

  // pg's `stream`: an unconnected stream that pg connects with its own host and port.
  const stream: () => Duplex = () => createConnection({ relay, WebSocket, ca, starttls: 'postgres' });
  const unconnected = new TLSSocket({ relay, WebSocket, ca: Buffer.from(ca) });
  unconnected.connect(5432, 'db.example.com', () => console.log('connected'));
  console.log(stream);

  // STARTTLS by hand: plaintext first, then the secure stream.
  const plain = createConnection({ relay, WebSocket, host: 'mail.example.com', port: 143, secureTransport: 'starttls' });
  plain.once('connect', () => {
    const secure: TLSSocket = plain.startTls({ servername: 'mail.example.com', minVersion: 'TLSv1.3' });
    secure.once('secureConnect', () => console.log(secure.encrypted));
  });

  const options: CreateConnectionOptions = { transport: { readable: new ReadableStream(), writable: new WritableStream() }, port: '443' };
  createConnection(options);
  // @ts-expect-error: verification is always on
  createConnection({ relay, port: 443, rejectUnauthorized: false });
  // @ts-expect-error: only PostgreSQL's STARTTLS is built in
  createConnection({ relay, starttls: 'smtp' });
  // @ts-expect-error: the package's name for SNI is servername here
  createConnection({ relay, port: 443, serverName: 'example.com' });
}

export { withWs, withGlobalWebSocket, lowLevel, nodeStream };
