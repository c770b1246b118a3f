// Summaries of V8 CPU profiles (the DevTools protocol's Profiler.Profile, from Chromium
// through CDP or from Node's inspector): self time by category and by function.

/** What a profile node's code is. */
export function category(frame) {
  const { functionName: name, url } = frame;
  if (name === '(idle)') return 'idle';
  if (name === '(garbage collector)') return 'GC';
  if (name === '(program)' || name === '(root)') return 'native';
  if (url.startsWith('wasm://') || /\.wasm(-[0-9a-f]+)?$/.test(url)) return /wasm_tls_http/.test(url) ? 'wasm-http' : 'wasm';
  if (/\/wasm_tls(_http)?\.js$/.test(url)) return 'glue';
  if (/\/(dp-)?pkg(-[\w-]+)?\//.test(url)) return 'package';
  if (/\/bench\/(datapath|http)\//.test(url)) return 'bench';
  if (/\/node_modules\/ws\//.test(url)) return 'ws';
  if (url.startsWith('node:')) return 'node';
  if (url.startsWith('file://') || url.startsWith('/')) return 'other JS';
  if (url === '') return 'builtins';
  return 'other JS';
}

export const CATEGORY_NAMES = {
  wasm: 'wasm (the TLS core)',
  'wasm-http': 'wasm (the HTTP module: hyper, h2)',
  glue: "wasm-bindgen's glue",
  package: "the package's JS",
  bench: 'the benchmark',
  ws: "the ws package",
  node: "Node's JS (streams, net, tls)",
  builtins: 'V8 builtins',
  'other JS': 'other JS',
  native: 'native (Blink/Node: WebSocket, streams, events)',
  GC: 'GC',
  idle: 'idle',
};

/** Buckets for the wasm module's own functions, by name (names are kept in the profiled copy). */
function wasmBucket(name) {
  if (/chacha|poly1305|aes|gcm|ghash|gfmul|x25519|p256|ecp_|sha256|sha512|ring_core|LIMBS|bn_mul/i.test(name)) return 'cipher';
  if (/^(memcpy|memmove|memset|memcmp|compiler_builtins::mem)|\bmem(cpy|move|set)\b|::(resize|extend_from_slice|copy_from_slice|copy_within)\b/.test(name)) return 'copies and fills';
  if (/dlmalloc|malloc|__rust_(alloc|dealloc|realloc)|\bfree\b|alloc::raw_vec|RawVec/.test(name)) return 'allocator';
  if (/^(js-to-wasm|wasm-to-js)/.test(name)) return 'boundary';
  if (/^wasm-function\[\d+\]$|^\$?func\d+$/.test(name)) return 'unnamed';
  return 'rustls and bindings';
}

/**
 * Self time of a Profiler.Profile: per category (ms and share of the sampled time and
 * of the busy, non-idle, time), the busiest functions, and the wasm split by bucket.
 */
export function summarize(profile, top = 8, categoryOf = category) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const { samples = [], timeDeltas = [] } = profile;
  // A sample lasts until the next one.
  for (let i = 0; i < samples.length; i++) {
    const us = i + 1 < timeDeltas.length ? timeDeltas[i + 1] : 0;
    self.set(samples[i], (self.get(samples[i]) || 0) + Math.max(0, us));
  }
  const cats = {};
  const funcs = new Map();
  const wasm = {};
  let total = 0;
  for (const [id, us] of self) {
    const node = nodes.get(id);
    if (!node) continue;
    const frame = node.callFrame;
    const cat = categoryOf(frame);
    total += us;
    cats[cat] = (cats[cat] || 0) + us;
    if (cat === 'wasm') wasm[wasmBucket(frame.functionName)] = (wasm[wasmBucket(frame.functionName)] || 0) + us;
    const key = `${cat}\u0000${frame.functionName || '(anonymous)'}\u0000${frame.url.split('/').pop()}`;
    funcs.set(key, (funcs.get(key) || 0) + us);
  }
  const busy = total - (cats.idle || 0);
  const share = (us, of) => (of > 0 ? us / of : 0);
  return {
    sampledMs: total / 1000,
    busyMs: busy / 1000,
    busyShare: share(busy, total),
    categories: Object.entries(cats)
      .map(([name, us]) => ({ name, ms: us / 1000, share: share(us, total), busyShare: name === 'idle' ? null : share(us, busy) }))
      .sort((a, b) => b.ms - a.ms),
    wasm: Object.entries(wasm)
      .map(([name, us]) => ({ name, ms: us / 1000, busyShare: share(us, busy) }))
      .sort((a, b) => b.ms - a.ms),
    functions: [...funcs]
      .filter(([key]) => !key.startsWith('idle\u0000'))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([key, us]) => {
        const [cat, name, file] = key.split('\u0000');
        return { category: cat, name, file, ms: us / 1000, busyShare: share(us, busy) };
      }),
  };
}
