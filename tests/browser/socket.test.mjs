// The socket API's edges, in Node.js (and the large upload in Chromium too): what write()
// takes, writes before the WebSocket opens, large single writes over Wisp, closing with
// writes still queued, startTls() on a closed socket, a Wisp stream that overflows, and
// target parsing.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { WebSocket, WebSocketServer } from 'ws';
import * as h from './harness.mjs';
import * as client from './client.mjs';
import * as wasmTls from '../../pkg/index.js';

let pki;
let echo; // plaintext echo
let closer; // accepts, then closes at once
let silent; // accepts, then says nothing
let sink; // TLS: reads "N\n" and N bytes, answers "got N SUM\n"
let relay;
let web;
let chromium;
let page;

before(async () => {
  pki = h.makePki();
  echo = net.createServer((sock) => sock.pipe(sock));
  await new Promise((r) => echo.listen(0, '127.0.0.1', r));
  closer = net.createServer((sock) => sock.end());
  await new Promise((r) => closer.listen(0, '127.0.0.1', r));
  silent = net.createServer((sock) => sock.on('error', () => {}));
  await new Promise((r) => silent.listen(0, '127.0.0.1', r));
  sink = tls.createServer({ cert: readFileSync(pki.file('server.pem')), key: readFileSync(pki.file('server.key')) }, (sock) => {
    let head = '';
    let want = -1;
    let got = 0;
    let sum = 0;
    sock.on('data', (d) => {
      if (want < 0) {
        const i = d.indexOf(10);
        if (i < 0) {
          head += d.toString('latin1');
          return;
        }
        want = Number(head + d.subarray(0, i).toString('latin1'));
        d = d.subarray(i + 1);
      }
      sum = client.checksum(d, sum);
      got += d.length;
      if (got >= want) sock.end(`got ${got} ${sum}\n`);
    });
    sock.on('error', () => {});
  });
  await new Promise((r) => sink.listen(0, '127.0.0.1', r));
  relay = await h.wispRelay([echo.address().port, closer.address().port, sink.address().port, silent.address().port]);
});

after(async () => {
  if (chromium) await chromium.close();
  if (web) web.server.close();
  for (const s of [echo, closer, sink, silent]) if (s) s.close();
  h.stopAll();
});

const at = (server) => `127.0.0.1:${server.address().port}`;

async function readBytes(reader, n) {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const { value, done } = await reader.read();
    if (done) break;
    out.set(value.subarray(0, n - got), got);
    got += value.length;
  }
  return out.subarray(0, Math.min(got, n));
}

test('write() sends only a view\'s own bytes, before the WebSocket opens too', async () => {
  for (const how of [{ relay: relay.url }, { wisp: relay.wisp }]) {
    const socket = wasmTls.connect(at(echo), { ...how, WebSocket, secureTransport: 'off' });
    const writer = socket.writable.getWriter();
    const buf = new ArrayBuffer(64);
    new Uint8Array(buf).forEach((_, i, a) => (a[i] = i));
    // Written at once: the WebSocket is still connecting.
    const writes = [
      writer.write(new DataView(buf, 10, 5)),
      writer.write(new Uint8Array(buf).subarray(20, 23)),
      writer.write(new Uint16Array(buf, 40, 2)),
      writer.write(buf.slice(60, 62)),
    ];
    await Promise.all(writes);
    const reader = socket.readable.getReader();
    const back = await readBytes(reader, 14);
    assert.deepEqual([...back], [10, 11, 12, 13, 14, 20, 21, 22, 40, 41, 42, 43, 60, 61], JSON.stringify(how));
    reader.releaseLock();
    await socket.close();
  }
});

