// Type declarations for wasm-tls/node: the socket as a Node.js stream.Duplex shaped like
// a tls.TLSSocket. Node.js only (@types/node).

import type { X509Certificate } from 'node:crypto';
import { Duplex } from 'node:stream';
import type { CipherNameAndProtocol, DetailedPeerCertificate, PeerCertificate } from 'node:tls';
import type { SecureSocketInfo, SocketOptions, StartTlsOptions, TlsVersionName } from './index.js';

export { TlsError, type TlsErrorCode } from './index.js';

/** PEM text (or, for `ca`, DER) as Node's TLS options take it. */
export type PemInput = string | Uint8Array;

/** The TLS options in Node's names (`tls.connect()`'s), for `createConnection()` and `startTls()`. */
export interface NodeTlsOptions {
  /** SNI and the name the certificate is verified against (default: `host`; IPs too). */
  servername?: string;
  /** ALPN protocols, most preferred first: strings, Buffers, or one Buffer in wire format. */
  ALPNProtocols?: (string | Uint8Array)[] | Uint8Array;
  /** Trusted CAs, PEM or DER. As in Node, they replace the bundled roots unless `bundledRoots: true`. */
  ca?: PemInput | PemInput[];
  /** Client certificate chain, PEM, for mutual TLS. */
  cert?: PemInput | PemInput[];
  /** The client certificate's key, PEM, unencrypted. */
  key?: PemInput | { pem: PemInput }[];
  minVersion?: TlsVersionName;
  maxVersion?: TlsVersionName;
  /** Verification is always on: `false` throws `invalid-config`. */
  rejectUnauthorized?: true;
}

export interface CreateConnectionOptions
  extends Omit<SocketOptions, 'serverName' | 'alpn' | 'ca' | 'cert' | 'key' | 'minVersion' | 'maxVersion' | 'secureTransport'>,
    NodeTlsOptions {
  /** The target's host (default 'localhost'). */
  host?: string;
  /** The target's port; without it, the stream starts on `connect(port, host)`. */
  port?: number | `${number}`;
  /** 'on' (default): TLS at once; 'starttls': plaintext until `startTls()`; 'off': plaintext. */
  secureTransport?: 'on' | 'starttls' | 'off';
  /** 'postgres': PostgreSQL's SSLRequest in plaintext, 'S', then TLS; 'N' fails with code `tls`. */
  starttls?: 'postgres';
  /** `setTimeout(timeout)` at once. */
  timeout?: number;
  /** Keep the writable open after the server's end (default false, as net.Socket). */
  allowHalfOpen?: boolean;
  readableHighWaterMark?: number;
  writableHighWaterMark?: number;
}

/** What `startTls()` takes: Node's TLS options and the package's, over `createConnection()`'s. */
export type NodeStartTlsOptions = NodeTlsOptions & Pick<StartTlsOptions, 'bundledRoots' | 'handshakeTimeout' | 'keyLog' | 'resumption' | 'config'>;

/**
 * A connection through the relay (or Wisp, or a `transport`) as a stream.Duplex with
 * tls.TLSSocket's members. Emits 'connect' then 'secureConnect' once the handshake is
 * done ('connect' alone for plaintext), and 'error' with a `TlsError`.
 */
export class TLSSocket extends Duplex {
  /** An unconnected stream: `connect(port, host)` starts it. */
  constructor(options?: CreateConnectionOptions);
  /** Starts the connection if it has not started; else only adds `listener`. */
  connect(port?: number | `${number}`, host?: string, listener?: () => void): this;
  connect(port: number | `${number}`, listener: () => void): this;
  connect(options: { port?: number | `${number}`; host?: string }, listener?: () => void): this;
  /**
   * For a plaintext stream (`secureTransport: 'starttls'`): TLS on the same connection.
   * Returns the secure stream; this one carries nothing after, and is destroyed with it.
   * Throws `invalid-state` on a TLS stream, a second time, or before the connection.
   */
  startTls(options?: NodeStartTlsOptions): TLSSocket;

  /** True until 'connect'. */
  readonly connecting: boolean;
  /** True until 'connect'. */
  readonly pending: boolean;
  readonly encrypted: boolean;
  /** True once 'secureConnect' has been emitted: verification is always on. */
  readonly authorized: boolean;
  /** The protocol the server chose by ALPN, false if none. */
  readonly alpnProtocol: string | false;
  readonly servername: string | undefined;
  /** The target's host, as given (the TCP connection is the relay's). */
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly remoteFamily: 'IPv4' | 'IPv6' | undefined;
  readonly localAddress: undefined;
  readonly localPort: undefined;
  /** Plaintext bytes received. */
  readonly bytesRead: number;
  /** Plaintext bytes written (including those not yet taken by the socket). */
  readonly bytesWritten: number;
  readonly readyState: 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed';
  /** What the handshake negotiated, as the package's `opened` gives it; null before. */
  readonly handshakeInfo: SecureSocketInfo | null;

  /** The server's certificate in Node's shape, read by node:crypto from the chain it sent. */
  getPeerCertificate(detailed: true): DetailedPeerCertificate;
  getPeerCertificate(detailed?: false): PeerCertificate;
  getPeerCertificate(detailed?: boolean): PeerCertificate | DetailedPeerCertificate;
  getPeerX509Certificate(): X509Certificate | undefined;
  /** 'TLSv1.3' or 'TLSv1.2'; null before the handshake or for plaintext. */
  getProtocol(): TlsVersionName | null;
  getCipher(): CipherNameAndProtocol;
  isSessionReused(): boolean;
  getSession(): undefined;
  address(): {};
  /** Nothing to set: the TCP connection is the relay's. */
  setNoDelay(noDelay?: boolean): this;
  /** Nothing to set: the TCP connection is the relay's. */
  setKeepAlive(enable?: boolean, initialDelay?: number): this;
  /** Emits 'timeout' after `ms` without reads or writes; 0 turns it off. */
  setTimeout(ms: number, callback?: () => void): this;
  /** Lets Node.js exit while this connection (over a raw relay with `ws`) is open. */
  unref(): this;
  ref(): this;

  addListener(event: 'connect' | 'secureConnect' | 'timeout', listener: () => void): this;
  addListener(event: string | symbol, listener: (...args: any[]) => void): this;
  on(event: 'connect' | 'secureConnect' | 'timeout', listener: () => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'connect' | 'secureConnect' | 'timeout', listener: () => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
  prependListener(event: 'connect' | 'secureConnect' | 'timeout', listener: () => void): this;
  prependListener(event: string | symbol, listener: (...args: any[]) => void): this;
  prependOnceListener(event: 'connect' | 'secureConnect' | 'timeout', listener: () => void): this;
  prependOnceListener(event: string | symbol, listener: (...args: any[]) => void): this;
}

/**
 * Opens a connection as a tls.TLSSocket-shaped stream. `listener` is added to
 * 'secureConnect' ('connect' for plaintext). Throws `invalid-config` on bad options.
 */
export function createConnection(options?: CreateConnectionOptions, listener?: () => void): TLSSocket;
