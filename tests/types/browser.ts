// The package's public types as a web page uses them (lib "dom", no Node types). Only
// compiled (tsc --noEmit), never run. Lines marked @ts-expect-error must NOT compile: if
// one does, tsc fails with "Unused '@ts-expect-error' directive".

import {
  closeAll,
  connect,
  init,
  loadBundledRoots,
  TlsConfig,
  TlsConnection,
  TlsError,
  TlsPipe,
  type HandshakeInfo,
  type PipeStep,
  type PlainSocketInfo,
  type SecureSocketInfo,
  type Socket,
  type SocketInfo,
  type SocketOptions,
  type SslErrorName,
  type TlsErrorCode,
  type TraceStep,
  type WebSocketConstructor,
  type WebSocketLike,
} from 'wasm-tls';

/** Fails to compile unless T is exactly U. */
type Equal<T, U> = (<V>() => V extends T ? 1 : 2) extends <V>() => V extends U ? 1 : 2 ? true : false;
function expectType<T extends true>(): void {}

const relay = 'wss://relay.example/';

// ---- connect() through a raw relay: the README's first example ----

async function withRelay(): Promise<void> {
  const socket = connect('db.example.com:5432', {
    relay,
    serverName: 'db.example.com',
    alpn: ['postgresql'],
    ca: '-----BEGIN CERTIFICATE-----\n...',
    bundledRoots: false,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    resumption: true,
    keyLog: (line) => console.log(line.length),
    handshakeTimeout: 10000,
    receiveBufferLimit: 16 << 20,
    webSocketStream: false,
    trace: (step) => {
      if (step.step === 'done') console.log(step.info.cipherSuite, step.info.handshakeMs);
      else console.log(step.step, step.bytes);
    },
  });
  expectType<Equal<typeof socket, Socket<SecureSocketInfo>>>();

  const info = await socket.opened;
  const secure: true = info.secure;
  const protocol: 'TLSv1.2' | 'TLSv1.3' = info.protocol;
  const cipherSuite: string = info.cipherSuite;
  const group: string | null = info.group;
  const alpn: string | null = info.alpn;
  const resumed: boolean = info.resumed;
  const handshakeMs: number = info.handshakeMs;
  const chain: Uint8Array[] = info.peerCertificates;
  for (const cert of info.certificates) {
    if (cert.subject !== undefined) {
      const notAfter: Date = cert.notAfter;
      console.log(cert.subject, cert.issuer, cert.notBefore.getTime(), notAfter.getTime());
    }
  }
  console.log(secure, protocol, cipherSuite, group, alpn, resumed, handshakeMs, chain.length);
  // @ts-expect-error: a TLS socket's info has no remoteAddress
  info.remoteAddress;

  const writer = socket.writable.getWriter();
  await writer.write(new TextEncoder().encode('hello'));
  await writer.write('a string, sent as UTF-8');
  await writer.write(new ArrayBuffer(8));
  await writer.write(new DataView(new ArrayBuffer(8), 2, 4));
  // @ts-expect-error: numbers are not data
  await writer.write(42);
  writer.releaseLock();

  for await (const chunk of socket.readable) {
    const bytes: Uint8Array = chunk;
    console.log(bytes.byteLength);
  }
  await socket.close();
  await socket.closed;
}

// ---- a target as an object, and the errors ----

// The core's errors are Errors named 'TlsError', not instances of the class.
function isTlsError(err: unknown): err is TlsError {
  return err instanceof Error && err.name === 'TlsError';
}