test('write() rejects what is not bytes or a string with invalid-input', async () => {
  const socket = wasmTls.connect(at(echo), { relay: relay.url, WebSocket, secureTransport: 'off' });
  await socket.opened;
  const writer = socket.writable.getWriter();
  // Through the sink directly: a rejected write errors the writable stream.
  for (const bad of [123, { length: 3 }, null]) {
    await assert.rejects(socket._write(bad), (err) => err.code === 'invalid-input');
  }
  // Strings go through the writable stream as UTF-8.
  await writer.write('héllo');
  const reader = socket.readable.getReader();
  assert.equal(new TextDecoder().decode(await readBytes(reader, 6)), 'héllo');
  await assert.rejects(writer.write(42), (err) => err.code === 'invalid-input');
  // That write only: the writable and the connection carry on, and close settles both.
  await writer.write('again');
  assert.equal(new TextDecoder().decode(await readBytes(reader, 5)), 'again');
  await socket.close();
  await socket.closed;
});

test('one 32 MiB write over Wisp waits for credit and arrives whole', { timeout: 120000 }, async () => {
  const bytes = 32 << 20;
  const r = await client.sinkUpload(wasmTls, at(sink), { wisp: relay.wisp, WebSocket, serverName: 'localhost', ca: pki.ca }, bytes, 90000);
  assert.ok(r.ok, JSON.stringify(r));
  // The same over a raw relay WebSocket.
  const raw = await client.sinkUpload(wasmTls, at(sink), { relay: relay.url, WebSocket, serverName: 'localhost', ca: pki.ca }, bytes, 90000);
  assert.ok(raw.ok, JSON.stringify(raw));

  // And in Chromium, whose WebSocket buffers differently.
  web = await h.staticServer();
  chromium = await h.browser();
  page = await chromium.newPage();
  await page.goto(`${web.url}/`);
  const inPage = await page.evaluate(
    async ([target, options, bytes]) => {
      const wasmTls = await import('/pkg/index.js');
      const client = await import('/tests/browser/client.mjs');
      return client.sinkUpload(wasmTls, target, options, bytes, 90000);
    },
    [at(sink), { wisp: relay.wisp, serverName: 'localhost', ca: pki.ca }, bytes],
  );
  assert.ok(inPage.ok, JSON.stringify(inPage));
});

test('close() with writes still queued before the handshake rejects them', async () => {
  for (const how of [{ relay: relay.url }, { wisp: relay.wisp }]) {
    const socket = wasmTls.connect(at(sink), { ...how, WebSocket, serverName: 'localhost', ca: pki.ca });
    const writer = socket.writable.getWriter();
    const pending = writer.write(new Uint8Array(100));
    pending.catch(() => {});
    // The stream hands the chunk to the socket a moment later; the handshake is still
    // waiting for the WebSocket then.
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(socket._pump.writes.length, 1);
    await socket.close();
    await assert.rejects(pending, (err) => err.code === 'invalid-state' && /before the data was sent/.test(err.message));
  }
});

test('startTls() on a closed connection throws invalid-state', async () => {
  for (const how of [{ relay: relay.url }, { wisp: relay.wisp }]) {
    const socket = wasmTls.connect(at(closer), { ...how, WebSocket, secureTransport: 'starttls' });
    await socket.closed.catch(() => {});
    assert.throws(() => socket.startTls({ serverName: 'localhost', ca: pki.ca }), (err) => err.code === 'invalid-state');
  }
  // A socket closed from this side, too.
  const mine = wasmTls.connect(at(echo), { relay: relay.url, WebSocket, secureTransport: 'starttls' });
  await mine.opened;
  await mine.close();
  assert.throws(() => mine.startTls(), (err) => err.code === 'invalid-state');
});

