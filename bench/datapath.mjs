// The package's data path against the limit of its path, in one run: downloads and
// uploads through the package (TLS, wasm) next to the same bytes without TLS through
// the same relay over the same kind of WebSocket (the ceiling), in headless Chromium
// and in Node.js (where Node's own TLS over the same WebSocket is the reference too);
// handshake and first-byte times; what each figure is bound by, from CPU profiles and
// /proc; the calls into wasm and the messages per transfer. Writes a JSON file and the
// section between `<!-- datapath:begin -->` and `<!-- datapath:end -->` of
// docs/benchmarks.md. `cargo xtask bench --only datapath` builds what it needs and runs
// this; alone:
//
//   node bench/datapath.mjs [--bytes N] [--rounds N] [--handshakes N] [--pkg DIR]
//     [--named-pkg DIR] [--pki DIR] [--only chromium|node] [--out FILE]
//     [--doc FILE | --no-doc] [--profile-bytes N] [--count-bytes N] [--interval µs]
//   node bench/datapath.mjs --render target/bench/datapath.json   # the section again
//
// It needs target/release/wasm-tls-relay and target/release/examples/test_server, the
// package built in pkg/ (cargo xtask build-pkg), Chromium, websockify (optional) and
// tests/browser's npm packages.

import { fork } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import os from 'node:os';
import path from 'node:path';

import * as h from '../tests/browser/harness.mjs';
import { connect as cdpConnect, newPage as newCdpPage } from './datapath/cdp.mjs';
import { snapshot, usage } from './datapath/cpu.mjs';
import { summarize } from './datapath/profile.mjs';
import { render, splice } from './datapath/render.mjs';
import { children, machine, pkiFiles, servers } from './datapath/servers.mjs';
import { median } from './datapath/scenarios.mjs';

const root = h.root;
const MiB = 1 << 20;

function parseArgs(argv) {
  const a = {
    bytes: 256 * MiB,
    rounds: 3,
    handshakes: 20,
    profileBytes: null,
    countBytes: 16 * MiB,
    warmBytes: 8 * MiB,
    interval: 200,
    pkg: path.join(root, 'pkg'),
    namedPkg: null,
    pki: null,
    only: null,
    out: path.join(root, 'target/bench/datapath.json'),
    doc: path.join(root, 'docs/benchmarks.md'),
    relayBin: path.join(root, 'target/release/wasm-tls-relay'),
    serverBin: path.join(root, 'target/release/examples/test_server'),
    command: 'cargo xtask bench --only datapath',
  };
  const num = (v) => {
    const m = /^(\d+(?:\.\d+)?)([KMG]i?B?)?$/i.exec(v);
    if (!m) throw new Error(`not a size: ${v}`);
    const unit = { k: 1 << 10, m: MiB, g: 1 << 30 }[(m[2] || ' ')[0].toLowerCase()] || 1;
    return Math.round(Number(m[1]) * unit);
  };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${k} needs a value`);
      return argv[++i];
    };
    if (k === '--bytes') a.bytes = num(v());
    else if (k === '--rounds') a.rounds = Number(v());
    else if (k === '--handshakes') a.handshakes = Number(v());
    else if (k === '--profile-bytes') a.profileBytes = num(v());
    else if (k === '--count-bytes') a.countBytes = num(v());
    else if (k === '--interval') a.interval = Number(v());
    else if (k === '--pkg') a.pkg = path.resolve(v());
    else if (k === '--named-pkg') a.namedPkg = path.resolve(v());
    else if (k === '--pki') a.pki = path.resolve(v());
    else if (k === '--only') a.only = v();
    else if (k === '--out') a.out = path.resolve(v());
    else if (k === '--doc') a.doc = path.resolve(v());
    else if (k === '--no-doc') a.doc = null;
    else if (k === '--relay-bin') a.relayBin = path.resolve(v());
    else if (k === '--server-bin') a.serverBin = path.resolve(v());
    else if (k === '--command') a.command = v();
    else if (k === '--render') a.render = path.resolve(v());
    else throw new Error(`unknown argument ${k}`);
  }
  if (a.profileBytes === null) a.profileBytes = Math.max(8 * MiB, Math.floor(a.bytes / 4));
  a.countBytes = Math.min(a.countBytes, a.bytes);
  a.warmBytes = Math.min(a.warmBytes, a.bytes);
  return a;
}

const args = parseArgs(process.argv);
const log = (...m) => console.error('datapath:', ...m);

// ---- running rows, timed, with the CPU each process used ----

const withTimeout = (promise, ms, what) => {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer in ${Math.round(ms / 1000)} s`)), ms))),
  ]);
};

