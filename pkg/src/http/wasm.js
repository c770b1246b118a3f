// Loading the HTTP entry point's own WebAssembly module (hyper and tungstenite), once,
// apart from the TLS module: pages that use only sockets never load it.

import initWasm from '../../wasm_tls_http.js';
import { TlsError } from '../errors.js';
import { isNode } from '../wasm.js';

let ready = null;

/**
 * Loads and instantiates `wasm_tls_http_bg.wasm` once (beside the package's JS; in
 * Node.js from disk), or `module` (a URL, a Response, bytes or a WebAssembly.Module).
 */
export function initHttp(module) {
  if (!ready) {
    ready = (async () => {
      if (module === undefined && isNode()) {
        const { readFile } = await import('node:fs/promises');
        module = await readFile(new URL('../../wasm_tls_http_bg.wasm', import.meta.url));
      }
      await initWasm(module === undefined ? undefined : { module_or_path: module });
    })();
    ready.catch(() => {
      ready = null;
    });
  }
  return ready;
}

/** A trap in the HTTP module (a Rust panic) as a TlsError; other errors as they are. */
export function httpGuard(fn) {
  try {
    return fn();
  } catch (err) {
    if (err instanceof WebAssembly.RuntimeError) {
      throw new TlsError('panic', `wasm-tls/http failed internally: ${err.message}`);
    }
    throw err;
  }
}
