// Real servers for the client-library tests, each on 127.0.0.1 and a free port with the
// test PKI's `server` leaf: PostgreSQL (ssl=on, TLS-only logins), nginx (TLS, HTTP/2) and
// dovecot (IMAP with STARTTLS, and IMAPS). Each runs from a temp dir of its own, started
// as the Debian packages install them; stopServers() shuts them down and waits.

import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as h from './harness.mjs';

const stops = [];
const dirs = [];

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60000, ...options });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal ?? r.error}):\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** A program from PATH, or from the sbin dirs Debian puts servers in (not on every PATH). */
function program(name) {
  const dirs = [...(process.env.PATH || '').split(':'), '/usr/sbin', '/usr/bin', '/sbin'];
  for (const dir of dirs) {
    if (dir && existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  throw new Error(`${name} is not installed`);
}

function account(name) {
  const out = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', name], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`no user ${name}: is its Debian package installed?`);
  return { uid: Number(out.stdout), gid: Number(gid.stdout) };
}

function tempDir(prefix) {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

/** Resolves when `child` has exited, or after `ms`. */
function exited(child, ms) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** Waits for a line of the child's stderr (or stdout) that matches, failing early if it exits. */
function waitFor(child, stream, regex, what, ms = 20000) {
  return new Promise((resolve, reject) => {
    let text = '';
    const done = (err, value) => {
      clearTimeout(timer);
      stream.off('data', onData);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (d) => {
      text += d;
      const m = regex.exec(text);
      if (m) done(null, m);
    };
    const onExit = (code, signal) => done(new Error(`${what} exited (${code ?? signal}) before it was ready:\n${text}`));
    const timer = setTimeout(() => done(new Error(`${what}: not ready in ${ms} ms:\n${text}`)), ms);
    stream.on('data', onData);
    child.once('exit', onExit);
  });
}

/** The newest PostgreSQL server binaries Debian installed (they are not on PATH). */
function postgresBin() {
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base) ? readdirSync(base).filter((v) => /^\d+$/.test(v)).sort((a, b) => b - a) : [];
  for (const v of versions) {
    const dir = path.join(base, v, 'bin');
    if (existsSync(path.join(dir, 'postgres'))) return dir;
  }
  throw new Error('PostgreSQL is not installed (apt-get install postgresql)');
}

/**
 * PostgreSQL with ssl=on, run as the `postgres` user from a temp dir: logins only over TLS
 * (hostssl, SCRAM; hostnossl rejected). Superuser `postgres`, password `password`.
 */
export async function postgres(pki) {
  const bin = postgresBin();
  const pg = account('postgres');
  const dir = tempDir('wasm-tls-pg-');
  chownSync(dir, pg.uid, pg.gid);
  chmodSync(dir, 0o700);
  const owned = (name, text, mode = 0o600) => {
    const p = path.join(dir, name);
    writeFileSync(p, text, { mode });
    chownSync(p, pg.uid, pg.gid);
    return p;
  };
  const password = 'password';
  owned('pwfile', `${password}\n`);
  // The server refuses a key that others can read.
  const cert = owned('server.pem', readFileSync(pki.file('server.pem')));
  const key = owned('server.key', readFileSync(pki.file('server.key')));
  const hba = owned('pg_hba.conf', 'local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\nhostnossl all all 127.0.0.1/32 reject\n');
  const data = path.join(dir, 'data');
  run(program('runuser'), ['-u', 'postgres', '--', path.join(bin, 'initdb'), '-D', data, '-U', 'postgres', '--pwfile', path.join(dir, 'pwfile'), '-A', 'scram-sha-256', '-E', 'UTF8', '--locale=C', '--no-sync'], { cwd: dir });
  const port = await h.freePort();
  const settings = {
    listen_addresses: '127.0.0.1',
    port,
    unix_socket_directories: dir,
    hba_file: hba,
    ssl: 'on',
    ssl_cert_file: cert,
    ssl_key_file: key,
    password_encryption: 'scram-sha-256',
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    logging_collector: 'off',
    max_connections: 20,
  };
  // In postgresql.conf, not on the command line: ALTER SYSTEM (a test turns ssl off) must
  // be able to override them.
  const conf = path.join(data, 'postgresql.conf');
  writeFileSync(conf, `${readFileSync(conf, 'utf8')}\n${Object.entries(settings).map(([k, v]) => `${k} = '${v}'`).join('\n')}\n`);
  const child = h.track(spawn(program('runuser'), ['-u', 'postgres', '--', path.join(bin, 'postgres'), '-D', data], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] }), 'postgres');
  await waitFor(child, child.stderr, /database system is ready to accept connections/, 'postgres');
  stops.push(async () => {
    // The postmaster itself, not runuser: SIGINT is its fast shutdown.
    try {
      const pid = Number(readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (pid > 0) process.kill(pid, 'SIGINT');
    } catch {}
    if (!(await exited(child, 10000))) child.kill('SIGKILL');
  });
  return {
    port,
    child,
    user: 'postgres',
    password,
    database: 'postgres',
    /** Runs SQL as the superuser over the unix socket, with psql. */
    psql: (sql) => run(program('runuser'), ['-u', 'postgres', '--', path.join(bin, 'psql'), '-h', dir, '-p', String(port), '-At', '-d', 'postgres', '-c', sql]).trim(),
  };
}

/** nginx's version as [major, minor, patch]. */
function nginxVersion() {
  const r = spawnSync(program('nginx'), ['-v'], { encoding: 'utf8' });
  const m = /nginx\/(\d+)\.(\d+)\.(\d+)/.exec(`${r.stdout}${r.stderr}`);
  if (!m) throw new Error(`nginx -v: ${r.error || r.stderr}`);
  return m.slice(1).map(Number);
}

/**
 * nginx with TLS and HTTP/2 (ALPN h2 and http/1.1). `/` answers with the protocol it
 * spoke; `/big.bin` is `bigSize` bytes (its SHA-256 in `bigSha256`).
 */
export async function nginx(pki, { bigSize = 8 << 20 } = {}) {
  const dir = tempDir('wasm-tls-nginx-');
  for (const sub of ['html', 'body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(path.join(dir, sub));
  const big = Buffer.alloc(bigSize);
  for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
  writeFileSync(path.join(dir, 'html', 'big.bin'), big);
  const { createHash } = await import('node:crypto');
  const bigSha256 = createHash('sha256').update(big).digest('hex');
  const port = await h.freePort();
  // `http2 on` arrived in nginx 1.25.1; before it, HTTP/2 is a parameter of `listen`.
  const [major, minor, patch] = nginxVersion();
  const modern = major > 1 || minor > 25 || (minor === 25 && patch >= 1);
  const listen = modern ? `listen 127.0.0.1:${port} ssl;\n    http2 on;` : `listen 127.0.0.1:${port} ssl http2;`;
  const conf = `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    ${listen}
    ssl_certificate ${pki.file('server.pem')};
    ssl_certificate_key ${pki.file('server.key')};
    ssl_protocols TLSv1.2 TLSv1.3;
    root ${dir}/html;
    location = / {
      default_type text/plain;
      return 200 "hello from nginx over $server_protocol and $ssl_protocol\\n";
    }
  }
}
`;
  writeFileSync(path.join(dir, 'nginx.conf'), conf);
  const child = h.track(spawn(program('nginx'), ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log')], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] }), 'nginx');
  await h.waitForPort(port, { child, what: 'nginx' });
  stops.push(async () => {
    child.kill('SIGTERM');
    if (!(await exited(child, 5000))) child.kill('SIGKILL');
  });
  return { port, child, bigSize, bigSha256 };
}

/**
 * dovecot (IMAP) as root from a temp dir: STARTTLS on `imapPort`, TLS at once on
 * `imapsPort`; `ssl = required`, so a login needs TLS. User `alice`, password `secret`.
 */
export async function dovecot(pki) {
  const dir = tempDir('wasm-tls-dovecot-');
  // The login, auth and mail processes run as other users and need to reach the files.
  chmodSync(dir, 0o755);
  const nobody = account('nobody');
  copyFileSync(pki.file('server.pem'), path.join(dir, 'server.pem'));
  copyFileSync(pki.file('server.key'), path.join(dir, 'server.key'));
  chmodSync(path.join(dir, 'server.key'), 0o600);
  writeFileSync(path.join(dir, 'passwd'), 'alice:{PLAIN}secret::::::\n', { mode: 0o644 });
  mkdirSync(path.join(dir, 'home'));
  mkdirSync(path.join(dir, 'home', 'alice'));
  chownSync(path.join(dir, 'home', 'alice'), nobody.uid, nobody.gid);
  const imapPort = await h.freePort();
  const imapsPort = await h.freePort();
  const conf = `base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = /dev/stderr
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <${dir}/server.pem
ssl_key = <${dir}/server.key
ssl_min_protocol = TLSv1.2
auth_mechanisms = plain login
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${dir}/passwd
}
userdb {
  driver = static
  args = uid=${nobody.uid} gid=${nobody.gid} home=${dir}/home/%u
}
mail_location = maildir:~/Maildir
service imap-login {
  inet_listener imap {
    port = ${imapPort}
  }
  inet_listener imaps {
    port = ${imapsPort}
    ssl = yes
  }
}
`;
  const confPath = path.join(dir, 'dovecot.conf');
  writeFileSync(confPath, conf);
  const child = h.track(spawn(program('dovecot'), ['-F', '-c', confPath], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }), 'dovecot');
  child.stdout.on('data', () => {});
  await h.waitForPort(imapPort, { child, what: 'dovecot' });
  await h.waitForPort(imapsPort, { child, what: 'dovecot' });
  stops.push(async () => {
    // The master stops its login, auth and mail processes on SIGTERM.
    child.kill('SIGTERM');
    if (!(await exited(child, 10000))) child.kill('SIGKILL');
  });
  return { imapPort, imapsPort, child, user: 'alice', password: 'secret' };
}

/** Stops every server started here (in parallel, bounded), then removes their dirs. */
export async function stopServers() {
  const all = stops.splice(0);
  await Promise.all(all.map((stop) => stop().catch(() => {})));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/**
 * openssl s_server that stops reading: it copies what it receives to its stdout, which
 * nobody reads, so once that pipe is full it reads no more. One connection at a time.
 */
export async function notReading(pki) {
  const port = await h.freePort();
  const child = h.track(
    spawn('openssl', ['s_server', '-quiet', '-accept', `127.0.0.1:${port}`, '-cert', pki.file('server.pem'), '-key', pki.file('server.key')], {
      stdio: ['pipe', 'pipe', 'pipe'],
    }),
    's_server',
  );
  child.stdout.pause();
  await h.waitForPort(port, { child, what: 's_server' });
  return { port, child };
}

/** A client certificate (`client.pem`, `client.key`) from the test PKI's CA, for mutual TLS. */
export function clientCertificate(pki) {
  const sh = (args) => run('openssl', args, { cwd: pki.dir });
  sh(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=wasm-tls client']);
  writeFileSync(pki.file('client.ext'), 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n');
  sh(['x509', '-req', '-in', 'client.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '7', '-out', 'client.pem', '-extfile', 'client.ext']);
  return { cert: pki.file('client.pem'), key: pki.file('client.key') };
}
