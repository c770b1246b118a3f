// wasm-tls/node's Duplex under real client libraries and real servers: pg against
// PostgreSQL, undici (HTTP/1.1 and HTTP/2) against nginx, imapflow against dovecot, each
// over the raw relay and over Wisp. pkg/README.md's recipes are run as they stand: the
// test lifts each ```js block marked `<!-- recipe: NAME` out of the README.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { WebSocket } from 'ws';
import pg from 'pg';
import { Client } from 'undici';
import * as h from './harness.mjs';
import * as servers from './servers.mjs';
import { createConnection, TlsError } from '../../pkg/node.js';

const nodeEntry = pathToFileURL(path.join(h.root, 'pkg/node.js')).href;

let pki;
let postgres;
let nginx;
let dovecot;
let expired;
let relay;
let work;
const vias = {};

before(async () => {
  pki = h.makePki();
  work = mkdtempSync(path.join(tmpdir(), 'wasm-tls-recipes-'));
  [postgres, nginx, dovecot, expired] = await Promise.all([
    servers.postgres(pki),
    servers.nginx(pki),
    servers.dovecot(pki),
    h.opensslServer(pki, 'expired'),
  ]);
  relay = await h.wispRelay([postgres.port, nginx.port, dovecot.imapPort, dovecot.imapsPort, expired.port]);
  vias['the raw relay'] = { relay: relay.url, WebSocket };
  vias.Wisp = { wisp: relay.wisp, WebSocket, wispLinger: 0 };
});

after(async () => {
  await servers.stopServers();
  h.stopAll();
  if (work) rmSync(work, { recursive: true, force: true });
  if (pki) rmSync(pki.dir, { recursive: true, force: true });
});

// ---- the README's recipes ----

const readme = readFileSync(path.join(h.root, 'pkg/README.md'), 'utf8');
let recipeCount = 0;

function recipeSource(name) {
  const m = new RegExp(`<!-- recipe: ${name}\\b[^>]*-->\\n\`\`\`js\\n([\\s\\S]*?)\`\`\``).exec(readme);
  assert.ok(m, `pkg/README.md has no recipe '${name}'`);
  return m[1];
}

/**
 * Runs a recipe as a module: its imports resolved from here ('wasm-tls/node' to the
 * package), its body inside a function whose parameters are `scope`'s names; returns the
 * recipe's variables named in `results`.
 */
async function runRecipe(name, scope, results) {
  const lines = recipeSource(name).split('\n');
  const imports = lines
    .filter((l) => l.startsWith('import '))
    .map((l) => l.replace(/from '([^']+)'/, (_, spec) => `from '${spec === 'wasm-tls/node' ? nodeEntry : import.meta.resolve(spec)}'`));
  const body = lines.filter((l) => !l.startsWith('import '));
  const source = `${imports.join('\n')}
export default async function ({ ${Object.keys(scope).join(', ')} }) {
${body.join('\n')}
return { ${results.join(', ')} };
}
`;
  const file = path.join(work, `${name}-${++recipeCount}.mjs`);
  writeFileSync(file, source);
  const module = await import(pathToFileURL(file).href);
  return module.default(scope);
}

function opts(via, extra = {}) {
  return { ...via, ca: pki.ca, host: '127.0.0.1', ...extra };
}

/** Resolves with [event, ...args] for the first of `events` the emitter emits. */
function first(emitter, events) {
  return new Promise((resolve) => {
    const handlers = events.map((event) => {
      const handler = (...args) => {
        events.forEach((e, i) => emitter.off(e, handlers[i]));
        resolve([event, ...args]);
      };
      emitter.on(event, handler);
      return handler;
    });
  });
}

/** Records the events a socket emits, in order. */
function record(socket, events = ['connect', 'secureConnect', 'end', 'close', 'error', 'timeout']) {
  const seen = [];
  for (const e of events) socket.on(e, (arg) => seen.push(e === 'error' ? `error:${arg && arg.code}` : e));
  return seen;
}

// ---- PostgreSQL through pg ----

