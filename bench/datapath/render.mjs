// The data-path section of docs/benchmarks.md, from bench/datapath.mjs's results.

import { CATEGORY_NAMES } from './profile.mjs';

export const BEGIN = '<!-- datapath:begin -->';
export const END = '<!-- datapath:end -->';

const MiB = 1 << 20;
const GOALS = { chromium: 0.9, node: 0.8, upload: 0.8 };

const TRANSPORTS = {
  ws: 'WebSocket',
  wss: 'WebSocketStream',
  'wisp-ws': 'Wisp over WebSocket',
  'wisp-wss': 'Wisp over WebSocketStream',
  wisp: 'Wisp (ws)',
};
const NODE_TRANSPORTS = { ws: 'raw (ws)', wisp: 'Wisp (ws)' };

const mbps = (v) => (v == null ? '—' : v >= 100 ? v.toFixed(0) : v.toFixed(1));
const ratio = (a, b) => (a == null || b == null || b === 0 ? null : a / b);
const r2 = (v) => (v == null ? '—' : v.toFixed(2));
const ms = (v) => (v == null ? '—' : v >= 100 ? v.toFixed(0) : v.toFixed(1));
const pct = (v) => (v == null ? '—' : `${Math.round(v * 100)}%`);
const goal = (v, g) => (v == null ? '' : v >= g ? ' (met)' : ' (not met)');
const median = (values) => {
  const s = values.filter((v) => typeof v === 'number' && Number.isFinite(v)).sort((a, b) => a - b);
  if (!s.length) return null;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Replaces the section between the markers in `doc`, or puts it before "## Method" (or at the end). */
export function splice(doc, section) {
  const a = doc.indexOf(BEGIN);
  const b = doc.indexOf(END);
  if (a >= 0 && b > a) return doc.slice(0, a) + section.trim() + doc.slice(b + END.length);
  const method = doc.indexOf('\n## Method');
  if (method >= 0) return `${doc.slice(0, method + 1)}${section.trim()}\n\n${doc.slice(method + 1)}`;
  return `${doc.trimEnd()}\n\n${section.trim()}\n`;
}

/** The CPU figures of a row, as "renderer 1.00, relay 0.40, … of 2 CPUs". */
function cpuLine(cpu) {
  if (!cpu) return 'no /proc figures';
  const roles = Object.entries(cpu.roles)
    .filter(([name, v]) => v >= 0.02 && name !== 'driver')
    .map(([name, v]) => `${name} ${v.toFixed(2)}`);
  if (cpu.others != null && cpu.others >= 0.02) roles.push(`others ${cpu.others.toFixed(2)}`);
  return `${roles.join(', ')}${cpu.machine ? ` (machine ${cpu.machine.busy.toFixed(2)} of ${cpu.machine.of} CPUs busy)` : ''}`;
}

/** The profile's busy time by category, and the wasm by bucket. */
function profileLine(p) {
  if (!p) return null;
  const cats = p.categories
    .filter((c) => c.name !== 'idle' && c.busyShare >= 0.02)
    .map((c) => {
      let text = `${CATEGORY_NAMES[c.name] || c.name} ${pct(c.busyShare)}`;
      if (c.name === 'wasm' && p.wasm.length && p.named) {
        text += ` (${p.wasm
          .filter((w) => w.busyShare >= 0.01)
          .map((w) => `${w.name} ${pct(w.busyShare)}`)
          .join(', ')})`;
      }
      return text;
    });
  return `busy ${pct(p.busyShare)} of the sampled time: ${cats.join(', ')}`;
}

/** Which thread or resource bounds a row, from /proc: a saturated thread, else the machine. */
export function boundOf(r, mainThread) {
  const cpu = r.cpu;
  if (!cpu) return 'bound unknown (no /proc figures)';
  const top = cpu.threads[0];
  const n = cpu.machine ? cpu.machine.of : null;
  const busy = cpu.machine ? cpu.machine.busy : null;
  let text;
  if (top && top.cpus >= 0.85) {
    text = `bounded by **${top.name}** (${pct(top.cpus)} of a CPU)`;
    if (busy != null && busy >= 0.9 * n) text += `, with the machine's ${n} CPUs busy too`;
  } else if (top && top.cpus >= 0.65 && !(busy != null && busy >= 0.9 * n)) {
    text = `bounded mostly by **${top.name}** (${pct(top.cpus)} of a CPU; no CPU saturated, so it also waits, for messages or for the reader)`;
  } else if (busy != null && busy >= 0.9 * n) {
    text = `bounded by **the machine's ${n} CPUs** (${busy.toFixed(2)} busy; busiest thread ${top ? `${top.name} ${pct(top.cpus)}` : '—'})`;
  } else {
    text = `**no CPU saturated** (busiest thread ${top ? `${top.name} ${pct(top.cpus)}` : '—'}; the machine ${busy == null ? '—' : busy.toFixed(2)} of ${n} CPUs): waiting on flow control or round trips`;
  }
  const p = profileLine(r.profile);
  const onMain = top && top.name === mainThread;
  return `${text}${p ? `; ${onMain ? "that thread's" : `${mainThread}'s`} profile: ${p}` : ''}`;
}

function rowName(r) {
  const what = { pkg: 'package', ceiling: 'ceiling', 'pkg-playwright': 'package in a playwright page', 'ceiling-playwright': 'ceiling in a playwright page', native: 'Node TLS (ChaCha20-Poly1305)', 'native-default': "Node TLS (OpenSSL's default suite)" }[r.what] || r.what;
  const transport = r.host === 'node' ? NODE_TRANSPORTS[r.transport] : TRANSPORTS[r.transport];
  return `${r.host === 'node' ? 'Node' : 'Chromium'}, ${r.relay}, ${transport}, ${r.kind}, ${what}`;
}

function countsLine(r) {
  const c = r.counts;
  if (!c || !c.ok) return null;
  const calls = Object.entries(c.calls || {}).filter(([k]) => !k.startsWith('TlsConfig.'));
  const total = calls.reduce((n, [, v]) => n + v.calls, 0);
  const bytesIn = calls.reduce((n, [, v]) => n + v.bytesIn, 0);
  const bytesOut = calls.reduce((n, [, v]) => n + v.bytesOut, 0);
  const down = r.kind === 'download';
  const messages = down ? c.messagesIn : c.messagesOut;
  if (!messages) return null;
  const messageBytes = down ? c.bytesInMessages : c.bytesOutMessages;
  const writes = Math.ceil(c.bytes / MiB) + 1;
  return {
    messages,
    perMiB: messages / (c.bytes / MiB),
    avgMessage: messages ? messageBytes / messages : null,
    callsPerMessage: messages ? total / messages : null,
    callsPerWrite: down ? null : total / writes,
    byMethod: calls
      .sort((a, b) => b[1].calls - a[1].calls)
      .filter(([, v]) => messages && v.calls / messages >= 0.01)
      .map(([k, v]) => `${k.split('.').pop()} ${(v.calls / messages).toFixed(2)}`)
      .join(', '),
    inPerByte: bytesIn / c.bytes,
    outPerByte: bytesOut / c.bytes,
    readsPerMiB: down && c.reads != null ? c.reads / (c.bytes / MiB) : null,
  };
}

export function render(out) {
  const res = Object.values(out.results || {});
  const get = (host, relay, transport, what, kind) => res.find((r) => r.host === host && r.relay === relay && r.transport === transport && r.what === what && r.kind === kind);
  const m = out.machine || {};
  const a = out.args;
  const L = [];
  L.push(BEGIN);
  L.push('## 7. The data path against its ceiling');
  L.push('');
  L.push(
    `Written by \`${a.command}\` (\`node bench/datapath.mjs\`, a stage of \`cargo xtask bench\` too) on ${out.date.slice(0, 16).replace('T', ' ')} UTC, ${Math.round(out.seconds)} s. ` +
      `Every figure below comes from that one run: ${a.bytes / MiB} MiB per transfer, median of ${a.rounds} rounds; within a round the package and its ceiling run one after the other, so that a busy moment weighs on both, and a transfer during which processes outside the benchmark kept more than half a CPU busy (from /proc) was run again, up to twice, keeping the quietest run (${res.reduce((n, r) => n + r.rounds.filter((x) => x.repeated).length, 0)} of ${res.reduce((n, r) => n + r.rounds.length, 0)} here).`,
  );
  L.push('');
  L.push('| | |');
  L.push('|---|---|');
  L.push(`| machine | ${m.cpus} CPUs, ${m.cpuModel}, ${m.memoryGiB ? m.memoryGiB.toFixed(1) : '?'} GiB memory, ${m.os} |`);
  L.push(`| load average | ${(m.loadBefore || []).map((x) => x.toFixed(2)).join(' ')} at the start, ${(m.loadAfter || []).map((x) => x.toFixed(2)).join(' ')} at the end |`);
  L.push(`| Chromium | ${out.chromium || '—'} (headless, launched by playwright-core; the pages driven over the DevTools protocol, see below) |`);
  L.push(`| Node.js | ${m.node} (OpenSSL ${m.openssl}), \`ws\` from tests/browser |`);
  L.push(`| relays | \`wasm-tls-relay\` (release build, default options); websockify ${m.websockify || '(not installed)'} (Debian's, one process per target; it reaches its targets through \`bench/datapath/hold-forwarder.mjs\`, which holds the server's close until the client's: websockify closes the WebSocket as soon as its target closes, dropping what it still queues for a slower client, the end of a download) |`);
  L.push(`| servers | the rustls test server (\`examples/test_server.rs\`, release build; \`GET /bytes/N\`, \`POST /sink\`), and for the ceilings \`bench/datapath/plain-server.mjs\` (the same two requests without TLS, in Node.js); all on 127.0.0.1 |`);
  L.push('');
  L.push(
    `**Goals**: in Chromium the package reaches ≥ ${GOALS.chromium} of the page's ceiling; in Node ≥ ${GOALS.node} of Node's own TLS over the same WebSocket; uploads ≥ ${GOALS.upload} of downloads.`,
  );
  L.push('');
  L.push(
    'A **download** is `GET /bytes/N` read to its end through `socket.readable`; an **upload** is `POST /sink` with N bytes in 1 MiB `write()`s, until the server answers the count. Each is timed from the request\'s first byte sent to the response\'s last byte, so the connection\'s opening is apart (see [Handshakes](#handshakes-and-first-bytes)). ' +
      "The **ceiling** is the same transfer without TLS from the plain server, through the same relay, over the same kind of WebSocket in the same page (or Node process), by code that does nothing but count: a WebSocket sending 64 KiB messages while `bufferedAmount` is under 8 MiB; a WebSocketStream; a Wisp stream opened by hand (CONNECT, DATA spending the server's CONTINUE credit, CLOSE). The package's rows use `connect()` as an application does (`webSocketStream: false` and the page's `WebSocket` class for the WebSocket rows). TLS 1.3 with ChaCha20-Poly1305, the suite the package prefers on wasm.",
  );
  L.push('');

  // ---- goals summary ----
  const summary = [];
  const supported = out.supported || {};
  L.push('### Chromium');
  L.push('');
  L.push('MB/s (10⁶ bytes per second); ratios are the package ÷ its ceiling, and the package\'s upload ÷ its download.');
  L.push('');
  L.push('| relay | transport | download: package | ceiling | package ÷ ceiling | upload: package | ceiling | package ÷ ceiling | upload ÷ download |');
  L.push('|---|---|---:|---:|---:|---:|---:|---:|---:|');
  const relays = [...new Set(res.filter((r) => r.host === 'chromium').map((r) => r.relay))];
  for (const relay of relays) {
    for (const t of Object.keys(TRANSPORTS)) {
      const cd = get('chromium', relay, t, 'ceiling', 'download');
      if (!cd) continue;
      const cu = get('chromium', relay, t, 'ceiling', 'upload');
      const pd = get('chromium', relay, t, 'pkg', 'download');
      const pu = get('chromium', relay, t, 'pkg', 'upload');
      const s = supported[`${relay}|${t}`];
      const kindOf = t.endsWith('wss') ? 'WebSocketStream' : 'WebSocket';
      const missing = s && !s.pkg ? `— (${s.error ? `failed: ${s.error}` : `this package opens no ${kindOf} here`})` : '—';
      const rd = ratio(pd && pd.mbps, cd.mbps);
      const ru = ratio(pu && pu.mbps, cu && cu.mbps);
      const ud = ratio(pu && pu.mbps, pd && pd.mbps);
      L.push(
        `| ${relay} | ${TRANSPORTS[t]} | ${pd ? mbps(pd.mbps) : missing} | ${mbps(cd.mbps)} | ${rd == null ? '—' : `**${r2(rd)}**`} | ${pu ? mbps(pu.mbps) : '—'} | ${cu ? mbps(cu.mbps) : '—'} | ${ru == null ? '—' : `**${r2(ru)}**`} | ${ud == null ? '—' : r2(ud)} |`,
      );
      if (rd != null) summary.push(`Chromium, ${relay}, ${TRANSPORTS[t]}: download ${r2(rd)} of the ceiling${goal(rd, GOALS.chromium)}, upload ${r2(ru)}${goal(ru, GOALS.chromium)}; upload ÷ download ${r2(ud)}${goal(ud, GOALS.upload)}`);
    }
  }
  L.push('');
  const pwRows = ['download', 'upload'].map((kind) => [kind, get('chromium', 'wasm-tls-relay', 'ws', 'pkg-playwright', kind), get('chromium', 'wasm-tls-relay', 'ws', 'ceiling-playwright', kind)]);
  if (pwRows.some(([, p, c]) => p || c)) {
    L.push(
      "These pages are driven over the DevTools protocol directly (`bench/datapath/cdp.mjs`): playwright, which launches the browser, enables the Network domain on its own pages, and Chromium then reports every WebSocket frame to it, payload and all. The same rows in one of playwright's pages (wasm-tls-relay, WebSocket), as tests/browser and `bench/chromium.mjs` drive theirs:",
    );
    L.push('');
    L.push('| direction | package, playwright page | ceiling, playwright page | package ÷ ceiling | the ceiling above ÷ this one |');
    L.push('|---|---:|---:|---:|---:|');
    for (const [kind, p, c] of pwRows) {
      const raw = get('chromium', 'wasm-tls-relay', 'ws', 'ceiling', kind);
      L.push(`| ${kind} | ${mbps(p && p.mbps)} | ${mbps(c && c.mbps)} | ${r2(ratio(p && p.mbps, c && c.mbps))} | ${r2(ratio(raw && raw.mbps, c && c.mbps))} |`);
    }
    L.push('');
  }
  const wsRelay = get('chromium', 'wasm-tls-relay', 'ws', 'ceiling', 'download');
  const wsFy = get('chromium', 'websockify', 'ws', 'ceiling', 'download');
  if (wsRelay && wsFy && wsRelay.mbps && wsFy.mbps) {
    L.push(`The two relays' ceilings over a WebSocket: websockify ${mbps(wsFy.mbps)} MB/s, wasm-tls-relay ${mbps(wsRelay.mbps)} MB/s (${r2(wsFy.mbps / wsRelay.mbps)}×).`);
    L.push('');
  }

  // ---- Node ----
  const nodeRes = res.filter((r) => r.host === 'node');
  if (nodeRes.length) {
    L.push('### Node.js');
    L.push('');
    L.push(
      "The package with `ws` as its WebSocket, next to Node's own TLS (OpenSSL) through the same relay to the same server: `tls.connect({ socket })` over `ws.createWebSocketStream()` (raw), or over a Duplex on a Wisp stream opened by hand (Wisp); once forced to the package's suite, ChaCha20-Poly1305, and once with OpenSSL's own choice; it uploads in 64 KiB writes, each one WebSocket message of about the size the package and the ceiling send (one 1 MiB write would become a message over the relay's 1 MiB limit, which closes the WebSocket). The ratio is the package ÷ Node's TLS with the same suite.",
    );
    L.push('');
    L.push('| transport | direction | package | Node TLS, ChaCha20-Poly1305 | Node TLS, default suite | ceiling (no TLS) | package ÷ Node TLS | package ÷ ceiling |');
    L.push('|---|---|---:|---:|---:|---:|---:|---:|');
    for (const t of ['ws', 'wisp']) {
      for (const kind of ['download', 'upload']) {
        const p = get('node', 'wasm-tls-relay', t, 'pkg', kind);
        if (!p) continue;
        const n = get('node', 'wasm-tls-relay', t, 'native', kind);
        const nd = get('node', 'wasm-tls-relay', t, 'native-default', kind);
        const c = get('node', 'wasm-tls-relay', t, 'ceiling', kind);
        const rn = ratio(p.mbps, n && n.mbps);
        const suite = nd && nd.info && nd.info.cipherSuite ? ` (${nd.info.cipherSuite})` : '';
        L.push(`| ${NODE_TRANSPORTS[t]} | ${kind} | ${mbps(p.mbps)} | ${mbps(n && n.mbps)} | ${mbps(nd && nd.mbps)}${suite} | ${mbps(c && c.mbps)} | **${r2(rn)}** | ${r2(ratio(p.mbps, c && c.mbps))} |`);
        summary.push(`Node, ${NODE_TRANSPORTS[t]}, ${kind}: ${r2(rn)} of Node's TLS${goal(rn, GOALS.node)}`);
      }
      const pd = get('node', 'wasm-tls-relay', t, 'pkg', 'download');
      const pu = get('node', 'wasm-tls-relay', t, 'pkg', 'upload');
      const ud = ratio(pu && pu.mbps, pd && pd.mbps);
      if (ud != null) summary.push(`Node, ${NODE_TRANSPORTS[t]}: upload ÷ download ${r2(ud)}${goal(ud, GOALS.upload)}`);
    }
    L.push('');
  }

  L.push('**Against the goals**:');
  L.push('');
  for (const s of summary) L.push(`- ${s}`);
  L.push('');
  L.push(
    '**Why they are not met, and what was tried.** The ratio goals ask one thread to decrypt at the rate the WebSocket alone moves bytes. The profiles below show the wasm cipher alone taking 2.2–3.3 ms of a thread per MiB (ChaCha20-Poly1305 in ring\'s portable code, with SIMD128 for Rust), so at the ceiling\'s rate it would need more than one whole thread; Node\'s own TLS runs OpenSSL\'s assembly, several times faster. What the data path itself cost is gone: one call into wasm per message (from 29 before the rewrite, see the calls table), one copy in and one out, the plaintext appended straight from rustls\' buffer (the zero-filled read buffer was 7% of the page\'s thread and 13% of Node\'s), `ws`\'s Buffers taken as they are, and larger relay messages (reads of up to 256 KiB, no per-read copy). Within the package the remaining levers are the cipher (a SIMD128 ChaCha20-Poly1305) and a second thread (the TLS core in a worker, pipelined with the WebSocket on the page\'s thread); neither is done.',
  );
  L.push('');

  // ---- handshakes ----
  L.push('### Handshakes and first bytes');
  L.push('');
  L.push(
    `Median of ${a.handshakes} each, ms. **connect() → opened**: the WebSocket (or the Wisp stream on an open WebSocket), the relay's TCP connection and a full TLS handshake (\`resumption: false\`); **handshakeMs** is the package's own figure (\`info.handshakeMs\`), from creating its TLS engine, which over a raw relay happens before the WebSocket has opened, so it includes that wait; **first byte**: from sending a request for one byte to the first byte of the response. The floor: opening a WebSocket through the relay to the TLS server (no TLS), and the plain server's first byte over the same kind of connection (for Wisp, CONNECT and the request to the first byte). Node's TLS: \`tls.connect\` over the same relay until \`secureConnect\`, full handshake.`,
  );
  L.push('');
  L.push('| host | relay | transport | package: connect() → opened | its handshakeMs | package: first byte | floor: WebSocket open | floor: plain first byte | Node TLS: → secureConnect | Node TLS: first byte |');
  L.push('|---|---|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const hs of out.handshakes || []) {
    const ok = (list) => (list || []).filter((x) => x.ok);
    const med = (list, k) => median(ok(list).map((x) => x[k]));
    const name = hs.host === 'node' ? NODE_TRANSPORTS[hs.transport] : TRANSPORTS[hs.transport];
    L.push(
      `| ${hs.host === 'node' ? 'Node' : 'Chromium'} | ${hs.relay} | ${name} | ${ms(med(hs.pkg, 'openMs'))} | ${ms(med(hs.pkg, 'handshakeMs'))} | ${ms(med(hs.pkg, 'ttfbMs'))} | ${ms(med(hs.open, 'openMs'))} | ${ms(med(hs.plain, 'ttfbMs'))} | ${hs.native ? ms(med(hs.native, 'openMs')) : '—'} | ${hs.native ? ms(med(hs.native, 'ttfbMs')) : '—'} |`,
    );
  }
  L.push('');

  // ---- bounds ----
  L.push('### What bounds each figure');
  L.push('');
  L.push(
    `Measured, per row: the CPU each process and thread used during the timed transfer (the round nearest the median), from /proc (CPU-seconds per second; "others" are processes outside the benchmark), and a CPU profile of one more transfer of ${a.profileBytes / MiB} MiB with V8's sampling profiler (every ${a.interval} µs; in Chromium through CDP \`Profiler.start\`, in Node through \`node:inspector\` in the process), its self time by category as shares of the busy (non-idle) time of the JavaScript thread. ` +
      `${res.some((r) => r.profile && r.profile.named) ? "The profiled package's wasm keeps its function names (the same `wasm-opt -Oz` without `--strip-debug`), so the wasm splits into the cipher (ring), copies and fills (memcpy, memmove, memset, \`Vec::resize\`, \`extend_from_slice\`), the allocator and the rest (rustls, the bindings). " : ''}` +
      'The bound named first is a thread at ≥ 85% of a CPU, else the machine\'s CPUs if ≥ 90% busy (other processes included), else the busiest thread if at ≥ 65% of a CPU (\"mostly\"), else none.',
  );
  L.push('');
  const order = (r) => [r.host === 'chromium' ? 0 : 1, r.relay, Object.keys(TRANSPORTS).indexOf(r.transport), r.kind, ['pkg', 'native', 'native-default', 'ceiling', 'pkg-playwright', 'ceiling-playwright'].indexOf(r.what)];
  const sorted = res.slice().sort((x, y) => {
    const a1 = order(x);
    const b1 = order(y);
    for (let i = 0; i < a1.length; i++) if (a1[i] !== b1[i]) return a1[i] < b1[i] ? -1 : 1;
    return 0;
  });
  for (const r of sorted) {
    const main = r.host === 'node' ? 'Node client main thread' : 'renderer main thread';
    let cipher = '';
    const c = r.what === 'pkg' && r.profile && r.profile.named && r.profile.wasm.find((w) => w.name === 'cipher');
    // The reference the goal names: the ceiling in Chromium, Node's TLS (same suite) in Node.
    const ref = get(r.host, r.relay, r.transport, r.host === 'node' ? 'native' : 'ceiling', r.kind);
    if (c && ref && ref.mbps) {
      // The cipher's thread time per byte, from the profile, at the reference's rate.
      const perByte = c.ms / 1000 / r.profile.bytes;
      const what = r.host === 'node' ? "Node TLS's" : "the ceiling's";
      cipher = ` The cipher alone took ${((c.ms / r.profile.bytes) * MiB).toFixed(2)} ms of that thread per MiB: at ${what} ${mbps(ref.mbps)} MB/s it would keep ${pct(perByte * ref.mbps * 1e6)} of a thread busy.`;
    }
    L.push(`- **${rowName(r)}** (${mbps(r.mbps)} MB/s): ${boundOf(r, main)}. CPUs: ${cpuLine(r.cpu)}.${cipher}`);
  }
  L.push('');
  const profiled = sorted.filter((r) => r.profile && r.profile.bytes);
  if (profiled.length) {
    const cats = ['wasm', 'glue', 'package', 'bench', 'ws', 'node', 'builtins', 'other JS', 'native', 'GC'];
    const used = cats.filter((c) => profiled.some((r) => r.profile.categories.some((x) => x.name === c && x.ms > 0)));
    L.push("The JavaScript thread's busy time per MiB moved, by category, from the same profiles (ms per MiB; the package's rows next to their ceiling's show what TLS and the package add):");
    L.push('');
    L.push(`| row | busy | ${used.map((c) => CATEGORY_NAMES[c] || c).join(' | ')} |`);
    L.push(`|---|---:|${used.map(() => '---:').join('|')}|`);
    for (const r of profiled) {
      const perMiB = r.profile.bytes / MiB;
      const cell = (c) => {
        const x = r.profile.categories.find((y) => y.name === c);
        return x ? (x.ms / perMiB).toFixed(2) : '—';
      };
      L.push(`| ${rowName(r)} | ${(r.profile.busyMs / perMiB).toFixed(2)} | ${used.map(cell).join(' | ')} |`);
    }
    L.push('');
  }
  const tops = sorted.filter((r) => r.what === 'pkg' && r.profile && r.profile.functions.length);
  if (tops.length) {
    L.push('The busiest functions (self time, share of the busy time) in the package\'s profiles:');
    L.push('');
    L.push('| row | functions |');
    L.push('|---|---|');
    for (const r of tops) {
      const f = r.profile.functions
        .slice(0, 6)
        .map((x) => `\`${x.name.length > 60 ? `${x.name.slice(0, 57)}…` : x.name}\` (${x.category}${x.file && x.category !== 'wasm' ? `, ${x.file}` : ''}) ${pct(x.busyShare)}`)
        .join('; ');
      L.push(`| ${rowName(r)} | ${f} |`);
    }
    L.push('');
  }

  // ---- counts ----
  L.push('### Calls into wasm, messages and copies');
  L.push('');
  L.push(
    `One more transfer of ${a.countBytes / MiB} MiB per row with every method of wasm-bindgen's classes wrapped (${(out.wrapped || []).filter((x) => !x.startsWith('TlsConfig')).join(', ') || '—'}) and the WebSocket's messages counted (the handshake's few calls included). ` +
      '**Bytes across the boundary** are those the glue copies: each `Uint8Array` argument into wasm, each returned `Uint8Array` (and a step\'s plaintext and ciphertext) out of it, and a `&mut [u8]` argument both ways, whole. Download rows count received messages; upload rows sent messages and the 1 MiB `write()`s.',
  );
  L.push('');
  L.push('| row | messages per MiB | bytes per message | calls into wasm per message | per method, per message | calls per 1 MiB write() | bytes into wasm per payload byte | out of wasm per payload byte | reads per MiB |');
  L.push('|---|---:|---:|---:|---|---:|---:|---:|---:|');
  for (const r of sorted) {
    const c = countsLine(r);
    if (!c) continue;
    L.push(
      `| ${rowName(r)} | ${c.perMiB.toFixed(1)} | ${c.avgMessage == null ? '—' : Math.round(c.avgMessage)} | ${r.what === 'pkg' && c.callsPerMessage != null ? c.callsPerMessage.toFixed(2) : '—'} | ${r.what === 'pkg' ? c.byMethod || '—' : '—'} | ${c.callsPerWrite == null || r.what !== 'pkg' ? '—' : c.callsPerWrite.toFixed(1)} | ${r.what === 'pkg' ? c.inPerByte.toFixed(2) : '—'} | ${r.what === 'pkg' ? c.outPerByte.toFixed(2) : '—'} | ${c.readsPerMiB == null ? '—' : c.readsPerMiB.toFixed(1)} |`,
    );
  }
  L.push('');
  const pkgCounts = sorted.filter((r) => r.what === 'pkg').map((r) => [r, countsLine(r)]).filter(([, c]) => c);
  if (pkgCounts.length) {
    const span = (k) => {
      const v = pkgCounts.map(([, c]) => c[k]);
      const lo = Math.min(...v);
      const hi = Math.max(...v);
      return lo.toFixed(2) === hi.toFixed(2) ? lo.toFixed(2) : `${lo.toFixed(2)}–${hi.toFixed(2)}`;
    };
    const labels = [...new Set(pkgCounts.flatMap(([r]) => Object.keys(r.counts.calls || {}).filter((k) => !k.startsWith('TlsConfig.'))))];
    L.push(
      `Across the package's rows: ${span('callsPerMessage')} calls into wasm per transport message, ${span('inPerByte')} bytes copied into wasm and ${span('outPerByte')} out of it per byte of payload, through ${[...new Set(labels.map((l) => l.split('.')[0]))].join(' and ')}. ` +
        "Inside wasm the profiles' \"copies and fills\" bucket above is what moves or clears bytes there (rustls' own buffers; zero-filling a buffer before reading into it); the JavaScript side adds the WebSocket's own message copies, which the ceiling pays too.",
    );
    L.push('');
  }

  // ---- reproduce ----
  L.push('### Reproducing');
  L.push('');
  L.push('```sh');
  L.push('cargo xtask bench --only datapath                     # builds the relay, the test server and the package; runs it all');
  L.push('cargo xtask bench --only datapath --datapath-bytes 64MiB');
  L.push('# after a build, parts of it (see the head of bench/datapath.mjs for every flag):');
  L.push('node bench/datapath.mjs --only chromium --bytes 64MiB --rounds 1 --no-doc --out /tmp/datapath.json');
  L.push('node bench/datapath.mjs --only node --pkg pkg --named-pkg target/bench/datapath/pkg-named --no-doc');
  L.push('node bench/datapath.mjs --render target/bench/datapath.json   # this section again from the last run');
  L.push('```');
  L.push('');
  L.push(`The results, every round with its CPU figures and the profiles' summaries, are in \`target/bench/datapath.json\`.`);
  if (out.errors && out.errors.length) {
    L.push('');
    L.push(`**Errors in this run**: ${out.errors.map((e) => e.split('\n')[0]).join('; ')}`);
  }
  if (out.warnings && out.warnings.length) {
    L.push('');
    L.push(`**Left out**: ${out.warnings.join('; ')}`);
  }
  const cut = res.filter((r) => r.rounds.some((x) => x.closeError));
  if (cut.length) {
    L.push('');
    L.push(
      `**Ends cut off**: in ${cut.map((r) => rowName(r)).join('; ')}, the socket failed after the whole body had arrived (${cut[0].rounds.find((x) => x.closeError).closeError.trim()}): the relay dropped the end of the stream, the server's close_notify. The rate counts to the body's last byte, as for the others.`,
    );
  }
  const retried = res.filter((r) => r.rounds.some((x) => x.failedBefore));
  if (retried.length) {
    L.push('');
    L.push(
      `**Transfers that failed and were run again** (up to twice; the figures are from the runs that completed): ${retried
        .map((r) => `${rowName(r)}: ${r.rounds.reduce((n, x) => n + (x.failedBefore ? x.failedBefore.length : 0), 0)} (${r.rounds.find((x) => x.failedBefore).failedBefore[0]})`)
        .join('; ')}.`,
    );
  }
  const failed = res.filter((r) => r.failed > 0);
  if (failed.length) {
    L.push('');
    L.push(`**Failed rounds**: ${failed.map((r) => `${rowName(r)}: ${r.failed} (${(r.rounds.find((x) => !x.ok) || {}).error})`).join('; ')}`);
  }
  L.push(END);
  return `${L.join('\n')}\n`;
}
