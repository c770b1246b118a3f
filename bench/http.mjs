// wasm-tls/http against its limits, in one run: a GET of one file from nginx (TLS 1.3 on
// 127.0.0.1) through the relay, raw and over Wisp, by fetch() over HTTP/1.1 and HTTP/2,
// next to the package's socket alone, the same bytes with no TLS through the same relay
// (the ceiling), and, in Chromium, the peers' fetch (libcurl.js, epoxy-tls) over the
// same Wisp relay; in Node.js, undici over Node's own TLS through the same relay. Then
// CPU profiles of one transfer per case, to name what bounds each figure. Writes a JSON
// file and the section between `<!-- http:begin -->` and `<!-- http:end -->` of
// docs/benchmarks.md. `cargo xtask bench --only http` builds what it needs and runs
// this; alone:
//
//   node bench/http.mjs [--bytes N] [--rounds N] [--only chromium|node] [--no-peers]
//     [--no-profiles] [--out FILE] [--doc FILE | --no-doc] [--relay-bin FILE]
//   node bench/http.mjs --render target/bench/http.json   # the section again
//
// It needs the relay (target/release/wasm-tls-relay, or --relay-bin), the package built
// in pkg/ (cargo xtask build-pkg), nginx, Chromium, tests/browser's npm packages and,
// for the peers' rows, bench/peers' (npm ci there).

import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { gzipSync } from 'node:zlib';

import * as h from '../tests/browser/harness.mjs';
import { httpServers } from '../tests/browser/http-servers.mjs';
import { snapshot, usage } from './datapath/cpu.mjs';
import { category, summarize } from './datapath/profile.mjs';
import * as scenarios from './datapath/scenarios.mjs';
import { median } from './datapath/scenarios.mjs';
import { makeRunner } from './http/cases.mjs';
import { render, splice } from './http/render.mjs';

const root = h.root;
const MiB = 1 << 20;
// undici and ws are the tests' npm packages.
const testsRequire = createRequire(path.join(root, 'tests/browser/package.json'));
const { Client } = testsRequire('undici');
const { WebSocket, createWebSocketStream } = testsRequire('ws');

/** A byte count: digits, with MiB (or M) for mebibytes. */
function size(v) {
  const m = /^(\d+)(MiB|M)?$/i.exec(v);
  if (!m) throw new Error(`not a size: ${v}`);
  return Number(m[1]) * (m[2] ? MiB : 1);
}

function parseArgs(argv) {
  const a = {
    bytes: 64 * MiB,
    rounds: 3,
    only: null,
    peers: true,
    profiles: true,
    out: path.join(root, 'target/bench/http.json'),
    doc: path.join(root, 'docs/benchmarks.md'),
    relayBin: path.join(root, 'target/release/wasm-tls-relay'),
    command: 'cargo xtask bench --only http',
    render: null,
  };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${k} needs a value`);
      return argv[++i];
    };
    if (k === '--bytes') a.bytes = size(v());
    else if (k === '--rounds') a.rounds = Number(v());
    else if (k === '--only') a.only = v();
    else if (k === '--no-peers') a.peers = false;
    else if (k === '--no-profiles') a.profiles = false;
    else if (k === '--out') a.out = path.resolve(v());
    else if (k === '--doc') a.doc = path.resolve(v());
    else if (k === '--no-doc') a.doc = null;
    else if (k === '--relay-bin') a.relayBin = path.resolve(v());
    else if (k === '--command') a.command = v();
    else if (k === '--render') a.render = path.resolve(v());
    else throw new Error(`unknown argument ${k}`);
  }
  return a;
}

const args = parseArgs(process.argv);
const log = (...m) => console.error('http:', ...m);

function writeDoc(out) {
  if (!args.doc) return;
  const doc = existsSync(args.doc) ? readFileSync(args.doc, 'utf8') : '';
  writeFileSync(args.doc, splice(doc, render(out)));
  log(`wrote ${args.doc}`);
}

if (args.render) {
  writeDoc(JSON.parse(readFileSync(args.render, 'utf8')));
  process.exit(0);
}

// ---- timing, with what other processes did meanwhile ----

const timeoutFor = (bytes) => Math.max(60000, (bytes / 1e6) * 1000); // at least 1 MB/s

async function measured(fn, what) {
  const a = snapshot();
  let timer;
  let r;
  try {
    r = await Promise.race([fn(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer`)), timeoutFor(args.bytes))))]);
  } catch (err) {
    r = { ok: false, error: String(err.message || err) };
  } finally {
    clearTimeout(timer);
  }
  r.cpu = usage(a, snapshot());
  r.others = r.cpu ? r.cpu.others : null;
  if (!r.ok) log(`${what}: ${r.error}`);
  return r;
}

