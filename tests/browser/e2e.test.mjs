// The npm package end to end: headless Chromium and Node.js, through the relay (and
// websockify) to real TLS servers on 127.0.0.1.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './harness.mjs';
import * as client from './client.mjs';

let pki;
const servers = {};
let relay;
let web;
let chromium;
let page;
const pageLog = [];

before(async () => {
  pki = h.makePki();
  servers.s13 = await h.opensslServer(pki, 'server', ['-tls1_3']);
  servers.s12 = await h.opensslServer(pki, 'server', ['-tls1_2']);
  servers.r13 = await h.rustlsServer(pki, 'server');
  servers.r12 = await h.rustlsServer(pki, 'server', ['--tls12']);
  servers.expired = await h.opensslServer(pki, 'expired');
  servers.wrong = await h.opensslServer(pki, 'wrongname');
  servers.starttls = await h.rustlsServer(pki, 'server', ['--starttls']);
  relay = await h.relay(Object.values(servers).map((s) => s.port));
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
  h.stopAll();
});

function opts(extra = {}) {
  return { relay: relay.url, serverName: 'localhost', ca: pki.ca, bundledRoots: true, ...extra };
}

/** Runs a scenario of client.mjs in the page with the package loaded from /pkg/. */
async function inPage(scenario, ...args) {
  const result = await h.runInPage(page, scenario, ...args);
  if (!result.ok && process.env.VERBOSE) console.error(result, pageLog);
  return result;
}

test('TLS 1.3 to openssl s_server: handshake and HTTP GET in the page', async () => {
  const r = await inPage('httpGet', `127.0.0.1:${servers.s13.port}`, opts());
  assert.ok(r.ok, JSON.stringify(r.error));
  assert.equal(r.info.protocol, 'TLSv1.3');
  assert.match(r.text, /^HTTP\/1\.0 200 ok/);
  assert.match(r.text, /s_server/);
  assert.ok(r.info.chainLength >= 1);
  assert.equal(r.info.subjects[0], 'CN=localhost');
});

test('TLS 1.2 to openssl s_server', async () => {
  const r = await inPage('httpGet', `127.0.0.1:${servers.s12.port}`, opts());
  assert.ok(r.ok, JSON.stringify(r.error));
  assert.equal(r.info.protocol, 'TLSv1.2');
  assert.match(r.text, /^HTTP\/1\.0 200 ok/);
});

test('TLS 1.3 and 1.2 to the rustls server, with ALPN', async () => {
  for (const [server, version] of [
    [servers.r13, 'TLSv1.3'],
    [servers.r12, 'TLSv1.2'],
  ]) {
    const r = await inPage('httpGet', `127.0.0.1:${server.port}`, opts({ alpn: ['http/1.1'] }), '/hello');
    assert.ok(r.ok, JSON.stringify(r.error));
    assert.equal(r.info.protocol, version);
    assert.equal(r.info.alpn, 'http/1.1');
    assert.match(r.text, /^HTTP\/1\.1 200 OK/);
    assert.ok(r.text.endsWith(`hello from rustls over ${version}, path /hello\n`), r.text);
  }
});

test('a second connection resumes the session', async () => {
  const target = `127.0.0.1:${servers.r13.port}`;
  const first = await inPage('httpGet', target, opts({ alpn: ['http/1.1'] }));
  const second = await inPage('httpGet', target, opts({ alpn: ['http/1.1'] }));
  assert.ok(first.ok && second.ok);
  assert.equal(second.info.resumed, true);
});

test('an expired certificate is refused with certificate-expired', async () => {
  const r = await inPage('httpGet', `127.0.0.1:${servers.expired.port}`, opts());
  assert.equal(r.ok, false);
  assert.equal(r.error.code, 'certificate-expired');
  assert.match(r.error.message, /expired/);
});

test('a certificate for another name is refused with certificate-name-mismatch', async () => {
  const r = await inPage('httpGet', `127.0.0.1:${servers.wrong.port}`, opts());
  assert.equal(r.ok, false);
  assert.equal(r.error.code, 'certificate-name-mismatch');
  assert.match(r.error.message, /wrong\.example/);
});

