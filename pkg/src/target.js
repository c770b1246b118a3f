// Targets ("host:port", "[v6]:port" or { hostname, port }) and the relay URL for one.
// The rules are those of the relay and tls-client too: tests/target-vectors.json.

import { TlsError } from './errors.js';

/** Parses and checks a target; throws `invalid-config`. */
export function parseTarget(target) {
  let host;
  let port;
  if (typeof target === 'object' && target !== null) {
    host = target.hostname == null ? '' : String(target.hostname);
    port = typeof target.port === 'string' && /^\d+$/.test(target.port) ? Number(target.port) : target.port;
  } else {
    const text = String(target);
    const m = /^\[([0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)\]:(\d+)$/.exec(text) || /^([^:[\]]+):(\d+)$/.exec(text);
    if (!m) throw new TlsError('invalid-config', `target must be "host:port" or "[ipv6]:port", not "${text}"`);
    host = m[1];
    port = Number(m[2]);
  }
  // The port goes into two bytes over Wisp and into the relay's URL path: a bad one
  // would wrap or reach somewhere else, as would a host with URL delimiters.
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new TlsError('invalid-config', `the target's port must be an integer from 1 to 65535, not "${port}"`);
  }
  if (host === '' || /[/?#@\s]/.test(host)) {
    throw new TlsError('invalid-config', `the target's host must be a host name or address, not "${host}"`);
  }
  return { host, port };
}

/** "host:port", with brackets around an IPv6 address. */
export function formatTarget(host, port) {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * The raw relay's URL for a target: the target is the last path segment, before any
 * query or fragment (so that a relay authenticating in the query keeps its token).
 * `relay` may also be a function (host, port) => url.
 */
export function relayUrl(relay, host, port) {
  if (typeof relay === 'function') return String(relay(host, port));
  const text = String(relay);
  const cut = text.search(/[?#]/);
  const base = (cut < 0 ? text : text.slice(0, cut)).replace(/\/+$/, '');
  const rest = cut < 0 ? '' : text.slice(cut);
  return `${base}/${formatTarget(host, port)}${rest}`;
}
