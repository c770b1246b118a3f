// From connect()'s options to a TlsConfig (the core shares one configuration among
// connections with equal options, so they resume each other's sessions); the bundled
// roots; and the data path's limits.

import { TlsConfig, registerBundledRoots } from '../wasm_tls.js';
import { TlsError } from './errors.js';
import { guard, isNode } from './wasm.js';

/** The data path's limits, in bytes unless named otherwise. */
export const LIMITS = Object.freeze({
  /** Plaintext the readable stream queues before the socket stops decrypting. */
  readableHighWater: 512 * 1024,
  /** Parked ciphertext above which the transport is asked to pause. */
  pauseAbove: 1024 * 1024,
  /** Parked ciphertext below which a paused transport resumes. */
  resumeBelow: 256 * 1024,
  /** Default bound on parked ciphertext when the transport cannot pause. */
  receiveBufferLimit: 64 * 1024 * 1024,
  /** Plaintext encrypted per call into wasm: whole records, and one Wisp DATA packet. */
  writePiece: 64 * 1024 - 5 * 22,
  /** Bytes queued in the transport before a writer waits for it to drain. */
  sendHighWater: 1024 * 1024,
  /** Milliseconds of work before the data path yields to the event loop. */
  sliceMs: 4,
  /** Default handshake timeout, milliseconds. */
  handshakeTimeout: 30000,
});

let rootsPromise = null;

/**
 * Mozilla's root certificates as a trust-anchor bundle (the package's roots.bin), loaded
 * once. They ship apart from the wasm so that an application that brings its own CA
 * (`bundledRoots: false`) never downloads them. connect() loads and registers them on
 * its own; a caller building a `TlsConfig` itself may pass the result as `trustAnchors`.
 */
export function loadBundledRoots() {
  if (!rootsPromise) {
    rootsPromise = (async () => {
      const url = new URL('../roots.bin', import.meta.url);
      if (isNode()) {
        const { readFile } = await import('node:fs/promises');
        return new Uint8Array(await readFile(url));
      }
      const response = await fetch(url);
      if (!response.ok) {
        throw new TlsError('invalid-config', `cannot load the bundled roots from ${url}: HTTP ${response.status}`);
      }
      return new Uint8Array(await response.arrayBuffer());
    })();
    rootsPromise.catch(() => {
      rootsPromise = null;
    });
  }
  return rootsPromise;
}

/** Whether building a config for `options` needs the bundled roots loaded first. */
export function needsBundledRoots(options) {
  return !(options.config instanceof TlsConfig) && options.bundledRoots !== false;
}

/**
 * The TlsConfig for a connection to `host` with these options, as `{ config, owned }`:
 * an owned config is the caller's to free once its connection is made. Equal options
 * give the same shared configuration (the core keeps a bounded cache of them), so
 * connections resume each other's sessions.
 */
export function tlsConfigFor(options, host, bundledAnchors) {
  if (options.config instanceof TlsConfig) return { config: options.config, owned: false };
  if (bundledAnchors) registerRoots(bundledAnchors);
  const plain = {
    serverName: options.serverName || host,
    ca: options.ca,
    bundledRoots: options.bundledRoots,
    trustAnchors: options.trustAnchors,
    alpn: options.alpn,
    minVersion: options.minVersion,
    maxVersion: options.maxVersion,
    cert: options.cert,
    key: options.key,
    resumption: options.resumption,
    postQuantum: options.postQuantum,
    keyLog: options.keyLog,
  };
  return { config: guard(() => new TlsConfig(plain)), owned: true };
}

let registered = null;

/** Makes the loaded roots.bin what `bundledRoots` means, once. */
function registerRoots(bundle) {
  if (registered === bundle) return;
  guard(() => registerBundledRoots(bundle));
  registered = bundle;
}