test('pg: the README recipe, a Client and a Pool, over the raw relay and over Wisp', { timeout: 60000 }, async () => {
  for (const [label, via] of Object.entries(vias)) {
    const started = Date.now();
    const { rows, sums } = await runRecipe(
      'pg',
      { via, ca: pki.ca, host: '127.0.0.1', port: postgres.port, user: postgres.user, password: postgres.password },
      ['rows', 'sums'],
    );
    // The server's own view of the connection: TLS, negotiated by the SSLRequest.
    assert.deepEqual(rows, [{ ssl: true, version: 'TLSv1.3' }], label);
    assert.deepEqual(
      sums.map((r) => r.rows[0].twice),
      [2, 4, 6, 8, 10],
      label,
    );
    console.log(`pg over ${label}: ${Date.now() - started} ms`);
  }
});

test('pg: every pooled connection is TLS on the server side, and the Duplex says what was negotiated', { timeout: 30000 }, async () => {
  const sockets = [];
  const pool = new pg.Pool({
    host: '127.0.0.1',
    port: postgres.port,
    user: postgres.user,
    password: postgres.password,
    max: 4,
    stream: () => {
      const s = createConnection({ ...vias.Wisp, ca: pki.ca, starttls: 'postgres' });
      sockets.push(s);
      return s;
    },
  });
  const clients = await Promise.all([1, 2, 3, 4].map(() => pool.connect()));
  const pids = [];
  for (const c of clients) {
    const { rows } = await c.query('select pg_backend_pid() as pid, ssl from pg_stat_ssl where pid = pg_backend_pid()');
    assert.equal(rows[0].ssl, true);
    pids.push(rows[0].pid);
  }
  assert.equal(new Set(pids).size, 4);
  // The superuser's view over the unix socket: those four backends, all TLS.
  const ssl = postgres.psql(`select count(*) from pg_stat_ssl where ssl and pid in (${pids.join(',')})`);
  assert.equal(ssl, '4');
  for (const c of clients) c.release();
  await pool.end();
  assert.equal(sockets.length, 4);
  for (const s of sockets) {
    assert.equal(s.encrypted, true);
    assert.equal(s.authorized, true);
    assert.equal(s.getProtocol(), 'TLSv1.3');
    assert.equal(s.remotePort, postgres.port);
  }
  // pg's Terminate, our close_notify, the server's: each stream closes without an error.
  const ends = sockets.map((s) => (s.destroyed ? Promise.resolve(['close']) : first(s, ['close', 'error'])));
  assert.deepEqual(await Promise.all(ends), sockets.map(() => ['close']));
});

test('pg: SCRAM channel binding uses the certificate the stream reports, and the server checks it', { timeout: 30000 }, async () => {
  const login = { host: '127.0.0.1', port: postgres.port, user: postgres.user, password: postgres.password, enableChannelBinding: true };
  const bound = new pg.Client({ ...login, stream: () => createConnection({ ...vias['the raw relay'], ca: pki.ca, starttls: 'postgres' }) });
  let mechanism;
  bound.connection.once('authenticationSASLContinue', () => {
    mechanism = bound.saslSession && bound.saslSession.mechanism;
  });
  await bound.connect();
  assert.equal(mechanism, 'SCRAM-SHA-256-PLUS');
  assert.equal((await bound.query('select 1 as one')).rows[0].one, 1);
  await bound.end();

  // Another certificate's hash in the binding: the server refuses the login.
  const other = new X509Certificate(readFileSync(pki.file('wrongname.pem'))).raw;
  const lying = new pg.Client({
    ...login,
    stream: () => {
      const s = createConnection({ ...vias['the raw relay'], ca: pki.ca, starttls: 'postgres' });
      s.getPeerCertificate = () => ({ raw: other });
      return s;
    },
  });
  await assert.rejects(lying.connect(), /channel binding/);
});

// ---- HTTP through undici ----

test('undici: the README recipe speaks HTTP/2 to nginx, over the raw relay and over Wisp', { timeout: 30000 }, async () => {
  for (const [label, via] of Object.entries(vias)) {
    const { response, text } = await runRecipe('undici', { via, ca: pki.ca, url: `https://127.0.0.1:${nginx.port}/` }, ['response', 'text']);
    assert.equal(response.statusCode, 200, label);
    assert.equal(text, 'hello from nginx over HTTP/2.0 and TLSv1.3\n', label);
  }
});