const timeoutFor = (bytes) => Math.max(60000, (bytes / 1e6) * 1000); // at least 1 MB/s

async function measured(fn, bytes, what) {
  const a = snapshot();
  let r;
  try {
    r = await withTimeout(fn(), timeoutFor(bytes || 0), what);
  } catch (err) {
    r = { ok: false, error: String(err.message || err), timedOut: true };
  }
  r.cpu = usage(a, snapshot());
  return r;
}

/** Others busier than this (CPUs) during a timed transfer: it is run again once. */
const OTHERS_LIMIT = 0.5;

/** Runs a timed transfer; up to twice again while other processes were busy, keeping the quietest run. */
async function quieter(fn) {
  let kept = await fn();
  const busy = (r) => !r.ok || !r.cpu || r.cpu.others == null ? 0 : r.cpu.others;
  for (let i = 0; i < 2 && kept.ok && busy(kept) > OTHERS_LIMIT; i++) {
    const again = await fn();
    const repeated = true;
    if (again.ok && busy(again) < busy(kept)) kept = again;
    kept.repeated = repeated;
  }
  return kept;
}

/** Runs a timed transfer (quieter()), again up to twice if it failed; the failures are kept. */
async function steady(fn) {
  const failures = [];
  let r = await quieter(fn);
  while (!r.ok && failures.length < 2) {
    failures.push(r.error);
    r = await quieter(fn);
  }
  if (failures.length) r.failedBefore = failures;
  return r;
}

/** Results by key ("chromium|relay|ws|pkg|download"): rounds of a row. */
const results = {};
function keep(key, r, meta) {
  if (!results[key]) results[key] = { key, ...meta, rounds: [] };
  results[key].rounds.push(r);
  if (!r.ok) log(`${key}: ${r.error}`);
}

// ---- Chromium ----

const TYPES = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };

/** Serves the package at /dp-pkg/, the named copy at /dp-pkg-named/ and bench/datapath/. */
async function staticServer(pkgDir, named) {
  const dirs = { '/dp-pkg/': pkgDir, '/dp-pkg-named/': named, '/bench/datapath/': path.join(root, 'bench/datapath') };
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>wasm-tls data path</title>');
      return;
    }
    const prefix = Object.keys(dirs).find((p) => url.pathname.startsWith(p) && dirs[p]);
    const rel = prefix && decodeURIComponent(url.pathname.slice(prefix.length));
    if (!rel || rel.split('/').includes('..')) {
      res.writeHead(404);
      res.end();
      return;
    }
    try {
      const body = readFileSync(path.join(dirs[prefix], rel));
      res.writeHead(200, { 'content-type': TYPES[path.extname(rel)] || 'application/octet-stream', 'cache-control': 'no-store' });
      res.end(body);
    } catch {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, server };
}

/** What one relay offers the page: the URLs per target, and the transports to try. */
function pageRelays(s) {
  const list = [{ relay: 'wasm-tls-relay', tls: s.relay, plain: s.relay, wisp: s.wisp, transports: ['ws', 'wss', 'wisp-ws', 'wisp-wss'] }];
  if (s.websockify) list.push({ relay: 'websockify', tls: s.websockify.tls, plain: s.websockify.plain, transports: ['ws', 'wss'] });
  return list;
}

/** Which class the package's connection must construct for a transport. */
const expected = { ws: 'WebSocket', wss: 'WebSocketStream', 'wisp-ws': 'WebSocket', 'wisp-wss': 'WebSocketStream' };

/** Headless Chromium as the tests launch it, with a DevTools port for pages of our own (bench/datapath/cdp.mjs says why). */
async function launchChromium() {
  const port = await h.freePort();
  const browser = await h.browser([`--remote-debugging-port=${port}`]);
  return { browser, cdp: await cdpConnect(port) };
}

