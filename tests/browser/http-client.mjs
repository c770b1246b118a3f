// The HTTP client's scenarios, run the same way in the page and in Node.js: `http` is
// wasm-tls/http, `options` createClient()'s, `sha256()` an incremental hasher
// ({ update(bytes), hex() }). Each returns a plain object of what happened; none throws.

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function describe(err) {
  return { name: err && err.name, code: err && err.code, message: String(err && err.message ? err.message : err) };
}

async function settle(promise) {
  try {
    return { value: await promise };
  } catch (err) {
    return { error: describe(err) };
  }
}

/** Reads a response body, hashing it; returns { length, sha256, ms }. */
async function hashBody(response, sha256) {
  const started = performance.now();
  const hash = sha256();
  let length = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    hash.update(value);
    length += value.length;
  }
  return { length, sha256: hash.hex(), ms: performance.now() - started };
}

/** `bytes` of a known pattern, as a stream in `chunk`-sized pieces. */
function patternStream(bytes, chunk = 64 * 1024) {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= bytes) {
        controller.close();
        return;
      }
      const n = Math.min(chunk, bytes - sent);
      const piece = new Uint8Array(n);
      for (let i = 0; i < n; i++) piece[i] = (sent + i) & 0xff;
      sent += n;
      controller.enqueue(piece);
    },
  });
}

function patternHash(bytes, sha256) {
  const hash = sha256();
  for (let sent = 0; sent < bytes; sent += 64 * 1024) {
    const n = Math.min(64 * 1024, bytes - sent);
    const piece = new Uint8Array(n);
    for (let i = 0; i < n; i++) piece[i] = (sent + i) & 0xff;
    hash.update(piece);
  }
  return hash.hex();
}

/**
 * Requests of every kind against `base` (an nginx origin): the protocol, the big file
 * byte for byte, request bodies of every type, a streamed echo of `echoBytes`, gzip,
 * deflate and brotli (where the platform decodes it), redirects, abort.
 */
export async function fetchScenarios(http, options, base, echoBytes, sha256) {
  const client = http.createClient(options);
  const out = {};
  const text = async (path, init) => {
    const r = await client.fetch(`${base}${path}`, init);
    return { status: r.status, version: r.httpVersion, url: r.url, redirected: r.redirected, text: await r.text(), headers: Object.fromEntries(r.headers) };
  };
  try {
    out.root = await settle(text('/'));
    const big = await client.fetch(`${base}/big.bin`);
    out.big = { status: big.status, length: Number(big.headers.get('content-length')), ...(await hashBody(big, sha256)) };
    const json = async (init) => JSON.parse((await text('/hash', { method: 'POST', ...init })).text);
    const form = new FormData();
    form.append('field', 'value');
    out.bodies = {
      string: await settle(json({ body: 'héllo', headers: { 'x-test': 'string' } })),
      bytes: await settle(json({ body: new Uint8Array([1, 2, 3, 4]) })),
      arrayBuffer: await settle(json({ body: new Uint8Array([5, 6]).buffer })),
      blob: await settle(json({ body: new Blob(['blob body'], { type: 'text/x-blob' }) })),
      form: await settle(json({ body: form })),
      params: await settle(json({ body: new URLSearchParams({ a: '1', b: 'two' }) })),
      stream: await settle(json({ body: patternStream(3 << 20), duplex: 'half' })),
      request: await settle(client.fetch(new Request(`${base}/hash`, { method: 'PUT', body: 'from a Request', headers: { 'x-test': 'request' } })).then((r) => r.json())),
    };
    out.streamSha256 = patternHash(3 << 20, sha256);
    // A streamed body echoed back as it arrives: request and response stream together.
    const echo = await client.fetch(`${base}/echo`, { method: 'POST', body: patternStream(echoBytes), duplex: 'half' });
    out.echo = { status: echo.status, ...(await hashBody(echo, sha256)), expected: patternHash(echoBytes, sha256) };
    out.gzip = await settle(text('/text.txt'));
    out.deflate = await settle(text('/deflate'));
    out.brotli = await settle(text('/brotli'));
    out.brotliDecoded = (() => {
      try {
        new DecompressionStream('brotli');
        return true;
      } catch {
        return typeof process === 'object' && Boolean(process.versions?.node);
      }
    })();
    out.redirects = await settle(text('/redirect/1'));
    out.manual = await settle(client.fetch(`${base}/redirect/1`, { redirect: 'manual' }).then((r) => ({ status: r.status, location: r.headers.get('location') })));
    out.redirectError = await settle(client.fetch(`${base}/redirect/1`, { redirect: 'error' }));
    out.loop = await settle(client.fetch(`${base}/redirect/loop`));
    out.post303 = await settle(text('/redirect/post-303', { method: 'POST', body: 'gone after 303' }).then((r) => JSON.parse(r.text)));
    out.post307 = await settle(text('/redirect/post-307', { method: 'POST', body: 'kept after 307' }).then((r) => JSON.parse(r.text)));
    out.head = await settle(client.fetch(`${base}/big.bin`, { method: 'HEAD' }).then(async (r) => ({ status: r.status, length: r.headers.get('content-length'), body: await r.text() })));
    out.notFound = await settle(client.fetch(`${base}/nothing-here`).then((r) => r.status));
    // Abort mid-body: the reader fails with the signal's reason, and the client goes on.
    const controller = new AbortController();
    const aborted = await client.fetch(`${base}/big.bin`, { signal: controller.signal });
    const reader = aborted.body.getReader();
    let got = 0;
    const first = await reader.read();
    got += first.value.length;
    controller.abort();
    out.abortMidBody = { got, read: await settle(reader.read()) };
    // Aborted before the response: fetch() itself rejects.
    const early = new AbortController();
    const pending = client.fetch(`${base}/big.bin`, { signal: early.signal });
    early.abort();
    out.abortEarly = await settle(pending);
    out.afterAbort = await settle(text('/hello.txt'));
  } catch (err) {
    out.error = describe(err);
  } finally {
    client.close();
  }
  return out;
}

