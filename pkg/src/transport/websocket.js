// The raw relay: one WebSocket per connection to RELAY/host:port, whose binary messages
// carry the TCP bytes both ways (websockify's framing).
//
// Every transport has this interface, which the socket uses (a new transport is one file):
//
//   onopen()                  the path to the server is open
//   ondata(bytes)             bytes from the server (the transport no longer uses them)
//   onclose(error)            the path ended: null for an orderly end (the server's EOF),
//                             else a TlsError saying what failed
//   send(bytes)               queue bytes for the server (may be called before onopen)
//   bufferedAmount            bytes sent but not yet handed to the network
//   drained(limit)            resolves once bufferedAmount <= limit, or the path ended
//   pause() / resume()        stop / restart ondata; canPause says whether that slows
//   canPause                  the server down (else the data keeps coming)
//   close()                   an orderly end after what was sent
//   describe                  where it goes, for error messages
//   ref() / unref()           optional: whether it keeps Node.js alive

import { TlsError } from '../errors.js';
import { formatTarget, relayUrl } from '../target.js';
import { openChannel, wrapWebSocket } from './channel.js';

export class RelayTransport {
  constructor(options, host, port) {
    this.onopen = null;
    this.ondata = null;
    this.onclose = null;
    if (options.webSocket) {
      this.channel = wrapWebSocket(options.webSocket);
    } else {
      if (!options.relay) {
        throw new TlsError('invalid-config', "options.relay (the relay's ws:// or wss:// URL) is required");
      }
      this.channel = openChannel(relayUrl(options.relay, host, port), ['binary'], options);
    }
    this.describe = `${formatTarget(host, port)} through the relay at ${this.channel.url}`;
    this.channel.onopen = () => this.onopen && this.onopen();
    this.channel.onmessage = (bytes) => this.ondata && this.ondata(bytes);
    this.channel.onclose = (event) => this.onclose && this.onclose(this._closeError(event));
  }

  get open() {
    return this.channel.opened && !this.channel.closed;
  }

  get canPause() {
    return this.channel.canPause;
  }

  get bufferedAmount() {
    return this.channel.bufferedAmount;
  }

  send(bytes) {
    this.channel.send(bytes);
  }

  drained(limit) {
    return this.channel.drained(limit);
  }

  pause() {
    this.channel.pause();
  }

  resume() {
    this.channel.resume();
  }

  close() {
    this.channel.close(1000, '');
  }

  ref() {
    if (this.channel.ref) this.channel.ref();
  }

  unref() {
    if (this.channel.unref) this.channel.unref();
  }

  /** A WebSocket close as an error, or null for the server's orderly EOF. */
  _closeError({ code, reason, opened, failure }) {
    if (failure) return failure;
    if (code === 1000 || code === 1005) return null;
    if (code === 1008) {
      return new TlsError('relay-refused', `the relay refused the connection: ${reason || 'policy violation'}`);
    }
    // wasm-tls-relay says so when it could not open the TCP connection.
    if (code === 1011 && /^connect failed/.test(reason)) {
      return new TlsError('target-unreachable', `the relay could not reach ${this.describe.split(' ')[0]}: ${reason}`);
    }
    if (!opened) {
      return new TlsError('transport-closed', `the WebSocket to ${this.channel.url} could not be opened (the relay is unreachable, or it is not a WebSocket endpoint)`);
    }
    if (code === 1006) {
      return new TlsError('transport-closed', 'the WebSocket to the relay closed abnormally (the relay dropped the connection)');
    }
    return new TlsError('transport-closed', `the relay closed the WebSocket (${code}${reason ? ': ' + reason : ''})`);
  }
}