test('without the test CA the server is not trusted', async () => {
  const r = await inPage('httpGet', `127.0.0.1:${servers.r13.port}`, opts({ ca: undefined }));
  assert.equal(r.ok, false);
  assert.equal(r.error.code, 'certificate-unknown-issuer');
  assert.match(r.error.message, /neither sent by the server nor is a trusted root/);
});

test('STARTTLS: a plaintext greeting, then the upgrade', async () => {
  const r = await inPage('starttlsGet', `127.0.0.1:${servers.starttls.port}`, opts());
  assert.ok(r.ok, JSON.stringify(r.error));
  assert.match(r.greeting, /^220 /);
  assert.match(r.ready, /^220 2\.0\.0/);
  assert.equal(r.info.protocol, 'TLSv1.3');
  assert.match(r.text, /path \/after-starttls/);
});

test('a target the relay refuses gives relay-refused, not a hang', async () => {
  const port = await h.freePort();
  const started = Date.now();
  const r = await inPage('httpGet', `127.0.0.1:${port}`, opts(), '/', 10000);
  assert.equal(r.ok, false);
  assert.equal(r.error.code, 'relay-refused');
  assert.match(r.error.message, /not allowed/);
  assert.ok(Date.now() - started < 5000);
});

test('an unreachable relay gives transport-closed, naming the URL tried', async () => {
  const port = await h.freePort();
  const r = await inPage('httpGet', `127.0.0.1:${servers.r13.port}`, opts({ relay: `ws://127.0.0.1:${port}/?token=t` }), '/', 10000);
  assert.equal(r.ok, false);
  assert.equal(r.error.code, 'transport-closed');
  assert.ok(r.error.message.includes(`ws://127.0.0.1:${port}/127.0.0.1:${servers.r13.port}?token=t`), r.error.message);
});

test('an allowed target where nothing listens gives target-unreachable, not relay-refused', async () => {
  const port = await h.freePort();
  const allowing = await h.relay([port]);
  const r = await inPage('httpGet', `127.0.0.1:${port}`, opts({ relay: allowing.url }), '/', 10000);
  assert.equal(r.ok, false);
  assert.equal(r.error.code, 'target-unreachable', JSON.stringify(r));
  assert.match(r.error.message, new RegExp(`could not reach 127.0.0.1:${port}`));
});

test('through websockify, a relay nobody here wrote', async () => {
  const ws = await h.websockify(servers.r13.port);
  const r = await inPage('httpGet', `127.0.0.1:${servers.r13.port}`, opts({ relay: ws.url }));
  assert.ok(r.ok, JSON.stringify(r.error));
  assert.match(r.text, /hello from rustls over TLSv1\.3/);
});

test('websockify with its token plugin: the token stays in the relay URL\'s query', async () => {
  const ws = await h.websockify(0, { abc: `127.0.0.1:${servers.r13.port}` });
  const r = await inPage('httpGet', `127.0.0.1:${servers.r13.port}`, opts({ relay: `${ws.url}/?token=abc` }));
  assert.ok(r.ok, JSON.stringify(r.error));
  assert.match(r.text, /hello from rustls over TLSv1\.3/);
  // A wrong token: websockify refuses, and the error names the URL that was tried.
  const bad = await inPage('httpGet', `127.0.0.1:${servers.r13.port}`, opts({ relay: `${ws.url}/?token=nope` }), '/', 10000);
  assert.equal(bad.ok, false);
  assert.ok(bad.error.message.includes('?token=nope'), JSON.stringify(bad.error));
});

test('the same package in Node.js through the relay', async () => {
  const wasmTls = await import('../../pkg/index.js');
  const { WebSocket } = await import('ws');
  const r = await client.httpGet(wasmTls, `127.0.0.1:${servers.r13.port}`, opts({ WebSocket }), '/node');
  assert.ok(r.ok, JSON.stringify(r.error));
  assert.match(r.text, /path \/node/);
  const bad = await client.httpGet(wasmTls, `127.0.0.1:${servers.expired.port}`, opts({ WebSocket }));
  assert.equal(bad.error.code, 'certificate-expired');
  const s = await client.starttlsGet(wasmTls, `127.0.0.1:${servers.starttls.port}`, opts({ WebSocket }));
  assert.ok(s.ok, JSON.stringify(s.error));
});

