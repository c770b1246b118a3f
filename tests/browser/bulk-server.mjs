// A TLS server for the data-path tests, run as a child process so that its work does not
// weigh on the event loop under test. One request per connection, one line:
//   GET <bytes> <seed>\n   answers the SHA-256 of what follows (hex, one line), then
//                          <bytes> of AES-128-CTR keystream keyed by the seed, then
//                          close_notify
//   PUT <bytes>\n          reads <bytes>, answers their SHA-256 (hex, one line), closes
//   CUT <bytes> <seed>\n   as GET, but then drops the TCP connection without close_notify
// Usage: node bulk-server.mjs CERT KEY   (prints "listening on PORT")

import { createCipheriv, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';

const [cert, key] = process.argv.slice(2).map((f) => readFileSync(f));
const BLOCK = 256 * 1024;
const ZEROS = Buffer.alloc(BLOCK);

/** The bytes a GET sends, block by block. */
function* keystream(bytes, seed) {
  const aesKey = createHash('sha256').update(String(seed)).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', aesKey, Buffer.alloc(16));
  for (let left = bytes; left > 0; left -= BLOCK) {
    yield cipher.update(left >= BLOCK ? ZEROS : ZEROS.subarray(0, left));
  }
}

function send(sock, bytes, seed, cut = false) {
  const hash = createHash('sha256');
  for (const block of keystream(bytes, seed)) hash.update(block);
  sock.write(`${hash.digest('hex')}\n`);
  const blocks = keystream(bytes, seed);
  const more = () => {
    for (;;) {
      const { value, done } = blocks.next();
      if (done) {
        // A cut: the TCP connection ends once the bytes are out, with no close_notify.
        if (cut) sock.write('', () => sock.destroy());
        else sock.end();
        return;
      }
      if (!sock.write(value)) {
        sock.once('drain', more);
        return;
      }
    }
  };
  more();
}

function receive(sock, bytes, first) {
  const hash = createHash('sha256');
  let got = 0;
  const take = (d) => {
    const part = d.subarray(0, bytes - got);
    hash.update(part);
    got += part.length;
    if (got >= bytes) {
      sock.off('data', take);
      sock.end(`${hash.digest('hex')}\n`);
    }
  };
  sock.on('data', take);
  if (first.length) take(first);
  if (bytes === 0) take(Buffer.alloc(0));
}

// The client's cipher-suite order decides, as with nginx's defaults.
const server = tls.createServer({ cert, key, honorCipherOrder: false }, (sock) => {
  sock.on('error', () => {});
  let head = Buffer.alloc(0);
  const onHead = (d) => {
    head = Buffer.concat([head, d]);
    const nl = head.indexOf(10);
    if (nl < 0) return;
    sock.off('data', onHead);
    const [verb, n, seed] = head.subarray(0, nl).toString('latin1').trim().split(' ');
    const rest = head.subarray(nl + 1);
    if (verb === 'GET') send(sock, Number(n), seed);
    else if (verb === 'CUT') send(sock, Number(n), seed, true);
    else if (verb === 'PUT') receive(sock, Number(n), rest);
    else sock.end('bad request\n');
  };
  sock.on('data', onHead);
});
server.listen(0, '127.0.0.1', () => console.log(`listening on ${server.address().port}`));
