// fetch() over the pool: the Fetch standard's request and response shapes, redirects,
// abort, and the body decoded by its Content-Encoding (decoding.js).

import { TlsError } from '../errors.js';
import { acceptEncoding, decode } from './decoding.js';

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 20;
const NULL_BODY = new Set([101, 103, 204, 205, 304]);
// Hop-by-hop headers: HTTP/2 forbids them, and hyper writes its own under HTTP/1.1.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'host', 'content-length']);

function abortReason(signal) {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

/** The request body as bytes (replayable, with a length) or a stream; and its type. */
async function readBody(body) {
  if (body === undefined || body === null) return { bytes: null, stream: null, type: null };
  if (typeof ReadableStream !== 'undefined' && body instanceof ReadableStream) return { bytes: null, stream: body, type: null };
  // Response's constructor takes every BodyInit (string, bytes, Blob, FormData,
  // URLSearchParams) and names its content type, in browsers and Node.js alike.
  const wrapped = new Response(body);
  return { bytes: new Uint8Array(await wrapped.arrayBuffer()), stream: null, type: wrapped.headers.get('content-type') };
}

/** Where `input` and `init` say to go, and how. */
async function parseRequest(input, init) {
  const request = typeof Request !== 'undefined' && input instanceof Request ? input : null;
  let url;
  try {
    url = new URL(request ? request.url : String(input));
  } catch {
    throw new TlsError('invalid-config', `fetch() needs an absolute URL, not '${input}'`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new TlsError('invalid-config', `fetch() takes https: and http: URLs, not ${url.protocol}`);
  }
  const method = String(init.method ?? request?.method ?? 'GET').toUpperCase();
  const headers = new Headers(init.headers ?? request?.headers);
  let body;
  if (init.body !== undefined) body = await readBody(init.body);
  else if (request && request.body) body = await readBody(new Uint8Array(await request.arrayBuffer()));
  else body = await readBody(null);
  if ((method === 'GET' || method === 'HEAD') && (body.bytes || body.stream)) {
    throw new TlsError('invalid-config', `a ${method} request cannot have a body`);
  }
  if (body.type && !headers.has('content-type')) headers.set('content-type', body.type);
  const redirect = init.redirect ?? request?.redirect ?? 'follow';
  if (!['follow', 'manual', 'error'].includes(redirect)) {
    throw new TlsError('invalid-config', `redirect must be 'follow', 'manual' or 'error', not '${redirect}'`);
  }
  return { url, method, headers, body, redirect, signal: init.signal ?? request?.signal ?? null };
}

function targetOf(url) {
  const secure = url.protocol === 'https:';
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return { secure, host, port: Number(url.port) || (secure ? 443 : 80) };
}

/** A pull function over the body, for the wasm module; null for none. */
function bodySource(body) {
  if (body.bytes) {
    let sent = false;
    return () => {
      if (sent) return Promise.resolve(null);
      sent = true;
      return Promise.resolve(body.bytes);
    };
  }
  if (body.stream) {
    const reader = body.stream.getReader();
    return async () => {
      const { value, done } = await reader.read();
      if (done) return null;
      if (typeof value === 'string') return new TextEncoder().encode(value);
      if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
      if (value instanceof ArrayBuffer) return new Uint8Array(value);
      throw new TypeError('a request body stream must give Uint8Arrays');
    };
  }
  return null;
}

function headerList(url, method, headers, http2) {
  const list = [];
  if (!http2) list.push('host', url.host);
  for (const [name, value] of headers) {
    if (!HOP_BY_HOP.has(name)) list.push(name, value);
  }
  if (!headers.has('accept-encoding')) list.push('accept-encoding', acceptEncoding());
  if (!headers.has('accept')) list.push('accept', '*/*');
  return list;
}

/** Sends one request (no redirects) and returns the Response. */
async function exchange(pool, req, url, method, headers, body, signal) {
  const target = targetOf(url);
  let reused = true;
  for (let attempt = 0; ; attempt++) {
    const conn = await pool.acquire(target, attempt > 0);
    if (signal?.aborted) {
      pool.release(target, conn, true);
      throw abortReason(signal);
    }
    reused = conn.served > 0;
    conn.served = (conn.served || 0) + 1;
    const uri = conn.http2 ? url.href.replace(/#.*$/, '') : `${url.pathname}${url.search}`;
    const length = body.bytes ? body.bytes.length : undefined;
    let head;
    const sending = conn.http.send(method, uri, headerList(url, method, headers, conn.http2), bodySource(body), length);
    try {
      head = await raceAbort(sending, signal);
    } catch (err) {
      if (signal?.aborted) {
        if (conn.http2) pool.release(target, conn, true);
        else {
          conn.abort(abortReason(signal));
          pool.release(target, conn, false);
        }
        throw abortReason(signal);
      }
      pool.release(target, conn, false);
      // A kept-alive HTTP/1.1 connection the server had closed: once more on a new one,
      // if the body can be sent again.
      if (reused && !conn.http2 && !body.stream && attempt === 0) continue;
      throw conn.error(err);
    }
    return toResponse(pool, target, conn, head, url, method, signal);
  }
}

function raceAbort(promise, signal) {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

function toResponse(pool, target, conn, head, url, method, signal) {
  const status = head.status;
  const pairs = head.headers;
  const headers = new Headers();
  for (let i = 0; i < pairs.length; i += 2) headers.append(pairs[i], pairs[i + 1]);
  const version = head.version;
  const body = head.takeBody();
  head.free();
  let released = false;
  const release = (reusable) => {
    if (released) return;
    released = true;
    signal?.removeEventListener('abort', onAbort);
    pool.release(target, conn, reusable);
  };
  let stream = null;
  let controller = null;
  const onAbort = () => {
    body.cancel();
    if (!conn.http2) conn.abort(abortReason(signal));
    release(false);
    try {
      controller?.error(abortReason(signal));
    } catch {}
  };
  if (NULL_BODY.has(status) || method === 'HEAD') {
    body.cancel();
    release(true);
  } else {
    signal?.addEventListener('abort', onAbort, { once: true });
    stream = new ReadableStream(
      {
        start: (c) => {
          controller = c;
        },
        pull: async (c) => {
          let chunk;
          try {
            chunk = await body.next();
          } catch (err) {
            release(false);
            if (!signal?.aborted) c.error(conn.error(err));
            return;
          }
          if (released) return;
          if (chunk === null) {
            c.close();
            body.free();
            release(true);
          } else {
            c.enqueue(chunk);
          }
        },
        cancel: () => {
          body.cancel();
          release(conn.http2);
        },
      },
      // Read ahead up to 1 MiB while the application works on a chunk (256 KiB left
      // HTTP/1.1 at 0.8 of the socket's rate in Chromium): past it, the body is not read
      // and the server is held back.
      { highWaterMark: 1024 * 1024, size: (chunk) => chunk.byteLength },
    );
    stream = decode(stream, headers.get('content-encoding'));
  }
  const response = new Response(stream, { status: status < 200 || status > 599 ? 200 : status, headers });
  if (status < 200 || status > 599) Object.defineProperty(response, 'status', { value: status });
  Object.defineProperty(response, 'url', { value: url.href.replace(/#.*$/, '') });
  Object.defineProperty(response, 'httpVersion', { value: version });
  return response;
}

/** The Fetch standard's fetch(), over `pool`. */
export async function fetchOver(pool, input, init = {}) {
  const req = await parseRequest(input, init ?? {});
  let { url, method, headers, body } = req;
  const { signal } = req;
  if (signal?.aborted) throw abortReason(signal);
  for (let redirects = 0; ; redirects++) {
    const response = await exchange(pool, req, url, method, headers, body, signal);
    const location = response.headers.get('location');
    if (!REDIRECTS.has(response.status) || location === null || req.redirect === 'manual') {
      if (redirects > 0) Object.defineProperty(response, 'redirected', { value: true });
      return response;
    }
    // A short body is read, so that an HTTP/1.1 connection stays usable; a long one is
    // cancelled (which closes it).
    const length = Number(response.headers.get('content-length') ?? Infinity);
    if (length <= 64 * 1024) await response.arrayBuffer().catch(() => {});
    else await response.body?.cancel().catch(() => {});
    if (req.redirect === 'error') {
      throw new TlsError('too-many-redirects', `${url.href} redirects to ${location}, and redirect is 'error'`);
    }
    if (redirects >= MAX_REDIRECTS) {
      throw new TlsError('too-many-redirects', `more than ${MAX_REDIRECTS} redirects, the last from ${url.href}`);
    }
    const next = new URL(location, url);
    if (next.protocol !== 'https:' && next.protocol !== 'http:') {
      throw new TlsError('http-protocol', `${url.href} redirects to ${next.href}, which is not HTTP`);
    }
    // 303, and 301/302 after a POST, become a GET without a body (the Fetch standard).
    if (response.status === 303 ? method !== 'HEAD' : (response.status === 301 || response.status === 302) && method === 'POST') {
      method = 'GET';
      body = { bytes: null, stream: null, type: null };
      for (const name of ['content-type', 'content-length', 'content-encoding', 'content-language', 'content-location']) headers.delete(name);
    } else if (body.stream) {
      throw new TlsError('http-protocol', `${url.href} redirects (${response.status}) a request whose body was a stream, which cannot be sent again`);
    }
    if (next.origin !== url.origin) headers.delete('authorization');
    url = next;
  }
}
