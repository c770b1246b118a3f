// A TCP forwarder that holds the server's close until the client closes: websockify
// closes the WebSocket as soon as its target closes, dropping what it still queues for
// the client (with a slow client, the end of a download). Between websockify and a
// server that closes after its response, this keeps the stream whole; the benchmark puts
// it under the package's rows and the ceiling's alike.
//
//   node hold-forwarder.mjs PORT...   prints `hold 127.0.0.1:PORT via 127.0.0.1:NEW` each

import net from 'node:net';

for (const target of process.argv.slice(2).map(Number)) {
  const server = net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1');
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.pipe(upstream);
    // The server's end is not passed on: the client's close ends both.
    upstream.pipe(client, { end: false });
    const done = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', done);
    client.on('error', done);
    upstream.on('error', done);
  });
  server.listen(0, '127.0.0.1', () => {
    console.log(`hold 127.0.0.1:${target} via 127.0.0.1:${server.address().port}`);
  });
}
