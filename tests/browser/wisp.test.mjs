// Many TLS connections over one WebSocket (Wisp): headless Chromium and Node.js, through
// the relay's Wisp endpoint and through @mercuryworkshop/wisp-js's server, to the
// rustls test server on 127.0.0.1.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import * as h from './harness.mjs';
import * as client from './client.mjs';

let pki;
let server; // the rustls test server: HTTP, /bytes/N, concurrent connections
let closer; // accepts, then closes at once
let echo; // plaintext echo
let relay;
let wispJs;
let wispJsV1;
let web;
let chromium;
let page;
const pageLog = [];

before(async () => {
  pki = h.makePki();
  server = await h.rustlsServer(pki, 'server');
  closer = net.createServer((sock) => sock.end());
  await new Promise((r) => closer.listen(0, '127.0.0.1', r));
  echo = net.createServer((sock) => sock.pipe(sock));
  await new Promise((r) => echo.listen(0, '127.0.0.1', r));
  relay = await h.wispRelay([server.port, closer.address().port, echo.address().port], ['--max-streams', '512']);
  // Port 1 is blocked, to see a refusal that is wisp-js's own.
  wispJs = await h.wispJsServer({ port_blacklist: [1] });
  wispJsV1 = await h.wispJsServer({ wisp_version: 1 });
  web = await h.staticServer();
  chromium = await h.browser();
  page = await chromium.newPage();
  page.on('console', (m) => pageLog.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => pageLog.push(`pageerror: ${e.message}`));
  await page.goto(`${web.url}/`);
});

after(async () => {
  if (chromium) await chromium.close();
  if (web) web.server.close();
  if (closer) closer.close();
  if (echo) echo.close();
  h.stopAll();
});

const target = () => `127.0.0.1:${server.port}`;

function opts(wisp, extra = {}) {
  return { wisp, serverName: 'localhost', ca: pki.ca, ...extra };
}

/** Runs a scenario of client.mjs in `where` (default: the shared page). */
async function inPage(scenario, args, where = page) {
  const result = await h.runInPage(where, scenario, ...args);
  if (!result.ok && process.env.VERBOSE) console.error(result, pageLog);
  return result;
}

function endpoints() {
  return [
    ['the relay', relay.wisp],
    ['wisp-js (v2)', wispJs.url],
    ['wisp-js (v1)', wispJsV1.url],
  ];
}

test('20, then 200 connections at once over one WebSocket, in the page', { timeout: 120000 }, async () => {
  for (const [name, wisp] of endpoints()) {
    for (const count of [20, 200]) {
      const r = await inPage('openMany', [target(), opts(wisp), count, 60000]);
      assert.ok(r.ok, `${name}, ${count}: ${JSON.stringify(r)}`);
      assert.equal(r.count, count);
    }
  }
  // The relay logged one line per stream, each on the same client port.
  const lines = relay.child.stderrText.split('\n').filter((l) => / stream=\d+ /.test(l));
  assert.ok(lines.length >= 220, `${lines.length} stream lines`);
  assert.ok(lines.every((l) => l.includes(`target=127.0.0.1:${server.port} outcome=ok`)), lines.find((l) => !l.includes('outcome=ok')));
});

test('the same in Node.js, with the ws package', { timeout: 60000 }, async () => {
  const wasmTls = await import('../../pkg/index.js');
  const { WebSocket } = await import('ws');
  for (const [name, wisp] of endpoints()) {
    const r = await client.openMany(wasmTls, target(), opts(wisp, { WebSocket }), 20, 30000);
    assert.ok(r.ok, `${name}: ${JSON.stringify(r)}`);
  }
});

test('a bulk download does not hold up small requests on other streams', { timeout: 120000 }, async () => {
  const r = await inPage('bulkBesideSmall', [target(), opts(relay.wisp), 256 << 20, 5, 90000]);
  assert.ok(r.ok, JSON.stringify(r));
  assert.ok(r.bulkRunningAfterSmall, `the bulk download ended before the small requests: ${JSON.stringify(r)}`);
  assert.ok(r.receivedMeanwhile > 1 << 20, `the bulk download stalled meanwhile: ${JSON.stringify(r)}`);
  const slowest = Math.max(...r.smallMs);
  assert.ok(slowest < 1000, `a small request took ${slowest} ms beside the bulk download: ${JSON.stringify(r)}`);

  // wisp-js 0.5.0 cuts a stream short, without a CLOSE, when its target finishes
  // while the WebSocket is backed up (more than 32 MiB queued): the bulk download
  // stays below that, so here it ends beside the small requests, whole.
  const bytes = 24 << 20;
  const js = await inPage('bulkBesideSmall', [target(), opts(wispJs.url), bytes, 3, 60000]);
  assert.ok(js.ok, JSON.stringify(js));
  if (!js.bulkRunningAfterSmall) assert.ok(js.received > bytes, JSON.stringify(js));
  assert.ok(Math.max(...js.smallMs) < 2000, JSON.stringify(js));
});

