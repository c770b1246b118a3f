// Scenarios run the same way in the page and in Node.js: `wasmTls` is the imported
// package, so nothing here depends on where it runs.

const decoder = new TextDecoder();
const encoder = new TextEncoder();

function describe(err) {
  return { code: err && err.code, message: String(err && err.message ? err.message : err) };
}

async function readAll(readable) {
  const reader = readable.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    chunks.push(value);
    total += value.length;
  }
  const all = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.length;
  }
  return all;
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error(`${what} took longer than ${ms} ms`), { code: 'test-timeout' })), ms);
    }),
  ]);
}

function summarize(info) {
  if (!info) return info;
  const { peerCertificates, certificates, ...rest } = info;
  return {
    ...rest,
    chainLength: peerCertificates ? peerCertificates.length : 0,
    subjects: (certificates || []).map((c) => c.subject),
  };
}

/** Connects, sends an HTTP/1.1 GET, reads to the end. Never throws: returns the error. */
export async function httpGet(wasmTls, target, options, path = '/', ms = 15000) {
  try {
    return await withTimeout(
      (async () => {
        const socket = wasmTls.connect(target, options);
        const info = await socket.opened;
        const writer = socket.writable.getWriter();
        await writer.write(encoder.encode(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`));
        writer.releaseLock();
        const body = await readAll(socket.readable);
        await socket.closed;
        return { ok: true, info: summarize(info), text: decoder.decode(body), bytes: body.length };
      })(),
      ms,
      'httpGet',
    );
  } catch (err) {
    return { ok: false, error: describe(err) };
  }
}

async function readLine(reader, state) {
  for (;;) {
    const i = state.buf.indexOf('\r\n');
    if (i >= 0) {
      const line = state.buf.slice(0, i);
      state.buf = state.buf.slice(i + 2);
      return line;
    }
    const { value, done } = await reader.read();
    if (done) throw new Error(`connection closed before a line; had "${state.buf}"`);
    state.buf += decoder.decode(value);
  }
}

/** SMTP-style STARTTLS: greeting, STARTTLS, then an HTTP GET over TLS. */
export async function starttlsGet(wasmTls, target, options, ms = 15000) {
  try {
    return await withTimeout(
      (async () => {
        const plain = wasmTls.connect(target, { ...options, secureTransport: 'starttls' });
        await plain.opened;
        const reader = plain.readable.getReader();
        const writer = plain.writable.getWriter();
        const state = { buf: '' };
        const greeting = await readLine(reader, state);
        await writer.write(encoder.encode('STARTTLS\r\n'));
        const ready = await readLine(reader, state);
        reader.releaseLock();
        writer.releaseLock();
        const secure = plain.startTls();
        const info = await secure.opened;
        const w = secure.writable.getWriter();
        await w.write(encoder.encode('GET /after-starttls HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'));
        w.releaseLock();
        const body = await readAll(secure.readable);
        return { ok: true, greeting, ready, info: summarize(info), text: decoder.decode(body) };
      })(),
      ms,
      'starttlsGet',
    );
  } catch (err) {
    return { ok: false, error: describe(err) };
  }
}

/** Downloads `bytes` bytes from the rustls test server; returns MB/s. */
export async function download(wasmTls, target, options, bytes, ms = 60000) {
  const started = performance.now();
  const r = await httpGet(wasmTls, target, options, `/bytes/${bytes}`, ms);
  const seconds = (performance.now() - started) / 1000;
  return { ...r, text: undefined, seconds, mbps: r.ok ? r.bytes / seconds / 1e6 : 0 };
}
