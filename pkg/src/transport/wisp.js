// Wisp (MercuryWorkshop's protocol): many TCP streams over one shared WebSocket. The wire
// format is ../wisp/wire.js; this file is the client's multiplexer: a WispConnection per
// endpoint (and credentials), and a WispStream per connection, with the transport
// interface described in websocket.js.
//
// Flow control, both ways:
// - to the server: a stream sends no more DATA packets than the server's credit (its
//   CONTINUE packets) allows; the rest waits in the stream's queue;
// - from the server: where the server offers the client-credit extension, each stream
//   grants the server credit as its reader keeps up, and withholds it while paused, so
//   the server stops reading that stream's target alone. Without it, pausing a stream
//   pauses the shared WebSocket where the WebSocket can (Node's `ws`), and otherwise
//   the data keeps coming (canPause is false).

import { TlsError } from '../errors.js';
import { formatTarget } from '../target.js';
import * as wire from '../wisp/wire.js';
import { openChannel } from './channel.js';

const SUBPROTOCOL = 'wisp-v2'; // what @mercuryworkshop/wisp-js offers for v2
const MAX_PAYLOAD = 64 * 1024; // per DATA packet: well under servers' message limits
const QUEUE_LIMIT = 16 << 20; // bytes one stream may queue while it has no credit
const HANDSHAKE_MS = 10000;
const IDLE_MS = 5000; // a WebSocket with no streams closes after this long (wispLinger)
const CLOSE_LINGER_MS = 10000; // a closing stream waits this long for credit
/** Packets of credit each stream grants the server (client-credit extension). */
export const RECEIVE_WINDOW = 32;

/** Reasons that say the server tried and failed to reach the target (not its policy). */
const UNREACHABLE_REASONS = new Set([0x42, 0x43, 0x44]);

function hexByte(n) {
  return `0x${n.toString(16).padStart(2, '0')}`;
}

/** The TlsError for a CLOSE reason on a stream (or on stream 0: the connection). */
function closeError(reason, target) {
  const words = wire.CLOSE_REASON_TEXT[reason] || 'unknown reason';
  const what = target ? `the stream to ${target}` : 'the connection';
  const err = UNREACHABLE_REASONS.has(reason)
    ? new TlsError('target-unreachable', `the Wisp server could not reach ${target || 'the target'}: ${words} (${hexByte(reason)})`)
    : wire.REFUSAL_REASONS.has(reason)
      ? new TlsError('relay-refused', `the Wisp server refused ${what}: ${words} (${hexByte(reason)})`)
      : new TlsError('transport-closed', `the Wisp server closed ${what}: ${words} (${hexByte(reason)})`);
  err.wispReason = reason;
  return err;
}

function endpointUrl(url) {
  let parsed;
  try {
    parsed = new URL(String(url));
  } catch {
    parsed = null;
  }
  if (!parsed || !/^wss?:$/.test(parsed.protocol)) {
    throw new TlsError('invalid-config', `options.wisp must be a ws:// or wss:// URL, not "${url}"`);
  }
  // Wisp endpoints end with a slash; without it the path would name a raw relay's target.
  if (!parsed.pathname.endsWith('/')) parsed.pathname += '/';
  return parsed.href;
}

function checkAuth(auth) {
  if (auth === undefined || auth === null) return null;
  const { username, password } = auth;
  if (typeof username !== 'string' || typeof password !== 'string') {
    throw new TlsError('invalid-config', 'options.wispAuth must be { username, password }, both strings');
  }
  try {
    return wire.passwordExtension(username, password);
  } catch (err) {
    throw new TlsError('invalid-config', `options.wispAuth: ${err.message}`);
  }
}

// Shared connections: WebSocket constructor (or none) → endpoint and credentials → connection.
const connections = new Map();

/** One WebSocket to a Wisp server and the streams it carries. */
export class WispConnection {
  static get(options) {
    const url = endpointUrl(options.wisp);
    const auth = checkAuth(options.wispAuth);
    const key = auth ? `${url}\n${options.wispAuth.username}\n${options.wispAuth.password}` : url;
    const ctor = options.WebSocket || null;
    let byKey = connections.get(ctor);
    if (!byKey) {
      byKey = new Map();
      connections.set(ctor, byKey);
    }
    let conn = byKey.get(key);
    if (!conn || conn.closed) {
      conn = new WispConnection(options, url, auth);
      conn._forget = () => {
        if (byKey.get(key) === conn) byKey.delete(key);
      };
      byKey.set(key, conn);
    }
    return conn;
  }