test('uploads beyond the server\'s credit wait for CONTINUE and arrive whole', { timeout: 60000 }, async () => {
  // 16 MiB in 64 KiB packets: four times the relay's credit (64 packets), twice
  // wisp-js's (128), so the writer must wait for CONTINUE again and again.
  for (const [name, wisp] of endpoints()) {
    const r = await inPage('echoUpload', [`127.0.0.1:${echo.address().port}`, opts(wisp), 16 << 20]);
    assert.ok(r.ok, `${name}: ${JSON.stringify(r)}`);
  }
  const wasmTls = await import('../../pkg/index.js');
  const { WebSocket } = await import('ws');
  const r = await client.echoUpload(wasmTls, `127.0.0.1:${echo.address().port}`, opts(relay.wisp, { WebSocket }), 16 << 20);
  assert.ok(r.ok, JSON.stringify(r));
});

test('refused targets fail with relay-refused and the reason, the others carry on', { timeout: 60000 }, async () => {
  const closedPort = await h.freePort();
  const cases = [
    // The relay: not in its allowlist.
    [relay.wisp, `127.0.0.1:${closedPort}`, /blocked by the server \(0x48\)/],
    // wisp-js: its port blacklist.
    [wispJs.url, '127.0.0.1:1', /blocked by the server \(0x48\)/],
  ];
  for (const [wisp, to, words] of cases) {
    const [bad, good] = await Promise.all([
      inPage('httpGet', [to, opts(wisp), '/', 10000]),
      inPage('httpGet', [target(), opts(wisp), '/beside-a-refusal']),
    ]);
    assert.equal(bad.ok, false);
    assert.equal(bad.error.code, 'relay-refused', JSON.stringify(bad));
    assert.match(bad.error.message, words);
    assert.ok(good.ok, JSON.stringify(good));
    assert.match(good.text, /path \/beside-a-refusal/);
  }
  // Allowed, but nothing listens: the target is unreachable, which is not a refusal.
  const refusing = await h.wispRelay([closedPort]);
  const r = await inPage('httpGet', [`127.0.0.1:${closedPort}`, opts(refusing.wisp), '/', 10000]);
  assert.equal(r.error.code, 'target-unreachable', JSON.stringify(r));
  assert.match(r.error.message, /refused the connection \(0x44\)/);
});

test('a server that closes its stream gives unexpected-eof; the WebSocket lives on', { timeout: 60000 }, async () => {
  for (const wisp of [relay.wisp, wispJs.url]) {
    const [closed, good] = await Promise.all([
      inPage('httpGet', [`127.0.0.1:${closer.address().port}`, opts(wisp), '/', 10000]),
      inPage('httpGet', [target(), opts(wisp), '/beside-a-close']),
    ]);
    assert.equal(closed.ok, false);
    assert.equal(closed.error.code, 'unexpected-eof', JSON.stringify(closed));
    assert.ok(good.ok, JSON.stringify(good));
    const after = await inPage('httpGet', [target(), opts(wisp), '/after-a-close']);
    assert.ok(after.ok, JSON.stringify(after));
  }
});

