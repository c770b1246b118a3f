// wasm-tls/node: the package's socket as a Node.js stream.Duplex shaped like a
// tls.TLSSocket, for libraries that take a socket (pg's `stream`, undici's `connect`,
// imapflow's `transport`, http2's `createConnection`).
//
// A Duplex over the socket's web streams: _read() takes one chunk from the readable per
// call, so Node's highWaterMark paces decryption (and the transport behind it); _write()
// calls back once the socket has taken the bytes, so Node's writable buffer paces the
// application. Written by hand rather than with Duplex.fromWeb, which knows nothing of
// 'connect'/'secureConnect', of STARTTLS, or of which error ended the connection.

import { X509Certificate, createHash } from 'node:crypto';
import net from 'node:net';
import { Duplex } from 'node:stream';
import { connect, TlsError } from './index.js';

export { TlsError } from './index.js';

// Options passed to connect() as they are.
const PASSED = [
  'relay',
  'wisp',
  'wispAuth',
  'wispLinger',
  'WebSocket',
  'webSocket',
  'webSocketStream',
  'transport',
  'handshakeTimeout',
  'receiveBufferLimit',
  'keyLog',
  'resumption',
  'trace',
  'config',
  'trustAnchors',
];

const DEFAULT_HANDSHAKE_TIMEOUT = 30000;

// PostgreSQL's SSLRequest: length 8, code 80877103.
const SSL_REQUEST = new Uint8Array([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

// rustls names TLS 1.3 suites TLS13_*; Node (OpenSSL) reports the IANA name, and for
// TLS 1.2 OpenSSL's own name as `name`.
const OPENSSL_NAMES = {
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 'ECDHE-ECDSA-AES128-GCM-SHA256',
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 'ECDHE-ECDSA-AES256-GCM-SHA384',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 'ECDHE-RSA-AES128-GCM-SHA256',
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 'ECDHE-RSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-RSA-CHACHA20-POLY1305',
};

function pemText(value, what) {
  if (typeof value === 'string') return value;
  if (ArrayBuffer.isView(value)) {
    const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    const text = bytes.toString('latin1');
    if (text.includes('-----BEGIN')) return text;
    if (what !== 'ca') throw new TlsError('invalid-config', `options.${what} must be PEM`);
    // A DER certificate, as Node's `ca` also takes.
    const b64 = bytes.toString('base64').replace(/.{64}/g, '$&\n');
    return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
  }
  throw new TlsError('invalid-config', `options.${what} must be a string or a Buffer (PEM)`);
}

function pemList(value, what) {
  if (value === undefined || value === null) return undefined;
  const list = Array.isArray(value) ? value : [value];
  return list.map((v) => (v && typeof v === 'object' && 'pem' in v ? pemText(v.pem, what) : pemText(v, what))).join('\n');
}

/** Node's ALPNProtocols (strings, Buffers, or one Buffer in wire format) as strings. */
function alpnList(value) {
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) {
    return value.map((p) => (typeof p === 'string' ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength).toString('utf8')));
  }
  if (ArrayBuffer.isView(value)) {
    const bytes = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    const out = [];
    for (let i = 0; i < bytes.length; ) {
      const n = bytes[i];
      if (n === 0 || i + 1 + n > bytes.length) throw new TlsError('invalid-config', 'options.ALPNProtocols is not in ALPN wire format');
      out.push(Buffer.from(bytes.subarray(i + 1, i + 1 + n)).toString('utf8'));
      i += 1 + n;
    }
    return out;
  }
  throw new TlsError('invalid-config', 'options.ALPNProtocols must be an array of strings or Buffers');
}

