// Data-path scenarios, run the same way in the page and in Node.js: `wasmTls` is the
// package and `sha256()` makes an incremental hasher ({ update(bytes), hex() }), so
// nothing here depends on where it runs. Each returns a plain object; none throws.

const encoder = new TextEncoder();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function describe(err) {
  return { code: err && err.code, message: String(err && err.message ? err.message : err) };
}

/** Splits the first line ("<sha256>\n") off a stream of chunks. */
class FirstLine {
  constructor() {
    this.line = null;
    this.head = '';
  }

  /** The part of `chunk` after the line, once the line is complete. */
  take(chunk) {
    if (this.line !== null) return chunk;
    const nl = chunk.indexOf(10);
    if (nl < 0) {
      this.head += new TextDecoder().decode(chunk);
      return null;
    }
    this.line = (this.head + new TextDecoder().decode(chunk.subarray(0, nl))).trim();
    return chunk.subarray(nl + 1);
  }
}

/**
 * Downloads `bytes` from the bulk server, with a reader that `pause`s `pauseMs` once a
 * quarter has arrived, or is `slow` (1 ms per 16 KiB it reads). `sample()` is called
 * every 100 ms during the transfer and its largest value is returned as `peak`.
 */
export async function download(wasmTls, sha256, target, options, { bytes, reader: kind, pauseMs = 10000, sample, verb = 'GET' }) {
  let peak = 0;
  const sampler = sample ? setInterval(() => (peak = Math.max(peak, sample())), 100) : null;
  const started = performance.now();
  let got = 0;
  let hash = null;
  const line = new FirstLine();
  try {
    const socket = wasmTls.connect(target, options);
    await socket.opened;
    const writer = socket.writable.getWriter();
    await writer.write(encoder.encode(`${verb} ${bytes} ${bytes}\n`));
    writer.releaseLock();
    hash = sha256();
    const reader = socket.readable.getReader();
    let paused = false;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const body = line.take(value);
      if (!body) continue;
      hash.update(body);
      got += body.length;
      if (kind === 'pause' && !paused && got >= bytes / 4) {
        paused = true;
        await sleep(pauseMs);
      } else if (kind === 'slow') {
        await sleep(body.length / 16384);
      }
    }
    await socket.closed;
    return { ok: true, got, same: hash.hex() === line.line, ms: performance.now() - started, peak };
  } catch (err) {
    return { ok: false, got, error: describe(err), peak, same: hash !== null && line.line !== null && hash.hex() === line.line };
  } finally {
    if (sampler) clearInterval(sampler);
  }
}

/**
 * Uploads `data` in one write() and compares the server's SHA-256 of what arrived with
 * `expected` (hex); reports how long the write took.
 */
export async function upload(wasmTls, target, options, data, expected) {
  const started = performance.now();
  try {
    const socket = wasmTls.connect(target, options);
    await socket.opened;
    const writer = socket.writable.getWriter();
    await writer.write(encoder.encode(`PUT ${data.length}\n`));
    await writer.write(data);
    const writeMs = performance.now() - started;
    const reader = socket.readable.getReader();
    let text = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    return { ok: true, same: text.trim() === expected, writeMs, ms: performance.now() - started, started };
  } catch (err) {
    return { ok: false, error: describe(err) };
  }
}
