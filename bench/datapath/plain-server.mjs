// The ceiling's server: the rustls test server's two bulk requests without TLS, on
// 127.0.0.1. `GET /bytes/N` answers N zero bytes and closes; `POST /sink` reads its
// Content-Length and answers the count. Prints `listening on 127.0.0.1:PORT`.

import net from 'node:net';

const ZEROS = Buffer.alloc(1 << 20);

function head(status, length) {
  return `HTTP/1.1 ${status}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${length}\r\nConnection: close\r\n\r\n`;
}

/** Writes `left` zero bytes, a megabyte at a time, as fast as the socket drains. */
function stream(socket, left) {
  while (left > 0) {
    const n = Math.min(left, ZEROS.length);
    left -= n;
    if (!socket.write(n === ZEROS.length ? ZEROS : ZEROS.subarray(0, n))) {
      socket.once('drain', () => stream(socket, left));
      return;
    }
  }
  socket.end();
}

function sink(socket, want, already) {
  let got = already;
  const done = () => {
    const body = `${got}\n`;
    socket.end(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
  };
  if (got >= want) {
    done();
    return;
  }
  socket.on('data', (d) => {
    got += d.length;
    if (got >= want) {
      socket.removeAllListeners('data');
      done();
    }
  });
  socket.on('end', () => {
    if (got < want) done();
  });
}

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  socket.on('error', () => {});
  let buf = Buffer.alloc(0);
  const onData = (d) => {
    buf = Buffer.concat([buf, d]);
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) {
      if (buf.length > 16384) socket.destroy();
      return;
    }
    socket.off('data', onData);
    const text = buf.subarray(0, end).toString('latin1');
    const rest = buf.length - end - 4;
    const [method, path] = text.split(/\s+/);
    const bytes = /^\/bytes\/(\d+)$/.exec(path || '');
    if (method === 'GET' && bytes) {
      const n = Number(bytes[1]);
      socket.write(head('200 OK', n));
      stream(socket, n);
    } else if (method === 'POST' && path === '/sink') {
      const m = /^content-length:\s*(\d+)\s*$/im.exec(text);
      sink(socket, m ? Number(m[1]) : 0, rest);
    } else {
      socket.end(head('404 Not Found', 0));
    }
  };
  socket.on('data', onData);
});

server.listen(0, '127.0.0.1', () => {
  console.log(`listening on 127.0.0.1:${server.address().port}`);
});