/** createConnection()'s options as connect()'s. */
function packageOptions(options) {
  if (options.rejectUnauthorized === false) {
    throw new TlsError(
      'invalid-config',
      "certificate verification is always on: rejectUnauthorized: false is not supported (pass the server's CA in `ca`)",
    );
  }
  if (options.passphrase !== undefined || options.pfx !== undefined) {
    throw new TlsError('invalid-config', 'encrypted keys (passphrase) and pfx are not supported: pass `cert` and an unencrypted `key` as PEM');
  }
  const out = {};
  for (const name of PASSED) if (options[name] !== undefined) out[name] = options[name];
  const servername = options.servername ?? options.serverName;
  if (servername) out.serverName = servername;
  const alpn = alpnList(options.ALPNProtocols ?? options.alpn);
  if (alpn) out.alpn = alpn;
  const ca = pemList(options.ca, 'ca');
  if (ca !== undefined) out.ca = ca;
  // As in Node, `ca` replaces the bundled (Mozilla) roots unless asked to add to them.
  out.bundledRoots = options.bundledRoots ?? ca === undefined;
  const cert = pemList(options.cert, 'cert');
  if (cert !== undefined) out.cert = cert;
  const key = pemList(options.key, 'key');
  if (key !== undefined) out.key = key;
  if (options.minVersion) out.minVersion = options.minVersion;
  if (options.maxVersion) out.maxVersion = options.maxVersion;
  return out;
}

function fingerprint(raw, algorithm) {
  return createHash(algorithm).update(raw).digest('hex').toUpperCase().match(/../g).join(':');
}

/** Node's getPeerCertificate() object, from DER, as node:crypto reads it. */
function legacyCertificate(der) {
  const raw = Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  let cert;
  try {
    const x509 = new X509Certificate(raw);
    cert = x509.toLegacyObject();
    if (x509.subjectAltName) cert.subjectaltname = x509.subjectAltName;
    if (x509.infoAccess) cert.infoAccess = x509.infoAccess;
  } catch {
    // Verified by the TLS core, yet unreadable here: the fields we can still give.
    cert = { raw, fingerprint: fingerprint(raw, 'sha1'), fingerprint256: fingerprint(raw, 'sha256') };
  }
  cert.raw = raw;
  return cert;
}

/**
 * A connection as a stream.Duplex with tls.TLSSocket's members: see pkg/README.md
 * ("Node.js: a net.Socket-shaped stream"). Made by createConnection().
 */
export class TLSSocket extends Duplex {
  constructor(options = {}, secureMode = 'on') {
    super({
      allowHalfOpen: options.allowHalfOpen ?? false,
      readableHighWaterMark: options.readableHighWaterMark,
      writableHighWaterMark: options.writableHighWaterMark,
    });
    this._options = options;
    this._mode = secureMode; // 'on' | 'starttls' | 'off' | 'postgres'
    this._pkg = null; // the package's socket that carries the data now
    this._writerReady = new Promise((resolve, reject) => {
      this._resolveWriter = resolve;
      this._rejectWriter = reject;
    });
    this._writerReady.catch(() => {});
    this._reader = null;
    this._readPending = false;
    this._readWanted = false;
    this._connected = false;
    this._upgraded = false;
    this._timeoutMs = 0;
    this._timer = null;
    this._refed = true;
    this._info = null;
    this.connecting = false;
    this.pending = true;
    this.encrypted = secureMode === 'on' || secureMode === 'postgres';
    this.authorized = false;
    this.alpnProtocol = false;
    this.servername = undefined;
    this.remoteAddress = undefined;
    this.remotePort = undefined;
    this.remoteFamily = undefined;
    this.localAddress = undefined;
    this.localPort = undefined;
    this.bytesRead = 0;
    this.bytesWritten = 0;
    if (options.timeout > 0) this.setTimeout(options.timeout);
  }

  /**
   * Starts the connection, if it has not started: pg calls it with the port and host of
   * its own configuration; createConnection() with a host and port already has.
   */
  connect(port, host, listener) {
    if (typeof port === 'object' && port !== null) {
      listener = typeof host === 'function' ? host : listener;
      ({ port, host } = port);
    } else if (typeof host === 'function') {
      listener = host;
      host = undefined;
    }
    if (typeof listener === 'function') this.once(this.encrypted ? 'secureConnect' : 'connect', listener);
    if (this._pkg || this.connecting || this.destroyed) return this;
    this._start(host ?? this._options.host ?? 'localhost', port ?? this._options.port);
    return this;
  }

