// The HTTP section of docs/benchmarks.md, from bench/http.mjs's results.

import { boundOf } from '../datapath/render.mjs';

export const BEGIN = '<!-- http:begin -->';
export const END = '<!-- http:end -->';

const MiB = 1 << 20;
/** The issue's goals: fetch within 10% of the socket, and 0.9 of the page's ceiling. */
const OF_SOCKET = 0.9;
const OF_CEILING = 0.9;

const mbps = (v) => (v == null ? '—' : v >= 100 ? v.toFixed(0) : v.toFixed(1));
const ms = (v) => (v == null ? '—' : v >= 100 ? v.toFixed(0) : v.toFixed(1));
const ratio = (a, b) => (a == null || b == null || b === 0 ? null : a / b);
const r2 = (v) => (v == null ? '—' : v.toFixed(2));
/** Three digits where a goal is judged, so that 0.899 does not read as 0.90. */
const r3 = (v) => (v == null ? '—' : v.toFixed(3));
const bytes = (n) => n.toLocaleString('en-US');
const met = (v, goal) => (v == null ? '' : v >= goal ? ' (met)' : ' (not met)');

/** Replaces the section between the markers in `doc`, or appends it. */
export function splice(doc, section) {
  const a = doc.indexOf(BEGIN);
  const b = doc.indexOf(END);
  if (a >= 0 && b > a) return doc.slice(0, a) + section.trim() + doc.slice(b + END.length);
  return `${doc.trimEnd()}\n\n${section.trim()}\n`;
}

