// The data-path benchmark's Node.js side, a child of bench/datapath.mjs (IPC): the
// package over `ws`, Node's own TLS (tls.connect over a Duplex on the same WebSocket or
// Wisp stream), and the ceilings, one transfer per message. With `profile` a row is
// profiled in-process through the inspector; with `count` the calls into wasm and the
// WebSocket messages are counted.

import { once } from 'node:events';
import inspector from 'node:inspector';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { fileURLToPath, pathToFileURL } from 'node:url';

import * as scenarios from './scenarios.mjs';
import { counters, reset, wrapGlue, countingWebSocket } from './instrument.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ws = createRequire(path.join(root, 'tests/browser/package.json'))('ws');

let wasmTls = null;
let WS = ws.WebSocket;
let counted = counters();
const wispConnections = new Map();
const now = () => performance.now();

const session = new inspector.Session();
session.connect();
const post = (method, params = {}) => new Promise((resolve, reject) => session.post(method, params, (err, r) => (err ? reject(err) : resolve(r))));

async function setup({ pkg, count }) {
  if (count) WS = countingWebSocket(ws.WebSocket, counted, true);
  const t0 = now();
  wasmTls = await import(pathToFileURL(path.join(pkg, 'index.js')).href);
  await wasmTls.init();
  const initMs = now() - t0;
  let wrapped = [];
  if (count) wrapped = wrapGlue(await import(pathToFileURL(path.join(pkg, 'wasm_tls.js')).href), counted);
  return { initMs, wrapped, node: process.version, openssl: process.versions.openssl };
}

async function wispConnection(url) {
  if (!wispConnections.has(url)) wispConnections.set(url, await scenarios.Wisp.open({ WS, url }));
  return wispConnections.get(url);
}

/** A Duplex over a Wisp stream, for tls.connect({ socket }). */
function wispDuplex(w, host, port) {
  const s = w.connect(host, port);
  const d = new Duplex({
    write(chunk, _encoding, callback) {
      w.send(s, chunk).then(() => callback(), callback);
    },
    read() {},
    final(callback) {
      callback();
    },
    destroy(err, callback) {
      w.closeStream(s);
      callback(err);
    },
  });
  s.ondata = (bytes) => d.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
  s.onclose = () => d.push(null);
  return d;
}

/** Resolves on 'drain', or once the socket is done (the server may answer and close first). */
const drained = (sock) =>
  new Promise((resolve) => {
    const done = () => {
      sock.off('drain', done);
      sock.off('close', done);
      sock.off('error', done);
      resolve();
    };
    sock.on('drain', done);
    sock.on('close', done);
    sock.on('error', done);
  });

/** Node's TLS (OpenSSL) over the same relay: a download or an upload as scenarios.pkg. */
async function native(row) {
  const t0 = now();
  const [host, port] = row.target.split(':');
  const socket =
    row.transport === 'ws'
      ? ws.createWebSocketStream(new ws.WebSocket(`${row.relay}/${row.target}`, ['binary']))
      : wispDuplex(await wispConnection(row.wisp), host, Number(port));
  const sock = tls.connect({
    socket,
    servername: 'localhost',
    ca: row.ca,
    ALPNProtocols: ['http/1.1'],
    ...(row.suite === 'chacha20' ? { ciphersuites: 'TLS_CHACHA20_POLY1305_SHA256' } : {}),
  });
  sock.on('error', () => {});
  await once(sock, 'secureConnect');
  const openMs = now() - t0;
  const r = new scenarios.Response();
  const finished = new Promise((resolve) => {
    sock.on('data', (d) => {
      r.push(d);
      if (r.complete) resolve();
    });
    sock.on('end', resolve);
    sock.on('close', resolve);
  });
  const start = now();
  if (row.kind === 'download') {
    sock.write(scenarios.getRequest(row.bytes));
  } else {
    sock.write(scenarios.postHead(row.bytes));
    // 64 KiB writes: each becomes one WebSocket message of about that size, as the
    // package's and the ceiling's are (a 1 MiB write would make a message over the
    // relay's 1 MiB limit, which closes the WebSocket).
    const chunk = Buffer.alloc(64 * 1024, 0x78);
    for (let off = 0; off < row.bytes; off += chunk.length) {
      if (!sock.write(off + chunk.length <= row.bytes ? chunk : chunk.subarray(0, row.bytes - off))) await drained(sock);
    }
  }
  await finished;
  const end = r.doneAt ?? now();
  const cipher = sock.getCipher();
  const protocol = sock.getProtocol();
  sock.destroy();
  return scenarios.result(row.kind, row.bytes, r, start, end, { openMs, protocol, cipherSuite: cipher && cipher.standardName });
}

function options(row) {
  const base = { serverName: 'localhost', ca: row.ca, bundledRoots: false, WebSocket: WS };
  if (row.resumption === false) base.resumption = false;
  return row.transport === 'ws' ? { ...base, relay: row.relay } : { ...base, wisp: row.wisp };
}

async function run(row) {
  reset(counted);
  if (row.profile) {
    await post('Profiler.enable');
    await post('Profiler.setSamplingInterval', { interval: row.profile });
    await post('Profiler.start');
  }
  let r;
  try {
    if (row.what === 'pkg') r = await scenarios.pkg(wasmTls, row.target, options(row), row.kind, row.bytes);
    else if (row.what === 'native') r = await native(row);
    else if (row.what === 'open') r = { ok: true, openMs: await scenarios.openTime(ws.WebSocket, `${row.relay}/${row.target}`) };
    else if (row.transport === 'ws') r = await scenarios.ws(WS, `${row.relay}/${row.target}`, row.kind, row.bytes);
    else {
      const [host, port] = row.target.split(':');
      r = await scenarios.wisp(await wispConnection(row.wisp), host, Number(port), row.kind, row.bytes);
    }
  } catch (err) {
    r = { ok: false, error: String(err && err.stack ? err.stack : err) };
  }
  if (row.profile) {
    r.profile = (await post('Profiler.stop')).profile;
    await post('Profiler.disable');
  }
  if (Object.keys(counted.calls).length || counted.messagesIn) r.counts = JSON.parse(JSON.stringify({ ...counted, constructed: undefined }));
  return r;
}

process.on('message', async (msg) => {
  let reply;
  try {
    if (msg.cmd === 'setup') reply = await setup(msg);
    else if (msg.cmd === 'run') reply = await run(msg.row);
    else if (msg.cmd === 'exit') {
      for (const w of wispConnections.values()) w.close();
      process.disconnect();
      return;
    }
  } catch (err) {
    reply = { ok: false, error: String(err && err.stack ? err.stack : err) };
  }
  process.send(reply);
});