test('a WebSocket dropped mid-transfer fails its streams; the next connect reopens', { timeout: 90000 }, async () => {
  const port = await h.freePort();
  const listen = `127.0.0.1:${port}`;
  let dying = await h.wispRelay([server.port], [], listen);
  const r = await inPage('startLongTransfer', [target(), opts(dying.wisp), 1 << 30]);
  assert.ok(r.ok, JSON.stringify(r));
  await page.waitForFunction(() => globalThis.__wispDrop.received > 1 << 20, null, { timeout: 20000 });
  // A stream on another server's WebSocket, under way meanwhile, is unaffected.
  const other = inPage('download', [target(), opts(wispJs.url), 16 << 20, 60000]);
  dying.child.kill('SIGKILL');
  await page.waitForFunction(() => globalThis.__wispDrop.bulk && globalThis.__wispDrop.idle, null, { timeout: 20000 });
  const state = await page.evaluate(() => globalThis.__wispDrop);
  for (const which of ['bulk', 'idle']) {
    assert.equal(state[which].ok, false, `${which}: ${JSON.stringify(state)}`);
    assert.equal(state[which].error.code, 'transport-closed', `${which}: ${JSON.stringify(state)}`);
    assert.match(state[which].error.message, /WebSocket to the Wisp server closed/);
  }
  assert.ok(state.received < 1 << 30);
  const o = await other;
  assert.ok(o.ok && o.bytes > 16 << 20, JSON.stringify(o));

  // While the relay is down, a connect fails at once and plainly.
  const down = await inPage('httpGet', [target(), opts(dying.wisp), '/', 10000]);
  assert.equal(down.error.code, 'transport-closed', JSON.stringify(down));
  // Back at the same address: the next connect opens a new WebSocket.
  dying = await h.wispRelay([server.port], [], listen);
  const again = await inPage('httpGet', [target(), opts(dying.wisp), '/after-the-drop']);
  assert.ok(again.ok, JSON.stringify(again));
  assert.match(again.text, /path \/after-the-drop/);
  dying.child.kill('SIGKILL');
});

test('Wisp v2 password authentication (wispAuth)', { timeout: 60000 }, async () => {
  const file = path.join(pki.dir, 'wisp-users');
  writeFileSync(file, 'alice:correct horse\n');
  const guarded = await h.wispRelay([server.port], ['--wisp-auth-file', file]);
  const ok = await inPage('httpGet', [target(), opts(guarded.wisp, { wispAuth: { username: 'alice', password: 'correct horse' } }), '/signed-in']);
  assert.ok(ok.ok, JSON.stringify(ok));
  assert.match(ok.text, /path \/signed-in/);

  const wrong = await inPage('httpGet', [target(), opts(guarded.wisp, { wispAuth: { username: 'alice', password: 'battery' } }), '/', 10000]);
  assert.equal(wrong.error.code, 'relay-refused', JSON.stringify(wrong));
  assert.match(wrong.error.message, /wrong username or password \(0xc0\)/);

  const none = await inPage('httpGet', [target(), opts(guarded.wisp), '/', 10000]);
  assert.equal(none.error.code, 'relay-refused', JSON.stringify(none));
  assert.match(none.error.message, /requires a username and password/);

  // The same in Node.js.
  const wasmTls = await import('../../pkg/index.js');
  const { WebSocket } = await import('ws');
  const node = await client.httpGet(wasmTls, target(), opts(guarded.wisp, { WebSocket, wispAuth: { username: 'alice', password: 'correct horse' } }), '/node');
  assert.ok(node.ok, JSON.stringify(node));
  guarded.child.kill('SIGKILL');
});

test('STARTTLS and plaintext sockets work over Wisp too', { timeout: 60000 }, async () => {
  const starttls = await h.rustlsServer(pki, 'server', ['--starttls']);
  const mux = await h.wispRelay([starttls.port]);
  const r = await inPage('starttlsGet', [`127.0.0.1:${starttls.port}`, opts(mux.wisp)]);
  assert.ok(r.ok, JSON.stringify(r));
  assert.match(r.greeting, /^220 /);
  assert.match(r.text, /path \/after-starttls/);
  mux.child.kill('SIGKILL');
});

