// The data path as users load it, in Node.js and headless Chromium, over the raw relay
// and over Wisp: readers that pause 10 s or read slowly receive all of a 256 MiB
// download byte for byte while memory stays bounded; a 256 MiB write arrives whole and
// never holds the event loop longer than 50 ms.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { Duplex } from 'node:stream';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { WebSocket } from 'ws';
import * as h from './harness.mjs';
import * as scenarios from './datapath-client.mjs';
import * as wasmTls from '../../pkg/index.js';

const BYTES = Number(process.env.DATAPATH_BYTES || 256 << 20);
const MiB = 1 << 20;
// What the page or process may hold above its baseline while the reader is behind: the
// data path's own buffers are a few MiB; the rest is garbage not yet collected.
const MEMORY_BOUND = 128 * MiB;

let pki;
let bulk;
let relay;
let web;
let chromium;
let page;
let cdp;

before(async () => {
  pki = h.makePki();
  const child = spawn(process.execPath, [path.join(h.root, 'tests/browser/bulk-server.mjs'), pki.file('server.pem'), pki.file('server.key')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  h.track(child, 'bulk-server');
  const port = await new Promise((resolve) => child.stdout.on('data', (d) => resolve(Number(/listening on (\d+)/.exec(String(d))[1]))));
  bulk = { port, child };
  relay = await h.wispRelay([port]);
  web = await h.staticServer(h.nobleFiles());
  chromium = await h.browser();
  page = await chromium.newPage();
  await page.goto(`${web.url}/`);
  await h.loadInPage(page, 'datapath', { pkg: '/pkg/index.js', scenarios: '/tests/browser/datapath-client.mjs' });
  cdp = await page.context().newCDPSession(page);
});

after(async () => {
  if (chromium) await chromium.close();
  if (web) web.server.close();
  h.stopAll();
});

const target = () => `127.0.0.1:${bulk.port}`;
const nodeSha256 = h.nodeSha256;

function transportOptions(kind, where) {
  const base = { serverName: 'localhost', ca: pki.ca, bundledRoots: false };
  const ws = where === 'node' ? { WebSocket } : {};
  if (kind === 'raw') return { ...base, ...ws, relay: relay.url };
  if (kind === 'wisp') return { ...base, ...ws, wisp: relay.wisp };
  if (kind === 'websocket') return { ...base, relay: relay.url, webSocketStream: false };
  // No relay: the socket's own byte streams over a TCP connection.
  if (kind === 'tcp') return { ...base, transport: () => Duplex.toWeb(net.connect(bulk.port, '127.0.0.1')) };
  throw new Error(kind);
}

/** Heap, array buffers and wasm memory of this process, in bytes. */
function nodeMemory() {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers + wasmTls.wasmMemoryBytes();
}

/** The same for the page, through the DevTools protocol (sampled from here). */
async function pageMemory() {
  const heap = await cdp.send('Runtime.getHeapUsage');
  const wasm = await page.evaluate(() => globalThis.datapath.pkg.wasmMemoryBytes());
  return heap.usedSize + (heap.backingStorageSize || 0) + wasm;
}

async function inNode(name, kind, args) {
  globalThis.gc?.();
  const baseline = nodeMemory();
  const r = await scenarios[name](wasmTls, nodeSha256, target(), transportOptions(kind, 'node'), { ...args, sample: nodeMemory });
  if (r.peak) r.growth = r.peak - baseline;
  return r;
}

async function inPage(name, kind, args) {
  await cdp.send('HeapProfiler.collectGarbage');
  const baseline = await pageMemory();
  let peak = baseline;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, await pageMemory().catch(() => 0));
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  try {
    const r = await page.evaluate(
      ([name, target, options, args]) => {
        const d = globalThis.datapath;
        return d.scenarios[name](d.pkg, d.sha256, target, options, args);
      },
      [name, target(), transportOptions(kind, 'page'), args],
    );
    r.growth = peak - baseline;
    return r;
  } finally {
    sampling = false;
    await sampler;
  }
}

function assertWhole(r, what, t) {
  const text = `${what}: ${JSON.stringify(r)}`;
  if (t) t.diagnostic(`${(r.got / MiB).toFixed(0)} MiB in ${(r.ms / 1000).toFixed(1)} s; memory grew by at most ${(Math.max(0, r.growth) / MiB).toFixed(1)} MiB`);
  assert.ok(r.ok, text);
  assert.equal(r.got, BYTES, text);
  assert.ok(r.same, `${text}: the SHA-256 differs`);
  assert.ok(r.growth < MEMORY_BOUND, `${text}: memory grew by ${(r.growth / MiB).toFixed(1)} MiB`);
}

for (const kind of ['raw', 'wisp']) {
  test(`Node.js, ${kind}: a reader that pauses 10 s gets all of a ${BYTES / MiB} MiB download`, { timeout: 120000 }, async (t) => {
    assertWhole(await inNode('download', kind, { bytes: BYTES, reader: 'pause' }), kind, t);
  });
  test(`Node.js, ${kind}: a reader that waits 1 ms per 16 KiB gets it all too`, { timeout: 180000 }, async (t) => {
    assertWhole(await inNode('download', kind, { bytes: BYTES, reader: 'slow' }), kind, t);
  });
  test(`Chromium, ${kind}: a reader that pauses 10 s gets all of a ${BYTES / MiB} MiB download`, { timeout: 120000 }, async (t) => {
    assertWhole(await inPage('download', kind, { bytes: BYTES, reader: 'pause' }), kind, t);
  });
  test(`Chromium, ${kind}: a reader that waits 1 ms per 16 KiB gets it all too`, { timeout: 180000 }, async (t) => {
    assertWhole(await inPage('download', kind, { bytes: BYTES, reader: 'slow' }), kind, t);
  });
}

test('Node.js, the transport option over net.Socket (no relay): a pausing reader and a large write', { timeout: 120000 }, async () => {
  assertWhole(await inNode('download', 'tcp', { bytes: BYTES, reader: 'pause', pauseMs: 5000 }), 'tcp');
  const data = randomBytes(64 * MiB);
  const expected = createHash('sha256').update(data).digest('hex');
  const r = await scenarios.upload(wasmTls, target(), transportOptions('tcp', 'node'), data, expected);
  assert.ok(r.ok && r.same, JSON.stringify(r));
});

for (const [where, kinds] of [['Node.js', ['raw', 'wisp', 'tcp']], ['Chromium', ['raw', 'wisp']]]) {
  test(`${where}: a server that drops the connection mid-stream: every byte before it, then truncated`, { timeout: 120000 }, async () => {
    for (const kind of kinds) {
      const args = { bytes: 16 * MiB, reader: 'pause', pauseMs: 1000, verb: 'CUT' };
      const r = where === 'Node.js' ? await inNode('download', kind, args) : await inPage('download', kind, args);
      assert.equal(r.ok, false, `${kind}: ${JSON.stringify(r)}`);
      assert.equal(r.error.code, 'truncated', `${kind}: ${JSON.stringify(r)}`);
      assert.equal(r.got, 16 * MiB, `${kind}: ${JSON.stringify(r)}`);
      assert.ok(r.same, `${kind}: the bytes before the drop differ`);
    }
  });
}

test('Chromium, a plain WebSocket (no backpressure): parks up to receiveBufferLimit, then says so', { timeout: 60000 }, async () => {
  const fast = await inPage('download', 'websocket', { bytes: 64 * MiB, reader: 'fast' });
  assert.ok(fast.ok && fast.got === 64 * MiB && fast.same, JSON.stringify(fast));
  const r = await page.evaluate(
    ([target, options]) => globalThis.datapath.scenarios.download(globalThis.datapath.pkg, globalThis.datapath.sha256, target, options, { bytes: 64 << 20, reader: 'pause', pauseMs: 5000 }),
    [target(), { ...transportOptions('websocket', 'page'), receiveBufferLimit: 4 * MiB }],
  );
  assert.equal(r.ok, false, JSON.stringify(r));
  assert.equal(r.error.code, 'receive-overflow', JSON.stringify(r));
  assert.match(r.error.message, /receiveBufferLimit/);
});

/** A 256 MiB buffer of random bytes (getRandomValues takes 64 KiB at a time). */
function randomBytes(n) {
  const data = new Uint8Array(n);
  for (let off = 0; off < n; off += 1 << 16) randomFillSync(data, off, Math.min(1 << 16, n - off));
  return data;
}

for (const kind of ['raw', 'wisp']) {
  test(`Node.js, ${kind}: one ${BYTES / MiB} MiB write arrives whole; the event loop never waits 50 ms`, { timeout: 120000 }, async () => {
    const data = randomBytes(BYTES);
    const expected = createHash('sha256').update(data).digest('hex');
    const delay = monitorEventLoopDelay({ resolution: 5 });
    delay.enable();
    const r = await scenarios.upload(wasmTls, target(), transportOptions(kind, 'node'), data, expected);
    delay.disable();
    const maxMs = delay.max / 1e6;
    assert.ok(r.ok && r.same, JSON.stringify(r));
    assert.ok(maxMs < 50, `the event loop waited ${maxMs.toFixed(1)} ms (${JSON.stringify(r)})`);
  });

  test(`Chromium, ${kind}: one ${BYTES / MiB} MiB write arrives whole; no task runs 50 ms`, { timeout: 120000 }, async () => {
    const r = await page.evaluate(
      async ([target, options, n]) => {
        const d = globalThis.datapath;
        const data = new Uint8Array(n);
        for (let off = 0; off < n; off += 1 << 16) crypto.getRandomValues(data.subarray(off, off + (1 << 16)));
        const hash = d.sha256();
        hash.update(data);
        const expected = hash.hex();
        const long = [];
        const observer = new PerformanceObserver((list) => long.push(...list.getEntries()));
        observer.observe({ type: 'longtask' });
        const r = await d.scenarios.upload(d.pkg, target, options, data, expected);
        long.push(...observer.takeRecords());
        observer.disconnect();
        // The test's own work before the transfer is not counted.
        r.longTasks = long.filter((e) => e.startTime >= r.started).map((e) => Math.round(e.duration));
        return r;
      },
      [target(), transportOptions(kind, 'page'), BYTES],
    );
    assert.ok(r.ok && r.same, JSON.stringify(r));
    assert.deepEqual(r.longTasks, [], `tasks of 50 ms or more during the transfer: ${JSON.stringify(r)}`);
  });
}
