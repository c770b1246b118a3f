// The HTTP benchmark's side in the page: bench/http.mjs loads this module, calls
// setup() once, then run() per transfer. The package's cases come from cases.mjs; the
// peers' fetch from peers.mjs, loaded only when a peer row runs.

import * as scenarios from '/bench/datapath/scenarios.mjs';
import { makeRunner } from '/bench/http/cases.mjs';

let runner = null;
let peers = null;

export async function setup() {
  const t0 = performance.now();
  const [wasmTls, http] = await Promise.all([import('/pkg/index.js'), import('/pkg/http.js')]);
  await Promise.all([wasmTls.init(), http.initHttp()]);
  runner = makeRunner({ wasmTls, http, scenarios, WebSocket: null, stream: typeof globalThis.WebSocketStream === 'function' });
  return { initMs: performance.now() - t0, userAgent: navigator.userAgent };
}

/** One transfer; row as cases.mjs's, or { what: 'peer', peer, url, wisp, ca, bytes }. */
export async function run(row) {
  if (row.what !== 'peer') return runner.run(row);
  try {
    peers ??= await import('/bench/http/peers.mjs');
    await peers.load(row.peer);
    const r = await peers.download(row.peer, { wisp: row.wisp, url: row.url, caPem: row.ca, bytes: row.bytes });
    const ok = r.bytes === row.bytes;
    return { ok, bytes: r.bytes, seconds: r.ms / 1000, mbps: ok ? r.bytes / (r.ms / 1000) / 1e6 : 0, ttfbMs: r.ttfbMs, version: r.version, ...(ok ? {} : { error: `${r.bytes} of ${row.bytes} bytes` }) };
  } catch (err) {
    return { ok: false, error: String(err && err.message ? err.message : err) };
  }
}

export function close() {
  runner?.close();
}
