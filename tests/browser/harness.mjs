// Fixtures for the end-to-end tests: a test PKI made with openssl, real TLS servers
// (openssl s_server and the rustls test server), the relay, a static file server for the
// package, and headless Chromium. Everything binds 127.0.0.1 and is stopped at the end.

import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const children = [];

export function binary(name) {
  for (const profile of ['debug', 'release']) {
    const p = path.join(root, 'target', profile, name);
    if (existsSync(p)) return p;
  }
  throw new Error(`${name} is not built: run cargo build --workspace --examples`);
}

function sh(script, cwd) {
  const r = spawnSync('sh', ['-c', script], { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${script}\n${r.stderr}`);
  return r.stdout;
}

/** CA, leaves for localhost (good, expired, wrong name). */
export function makePki() {
  const dir = mkdtempSync(path.join(tmpdir(), 'wasm-tls-e2e-'));
  sh(`
set -e
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -keyout ca.key -out ca.pem \
  -subj "/O=wasm-tls tests/CN=wasm-tls test CA" -addext basicConstraints=critical,CA:TRUE \
  -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
leaf() { # name days san
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $1.key -out $1.csr -subj "/CN=$3" 2>/dev/null
  printf 'subjectAltName=DNS:%s,IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\nbasicConstraints=CA:FALSE\\n' "$3" > $1.ext
  openssl x509 -req -in $1.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days $2 -out $1.pem -extfile $1.ext 2>/dev/null
}
leaf server 7 localhost
leaf expired -1 localhost
leaf wrongname 7 wrong.example
`, dir);
  return { dir, ca: readFileSync(path.join(dir, 'ca.pem'), 'utf8'), file: (n) => path.join(dir, n) };
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/**
 * Polls until something accepts on 127.0.0.1:port. With `child`, fails as soon as it
 * exits, with what it wrote to stderr (see track()).
 */
export async function waitForPort(port, { child, what = 'the server', ms = 20000 } = {}) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (child && (child.exitCode !== null || child.signalCode !== null)) {
      throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}) before it listened on ${port}:\n${child.stderrText || ''}`);
    }
    const ok = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.destroy();
        resolve(true);
      });
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what}: nothing listens on 127.0.0.1:${port} after ${ms} ms${child ? `:\n${child.stderrText || ''}` : ''}`);
}

export function track(child, name) {
  children.push(child);
  child.stderrText = '';
  child.stderr?.on('data', (d) => {
    child.stderrText += d;
  });
  child.on('error', (err) => console.error(`${name}: ${err.message}`));
  return child;
}

/** Reads lines from a child's stream until one matches; returns the match. */
export function waitForLine(stream, regex, what, ms = 15000) {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`${what}: no line matching ${regex} in ${ms} ms; got: ${buf}`)), ms);
    stream.on('data', (d) => {
      buf += d;
      const m = regex.exec(buf);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
  });
}

/** openssl s_server -www with the given leaf. */
export async function opensslServer(pki, leaf, extra = []) {
  const port = await freePort();
  const child = track(
    spawn('openssl', ['s_server', '-quiet', '-www', '-accept', `127.0.0.1:${port}`, '-cert', pki.file(`${leaf}.pem`), '-key', pki.file(`${leaf}.key`), ...extra], {
      stdio: ['ignore', 'ignore', 'pipe'],
    }),
    's_server',
  );
  await waitForPort(port);
  return { port, child };
}

/** The rustls test server (examples/test_server.rs). */
export async function rustlsServer(pki, leaf, extra = []) {
  const child = track(
    spawn(binary('examples/test_server'), ['--cert', pki.file(`${leaf}.pem`), '--key', pki.file(`${leaf}.key`), ...extra], {
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
    'test_server',
  );
  const m = await waitForLine(child.stdout, /listening on 127\.0\.0\.1:(\d+)\r?\n/, 'test_server');
  return { port: Number(m[1]), child };
}

/** The relay, allowed to reach the given loopback ports. */
export async function relay(ports, extra = []) {
  const allow = ports.flatMap((p) => ['--allow', `127.0.0.1:${p}`]);
  const child = track(
    spawn(binary('wasm-tls-relay'), ['--listen', '127.0.0.1:0', '--allow-private', ...allow, ...extra], {
      stdio: ['ignore', 'ignore', 'pipe'],
    }),
    'relay',
  );
  const m = await waitForLine(child.stderr, /listening on (ws:\/\/\S+)\r?\n/, 'relay');
  return { url: m[1], child };
}

/**
 * websockify, a relay nobody here wrote, to one fixed target; or, given `tokens`
 * ({ token: 'host:port' }), to the target its token plugin finds for `?token=` in the URL.
 */
export async function websockify(targetPort, tokens = null) {
  const port = await freePort();
  let target = [`127.0.0.1:${targetPort}`];
  if (tokens) {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'wasm-tls-tokens-')), 'tokens');
    writeFileSync(file, Object.entries(tokens).map(([t, hostPort]) => `${t}: ${hostPort}\n`).join(''));
    target = ['--token-plugin', 'TokenFile', '--token-source', file];
  }
  const child = track(
    spawn('websockify', [`127.0.0.1:${port}`, ...target], { stdio: ['ignore', 'ignore', 'pipe'] }),
    'websockify',
  );
  await waitForPort(port);
  return { url: `ws://127.0.0.1:${port}`, child };
}

