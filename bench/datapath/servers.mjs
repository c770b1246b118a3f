// The servers the data-path benchmark runs (the TLS test server, a plain server, the
// relay, websockify behind a forwarder that holds its targets' close) and the facts of
// the machine it ran on. Every child process goes into `children`, for the caller to
// stop.

import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import * as h from '../../tests/browser/harness.mjs';

const root = h.root;
const log = (...m) => console.error('datapath:', ...m);

/** The processes started here. */
export const children = [];


function start(cmd, argv, what, regex, from = 'stdout') {
  if (!existsSync(cmd) && cmd.includes('/')) throw new Error(`${cmd} is not built`);
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  child.on('error', (e) => log(`${what}: ${e.message}`));
  const found = h.waitForLine(child[from], regex, what);
  // Keep the pipes drained: a full pipe would stop the process.
  child.stdout.resume();
  child.stderr.resume();
  return found;
}

/** The CA and the server's certificate: those in `pkiDir` if it has them, else new ones. */
export function pkiFiles(pkiDir) {
  if (pkiDir && existsSync(path.join(pkiDir, 'server.pem'))) {
    return { ca: readFileSync(path.join(pkiDir, 'ca.pem'), 'utf8'), cert: path.join(pkiDir, 'server.pem'), key: path.join(pkiDir, 'server.key') };
  }
  const pki = h.makePki();
  return { ca: pki.ca, cert: pki.file('server.pem'), key: pki.file('server.key') };
}

/** Starts the servers; `bins` names the test server's and the relay's executables. */
export async function servers(pki, bins) {
  const tls = await start(bins.serverBin, ['--cert', pki.cert, '--key', pki.key], 'test_server', /listening on 127\.0\.0\.1:(\d+)\r?\n/);
  const plain = await start(process.execPath, [path.join(root, 'bench/datapath/plain-server.mjs')], 'plain server', /listening on 127\.0\.0\.1:(\d+)\r?\n/);
  const tlsTarget = `127.0.0.1:${tls[1]}`;
  const plainTarget = `127.0.0.1:${plain[1]}`;
  const relay = await start(
    bins.relayBin,
    ['--listen', '127.0.0.1:0', '--allow-private', '--allow', tlsTarget, '--allow', plainTarget],
    'relay',
    /listening on (ws:\/\/\S+)\n/,
    'stderr',
  );
  const s = { tlsTarget, plainTarget, relay: relay[1], wisp: `${relay[1]}/wisp/`, websockify: null };
  try {
    // websockify drops what it queues for the client when its target closes: its
    // targets hold their close until the client's (bench/datapath/hold-forwarder.mjs).
    const child = spawn(process.execPath, [path.join(root, 'bench/datapath/hold-forwarder.mjs'), tls[1], plain[1]], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    const via = {};
    await new Promise((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => reject(new Error(`the forwarder said: ${buf}`)), 10000);
      child.stdout.on('data', (d) => {
        buf += d;
        for (const m of buf.matchAll(/hold 127\.0\.0\.1:(\d+) via 127\.0\.0\.1:(\d+)\n/g)) via[m[1]] = Number(m[2]);
        if (via[tls[1]] && via[plain[1]]) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    const [wt, wp] = [await h.websockify(via[tls[1]]), await h.websockify(via[plain[1]])];
    children.push(wt.child, wp.child);
    s.websockify = { tls: wt.url, plain: wp.url };
  } catch (err) {
    log(`no websockify: ${err.message}`);
  }
  return s;
}

function versionOf(cmd, argv) {
  return new Promise((resolve) => {
    const c = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (out += d));
    c.on('error', () => resolve(null));
    c.on('close', () => resolve(out.trim().split('\n')[0] || null));
  });
}

/** What the figures ran on. */
export async function machine() {
  const cpus = os.cpus();
  let osName = os.type();
  try {
    osName = /PRETTY_NAME="([^"]+)"/.exec(readFileSync('/etc/os-release', 'utf8'))[1];
  } catch {}
  return {
    cpus: cpus.length,
    cpuModel: cpus[0] ? cpus[0].model : '?',
    memoryGiB: os.totalmem() / 2 ** 30,
    os: osName,
    node: process.version,
    openssl: process.versions.openssl,
    websockify: await versionOf('sh', ['-c', 'dpkg-query -W -f "\\${Version}" websockify 2>/dev/null']),
    loadBefore: os.loadavg(),
  };
}

