// The data-path benchmark's side in the page: bench/datapath.mjs loads this module,
// calls setup() once, then run() per row (one transfer each).

import * as scenarios from './scenarios.mjs';
import { counters, reset, wrapGlue, countingWebSocket, countingWebSocketStream } from './instrument.mjs';

let wasmTls = null;
let counted = null;
const wispConnections = new Map();

/**
 * Loads the package from `pkg` (a URL path). The WebSocket and WebSocketStream classes
 * are replaced by subclasses first, which count constructions (to see which one the
 * package chose) and, with `count`, every message; with `count` the wasm-bindgen
 * classes' methods are wrapped to count the calls into wasm.
 */
export async function setup({ pkg, count }) {
  counted = counters();
  globalThis.WebSocket = countingWebSocket(globalThis.WebSocket, counted, count);
  if (typeof globalThis.WebSocketStream === 'function') {
    globalThis.WebSocketStream = countingWebSocketStream(globalThis.WebSocketStream, counted, count);
  }
  const t0 = performance.now();
  wasmTls = await import(`${pkg}/index.js`);
  await wasmTls.init();
  const initMs = performance.now() - t0;
  let wrapped = [];
  if (count) wrapped = wrapGlue(await import(`${pkg}/wasm_tls.js`), counted);
  return { initMs, wrapped, webSocketStream: typeof globalThis.WebSocketStream === 'function', userAgent: navigator.userAgent };
}

async function wispConnection(url, stream) {
  const key = `${url} ${stream}`;
  if (!wispConnections.has(key)) wispConnections.set(key, await scenarios.Wisp.open({ WS: globalThis.WebSocket, url, stream }));
  return wispConnections.get(key);
}

/** Options for connect() per transport. */
function options(row) {
  const base = { serverName: 'localhost', ca: row.ca, bundledRoots: false };
  if (row.resumption === false) base.resumption = false;
  switch (row.transport) {
    // The WebSocket class given: the package uses it, and keys its shared Wisp
    // connection by it, apart from the one over a WebSocketStream.
    case 'ws':
      return { ...base, relay: row.relay, WebSocket: globalThis.WebSocket, webSocketStream: false };
    case 'wss':
      return { ...base, relay: row.relay };
    case 'wisp-ws':
      return { ...base, wisp: row.wisp, WebSocket: globalThis.WebSocket, webSocketStream: false };
    case 'wisp-wss':
      return { ...base, wisp: row.wisp };
    default:
      throw new Error(`unknown transport ${row.transport}`);
  }
}

/**
 * One transfer. row: { what: 'pkg' | 'ceiling' | 'open', transport, kind: 'download' |
 * 'upload', bytes, relay, wisp, target, ca, resumption }. With counting, the counts of
 * this transfer come back as `counts`.
 */
export async function run(row) {
  reset(counted);
  const before = { ...counted.constructed };
  let r;
  try {
    if (row.what === 'pkg') {
      r = await scenarios.pkg(wasmTls, row.target, options(row), row.kind, row.bytes);
    } else if (row.what === 'open') {
      r = { ok: true, openMs: await scenarios.openTime(globalThis.WebSocket, `${row.relay}/${row.target}`, row.transport === 'wss') };
    } else if (row.transport === 'ws') {
      r = await scenarios.ws(globalThis.WebSocket, `${row.relay}/${row.target}`, row.kind, row.bytes);
    } else if (row.transport === 'wss') {
      r = await scenarios.wss(`${row.relay}/${row.target}`, row.kind, row.bytes);
    } else {
      const w = await wispConnection(row.wisp, row.transport === 'wisp-wss');
      const [host, port] = row.target.split(':');
      r = await scenarios.wisp(w, host, Number(port), row.kind, row.bytes);
    }
  } catch (err) {
    r = { ok: false, error: String(err && err.stack ? err.stack : err) };
  }
  const used = {};
  for (const [k, v] of Object.entries(counted.constructed)) if (v > (before[k] || 0)) used[k] = v - (before[k] || 0);
  r.used = used;
  if (Object.keys(counted.calls).length || counted.messagesIn) {
    r.counts = JSON.parse(JSON.stringify({ ...counted, constructed: undefined }));
  }
  return r;
}

/** Closes the page's own Wisp connections (the ceilings'). */
export function closeWisp() {
  for (const w of wispConnections.values()) w.close();
  wispConnections.clear();
}