async function chromiumPart(s, pki, out) {
  const { browser, cdp } = await launchChromium();
  out.chromium = browser.version();
  const web = await staticServer(args.pkg, args.namedPkg);
  const consoleLog = [];
  const newPage = async (pkg, count) => {
    const page = await newCdpPage(cdp, `${web.url}/`, (line) => consoleLog.push(line));
    const info = await page.evaluate(
      async ([pkg, count]) => {
        const m = await import('/bench/datapath/page.mjs');
        window.dp = m;
        return m.setup({ pkg, count });
      },
      [pkg, count],
    );
    return { page, info };
  };
  const relays = pageRelays(s);
  const rowFor = (r, transport, what, kind, bytes, extra = {}) => ({
    transport,
    what,
    kind,
    bytes,
    relay: what === 'pkg' ? r.tls : r.plain,
    wisp: r.wisp,
    target: what === 'pkg' ? s.tlsTarget : s.plainTarget,
    ca: pki.ca,
    ...extra,
  });
  let current = await newPage('/dp-pkg', false);
  out.pageInfo = current.info;
  const run = async (row, what) => {
    const r = await measured(() => current.page.evaluate((row) => window.dp.run(row), row), row.bytes, what);
    if (r.timedOut) {
      // The page may be stuck in the transfer: start over with a fresh one.
      await current.page.close().catch(() => {});
      current = await newPage('/dp-pkg', false);
    }
    return r;
  };

  // Warm-up, and which transports this package has: the class its connection constructed.
  const supported = {};
  for (const r of relays) {
    for (const t of r.transports) {
      if (t.endsWith('wss') && !current.info.webSocketStream) continue;
      const w = await run(rowFor(r, t, 'pkg', 'download', args.warmBytes), 'warm-up');
      const used = Object.keys(w.used || {});
      supported[`${r.relay}|${t}`] = { pkg: w.ok && used.includes(expected[t]) && used.length === 1, used, error: w.ok ? null : w.error };
      await run(rowFor(r, t, 'ceiling', 'download', args.warmBytes), 'warm-up');
      log(`chromium ${r.relay} ${t}: the package used ${used.join(', ') || 'nothing'}${w.ok ? ` (${w.mbps.toFixed(0)} MB/s)` : `: ${w.error}`}`);
    }
  }
  out.supported = supported;
  const pkgRows = (r, t) => supported[`${r.relay}|${t}`] && supported[`${r.relay}|${t}`].pkg;
  const hasTransport = (r, t) => supported[`${r.relay}|${t}`] !== undefined;

  // A page of playwright's own as well, as tests/browser and bench/chromium.mjs drive
  // theirs (the Network domain on): the raw relay over a WebSocket, in each round.
  const pw = await browser.newPage();
  pw.on('console', (m) => consoleLog.push(`playwright page: ${m.type()}: ${m.text()}`));
  await pw.goto(`${web.url}/`);
  await pw.evaluate(async ([pkg]) => {
    const m = await import('/bench/datapath/page.mjs');
    window.dp = m;
    return m.setup({ pkg, count: false });
  }, ['/dp-pkg']);
  const viaPlaywright = relays[0];
  await pw.evaluate((row) => window.dp.run(row), rowFor(viaPlaywright, 'ws', 'pkg', 'download', args.warmBytes));

  for (const kind of ['download', 'upload']) {
    for (let round = 0; round < args.rounds; round++) {
      for (const r of relays) {
        for (const t of r.transports) {
          if (!hasTransport(r, t)) continue;
          for (const what of ['pkg', 'ceiling']) {
            if (what === 'pkg' && !pkgRows(r, t)) continue;
            const key = `chromium|${r.relay}|${t}|${what}|${kind}`;
            log(`${key} round ${round + 1}`);
            keep(key, await steady(() => run(rowFor(r, t, what, kind, args.bytes), key)), { host: 'chromium', relay: r.relay, transport: t, what, kind });
          }
        }
      }
      for (const what of ['pkg', 'ceiling']) {
        const key = `chromium|${viaPlaywright.relay}|ws|${what}-playwright|${kind}`;
        log(`${key} round ${round + 1}`);
        const row = rowFor(viaPlaywright, 'ws', what, kind, args.bytes);
        keep(key, await steady(() => measured(() => pw.evaluate((row) => window.dp.run(row), row), args.bytes, key)), {
          host: 'chromium',
          relay: viaPlaywright.relay,
          transport: 'ws',
          what: `${what}-playwright`,
          kind,
        });
      }
    }
  }
  await pw.close();

  // Handshakes and first bytes: the package's full handshake, the floor (opening the
  // WebSocket to the TLS server), the plain server's first byte.
  for (const r of relays) {
    for (const t of r.transports) {
      if (!hasTransport(r, t)) continue;
      const hs = [];
      const floor = [];
      const plain = [];
      for (let i = 0; i < args.handshakes; i++) {
        if (pkgRows(r, t)) hs.push(await run(rowFor(r, t, 'pkg', 'download', 1, { resumption: false }), 'handshake'));
        if (!t.startsWith('wisp')) floor.push(await run({ ...rowFor(r, t, 'pkg', 'download', 0), what: 'open' }, 'open'));
        plain.push(await run(rowFor(r, t, 'ceiling', 'download', 1), 'first byte'));
      }
      out.handshakes.push({ host: 'chromium', relay: r.relay, transport: t, pkg: hs, open: floor, plain });
    }
  }
  await current.page.evaluate(() => window.dp.closeWisp());
  await current.page.close();

  // Profiles: one transfer per row with the profiler on (the package with its wasm's
  // function names kept, if given).
  const prof = await newPage(args.namedPkg ? '/dp-pkg-named' : '/dp-pkg', false);
  for (const r of relays) {
    for (const t of r.transports) {
      if (!hasTransport(r, t)) continue;
      for (const kind of ['download', 'upload']) {
        for (const what of ['pkg', 'ceiling']) {
          if (what === 'pkg' && !pkgRows(r, t)) continue;
          const key = `chromium|${r.relay}|${t}|${what}|${kind}`;
          try {
            // The same kind of transfer first, unprofiled: the code is optimised by then.
            await withTimeout(prof.page.evaluate((row) => window.dp.run(row), rowFor(r, t, what, kind, args.warmBytes)), timeoutFor(args.warmBytes), key);
            await prof.page.send('Profiler.enable');
            await prof.page.send('Profiler.setSamplingInterval', { interval: args.interval });
            await prof.page.send('Profiler.start');
            const res = await measured(() => prof.page.evaluate((row) => window.dp.run(row), rowFor(r, t, what, kind, args.profileBytes)), args.profileBytes, key);
            const { profile } = await prof.page.send('Profiler.stop');
            await prof.page.send('Profiler.disable');
            if (!res.ok) out.warnings.push(`profile of ${key}: ${res.error}`);
            else if (results[key]) results[key].profile = { ...summarize(profile), mbps: res.mbps, bytes: args.profileBytes, cpu: res.cpu, named: Boolean(args.namedPkg) };
            log(`profiled ${key}`);
          } catch (err) {
            out.warnings.push(`profile of ${key}: ${err.message}`);
          }
        }
      }
    }
  }
  await prof.page.evaluate(() => window.dp.closeWisp());
  await prof.page.close();

  // Counts: calls into wasm and messages, per transfer.
  const cnt = await newPage('/dp-pkg', true);
  out.wrapped = cnt.info.wrapped;
  for (const r of relays) {
    for (const t of r.transports) {
      if (!hasTransport(r, t)) continue;
      for (const kind of ['download', 'upload']) {
        for (const what of ['pkg', 'ceiling']) {
          if (what === 'pkg' && !pkgRows(r, t)) continue;
          const key = `chromium|${r.relay}|${t}|${what}|${kind}`;
          let res;
          try {
            res = await withTimeout(cnt.page.evaluate((row) => window.dp.run(row), rowFor(r, t, what, kind, args.countBytes)), timeoutFor(args.countBytes), key);
          } catch (err) {
            out.warnings.push(`counts of ${key}: ${err.message}`);
            continue;
          }
          if (results[key]) results[key].counts = { ...(res.counts || {}), bytes: args.countBytes, reads: res.reads, ok: res.ok, error: res.error };
        }
      }
    }
  }
  await cnt.page.evaluate(() => window.dp.closeWisp());
  cdp.close();
  await browser.close();
  web.server.close();
  out.chromiumLog = consoleLog.slice(-30);
}

