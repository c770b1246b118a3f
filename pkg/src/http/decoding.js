// Content-Encoding: the decoders a response body may go through, and the Accept-Encoding
// that offers exactly those. gzip and deflate are the platform's DecompressionStream (no
// code in wasm); brotli only where the platform decodes it too: a browser whose
// DecompressionStream takes "brotli", or Node.js, whose zlib http-node.js registers. A
// decoder of our own in wasm would cost more to load than brotli saves over gzip.

/** Whether the platform's DecompressionStream takes `format`. */
function platformDecodes(format) {
  try {
    new DecompressionStream(format);
    return true;
  } catch {
    return false;
  }
}

/** Content-coding → a function returning a fresh TransformStream-shaped decoder. */
const decoders = new Map([
  ['gzip', () => new DecompressionStream('gzip')],
  ['x-gzip', () => new DecompressionStream('gzip')],
  ['deflate', () => new DecompressionStream('deflate')],
]);
if (platformDecodes('brotli')) decoders.set('br', () => new DecompressionStream('brotli'));

/** Adds (or replaces) the decoder of `coding`; `make()` returns `{ readable, writable }`. */
export function registerDecoder(coding, make) {
  decoders.set(coding, make);
}

/** The Accept-Encoding sent when the request has none: what decode() can decode. */
export function acceptEncoding() {
  return ['gzip', 'deflate', 'br'].filter((c) => decoders.has(c)).join(', ');
}

/**
 * `stream` decoded by the response's Content-Encoding value: every coding, last applied
 * first. Unchanged when there is none, or one this platform cannot decode (the body is
 * then given as it came, as for a request that asked for it with its own
 * Accept-Encoding).
 */
export function decode(stream, contentEncoding) {
  const codings = (contentEncoding || '')
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c && c !== 'identity');
  if (!codings.length || !codings.every((c) => decoders.has(c))) return stream;
  for (const coding of codings.reverse()) stream = stream.pipeThrough(decoders.get(coding)());
  return stream;
}
