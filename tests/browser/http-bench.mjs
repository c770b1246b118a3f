// A measurement, not a test: the time to first byte and the throughput of a 64 MiB GET
// through the relay (raw and Wisp) from nginx, in Node.js and headless Chromium, for
// wasm-tls/http's fetch over HTTP/1.1 and HTTP/2, beside the package's socket alone
// (a hand-written HTTP/1.1 GET on connect()), and, in Node.js, undici over Node's own TLS
// through the same relay. Best of RUNS. Run it by hand after `cargo xtask build-pkg`
// and a debug build of the relay: node tests/browser/http-bench.mjs

import { connect as tlsConnect } from 'node:tls';
import { Client } from 'undici';
import { WebSocket, createWebSocketStream } from 'ws';
import * as h from './harness.mjs';
import { httpServers } from './http-servers.mjs';
import * as http from '../../pkg/http.js';
import * as wasmTls from '../../pkg/index.js';

const BYTES = 64 << 20;
const RUNS = Number(process.env.RUNS || 3);

/** The measured cases, run the same way in the page and in Node.js. */
async function cases(http, wasmTls, opts, h1Port, h2Port) {
  const out = {};
  const measure = async (name, once) => {
    let best = null;
    for (let i = 0; i < opts.runs; i++) {
      const r = await once();
      if (!best || r.ms < best.ms) best = r;
    }
    out[name] = { ttfbMs: Math.round(best.ttfb), mbPerS: Math.round((opts.bytes / 1e6 / (best.ms / 1000)) * 10) / 10, bytes: best.bytes };
  };
  const drain = async (stream, started) => {
    const reader = stream.getReader();
    let ttfb = null;
    let bytes = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (ttfb === null) ttfb = performance.now() - started;
      bytes += value.length;
    }
    return { ttfb, bytes, ms: performance.now() - started };
  };
  for (const [name, port] of [
    ['fetch HTTP/1.1', h1Port],
    ['fetch HTTP/2', h2Port],
  ]) {
    const client = http.createClient(opts.client);
    await (await client.fetch(`https://127.0.0.1:${port}/`)).text();
    await measure(name, async () => {
      const started = performance.now();
      const response = await client.fetch(`https://127.0.0.1:${port}/big.bin`);
      return drain(response.body, started);
    });
    client.close();
  }
  await measure('socket alone', async () => {
    const started = performance.now();
    const socket = wasmTls.connect(`127.0.0.1:${h1Port}`, { ...opts.client, alpn: ['http/1.1'] });
    const writer = socket.writable.getWriter();
    await writer.write(`GET /big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    const r = await drain(socket.readable, started);
    return r;
  });
  return out;
}

/** undici over Node's TLS, its TCP through the relay's raw WebSocket. */
async function undiciCase(relayUrl, ca, port) {
  const connect = (_opts, callback) => {
    const ws = new WebSocket(`${relayUrl}/127.0.0.1:${port}`);
    const stream = createWebSocketStream(ws);
    const socket = tlsConnect({ socket: stream, ca, servername: 'localhost', ALPNProtocols: ['http/1.1'] });
    socket.once('secureConnect', () => callback(null, socket));
    socket.once('error', (err) => callback(err));
  };
  const client = new Client(`https://127.0.0.1:${port}`, { connect });
  let best = null;
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now();
    const { body } = await client.request({ path: '/big.bin', method: 'GET' });
    let ttfb = null;
    let bytes = 0;
    for await (const chunk of body) {
      if (ttfb === null) ttfb = performance.now() - started;
      bytes += chunk.length;
    }
    const ms = performance.now() - started;
    if (!best || ms < best.ms) best = { ttfb, bytes, ms };
  }
  await client.close();
  return { ttfbMs: Math.round(best.ttfb), mbPerS: Math.round((BYTES / 1e6 / (best.ms / 1000)) * 10) / 10, bytes: best.bytes };
}

const pki = h.makePki();
const servers = await httpServers(pki, { bigSize: BYTES });
const relay = await h.wispRelay([servers.h2Port, servers.h1Port]);
const web = await h.staticServer();
const chromium = await h.browser();
const rows = [];
try {
  const page = await chromium.newPage();
  await page.goto(`${web.url}/`);
  for (const via of ['raw', 'wisp']) {
    const client = { ...(via === 'wisp' ? { wisp: relay.wisp } : { relay: relay.url }), ca: pki.ca, bundledRoots: false };
    const opts = { client, runs: RUNS, bytes: BYTES };
    const node = await cases(http, wasmTls, { ...opts, client: { ...client, WebSocket } }, servers.h1Port, servers.h2Port);
    for (const [name, r] of Object.entries(node)) rows.push({ where: 'Node.js', via, name, ...r });
    const inPage = await page.evaluate(
      async ([source, opts, h1Port, h2Port]) => {
        const [http, wasmTls] = await Promise.all([import('/pkg/http.js'), import('/pkg/index.js')]);
        // eslint-disable-next-line no-new-func
        const run = new Function(`return (${source})`)();
        return run(http, wasmTls, opts, h1Port, h2Port);
      },
      [cases.toString(), opts, servers.h1Port, servers.h2Port],
    );
    for (const [name, r] of Object.entries(inPage)) rows.push({ where: 'Chromium', via, name, ...r });
  }
  rows.push({ where: 'Node.js', via: 'raw', name: "undici over Node's TLS", ...(await undiciCase(relay.url, pki.ca, servers.h1Port)) });
} finally {
  await chromium.close();
  web.server.close();
  await servers.stop();
  h.stopAll();
}
console.log('| where | relay | what | first byte (ms) | MB/s |');
console.log('|---|---|---|---:|---:|');
for (const r of rows) {
  if (r.bytes !== BYTES && !(r.name === 'socket alone' && r.bytes > BYTES)) console.error(`${r.where} ${r.via} ${r.name}: ${r.bytes} bytes, not ${BYTES}`);
  console.log(`| ${r.where} | ${r.via} | ${r.name} | ${r.ttfbMs} | ${r.mbPerS} |`);
}
