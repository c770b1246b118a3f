// wasm-tls/http end to end: fetch() and WebSocket from Node.js and headless Chromium,
// through the relay (raw WebSocket and Wisp), to nginx over HTTP/2 and HTTP/1.1 (ALPN),
// and to a WebSocket echo server behind nginx. nginx's access log counts the TLS
// connections. Every scenario is in http-client.mjs, run the same way in both places;
// epoxy-tls, a peer's client, checks the relay's Wisp endpoint against its defaults.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { Duplex } from 'node:stream';
import path from 'node:path';
import { WebSocket } from 'ws';
import * as h from './harness.mjs';
import * as scenarios from './http-client.mjs';
import { httpServers, TEXT } from './http-servers.mjs';
// What Node.js resolves `wasm-tls/http` to (the exports' "node" condition).
import * as http from '../../pkg/http-node.js';

const BIG = 64 << 20;

let pki;
let servers;
let relay;
let web;
let chromium;
let page;

before(async () => {
  pki = h.makePki();
  servers = await httpServers(pki, { bigSize: BIG });
  relay = await h.wispRelay([servers.h2Port, servers.h1Port]);
  web = await h.staticServer(h.nobleFiles());
  chromium = await h.browser();
  page = await chromium.newPage();
  await page.goto(`${web.url}/`);
  await h.loadInPage(page, 'httpTests', { http: '/pkg/http.js', scenarios: '/tests/browser/http-client.mjs' });
});

after(async () => {
  if (chromium) await chromium.close();
  if (web) web.server.close();
  if (servers) await servers.stop();
  h.stopAll();
});

const nodeSha256 = h.nodeSha256;

function options(transport, extra = {}) {
  return { ...(transport === 'wisp' ? { wisp: relay.wisp } : { relay: relay.url }), ca: pki.ca, bundledRoots: false, ...extra };
}

/** Runs `scenarios[name](http, options, ...args)` in Node.js or in the page. */
async function run(where, name, transport, extra, ...args) {
  if (where === 'node') return scenarios[name](http, { ...options(transport, extra), WebSocket }, ...args, nodeSha256);
  return page.evaluate(([name, opts, args]) => globalThis.httpTests.scenarios[name](globalThis.httpTests.http, opts, ...args, globalThis.httpTests.sha256), [name, options(transport, extra), args]);
}

const origin = (port) => `https://127.0.0.1:${port}`;
const connectionsFor = (port, from) => new Set(servers.accessLog().slice(from).filter((r) => r.port === port).map((r) => r.connection));

