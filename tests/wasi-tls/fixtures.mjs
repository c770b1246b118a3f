// What the wasi:tls tests and figures share: the components `cargo xtask test` built,
// a test PKI whose CA wasmtime's own `-S tls` trusts, openssl s_server on 127.0.0.1,
// and `wasmtime run` two ways: the consumer on the host's wasi:tls, and the consumer
// composed with the provider.
//
// wasmtime 48's `-S tls` (rustls) trusts exactly the Mozilla roots compiled into it and
// has no option to add one. To run it against servers on 127.0.0.1 the tests make a
// CA with the subject of one of those roots (Amazon Root CA 3, taken from Debian's
// ca-certificates) and a key of the same kind made here, and run a copy of the
// installed wasmtime in which that root's public key is replaced by the test key (the
// same number of bytes; nothing else changes). The provider is given the same CA
// through its setting; verification stays on everywhere.

import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { freePort, root, track, waitForPort } from '../browser/harness.mjs';

export const wasiDir = path.join(root, 'target/wasi');
/** The root whose subject the test CA takes (an ECDSA P-256 root in webpki-roots). */
const BORROWED_ROOT = '/etc/ssl/certs/Amazon_Root_CA_3.pem';
/** Flags both ways share: component-model async, WASIp3, the host's network. */
const WASMTIME_FLAGS = ['-W', 'component-model-async=y', '-S', 'p3=y', '-S', 'inherit-network'];
/** Bounds each wasmtime run. */
export const RUN_MS = 30000;

export function artifact(name) {
  const p = path.join(wasiDir, name);
  if (!existsSync(p)) throw new Error(`${p} is missing: run the "wasi:tls provider under wasmtime" stage of cargo xtask test`);
  return p;
}

