// Type declarations for wasm-tls.
//
// They hold for the browser (lib "dom") and for Node.js (@types/node, without "dom"): the
// few web types that only one of the two declares are written out here.

/** OpenSSL's SSL_get_error classes. */
export type SslErrorName = 'NONE' | 'WANT_READ' | 'WANT_WRITE' | 'ZERO_RETURN' | 'SYSCALL' | 'SSL';

/**
 * Every `code` a `TlsError` can carry. The codes are stable: one never changes meaning
 * and is never reused.
 */
export type TlsErrorCode =
  // The server's certificate.
  | 'certificate-expired'
  | 'certificate-not-yet-valid'
  | 'certificate-name-mismatch'
  | 'certificate-self-signed'
  | 'certificate-unknown-issuer'
  | 'certificate-revoked'
  | 'certificate-invalid-purpose'
  | 'certificate-bad-signature'
  | 'certificate-invalid'
  // The TLS protocol.
  | 'peer-alert'
  | 'protocol-version'
  | 'handshake-failure'
  | 'client-certificate-required'
  | 'no-application-protocol'
  | 'protocol-violation'
  | 'decrypt-error'
  | 'tls'
  // The end of the connection: EOF during the handshake, or after it without close_notify.
  | 'unexpected-eof'
  | 'truncated'
  // Misuse: a bad option or argument, or a call the connection's state does not allow.
  | 'invalid-config'
  | 'invalid-state'
  | 'invalid-input'
  // The transport (a relay's WebSocket, a Wisp stream) and its limits.
  | 'relay-refused'
  | 'target-unreachable'
  | 'transport-closed'
  | 'transport-error'
  | 'timeout'
  | 'receive-overflow'
  | 'send-overflow'
  // The writable stream was aborted with a reason that is not an Error.
  | 'aborted'
  // HTTP (wasm-tls/http): the server broke HTTP or WebSocket; a redirect loop.
  | 'http-protocol'
  | 'too-many-redirects'
  // The WebAssembly module failed internally (a Rust panic); the message says where.
  | 'panic';

/**
 * A failure with a stable `code`, e.g. `certificate-expired`, `relay-refused`, `truncated`.
 *
 * Errors raised by the TLS core itself (certificate and protocol failures, `TlsConfig`'s
 * constructor, `lastError()`) are `Error`s named `'TlsError'` with the same fields, and
 * always carry `sslError`; they are not instances of this class, so test
 * `err.name === 'TlsError'` rather than `instanceof`.
 */
export class TlsError extends Error {
  constructor(code: TlsErrorCode, message: string, sslError?: SslErrorName);
  readonly name: 'TlsError';
  readonly code: TlsErrorCode;
  /** OpenSSL's class of the failure: `SYSCALL` for EOF, `SSL` otherwise. */
  readonly sslError?: SslErrorName;
  /** The Wisp server's close reason (e.g. 0x44, 0x48), when it ended the stream. */
  readonly wispReason?: number;
}

export type TlsVersionName = 'TLSv1.2' | 'TLSv1.3';

/** Options of a TLS configuration. */
export interface TlsConfigOptions {
  /** DNS name or IP address the certificate is verified against (and SNI). */
  serverName: string;
  /** Extra trusted CA certificates, PEM (one string may hold several). */
  ca?: string | string[];
  /**
   * Trust Mozilla's roots too (default true; connect() loads roots.bin once); false
   * trusts only `ca`. A TlsConfig made before any connect() has them only if you pass
   * them yourself as `trustAnchors`.
   */
  bundledRoots?: boolean;
  /** A trust-anchor bundle, such as `await loadBundledRoots()` (Mozilla's roots). */
  trustAnchors?: Uint8Array;
  /** ALPN protocols to offer, most preferred first. */
  alpn?: string[];
  minVersion?: TlsVersionName;
  maxVersion?: TlsVersionName;
  /** Client certificate chain, PEM, for mutual TLS; `key` must come with it. */
  cert?: string;
  /** The client certificate's private key, PEM; `cert` must come with it. */
  key?: string;
  /** Resume sessions from tickets (default true). */
  resumption?: boolean;
  /**
   * Offer the post-quantum hybrid key exchange X25519MLKEM768 first, with an X25519
   * share beside it, as browsers do (default true). A server without it costs no extra
   * round trip.
   */
  postQuantum?: boolean;
  /** Receives NSS SSLKEYLOGFILE lines. Anyone with them can decrypt the traffic. */
  keyLog?: (line: string) => void;
}