/** Rows of one host: `cases` run round after round in turn, so that noise meets all alike. */
async function rounds(host, cases, run) {
  const rows = cases.map((c) => ({ host, ...c, rounds: [] }));
  for (const row of rows) {
    const w = await measured(() => run(row.spec), `${host} ${row.name} (warm-up)`);
    row.warm = { ok: w.ok, error: w.error };
  }
  for (let i = 0; i < args.rounds; i++) {
    for (const row of rows) {
      if (!row.warm.ok) continue;
      row.rounds.push(await measured(() => run(row.spec), `${host} ${row.name}`));
    }
  }
  for (const row of rows) {
    const ok = row.rounds.filter((r) => r.ok);
    row.mbps = median(ok.map((r) => r.mbps));
    row.each = ok.map((r) => Math.round(r.mbps * 10) / 10);
    row.ttfbMs = median(ok.map((r) => r.ttfbMs));
    row.others = median(row.rounds.map((r) => r.others));
    row.failures = row.rounds.filter((r) => !r.ok).map((r) => r.error);
    if (!ok.length) row.error = row.warm.error || row.failures[0] || 'no round';
    row.version = ok.find((r) => r.version)?.version;
    // The CPU figures of the round nearest the median.
    row.cpu = ok.sort((x, y) => Math.abs(x.mbps - row.mbps) - Math.abs(y.mbps - row.mbps))[0]?.cpu ?? null;
    delete row.rounds;
    log(`${host} ${row.name}: ${row.mbps === null ? row.error : `${row.mbps.toFixed(1)} MB/s, first byte ${row.ttfbMs?.toFixed(1)} ms`}`);
  }
  return rows;
}

/** The package's cases per relay: fetch over each protocol, the socket, the ceiling. */
function packageCases(s, relay, pki) {
  const base = { host: '127.0.0.1', tlsPort: s.h1Port, h2Port: s.h2Port, plainPort: s.plainPort, relay: relay.url, wisp: relay.wisp, ca: pki.ca, bytes: args.bytes };
  const out = [];
  for (const via of ['raw', 'wisp']) {
    out.push(
      { via, name: 'fetch HTTP/1.1', what: 'fetch', spec: { ...base, via, what: 'fetch', protocol: 'h1' } },
      { via, name: 'fetch HTTP/2', what: 'fetch', spec: { ...base, via, what: 'fetch', protocol: 'h2' } },
      { via, name: 'socket alone', what: 'socket', spec: { ...base, via, what: 'socket' } },
      { via, name: 'no TLS (ceiling)', what: 'ceiling', spec: { ...base, via, what: 'ceiling' } },
    );
  }
  return out;
}

// ---- Chromium ----

async function chromiumPart(s, relay, pki, out) {
  const browser = await h.browser();
  out.chromium = browser.version();
  const web = await h.staticServer();
  try {
    const page = await browser.newPage();
    await page.goto(`${web.url}/`);
    out.page = await page.evaluate(async () => {
      window.bench = await import('/bench/http/page.mjs');
      return window.bench.setup();
    });
    const run = (spec) => page.evaluate((spec) => window.bench.run(spec), spec);
    const cases = packageCases(s, relay, pki);
    if (args.peers) {
      // Each peer against both of nginx's ports: HTTP/1.1 only, and HTTP/2 by ALPN.
      for (const peer of ['libcurl.js', 'epoxy-tls']) {
        for (const [protocol, port] of [['HTTP/1.1', s.h1Port], ['HTTP/2', s.h2Port]]) {
          const spec = { what: 'peer', peer: peer === 'libcurl.js' ? 'libcurl' : 'epoxy', url: `https://127.0.0.1:${port}/big.bin`, wisp: relay.wisp, ca: pki.ca, bytes: args.bytes };
          cases.push({ via: 'wisp', name: `${peer} fetch ${protocol}`, what: 'peer', spec });
        }
      }
    }
    out.rows.push(...(await rounds('Chromium', cases, run)));
    if (args.profiles) {
      const cdp = await page.context().newCDPSession(page);
      for (const c of cases.filter((c) => c.via === 'raw' && c.what !== 'ceiling')) {
        await cdp.send('Profiler.enable');
        await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
        await cdp.send('Profiler.start');
        const r = await measured(() => run(c.spec), `profile of Chromium ${c.name}`);
        const { profile } = await cdp.send('Profiler.stop');
        await cdp.send('Profiler.disable');
        if (r.ok) out.profiles.push({ host: 'Chromium', via: c.via, name: c.name, mbps: r.mbps, ...summarize(profile) });
      }
    }
    await page.evaluate(() => window.bench.close());
  } finally {
    await browser.close();
    web.server.close();
  }
}

// ---- Node.js ----