async function withErrors(): Promise<void> {
  const socket = connect({ hostname: 'mail.example.com', port: 993 }, { relay });
  connect({ hostname: '::1', port: '993' }, { relay });
  try {
    await socket.opened;
  } catch (err) {
    if (isTlsError(err)) {
      const code: TlsErrorCode = err.code;
      const sslError: SslErrorName | undefined = err.sslError;
      const reason: number | undefined = err.wispReason;
      console.log(code, sslError, reason, err.message, err.name);
      switch (err.code) {
        case 'certificate-expired':
        case 'certificate-name-mismatch':
        case 'relay-refused':
        case 'transport-closed':
        case 'truncated':
        case 'timeout':
        case 'receive-overflow':
          break;
        // @ts-expect-error: not a code the package reports
        case 'certificate-expierd':
          break;
      }
      // @ts-expect-error: the code is read-only
      err.code = 'tls';
    }
  }
  const made = new TlsError('invalid-input', 'made by the application');
  console.log(made.code, made instanceof TlsError);
  // @ts-expect-error: not a code
  new TlsError('no-such-code', 'message');
}

// ---- Wisp: many connections over one WebSocket ----

async function withWisp(): Promise<void> {
  const socket = connect('db.example.com:5432', {
    wisp: 'wss://relay.example/wisp/',
    wispAuth: { username: 'user', password: 'secret' },
  });
  const info = await socket.opened;
  console.log(info.alpn);
  // @ts-expect-error: wispAuth needs a password
  connect('db.example.com:5432', { wisp: 'wss://relay.example/wisp/', wispAuth: { username: 'user' } });
  const nothing: void = closeAll();
  console.log(nothing);
}

// ---- STARTTLS ----

async function withStartTls(): Promise<void> {
  const plain = connect('mail.example.com:587', { relay, secureTransport: 'starttls' });
  expectType<Equal<typeof plain, Socket<PlainSocketInfo>>>();
  const plainInfo = await plain.opened;
  const notSecure: false = plainInfo.secure;
  const host: string = plainInfo.remoteAddress;
  console.log(notSecure, host);
  // @ts-expect-error: a plaintext socket has negotiated nothing
  plainInfo.cipherSuite;

  const reader = plain.readable.getReader();
  const greeting = await reader.read();
  if (!greeting.done) console.log(greeting.value.byteLength);
  reader.releaseLock();

  const secure = plain.startTls({ serverName: 'mail.example.com', handshakeTimeout: 5000 });
  const info = await secure.opened;
  console.log(info.protocol);

  const off = connect('example.com:80', { relay, secureTransport: 'off' });
  expectType<Equal<typeof off, Socket<PlainSocketInfo>>>();

  // Options in a variable of the general type: the info says which it is.
  const options: SocketOptions = { relay, secureTransport: Math.random() < 0.5 ? 'on' : 'starttls' };
  const either = connect('example.com:443', options);
  const eitherInfo: SocketInfo = await either.opened;
  if (eitherInfo.secure) console.log(eitherInfo.cipherSuite);
  else console.log(eitherInfo.remoteAddress);

  // @ts-expect-error: misspelled secureTransport value
  connect('mail.example.com:587', { relay, secureTransport: 'startls' });
  // @ts-expect-error: secureTransport is a string, not a boolean
  connect('mail.example.com:587', { relay, secureTransport: true });
}

// ---- WebSockets: the browser's, or one already open ----

function withWebSockets(): void {
  const ctor: WebSocketConstructor = WebSocket;
  const ws: WebSocketLike = new WebSocket('wss://relay.example/example.com:443', ['binary']);
  connect('example.com:443', { relay, WebSocket });
  connect('example.com:443', { webSocket: new WebSocket('wss://relay.example/example.com:443') });
  console.log(ctor, ws);
  // @ts-expect-error: the constructor, not an instance
  connect('example.com:443', { relay, WebSocket: ws });
  // @ts-expect-error: relay is a URL string
  connect('example.com:443', { relay: new URL(relay) });
}

// ---- options that are wrong ----