  constructor(options, url, auth) {
    this.url = url;
    this.auth = auth;
    this.options = options;
    this.streams = new Map(); // id → WispStream, CONNECT sent
    this.pending = []; // WispStreams waiting for the handshake
    this.nextId = 1;
    this.ready = false;
    this.closed = false;
    this.version = 1;
    this.credit = 0; // each new stream's initial credit, from CONTINUE on stream 0
    this.clientCredit = false; // the client-credit extension is in use
    this._pausedStreams = 0;
    this._infoSent = false;
    this._forget = () => {};
    this._handshakeTimer = setTimeout(() => {
      if (!this.ready) {
        this._fail(new TlsError('timeout', `the Wisp server did not complete its handshake within ${HANDSHAKE_MS} ms`));
      }
    }, HANDSHAKE_MS);
    this._open(true);
  }

  _open(offerV2) {
    // The browser's WebSocket, not WebSocketStream: Chromium 156's renderer crashed when
    // one Wisp WebSocketStream dropped while another carried a stream. Backpressure over
    // Wisp comes from the client-credit extension instead.
    const options = { ...this.options, webSocketStream: false };
    const channel = openChannel(this.url, offerV2 ? [SUBPROTOCOL] : [], options);
    this.channel = channel;
    channel.onmessage = (bytes) => {
      if (this.channel === channel) this._onPacket(bytes);
    };
    channel.onclose = (event) => {
      if (this.channel !== channel || this.closed) return;
      if (!event.opened && offerV2) {
        // Some clients (Node's "ws") fail the upgrade when a server ignores the
        // subprotocol: try once more without it, as Wisp v1 needs none.
        this._open(false);
        return;
      }
      this._fail(this._closeError(event));
    };
  }

  _closeError({ code, reason, opened, failure }) {
    if (failure) return failure;
    if (code === 1008) {
      return new TlsError('relay-refused', `the Wisp server refused the connection: ${reason || 'policy violation'}`);
    }
    if (!opened) {
      return new TlsError('transport-closed', `the WebSocket to the Wisp server at ${this.url} could not be opened (unreachable, or not a WebSocket endpoint)`);
    }
    return new TlsError('transport-closed', `the WebSocket to the Wisp server closed (${code}${reason ? ': ' + reason : ''})`);
  }

  /** Registers a stream; CONNECT goes out now or once the handshake is done. */
  add(stream) {
    clearTimeout(this._idleTimer);
    this._idleTimer = null;
    if (this.channel.ref) this.channel.ref();
    let id = this.nextId;
    while (id === 0 || this.streams.has(id) || this.pending.some((s) => s.id === id)) {
      id = (id + 1) >>> 0;
    }
    this.nextId = (id + 1) >>> 0;
    stream.id = id;
    if (this.ready) this._sendConnect(stream);
    else this.pending.push(stream);
  }

  _sendConnect(stream) {
    this.streams.set(stream.id, stream);
    this.channel.send(wire.encodeConnect(stream.id, stream.host, stream.port));
    stream._connected(this.credit);
  }

  send(packet) {
    if (!this.closed) this.channel.send(packet);
  }

  get bufferedAmount() {
    return this.channel.bufferedAmount;
  }

  /** A stream is done with: forget it, and close the WebSocket once idle. */
  remove(stream) {
    if (this.streams.get(stream.id) === stream) this.streams.delete(stream.id);
    const i = this.pending.indexOf(stream);
    if (i >= 0) this.pending.splice(i, 1);
    if (stream._pausesChannel) this._resumeChannel(stream);
    this._refCheck();
    this._idleCheck();
  }

  /** In Node.js the shared WebSocket keeps the process alive while any stream wants it. */
  _refCheck() {
    const wanted = this.pending.some((s) => !s._unrefd) || [...this.streams.values()].some((s) => !s._unrefd);
    if (wanted && this.channel.ref) this.channel.ref();
    else if (!wanted && this.channel.unref) this.channel.unref();
  }

  /** Without the client-credit extension a stream can only pause the whole WebSocket. */
  _pauseChannel(stream) {
    if (stream._pausesChannel) return;
    stream._pausesChannel = true;
    if (this._pausedStreams++ === 0) this.channel.pause();
  }

  _resumeChannel(stream) {
    if (!stream._pausesChannel) return;
    stream._pausesChannel = false;
    if (--this._pausedStreams === 0) this.channel.resume();
  }

  _idleCheck() {
    if (this.streams.size === 0 && this.pending.length === 0 && !this.closed && !this._idleTimer) {
      const linger = this.options.wispLinger ?? IDLE_MS;
      if (linger <= 0) {
        this.close();
        return;
      }
      this._idleTimer = setTimeout(() => {
        this._idleTimer = null;
        if (this.streams.size === 0 && this.pending.length === 0) this.close();
      }, linger);
      // In Node.js an idle WebSocket, and its timer, do not keep the process alive.
      if (this._idleTimer.unref) this._idleTimer.unref();
      if (this.channel.unref) this.channel.unref();
    }
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this._forget();
    clearTimeout(this._handshakeTimer);
    clearTimeout(this._idleTimer);
    this.channel.close(1000, '');
  }

