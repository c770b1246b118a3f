// Loading the WebAssembly module, and calls into it that survive a Rust panic.

import initWasm, { takePanicMessage } from '../wasm_tls.js';
import { TlsError } from './errors.js';

let ready = null;
let exports = null;

export function isNode() {
  return typeof process !== 'undefined' && process.versions != null && process.versions.node != null;
}

/**
 * Loads and instantiates the WebAssembly module once. `connect()` calls it; call it
 * yourself to pass the module (a URL, a Response, bytes or a WebAssembly.Module) when
 * the default location does not suit your bundler.
 */
export function init(module) {
  if (!ready) {
    ready = (async () => {
      if (module === undefined && isNode()) {
        const { readFile } = await import('node:fs/promises');
        module = await readFile(new URL('../wasm_tls_bg.wasm', import.meta.url));
      }
      exports = await initWasm(module === undefined ? undefined : { module_or_path: module });
    })();
    ready.catch(() => {
      ready = null;
    });
  }
  return ready;
}

/** Runs a call into wasm; turns the trap after a Rust panic into a TlsError that says why. */
export function guard(fn) {
  try {
    return fn();
  } catch (err) {
    if (err instanceof WebAssembly.RuntimeError) {
      const message = takePanicMessage();
      throw new TlsError('panic', `wasm-tls failed internally: ${message || err.message}`);
    }
    throw err;
  }
}

/** The WebAssembly module's memory, in bytes (0 before init()): it grows, never shrinks. */
export function wasmMemoryBytes() {
  return exports ? exports.memory.buffer.byteLength : 0;
}
