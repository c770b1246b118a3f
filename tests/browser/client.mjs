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

// ---- Wisp: many connections at once, bulk beside small, a dropped WebSocket ----

/**
 * Opens `count` connections at once; once all are open, sends each an HTTP GET for
 * /many/<i> and checks that each body names its own path. Never throws.
 */
export async function openMany(wasmTls, target, options, count, ms = 30000) {
  const started = performance.now();
  const sockets = [];
  try {
    return await withTimeout(
      (async () => {
        for (let i = 0; i < count; i++) sockets.push(wasmTls.connect(target, options));
        const opened = await Promise.allSettled(sockets.map((s) => s.opened));
        const openedMs = performance.now() - started;
        const failures = opened.filter((r) => r.status === 'rejected').map((r) => describe(r.reason));
        if (failures.length > 0) return { ok: false, openedMs, failures: failures.slice(0, 3), failed: failures.length };
        const bodies = await Promise.all(
          sockets.map(async (socket, i) => {
            const writer = socket.writable.getWriter();
            await writer.write(encoder.encode(`GET /many/${i} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`));
            writer.releaseLock();
            return decoder.decode(await readAll(socket.readable));
          }),
        );
        const doneMs = performance.now() - started;
        const bad = bodies.map((b, i) => (b.endsWith(`, path /many/${i}\n`) && b.startsWith('HTTP/1.1 200 OK') ? null : i)).filter((i) => i !== null);
        const resumed = (await Promise.all(sockets.map((s) => s.opened))).filter((info) => info.resumed).length;
        return { ok: bad.length === 0, openedMs, doneMs, count, bad: bad.slice(0, 5), resumed };
      })(),
      ms,
      'openMany',
    );
  } catch (err) {
    for (const s of sockets) s.close().catch(() => {});
    return { ok: false, error: describe(err) };
  }
}

/**
 * A bulk download on one connection while `smallCount` small GETs run one after
 * another on others: returns each small GET's time, how far the bulk had got, and
 * whether it was still running when the last small one finished. The bulk download
 * is then cancelled: its progress, not its end, is the point.
 */
export async function bulkBesideSmall(wasmTls, target, options, bulkBytes, smallCount, ms = 60000) {
  let reader = null;
  try {
    return await withTimeout(
      (async () => {
        let received = 0;
        let bulkDone = false;
        const bulk = (async () => {
          const socket = wasmTls.connect(target, options);
          await socket.opened;
          const writer = socket.writable.getWriter();
          await writer.write(encoder.encode(`GET /bytes/${bulkBytes} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`));
          writer.releaseLock();
          reader = socket.readable.getReader();
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            received += value.length;
          }
          bulkDone = true;
          return received;
        })();
        bulk.catch(() => {});
        // Let the bulk transfer get going first.
        const started = performance.now();
        while (received < 1 << 20 && performance.now() - started < 10000) await new Promise((r) => setTimeout(r, 5));
        if (received < 1 << 20) return { ok: false, error: { message: `the bulk download did not start: ${received} bytes` } };
        const receivedBefore = received;
        const smallMs = [];
        for (let i = 0; i < smallCount; i++) {
          const t = performance.now();
          const r = await httpGet(wasmTls, target, options, `/small/${i}`, 10000);
          if (!r.ok || !r.text.endsWith(`path /small/${i}\n`)) return { ok: false, error: r.error || { message: `bad body: ${r.text}` } };
          smallMs.push(performance.now() - t);
        }
        const bulkRunningAfterSmall = !bulkDone;
        const receivedMeanwhile = received - receivedBefore;
        await reader.cancel();
        await bulk;
        return { ok: true, smallMs, bulkRunningAfterSmall, receivedBefore, receivedMeanwhile, received };
      })(),
      ms,
      'bulkBesideSmall',
    );
  } catch (err) {
    if (reader) reader.cancel().catch(() => {});
    return { ok: false, error: describe(err) };
  }
}

