// Runs the benchmarks in headless Chromium (playwright-core, Debian's chromium):
//  1. the in-memory benchmarks: the bench crate built for wasm32-unknown-unknown and bound
//     with wasm-bindgen (--target web), called as runBenchmarks(json) in a page;
//  2. end to end: the npm package in pkg/ connects through the relay to the rustls test
//     server (examples/test_server.rs), times handshakes and downloads.
// `cargo xtask bench` builds everything, starts the servers and runs this:
//
//   node bench/chromium.mjs --web DIR --input FILE --out FILE
//        [--relay ws://… --target 127.0.0.1:PORT --ca FILE] [--download-bytes N]
//        [--handshakes N] [--downloads N]
//
// With --levers FILE (a JSON list of {name, web}) instead of --web, it loads each build in
// a page of its own and runs the input on them in turn, --passes times (interleaved, so
// that a busy machine weighs on all of them alike), and reports the median of the passes.

import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as h from '../tests/browser/harness.mjs';

function parseArgs(argv) {
  const args = { downloadBytes: 16 << 20, handshakes: 10, downloads: 3, passes: 5 };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, '').replace(/-(\w)/g, (_, c) => c.toUpperCase());
    args[key] = argv[++i];
  }
  for (const k of ['downloadBytes', 'handshakes', 'downloads', 'passes']) args[k] = Number(args[k]);
  return args;
}

const args = parseArgs(process.argv.slice(2));
if (!(args.web || args.levers || args.relay) || !args.out) {
  console.error('usage: node bench/chromium.mjs [--web DIR | --levers FILE] [--input FILE] --out FILE [--relay URL --target HOST:PORT --ca FILE]');
  process.exit(2);
}

const builds = args.levers ? JSON.parse(readFileSync(args.levers, 'utf8')) : args.web ? [{ name: 'bench', web: args.web }] : [];
const files = {};
for (const b of builds) {
  for (const f of ['wasm_tls_bench.js', 'wasm_tls_bench_bg.wasm']) files[`/${b.name}/${f}`] = path.resolve(b.web, f);
}
const web = await h.staticServer(files);
const chromium = await h.browser();
const result = { chromium: chromium.version(), bench: null, e2e: null, levers: null, errors: [] };
const log = [];

const median = (v) => {
  const s = v.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return null;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** The passes' reports merged: each figure's value is the median over the passes. */
function merge(reports) {
  const out = { ...reports[0], passes: reports.length, errors: reports.flatMap((r) => r.errors || []) };
  const fields = { handshakes: ['client_us', 'total_us'], bulk: ['decrypt_mbps', 'encrypt_mbps'], primitives: ['value'] };
  for (const [list, keys] of Object.entries(fields)) {
    out[list] = (reports[0][list] || []).map((fig) => {
      const merged = { ...fig };
      for (const k of keys) {
        const values = reports.map((r) => (r[list] || []).find((f) => f.id === fig.id)?.[k]);
        merged[k] = median(values);
        merged[`passes_${k}`] = values;
      }
      return merged;
    });
  }
  return out;
}

async function benchPage(name) {
  const page = await chromium.newPage();
  page.on('console', (m) => log.push(`${name}: ${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => log.push(`${name}: pageerror: ${e.message}`));
  await page.goto(`${web.url}/`);
  await page.evaluate(async (name) => {
    const mod = await import(`/${name}/wasm_tls_bench.js`);
    await mod.default();
    window.bench = mod;
  }, name);
  return page;
}

const runIn = (page, input) => page.evaluate((input) => window.bench.runBenchmarks(input), input).then(JSON.parse);

try {
  if (args.levers) {
    const input = readFileSync(args.input, 'utf8');
    const pages = [];
    for (const b of builds) pages.push([b.name, await benchPage(b.name)]);
    // One untimed pass first: V8 tiers hot functions up from its baseline compiler.
    for (const [, page] of pages) await runIn(page, input);
    const reports = Object.fromEntries(builds.map((b) => [b.name, []]));
    for (let pass = 0; pass < args.passes; pass++) {
      for (const [name, page] of pages) reports[name].push(await runIn(page, input));
    }
    result.levers = Object.fromEntries(Object.entries(reports).map(([name, r]) => [name, merge(r)]));
  }

  if (args.web && args.input) {
    result.bench = await runIn(await benchPage('bench'), readFileSync(args.input, 'utf8'));
  }

  if (args.relay && args.target) {
    // A fresh page: the package's wasm loads and compiles as it would for a user.
    const e2ePage = await chromium.newPage();
    e2ePage.on('console', (m) => log.push(`${m.type()}: ${m.text()}`));
    await e2ePage.goto(`${web.url}/`);
    const ca = readFileSync(args.ca, 'utf8');
    result.e2e = await e2ePage.evaluate(
      async ([target, relay, ca, bytes, handshakes, downloads]) => {
        const t0 = performance.now();
        const wasmTls = await import('/pkg/index.js');
        await wasmTls.init();
        const initMs = performance.now() - t0;
        const client = await import('/tests/browser/client.mjs');
        const base = { relay, serverName: 'localhost', ca, bundledRoots: false };
        const median = (v) => {
          const s = [...v].sort((a, b) => a - b);
          const m = s.length >> 1;
          return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
        };
        const encoder = new TextEncoder();
        // Times connect() until `opened`; then a request and its response, so that the
        // server's session tickets have arrived before the connection closes.
        async function openClose(options) {
          const start = performance.now();
          const socket = wasmTls.connect(target, options);
          const info = await socket.opened;
          const ms = performance.now() - start;
          const writer = socket.writable.getWriter();
          await writer.write(encoder.encode('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'));
          writer.releaseLock();
          const reader = socket.readable.getReader();
          while (!(await reader.read()).done);
          await socket.closed;
          return { ms, info };
        }
        const out = { initMs, target, relay };
        // The first connection also warms the relay and the server.
        out.first = (await openClose({ ...base, resumption: false })).ms;
        for (const [name, options] of [
          ['full', { ...base, resumption: false }],
          ['resumed', { ...base }],
        ]) {
          const times = [];
          let info;
          let resumed = 0;
          for (let i = 0; i < handshakes; i++) {
            const r = await openClose(options);
            times.push(r.ms);
            info = r.info;
            if (info.resumed) resumed++;
          }
          out[name] = {
            medianMs: median(times),
            timesMs: times,
            resumed,
            protocol: info.protocol,
            cipherSuite: info.cipherSuite,
          };
        }
        const rates = [];
        let info;
        for (let i = 0; i < downloads; i++) {
          const r = await client.download(wasmTls, target, base, bytes);
          if (!r.ok) return { ...out, error: r.error };
          rates.push(r.mbps);
          info = r.info;
        }
        out.download = {
          bytes,
          medianMbps: median(rates),
          rounds: rates,
          cipherSuite: info && info.cipherSuite,
          protocol: info && info.protocol,
        };
        return out;
      },
      [args.target, args.relay, ca, args.downloadBytes, args.handshakes, args.downloads],
    );
  }
} catch (err) {
  result.errors.push(String(err && err.stack ? err.stack : err));
} finally {
  result.log = log.slice(-50);
  await chromium.close();
  web.server.close();
}
writeFileSync(args.out, JSON.stringify(result, null, 2));
console.error(`chromium ${result.chromium}: results in ${args.out}${result.errors.length ? ` (errors: ${result.errors.join('; ')})` : ''}`);
