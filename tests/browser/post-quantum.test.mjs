// X25519MLKEM768 in headless Chromium, through the relay, with the package's default
// options: negotiated with a server that speaks it (examples/pq_server.rs, rustls on
// aws-lc-rs), and X25519 with one that does not (the same server with --classical), with
// no HelloRetryRequest. The server's response says what its side of the handshake was.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as h from './harness.mjs';

let pki;
const servers = {};
let relay;
let web;
let chromium;
let page;

/** examples/pq_server.rs with the given leaf. */
async function pqServer(leaf, extra = []) {
  const child = h.track(
    spawn(h.binary('examples/pq_server'), ['--cert', pki.file(`${leaf}.pem`), '--key', pki.file(`${leaf}.key`), ...extra], {
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
    'pq_server',
  );
  const port = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`pq_server did not start: ${out}`)), 10000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on 127\.0\.0\.1:(\d+)\r?\n/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
  });
  return { port, child };
}

before(async () => {
  pki = h.makePki();
  servers.pq = await pqServer('server');
  servers.classical = await pqServer('server', ['--classical']);
  relay = await h.relay(Object.values(servers).map((s) => s.port));
  web = await h.staticServer();
  chromium = await h.browser();
  page = await chromium.newPage();
  await page.goto(`${web.url}/`);
});

after(async () => {
  if (chromium) await chromium.close();
  if (web) web.server.close();
  h.stopAll();
});

function get(port, extra = {}) {
  const options = { relay: relay.url, serverName: 'localhost', ca: pki.ca, bundledRoots: false, ...extra };
  return h.runInPage(page, 'httpGet', `127.0.0.1:${port}`, options);
}

test('a post-quantum server negotiates X25519MLKEM768 by default', async () => {
  const r = await get(servers.pq.port);
  assert.ok(r.ok, JSON.stringify(r.error));
  assert.equal(r.info.group, 'X25519MLKEM768');
  assert.match(r.text, /\r\n\r\ngroup: X25519MLKEM768, handshake: Full\n$/);
});

test('a server without ML-KEM takes the X25519 share of the same ClientHello', async () => {
  const r = await get(servers.classical.port);
  assert.ok(r.ok, JSON.stringify(r.error));
  assert.equal(r.info.group, 'X25519');
  assert.match(r.text, /\r\n\r\ngroup: X25519, handshake: Full\n$/);
});

test('postQuantum: false offers only the classical groups, even to a post-quantum server', async () => {
  const r = await get(servers.pq.port, { postQuantum: false });
  assert.ok(r.ok, JSON.stringify(r.error));
  assert.equal(r.info.group, 'X25519');
  assert.match(r.text, /\r\n\r\ngroup: X25519, handshake: Full\n$/);
});
