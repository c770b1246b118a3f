// The peer libraries of the HTTP benchmark, in the page: libcurl.js (curl and Mbed TLS
// in wasm) and epoxy-tls (hyper and rustls in wasm), each fetching through a Wisp relay.
// The page serves the repository by its paths, so the packages installed in
// bench/peers/node_modules are found beside this module. The caller does the warm-up.

const modules = new URL('../peers/node_modules/', import.meta.url);
const now = () => performance.now();

const loaded = new Map(); // name -> { version, fetch(url, { wisp, caPem }) }
const loading = new Map(); // name -> the promise of the entry above

// ---- libcurl.js ----

/**
 * libcurl.js has no option for a CA of one's own (nor one to skip verification): every
 * request takes its roots from one PEM bundle that init_curl() builds in the wasm memory
 * and hands to curl by reference (CURLOPT_CAINFO_BLOB, CURL_BLOB_NOCOPY). The module
 * keeps its wasm instance to itself, so the instance is caught as it is made, and the
 * CA is written over the bundle's first roots, verification staying on.
 */
async function loadLibcurl() {
  const wasmUrl = new URL('libcurl.js/libcurl.wasm', modules).href;
  let exports = null;
  const { instantiate, instantiateStreaming } = WebAssembly;
  const keep = (p) =>
    p.then((r) => {
      const instance = r.instance ?? r;
      if (instance.exports?.get_cacert) exports = instance.exports;
      return r;
    });
  WebAssembly.instantiate = (...a) => keep(instantiate.apply(WebAssembly, a));
  WebAssembly.instantiateStreaming = (...a) => keep(instantiateStreaming.apply(WebAssembly, a));
  let libcurl;
  try {
    ({ libcurl } = await import(new URL('libcurl.js/libcurl.mjs', modules).href));
    await libcurl.load_wasm(wasmUrl);
  } finally {
    WebAssembly.instantiate = instantiate;
    WebAssembly.instantiateStreaming = instantiateStreaming;
  }
  if (!exports) throw new Error('libcurl.js: its wasm instance was not seen');
  const v = libcurl.version;
  let ca = null;
  return {
    version: `libcurl.js ${v.lib} (curl ${v.curl}, ${v.ssl}, nghttp2 ${v.nghttp2})`,
    async fetch(url, { wisp, caPem }) {
      if (caPem !== ca) {
        trustLibcurl(exports, caPem);
        ca = caPem;
      }
      // The Wisp connection is per URL and kept; changing the URL keeps connections open.
      if (libcurl.websocket_url !== wisp) libcurl.set_websocket(wisp);
      return libcurl.fetch(url);
    },
  };
}

/** Writes `caPem` over the start of libcurl.js's root bundle, padding to a certificate's start. */
function trustLibcurl(exports, caPem) {
  const ptr = exports.get_cacert();
  const heap = new Uint8Array(exports.memory.buffer);
  let len = 0;
  while (heap[ptr + len] !== 0) len++;
  const bundle = new TextDecoder().decode(heap.subarray(ptr, ptr + len));
  const ours = new TextEncoder().encode(`${caPem.trim()}\n`);
  // Whole certificates are replaced: the next one starts after ours, or none does.
  const next = bundle.indexOf('-----BEGIN CERTIFICATE-----', ours.length);
  const end = next < 0 ? len : next;
  if (ours.length > end) throw new Error('libcurl.js: the CA is larger than its root bundle');
  heap.set(ours, ptr);
  heap.fill(0x0a, ptr + ours.length, ptr + end);
}

// ---- epoxy-tls ----

/** epoxy-tls takes PEM roots of its own (pem_files); a client is made per relay and CA. */
async function loadEpoxy() {
  const dir = new URL('@mercuryworkshop/epoxy-tls/full/', modules);
  const epoxy = await import(new URL('epoxy.js', dir).href);
  // The wasm file apart, not the bundled build's base64 copy of it.
  await epoxy.default({ module_or_path: new URL('epoxy.wasm', dir) });
  const clients = new Map();
  const client = (wisp, caPem) => {
    const key = `${wisp}\n${caPem}`;
    if (!clients.has(key)) {
      const options = new epoxy.EpoxyClientOptions();
      options.user_agent = navigator.userAgent;
      // Its defaults otherwise: Wisp v2, a random WebSocket subprotocol, which the
      // relay echoes.
      options.pem_files = [caPem];
      clients.set(key, new epoxy.EpoxyClient(wisp, options));
    }
    return clients.get(key);
  };
  return {
    version: `epoxy-tls ${epoxy.info.version}`,
    fetch: (url, { wisp, caPem }) => client(wisp, caPem).fetch(url, {}),
  };
}

const loaders = { libcurl: loadLibcurl, epoxy: loadEpoxy };

/** Loads the peer `name` ('libcurl' or 'epoxy') once: its module and wasm. */
export async function load(name) {
  if (!loaders[name]) throw new Error(`unknown peer ${name}`);
  if (!loading.has(name)) {
    loading.set(
      name,
      loaders[name]().then((peer) => {
        loaded.set(name, peer);
        return peer;
      }),
    );
  }
  return loading.get(name);
}

/**
 * One GET of `url` through the Wisp relay at `wisp`, the body read as a stream and
 * counted. ttfbMs runs from before the fetch call to the first body chunk, ms to the end.
 */
export async function download(name, { wisp, url, caPem, bytes }) {
  const peer = await load(name);
  const started = now();
  const response = await peer.fetch(url, { wisp, caPem });
  if (!response.ok) throw new Error(`${name}: ${url} answered ${response.status}`);
  const reader = response.body.getReader();
  let ttfbMs = null;
  let total = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    if (ttfbMs === null) ttfbMs = now() - started;
    total += value.byteLength;
  }
  const ms = now() - started;
  if (bytes !== undefined && total !== bytes) throw new Error(`${name}: ${total} bytes of ${bytes}`);
  return { ttfbMs, ms, bytes: total, version: peer.version };
}

/** The versions of the peers loaded so far, by name. */
export function versions() {
  return Object.fromEntries([...loaded].map(([name, peer]) => [name, peer.version]));
}