test('a Wisp stream that overflows its queue is closed on the server and forgotten', async () => {
  // A Wisp server that grants no credit at all, and records what it receives.
  const packets = [];
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.on('listening', r));
  wss.on('connection', (ws) => {
    const hello = new Uint8Array(9);
    hello[0] = 0x03; // CONTINUE on stream 0, credit 0
    ws.send(hello);
    ws.on('message', (data) => packets.push(new Uint8Array(data)));
  });
  try {
    const socket = wasmTls.connect(at(echo), { wisp: `ws://127.0.0.1:${wss.address().port}/`, WebSocket, secureTransport: 'off' });
    await socket.opened;
    const transport = socket._transport;
    transport.send(new Uint8Array(17 << 20));
    await assert.rejects(socket.closed, (err) => err.code === 'send-overflow');
    assert.equal(transport._conn.streams.size, 0);
    // CONNECT, then CLOSE for the same stream.
    const deadline = Date.now() + 5000;
    let close;
    while (!(close = packets.find((p) => p[0] === 0x04)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(close, 'no CLOSE packet');
    const id = new DataView(close.buffer, close.byteOffset).getUint32(1, true);
    assert.equal(id, transport.id);
    transport._conn.close();
  } finally {
    for (const c of wss.clients) c.terminate();
    wss.close();
  }
});

test('targets need a host without URL delimiters and a port from 1 to 65535', () => {
  const options = { wisp: 'ws://127.0.0.1:9/', WebSocket };
  for (const bad of ['h:70000', 'h:0', 'h', 'h:', '[::1]:65536', 'a/b:80', 'u@h:80', 'h?x:80', 'h#x:80', 'h x:80', { hostname: 'h' }, { hostname: 'h', port: 1.5 }, { hostname: '', port: 80 }, { port: 80 }]) {
    assert.throws(() => wasmTls.connect(bad, options), (err) => err.code === 'invalid-config', JSON.stringify(bad));
    assert.throws(() => wasmTls.connect(bad, { relay: 'ws://127.0.0.1:9', WebSocket }), (err) => err.code === 'invalid-config', JSON.stringify(bad));
  }
});

test('the target goes into the relay URL\'s path, before its query and fragment', async () => {
  const { relayUrl } = await import('../../pkg/src/target.js');
  assert.equal(relayUrl('ws://relay.example/', 'db.example', 5432), 'ws://relay.example/db.example:5432');
  assert.equal(relayUrl('wss://relay.example/tls/?token=a%20b', 'h', 1), 'wss://relay.example/tls/h:1?token=a%20b');
  assert.equal(relayUrl('ws://relay.example?x=1#frag', '::1', 443), 'ws://relay.example/[::1]:443?x=1#frag');
  assert.equal(relayUrl((host, port) => `ws://r/${port}/${host}`, 'h', 2), 'ws://r/2/h');
});

test('in Node.js an idle shared Wisp WebSocket does not keep the process alive', { timeout: 30000 }, async () => {
  const { spawn } = await import('node:child_process');
  const script = `
    import { WebSocket } from 'ws';
    import { connect } from ${JSON.stringify(new URL('../../pkg/index.js', import.meta.url).href)};
    const socket = connect(${JSON.stringify(at(echo))}, { wisp: ${JSON.stringify(relay.wisp)}, WebSocket, secureTransport: 'off' });
    await socket.opened;
    const writer = socket.writable.getWriter();
    await writer.write('ping');
    const { value } = await socket.readable.getReader().read();
    await socket.close();
    console.log('closed', new TextDecoder().decode(value));
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: h.root + '/tests/browser', stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  let closedAt = 0;
  child.stdout.on('data', (d) => {
    out += d;
    if (!closedAt && out.includes('closed')) closedAt = Date.now();
  });
  const code = await new Promise((resolve) => child.on('exit', resolve));
  assert.equal(code, 0);
  assert.match(out, /closed ping/);
  // Well before the 5 s the WebSocket lingers for the next connect().
  assert.ok(Date.now() - closedAt < 2000, `the process lived ${Date.now() - closedAt} ms after its last socket closed`);
});

test('a server that never answers the handshake times out with timeout; opened and closed both settle', { timeout: 30000 }, async () => {
  for (const options of [{ relay: relay.url }, { wisp: relay.wisp }]) {
    const socket = wasmTls.connect(at(silent), { ...options, WebSocket, serverName: 'localhost', ca: pki.ca, bundledRoots: false, handshakeTimeout: 500 });
    const started = Date.now();
    await assert.rejects(socket.opened, (err) => err.code === 'timeout' && /did not complete within 500 ms/.test(err.message));
    await assert.rejects(socket.closed, (err) => err.code === 'timeout');
    assert.ok(Date.now() - started < 5000);
  }
});