/**
 * A configuration; connections made from one share a session cache, and so do
 * configurations made from equal options without `keyLog`. The constructor throws a
 * TlsError with code `invalid-config` on a bad option.
 */
export class TlsConfig {
  constructor(options: TlsConfigOptions);
  readonly serverName: string;
  free(): void;
}

/** Subject, issuer and validity of a certificate of the server's chain. */
export interface CertificateSummary {
  /** The subject's distinguished name, RFC 4514 style (`CN=example.com, O=Example`). */
  subject: string;
  issuer: string;
  notBefore: Date;
  notAfter: Date;
}

/** The summary of a certificate that could not be read: an empty object. */
export interface UnreadableCertificate {
  subject?: undefined;
  issuer?: undefined;
  notBefore?: undefined;
  notAfter?: undefined;
}

/** What a handshake negotiated. */
export interface HandshakeInfo {
  protocol: TlsVersionName;
  /** The cipher suite's IANA name, e.g. `TLS13_AES_128_GCM_SHA256`. */
  cipherSuite: string;
  /** The key-exchange group, e.g. `X25519`; null on a TLS 1.2 resumption. */
  group: string | null;
  /** The protocol the server chose by ALPN; null if none (or not UTF-8). */
  alpn: string | null;
  resumed: boolean;
  /** The server's chain as sent, DER, end-entity first. */
  peerCertificates: Uint8Array[];
  /** One entry per certificate of `peerCertificates`, in the same order. */
  certificates: (CertificateSummary | UnreadableCertificate)[];
}

/**
 * A TLS connection with OpenSSL's SSL_connect contract, for any transport: push what
 * the transport delivered, send what pullCiphertext() returns, and call connect / read /
 * write / shutdown again after each WANT_READ / WANT_WRITE.
 */
export class TlsConnection {
  constructor(config: TlsConfig);
  /** 1 done, 0 closed by the peer, -1: see getError(). */
  connect(): 1 | 0 | -1;
  /** Bytes read into buf (> 0), 0 closed cleanly, -1: see getError(). */
  read(buf: Uint8Array): number;
  /** Bytes taken (> 0), -1: see getError(). */
  write(data: Uint8Array): number;
  /** 1 both close_notify exchanged, 0 ours sent, -1: see getError(). */
  shutdown(): 1 | 0 | -1;
  getError(): SslErrorName;
  /** The last call's error (with `code`), if it failed. */
  lastError(): TlsError | undefined;
  /** Returns how many bytes were taken; push the rest after reading. */
  pushCiphertext(data: Uint8Array): number;
  pushEof(): void;
  pendingCiphertext(): number;
  pullCiphertext(): Uint8Array;
  pendingPlaintext(): number;
  readonly isHandshaking: boolean;
  handshakeInfo(): HandshakeInfo | undefined;
  free(): void;
}

/** What one call into a `TlsPipe` did. */
export interface PipeStep {
  /** The connection's state after the call. */
  state: 'handshaking' | 'open' | 'closed' | 'failed';
  /** Bytes of the call's input taken. */
  consumed: number;
  /** Decrypted application data, if any came out. */
  plaintext?: Uint8Array;
  /** Bytes to send to the peer, if any. */
  ciphertext?: Uint8Array;
  /** What failed, once the state is 'failed'. */
  error?: TlsError;
}

/**
 * The data path of a TLS connection, driven by whole buffers: one call per transport
 * message received and one per piece written. Each call returns a step: the state, how
 * much input it took, the plaintext for the application and the ciphertext to send.
 */