/** An undici Client whose connections are ours; `sockets` collects them. */
function undiciClient(via, alpn, sockets, clientOptions = {}) {
  return new Client(`https://127.0.0.1:${nginx.port}`, {
    allowH2: true,
    ...clientOptions,
    connect: ({ hostname, port }, callback) => {
      const socket = createConnection(opts(via, { host: hostname, port: Number(port), ALPNProtocols: alpn }));
      sockets.push(socket);
      socket.once('secureConnect', () => {
        socket.off('error', callback);
        callback(null, socket);
      });
      socket.once('error', callback);
    },
  });
}

test('undici: HTTP/1.1 and HTTP/2 as ALPN chose them, and a large body whole', { timeout: 60000 }, async () => {
  for (const [label, via] of Object.entries(vias)) {
    for (const [alpn, protocol, speaks] of [
      [['h2', 'http/1.1'], 'h2', 'HTTP/2.0'],
      [['http/1.1'], 'http/1.1', 'HTTP/1.1'],
    ]) {
      const sockets = [];
      const client = undiciClient(via, alpn, sockets);
      const small = await client.request({ path: '/', method: 'GET' });
      assert.equal(await small.body.text(), `hello from nginx over ${speaks} and TLSv1.3\n`, `${label} ${protocol}`);
      const big = await client.request({ path: '/big.bin', method: 'GET' });
      assert.equal(big.statusCode, 200);
      const hash = createHash('sha256');
      let size = 0;
      for await (const chunk of big.body) {
        hash.update(chunk);
        size += chunk.length;
      }
      assert.equal(size, nginx.bigSize);
      assert.equal(hash.digest('hex'), nginx.bigSha256, `${label} ${protocol}`);
      await client.close();
      assert.equal(sockets.length, 1, 'one connection for both requests');
      assert.equal(sockets[0].alpnProtocol, protocol);
      assert.equal(sockets[0].servername, '127.0.0.1');
    }
  }
});

// ---- IMAP through imapflow ----

test('imapflow: the README recipe, IMAPS and STARTTLS, over the raw relay and over Wisp', { timeout: 60000 }, async () => {
  let appended = 0;
  for (const [label, via] of Object.entries(vias)) {
    for (const [port, secure] of [
      [dovecot.imapsPort, true],
      [dovecot.imapPort, false],
    ]) {
      const { client, status } = await runRecipe(
        'imapflow',
        { via, ca: pki.ca, host: '127.0.0.1', port, secure, user: dovecot.user, password: dovecot.password },
        ['client', 'status'],
      );
      appended++;
      const what = `${label}, ${secure ? 'IMAPS' : 'STARTTLS'}`;
      assert.equal(status.messages, appended, what);
      // imapflow read these from the socket: getCipher() and authorized.
      assert.equal(client.tls.version, 'TLSv1.3', what);
      assert.equal(client.tls.authorized, true, what);
      assert.match(client.tls.standardName, /^TLS_/, what);
      assert.equal(client.secureConnection, true, what);
    }
  }
});

// ---- the Duplex itself, against nginx ----