function wrongOptions(): void {
  // @ts-expect-error: alpn is a list
  connect('example.com:443', { relay, alpn: 'h2' });
  // @ts-expect-error: not a TLS version
  connect('example.com:443', { relay, minVersion: 'TLSv1.1' });
  // @ts-expect-error: handshakeTimeout is in milliseconds, a number
  connect('example.com:443', { relay, handshakeTimeout: '10s' });
  // @ts-expect-error: receiveBufferLimit is a number of bytes
  connect('example.com:443', { relay, receiveBufferLimit: '64 MiB' });
  // @ts-expect-error: the port is a number
  connect({ hostname: 'example.com', port: 'https' }, { relay });
  // @ts-expect-error: no such option
  connect('example.com:443', { relay, verify: false });
  // @ts-expect-error: a TlsConfig needs a serverName
  new TlsConfig({ alpn: ['h2'] });
}

// ---- the SSL_connect contract (low level): pkg/README's loop ----

interface Transport {
  send(bytes: Uint8Array): void;
  receive(): Promise<Uint8Array>;
}

async function lowLevel(transport: Transport): Promise<HandshakeInfo | undefined> {
  await init();
  await init(new URL('./wasm_tls_bg.wasm', import.meta.url));
  await init(fetch('/wasm_tls_bg.wasm'));
  await init(await WebAssembly.compileStreaming(fetch('/wasm_tls_bg.wasm')));

  const config = new TlsConfig({ serverName: 'example.com', trustAnchors: await loadBundledRoots() });
  const serverName: string = config.serverName;
  console.log(serverName);
  const tls = new TlsConnection(config);
  for (;;) {
    const ret = tls.connect(); // 1 done, 0 closed by the peer, -1: see getError()
    if (ret === 1) break;
    const why = tls.getError(); // WANT_READ, WANT_WRITE, ZERO_RETURN, SYSCALL, SSL
    if (why === 'WANT_WRITE') transport.send(tls.pullCiphertext());
    else if (why === 'WANT_READ') tls.pushCiphertext(await transport.receive());
    else throw tls.lastError(); // a TlsError with .code
  }
  // @ts-expect-error: getError() names an OpenSSL class, and this is not one
  if (tls.getError() === 'WANT_X509_LOOKUP') throw new Error();

  const taken: number = tls.write(new TextEncoder().encode('GET / HTTP/1.0\r\n\r\n'));
  const buf = new Uint8Array(16384);
  const n: number = tls.read(buf);
  const shut: 1 | 0 | -1 = tls.shutdown();
  tls.pushEof();
  const pending: number = tls.pendingCiphertext() + tls.pendingPlaintext();
  const handshaking: boolean = tls.isHandshaking;
  const err = tls.lastError();
  if (err) console.log(err.code, err.sslError);
  console.log(taken, n, shut, pending, handshaking);
  const info = tls.handshakeInfo();
  tls.free();
  config.free();
  return info;
}

// ---- the data path (TlsPipe) ----

async function pipe(transport: Transport): Promise<void> {
  const config = new TlsConfig({ serverName: 'example.com', ca: ['-----BEGIN CERTIFICATE-----\n...'] });
  const p = new TlsPipe(config);
  const handle = (step: PipeStep): boolean => {
    if (step.ciphertext) transport.send(step.ciphertext);
    if (step.plaintext) console.log(step.plaintext.byteLength);
    if (step.state === 'failed') {
      const code: TlsErrorCode | undefined = step.error?.code;
      console.log(code);
      return false;
    }
    return step.state !== 'closed';
  };
  let step = p.send(new TextEncoder().encode('hello'));
  while (handle(step)) {
    const bytes = await transport.receive();
    step = bytes.length === 0 ? p.receiveEof() : p.receive(bytes, 65536);
    const consumed: number = step.consumed;
    console.log(consumed);
    if (step.state === 'open') break;
  }
  // @ts-expect-error: not a state
  if (step.state === 'connected') console.log();
  // @ts-expect-error: receive needs a budget
  p.receive(new Uint8Array(1));
  const info = p.handshakeInfo();
  if (info) console.log(info.protocol);
  handle(p.close());
  p.free();
}

export { withRelay, withErrors, withWisp, withStartTls, withWebSockets, wrongOptions, lowLevel, pipe };
export type { TraceStep };
