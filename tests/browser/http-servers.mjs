// Servers for the HTTP client's tests, on 127.0.0.1 with the test PKI's `server` leaf:
// nginx with TLS on two ports (`h2Port`: ALPN h2 and http/1.1; `h1Port`: http/1.1 only)
// and plaintext HTTP/1.1 on `plainPort`,
// serving files (a 64 MiB one, gzip'd text), redirects, and proxying to a backend in
// Node.js for what nginx does not do itself: echoing request bodies, deflate, and a
// WebSocket echo server (the `ws` package) with a route that drops mid-message. nginx's
// access log names each request's connection serial, to count TLS connections.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { brotliCompressSync, deflateSync } from 'node:zlib';
import { WebSocketServer } from 'ws';
import * as h from './harness.mjs';

function nginxProgram() {
  for (const dir of [...(process.env.PATH || '').split(':'), '/usr/sbin', '/usr/bin']) {
    if (dir && existsSync(path.join(dir, 'nginx'))) return path.join(dir, 'nginx');
  }
  throw new Error('nginx is not installed');
}


/**
 * The backend: /echo streams the body back, /hash answers its SHA-256, /deflate, /brotli
 * (if offered), /drop (a body cut short), /ws.
 */
async function backend() {
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/echo') {
      res.writeHead(200, { 'content-type': req.headers['content-type'] || 'application/octet-stream', 'x-method': req.method });
      req.pipe(res);
    } else if (url.pathname === '/hash') {
      const hash = createHash('sha256');
      let length = 0;
      req.on('data', (d) => {
        hash.update(d);
        length += d.length;
      });
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ method: req.method, length, sha256: hash.digest('hex'), contentType: req.headers['content-type'] || null, header: req.headers['x-test'] || null }));
      });
    } else if (url.pathname === '/drop') {
      // 1 MiB announced, 256 KiB sent, then the connection drops.
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(1 << 20) });
      res.write(Buffer.alloc(256 << 10, 1), () => setTimeout(() => res.socket.destroy(), 50));
    } else if (url.pathname === '/brotli') {
      // brotli only to a client that offers it.
      const br = /\bbr\b/.test(req.headers['accept-encoding'] || '');
      res.writeHead(200, { 'content-type': 'text/plain', vary: 'accept-encoding', ...(br ? { 'content-encoding': 'br' } : {}) });
      res.end(br ? brotliCompressSync(Buffer.from(TEXT)) : TEXT);
    } else if (url.pathname === '/deflate') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'deflate' });
      res.end(deflateSync(Buffer.from(TEXT)));
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 << 20, handleProtocols: (protocols) => (protocols.has('chat') ? 'chat' : false) });
  server.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      const url = new URL(req.url, 'http://x');
      if (url.pathname === '/ws-drop') {
        // A 1 MiB binary frame's header and half its payload, then the connection drops.
        const header = Buffer.from([0x82, 127, 0, 0, 0, 0, 0, 0x10, 0, 0]);
        socket.write(Buffer.concat([header, Buffer.alloc(512 * 1024, 7)]), () => socket.destroy());
        return;
      }
      ws.on('message', (data, isBinary) => {
        const text = isBinary ? null : data.toString();
        if (text === 'close please') ws.close(4001, 'asked to');
        else if (text === 'ping me') ws.ping('from the server');
        else ws.send(data, { binary: isBinary });
      });
      ws.on('pong', (data) => ws.send(`pong:${data.toString()}`));
      ws.on('ping', (data) => {
        // Tell the client its ping arrived (the pong itself is automatic).
        ws.send(`ping:${data.toString()}`);
      });
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: server.address().port };
}

export const TEXT = 'wasm-tls over HTTP, compressed. '.repeat(2000);

/** nginx and its backend; `bigSize` bytes at /big.bin. */
export async function httpServers(pki, { bigSize = 64 << 20 } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'wasm-tls-http-'));
  for (const sub of ['html', 'body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(path.join(dir, sub));
  const big = Buffer.alloc(bigSize);
  for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
  writeFileSync(path.join(dir, 'html', 'big.bin'), big);
  const bigSha256 = createHash('sha256').update(big).digest('hex');
  writeFileSync(path.join(dir, 'html', 'hello.txt'), 'hello\n');
  writeFileSync(path.join(dir, 'html', 'text.txt'), TEXT);
  const back = await backend();
  const h2Port = await h.freePort();
  const h1Port = await h.freePort();
  const plainPort = await h.freePort();
  const proxy = `proxy_pass http://127.0.0.1:${back.port};
      proxy_http_version 1.1;
      proxy_request_buffering off;
      proxy_buffering off;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_read_timeout 60s;`;
  const conf = `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 512; }
http {
  log_format conns '$connection $server_port $server_protocol $request_method $uri $status $ssl_session_reused';
  access_log ${dir}/access.log conns;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  client_max_body_size 0;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  types { text/plain txt; application/octet-stream bin; }
  server {
    listen 127.0.0.1:${h2Port} ssl http2;
    listen 127.0.0.1:${h1Port} ssl;
    listen 127.0.0.1:${plainPort};
    ssl_certificate ${pki.file('server.pem')};
    ssl_certificate_key ${pki.file('server.key')};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_tickets on;
    http2_max_concurrent_streams 128;
    root ${dir}/html;
    gzip on;
    gzip_types text/plain;
    gzip_min_length 0;
    location = / {
      default_type text/plain;
      return 200 "$server_protocol\\n";
    }
    location = /redirect/1 { return 302 /redirect/2; }
    location = /redirect/2 { return 301 https://127.0.0.1:$server_port/redirect/3; }
    location = /redirect/3 { return 308 /hello.txt; }
    location = /redirect/loop { return 302 /redirect/loop; }
    location = /redirect/post-303 { return 303 /hash; }
    location = /redirect/post-307 { return 307 /hash; }
    location /echo { ${proxy} }
    location /hash { ${proxy} }
    location /deflate { gzip off; ${proxy} }
    location /brotli { gzip off; ${proxy} }
    location /drop { ${proxy} }
    location /ws { ${proxy} }
    # big.bin by the path the data-path benchmark's socket and ceiling ask for.
    location /bytes/ { try_files /big.bin =404; }
  }
}
`;
  writeFileSync(path.join(dir, 'nginx.conf'), conf);
  const child = h.track(spawn(nginxProgram(), ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log')], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] }), 'nginx');
  await h.waitForPort(h2Port, { child, what: 'nginx' });
  await h.waitForPort(h1Port, { child, what: 'nginx' });
  await h.waitForPort(plainPort, { child, what: 'nginx' });
  return {
    h2Port,
    h1Port,
    plainPort,
    bigSize,
    bigSha256,
    /** nginx's access log: one { connection, port, protocol, method, uri, status } per request. */
    accessLog() {
      const text = existsSync(path.join(dir, 'access.log')) ? readFileSync(path.join(dir, 'access.log'), 'utf8') : '';
      return text
        .split('\n')
        .filter(Boolean)
        .map((line) => {
          const [connection, port, protocol, method, uri, status, reused] = line.split(' ');
          return { connection: Number(connection), port: Number(port), protocol, method, uri, status: Number(status), resumed: reused === 'r' };
        });
    },
    async stop() {
      child.kill('SIGTERM');
      back.server.closeAllConnections?.();
      back.server.close();
      await new Promise((r) => setTimeout(r, 100));
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
