// The WASI side end to end: tls-client.wasm under wasmtime, the test consumer plugged
// into the library component (a real component boundary) under wasmtime, and the
// library transpiled by jco in Node.js, pumped by a net.Socket. Servers: openssl
// s_server on 127.0.0.1 with certificates made at test time, and a Node server that
// ends the TCP stream without close_notify. `cargo xtask build-wasi` makes the
// artifacts; `cargo xtask test` runs this file after it.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';

import { binary, freePort, makePki, opensslServer, root, stopAll } from '../browser/harness.mjs';

const wasiDir = path.join(root, 'target/wasi');
const artifact = (name) => {
  const p = path.join(wasiDir, name);
  if (!existsSync(p)) throw new Error(`${p} is missing: run cargo xtask build-wasi`);
  return p;
};
const GET = 'GET / HTTP/1.0\\r\\n\\r\\n';
// Bounds each wasmtime run; each test has its own bound too.
const RUN_MS = 30000;
const TEST = { timeout: 60000 };

/** Runs a child to its end or kills it after `ms`; never blocks the event loop. */
function runChild(cmd, args, ms = RUN_MS, input = null) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: [input === null ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    if (input !== null) child.stdin.end(input);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')}: no exit after ${ms} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, ms);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** `wasmtime run` with the network, name lookup, and the PKI directory as /certs. */
function wasmtime(pki, wasm, args, input = null) {
  return runChild('wasmtime', ['run', '-S', 'inherit-network', '-S', 'allow-ip-name-lookup', '--dir', `${pki.dir}::/certs`, wasm, ...args], RUN_MS, input);
}

function tlsClientArgs(port, extra = []) {
  return ['--connect', `127.0.0.1:${port}`, '--servername', 'localhost', '--cafile', '/certs/ca.pem', '--timeout', '10', ...extra];
}

/** The summary lines tls-client prints, without the handshake's duration and dates. */
function summary(stderr) {
  return stderr
    .split('\n')
    .filter((l) => /^(Protocol|Cipher|Group|ALPN|Resumed)\s*:|^ \d s:|^\s+i:/.test(l))
    .join('\n');
}

/**
 * A TLS server that answers the first request and then cuts the TCP connection:
 * no close_notify, so a client must report truncation.
 */
async function truncatingServer(pki) {
  const key = readFileSync(pki.file('server.key'));
  const cert = readFileSync(pki.file('server.pem'));
  const server = net.createServer((raw) => {
    raw.on('error', () => {});
    const secure = new tls.TLSSocket(raw, { isServer: true, key, cert });
    secure.on('error', () => {});
    secure.once('data', () => {
      secure.write('HTTP/1.0 200 ok\r\ncontent-type: text/plain\r\n\r\nthe first half of the body', () => {
        // Let the record reach the client, then end TCP under the TLS layer.
        setTimeout(() => raw.destroy(), 200);
      });
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { port: server.address().port, server };
}

let pki;
const servers = {};

before(async () => {
  pki = makePki();
  servers.good = await opensslServer(pki, 'server');
  servers.expired = await opensslServer(pki, 'expired');
  servers.wrongname = await opensslServer(pki, 'wrongname');
  servers.truncating = await truncatingServer(pki);
});

after(() => {
  servers.truncating?.server.close();
  stopAll();
});

describe('the interface', () => {
  test('the built component exports exactly the WIT of wit/', TEST, () => {
    const wit = (target) => {
      const r = spawnSync('wasm-tools', ['component', 'wit', target], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout;
    };
    // The interface's text as wasm-tools prints it, without doc comments (the
    // component does not carry them) and indentation (nested in the component's output).
    const iface = (text) => {
      const m = /^\s*interface tls \{\n[\s\S]*?^\s*\}\n/m.exec(text);
      assert.ok(m, `no interface tls in:\n${text}`);
      return m[0]
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith('///'))
        .join('\n');
    };
    const source = wit(path.join(root, 'wit'));
    const built = wit(artifact('wasm_tls.wasm'));
    assert.equal(iface(built), iface(source));
    assert.match(built, /^\s*export wasm-tls:client\/tls@0\.1\.0;$/m);
    // What it needs from its host: no sockets, no filesystem.
    const imports = [...built.matchAll(/^\s*import (wasi:[\w-]+)\/[\w-]+@/gm)].map((m) => m[1]);
    assert.ok(imports.includes('wasi:random'));
    assert.ok(imports.includes('wasi:clocks'));
    assert.ok(!imports.includes('wasi:sockets') && !imports.includes('wasi:filesystem'), imports.join(' '));
  });

  test("the WIT error codes are the core's Error::code() strings", TEST, () => {
    const wit = readFileSync(path.join(root, 'wit/tls.wit'), 'utf8');
    const body = /enum error-code \{([\s\S]*?)\}/.exec(wit)[1];
    const cases = body
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('///'))
      .map((l) => l.replace(/,$/, ''));
    const errorRs = readFileSync(path.join(root, 'src/error.rs'), 'utf8');
    const codeFn = /pub fn code\(&self\)[\s\S]*?\n    \}\n/.exec(errorRs)[0];
    const codes = [...codeFn.matchAll(/=> "([a-z-]+)"/g)].map((m) => m[1]);
    assert.deepEqual([...cases].sort(), [...codes].sort());
  });
});

describe('tls-client.wasm under wasmtime', () => {
  for (const [flag, version] of [
    ['--tls1_3', 'TLSv1.3'],
    ['--tls1_2', 'TLSv1.2'],
  ]) {
    test(`${version}: a request and its response, as the native command prints them`, TEST, async () => {
      const args = tlsClientArgs(servers.good.port, [flag, '--request', GET]);
      const r = await wasmtime(pki, artifact('tls-client.wasm'), args);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^HTTP\/1\.0 200 ok\r\n/);
      assert.match(r.stdout, /s_server/);
      assert.match(r.stderr, new RegExp(`^Protocol  : ${version.replace('.', '\\.')}$`, 'm'));
      assert.match(r.stderr, /^Cipher    : TLS\w+$/m);
      assert.match(r.stderr, /^ 0 s:CN=localhost$/m);
      assert.match(r.stderr, /^   i:CN=wasm-tls test CA, O=wasm-tls tests$/m);
      let native;
      try {
        native = binary('tls-client');
      } catch {
        return; // no native build to compare with (cargo test builds it)
      }
      const n = await runChild(native, tlsClientArgs(servers.good.port, [flag, '--request', GET]).map((a) => a.replace('/certs/', `${pki.dir}/`)));
      assert.equal(n.code, 0, n.stderr);
      // The cipher order differs on purpose (ChaCha20 first in wasm), so compare the rest.
      const strip = (s) => summary(s).replace(/^Cipher.*$/m, '');
      assert.match(strip(n.stderr), /^Protocol {2}: TLSv1\.\d\n[\s\S]* 0 s:CN=localhost\n/m);
      assert.equal(strip(r.stderr), strip(n.stderr));
    });
  }

  test('without --request it sends stdin', TEST, async () => {
    const r = await wasmtime(pki, artifact('tls-client.wasm'), tlsClientArgs(servers.good.port), 'GET / HTTP/1.0\r\n\r\n');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^HTTP\/1\.0 200 ok\r\n/);
  });

  test('an expired certificate: certificate-expired', TEST, async () => {
    const r = await wasmtime(pki, artifact('tls-client.wasm'), tlsClientArgs(servers.expired.port, ['--request', GET]));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /tls-client: error: certificate expired: .*\[certificate-expired\]/);
    assert.equal(r.stdout, '');
  });

  test('a certificate for another name: certificate-name-mismatch', TEST, async () => {
    const r = await wasmtime(pki, artifact('tls-client.wasm'), tlsClientArgs(servers.wrongname.port, ['--request', GET]));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /not valid for the name "localhost": it is valid for wrong\.example, 127\.0\.0\.1 \[certificate-name-mismatch\]/);
  });

  test('a refused connection: said so, before any TLS', TEST, async () => {
    const port = await freePort();
    const r = await wasmtime(pki, artifact('tls-client.wasm'), tlsClientArgs(port, ['--request', GET]));
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^tls-client: error: cannot connect to 127\\.0\\.0\\.1:${port}: Connection refused`, 'm'));
  });

  test('EOF without close_notify after data: truncated', TEST, async () => {
    const r = await wasmtime(pki, artifact('tls-client.wasm'), tlsClientArgs(servers.truncating.port, ['--request', GET]));
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /the first half of the body$/);
    assert.match(r.stderr, /without close_notify.*\[truncated\]/);
  });
});

describe('the consumer component plugged into the library (wac), under wasmtime', () => {
  for (const flag of ['--tls1_3', '--tls1_2']) {
    test(`${flag}: bad input, a handshake and an exchange across the boundary`, TEST, async () => {
      const r = await wasmtime(pki, artifact('composed.wasm'), ['--connect', `127.0.0.1:${servers.good.port}`, '--cafile', '/certs/ca.pem', flag]);
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      assert.doesNotMatch(r.stdout, /^FAIL/m);
      for (const line of [
        'ok create with an unparseable PEM: invalid-config',
        'ok create with a client key that does not parse: invalid-config',
        'ok read of zero bytes: invalid-input',
        'ok write of no bytes: invalid-input',
        'ok read(u32::MAX) after the failure: protocol-violation',
        'ok write after shutdown: invalid-state',
        'ok shutdown: complete',
      ]) {
        assert.ok(r.stdout.includes(`${line}\n`), `missing "${line}" in:\n${r.stdout}`);
      }
      assert.match(r.stdout, /^ok write of 4 MiB: took \d+, then \d+ bytes of ciphertext$/m);
      const version = flag === '--tls1_3' ? 'TLSv1\\.3' : 'TLSv1\\.2';
      assert.match(r.stdout, new RegExp(`^handshake: ${version} TLS\\w+ \\w+ alpn=\\(none\\) certificates=1 resumed=false$`, 'm'));
      assert.match(r.stdout, /^ok response: \d+ bytes, then zero-return$/m);
      assert.match(r.stdout, /^---\nHTTP\/1\.0 200 ok\r\n/m);
    });
  }
});

describe('the library transpiled by jco, in Node.js', () => {
  let api;

  before(async () => {
    const js = path.join(root, 'tests/wasi/jco/wasm_tls.js');
    if (!existsSync(js)) throw new Error(`${js} is missing: run cargo xtask build-wasi`);
    ({ tls: api } = await import(js));
  });

  const config = (extra = {}) => ({
    serverName: 'localhost',
    extraRootsPem: [pki.ca],
    bundledRoots: false,
    alpn: [],
    keyLog: false,
    postQuantum: true,
    ...extra,
  });

  /** The `ssl-error` a call threw (jco throws a result's error as `payload`). */
  function thrown(f) {
    try {
      f();
    } catch (e) {
      assert.ok(e.payload, `not a typed error: ${e.stack}`);
      return e.payload;
    }
    assert.fail('expected an error');
  }

  /** A connection pumped over a net.Socket, as any JS host would. */
  async function open(port, cfg) {
    const conn = api.Connection.create(cfg);
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const received = [];
    let ended = false;
    let wake = null;
    const notify = () => {
      wake?.();
      wake = null;
    };
    socket.on('data', (d) => {
      received.push(d);
      notify();
    });
    socket.on('end', () => {
      ended = true;
      notify();
    });
    socket.on('error', () => {
      ended = true;
      notify();
    });
    // Calls f until it neither wants to read nor to write; returns its value or throws.
    async function drive(f) {
      for (;;) {
        let tag;
        try {
          return f();
        } catch (e) {
          tag = e.payload?.tag;
          if (tag !== 'want-read' && tag !== 'want-write') throw e;
        }
        if (conn.pendingCiphertext() > 0) socket.write(conn.pullCiphertext(0xffffffff));
        if (tag === 'want-read') {
          if (received.length === 0 && !ended) await new Promise((r) => (wake = r));
          if (received.length > 0) {
            const chunk = received.shift();
            const taken = conn.pushCiphertext(chunk);
            if (taken < chunk.length) received.unshift(chunk.subarray(taken));
          } else {
            conn.pushEof();
          }
        }
      }
    }
    return { conn, socket, drive };
  }

  test('a handshake and an HTTP exchange, pumped by a net.Socket', TEST, async () => {
    const { conn, socket, drive } = await open(servers.good.port, config({ keyLog: true, alpn: ['http/1.1'] }));
    try {
      assert.equal(conn.handshakeInfo(), undefined);
      await drive(() => conn.connect());
      const info = conn.handshakeInfo();
      assert.equal(info.version, 'tls13');
      assert.match(info.cipherSuite, /^TLS13_/);
      assert.equal(info.resumed, false);
      assert.equal(info.peerCertificates.length, 1);
      assert.ok(info.peerCertificates[0] instanceof Uint8Array);
      assert.equal(info.peerCertificates[0][0], 0x30); // a DER SEQUENCE
      assert.ok(conn.takeKeyLog().some((l) => /^CLIENT_TRAFFIC_SECRET_0 [0-9a-f]{64} [0-9a-f]+$/.test(l)));
      assert.deepEqual(conn.takeKeyLog(), []);
      const taken = await drive(() => conn.write(new TextEncoder().encode('GET / HTTP/1.0\r\n\r\n')));
      assert.equal(taken, 18);
      socket.write(conn.pullCiphertext(0xffffffff));
      let body = '';
      let end;
      for (;;) {
        try {
          body += new TextDecoder().decode(await drive(() => conn.read(4096)));
        } catch (e) {
          end = e.payload;
          break;
        }
      }
      assert.deepEqual(end, { tag: 'zero-return' });
      assert.match(body, /^HTTP\/1\.0 200 ok\r\n/);
      assert.match(body, /TLSv1\.3/);
      assert.equal(await drive(() => conn.shutdown()), 'complete');
      assert.equal(thrown(() => conn.write(new Uint8Array([1]))).val.code, 'invalid-state');
    } finally {
      socket.destroy();
    }
  });

  test('a second connection from an equal configuration resumes the session', TEST, async () => {
    const exchange = async () => {
      const { conn, socket, drive } = await open(servers.good.port, config({ alpn: ['http/1.1'] }));
      try {
        await drive(() => conn.connect());
        await drive(() => conn.write(new TextEncoder().encode('GET / HTTP/1.0\r\n\r\n')));
        socket.write(conn.pullCiphertext(0xffffffff));
        // Read to the end: the session tickets arrive after the handshake.
        for (;;) {
          try {
            await drive(() => conn.read(65536));
          } catch (e) {
            assert.equal(e.payload?.tag, 'zero-return', e.stack);
            break;
          }
        }
        return conn.handshakeInfo();
      } finally {
        socket.destroy();
      }
    };
    assert.equal((await exchange()).resumed, false);
    const again = await exchange();
    assert.equal(again.resumed, true);
    assert.equal(again.version, 'tls13');
  });

  test('an expired certificate: a typed certificate-expired error', TEST, async () => {
    const { conn, socket, drive } = await open(servers.expired.port, config({ maxVersion: 'tls12' }));
    try {
      let err;
      try {
        await drive(() => conn.connect());
      } catch (e) {
        err = e.payload;
      }
      assert.equal(err?.tag, 'ssl');
      assert.equal(err.val.code, 'certificate-expired');
      assert.match(err.val.message, /^certificate expired: it was valid until /);
      // Sticky: the same error again, and the alert for the server is pending.
      assert.deepEqual(thrown(() => conn.connect()), err);
      assert.ok(conn.pendingCiphertext() > 0);
    } finally {
      socket.destroy();
    }
  });

  test('bad input across the boundary: typed errors, never a trap', TEST, () => {
    const pemError = (extra) => {
      try {
        api.Connection.create(config(extra));
      } catch (e) {
        return e.payload;
      }
      assert.fail('create accepted a bad configuration');
    };
    assert.equal(pemError({ extraRootsPem: ['-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n'] }).code, 'invalid-config');
    assert.equal(pemError({ extraRootsPem: [''] }).code, 'invalid-config');
    assert.equal(pemError({ extraRootsPem: [] }).code, 'invalid-config');
    assert.equal(pemError({ serverName: 'not a name' }).code, 'invalid-config');
    assert.equal(pemError({ clientAuth: { certChainPem: pki.ca, keyPem: 'garbage' } }).code, 'invalid-config');
    assert.equal(pemError({ minVersion: 'tls13', maxVersion: 'tls12' }).code, 'invalid-config');

    const conn = api.Connection.create(config());
    assert.equal(thrown(() => conn.read(0)).val.code, 'invalid-input');
    assert.equal(thrown(() => conn.write(new Uint8Array(0))).val.code, 'invalid-input');
    assert.equal(conn.pushCiphertext(new Uint8Array(0)), 0);
    assert.equal(conn.pullCiphertext(0xffffffff).length, 0);
    assert.deepEqual(thrown(() => conn.connect()), { tag: 'want-write' });
    const hello = conn.pullCiphertext(10);
    assert.equal(hello.length, 10);
    assert.equal(hello[0], 0x16); // a handshake record
    assert.ok(conn.pullCiphertext(0xffffffff).length > 0);
    // 16 MiB of garbage: taken, then a typed failure, the same from every call after.
    const garbage = new Uint8Array(16 << 20).fill(0xa5);
    assert.ok(conn.pushCiphertext(garbage) > 0);
    const failure = thrown(() => conn.connect());
    assert.equal(failure.tag, 'ssl');
    assert.equal(failure.val.code, 'protocol-violation');
    assert.deepEqual(thrown(() => conn.read(0xffffffff)), failure);
    assert.deepEqual(thrown(() => conn.write(new Uint8Array(1 << 20))), failure);
    assert.deepEqual(thrown(() => conn.shutdown()), failure);
    assert.equal(conn.pushCiphertext(garbage), garbage.length);
    conn.pushEof();
    conn.pushEof();
    assert.deepEqual(thrown(() => conn.connect()), failure);
    assert.equal(conn.handshakeInfo(), undefined);
    assert.equal(conn.isHandshaking(), true);
    assert.deepEqual(conn.takeKeyLog(), []);

    // EOF during the handshake: syscall, unexpected-eof.
    const early = api.Connection.create(config());
    early.pushEof();
    assert.deepEqual(thrown(() => early.connect()), { tag: 'want-write' }); // the ClientHello
    early.pullCiphertext(0xffffffff);
    const eof = thrown(() => early.connect());
    assert.equal(eof.tag, 'syscall');
    assert.equal(eof.val.code, 'unexpected-eof');
    // A closed resource handle is a JS error, not a trap of the instance.
    early[Symbol.dispose]();
    assert.throws(() => early.connect());
    assert.equal(api.Connection.create(config()).isHandshaking(), true);
  });
});
