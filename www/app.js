// The demo page: connect through the relay, show every pump step, what was negotiated,
// the server's chain and the response; show a failure as its typed error.

import { connect } from '../pkg/index.js';

const $ = (id) => document.getElementById(id);

// Prefill from the URL (the demo command links here with its relay, server and CA).
const query = new URLSearchParams(location.search);
for (const key of ['relay', 'target', 'servername']) {
  if (query.get(key)) $(key).value = query.get(key);
}
if (query.get('target')) $('fetch-url').value = `https://${query.get('target')}/`;
if (query.get('ca')) {
  fetch(query.get('ca'))
    .then((r) => (r.ok ? r.text() : ''))
    .then((pem) => ($('ca').value = pem))
    .catch(() => {});
}

function status(kind, html) {
  const el = $('status');
  el.className = kind;
  el.innerHTML = html;
}

function escape(text) {
  return String(text).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
}

function fmtDate(d) {
  return d instanceof Date ? d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC') : '?';
}

function showInfo(info) {
  const rows = [
    ['Protocol', info.protocol],
    ['Cipher suite', info.cipherSuite],
    ['Key exchange', info.group || '(none)'],
    ['ALPN', info.alpn || '(none)'],
    ['Resumed', info.resumed ? 'yes' : 'no'],
    ['Handshake time', `${info.handshakeMs.toFixed(1)} ms`],
  ];
  $('params').innerHTML = rows.map(([k, v]) => `<dt>${k}</dt><dd data-field="${k}">${escape(v)}</dd>`).join('');
  $('chain').innerHTML = info.certificates
    .map(
      (c) => `<li><div>subject: ${escape(c.subject)}</div><div>issuer: ${escape(c.issuer)}</div>` +
        `<div>valid: ${fmtDate(c.notBefore)} to ${fmtDate(c.notAfter)}</div></li>`,
    )
    .join('');
}

$('form').addEventListener('submit', async (event) => {
  event.preventDefault();
  $('connect').disabled = true;
  for (const id of ['params', 'chain', 'trace', 'response']) $(id).textContent = '';
  status('busy', 'Connecting…');
  const trace = $('trace');
  const started = performance.now();
  const step = (s) => {
    const li = document.createElement('li');
    const t = (performance.now() - started).toFixed(1);
    li.textContent = s.step === 'done' ? `${t} ms  handshake done` : `${t} ms  ${s.step}: ${s.bytes} bytes`;
    trace.append(li);
  };
  try {
    const ca = $('ca').value.trim();
    const socket = connect($('target').value.trim(), {
      relay: $('relay').value.trim(),
      serverName: $('servername').value.trim(),
      ca: ca || undefined,
      alpn: ['http/1.1'],
      handshakeTimeout: 15000,
      trace: step,
    });
    const info = await socket.opened;
    showInfo(info);
    status('ok', `Secure connection to <code>${escape($('target').value)}</code>: ${escape(info.protocol)}, ${escape(info.cipherSuite)}, certificate verified for <code>${escape($('servername').value)}</code>.`);
    const request = $('request').value.replace(/\r?\n/g, '\r\n');
    const writer = socket.writable.getWriter();
    await writer.write(new TextEncoder().encode(request));
    writer.releaseLock();
    const reader = socket.readable.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      $('response').textContent += decoder.decode(value, { stream: true });
    }
    await socket.closed;
  } catch (err) {
    const code = err && err.code ? `<code>${escape(err.code)}</code>: ` : '';
    status('error', `The connection failed. ${code}${escape(err && err.message ? err.message : err)}`);
  } finally {
    $('connect').disabled = false;
  }
});

// The fetch panel: wasm-tls/http is imported on the first press, so the page above loads
// none of it.
let httpClient = null;
let httpClientKey = '';

$('fetch-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  $('fetch').disabled = true;
  $('fetch-head').textContent = '';
  $('fetch-body').textContent = '';
  const el = $('fetch-status');
  el.className = 'busy';
  el.textContent = 'Fetching…';
  const started = performance.now();
  try {
    const { createClient } = await import('../pkg/http.js');
    const ca = $('ca').value.trim();
    const options = { relay: $('relay').value.trim(), serverName: $('servername').value.trim(), ca: ca || undefined };
    const key = JSON.stringify(options);
    if (!httpClient || key !== httpClientKey) {
      httpClient?.close();
      httpClient = createClient(options);
      httpClientKey = key;
    }
    const response = await httpClient.fetch($('fetch-url').value.trim());
    const rows = [
      ['Status', `${response.status} ${response.statusText}`.trim()],
      ['Protocol', response.httpVersion],
      ['Time to headers', `${(performance.now() - started).toFixed(1)} ms`],
      ...[...response.headers].map(([k, v]) => [k, v]),
    ];
    $('fetch-head').innerHTML = rows.map(([k, v]) => `<dt>${escape(k)}</dt><dd>${escape(v)}</dd>`).join('');
    const text = await response.text();
    $('fetch-body').textContent = text.length > 65536 ? `${text.slice(0, 65536)}\n… (${text.length} characters)` : text;
    el.className = 'ok';
    el.textContent = `${response.httpVersion} ${response.status}, ${text.length} characters in ${(performance.now() - started).toFixed(1)} ms.`;
  } catch (err) {
    el.className = 'error';
    const code = err && err.code ? `<code>${escape(err.code)}</code>: ` : '';
    el.innerHTML = `The request failed. ${code}${escape(err && err.message ? err.message : err)}`;
  } finally {
    $('fetch').disabled = false;
  }
});