  _start(host, port) {
    const numericPort = Number(port);
    const options = packageOptions(this._options);
    this.connecting = true;
    this.remoteAddress = host;
    this.remotePort = numericPort;
    this.remoteFamily = net.isIP(host) === 6 ? 'IPv6' : net.isIP(host) === 4 ? 'IPv4' : undefined;
    this.servername = options.serverName || host;
    const target = { hostname: host, port: numericPort };
    if (this._mode === 'postgres') {
      const plain = connect(target, { ...options, secureTransport: 'starttls' });
      this._pkg = plain;
      this._sslRequest(plain, options).then(
        (secure) => this._attach(secure),
        (err) => {
          plain.close().catch(() => {});
          this._rejectWriter(err);
          this.destroy(err);
        },
      );
      return;
    }
    const secureTransport = this._mode === 'on' ? 'on' : this._mode;
    this._attach(connect(target, { ...options, secureTransport }));
  }

  /** PostgreSQL's STARTTLS: SSLRequest, then 'S' and a TLS handshake, or 'N' and a refusal. */
  async _sslRequest(plain, options) {
    const limit = options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT;
    let timer;
    const answer = (async () => {
      await plain.opened;
      const writer = plain.writable.getWriter();
      await writer.write(SSL_REQUEST);
      writer.releaseLock();
      const reader = plain.readable.getReader();
      let chunk;
      do {
        const { value, done } = await reader.read();
        if (done) {
          throw new TlsError('unexpected-eof', `the PostgreSQL server at ${this.remoteAddress}:${this.remotePort} closed the connection instead of answering the SSLRequest`);
        }
        chunk = value;
      } while (chunk.length === 0);
      reader.releaseLock();
      return chunk;
    })();
    const timeout = new Promise((_, reject) => {
      if (limit > 0) {
        timer = setTimeout(
          () => reject(new TlsError('timeout', `the PostgreSQL server at ${this.remoteAddress}:${this.remotePort} did not answer the SSLRequest within ${limit} ms`)),
          limit,
        );
      }
    });
    let chunk;
    try {
      chunk = await Promise.race([answer, timeout]);
    } finally {
      clearTimeout(timer);
    }
    const where = `the PostgreSQL server at ${this.remoteAddress}:${this.remotePort}`;
    if (chunk[0] === 0x4e /* N */) {
      throw new TlsError('tls', `${where} does not accept TLS: it answered 'N' to the SSLRequest (ssl is off there)`);
    }
    if (chunk[0] !== 0x53 /* S */) {
      throw new TlsError('tls', `${where} answered the SSLRequest with ${JSON.stringify(String.fromCharCode(chunk[0]))}, not 'S' or 'N': not a PostgreSQL server, or one that failed`);
    }
    if (chunk.length > 1) {
      // Bytes before the handshake were not sent by a server that follows the protocol.
      throw new TlsError('protocol-violation', `${where} sent data after 'S' and before the TLS handshake`);
    }
    return plain.startTls();
  }

  /** Takes over a package socket: its events become this stream's. */
  _attach(pkg) {
    if (this.destroyed) {
      pkg.close().catch(() => {});
      return;
    }
    this._pkg = pkg;
    this._applyRef();
    this._reader = pkg.readable.getReader();
    const writer = pkg.writable.getWriter();
    this._resolveWriter(writer);
    pkg.opened.then(
      (info) => this._onOpen(pkg, info),
      (err) => {
        if (this._pkg === pkg) this.destroy(err);
      },
    );
    pkg.closed.catch((err) => {
      if (this._pkg !== pkg || this.destroyed) return;
      this._error = err;
      // A pending read hears of it after the data before it; else it ends the stream now,
      // as a net.Socket's error does.
      if (!this._readPending) this.destroy(err);
    });
  }

  _onOpen(pkg, info) {
    if (this._pkg !== pkg || this.destroyed) return;
    this.connecting = false;
    this.pending = false;
    this._connected = true;
    this._applyRef();
    if (info.secure) {
      this._info = info;
      this.encrypted = true;
      this.authorized = true;
      this.alpnProtocol = info.alpn || false;
      this._touch();
      this.emit('connect');
      this.emit('secureConnect');
    } else {
      this._touch();
      this.emit('connect');
    }
    if (this._readWanted) this._read();
  }

