// The transfers of the data-path benchmark, the same in the page and in Node.js: the
// package (connect()) and the ceilings (the same bytes without TLS, straight over a
// WebSocket, a WebSocketStream or a Wisp stream through the same relay). Every transfer
// is timed from the request's first byte sent to the last byte of the response, so the
// connection's opening is not in the rate; it is timed apart (openMs, ttfbMs).

const encoder = new TextEncoder();
const now = () => performance.now();

export const PIECE = 64 * 1024; // a ceiling's message: one Wisp DATA packet's payload
const WRITE_CHUNK = 1 << 20; // what the application hands the package per write()
const SEND_HIGH_WATER = 8 << 20; // a ceiling's WebSocket send queue before it waits

export const getRequest = (n) => encoder.encode(`GET /bytes/${n} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
export const postHead = (n) =>
  encoder.encode(`POST /sink HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\nContent-Length: ${n}\r\nConnection: close\r\n\r\n`);

/** A WebSocketStream message as bytes, without a copy. */
const bytesOf = (v) => (typeof v === 'string' ? encoder.encode(v) : ArrayBuffer.isView(v) ? v : new Uint8Array(v));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** An HTTP response counted as it arrives: the head, then the body's length. */
export class Response {
  constructor() {
    this.total = 0;
    this.headLength = -1;
    this.prefix = '';
    this.firstAt = null;
    this.doneAt = null;
    this.want = null; // body length from Content-Length
    this.text = '';
  }

  push(bytes) {
    if (this.firstAt === null) this.firstAt = now();
    this.total += bytes.length;
    if (this.headLength < 0 || this.total < 4096) {
      let s = '';
      const take = Math.min(bytes.length, 4096);
      for (let i = 0; i < take; i++) s += String.fromCharCode(bytes[i]);
      this.prefix += s;
      const end = this.prefix.indexOf('\r\n\r\n');
      if (this.headLength < 0 && end >= 0) {
        this.headLength = end + 4;
        const m = /\r\ncontent-length:\s*(\d+)/i.exec(this.prefix.slice(0, end));
        this.want = m ? Number(m[1]) : null;
      }
      if (this.headLength >= 0) this.text = this.prefix.slice(this.headLength);
    }
    if (this.complete && this.doneAt === null) this.doneAt = now();
  }

  get body() {
    return this.headLength < 0 ? 0 : this.total - this.headLength;
  }

  get complete() {
    return this.headLength >= 0 && this.want !== null && this.body >= this.want;
  }
}

/** The result of one transfer. `start` is when the request's first byte went out. */
export function result(kind, n, r, start, end, extra) {
  const seconds = (end - start) / 1000;
  const ok = kind === 'download' ? r.body === n : Number.parseInt(r.text, 10) === n;
  return {
    ok,
    bytes: n,
    seconds,
    mbps: ok ? n / seconds / 1e6 : 0,
    ttfbMs: r.firstAt === null ? null : r.firstAt - start,
    ...(ok ? {} : { error: kind === 'download' ? `got ${r.body} of ${n} body bytes` : `the sink answered "${r.text.trim()}" for ${n}` }),
    ...extra,
  };
}

// ---- the package ----

/**
 * Downloads (GET /bytes/N) or uploads (POST /sink, N bytes in 1 MiB writes) through the
 * package's connect(). `options` as connect()'s.
 */
export async function pkg(wasmTls, target, options, kind, n) {
  const t0 = now();
  const socket = wasmTls.connect(target, options);
  let info;
  try {
    info = await socket.opened;
  } catch (err) {
    return { ok: false, error: `${err.code || ''} ${err.message}` };
  }
  const openMs = now() - t0;
  const writer = socket.writable.getWriter();
  const reader = socket.readable.getReader();
  const r = new Response();
  const start = now();
  let readsBy = 0;
  let closeError = null;
  try {
    if (kind === 'download') {
      await writer.write(getRequest(n));
    } else {
      await writer.write(postHead(n));
      const chunk = new Uint8Array(WRITE_CHUNK).fill(0x78);
      for (let off = 0; off < n; off += chunk.length) {
        await writer.write(off + chunk.length <= n ? chunk : chunk.subarray(0, n - off));
      }
    }
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      readsBy++;
      r.push(value);
    }
  } catch (err) {
    // A relay that drops the end of the stream (websockify loses what it still queues
    // when the server closes, close_notify included) fails the socket after the body:
    // the transfer itself is complete.
    if (!r.complete) return { ok: false, error: `${err.code || ''} ${err.message}` };
    closeError = `${err.code || ''} ${err.message}`;
  }
  const end = r.doneAt ?? now();
  try {
    await socket.closed;
  } catch {}
  return result(kind, n, r, start, end, {
    openMs,
    handshakeMs: info.handshakeMs ?? null,
    reads: readsBy,
    ...(closeError ? { closeError } : {}),
    protocol: info.protocol,
    cipherSuite: info.cipherSuite,
    resumed: info.resumed,
  });
}

// ---- ceilings: plain bytes over the same kinds of WebSocket ----

function openWebSocket(WS, url) {
  return new Promise((resolve, reject) => {
    const ws = new WS(url, ['binary']);
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => resolve(ws);
    ws.onerror = () => reject(new Error(`cannot open a WebSocket to ${url}`));
  });
}

/** Sends `n` bytes in PIECE-sized messages, waiting while the send queue is long. */
async function sendPieces(ws, n) {
  const piece = new Uint8Array(PIECE).fill(0x78);
  for (let off = 0; off < n; off += PIECE) {
    while (ws.bufferedAmount > SEND_HIGH_WATER) await sleep(1);
    ws.send(off + PIECE <= n ? piece : piece.subarray(0, n - off));
  }
}

/** The ceiling over a WebSocket (the browser's, or Node's `ws`) to `url` (relay/target). */
export async function ws(WS, url, kind, n) {
  const t0 = now();
  const socket = await openWebSocket(WS, url);
  const openMs = now() - t0;
  const r = new Response();
  const finished = new Promise((resolve) => {
    socket.onmessage = (e) => {
      r.push(new Uint8Array(e.data));
      if (r.complete) resolve();
    };
    socket.onclose = () => resolve();
  });
  const start = now();
  if (kind === 'download') {
    socket.send(getRequest(n));
  } else {
    socket.send(postHead(n));
    await sendPieces(socket, n);
  }
  await finished;
  const end = r.doneAt ?? now();
  socket.close();
  return result(kind, n, r, start, end, { openMs });
}

/** The ceiling over the browser's WebSocketStream. */
export async function wss(url, kind, n) {
  const t0 = now();
  const stream = new globalThis.WebSocketStream(url, { protocols: ['binary'] });
  const { readable, writable } = await stream.opened;
  const openMs = now() - t0;
  const writer = writable.getWriter();
  const reader = readable.getReader();
  const r = new Response();
  const start = now();
  if (kind === 'download') {
    await writer.write(getRequest(n));
  } else {
    await writer.write(postHead(n));
    const piece = new Uint8Array(PIECE).fill(0x78);
    for (let off = 0; off < n; off += PIECE) {
      await writer.ready;
      writer.write(off + PIECE <= n ? piece : piece.subarray(0, n - off)).catch(() => {});
    }
  }
  while (!r.complete) {
    const { value, done } = await reader.read();
    if (done) break;
    r.push(bytesOf(value));
  }
  const end = r.doneAt ?? now();
  stream.close();
  return result(kind, n, r, start, end, { openMs });
}

// ---- Wisp, by hand: type u8, stream id u32 LE, payload ----

const CONNECT = 1;
const DATA = 2;
const CONTINUE = 3;
const CLOSE = 4;

function packet(type, id, payload) {
  const p = new Uint8Array(5 + payload.length);
  p[0] = type;
  p[1] = id & 0xff;
  p[2] = (id >>> 8) & 0xff;
  p[3] = (id >>> 16) & 0xff;
  p[4] = id >>> 24;
  p.set(payload, 5);
  return p;
}

/**
 * A Wisp v1 client over a WebSocket or (in the page) a WebSocketStream: the server's
 * CONTINUE on stream 0 opens it; DATA to the server spends credit, CONTINUE refills it.
 */
export class Wisp {
  static async open({ WS, url, stream }) {
    const w = new Wisp();
    const ready = new Promise((resolve) => (w._ready = resolve));
    if (stream) {
      w.wss = new globalThis.WebSocketStream(url);
      const { readable, writable } = await w.wss.opened;
      w.writer = writable.getWriter();
      w.inFlight = 0;
      w._send = (p) => {
        w.inFlight += p.length;
        const done = () => (w.inFlight -= p.length);
        w.writer.write(p).then(done, done);
      };
      (async () => {
        const reader = readable.getReader();
        for (;;) {
          const { value, done } = await reader.read().catch(() => ({ done: true }));
          if (done) break;
          w.onPacket(bytesOf(value));
        }
      })();
    } else {
      w.ws = new WS(url);
      w.ws.binaryType = 'arraybuffer';
      w.ws.onmessage = (e) => w.onPacket(new Uint8Array(e.data));
      w._send = (p) => w.ws.send(p);
    }
    w.streams = new Map();
    w.nextId = 1;
    await ready;
    return w;
  }

  get bufferedAmount() {
    return this.ws ? this.ws.bufferedAmount : this.inFlight;
  }

  onPacket(p) {
    const id = p[1] | (p[2] << 8) | (p[3] << 16) | (p[4] << 24);
    const type = p[0];
    if (id === 0) {
      if (type === CONTINUE) {
        this.credit = new DataView(p.buffer, p.byteOffset + 5, 4).getUint32(0, true);
        this._ready();
      }
      return;
    }
    const s = this.streams.get(id >>> 0);
    if (!s) return;
    if (type === DATA) s.ondata(p.subarray(5));
    else if (type === CONTINUE) {
      s.credit = new DataView(p.buffer, p.byteOffset + 5, 4).getUint32(0, true);
      const wake = s.wake;
      s.wake = null;
      if (wake) wake();
    } else if (type === CLOSE) {
      this.streams.delete(id >>> 0);
      s.onclose(p[5]);
    }
  }

  /** CONNECT to host:port over TCP; returns the stream. */
  connect(host, port) {
    const id = this.nextId++;
    const name = encoder.encode(host);
    const payload = new Uint8Array(3 + name.length);
    payload[0] = 1;
    payload[1] = port & 0xff;
    payload[2] = port >> 8;
    payload.set(name, 3);
    const s = { id, credit: this.credit, wake: null, ondata: () => {}, onclose: () => {} };
    this.streams.set(id, s);
    this._send(packet(CONNECT, id, payload));
    return s;
  }

  /** Sends `bytes` as DATA packets of at most PIECE bytes, each spending a credit. */
  async send(s, bytes) {
    for (let off = 0; off < bytes.length; off += PIECE) {
      while (s.credit === 0) await new Promise((r) => (s.wake = r));
      while (this.bufferedAmount > SEND_HIGH_WATER) await sleep(1);
      s.credit--;
      this._send(packet(DATA, s.id, bytes.subarray(off, off + PIECE)));
    }
  }

  /** Closes a stream from this side (reason 0x02, voluntary), unless the server did. */
  closeStream(s) {
    if (!this.streams.has(s.id)) return;
    this.streams.delete(s.id);
    this._send(packet(CLOSE, s.id, new Uint8Array([2])));
  }

  close() {
    if (this.ws) this.ws.close();
    else this.wss.close();
  }
}

/** The ceiling over a Wisp stream on an open Wisp connection `w`. */
export async function wisp(w, host, port, kind, n) {
  const r = new Response();
  let start;
  let closeReason = null;
  const finished = new Promise((resolve) => {
    const s = w.connect(host, port);
    s.ondata = (bytes) => {
      r.push(bytes);
      if (r.complete) resolve(s);
    };
    s.onclose = (reason) => {
      closeReason = reason;
      resolve(s);
    };
    start = now();
    (async () => {
      if (kind === 'download') {
        await w.send(s, getRequest(n));
      } else {
        await w.send(s, postHead(n));
        const piece = new Uint8Array(PIECE).fill(0x78);
        for (let off = 0; off < n; off += PIECE) await w.send(s, off + PIECE <= n ? piece : piece.subarray(0, n - off));
      }
    })();
  });
  const s = await finished;
  const end = r.doneAt ?? now();
  w.closeStream(s);
  const out = result(kind, n, r, start, end, {});
  if (!out.ok && closeReason !== null) out.error += ` (the server closed the stream, reason 0x${closeReason.toString(16)}, after ${r.total} bytes)`;
  return out;
}

/** Time to open a WebSocket (or WebSocketStream) to `url`, then closes it. */
export async function openTime(WS, url, stream) {
  const t0 = now();
  if (stream) {
    const s = new globalThis.WebSocketStream(url, { protocols: ['binary'] });
    await s.opened;
    const ms = now() - t0;
    s.close();
    return ms;
  }
  const socket = await openWebSocket(WS, url);
  const ms = now() - t0;
  socket.close();
  return ms;
}

export function median(values) {
  const s = values.filter((v) => typeof v === 'number' && Number.isFinite(v)).sort((a, b) => a - b);
  if (!s.length) return null;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