test('the low-level SSL_connect API with a transport the test pumps itself', async () => {
  const r = await page.evaluate(async (ca) => {
    const { init, TlsConfig, TlsConnection } = await import('/pkg/index.js');
    await init();
    const conn = new TlsConnection(new TlsConfig({ serverName: 'localhost', ca }));
    const before = conn.connect();
    const err = conn.getError();
    const hello = conn.pullCiphertext();
    const writeBefore = conn.write(new Uint8Array([1, 2, 3]));
    const writeErr = conn.getError();
    let threw = null;
    try {
      new TlsConfig({ serverName: 'localhost', ca: 'not a pem' });
    } catch (e) {
      threw = { code: e.code, message: e.message };
    }
    conn.pushCiphertext(new Uint8Array(64).fill(0x16));
    const afterGarbage = conn.connect();
    const garbageErr = conn.getError();
    const last = conn.lastError();
    return {
      before, err, helloLength: hello.length, writeBefore, writeErr, threw,
      afterGarbage, garbageErr, lastCode: last && last.code, again: conn.connect(),
    };
  }, pki.ca);
  assert.equal(r.before, -1);
  assert.equal(r.err, 'WANT_WRITE');
  assert.ok(r.helloLength > 100);
  assert.equal(r.writeBefore, -1);
  assert.equal(r.writeErr, 'WANT_READ');
  assert.equal(r.threw.code, 'invalid-config');
  assert.equal(r.afterGarbage, -1);
  assert.equal(r.garbageErr, 'SSL');
  assert.equal(r.lastCode, 'protocol-violation');
  assert.equal(r.again, -1);
});

test('the www/ demo page, driven as a user would', async () => {
  const target = `127.0.0.1:${servers.r13.port}`;
  const demo = await chromium.newPage({ viewport: { width: 1100, height: 1400 } });
  try {
    await demo.goto(`${web.url}/www/index.html`);
    await demo.fill('#relay', relay.url);
    await demo.fill('#target', target);
    await demo.fill('#servername', 'localhost');
    await demo.fill('#ca', pki.ca);
    await demo.fill('#request', 'GET /from-the-demo HTTP/1.1\nHost: localhost\nConnection: close\n\n');
    await demo.click('#connect');
    await demo.waitForSelector('#status.ok, #status.error', { timeout: 15000 });
    await demo.waitForFunction(() => document.querySelector('#response').textContent.includes('hello from rustls'), null, { timeout: 15000 });
    const status = await demo.textContent('#status');
    assert.match(status, /Secure connection/, status);
    const params = await demo.$$eval('#params dd', (dds) => Object.fromEntries(dds.map((d) => [d.dataset.field, d.textContent])));
    assert.equal(params.Protocol, 'TLSv1.3');
    assert.match(params['Cipher suite'], /^TLS13_/);
    assert.equal(params['Key exchange'], 'X25519');
    assert.equal(params.ALPN, 'http/1.1');
    assert.match(await demo.textContent('#chain'), /subject: CN=localhost[\s\S]*issuer: CN=wasm-tls test CA/);
    assert.match(await demo.textContent('#trace'), /want-write: \d+ bytes[\s\S]*want-read: \d+ bytes[\s\S]*handshake done/);
    // The screenshot a person would see: the parameters must be on it.
    for (const selector of ['#params', '#chain', '#status']) {
      assert.ok(await demo.isVisible(selector), `${selector} is not visible`);
      const box = await demo.locator(selector).boundingBox();
      assert.ok(box && box.y + box.height <= 1400, `${selector} is outside the screenshot`);
    }
    const png = await demo.screenshot({ path: `${h.root}/target/demo-page.png`, fullPage: false });
    assert.ok(png.length > 10000);

    // A failure shows the typed error in plain words.
    await demo.fill('#target', `127.0.0.1:${servers.expired.port}`);
    await demo.click('#connect');
    await demo.waitForSelector('#status.error', { timeout: 15000 });
    const failure = await demo.textContent('#status');
    assert.match(failure, /certificate-expired/);
    assert.match(failure, /certificate expired/);
  } finally {
    await demo.close();
  }
});
