// wasm-tls/http's connections at their ends, in Node.js over plain TCP (the `transport`
// option, no relay): bodies that end with the connection while a slow reader still has
// bytes queued, bodies cut short, responses dropped unread (collected: their streams are
// reset and their connections freed), and unread HTTP/2 bodies beside a new request.
// Servers: Node's own http and http2 on 127.0.0.1.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createSecureServer } from 'node:http2';
import net from 'node:net';
import { Duplex } from 'node:stream';
import v8 from 'node:v8';
import vm from 'node:vm';
import * as h from './harness.mjs';
import * as http from '../../pkg/http-node.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');

const BIG = 16 << 20;
const big = Buffer.alloc(BIG, 7);
const transport = (host, port) => Duplex.toWeb(net.connect(port, host));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let pki;
let h1; // plaintext HTTP/1.1: /close (4 MiB, then the connection closes), /cut, /big, /small
let h2; // HTTP/2 over TLS: /big, /small; counts the streams the client reset
let resets = 0;

before(async () => {
  pki = h.makePki();
  h1 = createServer((req, res) => {
    if (req.url === '/close') {
      res.writeHead(200, { 'content-length': String(4 << 20), connection: 'close' });
      res.end(big.subarray(0, 4 << 20));
    } else if (req.url === '/cut') {
      // 4 MiB announced, 100 KB short, then the connection drops.
      res.writeHead(200, { 'content-length': String(4 << 20) });
      res.write(big.subarray(0, (4 << 20) - 100000), () => res.socket.destroy());
    } else if (req.url === '/big') {
      res.writeHead(200, { 'content-length': String(BIG) });
      res.end(big);
    } else {
      res.writeHead(200);
      res.end('hello\n');
    }
  });
  await new Promise((r) => h1.listen(0, '127.0.0.1', r));
  // Node's default session memory (10 MB) answers large windows with ENHANCE_YOUR_CALM.
  h2 = createSecureServer({ maxSessionMemory: 1000, key: readFileSync(pki.file('server.key')), cert: readFileSync(pki.file('server.pem')) }, (req, res) => {
    req.stream.on('close', () => {
      if (req.stream.rstCode) resets++;
    });
    if (req.url === '/big') {
      res.writeHead(200, { 'content-length': String(BIG) });
      res.end(big);
    } else {
      res.writeHead(200);
      res.end('hello\n');
    }
  });
  await new Promise((r) => h2.listen(0, '127.0.0.1', r));
});

after(() => {
  h1?.closeAllConnections?.();
  h1?.close();
  h2?.close();
});

const h1Base = () => `http://127.0.0.1:${h1.address().port}`;
const h2Base = () => `https://127.0.0.1:${h2.address().port}`;

/** Reads `body` 1 ms per chunk; its length, or the error that ended it. */
async function slowRead(body) {
  let got = 0;
  try {
    for await (const chunk of body) {
      got += chunk.length;
      await sleep(1);
    }
    return { got };
  } catch (error) {
    return { got, error };
  }
}

/** `promise`, or a failure naming `what` after `ms`. */
function within(ms, what, promise) {
  let timer;
  return Promise.race([promise.finally(() => clearTimeout(timer)), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms)))]);
}

test('HTTP/1.1: a body whose connection closes while a slow reader has bytes queued arrives whole', { timeout: 60000 }, async () => {
  const client = http.createClient({ transport, bundledRoots: false });
  try {
    const response = await client.fetch(`${h1Base()}/close`);
    // The whole response is sent and the connection closed before the reader starts.
    await sleep(500);
    const r = await within(20000, 'the body', slowRead(response.body));
    assert.equal(r.error, undefined);
    assert.equal(r.got, 4 << 20);
  } finally {
    client.close();
  }
});

test('HTTP/1.1: a body cut short behind a slow reader fails the reader, after what arrived', { timeout: 60000 }, async () => {
  const client = http.createClient({ transport, bundledRoots: false });
  try {
    const response = await client.fetch(`${h1Base()}/cut`);
    await sleep(500);
    const r = await within(20000, 'the body', slowRead(response.body));
    assert.ok(r.error, `the body ended after ${r.got} bytes without an error`);
    assert.equal(r.error.name, 'TlsError');
    assert.ok(['http-protocol', 'truncated'].includes(r.error.code), `${r.error.code}: ${r.error.message}`);
    // What arrived before the failure, less what the stream still held: an errored
    // ReadableStream drops its queue (up to the 1 MiB read-ahead and one 256 KiB chunk).
    assert.ok(r.got > (4 << 20) - 100000 - (1 << 20) - (256 << 10) && r.got < 4 << 20, `${r.got} bytes`);
  } finally {
    client.close();
  }
});

/** Fetches `n` bodies of `url` with `client` and drops them unread, then collects them. */
async function abandon(client, url, n) {
  for (let i = 0; i < n; i++) assert.equal((await client.fetch(url)).status, 200);
  for (let i = 0; i < 10; i++) {
    gc();
    await sleep(100);
  }
}

test('HTTP/2: responses dropped unread are reset once collected, and give their window back', { timeout: 60000 }, async () => {
  const client = http.createClient({ transport, ca: pki.ca, bundledRoots: false });
  try {
    const before = resets;
    // Five unread 16 MiB bodies would hold 60 MiB, more than the connection's window.
    await abandon(client, `${h2Base()}/big`, 5);
    const response = await within(10000, 'a request after the dropped ones', client.fetch(`${h2Base()}/small`));
    assert.equal(await response.text(), 'hello\n');
    assert.equal(response.httpVersion, 'HTTP/2');
    assert.ok(resets - before >= 4, `${resets - before} streams reset`);
  } finally {
    client.close();
  }
});

test('HTTP/1.1: responses dropped unread free their connections once collected', { timeout: 60000 }, async () => {
  const client = http.createClient({ transport, bundledRoots: false, maxConnectionsPerOrigin: 2 });
  try {
    await abandon(client, `${h1Base()}/big`, 2);
    const response = await within(10000, 'a request after the dropped ones', client.fetch(`${h1Base()}/small`));
    assert.equal(await response.text(), 'hello\n');
  } finally {
    client.close();
  }
});

test('HTTP/2: three bodies left unread do not stall a fourth request', { timeout: 60000 }, async () => {
  const client = http.createClient({ transport, ca: pki.ca, bundledRoots: false });
  const kept = [];
  try {
    for (let i = 0; i < 3; i++) kept.push(await client.fetch(`${h2Base()}/big`));
    // Let their windows fill.
    await sleep(1000);
    const response = await within(10000, 'the fourth request', client.fetch(`${h2Base()}/small`));
    assert.equal(await response.text(), 'hello\n');
    // The unread ones still arrive whole once read.
    // The unread ones still arrive whole once read, with collections meanwhile: a reader
    // waiting for a chunk is reachable only through its stream, which the module holds.
    const collecting = setInterval(gc, 5);
    try {
      for (const r of kept) assert.equal((await within(20000, 'an unread body', r.arrayBuffer())).byteLength, BIG);
    } finally {
      clearInterval(collecting);
    }
  } finally {
    client.close();
  }
});