  /** Answers the server's INFO with the client's extensions. */
  _onInfo(payload) {
    const info = wire.decodeInfo(payload);
    this.version = Math.max(this.version, info.major);
    let passwordOffered = false;
    let passwordRequired = false;
    let creditOffered = false;
    for (const ext of info.extensions) {
      if (ext.id === wire.EXT_PASSWORD) {
        passwordOffered = true;
        passwordRequired = wire.passwordRequired(ext.body);
      } else if (ext.id === wire.EXT_CLIENT_CREDIT) {
        creditOffered = true;
      }
    }
    if (passwordRequired && !this.auth) {
      this._fail(new TlsError('relay-refused', 'the Wisp server requires a username and password: pass options.wispAuth'));
      return;
    }
    if (this._infoSent) return;
    this._infoSent = true;
    const extensions = [];
    // Credentials go only to a server that asked for them.
    if (passwordOffered && this.auth) extensions.push(this.auth);
    if (creditOffered) {
      extensions.push(wire.clientCreditExtension(RECEIVE_WINDOW));
      this.clientCredit = true;
    }
    this.send(wire.encodeInfo({ major: 2, minor: 0, extensions }));
  }

  _onPacket(bytes) {
    let packet;
    try {
      packet = wire.decodePacket(bytes);
    } catch (err) {
      this._fail(new TlsError('transport-error', `the Wisp server sent a malformed packet: ${err.message}`));
      return;
    }
    const { type, streamId, payload } = packet;
    try {
      if (streamId === 0) this._onControl(type, payload);
      else this._onStreamPacket(type, streamId, payload);
    } catch (err) {
      if (err instanceof wire.WireError) {
        this._fail(new TlsError('transport-error', `the Wisp server sent a malformed packet: ${err.message}`));
      } else {
        throw err;
      }
    }
  }

  _onControl(type, payload) {
    if (type === wire.PACKET.INFO) {
      this._onInfo(payload);
    } else if (type === wire.PACKET.CONTINUE && !this.ready) {
      this.credit = wire.decodeContinue(payload);
      this.ready = true;
      clearTimeout(this._handshakeTimer);
      const pending = this.pending;
      this.pending = [];
      for (const s of pending) this._sendConnect(s);
      this._idleCheck();
    } else if (type === wire.PACKET.CLOSE) {
      this._fail(closeError(wire.decodeClose(payload), null));
    }
  }

  _onStreamPacket(type, id, payload) {
    const stream = this.streams.get(id);
    if (!stream) return; // closed on our side; packets in flight are dropped
    if (type === wire.PACKET.DATA) {
      stream._onData(payload);
    } else if (type === wire.PACKET.CONTINUE) {
      stream._onContinue(wire.decodeContinue(payload));
    } else if (type === wire.PACKET.CLOSE) {
      this.streams.delete(id);
      stream._onRemoteClose(wire.decodeClose(payload));
      this.remove(stream);
    }
  }

  /** The WebSocket is gone (or unusable): every stream on it fails. */
  _fail(error) {
    if (this.closed) return;
    this.closed = true;
    this.failure = error;
    this._forget();
    clearTimeout(this._handshakeTimer);
    clearTimeout(this._idleTimer);
    const all = [...this.pending, ...this.streams.values()];
    this.pending = [];
    this.streams.clear();
    this.channel.close(1000, '');
    for (const s of all) s._onLost(error);
  }
}

/** Closes every shared Wisp WebSocket now; their streams fail with `aborted`. */
export function closeAllWisp() {
  for (const byKey of connections.values()) {
    for (const conn of byKey.values()) conn._fail(new TlsError('aborted', 'the Wisp connection was closed by closeAll()'));
  }
}

/** One Wisp stream: a transport (see websocket.js for the interface). */
export class WispStream {
  constructor(options, host, port) {
    this.onopen = null;
    this.ondata = null;
    this.onclose = null;
    this.open = false;
    this.closed = false;
    this.host = host;
    this.port = port;
    this._queue = [];
    this._queuedBytes = 0;
    this._credit = 0;
    this._creditWaiters = [];
    this._paused = false;
    this._owed = 0; // packets received whose credit is not yet granted back
    this._conn = WispConnection.get(options);
    this.describe = `${formatTarget(host, port)} over the Wisp server at ${this._conn.url}`;
    this._conn.add(this);
  }