test('figures: opening 20 connections at once, raw WebSockets against Wisp; bulk throughput', { timeout: 180000 }, async () => {
  // Full handshakes (no resumption), as on a first visit.
  const common = { serverName: 'localhost', ca: pki.ca, resumption: false };
  const raw = { relay: relay.url, ...common };
  const wisp = { wisp: relay.wisp, ...common };
  const runs = 3;
  const measure = async (options) => {
    const all = [];
    for (let i = 0; i < runs; i++) {
      // A fresh page each time: no WebSocket is open yet, and Chromium's
      // per-page WebSocket throttling starts from nothing.
      const fresh = await chromium.newPage();
      try {
        await fresh.goto(`${web.url}/`);
        // Warm up: load and compile the wasm module, off the clock.
        const warm = await inPage('httpGet', [target(), { ...common, relay: relay.url }, '/warm-up'], fresh);
        assert.ok(warm.ok, JSON.stringify(warm));
        const r = await inPage('openMany', [target(), options, 20, 60000], fresh);
        assert.ok(r.ok, JSON.stringify(r));
        all.push(r);
      } finally {
        await fresh.close();
      }
    }
    const median = (key) => all.map((r) => r[key]).sort((a, b) => a - b)[Math.floor(all.length / 2)];
    return { openedMs: median('openedMs'), doneMs: median('doneMs'), runs: all.map((r) => Math.round(r.openedMs)) };
  };
  const rawOpen = await measure(raw);
  const wispOpen = await measure(wisp);

  // 200 at once over Wisp (over raw WebSockets that would take most of a minute), and
  // small requests beside a bulk download on the same WebSocket.
  const fresh = await chromium.newPage();
  let open200;
  let beside;
  try {
    await fresh.goto(`${web.url}/`);
    const warm = await inPage('httpGet', [target(), { ...common, relay: relay.url }, '/warm-up'], fresh);
    assert.ok(warm.ok, JSON.stringify(warm));
    open200 = await inPage('openMany', [target(), wisp, 200, 60000], fresh);
    assert.ok(open200.ok, JSON.stringify(open200));
    beside = await inPage('bulkBesideSmall', [target(), wisp, 256 << 20, 10, 90000], fresh);
    assert.ok(beside.ok, JSON.stringify(beside));
  } finally {
    await fresh.close();
  }
  const smallSorted = [...beside.smallMs].sort((a, b) => a - b);

  const bytes = 64 << 20;
  const bulk = async (options) => {
    const speeds = [];
    for (let i = 0; i < runs; i++) {
      const r = await inPage('download', [target(), options, bytes, 60000]);
      assert.ok(r.ok, JSON.stringify(r));
      speeds.push(r.mbps);
    }
    return speeds.sort((a, b) => a - b)[Math.floor(speeds.length / 2)];
  };
  const rawMBps = await bulk(raw);
  const wispMBps = await bulk(wisp);

  const round = (x) => Math.round(x * 10) / 10;
  const figures = {
    what: 'wasm-tls in headless Chromium on 127.0.0.1 through wasm-tls-relay to the rustls test server: TLS connections opened at once (full handshakes), one WebSocket each (raw) or all on one Wisp WebSocket; HTTP GETs one after another beside a bulk download on the same Wisp WebSocket; a 64 MiB download on one connection',
    measured: new Date().toISOString(),
    chromium: chromium.version(),
    relayBuild: h.binary('wasm-tls-relay').includes(`${path.sep}release${path.sep}`) ? 'release' : 'debug',
    open20: {
      rawMs: round(rawOpen.openedMs),
      wispMs: round(wispOpen.openedMs),
      rawRunsMs: rawOpen.runs,
      wispRunsMs: wispOpen.runs,
      withGetRawMs: round(rawOpen.doneMs),
      withGetWispMs: round(wispOpen.doneMs),
      wispTargetMs: 150,
      wispTargetMet: wispOpen.openedMs <= 150,
    },
    open200: { wispMs: round(open200.openedMs), withGetWispMs: round(open200.doneMs) },
    smallGetBesideBulkWisp: {
      medianMs: round(smallSorted[Math.floor(smallSorted.length / 2)]),
      maxMs: round(smallSorted[smallSorted.length - 1]),
      requests: smallSorted.length,
    },
    bulk64MiB: { rawMBps: round(rawMBps), wispMBps: round(wispMBps) },
    runs,
    statistic: 'median',
  };
  // `cargo xtask bench` names the file and puts the figures into docs/benchmarks.md.
  const out = process.env.WASM_TLS_WISP_FIGURES || path.join(h.root, 'target/wisp-figures.json');
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(figures, null, 2) + '\n');
  console.log(`wisp figures: ${JSON.stringify(figures, null, 2)}`);

  assert.ok(wispOpen.openedMs < rawOpen.openedMs, JSON.stringify(figures.open20));
  // Loopback on a loaded machine: generous, the figure itself is what is recorded.
  assert.ok(wispOpen.openedMs < 1000, JSON.stringify(figures.open20));
  assert.ok(wispMBps > rawMBps / 3, JSON.stringify(figures.bulk64MiB));
});
