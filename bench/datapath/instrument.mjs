// Counting, for the data-path benchmark's count pass (never in a timed pass): every call
// into the wasm module through wasm-bindgen's classes, with the bytes it copies across
// the boundary, and every message the transport carries.

/** Empty counters. */
export function counters() {
  return { calls: {}, messagesIn: 0, bytesInMessages: 0, messagesOut: 0, bytesOutMessages: 0, constructed: {} };
}

export function reset(c) {
  c.calls = {};
  c.messagesIn = 0;
  c.bytesInMessages = 0;
  c.messagesOut = 0;
  c.bytesOutMessages = 0;
}

const paramsOf = (src) => {
  const m = /^[\w$]*\s*\(([^)]*)\)/.exec(src);
  return m ? m[1].split(',').map((p) => p.trim()).filter(Boolean) : [];
};

/**
 * Parameters the glue hands to the wasm export as JS objects as well as copying them
 * in: wasm-bindgen's `&mut [u8]`, copied back out after the call, whole.
 */
const copiedBackOf = (src, params) => {
  const out = new Set();
  for (const m of src.matchAll(/wasm\.\w+\(([^)]*)\)/g)) {
    for (const a of m[1].split(',').map((s) => s.trim())) if (params.includes(a)) out.add(a);
  }
  return out;
};

const byteLength = (v) => (v == null ? 0 : typeof v === 'string' ? v.length : v.byteLength ?? v.length ?? 0);

/**
 * Wraps the methods and getters of every class that the wasm-bindgen module `glue`
 * exports (TlsConfig, TlsConnection, TlsPipe, …), counting calls per method, the bytes
 * copied into wasm (Uint8Array arguments) and out of it (Uint8Array results, a step's
 * plaintext and ciphertext, and `&mut [u8]` arguments copied back). Returns the labels.
 */
export function wrapGlue(glue, c) {
  const labels = [];
  for (const [name, cls] of Object.entries(glue)) {
    if (typeof cls !== 'function' || !cls.prototype || name === 'default' || /^[a-z]/.test(name)) continue;
    const proto = cls.prototype;
    for (const key of Object.getOwnPropertyNames(proto)) {
      if (key === 'constructor' || key.startsWith('__')) continue; // JS-side helpers
      const d = Object.getOwnPropertyDescriptor(proto, key);
      const label = `${name}.${key}`;
      const entry = () => (c.calls[label] ||= { calls: 0, bytesIn: 0, bytesOut: 0 });
      if (typeof d.value === 'function') {
        const orig = d.value;
        const src = orig.toString();
        const params = paramsOf(src);
        const back = copiedBackOf(src, params);
        proto[key] = function (...args) {
          const e = entry();
          e.calls++;
          for (let i = 0; i < args.length; i++) {
            if (args[i] instanceof Uint8Array) {
              e.bytesIn += args[i].length;
              if (back.has(params[i])) e.bytesOut += args[i].length;
            }
          }
          const out = orig.apply(this, args);
          if (out instanceof Uint8Array) e.bytesOut += out.length;
          else if (out && typeof out === 'object') {
            if (out.plaintext instanceof Uint8Array) e.bytesOut += out.plaintext.length;
            if (out.ciphertext instanceof Uint8Array) e.bytesOut += out.ciphertext.length;
          }
          return out;
        };
        labels.push(label);
      } else if (typeof d.get === 'function') {
        const get = d.get;
        Object.defineProperty(proto, key, {
          ...d,
          get() {
            entry().calls++;
            return get.call(this);
          },
        });
        labels.push(label);
      }
    }
  }
  return labels;
}

/** A WebSocket class (the browser's or `ws`'s) that counts messages both ways. */
export function countingWebSocket(Base, c, counting = true) {
  return class CountedWebSocket extends Base {
    constructor(...args) {
      super(...args);
      c.constructed.WebSocket = (c.constructed.WebSocket || 0) + 1;
      if (counting) {
        this.addEventListener('message', (e) => {
          c.messagesIn++;
          c.bytesInMessages += byteLength(e.data);
        });
      }
    }

    send(data, ...rest) {
      if (counting) {
        c.messagesOut++;
        c.bytesOutMessages += byteLength(data);
      }
      return super.send(data, ...rest);
    }
  };
}

/**
 * The browser's WebSocketStream, counting constructions and (if `counting`) messages:
 * its streams are then wrapped, one more hop each way, so only in the count pass.
 */
export function countingWebSocketStream(Base, c, counting = true) {
  return class CountedWebSocketStream extends Base {
    constructor(...args) {
      super(...args);
      c.constructed.WebSocketStream = (c.constructed.WebSocketStream || 0) + 1;
      if (!counting) return;
      const opened = super.opened.then(({ readable, writable, ...rest }) => {
        const counted = readable.pipeThrough(
          new TransformStream({
            transform(chunk, controller) {
              c.messagesIn++;
              c.bytesInMessages += byteLength(chunk);
              controller.enqueue(chunk);
            },
          }),
        );
        const writer = writable.getWriter();
        const countedWritable = new WritableStream({
          write(chunk) {
            c.messagesOut++;
            c.bytesOutMessages += byteLength(chunk);
            return writer.write(chunk);
          },
          close: () => writer.close(),
          abort: (reason) => writer.abort(reason),
        });
        return { ...rest, readable: counted, writable: countedWritable };
      });
      Object.defineProperty(this, 'opened', { value: opened });
    }
  };
}