  get _target() {
    return formatTarget(this.host, this.port);
  }

  get canPause() {
    return this._conn.clientCredit || this._conn.channel.canPause;
  }

  /** Bytes waiting for credit here, plus the shared WebSocket's send queue. */
  get bufferedAmount() {
    return this._queuedBytes + this._conn.bufferedAmount;
  }

  _connected(credit) {
    this._credit = credit;
    this.open = true;
    // Bytes written before the CONNECT went out follow it now.
    this._flushQueue();
    if (this.onopen) this.onopen();
  }

  send(bytes) {
    if (this.closed || this._closing) return;
    for (let off = 0; off < bytes.length; off += MAX_PAYLOAD) {
      const part = bytes.subarray(off, off + MAX_PAYLOAD);
      this._queue.push(part);
      this._queuedBytes += part.length;
    }
    if (this._queuedBytes > QUEUE_LIMIT) {
      const error = new TlsError('send-overflow', `more than ${QUEUE_LIMIT} bytes queued while the Wisp server granted no credit`);
      // The stream is given up: tell the server (if it knows the stream) and forget it,
      // or it would stay open there and in this connection's table.
      if (this.open) this._conn.send(wire.encodeClose(this.id, 0x01));
      this._onLost(error);
      this._conn.remove(this);
      return;
    }
    this._flushQueue();
  }

  /** Sends queued DATA while there is credit; one credit is one packet. */
  _flushQueue() {
    if (!this.open || this.closed) return;
    while (this._queue.length > 0 && this._credit > 0) {
      const part = this._queue.shift();
      this._queuedBytes -= part.length;
      this._credit--;
      this._conn.send(wire.encodeData(this.id, part));
    }
    if (this._closing && this._queue.length === 0) this._finishClose();
    this._wakeCredit();
  }

  _onContinue(credit) {
    this._credit = credit;
    this._flushQueue();
  }

  _onData(payload) {
    if (this._conn.clientCredit) {
      this._owed++;
      if (!this._paused && this._owed >= RECEIVE_WINDOW / 2) this._grant();
    }
    if (this.ondata) this.ondata(payload);
  }

  _grant() {
    if (this._owed === 0 || this.closed) return;
    this._conn.send(wire.encodeContinue(this.id, this._owed));
    this._owed = 0;
  }

  ref() {
    this._unrefd = false;
    this._conn._refCheck();
  }

  unref() {
    this._unrefd = true;
    this._conn._refCheck();
  }

  pause() {
    if (this._paused) return;
    this._paused = true;
    if (!this._conn.clientCredit) this._conn._pauseChannel(this);
  }

  resume() {
    if (!this._paused) return;
    this._paused = false;
    if (this._conn.clientCredit) this._grant();
    else this._conn._resumeChannel(this);
  }

  /** Resolves once bufferedAmount is at most `limit`, or the stream has ended. */
  async drained(limit) {
    while (!this.closed && this.bufferedAmount > limit) {
      if (this._queuedBytes > 0 && this._credit === 0) {
        await new Promise((resolve) => this._creditWaiters.push(resolve));
      } else {
        await this._conn.channel.drained(Math.max(0, limit - this._queuedBytes));
        if (this._conn.closed) return;
      }
    }
  }

  _wakeCredit() {
    const waiters = this._creditWaiters;
    this._creditWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** The server closed the stream: 0x02 is an orderly end, anything else an error. */
  _onRemoteClose(reason) {
    if (this.closed) return;
    const error = reason === 0x02 ? null : closeError(reason, this._target);
    this._end();
    if (this.onclose) this.onclose(error);
  }

  /** The WebSocket under the stream is gone: whatever was in flight is lost. */
  _onLost(error) {
    if (this.closed) return;
    this._end();
    if (this.onclose) this.onclose(error);
  }

  _end() {
    this.closed = true;
    this._queue = [];
    this._queuedBytes = 0;
    clearTimeout(this._lingerTimer);
    if (this._pausesChannel) this._conn._resumeChannel(this);
    this._wakeCredit();
  }

  /** Closes the stream once what was written has gone out (as a WebSocket's close does). */
  close() {
    if (this.closed || this._closing) return;
    this._closing = true;
    if (!this.open) {
      // CONNECT never went out: nothing to tell the server.
      this._end();
      this._conn.remove(this);
      return;
    }
    if (this._queue.length === 0) {
      this._finishClose();
      return;
    }
    this._lingerTimer = setTimeout(() => this._finishClose(), CLOSE_LINGER_MS);
  }

  _finishClose() {
    if (this.closed) return;
    this._conn.send(wire.encodeClose(this.id, 0x02));
    this._end();
    this._conn.remove(this);
  }
}
