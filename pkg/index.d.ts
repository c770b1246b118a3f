// Type declarations for wasm-tls.

/** OpenSSL's SSL_get_error classes. */
export type SslErrorName = 'NONE' | 'WANT_READ' | 'WANT_WRITE' | 'ZERO_RETURN' | 'SYSCALL' | 'SSL';

/** A failure with a stable `code`, e.g. `certificate-expired`, `relay-refused`, `truncated`. */
export class TlsError extends Error {
  constructor(code: string, message: string, sslError?: SslErrorName);
  readonly code: string;
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
   * connect(): trust Mozilla's roots too (default true; loads roots.bin once); false
   * trusts only `ca`. For TlsConfig, pass the roots yourself as `trustAnchors`.
   */
  bundledRoots?: boolean;
  /** A trust-anchor bundle, such as `await loadBundledRoots()` (Mozilla's roots). */
  trustAnchors?: Uint8Array;
  /** ALPN protocols to offer, most preferred first. */
  alpn?: string[];
  minVersion?: TlsVersionName;
  maxVersion?: TlsVersionName;
  /** Client certificate chain, PEM, for mutual TLS. */
  cert?: string;
  /** The client certificate's private key, PEM. */
  key?: string;
  /** Resume sessions from tickets (default true). */
  resumption?: boolean;
  /** Receives NSS SSLKEYLOGFILE lines. Anyone with them can decrypt the traffic. */
  keyLog?: (line: string) => void;
}

/** A configuration; connections made from one share a session cache. */
export class TlsConfig {
  constructor(options: TlsConfigOptions);
  readonly serverName: string;
  free(): void;
}

export interface CertificateSummary {
  subject: string;
  issuer: string;
  notBefore: Date;
  notAfter: Date;
}

/** What a handshake negotiated. */
export interface HandshakeInfo {
  protocol: TlsVersionName;
  cipherSuite: string;
  group: string | null;
  alpn: string | null;
  resumed: boolean;
  /** The server's chain as sent, DER, end-entity first. */
  peerCertificates: Uint8Array[];
  certificates: CertificateSummary[];
}

/**
 * A TLS connection with OpenSSL's SSL_connect contract, for any transport: push what
 * the transport delivered, send what pullCiphertext() returns, and call connect / read /
 * write / shutdown again after each WANT_READ / WANT_WRITE.
 */
export class TlsConnection {
  constructor(config: TlsConfig);
  /** 1 done, 0 closed by the peer, -1: see getError(). */
  connect(): number;
  /** Bytes read into buf (> 0), 0 closed cleanly, -1: see getError(). */
  read(buf: Uint8Array): number;
  /** Bytes taken (> 0), -1: see getError(). */
  write(data: Uint8Array): number;
  /** 1 both close_notify exchanged, 0 ours sent, -1: see getError(). */
  shutdown(): number;
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

/** Mozilla's roots as a trust-anchor bundle (roots.bin), fetched once. */
export function loadBundledRoots(): Promise<Uint8Array>;

/** Loads the WebAssembly module (connect() does this on its own). */
export function init(module?: URL | string | Response | BufferSource | WebAssembly.Module): Promise<void>;

export interface TraceStep {
  step: 'want-read' | 'want-write' | 'done';
  bytes?: number;
  info?: HandshakeInfo;
}

/** Credentials for a Wisp v2 server that requires password authentication. */
export interface WispAuth {
  /** 1 to 255 bytes of UTF-8. */
  username: string;
  /** At most 65535 bytes of UTF-8. */
  password: string;
}

export interface SocketOptions extends Partial<TlsConfigOptions> {
  /**
   * A raw relay's URL, e.g. 'wss://relay.example/'; the target is appended as /host:port
   * and each connection opens its own WebSocket.
   */
  relay?: string;
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
  WebSocket?: new (url: string, protocols?: string | string[]) => WebSocket;
  /** An already-open WebSocket to use instead of opening one. */
  webSocket?: WebSocket;
  /** 'on' (default): TLS at once; 'starttls': plaintext until startTls(); 'off': plaintext. */
  secureTransport?: 'on' | 'starttls' | 'off';
  /** Reuse this configuration (and its session cache). */
  config?: TlsConfig;
  /** Fail the handshake after this many milliseconds. */
  handshakeTimeout?: number;
  /** Called for every pump step. */
  trace?: (step: TraceStep) => void;
}

export interface SocketInfo extends Partial<HandshakeInfo> {
  secure: boolean;
  handshakeMs?: number;
  remoteAddress?: string;
}

export interface Socket {
  readonly readable: ReadableStream<Uint8Array>;
  /** Takes strings (as UTF-8), ArrayBuffers and ArrayBuffer views (only the view's bytes). */
  readonly writable: WritableStream<ArrayBufferView | ArrayBuffer | string>;
  /** Resolves when the connection (and its TLS handshake) is established. */
  readonly opened: Promise<SocketInfo>;
  /** Resolves on a clean close; rejects with the TlsError that ended the connection. */
  readonly closed: Promise<void>;
  /** Sends close_notify and closes. */
  close(): Promise<void>;
  /** Upgrades a 'starttls' socket to TLS; returns the secure socket. */
  startTls(options?: Partial<TlsConfigOptions>): Socket;
}

/** Connects to `target` ("host:port") through the relay or the Wisp server. */
export function connect(target: string | { hostname: string; port: number }, options?: SocketOptions): Socket;