/** `count` requests at once to `base`; their statuses and bodies. */
export async function concurrent(http, options, base, count) {
  const client = http.createClient(options);
  try {
    const started = performance.now();
    const results = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        client.fetch(`${base}/hello.txt?n=${i}`).then(async (r) => ({ status: r.status, text: await r.text(), version: r.httpVersion })),
      ),
    );
    return { ok: results.filter((r) => r.status === 200 && r.text === 'hello\n').length, versions: [...new Set(results.map((r) => r.version))], ms: performance.now() - started };
  } catch (err) {
    return { error: describe(err) };
  } finally {
    client.close();
  }
}

/** Sequential then parallel requests over HTTP/1.1: keep-alive, the bound, resumption. */
export async function keepAlive(http, options, base) {
  const client = http.createClient({ ...options, maxConnectionsPerOrigin: 2 });
  try {
    for (let i = 0; i < 3; i++) await (await client.fetch(`${base}/hello.txt?seq=${i}`)).text();
    const parallel = await Promise.all(Array.from({ length: 6 }, (_, i) => client.fetch(`${base}/hello.txt?par=${i}`).then((r) => r.text())));
    return { parallel: parallel.length };
  } catch (err) {
    return { error: describe(err) };
  } finally {
    client.close();
  }
}

/** A failure of the TLS layer reaches fetch() with the socket's code. */
export async function tlsFailure(http, options, base) {
  const client = http.createClient(options);
  const result = await settle(client.fetch(`${base}/`));
  client.close();
  return result;
}