for (const where of ['node', 'chromium']) {
  for (const transport of ['raw', 'wisp']) {
    // nginx proxies an HTTP/1.1 request body and its response at once only while they fit
    // its buffers (Node's own https client stalls there too, writing 256 KiB at a time):
    // a smaller echo.
    for (const [protocol, portOf, echoBytes] of [
      ['HTTP/2', () => servers.h2Port, 8 << 20],
      ['HTTP/1.1', () => servers.h1Port, 512 << 10],
    ]) {
      test(`fetch in ${where} over ${transport}, ${protocol}: bodies, 64 MiB, gzip, redirects, abort`, async () => {
        const port = portOf();
        const r = await run(where, 'fetchScenarios', transport, {}, origin(port), echoBytes);
        assert.equal(r.error, undefined, JSON.stringify(r.error));
        assert.equal(r.root.value.text, protocol === 'HTTP/2' ? 'HTTP/2.0\n' : 'HTTP/1.1\n');
        assert.equal(r.root.value.version, protocol);
        assert.deepEqual(r.big, { status: 200, length: BIG, sha256: servers.bigSha256, ms: r.big.ms });
        const b = r.bodies;
        assert.deepEqual(b.string.value, { method: 'POST', length: 6, sha256: createHash('sha256').update('héllo').digest('hex'), contentType: 'text/plain;charset=UTF-8', header: 'string' });
        assert.equal(b.bytes.value.length, 4);
        assert.equal(b.arrayBuffer.value.length, 2);
        assert.equal(b.blob.value.contentType, 'text/x-blob');
        assert.equal(b.blob.value.sha256, createHash('sha256').update('blob body').digest('hex'));
        assert.match(b.form.value.contentType, /^multipart\/form-data; boundary=/);
        assert.equal(b.params.value.contentType, 'application/x-www-form-urlencoded;charset=UTF-8');
        assert.equal(b.params.value.length, 'a=1&b=two'.length);
        assert.deepEqual([b.stream.value.length, b.stream.value.sha256], [3 << 20, r.streamSha256]);
        assert.deepEqual([b.request.value.method, b.request.value.header, b.request.value.length], ['PUT', 'request', 'from a Request'.length]);
        assert.deepEqual([r.echo.status, r.echo.length, r.echo.sha256], [200, echoBytes, r.echo.expected]);
        assert.equal(r.gzip.value.headers['content-encoding'], 'gzip');
        assert.equal(r.gzip.value.text, TEXT);
        assert.equal(r.deflate.value.headers['content-encoding'], 'deflate');
        assert.equal(r.deflate.value.text, TEXT);
        // brotli is offered, and decoded, exactly where the platform decodes it.
        assert.equal(r.brotli.value.text, TEXT);
        assert.equal(r.brotli.value.headers['content-encoding'], r.brotliDecoded ? 'br' : undefined);
        assert.deepEqual([r.redirects.value.status, r.redirects.value.text, r.redirects.value.redirected], [200, 'hello\n', true]);
        assert.equal(r.redirects.value.url, `${origin(port)}/hello.txt`);
        assert.deepEqual(r.manual.value, { status: 302, location: `${origin(port)}/redirect/2` });
        assert.equal(r.redirectError.error.code, 'too-many-redirects');
        assert.equal(r.loop.error.code, 'too-many-redirects');
        assert.deepEqual([r.post303.value.method, r.post303.value.length], ['GET', 0]);
        assert.deepEqual([r.post307.value.method, r.post307.value.length], ['POST', 'kept after 307'.length]);
        assert.deepEqual(r.head.value, { status: 200, length: String(BIG), body: '' });
        assert.equal(r.notFound.value, 404);
        assert.ok(r.abortMidBody.got > 0 && r.abortMidBody.got < BIG);
        assert.equal(r.abortMidBody.read.error.name, 'AbortError');
        assert.equal(r.abortEarly.error.name, 'AbortError');
        assert.equal(r.afterAbort.value.text, 'hello\n');
      });
    }

    test(`fetch in ${where} over ${transport}: 100 concurrent requests share one HTTP/2 connection`, async () => {
      const from = servers.accessLog().length;
      const r = await run(where, 'concurrent', transport, {}, origin(servers.h2Port), 100);
      assert.equal(r.error, undefined, JSON.stringify(r.error));
      assert.deepEqual([r.ok, r.versions], [100, ['HTTP/2']]);
      const rows = servers.accessLog().slice(from).filter((row) => row.port === servers.h2Port);
      assert.equal(rows.length, 100);
      assert.equal(connectionsFor(servers.h2Port, from).size, 1, 'one TLS connection');
    });

    test(`WebSocket in ${where} over ${transport}: text, binary, 16 MiB, ping/pong, close, a drop`, async () => {
      const r = await run(where, 'webSocketScenarios', transport, {}, `wss://127.0.0.1:${servers.h1Port}`);
      assert.equal(r.error, undefined, JSON.stringify(r.error));
      assert.deepEqual(r.open, { type: 'open', protocol: 'chat' });
      assert.deepEqual(r.text, { type: 'message', data: 'hello text' });
      assert.deepEqual(r.binary, [0, 1, 2, 255]);
      assert.deepEqual(r.big, { length: 16 << 20, sha256: r.bigExpected });
      assert.ok(r.bufferedWhileSending >= 16 << 20, `bufferedAmount ${r.bufferedWhileSending} right after send()`);
      assert.equal(r.bufferedAfter, 0);
      assert.deepEqual(r.ping, { type: 'message', data: 'ping:are you there' });
      assert.deepEqual(r.serverPing, { type: 'message', data: 'pong:from the server' });
      assert.equal(r.blob, 'from a blob');
      assert.deepEqual(r.serverClose, { type: 'close', code: 4001, reason: 'asked to', wasClean: true });
      assert.equal(r.readyState, 3);
      assert.deepEqual(r.clientClose, { type: 'close', code: 1000, reason: 'done here', wasClean: true });
      assert.deepEqual([r.earlyError.type, r.earlyError.code], ['error', 'aborted']);
      assert.deepEqual(r.earlyClose, { type: 'close', code: 1006, reason: '', wasClean: false });
      assert.equal(r.earlyOpened, false);
      assert.equal(r.dropOpen.type, 'open');
      assert.equal(r.dropError.type, 'error');
      assert.deepEqual(r.dropClose, { type: 'close', code: 1006, reason: '', wasClean: false });
      assert.equal(r.dropMessages, 0);
    });
  }
}

