// The transfers of the HTTP benchmark, the same in the page and in Node.js: a GET of
// one file by wasm-tls/http's fetch (HTTP/1.1 or HTTP/2 by ALPN, on a connection the
// client already holds), by the package's socket alone (a hand-written HTTP/1.1 GET on
// connect()), and the ceiling: the same file from the same nginx without TLS, straight
// over the same kind of WebSocket (or Wisp stream) through the same relay. The socket
// and the ceiling come from the data-path benchmark's scenarios. Every transfer is
// timed from its request to the body's last byte; ttfbMs ends at the body's first.

const now = () => performance.now();

/**
 * `env`: { wasmTls, http, scenarios, WebSocket (Node's `ws`, or null in the page), stream
 * (the page's ceiling over raw uses WebSocketStream, as the package does) }. Returns
 * run(row), with row: { what: 'fetch' | 'socket' | 'ceiling', via: 'raw' | 'wisp',
 * protocol ('h1' | 'h2', for fetch), relay, wisp, host, tlsPort, h2Port, plainPort, ca,
 * bytes }.
 */
export function makeRunner(env) {
  const clients = new Map();
  const wispConnections = new Map();

  const transport = (row) => {
    const base = env.WebSocket ? { WebSocket: env.WebSocket } : {};
    return row.via === 'wisp' ? { ...base, wisp: row.wisp } : { ...base, relay: row.relay };
  };
  const socketOptions = (row) => ({ ...transport(row), ca: row.ca, bundledRoots: false, serverName: 'localhost' });

  /** A client per relay and protocol, kept: its connection is open before a timed GET. */
  async function client(row) {
    const key = `${row.via} ${row.protocol}`;
    if (!clients.has(key)) {
      const c = env.http.createClient({ ...transport(row), ca: row.ca, bundledRoots: false });
      const port = row.protocol === 'h2' ? row.h2Port : row.tlsPort;
      await (await c.fetch(`https://${row.host}:${port}/hello.txt`)).text();
      clients.set(key, { c, port });
    }
    return clients.get(key);
  }

  async function viaFetch(row) {
    const { c, port } = await client(row);
    const start = now();
    const response = await c.fetch(`https://${row.host}:${port}/big.bin`);
    const reader = response.body.getReader();
    let ttfb = null;
    let bytes = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (ttfb === null) ttfb = now() - start;
      bytes += value.length;
    }
    const seconds = (now() - start) / 1000;
    const ok = bytes === row.bytes && response.status === 200;
    return {
      ok,
      bytes,
      seconds,
      mbps: ok ? bytes / seconds / 1e6 : 0,
      ttfbMs: ttfb,
      ...(ok ? {} : { error: `status ${response.status}, ${bytes} of ${row.bytes} bytes` }),
    };
  }

  async function wispConnection(url) {
    if (!wispConnections.has(url)) wispConnections.set(url, await env.scenarios.Wisp.open({ WS: env.WebSocket || globalThis.WebSocket, url, stream: false }));
    return wispConnections.get(url);
  }

  async function ceiling(row) {
    if (row.via === 'wisp') return env.scenarios.wisp(await wispConnection(row.wisp), row.host, row.plainPort, 'download', row.bytes);
    const url = `${row.relay}/${row.host}:${row.plainPort}`;
    if (env.stream) return env.scenarios.wss(url, 'download', row.bytes);
    return env.scenarios.ws(env.WebSocket || globalThis.WebSocket, url, 'download', row.bytes);
  }

  async function run(row) {
    try {
      if (row.what === 'fetch') return await viaFetch(row);
      if (row.what === 'socket') return await env.scenarios.pkg(env.wasmTls, `${row.host}:${row.tlsPort}`, socketOptions(row), 'download', row.bytes);
      if (row.what === 'ceiling') return await ceiling(row);
      return { ok: false, error: `unknown case ${row.what}` };
    } catch (err) {
      return { ok: false, error: `${err.code ? `${err.code}: ` : ''}${err.message || err}` };
    }
  }

  function close() {
    for (const { c } of clients.values()) c.close();
    clients.clear();
    for (const w of wispConnections.values()) w.close();
    wispConnections.clear();
  }

  return { run, close };
}