function wsEvents(ws) {
  const log = [];
  const waiters = [];
  const push = (entry) => {
    log.push(entry);
    for (const w of waiters.splice(0)) w();
  };
  ws.binaryType = 'arraybuffer';
  ws.onopen = () => push({ type: 'open', protocol: ws.protocol });
  ws.onmessage = (e) => push({ type: 'message', data: e.data });
  ws.onerror = (e) => push({ type: 'error', code: e.error && e.error.code });
  ws.addEventListener('close', (e) => push({ type: 'close', code: e.code, reason: e.reason, wasClean: e.wasClean }));
  return {
    log,
    async next(type, ms = 20000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const i = log.findIndex((e) => e.type === type || (type !== 'close' && e.type === 'close'));
        if (i >= 0) return log.splice(i, 1)[0];
        if (Date.now() > deadline) return { type: 'timeout', waitingFor: type };
        await Promise.race([new Promise((r) => waiters.push(r)), sleep(100)]);
      }
    },
  };
}

/** The WebSocket echo server behind nginx (`url`): messages, ping, close, a drop. */
export async function webSocketScenarios(http, options, url, sha256) {
  const client = http.createClient(options);
  const out = {};
  try {
    const ws = new client.WebSocket(`${url}/ws`, ['chat', 'other']);
    const events = wsEvents(ws);
    out.open = await events.next('open');
    ws.send('hello text');
    out.text = await events.next('message');
    ws.send(new Uint8Array([0, 1, 2, 255]));
    const binary = await events.next('message');
    out.binary = Array.from(new Uint8Array(binary.data));
    const big = new Uint8Array(16 << 20);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
    const bigHash = sha256();
    bigHash.update(big);
    out.bigExpected = bigHash.hex();
    ws.send(big);
    out.bufferedWhileSending = ws.bufferedAmount;
    const echoed = await events.next('message', 60000);
    const echoedHash = sha256();
    echoedHash.update(new Uint8Array(echoed.data));
    out.big = { length: echoed.data.byteLength, sha256: echoedHash.hex() };
    out.bufferedAfter = ws.bufferedAmount;
    ws.ping(new TextEncoder().encode('are you there'));
    out.ping = await events.next('message');
    ws.send('ping me');
    out.serverPing = await events.next('message');
    ws.send(new Blob(['from a blob']));
    const fromBlob = await events.next('message');
    out.blob = fromBlob.data instanceof ArrayBuffer ? new TextDecoder().decode(fromBlob.data) : fromBlob;
    ws.send('close please');
    out.serverClose = await events.next('close');
    out.readyState = ws.readyState;

    const ws2 = client.webSocket(`${url}/ws`);
    const events2 = wsEvents(ws2);
    out.open2 = await events2.next('open');
    ws2.close(1000, 'done here');
    out.clientClose = await events2.next('close');

    // close() before it opened: error, then close 1006, and never open.
    const early = new client.WebSocket(`${url}/ws`);
    const earlyEvents = wsEvents(early);
    early.close();
    out.earlyError = await earlyEvents.next('error');
    out.earlyClose = await earlyEvents.next('close');
    await sleep(200);
    out.earlyOpened = earlyEvents.log.some((e) => e.type === 'open');

    const drop = new client.WebSocket(`${url}/ws-drop`);
    const dropEvents = wsEvents(drop);
    out.dropOpen = await dropEvents.next('open');
    out.dropError = await dropEvents.next('error');
    out.dropClose = await dropEvents.next('close');
    out.dropMessages = dropEvents.log.filter((e) => e.type === 'message').length;
  } catch (err) {
    out.error = describe(err);
  } finally {
    client.close();
  }
  return out;
}

/**
 * Backpressure: a reader that stops after the first chunk of `path` for `pauseMs`; the
 * ciphertext that reached the socket meanwhile (counted by `trace`) stays bounded.
 */
export async function pausedReader(http, options, base, path, pauseMs) {
  let received = 0;
  const trace = (step) => {
    if (step.step === 'want-read') received += step.bytes;
  };
  const client = http.createClient({ ...options, trace });
  try {
    const response = await client.fetch(`${base}${path}`);
    const reader = response.body.getReader();
    await reader.read();
    await sleep(pauseMs);
    const whilePaused = received;
    await sleep(pauseMs);
    const later = received;
    let rest = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      rest += value.length;
    }
    return { whilePaused, later, rest, total: received };
  } catch (err) {
    return { error: describe(err) };
  } finally {
    client.close();
  }
}