  // ---- reading ----

  _read() {
    // No data before 'connect' (and 'secureConnect'): a server's first bytes can come
    // with the end of the handshake.
    if (!this._connected) {
      this._readWanted = true;
      return;
    }
    this._readWanted = false;
    if (this._readPending) return;
    this._readPending = true;
    const reader = this._reader;
    reader.read().then(
      ({ value, done }) => {
        this._readPending = false;
        if (this.destroyed || reader !== this._reader) return;
        if (done) {
          // startTls() ends the plaintext socket's stream; the connection goes on.
          if (!this._upgraded) this.push(null);
          return;
        }
        this._touch();
        this.bytesRead += value.length;
        if (value.length === 0) {
          this._read();
          return;
        }
        const more = this.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
        if (!more && this._error) this.destroy(this._error);
      },
      (err) => {
        this._readPending = false;
        if (reader === this._reader) this.destroy(this._error || err);
      },
    );
  }

  // ---- writing ----

  _write(chunk, encoding, callback) {
    this._send(chunk, callback);
  }

  _writev(chunks, callback) {
    this._send(chunks.length === 1 ? chunks[0].chunk : Buffer.concat(chunks.map((c) => c.chunk)), callback);
  }

  _send(bytes, callback) {
    if (!this._pkg && !this.connecting) {
      callback(new TlsError('invalid-state', 'write before connect(): the socket has no target'));
      return;
    }
    this.bytesWritten += bytes.length;
    this._touch();
    this._writerReady
      .then((writer) => writer.write(bytes))
      .then(
        () => {
          this._touch();
          callback();
        },
        (err) => callback(this._error || err),
      );
  }

  _final(callback) {
    // close_notify after what was written; the readable stays open for the reply.
    this._writerReady.then((writer) => writer.close()).then(
      () => callback(),
      (err) => callback(this._error || err),
    );
  }

  _destroy(err, callback) {
    clearTimeout(this._timer);
    this._timer = null;
    this.connecting = false;
    const pkg = this._pkg;
    // As Node's destroy(): no close_notify, and no waiting for writes in flight.
    if (pkg && !this._upgraded) pkg.abort(err || 'the stream was destroyed');
    this._rejectWriter(err || new TlsError('invalid-state', 'the socket was destroyed'));
    callback(err);
  }

  // ---- STARTTLS ----

  /**
   * For a plaintext socket (secureTransport 'starttls'): starts TLS on the same
   * connection and returns the secure socket, which emits 'connect' and 'secureConnect'
   * once the handshake is done. This socket carries nothing after; it is destroyed with
   * the secure one.
   */
  startTls(options = {}) {
    if (this.encrypted || this._upgraded || !this._pkg) {
      throw new TlsError('invalid-state', 'startTls() is for a connected plaintext socket, once');
    }
    const merged = { ...this._options, ...options };
    const tlsOptions = packageOptions(merged);
    const pkg = this._pkg.startTls(tlsOptions);
    this._upgraded = true;
    // The connection's activity is the secure stream's now.
    clearTimeout(this._timer);
    this._timer = null;
    const secure = new TLSSocket(merged, 'on');
    secure.connecting = true;
    secure.remoteAddress = this.remoteAddress;
    secure.remotePort = this.remotePort;
    secure.remoteFamily = this.remoteFamily;
    secure.servername = tlsOptions.serverName || this.servername;
    secure._refed = this._refed;
    secure._attach(pkg);
    secure.once('close', () => this.destroy());
    return secure;
  }

  // ---- tls.TLSSocket's queries ----

  getPeerCertificate(detailed = false) {
    if (this.destroyed) return null;
    const chain = this._info ? this._info.peerCertificates : [];
    if (chain.length === 0) return {};
    const certs = (detailed ? chain : chain.slice(0, 1)).map(legacyCertificate);
    if (detailed) {
      for (let i = 0; i < certs.length - 1; i++) certs[i].issuerCertificate = certs[i + 1];
      const last = certs[certs.length - 1];
      if (last.subject && last.issuer && JSON.stringify(last.subject) === JSON.stringify(last.issuer)) last.issuerCertificate = last;
    }
    return certs[0];
  }