test('a TLSSocket: connect then secureConnect, the certificate in Node\'s shape, and the server\'s close', { timeout: 20000 }, async () => {
  const socket = createConnection(opts(vias['the raw relay'], { port: nginx.port, servername: 'localhost', ALPNProtocols: ['http/1.1'] }));
  const seen = record(socket);
  assert.equal(socket.connecting, true);
  assert.equal(socket.readyState, 'opening');
  await first(socket, ['secureConnect']);
  assert.deepEqual(seen, ['connect', 'secureConnect']);
  assert.equal(socket.readyState, 'open');
  assert.equal(socket.encrypted, true);
  assert.equal(socket.authorized, true);
  assert.equal(socket.alpnProtocol, 'http/1.1');
  assert.equal(socket.servername, 'localhost');
  assert.equal(socket.remoteAddress, '127.0.0.1');
  assert.equal(socket.remoteFamily, 'IPv4');
  assert.equal(socket.remotePort, nginx.port);
  assert.equal(socket.getProtocol(), 'TLSv1.3');
  const cipher = socket.getCipher();
  assert.match(cipher.standardName, /^TLS_(AES_128_GCM_SHA256|AES_256_GCM_SHA384|CHACHA20_POLY1305_SHA256)$/);
  assert.equal(cipher.name, cipher.standardName);
  assert.equal(cipher.version, 'TLSv1.3');

  const leaf = new X509Certificate(readFileSync(pki.file('server.pem')));
  const ca = new X509Certificate(pki.ca);
  const cert = socket.getPeerCertificate();
  assert.equal(cert.subject.CN, 'localhost');
  assert.equal(cert.issuer.CN, 'wasm-tls test CA');
  assert.equal(cert.issuer.O, 'wasm-tls tests');
  assert.equal(cert.subjectaltname, 'DNS:localhost, IP Address:127.0.0.1');
  assert.equal(cert.valid_from, leaf.validFrom);
  assert.equal(cert.valid_to, leaf.validTo);
  assert.ok(Buffer.isBuffer(cert.raw));
  assert.ok(cert.raw.equals(leaf.raw));
  assert.equal(cert.fingerprint256, leaf.fingerprint256);
  assert.equal(cert.serialNumber, leaf.serialNumber);
  assert.equal(cert.issuerCertificate, undefined);
  const detailed = socket.getPeerCertificate(true);
  // nginx sends the leaf alone; the CA is ours, not part of the chain sent.
  assert.equal(detailed.issuerCertificate, undefined);
  assert.ok(socket.getPeerX509Certificate().checkIssued(ca));

  // nginx answers, then sends close_notify and closes: 'end', and (allowHalfOpen false)
  // ours back, then 'close'.
  const request = 'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n';
  socket.write(request);
  let text = '';
  socket.setEncoding('utf8');
  socket.on('data', (d) => {
    text += d;
  });
  await first(socket, ['close']);
  assert.match(text, /^HTTP\/1\.1 200 OK\r\n[\s\S]*hello from nginx over HTTP\/1\.1 and TLSv1\.3\n$/);
  assert.deepEqual(seen, ['connect', 'secureConnect', 'end', 'close']);
  assert.equal(socket.readyState, 'closed');
  assert.equal(socket.bytesRead, Buffer.byteLength(text));
  assert.equal(socket.bytesWritten, request.length);
});

