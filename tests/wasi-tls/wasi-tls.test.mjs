// The standard wasi:tls (0.3.0-draft) two ways under the wasmtime CLI: the consumer
// (tests/wasi-tls-consumer, written only against the standard WIT) on wasmtime's own
// host implementation (`-S tls`), and the same consumer composed with our provider
// (wasi-tls/) by `wac plug`, without `-S tls`. Against openssl s_server and nginx on
// 127.0.0.1 both print the same response; both refuse a wrong name and an untrusted
// CA, ours with wasm-tls's error code. `cargo xtask test` builds the components first.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

import { stopAll } from '../browser/harness.mjs';
import * as servers from '../browser/servers.mjs';
import { clientCertificate, fileServer, makeAnchorPki, removeAnchorPki, viaHost, viaProvider } from './fixtures.mjs';

const TEST = { timeout: 90000 };
const PAGE = 'hello over wasi:tls\n';
const BIG = 4 << 20;

let pki;
let trusted; // { ROOTS_PEM: the anchor }: the provider's setting for the test CA
let sServer;
let untrusted;
let nginx;
let truncating;

/**
 * A TLS server that answers and then cuts the TCP connection without close_notify: a
 * client must not take the response for whole.
 */
function truncatingServer() {
  const key = readFileSync(pki.file('server.key'));
  const cert = readFileSync(pki.file('server.pem'));
  const server = net.createServer((raw) => {
    raw.on('error', () => {});
    const secure = new tls.TLSSocket(raw, { isServer: true, key, cert });
    secure.on('error', () => {});
    secure.once('data', () => secure.write('HTTP/1.0 200 OK\r\n\r\ncut short', () => raw.destroy()));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** The body after the header's blank line. */
function body(response) {
  const at = response.indexOf('\r\n\r\n');
  assert.ok(at >= 0, `no HTTP header in ${response.subarray(0, 200)}`);
  return response.subarray(at + 4);
}

function succeeded(run, what) {
  assert.equal(run.code, 0, `${what} failed:\n${run.stderr}`);
  return run.stdout;
}

before(async () => {
  pki = makeAnchorPki();
  trusted = { WASM_TLS_ROOTS_PEM: pki.anchor };
  sServer = await fileServer(pki, 'server', { 'index.html': PAGE });
  untrusted = await fileServer(pki, 'untrusted', { 'index.html': PAGE });
  nginx = await servers.nginx(pki, { bigSize: BIG });
  truncating = await truncatingServer();
});

after(async () => {
  truncating?.close();
  await servers.stopServers();
  stopAll();
  removeAnchorPki(pki);
});

describe('the same response from the host and from the composed provider', () => {
  test('openssl s_server -WWW', TEST, async () => {
    const args = [`127.0.0.1:${sServer.port}`, 'localhost', '/index.html'];
    const [host, ours] = await Promise.all([viaHost(pki, args), viaProvider(args, trusted)]);
    const hostOut = succeeded(host, 'the host (-S tls)');
    const ourOut = succeeded(ours, 'the composed provider');
    assert.equal(body(ourOut).toString(), PAGE);
    assert.deepEqual(ourOut, hostOut);
  });

  test('closing the request stream first sends close_notify; the response still comes', TEST, async () => {
    const server = await fileServer(pki, 'server', { 'half.html': PAGE }, ['-msg']);
    const args = [`127.0.0.1:${server.port}`, 'localhost', '/half.html'];
    // How many close_notify alerts s_server has read (it prints them as it reads them).
    const received = async (expected) => {
      const count = () => (server.child.stdoutText.match(/^<<< TLS 1\.3, Alert \[length 0002\], warning close_notify$/gm) || []).length;
      for (let i = 0; i < 40 && count() < expected; i++) await new Promise((r) => setTimeout(r, 50));
      return count();
    };
    const host = succeeded(await viaHost(pki, args, { HALF_CLOSE: '1' }), 'the host (-S tls)');
    assert.equal(await received(1), 1, 'the host sent no close_notify');
    const ours = succeeded(await viaProvider(args, { ...trusted, HALF_CLOSE: '1' }), 'the composed provider');
    assert.equal(await received(2), 2, 'the provider sent no close_notify');
    assert.deepEqual(ours, host);
    assert.equal(body(ours).toString(), PAGE);
  });

  test('the server closing first gets close_notify back from both', TEST, async () => {
    const server = await fileServer(pki, 'server', { 'first.html': PAGE }, ['-msg']);
    const args = [`127.0.0.1:${server.port}`, 'localhost', '/first.html'];
    const count = () => (server.child.stdoutText.match(/^<<< TLS 1\.3, Alert \[length 0002\], warning close_notify$/gm) || []).length;
    const received = async (expected) => {
      for (let i = 0; i < 40 && count() < expected; i++) await new Promise((r) => setTimeout(r, 50));
      return count();
    };
    const host = succeeded(await viaHost(pki, args), 'the host (-S tls)');
    assert.equal(await received(1), 1, 'the host did not answer close_notify');
    const ours = succeeded(await viaProvider(args, trusted), 'the composed provider');
    assert.equal(await received(2), 2, 'the provider did not answer close_notify');
    assert.equal(body(ours).toString(), PAGE);
    assert.deepEqual(ours, host);
  });

  test('nginx: its page, TLS 1.3', TEST, async () => {
    const args = [`127.0.0.1:${nginx.port}`, 'localhost', '/'];
    const [host, ours] = await Promise.all([viaHost(pki, args), viaProvider(args, trusted)]);
    const hostOut = succeeded(host, 'the host (-S tls)');
    const ourOut = succeeded(ours, 'the composed provider');
    assert.match(body(ourOut).toString(), /^hello from nginx over HTTP\/1\.0 and TLSv1\.3\n$/);
    // The Date header differs by the second at most: compare what follows it.
    assert.deepEqual(body(ourOut), body(hostOut));
  });

  test(`nginx: ${BIG} bytes, the same digest`, TEST, async () => {
    const args = [`127.0.0.1:${nginx.port}`, 'localhost', '/big.bin'];
    const host = succeeded(await viaHost(pki, args), 'the host (-S tls)');
    const ours = succeeded(await viaProvider(args, trusted), 'the composed provider');
    const digest = (b) => createHash('sha256').update(body(b)).digest('hex');
    assert.equal(body(ours).length, BIG);
    assert.equal(digest(ours), nginx.bigSha256);
    assert.equal(digest(host), nginx.bigSha256);
  });
});

describe('both refuse', () => {
  test('a name the certificate does not list', TEST, async () => {
    const args = [`127.0.0.1:${sServer.port}`, 'wrong.example', '/index.html'];
    const [host, ours] = await Promise.all([viaHost(pki, args), viaProvider(args, trusted)]);
    assert.equal(host.code, 1, host.stderr);
    assert.match(host.stderr, /certificate not valid for name "wrong\.example"/);
    assert.equal(ours.code, 1, ours.stderr);
    assert.match(ours.stderr, /^error: certificate-name-mismatch: .*wrong\.example/m);
    assert.equal(ours.stdout.length, 0);
  });

  test('a CA nobody trusts', TEST, async () => {
    const args = [`127.0.0.1:${untrusted.port}`, 'localhost', '/index.html'];
    const [host, ours] = await Promise.all([viaHost(pki, args), viaProvider(args, trusted)]);
    assert.equal(host.code, 1, host.stderr);
    assert.match(host.stderr, /UnknownIssuer/);
    assert.equal(ours.code, 1, ours.stderr);
    assert.match(ours.stderr, /^error: certificate-unknown-issuer: .*wasm-tls untrusted test CA/m);
  });

  test('a response cut short (no close_notify)', TEST, async () => {
    const args = [`127.0.0.1:${truncating.address().port}`, 'localhost', '/'];
    const [host, ours] = await Promise.all([viaHost(pki, args), viaProvider(args, trusted)]);
    assert.equal(host.code, 1, host.stderr);
    assert.match(host.stderr, /close_notify/);
    assert.equal(ours.code, 1, ours.stderr);
    assert.match(ours.stderr, /^error: receiving: truncated: /m);
  });
});

describe('the provider\'s settings', () => {
  test('nothing configured: the bundled roots, verification on (the test CA is not among them)', TEST, async () => {
    const run = await viaProvider([`127.0.0.1:${sServer.port}`, 'localhost', '/index.html']);
    assert.equal(run.code, 1, run.stderr);
    // The bundled Amazon Root CA 3 has the test CA's subject and another key.
    assert.match(run.stderr, /^error: certificate-bad-signature: /m);
  });

  test('a bad PEM is a configuration error, reported by connect', TEST, async () => {
    const run = await viaProvider([`127.0.0.1:${sServer.port}`, 'localhost', '/'], { WASM_TLS_ROOTS_PEM: 'not a certificate' });
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /^error: invalid-config: /m);
  });

  test('ALPN: offered h2 alone, nginx answers in HTTP/2', TEST, async () => {
    const args = [`127.0.0.1:${nginx.port}`, 'localhost', '/'];
    const h1 = succeeded(await viaProvider(args, { ...trusted, WASM_TLS_ALPN: 'http/1.1' }), 'ALPN http/1.1');
    assert.match(h1.toString(), /^HTTP\/1\.1 200 OK\r\n/);
    const h2 = await viaProvider(args, { ...trusted, WASM_TLS_ALPN: 'h2' });
    // The HTTP/1.0 request is no HTTP/2 preface: the server's first frame is its
    // SETTINGS (type 4), then a GOAWAY (type 7).
    assert.ok(h2.stdout.length >= 9, `${h2.stdout.length} bytes; ${h2.stderr}`);
    assert.equal(h2.stdout[3], 4, `first frame type ${h2.stdout[3]}`);
  });

  test('a client certificate, when the server requires one', TEST, async () => {
    const client = clientCertificate(pki);
    const server = await fileServer(pki, 'server', { 'client.html': PAGE }, ['-Verify', '1', '-CAfile', client.caFile]);
    const args = [`127.0.0.1:${server.port}`, 'localhost', '/client.html'];
    const without = await viaProvider(args, trusted);
    assert.equal(without.code, 1, without.stderr);
    const ours = succeeded(await viaProvider(args, { ...trusted, WASM_TLS_CLIENT_CERT_PEM: client.cert, WASM_TLS_CLIENT_KEY_PEM: client.key }), 'with a client certificate');
    assert.equal(body(ours).toString(), PAGE);
  });
});