  getPeerX509Certificate() {
    const der = this._info && this._info.peerCertificates[0];
    return der ? new X509Certificate(Buffer.from(der.buffer, der.byteOffset, der.byteLength)) : undefined;
  }

  getProtocol() {
    return this._info ? this._info.protocol : null;
  }

  getCipher() {
    if (!this._info) return undefined;
    const standardName = this._info.cipherSuite.replace(/^TLS13_/, 'TLS_');
    return { name: OPENSSL_NAMES[standardName] || standardName, standardName, version: this._info.protocol };
  }

  isSessionReused() {
    return Boolean(this._info && this._info.resumed);
  }

  getSession() {
    return undefined;
  }

  /** What the handshake negotiated, as the package's `opened` gives it. */
  get handshakeInfo() {
    return this._info;
  }

  get readyState() {
    if (this.connecting) return 'opening';
    if (this.destroyed) return 'closed';
    if (this.readable && this.writable) return 'open';
    if (this.readable) return 'readOnly';
    if (this.writable) return 'writeOnly';
    return 'closed';
  }

  address() {
    return {};
  }

  // ---- net.Socket's knobs ----

  // The TCP connection is the relay's (or the transport's): these have nothing to set.
  setNoDelay() {
    return this;
  }

  setKeepAlive() {
    return this;
  }

  /** Emits 'timeout' after `ms` without reads or writes, as net.Socket does; 0 stops it. */
  setTimeout(ms, callback) {
    this._timeoutMs = ms;
    if (callback) {
      if (ms === 0) this.removeListener('timeout', callback);
      else this.once('timeout', callback);
    }
    clearTimeout(this._timer);
    this._timer = null;
    if (ms > 0 && !this.destroyed) {
      this._timer = setTimeout(() => this.emit('timeout'), ms);
      if (!this._refed) this._timer.unref();
    }
    return this;
  }

  _touch() {
    if (this._timer) this._timer.refresh();
  }

  /**
   * Lets Node.js exit while this connection is open: the raw relay's WebSocket, or a
   * shared Wisp WebSocket once none of its streams wants it; a caller's `transport`
   * keeps its own reference.
   */
  unref() {
    this._refed = false;
    this._applyRef();
    return this;
  }

  ref() {
    this._refed = true;
    this._applyRef();
    return this;
  }

  _applyRef() {
    if (this._timer) {
      if (this._refed) this._timer.ref();
      else this._timer.unref();
    }
    if (!this._pkg) return;
    if (this._refed) this._pkg.ref();
    else this._pkg.unref();
  }
}

/**
 * Opens a connection as a tls.TLSSocket-shaped Duplex: TLS at once, or after
 * PostgreSQL's SSLRequest (`starttls: 'postgres'`), or plaintext until startTls()
 * (`secureTransport: 'starttls'`). `listener` is added to 'secureConnect' (to 'connect'
 * for plaintext). Without `port`, it starts on connect(port, host) (as pg does).
 */
export function createConnection(options = {}, listener) {
  const starttls = options.starttls;
  if (starttls !== undefined && starttls !== 'postgres') {
    throw new TlsError('invalid-config', `options.starttls must be 'postgres', not ${JSON.stringify(starttls)}`);
  }
  const mode = starttls === 'postgres' ? 'postgres' : options.secureTransport || 'on';
  if (!['on', 'starttls', 'off', 'postgres'].includes(mode)) {
    throw new TlsError('invalid-config', `secureTransport must be 'on', 'starttls' or 'off', not '${mode}'`);
  }
  const socket = new TLSSocket(options, mode);
  if (typeof listener === 'function') socket.once(socket.encrypted ? 'secureConnect' : 'connect', listener);
  if (options.port !== undefined) socket.connect(options.port, options.host);
  return socket;
}