test('HTTP/1.1 in Node.js: connections kept alive, bounded per origin, TLS sessions resumed', async () => {
  const from = servers.accessLog().length;
  const r = await scenarios.keepAlive(http, { ...options('wisp'), WebSocket }, origin(servers.h1Port));
  assert.equal(r.error, undefined, JSON.stringify(r.error));
  const rows = servers.accessLog().slice(from);
  assert.equal(rows.length, 9);
  // The three in a row on one connection; the six at once on at most two.
  const connections = new Set(rows.map((row) => row.connection));
  assert.equal(connections.size, 2, `connections: ${[...connections]}`);
  assert.equal(rows.filter((row) => row.uri === '/hello.txt' && row.resumed).length > 0, true, 'the second connection resumed the TLS session');
});

test('fetch rejects with the socket\'s TlsError code when the certificate is not trusted', async () => {
  for (const where of ['node', 'chromium']) {
    const r = await run(where, 'tlsFailure', 'raw', { ca: undefined, bundledRoots: true }, origin(servers.h2Port));
    assert.equal(r.error?.code, 'certificate-unknown-issuer', `${where}: ${JSON.stringify(r)}`);
  }
});

test('the demo page\'s fetch panel loads wasm-tls/http on first use and shows an HTTP/2 response', async () => {
  const demo = await chromium.newPage();
  try {
    const loaded = [];
    demo.on('request', (request) => loaded.push(new URL(request.url()).pathname));
    await demo.goto(`${web.url}/www/index.html?relay=${relay.url}&target=127.0.0.1:${servers.h2Port}&servername=localhost`);
    await demo.fill('#ca', pki.ca);
    assert.ok(!loaded.some((p) => /wasm_tls_http|\/pkg\/http\.js|\/src\/http\//.test(p)), `loaded before use: ${loaded.join(' ')}`);
    await demo.click('#fetch');
    await demo.waitForSelector('#fetch-status.ok, #fetch-status.error', { timeout: 15000 });
    assert.match(await demo.textContent('#fetch-status'), /^HTTP\/2 200/);
    assert.equal(await demo.textContent('#fetch-body'), 'HTTP/2.0\n');
    assert.ok(loaded.includes('/pkg/wasm_tls_http_bg.wasm'));
  } finally {
    await demo.close();
  }
});

test('Node.js: http: and ws: in plaintext, and `transport` byte streams instead of a relay', async () => {
  // Straight to the server: a function of the host and port gives each connection.
  const transport = (host, port) => Duplex.toWeb(net.connect(port, host));
  const client = http.createClient({ transport, ca: pki.ca, bundledRoots: false });
  try {
    const plain = await client.fetch(`http://127.0.0.1:${servers.plainPort}/`);
    assert.deepEqual([plain.status, plain.httpVersion, await plain.text()], [200, 'HTTP/1.1', 'HTTP/1.1\n']);
    const secure = await client.fetch(`https://127.0.0.1:${servers.h2Port}/hello.txt`);
    assert.deepEqual([secure.httpVersion, await secure.text()], ['HTTP/2', 'hello\n']);
    const ws = client.webSocket(`ws://127.0.0.1:${servers.plainPort}/ws`);
    ws.binaryType = 'arraybuffer';
    const echoed = await new Promise((resolve, reject) => {
      ws.onopen = () => ws.send('plain text');
      ws.onmessage = (e) => resolve(e.data);
      ws.onerror = (e) => reject(e.error);
    });
    assert.equal(echoed, 'plain text');
    const closed = new Promise((resolve) => ws.addEventListener('close', (e) => resolve([e.code, e.wasClean])));
    ws.close();
    assert.deepEqual(await closed, [1005, true]);
  } finally {
    client.close();
  }
});

test('a response body that is not read holds the server back (HTTP/2 flow control, HTTP/1.1 TCP)', async () => {
  for (const [where, transport] of [
    ['node', 'wisp'],
    ['chromium', 'wisp'],
  ]) {
    for (const port of [servers.h2Port, servers.h1Port]) {
      const r = await run(where, 'pausedReader', transport, {}, origin(port), '/big.bin', 500);
      const label = `${where} ${port === servers.h2Port ? 'HTTP/2' : 'HTTP/1.1'}: ${JSON.stringify(r)}`;
      assert.equal(r.error, undefined, label);
      // Windows and buffers on the way (HTTP/2's 12 MiB stream window, the socket's and
      // the relay's queues) but nowhere near the 64 MiB body; and no more once they are
      // full.
      assert.ok(r.whilePaused < 16 << 20, label);
      assert.ok(r.later - r.whilePaused < 1 << 20, label);
      assert.ok(r.rest > BIG - (16 << 20), label);
    }
  }
});

test('epoxy-tls, a Wisp client nobody here wrote, fetches through the relay with its own defaults', async () => {
  // It offers a WebSocket subprotocol of its own (a random name) and speaks Wisp v2.
  const r = await page.evaluate(
    async ([wisp, url, ca]) => {
      const dir = '/tests/browser/node_modules/@mercuryworkshop/epoxy-tls/full';
      const epoxy = await import(`${dir}/epoxy.js`);
      await epoxy.default({ module_or_path: `${dir}/epoxy.wasm` });
      const options = new epoxy.EpoxyClientOptions();
      options.pem_files = [ca];
      const response = await new epoxy.EpoxyClient(wisp, options).fetch(url);
      return { status: response.status, text: await response.text() };
    },
    [relay.wisp, `${origin(servers.h2Port)}/hello.txt`, pki.ca],
  );
  assert.deepEqual(r, { status: 200, text: 'hello\n' });
});

test('Node.js: a body the server cuts short fails the reader with a TlsError, over HTTP/2 and HTTP/1.1', async () => {
  const client = http.createClient({ ...options('wisp'), WebSocket });
  try {
    for (const port of [servers.h2Port, servers.h1Port]) {
      const response = await client.fetch(`${origin(port)}/drop`);
      assert.equal(response.status, 200);
      let got = 0;
      const failure = await (async () => {
        try {
          for await (const chunk of response.body) got += chunk.length;
        } catch (err) {
          return err;
        }
        return null;
      })();
      assert.ok(failure, `port ${port}: the body ended after ${got} bytes without an error`);
      assert.equal(failure.name, 'TlsError');
      assert.ok(['http-protocol', 'truncated'].includes(failure.code), `${failure.code}: ${failure.message}`);
      assert.ok(got < 1 << 20);
      // The client goes on with a new connection.
      assert.equal(await (await client.fetch(`${origin(port)}/hello.txt`)).text(), 'hello\n');
    }
  } finally {
    client.close();
  }
});