/** undici over Node's own TLS, its TCP through the relay's raw WebSocket. */
function undiciRunner(relayUrl, ca, port) {
  const connect = (_opts, callback) => {
    const ws = new WebSocket(`${relayUrl}/127.0.0.1:${port}`);
    const socket = tlsConnect({ socket: createWebSocketStream(ws), ca, servername: 'localhost', ALPNProtocols: ['http/1.1'] });
    socket.once('secureConnect', () => callback(null, socket));
    socket.once('error', (err) => callback(err));
  };
  const client = new Client(`https://127.0.0.1:${port}`, { connect });
  return {
    async run() {
      const start = performance.now();
      const { body, statusCode } = await client.request({ path: '/big.bin', method: 'GET' });
      let ttfb = null;
      let bytes = 0;
      for await (const chunk of body) {
        if (ttfb === null) ttfb = performance.now() - start;
        bytes += chunk.length;
      }
      const seconds = (performance.now() - start) / 1000;
      const ok = statusCode === 200 && bytes === args.bytes;
      return { ok, bytes, seconds, mbps: ok ? bytes / seconds / 1e6 : 0, ttfbMs: ttfb, ...(ok ? {} : { error: `status ${statusCode}, ${bytes} bytes` }) };
    },
    close: () => client.close(),
  };
}

async function nodePart(s, relay, pki, out) {
  const [wasmTls, http] = await Promise.all([import('../pkg/index.js'), import('../pkg/http.js')]);
  const runner = makeRunner({ wasmTls, http, scenarios, WebSocket, stream: false });
  const undici = undiciRunner(relay.url, pki.ca, s.h1Port);
  const cases = packageCases(s, relay, pki);
  cases.push({ via: 'raw', name: "undici over Node's TLS", what: 'native', spec: { what: 'native' } });
  const run = (spec) => (spec.what === 'native' ? undici.run() : runner.run(spec));
  try {
    out.rows.push(...(await rounds('Node.js', cases, run)));
    if (args.profiles) {
      const session = new Session();
      session.connect();
      // Node names no stripped wasm module in its profiles, only a hash: the socket alone
      // runs first, and the wasm it runs is the TLS core's; any other is the HTTP module's.
      const tlsWasm = new Set();
      const categoryOf = (frame) => {
        const c = category(frame);
        return c === 'wasm' && !tlsWasm.has(frame.url) ? 'wasm-http' : c;
      };
      const profiled = cases.filter((c) => c.via === 'raw' && c.what !== 'ceiling');
      profiled.sort((a, b) => (b.what === 'socket') - (a.what === 'socket'));
      for (const c of profiled) {
        await session.post('Profiler.enable');
        await session.post('Profiler.setSamplingInterval', { interval: 200 });
        await session.post('Profiler.start');
        const r = await measured(() => run(c.spec), `profile of Node.js ${c.name}`);
        const { profile } = await session.post('Profiler.stop');
        await session.post('Profiler.disable');
        if (c.what === 'socket') for (const n of profile.nodes) if (n.callFrame.url.startsWith('wasm://')) tlsWasm.add(n.callFrame.url);
        if (r.ok) out.profiles.push({ host: 'Node.js', via: c.via, name: c.name, mbps: r.mbps, ...summarize(profile, 8, categoryOf) });
      }
      session.disconnect();
    }
  } finally {
    runner.close();
    await undici.close();
  }
}

// ---- size ----

function sizes() {
  const file = (f) => readFileSync(path.join(root, 'pkg', f));
  const gz = (b) => gzipSync(b, { level: 9 }).length;
  const wasm = file('wasm_tls_http_bg.wasm');
  const js = ['http.js', 'wasm_tls_http.js', ...readdirSync(path.join(root, 'pkg/src/http')).map((f) => `src/http/${f}`)].map(file);
  const jsAll = Buffer.concat(js);
  return { wasm: wasm.length, wasmGz: gz(wasm), js: jsAll.length, jsGz: js.reduce((n, b) => n + gz(b), 0) };
}

// ---- the run ----

const out = {
  command: args.command,
  bytes: args.bytes,
  rounds: args.rounds,
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, loadBefore: os.loadavg()[0] },
  rows: [],
  profiles: [],
  size: sizes(),
};
const pki = h.makePki();
const s = await httpServers(pki, { bigSize: args.bytes });
out.nginx = s.version ?? null;
const relay = await h.wispRelay([s.h1Port, s.h2Port, s.plainPort], [], '127.0.0.1:0', existsSync(args.relayBin) ? args.relayBin : h.binary('wasm-tls-relay'));
try {
  if (args.only !== 'node') await chromiumPart(s, relay, pki, out);
  if (args.only !== 'chromium') await nodePart(s, relay, pki, out);
} finally {
  await s.stop();
  h.stopAll();
}
out.machine.loadAfter = os.loadavg()[0];
mkdirSync(path.dirname(args.out), { recursive: true });
writeFileSync(args.out, `${JSON.stringify(out, null, 2)}\n`);
log(`wrote ${args.out}`);
writeDoc(out);
process.exit(0);
