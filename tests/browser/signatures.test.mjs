// Signature algorithms in headless Chromium, through the relay, against openssl s_server
// with certificates made by openssl: ECDSA with SHA-512 on P-256 and P-384, and P-521, in
// certificates and in the handshake signature; and an unsupported one (an Ed448 CA) named
// in words with its OID.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as h from './harness.mjs';

const CURVE = { p256: 'ec -pkeyopt ec_paramgen_curve:P-256', p384: 'ec -pkeyopt ec_paramgen_curve:P-384', p521: 'ec -pkeyopt ec_paramgen_curve:P-521', ed448: 'ed448' };

/** A CA (key `ca`) and a leaf for localhost (key `leaf`) it signs with `digest` (none for EdDSA). */
function makeChain(ca, leaf, digest) {
  const dir = mkdtempSync(path.join(tmpdir(), 'wasm-tls-sig-'));
  const script = `
set -e
openssl req -x509 -newkey ${CURVE[ca]} -nodes -days 30 -keyout ca.key -out ca.pem \
  -subj "/O=wasm-tls tests/CN=signature CA" -addext basicConstraints=critical,CA:TRUE \
  -addext keyUsage=critical,keyCertSign 2>/dev/null
openssl req -newkey ${CURVE[leaf]} -nodes -keyout leaf.key -out leaf.csr -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\nbasicConstraints=CA:FALSE\\n' > leaf.ext
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 7 -out leaf.pem -extfile leaf.ext ${digest ? `-${digest}` : ''} 2>/dev/null
`;
  const r = spawnSync('sh', ['-c', script], { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${script}\n${r.stderr}`);
  return { dir, ca: readFileSync(path.join(dir, 'ca.pem'), 'utf8'), file: (n) => path.join(dir, n) };
}

const CASES = [
  ['P-256 CA signs with SHA-512, TLS 1.3', ['p256', 'p256', 'sha512'], ['-tls1_3'], 'TLSv1.3'],
  ['P-256 key signs the handshake with SHA-512, TLS 1.2', ['p256', 'p256', 'sha512'], ['-tls1_2', '-sigalgs', 'ECDSA+SHA512'], 'TLSv1.2'],
  ['P-384 CA signs with SHA-512, TLS 1.3', ['p384', 'p384', 'sha512'], ['-tls1_3'], 'TLSv1.3'],
  ['P-521 throughout, ecdsa_secp521r1_sha512', ['p521', 'p521', 'sha512'], ['-tls1_3', '-sigalgs', 'ecdsa_secp521r1_sha512'], 'TLSv1.3'],
  ['P-521 CA signs with SHA-384, TLS 1.2', ['p521', 'p384', 'sha384'], ['-tls1_2'], 'TLSv1.2'],
];

const servers = [];
let ed448;
let relay;
let web;
let chromium;
let page;

before(async () => {
  for (const [name, chain, flags, protocol] of CASES) {
    const pki = makeChain(...chain);
    const server = await h.opensslServer(pki, 'leaf', flags);
    servers.push({ name, pki, port: server.port, protocol });
  }
  const pki = makeChain('ed448', 'p256', null);
  ed448 = { pki, port: (await h.opensslServer(pki, 'leaf')).port };
  relay = await h.relay([...servers.map((s) => s.port), ed448.port]);
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

function get(port, ca) {
  const options = { relay: relay.url, serverName: 'localhost', ca, bundledRoots: false };
  return h.runInPage(page, 'httpGet', `127.0.0.1:${port}`, options);
}

test('ECDSA with SHA-512 on P-256 and P-384, and P-521, are accepted in the page', async () => {
  for (const s of servers) {
    const r = await get(s.port, s.pki.ca);
    assert.ok(r.ok, `${s.name}: ${JSON.stringify(r.error)}`);
    assert.equal(r.info.protocol, s.protocol, s.name);
    assert.match(r.text, /^HTTP\/1\.0 200 ok/, s.name);
  }
});

test('an unsupported algorithm is named in words with its OID', async () => {
  const r = await get(ed448.port, ed448.pki.ca);
  assert.equal(r.ok, false);
  assert.equal(r.error.code, 'certificate-invalid');
  assert.match(r.error.message, /a certificate in the chain is signed with Ed448 \(1\.3\.101\.113\), which is not supported/);
  assert.ok(r.error.message.length < 200, r.error.message);
});
