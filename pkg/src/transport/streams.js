// Any pair of byte streams as a transport: `{ readable, writable }`, the shape of a
// Cloudflare Workers socket, of `Duplex.toWeb(net.Socket)` and of a WebTransport
// bidirectional stream. Pausing stops reading the readable, which pushes back on the
// other side as far as that stream does. (The interface is described in websocket.js.)

import { TlsError } from '../errors.js';
import { DrainWaiters } from './drain.js';

export class StreamTransport {
  /** `source`: { readable, writable }, a function returning one, or a promise of one. */
  constructor(source, describe) {
    this.onopen = null;
    this.ondata = null;
    this.onclose = null;
    this.open = false;
    this.closed = false;
    this.canPause = true;
    this.describe = describe;
    this._paused = false;
    this._reading = false;
    this._inFlight = 0;
    this._drain = new DrainWaiters(() => ({ amount: this.bufferedAmount, closed: this.closed }));
    this._preOpen = [];
    Promise.resolve()
      .then(() => (typeof source === 'function' ? source() : source))
      .then((pair) => this._start(pair))
      .catch((err) => this._end(new TlsError('transport-error', `the transport for ${describe} could not be opened: ${err && err.message ? err.message : err}`)));
  }

  _start(pair) {
    if (!pair || !pair.readable || !pair.writable || typeof pair.readable.getReader !== 'function' || typeof pair.writable.getWriter !== 'function') {
      throw new TlsError('invalid-config', 'options.transport must be { readable, writable } byte streams (or a function that returns them)');
    }
    if (this.closed) {
      pair.readable.cancel().catch(() => {});
      pair.writable.abort().catch(() => {});
      return;
    }
    this._reader = pair.readable.getReader();
    this._writer = pair.writable.getWriter();
    this.open = true;
    const queued = this._preOpen;
    this._preOpen = [];
    for (const bytes of queued) this._send(bytes);
    if (this.onopen) this.onopen();
    this._read();
  }

  async _read() {
    if (this._reading) return;
    this._reading = true;
    try {
      while (!this._paused && !this.closed) {
        const { value, done } = await this._reader.read();
        if (done) {
          this._end(null);
          return;
        }
        if (this.closed) return;
        if (!(value instanceof Uint8Array)) {
          const bytes = ArrayBuffer.isView(value) ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength) : value instanceof ArrayBuffer ? new Uint8Array(value) : null;
          if (!bytes) throw new TypeError('the transport\'s readable must carry bytes');
          if (this.ondata) this.ondata(bytes);
        } else if (this.ondata) {
          this.ondata(value);
        }
      }
    } catch (err) {
      this._end(new TlsError('transport-error', `the transport for ${this.describe} failed: ${err && err.message ? err.message : err}`));
    } finally {
      this._reading = false;
    }
  }

  get bufferedAmount() {
    return this._inFlight + this._preOpen.reduce((n, b) => n + b.length, 0);
  }

  send(bytes) {
    if (this.closed) return;
    if (!this.open) this._preOpen.push(bytes);
    else this._send(bytes);
  }

  _send(bytes) {
    const n = bytes.length;
    this._inFlight += n;
    const done = () => {
      this._inFlight -= n;
      this._wake();
    };
    this._writer.write(bytes).then(done, (err) => {
      done();
      this._end(new TlsError('transport-error', `writing to the transport for ${this.describe} failed: ${err && err.message ? err.message : err}`));
    });
  }

  drained(limit) {
    return this._drain.wait(limit);
  }

  _wake() {
    this._drain.wake();
  }

  pause() {
    this._paused = true;
  }

  resume() {
    if (!this._paused) return;
    this._paused = false;
    if (this.open && !this.closed) this._read();
  }

  /** Closes the writable after what was written, and stops reading. */
  close() {
    if (this.closed) return;
    this.closed = true;
    this._wake();
    if (this._writer) this._writer.close().catch(() => {});
    if (this._reader) this._reader.cancel().catch(() => {});
  }

  _end(error) {
    if (this.closed && this._ended) return;
    const wasClosed = this.closed;
    this.closed = true;
    this._ended = true;
    this._wake();
    if (!wasClosed && this.onclose) this.onclose(error);
  }
}