test('end(): close_notify after the writes; the server\'s close_notify ends the stream, a bare close is truncated', { timeout: 20000 }, async () => {
  // dovecot answers the command written before end(), then its own close_notify.
  const imap = createConnection(opts(vias['the raw relay'], { port: dovecot.imapsPort }));
  const imapSeen = record(imap, ['end', 'close', 'error']);
  let imapText = '';
  imap.setEncoding('utf8');
  imap.on('data', (d) => {
    imapText += d;
  });
  imap.end('a1 NOOP\r\n');
  await first(imap, ['close']);
  assert.match(imapText, /^\* OK [\s\S]*\r\na1 OK NOOP completed/);
  assert.deepEqual(imapSeen, ['end', 'close']);

  // nginx answers the request, then closes without close_notify: the response arrives
  // whole, and the end is reported as `truncated`, as for any close without it.
  const http = createConnection(opts(vias['the raw relay'], { port: nginx.port, ALPNProtocols: ['http/1.1'] }));
  const httpSeen = record(http, ['end', 'close', 'error']);
  let httpText = '';
  http.setEncoding('utf8');
  http.on('data', (d) => {
    httpText += d;
  });
  http.end('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
  await first(http, ['close']);
  assert.match(httpText, /hello from nginx over HTTP\/1\.1 and TLSv1\.3\n$/);
  assert.deepEqual(httpSeen, ['error:truncated', 'close']);
});

test('backpressure: a paused stream stops taking data, and all of it arrives once it reads again', { timeout: 30000 }, async () => {
  for (const [label, via] of Object.entries(vias)) {
    const socket = createConnection(opts(via, { port: nginx.port, ALPNProtocols: ['http/1.1'] }));
    const seen = record(socket, ['error']);
    socket.write('GET /big.bin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    // Read the first bytes, then stop.
    await first(socket, ['readable']);
    await new Promise((r) => setTimeout(r, 300));
    const before = socket.bytesRead;
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(socket.bytesRead, before, `${label}: nothing taken while nobody reads`);
    assert.ok(before < 256 * 1024, `${label}: ${before} bytes taken before the stream filled`);
    const chunks = [];
    for await (const chunk of socket) chunks.push(chunk);
    const all = Buffer.concat(chunks);
    const body = all.subarray(all.indexOf('\r\n\r\n') + 4);
    assert.equal(body.length, nginx.bigSize, label);
    assert.equal(createHash('sha256').update(body).digest('hex'), nginx.bigSha256, label);
    assert.deepEqual(seen, [], label);
  }
});

test('backpressure: writes to a server that stops reading stop being taken', { timeout: 30000 }, async () => {
  for (const [label, via] of Object.entries(vias)) {
    const server = await servers.notReading(pki);
    const local = await h.wispRelay([server.port]);
    const way = label === 'Wisp' ? { wisp: local.wisp, WebSocket, wispLinger: 0 } : { relay: local.url, WebSocket };
    const socket = createConnection(opts(way, { port: server.port }));
    socket.on('error', () => {});
    await first(socket, ['secureConnect']);
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let stop = false;
    let full = 0;
    const writing = (async () => {
      while (!stop && !socket.destroyed) {
        if (!socket.write(chunk)) {
          full++;
          await first(socket, ['drain', 'close']);
        }
      }
    })();
    const taken = () => socket.bytesWritten - socket.writableLength;
    // Taken until the kernel's, the relay's and the server's buffers are full, then no more.
    let last = -1;
    const deadline = Date.now() + 15000;
    while (taken() !== last && Date.now() < deadline) {
      last = taken();
      await new Promise((r) => setTimeout(r, 500));
    }
    const settled = taken() === last;
    stop = true;
    socket.destroy();
    await writing;
    server.child.kill('SIGKILL');
    local.child.kill('SIGKILL');
    assert.ok(settled, `${label}: still taking writes after 15 s`);
    assert.ok(full > 0, `${label}: write() returned false`);
    assert.ok(last < 64 * 1024 * 1024, `${label}: ${last} bytes taken in all`);
    assert.ok(socket.writableLength <= 128 * 1024, `${label}: ${socket.writableLength} bytes buffered by the stream`);
    console.log(`${label}: ${(last / 1048576).toFixed(1)} MiB taken before the writes stopped`);
  }
});

async function until(predicate, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('errors: \'error\' with the TlsError\'s code, then \'close\', and no \'connect\'', { timeout: 20000 }, async () => {
  const cases = [
    [{ port: expired.port }, 'certificate-expired'],
    [{ port: nginx.port, ca: undefined, bundledRoots: true }, 'certificate-unknown-issuer'],
    [{ port: nginx.port, servername: 'wrong.example' }, 'certificate-name-mismatch'],
    [{ port: nginx.port, host: '127.0.0.2' }, 'relay-refused'],
  ];
  for (const [extra, code] of cases) {
    const socket = createConnection(opts(vias['the raw relay'], extra));
    const seen = record(socket);
    let err;
    socket.on('error', (e) => {
      err = e;
    });
    await first(socket, ['close']);
    assert.equal(err.name, 'TlsError');
    assert.equal(err.code, code, err.message);
    assert.deepEqual(seen, [`error:${code}`, 'close']);
  }
  assert.throws(() => createConnection(opts(vias['the raw relay'], { port: nginx.port, rejectUnauthorized: false })), (e) => e instanceof TlsError && e.code === 'invalid-config');
  assert.throws(() => createConnection({ starttls: 'smtp' }), (e) => e.code === 'invalid-config');
});

test('mutual TLS: cert and key as PEM Buffers, ca as DER, as Node takes them; without them, client-certificate-required', { timeout: 20000 }, async () => {
  const client = servers.clientCertificate(pki);
  const server = await h.opensslServer(pki, 'server', ['-Verify', '1', '-CAfile', pki.file('ca.pem')]);
  const local = await h.relay([server.port]);
  const der = new X509Certificate(pki.ca).raw;
  const socket = createConnection({ relay: local.url, WebSocket, host: '127.0.0.1', port: server.port, ca: der, cert: readFileSync(client.cert), key: readFileSync(client.key) });
  const seen = record(socket, ['secureConnect', 'end', 'close', 'error']);
  socket.once('secureConnect', () => socket.write('GET / HTTP/1.0\r\n\r\n'));
  let text = '';
  socket.setEncoding('utf8');
  socket.on('data', (d) => {
    text += d;
  });
  await first(socket, ['close']);
  assert.deepEqual(seen, ['secureConnect', 'end', 'close']);
  // s_server's status page names the certificate it was given.
  assert.match(text, /Client certificate[\s\S]*Subject: CN ?= ?wasm-tls client/);

  const without = createConnection({ relay: local.url, WebSocket, host: '127.0.0.1', port: server.port, ca: der });
  let err;
  without.on('error', (e) => {
    err = e;
  });
  await first(without, ['close']);
  assert.equal(err && err.code, 'client-certificate-required');
  server.child.kill('SIGKILL');
  local.child.kill('SIGKILL');
});

test('setTimeout: \'timeout\' after that long without reads or writes; activity postpones it', { timeout: 20000 }, async () => {
  const socket = createConnection(opts(vias.Wisp, { port: dovecot.imapsPort }));
  const seen = record(socket);
  socket.setEncoding('utf8');
  let text = '';
  socket.on('data', (d) => {
    text += d;
  });
  await first(socket, ['secureConnect']);
  await until(() => text.includes('* OK'));
  let fired = 0;
  socket.setTimeout(400, () => fired++);
  const started = Date.now();
  // A command every 150 ms (and its answer) keeps it from firing.
  for (let i = 1; i <= 5; i++) {
    await new Promise((r) => setTimeout(r, 150));
    socket.write(`a${i} NOOP\r\n`);
  }
  assert.equal(fired, 0);
  await first(socket, ['timeout']);
  assert.equal(fired, 1);
  assert.ok(Date.now() - started >= 750 + 350, `fired after ${Date.now() - started} ms`);
  assert.match(text, /a5 OK/);
  assert.equal(socket.destroyed, false, 'a timeout only tells');
  socket.setTimeout(0);
  socket.destroy();
  await first(socket, ['close']);
  assert.deepEqual(seen, ['connect', 'secureConnect', 'timeout', 'close']);
});

test('unref() lets Node.js exit with a connection open, over the raw relay and over Wisp; without it, the process stays', { timeout: 40000 }, async () => {
  const script = `
    const { createConnection } = await import(${JSON.stringify(nodeEntry)});
    const { WebSocket } = await import(${JSON.stringify(import.meta.resolve('ws'))});
    const [via, ca, port, unref] = JSON.parse(process.argv[1]);
    const socket = createConnection({ ...via, WebSocket, ca, host: '127.0.0.1', port });
    socket.on('error', (e) => { console.error(e); process.exit(2); });
    socket.on('secureConnect', () => { if (unref) socket.unref(); console.log('open'); });
  `;
  for (const via of [{ relay: relay.url }, { wisp: relay.wisp }]) {
    const runChild = (unref) => {
      const child = h.track(spawn(process.execPath, ['--input-type=module', '-e', script, JSON.stringify([via, pki.ca, nginx.port, unref])], { stdio: ['ignore', 'pipe', 'pipe'] }), 'node');
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
      });
      const exit = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
      return { child, exit, out: () => out };
    };
    const unrefd = runChild(true);
    const code = await Promise.race([unrefd.exit, new Promise((r) => setTimeout(() => r('still running'), 8000))]);
    assert.equal(code, 0, unrefd.child.stderrText);
    assert.equal(unrefd.out(), 'open\n');
    const refd = runChild(false);
    await until(() => refd.out() === 'open\n', 8000);
    const still = await Promise.race([refd.exit, new Promise((r) => setTimeout(() => r('still running'), 1500))]);
    assert.equal(still, 'still running', JSON.stringify(via));
    refd.child.kill('SIGKILL');
  }
});

// Last: it turns ssl off on the server.
test('pg: a server that answers N to the SSLRequest fails with code tls, saying it does not accept TLS', { timeout: 30000 }, async () => {
  postgres.psql('alter system set ssl = off');
  postgres.psql('select pg_reload_conf()');
  try {
    await until(() => postgres.psql('show ssl') === 'off', 10000);
    const client = new pg.Client({
      host: '127.0.0.1',
      port: postgres.port,
      user: postgres.user,
      password: postgres.password,
      stream: () => createConnection({ ...vias['the raw relay'], ca: pki.ca, starttls: 'postgres' }),
    });
    await assert.rejects(client.connect(), (err) => {
      assert.equal(err.name, 'TlsError');
      assert.equal(err.code, 'tls');
      assert.match(err.message, /does not accept TLS: it answered 'N' to the SSLRequest/);
      return true;
    });
  } finally {
    postgres.psql('alter system reset ssl');
    postgres.psql('select pg_reload_conf()');
  }
});