export class TlsPipe {
  /**
   * A new connection from a `TlsConfig`; its ClientHello is the first step's ciphertext
   * (`receive(new Uint8Array(0), 0)`).
   */
  constructor(config: TlsConfig);
  /**
   * Takes ciphertext from the transport and decrypts up to `budget` bytes. Offer the
   * bytes past `consumed` again, first, once the application has read.
   */
  receive(ciphertext: Uint8Array, budget: number): PipeStep;
  /**
   * Encrypts as much of `plaintext` as it can (all of it once open; nothing during the
   * handshake). Throws `invalid-state` after `close()`.
   */
  send(plaintext: Uint8Array): PipeStep;
  /**
   * The transport reached EOF: the state becomes 'closed' (after close_notify) or
   * 'failed' (`truncated`).
   */
  receiveEof(): PipeStep;
  /**
   * Queues close_notify; data from the peer may still arrive. Throws `invalid-state`
   * during the handshake (close the transport instead).
   */
  close(): PipeStep;
  /** What was negotiated, once the handshake is complete. */
  handshakeInfo(): HandshakeInfo | undefined;
  free(): void;
}

/** Mozilla's roots as a trust-anchor bundle (roots.bin), fetched once. */
export function loadBundledRoots(): Promise<Uint8Array>;

/** `WebAssembly.Module` where the environment's types declare it (lib "dom"), else never. */
export type WasmModule = typeof globalThis extends {
  WebAssembly: { Module: abstract new (...args: never[]) => infer M };
}
  ? M
  : never;

/** Where to load the WebAssembly module from, or the module itself. */
export type InitInput =
  | string
  | URL
  | Request
  | Response
  | ArrayBuffer
  | ArrayBufferView
  | WasmModule;

/**
 * Loads the WebAssembly module once (connect() does this on its own). Without an
 * argument it loads `wasm_tls_bg.wasm` beside the package's JS (in Node.js, from disk).
 */
export function init(module?: InitInput | Promise<InitInput>): Promise<void>;

/** A step of the socket's pump, as `trace` receives it. */
export type TraceStep =
  | {
      /** Ciphertext arrived from the transport ('want-read') or was sent ('want-write'). */
      step: 'want-read' | 'want-write';
      bytes: number;
    }
  | {
      /** The handshake completed. */
      step: 'done';
      info: SecureSocketInfo;
    };

/** Credentials for a Wisp v2 server that requires password authentication. */
export interface WispAuth {
  /** 1 to 255 bytes of UTF-8. */
  username: string;
  /** At most 65535 bytes of UTF-8. */
  password: string;
}

/**
 * What the package needs of a WebSocket: the browser's, Node's global one (Node 22) and
 * the `ws` package's all fit.
 */
export interface WebSocketLike {
  /** Set to 'arraybuffer'. */
  binaryType: string;
  readonly url: string;
  readonly protocol: string;
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  // The package sets these handlers; any one-argument function fits the slot.
  onopen: ((event: never) => unknown) | null;
  onmessage: ((event: never) => unknown) | null;
  onerror: ((event: never) => unknown) | null;
  onclose: ((event: never) => unknown) | null;
}

/** A WebSocket class: `new WebSocket(url, protocols)`. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** The TLS options that `startTls()` takes (over the ones `connect()` was given). */
export interface StartTlsOptions extends Partial<TlsConfigOptions> {
  /** Reuse this configuration (and its session cache); the TLS options are then unused. */
  config?: TlsConfig;
  /** Fail the handshake with `timeout` after this many milliseconds (default 30000); 0 waits forever. */
  handshakeTimeout?: number;
}

/** A bidirectional byte stream, as the `transport` option takes it. */
export interface ByteStreams {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
}