/**
 * Starts a long download and an idle open connection, and keeps their state in
 * globalThis.__wispDrop for the test to watch while it kills the server.
 */
export async function startLongTransfer(wasmTls, target, options, bytes) {
  const state = { received: 0, bulk: null, idle: null };
  globalThis.__wispDrop = state;
  const settle = (key, promise) =>
    promise.then(
      (v) => (state[key] = { ok: true, value: v }),
      (err) => (state[key] = { ok: false, error: describe(err) }),
    );
  const idle = wasmTls.connect(target, options);
  const bulk = wasmTls.connect(target, options);
  await Promise.all([idle.opened, bulk.opened]);
  settle('idle', idle.closed);
  settle(
    'bulk',
    (async () => {
      const writer = bulk.writable.getWriter();
      await writer.write(encoder.encode(`GET /bytes/${bytes} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`));
      writer.releaseLock();
      const reader = bulk.readable.getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return state.received;
        state.received += value.length;
      }
    })(),
  );
  return { ok: true };
}

/**
 * Plaintext (secureTransport 'off') to an echo server: writes `bytes` bytes in 64 KiB
 * chunks while reading the echo, and checks it. Never throws.
 */
export async function echoUpload(wasmTls, target, options, bytes, ms = 60000) {
  try {
    return await withTimeout(
      (async () => {
        const socket = wasmTls.connect(target, { ...options, secureTransport: 'off' });
        await socket.opened;
        const data = new Uint8Array(bytes);
        for (let i = 0; i < bytes; i++) data[i] = (i * 7) % 251;
        const started = performance.now();
        const reading = (async () => {
          const reader = socket.readable.getReader();
          let got = 0;
          let mismatch = -1;
          while (got < bytes) {
            const { value, done } = await reader.read();
            if (done) break;
            for (let i = 0; i < value.length && mismatch < 0; i++) if (value[i] !== data[got + i]) mismatch = got + i;
            got += value.length;
          }
          reader.releaseLock();
          return { got, mismatch };
        })();
        const writer = socket.writable.getWriter();
        for (let off = 0; off < bytes; off += 64 * 1024) await writer.write(data.slice(off, off + 64 * 1024));
        writer.releaseLock();
        const { got, mismatch } = await reading;
        const seconds = (performance.now() - started) / 1000;
        await socket.close();
        return { ok: got === bytes && mismatch < 0, got, mismatch, mbps: bytes / seconds / 1e6 };
      })(),
      ms,
      'echoUpload',
    );
  } catch (err) {
    return { ok: false, error: describe(err) };
  }
}

/** A position-sensitive checksum, the same as the sink server's in socket.test.mjs. */
export function checksum(bytes, state = 0) {
  let s = state;
  for (let i = 0; i < bytes.length; i++) s = (Math.imul(s, 31) + bytes[i]) >>> 0;
  return s;
}

/**
 * Sends "N\n" and then N bytes in one write() to a sink that answers "got N SUM\n"
 * (socket.test.mjs); returns what it answered and the checksum sent.
 */
export async function sinkUpload(wasmTls, target, options, bytes, ms = 60000) {
  try {
    return await withTimeout(
      (async () => {
        const socket = wasmTls.connect(target, options);
        await socket.opened;
        const data = new Uint8Array(bytes);
        for (let i = 0; i < bytes; i++) data[i] = (i * 13) % 253;
        const sent = checksum(data);
        const writer = socket.writable.getWriter();
        await writer.write(encoder.encode(`${bytes}\n`));
        await writer.write(data);
        writer.releaseLock();
        const reply = decoder.decode(await readAll(socket.readable)).trim();
        await socket.closed;
        return { ok: reply === `got ${bytes} ${sent}`, reply, sent };
      })(),
      ms,
      'sinkUpload',
    );
  } catch (err) {
    return { ok: false, error: describe(err) };
  }
}