export function render(out) {
  const L = [];
  const rows = out.rows;
  const get = (host, via, name) => rows.find((r) => r.host === host && r.via === via && r.name === name);
  const size = out.size;

  L.push(BEGIN, '## wasm-tls/http: fetch() and WebSocket beside the socket', '');
  L.push(
    '**Size.** The HTTP entry point is a second WebAssembly module, loaded only by pages that import `wasm-tls/http` ' +
      '(the test suite checks that the demo page loads none of it before its fetch panel is used). It holds no TLS: its connections are the package\'s sockets.',
    '',
    '| `wasm-tls/http` adds | bytes | gzipped (zlib, level 9) |',
    '|---|---:|---:|',
    `| \`wasm_tls_http_bg.wasm\` (hyper 1.x HTTP/1.1 + HTTP/2, h2, tungstenite) | ${bytes(size.wasm)} | ${bytes(size.wasmGz)} |`,
    `| its JS (\`http.js\`, \`src/http/*.js\`, wasm-bindgen's glue), per file | ${bytes(size.js)} | ${bytes(size.jsGz)} |`,
    '',
    'gzip and deflate cost nothing in wasm: the platform\'s `DecompressionStream` decodes them, and brotli is asked for only where the platform decodes it too ' +
      '(Node\'s zlib; a browser whose `DecompressionStream` takes `"brotli"`). A kept Rust decoder (`brotli-decompressor`) would add about 190 KB to the module (90 KB gzipped, half of it the format\'s dictionary), ' +
      'more than brotli saves over gzip on most responses. A second copy of rustls and ring in the HTTP module (hyper over the core inside wasm, as epoxy-tls does) would have added the TLS module again (about 350 KB gzipped) and a second set of transports; ' +
      'reusing the sockets costs one copy of the plaintext into and out of the HTTP module per chunk instead.',
    '',
  );

  L.push(
    '**Throughput.** ' +
      `A GET of ${out.bytes / MiB} MiB from nginx${out.nginx ? ` ${out.nginx}` : ''} (TLS 1.3, X25519MLKEM768 offered, the suite nginx picks) on 127.0.0.1 through the relay (its release build), ` +
      `the median of ${out.rounds} rounds after a warm-up, the cases run in turn in each round. fetch runs on a connection the client already holds; ` +
      '"socket alone" is the package\'s `connect()` with a hand-written HTTP/1.1 GET, timed from the request; "no TLS (ceiling)" is the same file from the same nginx on a plain port, ' +
      'read straight from the same kind of WebSocket through the same relay (in Chromium a WebSocketStream for raw and a WebSocket for Wisp, as the package uses; in Node.js `ws`). ' +
      "The peers' fetch runs in the same page over the same relay's Wisp endpoint, with certificate verification on against the same CA. " +
      `Chromium ${out.chromium || '—'}, Node.js ${out.machine.node}, ${out.machine.cpus} CPUs (${out.machine.model || 'unknown'}); load average ${out.machine.loadBefore?.toFixed(1)} before, ${out.machine.loadAfter?.toFixed(1)} after. ` +
      `Reproduce with \`${out.command}\`.`,
    '',
    '| host | relay | what | first byte (ms) | MB/s, median (range) | of the socket | of the ceiling | others\' CPUs |',
    '|---|---|---|---:|---:|---:|---:|---:|',
  );
  for (const r of rows) {
    const socket = get(r.host, r.via, 'socket alone');
    const ceiling = get(r.host, r.via, 'no TLS (ceiling)');
    const ofSocket = r.what === 'socket' || r.what === 'ceiling' ? null : ratio(r.mbps, socket?.mbps);
    const ofCeiling = r.what === 'ceiling' ? null : ratio(r.mbps, ceiling?.mbps);
    const what = r.version ? `${r.name} ${r.version}` : r.name;
    const range = r.each && r.each.length > 1 ? ` (${mbps(Math.min(...r.each))}–${mbps(Math.max(...r.each))})` : '';
    const speed = r.mbps == null ? `failed: ${r.error}` : `${mbps(r.mbps)}${range}`;
    L.push(`| ${r.host} | ${r.via === 'wisp' ? 'Wisp' : 'raw'} | ${what} | ${ms(r.ttfbMs)} | ${speed} | ${r2(ofSocket)} | ${r2(ofCeiling)} | ${r.others == null ? '—' : r.others.toFixed(2)} |`);
  }
  L.push('');

  // ---- the goals ----
  L.push('**The goals, in this run.**', '');
  for (const host of ['Chromium', 'Node.js']) {
    for (const via of ['raw', 'wisp']) {
      const socket = get(host, via, 'socket alone');
      const ceiling = get(host, via, 'no TLS (ceiling)');
      if (!socket) continue;
      const parts = [];
      for (const name of ['fetch HTTP/1.1', 'fetch HTTP/2']) {
        const f = get(host, via, name);
        if (!f) continue;
        const s = ratio(f.mbps, socket.mbps);
        const c = ratio(f.mbps, ceiling?.mbps);
        let text = `${name.replace('fetch ', '')} at ${r3(s)} of the socket${met(s, OF_SOCKET)}`;
        if (host === 'Chromium') text += ` and ${r3(c)} of the ceiling${met(c, OF_CEILING)}`;
        parts.push(text);
      }
      L.push(`- ${host}, ${via === 'wisp' ? 'Wisp' : 'raw relay'}: fetch over ${parts.join('; over ')}.`);
    }
  }
  const peers = rows.filter((r) => r.what === 'peer');
  if (peers.length) {
    const ours = ['fetch HTTP/1.1', 'fetch HTTP/2'].map((n) => get('Chromium', 'wisp', n)).filter((r) => r && r.mbps != null);
    const best = Math.max(...ours.map((r) => r.mbps));
    const lines = peers.map((p) => (p.mbps == null ? `${p.name}: failed (${p.error})` : `${p.name} ${mbps(p.mbps)} MB/s (ours ${r2(ratio(best, p.mbps))}× that${best > p.mbps ? ', ahead' : ', behind'})`));
    L.push(`- Chromium over Wisp, against the peers' fetch: ours at best ${mbps(best)} MB/s; ${lines.join('; ')}.`);
  }
  const chromeSocket = get('Chromium', 'raw', 'socket alone');
  const chromeCeiling = get('Chromium', 'raw', 'no TLS (ceiling)');
  if (chromeSocket && chromeCeiling) {
    L.push(
      `- The ceiling goal cannot be met above the socket it runs on: in Chromium the socket alone reaches ${r2(ratio(chromeSocket.mbps, chromeCeiling.mbps))} of the ceiling over the raw relay ` +
        `and ${r2(ratio(get('Chromium', 'wisp', 'socket alone')?.mbps, get('Chromium', 'wisp', 'no TLS (ceiling)')?.mbps))} over Wisp, bound by the TLS core's cipher on the page's thread (the data-path section measures it).`,
    );
  }
  const native = get('Node.js', 'raw', "undici over Node's TLS");
  if (native && native.mbps != null) {
    const f = get('Node.js', 'raw', 'fetch HTTP/1.1');
    L.push(`- Node.js, raw relay: undici over Node's own TLS (OpenSSL) reaches ${mbps(native.mbps)} MB/s; fetch over HTTP/1.1 is ${r2(ratio(f?.mbps, native.mbps))} of it.`);
  }
  L.push('');

  L.push(
    '**What fetch adds to the socket, per byte.** The plaintext crosses into the HTTP module (a copy into its memory) and out again (a copy into a new `ArrayBuffer`, the dearer one: about as much as the socket\'s own copy out of the TLS module), ' +
      "plus hyper's parsing and, under HTTP/2, its per-frame work (nginx sends 8 KiB DATA frames). Where the JavaScript thread is the bound (Node.js), that is the gap to the socket; in Chromium on two CPUs the renderer, the network service, the relay and nginx share them, so the gap moves with the load. " +
      'Four changes measured here closed most of it: the HTTP module stopped zero-filling its read buffer and copying each chunk twice on the way out (Node.js fetch went from 0.52 to 0.8 of the socket); ' +
      'the socket\'s bytes are pushed into the module (an inbox that answers whether it has room), with no promise or closure made per chunk (the body is still pulled: while no read is pending, nothing in the module refers to the page, so a response dropped unread is collected and its stream reset); ' +
      'the `Response` body reads 1 MiB ahead (256 KiB held HTTP/1.1 at 0.8 of the socket in Chromium); and HTTP/2 windows grew from 4 MiB to 12 MiB a stream (as large as Firefox\'s) and 48 MiB a connection (so that three unread bodies do not stall a fourth request): ' +
      'every buffer between nginx and hyper (the relay\'s, the WebSocket\'s, the socket\'s) is in flight, and with 4 MiB HTTP/2 ran at 0.6 of HTTP/1.1, waiting for WINDOW_UPDATEs.',
    '',
  );

  // ---- bounds ----
  if (out.profiles.length) {
    L.push(
      '**What bounds each figure.** For each case over the raw relay, the CPU each thread used during its median round, from /proc, and a V8 CPU profile of one more transfer (sampled every 200 µs; in Chromium through CDP, in Node.js through `node:inspector` in the process), as shares of the JavaScript thread\'s busy time. ' +
        'The bound named is a thread at ≥ 85% of a CPU, else the machine\'s CPUs if ≥ 90% busy, else the busiest thread if at ≥ 65% ("mostly").',
      '',
    );
    for (const p of out.profiles) {
      const r = get(p.host, p.via, p.name);
      if (!r) continue;
      const main = p.host === 'Node.js' ? 'driver main thread' : 'renderer main thread';
      L.push(`- **${p.host}, ${p.name}** (${mbps(r.mbps)} MB/s): ${boundOf({ cpu: r.cpu, profile: { ...p, named: false } }, main)}.`);
    }
    L.push('');
  }

  L.push(
    '**Bounds the tests hold** (`tests/browser/http.test.mjs`): 64 MiB byte for byte (SHA-256) over each of HTTP/2 and HTTP/1.1, raw relay and Wisp, Node.js and Chromium; ' +
      "100 concurrent requests on one HTTP/2 connection (nginx's `$connection`); 16 MiB WebSocket messages. nginx proxies an HTTP/1.1 request body and its streamed response at once only while they fit its buffers, " +
      'so the HTTP/1.1 echo test sends 512 KiB (HTTP/2: 8 MiB).',
    END,
  );
  return L.join('\n');
}
