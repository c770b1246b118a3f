// wasm-tls/http in Node.js (the "node" condition of the package's exports): the same
// client, with brotli decoded by Node's zlib, which Node's DecompressionStream lacks.

import { Duplex } from 'node:stream';
import { createBrotliDecompress } from 'node:zlib';
import { registerDecoder } from './src/http/decoding.js';

registerDecoder('br', () => Duplex.toWeb(createBrotliDecompress()));

export * from './http.js';
