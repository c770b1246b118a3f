// Type declarations for wasm-tls/http: fetch() and WebSocket over the package's TLS
// sockets. They use the platform's Request, Response, Headers, Blob and EventTarget
// (lib "dom", or Node.js 20+'s globals).

import type { InitInput, SocketOptions, TlsError } from './index.js';

export { TlsError } from './index.js';

/** Options of `createClient()`: the socket's, less those that name one connection. */
export interface HttpClientOptions extends Omit<SocketOptions, 'alpn' | 'secureTransport' | 'webSocket' | 'transport' | 'config'> {
  /**
   * Byte streams to the target instead of a relay: a function of the host and port that
   * returns `{ readable, writable }` (or a promise of them).
   */
  transport?: (host: string, port: number) => { readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> } | Promise<{ readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> }>;
  /**
   * The name every server's certificate is verified against (default: each URL's host),
   * for a server reached by its IP address whose certificate names it otherwise.
   */
  serverName?: string;
  /** HTTP/1.1 connections kept per origin, busy or idle (default 6). */
  maxConnectionsPerOrigin?: number;
  /** Milliseconds an unused connection is kept for the next request (default 30000). */
  idleTimeout?: number;
}

/** A `Response` as fetch() returns it, with the protocol the server spoke. */
export interface HttpResponse extends Response {
  /** `HTTP/2`, `HTTP/1.1` or `HTTP/1.0`. */
  readonly httpVersion: string;
}

/** The browser's WebSocket interface, over the client's connections. */
export interface HttpWebSocket extends EventTarget {
  readonly url: string;
  /** The subprotocol the server chose ('' if none). */
  readonly protocol: string;
  readonly extensions: string;
  readonly readyState: 0 | 1 | 2 | 3;
  /** Bytes passed to send() and not yet handed to the TLS connection. */
  readonly bufferedAmount: number;
  binaryType: 'blob' | 'arraybuffer';
  /** Set after an 'error' event: what failed, with a stable code. */
  readonly error?: TlsError;
  onopen: ((event: Event) => unknown) | null;
  onmessage: ((event: MessageEvent) => unknown) | null;
  onerror: ((event: Event) => unknown) | null;
  onclose: ((event: Event & { code: number; reason: string; wasClean: boolean }) => unknown) | null;
  send(data: string | ArrayBuffer | ArrayBufferView | Blob): void;
  /** Sends a ping (browsers' WebSocket has no such method; servers' pings are answered on their own). */
  ping(data?: Uint8Array): void;
  close(code?: number, reason?: string): void;
  readonly CONNECTING: 0;
  readonly OPEN: 1;
  readonly CLOSING: 2;
  readonly CLOSED: 3;
}

export interface HttpWebSocketConstructor {
  new (url: string | URL, protocols?: string | string[]): HttpWebSocket;
  readonly CONNECTING: 0;
  readonly OPEN: 1;
  readonly CLOSING: 2;
  readonly CLOSED: 3;
}

export interface HttpClient {
  /**
   * The Fetch standard's fetch(): https: (and http:) URLs or a Request; bodies as string,
   * bytes, Blob, FormData, URLSearchParams or a ReadableStream; `signal`; `redirect`
   * 'follow' (up to 20), 'manual' (the 3xx response itself) or 'error'. Rejects with a
   * TlsError (the socket's codes, `http-protocol`, `too-many-redirects`), or with the
   * signal's reason once aborted.
   */
  fetch(input: string | URL | Request, init?: RequestInit): Promise<HttpResponse>;
  /** `new client.WebSocket(url, protocols)`: ws: and wss: URLs. */
  readonly WebSocket: HttpWebSocketConstructor;
  webSocket(url: string | URL, protocols?: string | string[]): HttpWebSocket;
  /** Closes every pooled connection; requests in flight fail with `aborted`. */
  close(): void;
}

/** An HTTP client over the package's sockets. Throws `invalid-config` without a relay. */
export function createClient(options: HttpClientOptions): HttpClient;

/**
 * Loads the HTTP module (`wasm_tls_http_bg.wasm`) once; fetch() does this on its own.
 * Pass the module where the default location does not suit your bundler.
 */
export function initHttp(module?: InitInput | Promise<InitInput>): Promise<void>;