// ---- Node.js ----

function nodeClient() {
  const child = fork(path.join(root, 'bench/datapath/node-client.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.push(child);
  let pending = null;
  child.on('message', (m) => {
    const p = pending;
    pending = null;
    if (p) p(m);
  });
  child.on('exit', () => {
    const p = pending;
    pending = null;
    if (p) p({ ok: false, error: 'the Node client exited' });
  });
  const ask = (msg) =>
    new Promise((resolve) => {
      pending = resolve;
      child.send(msg);
    });
  return {
    setup: (o) => ask({ cmd: 'setup', ...o }),
    run: (row) => ask({ cmd: 'run', row }),
    close: () => {
      try {
        child.send({ cmd: 'exit' });
      } catch {}
      setTimeout(() => child.kill(), 2000).unref();
    },
  };
}

async function nodePart(s, pki, out) {
  const rowFor = (transport, what, kind, bytes, extra = {}) => ({
    transport,
    what,
    kind,
    bytes,
    relay: s.relay,
    wisp: s.wisp,
    target: what === 'ceiling' ? s.plainTarget : s.tlsTarget,
    ca: pki.ca,
    ...extra,
  });
  // The references: Node's TLS with the suite the package negotiates, and with its own
  // default choice.
  const whats = [
    ['pkg', {}],
    ['native', { suite: 'chacha20' }],
    ['native-default', { suite: 'default' }],
    ['ceiling', {}],
  ];
  const rowOf = (t, [name, extra], kind, bytes, more = {}) => rowFor(t, name.startsWith('native') ? 'native' : name, kind, bytes, { ...extra, ...more });
  // A Node client per pass, started again if a transfer hangs.
  const runner = async (options) => {
    let client = nodeClient();
    const info = await client.setup(options);
    const run = async (row, what) => {
      const r = await measured(() => client.run(row), row.bytes, what);
      if (r.timedOut) {
        client.close();
        client = nodeClient();
        await client.setup(options);
      }
      return r;
    };
    return { info, run, close: () => client.close() };
  };
  let pass = await runner({ pkg: args.pkg, count: false });
  out.nodeInfo = pass.info;
  let run = pass.run;
  for (const t of ['ws', 'wisp']) for (const w of whats) await run(rowOf(t, w, 'download', args.warmBytes), 'warm-up');
  for (const kind of ['download', 'upload']) {
    for (let round = 0; round < args.rounds; round++) {
      for (const t of ['ws', 'wisp']) {
        for (const w of whats) {
          const key = `node|wasm-tls-relay|${t}|${w[0]}|${kind}`;
          log(`${key} round ${round + 1}`);
          keep(key, await steady(() => run(rowOf(t, w, kind, args.bytes), key)), { host: 'node', relay: 'wasm-tls-relay', transport: t, what: w[0], kind });
        }
      }
    }
  }
  for (const t of ['ws', 'wisp']) {
    const hs = [];
    const native = [];
    const floor = [];
    const plain = [];
    for (let i = 0; i < args.handshakes; i++) {
      hs.push(await run(rowOf(t, whats[0], 'download', 1, { resumption: false }), 'handshake'));
      native.push(await run(rowOf(t, whats[2], 'download', 1), 'native handshake'));
      if (t === 'ws') floor.push(await run({ ...rowFor(t, 'open', 'download', 0) }, 'open'));
      plain.push(await run(rowOf(t, whats[3], 'download', 1), 'first byte'));
    }
    out.handshakes.push({ host: 'node', relay: 'wasm-tls-relay', transport: t, pkg: hs, native, open: floor, plain });
  }
  pass.close();

  // Profiles, in a fresh process (the package with names, if given).
  pass = await runner({ pkg: args.namedPkg || args.pkg, count: false });
  run = pass.run;
  for (const t of ['ws', 'wisp']) {
    for (const kind of ['download', 'upload']) {
      for (const w of whats) {
        const key = `node|wasm-tls-relay|${t}|${w[0]}|${kind}`;
        await run(rowOf(t, w, kind, args.warmBytes), 'warm-up');
        const res = await run(rowOf(t, w, kind, args.profileBytes, { profile: args.interval }), key);
        if (!res.ok) out.warnings.push(`profile of ${key}: ${res.error}`);
        else if (results[key] && res.profile) results[key].profile = { ...summarize(res.profile), mbps: res.mbps, bytes: args.profileBytes, cpu: res.cpu, named: Boolean(args.namedPkg) };
        log(`profiled ${key}`);
      }
    }
  }
  pass.close();

  // Counts.
  pass = await runner({ pkg: args.pkg, count: true });
  out.nodeWrapped = pass.info.wrapped;
  for (const t of ['ws', 'wisp']) {
    for (const kind of ['download', 'upload']) {
      for (const w of [whats[0], whats[3]]) {
        const key = `node|wasm-tls-relay|${t}|${w[0]}|${kind}`;
        const res = await pass.run(rowOf(t, w, kind, args.countBytes), key);
        if (results[key]) results[key].counts = { ...(res.counts || {}), bytes: args.countBytes, reads: res.reads, ok: res.ok, error: res.error };
      }
    }
  }
  pass.close();
}

// ---- main ----

if (args.render) {
  // Only the section again, from a run's JSON (after a change to render.mjs).
  const section = render(JSON.parse(readFileSync(args.render, 'utf8')));
  if (!args.doc) process.stdout.write(section);
  else writeFileSync(args.doc, splice(existsSync(args.doc) ? readFileSync(args.doc, 'utf8') : '# Benchmarks\n', section));
  process.exit(0);
}

const started = Date.now();
const out = { date: new Date().toISOString(), args: { ...args }, handshakes: [], errors: [], warnings: [] };
try {
  mkdirSync(path.dirname(args.out), { recursive: true });
  // The package as it is now, for the whole run, whatever happens to its directory meanwhile.
  const snapshot = path.join(root, 'target/bench/datapath/pkg-run');
  rmSync(snapshot, { recursive: true, force: true });
  cpSync(args.pkg, snapshot, { recursive: true, filter: (p) => !p.includes('node_modules') });
  out.pkgDir = args.pkg;
  args.pkg = snapshot;
  out.machine = await machine();
  const pki = pkiFiles(args.pki);
  const s = await servers(pki, args);
  out.servers = { relay: s.relay, websockify: Boolean(s.websockify) };
  if (!args.only || args.only === 'chromium') await chromiumPart(s, pki, out);
  if (!args.only || args.only === 'node') await nodePart(s, pki, out);
} catch (err) {
  out.errors.push(String(err && err.stack ? err.stack : err));
  log(err && err.stack ? err.stack : err);
} finally {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {}
  }
  h.stopAll();
}
out.seconds = (Date.now() - started) / 1000;
out.machine && (out.machine.loadAfter = os.loadavg());
for (const r of Object.values(results)) {
  const ok = r.rounds.filter((x) => x.ok);
  r.mbps = median(ok.map((x) => x.mbps));
  r.failed = r.rounds.length - ok.length;
  // The CPU use of the round closest to the median.
  const mid = ok.slice().sort((a, b) => Math.abs(a.mbps - r.mbps) - Math.abs(b.mbps - r.mbps))[0];
  r.cpu = mid ? mid.cpu : null;
  r.info = mid ? { protocol: mid.protocol, cipherSuite: mid.cipherSuite } : null;
}
out.results = results;
writeFileSync(args.out, JSON.stringify(out, null, 1));
log(`results in ${args.out} (${out.seconds.toFixed(0)} s)`);
if (args.doc) {
  const section = render(out);
  const old = existsSync(args.doc) ? readFileSync(args.doc, 'utf8') : '# Benchmarks\n';
  writeFileSync(args.doc, splice(old, section));
  log(`wrote the data-path section of ${args.doc}`);
}
process.exit(out.errors.length ? 1 : 0);