export interface SocketOptions extends StartTlsOptions {
  /**
   * A raw relay's URL, e.g. 'wss://relay.example/'; the target goes into the path as
   * /host:port, before any query or fragment, and each connection opens its own
   * WebSocket. Or a function that makes the URL for a target.
   */
  relay?: string | ((host: string, port: number) => string);
  /**
   * A Wisp endpoint, e.g. 'wss://relay.example/wisp/' (a trailing slash is added if
   * missing). Connections become streams on one WebSocket, shared by every connect() with
   * the same endpoint, WebSocket constructor and credentials: opened on first use, closed
   * after 5 s without streams, reopened after a drop. Takes precedence over `relay`.
   */
  wisp?: string;
  /** Sent to a Wisp v2 server that asks for a password (and to no other). */
  wispAuth?: WispAuth;
  /** A WebSocket constructor, where there is no global one (Node 20: the 'ws' package). */
  WebSocket?: WebSocketConstructor;
  /**
   * A WebSocket the caller opened (to the relay's URL for the target), used instead of
   * opening one; not with `wisp`.
   */
  webSocket?: WebSocketLike;
  /**
   * Milliseconds a shared Wisp WebSocket stays open after its last stream ends (default
   * 5000; 0 closes it at once). In Node.js an idle one never keeps the process alive.
   */
  wispLinger?: number;
  /**
   * Byte streams already connected to the target, used instead of a relay: a Cloudflare
   * Workers socket, `Duplex.toWeb(net.Socket)`, a WebTransport bidirectional stream; or a
   * function that returns them (or a promise of them).
   */
  transport?: ByteStreams | (() => ByteStreams | Promise<ByteStreams>);
  /**
   * Use the browser's WebSocketStream for a raw relay when there is one (default true):
   * it pushes back on the relay when the application does not read.
   */
  webSocketStream?: boolean;
  /**
   * Bytes of ciphertext held while the application is not reading, when the transport
   * cannot push back (default 64 MiB); past it the socket fails with `receive-overflow`.
   */
  receiveBufferLimit?: number;
  /** 'on' (default): TLS at once; 'starttls': plaintext until startTls(); 'off': plaintext. */
  secureTransport?: 'on' | 'starttls' | 'off';
  /** Called for every pump step. */
  trace?: (step: TraceStep) => void;
}

/** `opened`'s value for a TLS socket: what the handshake negotiated, and how long it took. */
export interface SecureSocketInfo extends HandshakeInfo {
  secure: true;
  handshakeMs: number;
}

/** `opened`'s value for a plaintext socket ('starttls' before startTls(), or 'off'). */
export interface PlainSocketInfo {
  secure: false;
  /** The target's host. */
  remoteAddress: string;
}

export type SocketInfo = SecureSocketInfo | PlainSocketInfo;

export interface Socket<Info extends SocketInfo = SocketInfo> {
  /** The application data; errors with the TlsError that ended the connection. */
  readonly readable: ReadableStream<Uint8Array>;
  /**
   * Takes strings (as UTF-8), ArrayBuffers and ArrayBuffer views (only the view's bytes);
   * closing it sends close_notify, and the readable stays open for the reply.
   */
  readonly writable: WritableStream<ArrayBufferView | ArrayBuffer | string>;
  /** Resolves when the connection (and its TLS handshake) is established. */
  readonly opened: Promise<Info>;
  /** Resolves on a clean close; rejects with the TlsError that ended the connection. */
  readonly closed: Promise<void>;
  /** Sends close_notify and closes. */
  close(): Promise<void>;
  /**
   * Ends the connection at once, without close_notify and without waiting for writes in
   * flight; `opened` (if pending), `closed` and the streams fail with `reason` (a TlsError
   * with code `aborted` unless `reason` is a TlsError).
   */
  abort(reason?: unknown): Promise<void>;
  /**
   * In Node.js, lets the process exit while this connection is open: its WebSocket, or a
   * shared Wisp WebSocket once none of its streams wants it. `ref()` undoes it.
   */
  unref(): this;
  ref(): this;
  /**
   * Upgrades a 'starttls' socket to TLS on the same connection and returns the secure
   * socket; this one is closed. Throws `invalid-state` on a TLS socket, a second time,
   * or once the connection has closed.
   */
  startTls(options?: StartTlsOptions): Socket<SecureSocketInfo>;
}

/** Where to connect: the port as a number or as decimal digits. */
export interface SocketAddress {
  hostname: string;
  port: number | `${number}`;
}

/**
 * Connects to `target` ("host:port", "[v6]:port") through the relay or the Wisp server.
 * Throws `invalid-config` on a bad target or options.
 */
export function connect(
  target: string | SocketAddress,
  options?: SocketOptions & { secureTransport?: 'on' },
): Socket<SecureSocketInfo>;
export function connect(
  target: string | SocketAddress,
  options: SocketOptions & { secureTransport: 'starttls' | 'off' },
): Socket<PlainSocketInfo>;
export function connect(target: string | SocketAddress, options?: SocketOptions): Socket;

/** Closes every shared Wisp WebSocket now; their open streams fail with `aborted`. */
export function closeAll(): void;

/** The WebAssembly module's memory in bytes (0 before `init()`); it grows, never shrinks. */
export function wasmMemoryBytes(): number;