function sh(script, cwd) {
  const r = spawnSync('sh', ['-c', script], { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${script}\n${r.stderr}`);
  return r.stdout;
}

/** The DER SubjectPublicKeyInfo of a certificate, without its outer SEQUENCE header. */
function spkiContent(certPath) {
  const der = Buffer.from(sh(`openssl x509 -in '${certPath}' -pubkey -noout | openssl pkey -pubin -outform DER | od -An -v -tx1`).replace(/\s+/g, ''), 'hex');
  // A P-256 SPKI is 91 bytes: 0x30 0x59, then the 89 bytes webpki-roots stores.
  if (der[0] !== 0x30 || der[1] !== der.length - 2) throw new Error(`unexpected SPKI in ${certPath}`);
  return der.subarray(2);
}

/**
 * The test PKI: `anchor.pem` (the borrowed subject, a test key), `server` (localhost,
 * issued by it), and `untrusted-ca.pem` with `untrusted` (localhost, issued by a CA
 * nobody is told to trust). Returns the paths and the PEM of the anchor.
 */
export function makeAnchorPki() {
  if (!existsSync(BORROWED_ROOT)) throw new Error(`${BORROWED_ROOT} is missing: install ca-certificates`);
  const dir = mkdtempSync(path.join(tmpdir(), 'wasm-tls-wasi-tls-'));
  sh(`
set -e
openssl ecparam -name prime256v1 -genkey -noout -out anchor.key
openssl x509 -in '${BORROWED_ROOT}' -key anchor.key -days 30 -out anchor.pem 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -keyout untrusted-ca.key -out untrusted-ca.pem \
  -subj "/CN=wasm-tls untrusted test CA" -addext basicConstraints=critical,CA:TRUE 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\nbasicConstraints=CA:FALSE\\n' > leaf.ext
leaf() { # name issuer
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $1.key -out $1.csr -subj "/CN=localhost" 2>/dev/null
  openssl x509 -req -in $1.csr -CA $2.pem -CAkey $2.key -CAcreateserial -days 7 -out $1.pem -extfile leaf.ext 2>/dev/null
}
leaf server anchor
leaf untrusted untrusted-ca
mkdir www
`, dir);
  const pki = { dir, file: (n) => path.join(dir, n), anchor: readFileSync(path.join(dir, 'anchor.pem'), 'utf8') };
  pki.wasmtimeForHost = patchedWasmtime(pki);
  return pki;
}

/** Removes the test PKI's directory (the servers using it stopped first). */
export function removeAnchorPki(pki) {
  if (pki) rmSync(pki.dir, { recursive: true, force: true });
}

/** A client certificate (PEM texts), issued by the untrusted CA (`caFile`). */
export function clientCertificate(pki) {
  sh(`
set -e
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout client.key -out client.csr -subj "/CN=wasm-tls client" 2>/dev/null
printf 'extendedKeyUsage=clientAuth\\nbasicConstraints=CA:FALSE\\n' > client.ext
openssl x509 -req -in client.csr -CA untrusted-ca.pem -CAkey untrusted-ca.key -CAcreateserial -days 7 -out client.pem -extfile client.ext 2>/dev/null
`, pki.dir);
  return { cert: readFileSync(pki.file('client.pem'), 'utf8'), key: readFileSync(pki.file('client.key'), 'utf8'), caFile: pki.file('untrusted-ca.pem') };
}

/** A copy of the installed wasmtime whose borrowed root has the anchor's key. */
function patchedWasmtime(pki) {
  const installed = sh('command -v wasmtime').trim();
  const binary = readFileSync(installed);
  const from = spkiContent(BORROWED_ROOT);
  const to = spkiContent(pki.file('anchor.pem'));
  let replaced = 0;
  for (let at = binary.indexOf(from); at !== -1; at = binary.indexOf(from, at + to.length)) {
    to.copy(binary, at);
    replaced += 1;
  }
  if (replaced === 0) throw new Error(`${installed} does not hold ${BORROWED_ROOT}'s key: wasmtime's roots changed`);
  const out = path.join(root, 'target/wasi-tls');
  mkdirSync(out, { recursive: true });
  const copy = path.join(out, 'wasmtime-test-anchor');
  writeFileSync(copy, binary);
  chmodSync(copy, 0o755);
  return copy;
}

/** openssl s_server -WWW serving `files` ({ name: content }) with the given leaf; its stdout in `child.stdoutText`. */
export async function fileServer(pki, leaf, files, extra = []) {
  for (const [name, content] of Object.entries(files)) writeFileSync(path.join(pki.dir, 'www', name), content);
  const port = await freePort();
  const child = track(
    spawn('openssl', ['s_server', '-quiet', '-WWW', '-accept', `127.0.0.1:${port}`, '-cert', pki.file(`${leaf}.pem`), '-key', pki.file(`${leaf}.key`), ...extra], {
      cwd: path.join(pki.dir, 'www'),
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
    's_server',
  );
  // What it prints (the TLS messages, with -msg).
  child.stdoutText = '';
  child.stdout.on('data', (d) => (child.stdoutText += d));
  await waitForPort(port, { child, what: 's_server' });
  return { port, child };
}


/** Runs a child to its end or kills it after `ms`; stdout as a Buffer. */
export function runChild(cmd, args, env = {}, ms = RUN_MS) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    const out = [];
    let stderr = '';
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')}: no exit after ${ms} ms\nstderr: ${stderr}`));
    }, ms);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr });
    });
  });
}

/** `--env` flags for the guest's environment. */
const envFlags = (vars) => Object.entries(vars).flatMap(([name, value]) => ['--env', `${name}=${value}`]);

/** The consumer on wasmtime's own wasi:tls (`-S tls`); `vars` as --env. */
export function viaHost(pki, args, vars = {}) {
  return runChild(pki.wasmtimeForHost, ['run', ...WASMTIME_FLAGS, '-S', 'tls', ...envFlags(vars), artifact('wasi-tls-consumer.wasm'), ...args]);
}

/** The consumer composed with the provider, without `-S tls`; `vars` (its settings) as --env. */
export function viaProvider(args, vars = {}) {
  return runChild('wasmtime', ['run', ...WASMTIME_FLAGS, ...envFlags(vars), artifact('wasi-tls-composed.wasm'), ...args]);
}