const types = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.css': 'text/css',
  '.pem': 'application/x-pem-file',
};

/** Serves pkg/, www/ and tests/browser/ (and `extra` paths) over HTTP. */
export async function staticServer(extra = {}) {
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    let file = extra[url.pathname];
    if (!file && /^\/(pkg|www|tests\/browser|bench)\/[\w@./-]*$/.test(url.pathname) && !url.pathname.includes('..')) {
      file = path.join(root, url.pathname);
    }
    if (url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>wasm-tls tests</title>');
      return;
    }
    try {
      const body = readFileSync(file);
      res.writeHead(200, { 'content-type': types[path.extname(file)] || 'application/octet-stream', 'cache-control': 'no-store' });
      res.end(body);
    } catch {
      res.writeHead(404);
      res.end('not found');
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, server };
}

/**
 * @noble/hashes' files for staticServer(), under /noble/: the page has no incremental
 * SHA-256 of its own.
 */
export function nobleFiles() {
  const dir = path.join(root, 'tests/browser/node_modules/@noble/hashes/esm');
  const files = {};
  for (const f of readdirSync(dir)) if (f.endsWith('.js')) files[`/noble/${f}`] = path.join(dir, f);
  return files;
}

/**
 * Imports `modules` ({ name: url }) in `page`, which staticServer(nobleFiles()) serves,
 * into globalThis[global], beside `sha256()`: an incremental digest as nodeSha256 gives.
 */
export async function loadInPage(page, global, modules) {
  const imports = { '@noble/hashes/crypto': '/noble/crypto.js' };
  await page.setContent(`<!doctype html><script type="importmap">${JSON.stringify({ imports })}</script>`);
  await page.evaluate(
    async ([global, modules]) => {
      const names = Object.keys(modules);
      const [{ sha256 }, ...loaded] = await Promise.all([import('/noble/sha256.js'), ...names.map((n) => import(modules[n]))]);
      const toHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
      globalThis[global] = Object.fromEntries(names.map((n, i) => [n, loaded[i]]));
      globalThis[global].sha256 = () => {
        const h = sha256.create();
        return { update: (b) => h.update(b), hex: () => toHex(h.digest()) };
      };
    },
    [global, modules],
  );
}

/** An incremental SHA-256 in Node.js: `update(bytes)`, then `hex()`. */
export function nodeSha256() {
  const hash = createHash('sha256');
  return { update: (b) => hash.update(b), hex: () => hash.digest('hex') };
}

/** Runs the scenario `name` of tests/browser/client.mjs in `page`, on the package. */
export function runInPage(page, name, ...args) {
  return page.evaluate(
    async ([name, args]) => {
      const wasmTls = await import('/pkg/index.js');
      const client = await import('/tests/browser/client.mjs');
      return client[name](wasmTls, ...args);
    },
    [name, args],
  );
}

/** Headless Chromium (Debian's), driven by playwright-core; `extraArgs` go on its command line. */
export async function browser(extraArgs = []) {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...extraArgs,
    ],
  });
}

export function stopAll() {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {}
  }
  children.length = 0;
}

export function writeFile(p, text) {
  writeFileSync(p, text);
}

// ---- Wisp: the relay's Wisp endpoint and a Wisp server nobody here wrote ----

/**
 * The relay with its Wisp endpoint, allowed to reach the given loopback ports. `listen`
 * fixes the address, so that a relay can be restarted where clients expect it; `program`
 * is the relay binary (a benchmark passes the release build).
 */
export async function wispRelay(ports, extra = [], listen = '127.0.0.1:0', program = binary('wasm-tls-relay')) {
  const allow = ports.flatMap((p) => ['--allow', `127.0.0.1:${p}`]);
  const child = track(
    spawn(program, ['--listen', listen, '--allow-private', ...allow, ...extra], {
      stdio: ['ignore', 'ignore', 'pipe'],
    }),
    'relay',
  );
  // Up to the newline: the address may arrive in two chunks.
  const m = await waitForLine(child.stderr, /listening on (ws:\/\/\S+)\n/, 'relay');
  return { url: m[1], wisp: `${m[1]}/wisp/`, child };
}

/**
 * @mercuryworkshop/wisp-js's server on 127.0.0.1 (Wisp v2 unless options say
 * wisp_version: 1), allowed to reach loopback and private addresses.
 */
export async function wispJsServer(options = {}) {
  const port = await freePort();
  const cli = path.join(root, 'tests/browser/node_modules/@mercuryworkshop/wisp-js/src/bin/server_cli.mjs');
  const settings = { allow_loopback_ips: true, allow_private_ips: true, ...options };
  const child = track(
    spawn(process.execPath, [cli, '--host', '127.0.0.1', '--port', String(port), '--logging', 'WARN', '--options', JSON.stringify(settings)], {
      stdio: ['ignore', 'ignore', 'pipe'],
    }),
    'wisp-js',
  );
  await waitForPort(port);
  return { url: `ws://127.0.0.1:${port}/wisp/`, child };
}
