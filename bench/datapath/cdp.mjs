// Pages driven over the DevTools protocol directly, not through playwright's page
// objects: playwright enables the Network domain on its pages, and Chromium then reports
// every WebSocket frame to it with its payload (base64), which costs the renderer, the
// browser process and the driver CPU per byte: a benchmark of WebSocket throughput must
// not pay that. playwright launches the browser (with --remote-debugging-port); these
// pages live in the default browser context, which playwright leaves alone.

import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const { WebSocket } = createRequire(path.join(root, 'tests/browser/package.json'))('ws');

/** A connection to the browser's DevTools endpoint on 127.0.0.1:`port`. */
export async function connect(port) {
  let version;
  for (let i = 0; i < 100 && !version; i++) {
    try {
      version = await (await fetch(`http://127.0.0.1:${port}/json/version`)).json();
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  if (!version) throw new Error(`no DevTools endpoint on 127.0.0.1:${port}`);
  const ws = new WebSocket(version.webSocketDebuggerUrl, { maxPayload: 1 << 30 });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  let nextId = 1;
  const pending = new Map();
  const listeners = new Map();
  ws.on('message', (data) => {
    const msg = JSON.parse(data);
    if (msg.id !== undefined) {
      const p = pending.get(msg.id);
      pending.delete(msg.id);
      if (!p) return;
      if (msg.error) p.reject(new Error(`${p.method}: ${msg.error.message}`));
      else p.resolve(msg.result);
      return;
    }
    for (const fn of listeners.get(`${msg.sessionId || ''} ${msg.method}`) || []) fn(msg.params);
  });
  const send = (method, params = {}, sessionId) =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject, method });
      ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    });
  const on = (sessionId, method, fn) => {
    const key = `${sessionId || ''} ${method}`;
    if (!listeners.has(key)) listeners.set(key, []);
    listeners.get(key).push(fn);
  };
  return { send, on, version, close: () => ws.close() };
}

/**
 * A new page at `url`: `evaluate(fn, arg)` runs `fn(arg)` in it and returns the
 * (JSON) value its promise resolves to; `send` speaks CDP to it (Profiler.*).
 */
export async function newPage(cdp, url, log = () => {}) {
  const { targetId } = await cdp.send('Target.createTarget', { url: 'about:blank' });
  const { sessionId } = await cdp.send('Target.attachToTarget', { targetId, flatten: true });
  const send = (method, params) => cdp.send(method, params, sessionId);
  cdp.on(sessionId, 'Runtime.consoleAPICalled', (e) => log(`${e.type}: ${e.args.map((a) => a.value ?? a.description).join(' ')}`));
  cdp.on(sessionId, 'Runtime.exceptionThrown', (e) => log(`exception: ${e.exceptionDetails.exception?.description || e.exceptionDetails.text}`));
  await send('Runtime.enable');
  await send('Page.enable');
  const loaded = new Promise((resolve) => cdp.on(sessionId, 'Page.loadEventFired', resolve));
  await send('Page.navigate', { url });
  await loaded;
  return {
    send,
    async evaluate(fn, arg) {
      const r = await send('Runtime.evaluate', {
        expression: `(${fn})(${JSON.stringify(arg === undefined ? null : arg)})`,
        awaitPromise: true,
        returnByValue: true,
      });
      if (r.exceptionDetails) throw new Error(r.exceptionDetails.exception?.description || r.exceptionDetails.text);
      return r.result.value;
    },
    close: () => cdp.send('Target.closeTarget', { targetId }),
  };
}
