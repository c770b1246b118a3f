// The data path between a transport and the application, around a pipe: the TLS core's
// TlsPipe, or PlainPipe for plaintext (before STARTTLS, or secureTransport 'off'). The
// rules of the path live here once:
//
// Receiving: each transport message goes into the pipe in one call, with a budget: the
// room left in the readable stream's queue. Bytes the pipe did not consume (the reader
// is behind) are parked, in order, and offered again when the reader pulls. Parked bytes
// pause the transport above LIMITS.pauseAbove (which, over Wisp with the client-credit
// extension, over WebSocketStream and over Node's `ws`, slows the server down) and
// resume it below LIMITS.resumeBelow. A transport that cannot pause parks up to
// `receiveBufferLimit`, then fails with `receive-overflow`.
//
// Sending: a write is encrypted a piece at a time, each piece in one call, once the
// transport's queue is under LIMITS.sendHighWater; the path yields to the event loop
// after LIMITS.sliceMs of work, so a large write never holds it up.
//
// The pipe's own rules (the alert after a failure, EOF during the handshake, data before
// a failure) are the core's: every step's ciphertext is sent, whatever its state.

import { TlsError } from './errors.js';
import { LIMITS } from './config.js';
import { guard } from './wasm.js';

const EMPTY = new Uint8Array(0);

/** Yields to the event loop (a macrotask), so timers and I/O run. */
export const yieldToEventLoop =
  typeof setImmediate === 'function'
    ? () => new Promise((resolve) => setImmediate(resolve))
    : () =>
          new Promise((resolve) => {
            const channel = new MessageChannel();
            channel.port1.onmessage = () => resolve();
            channel.port2.postMessage(null);
          });

/** Plaintext with the pipe's interface: bytes pass through unchanged. */
export class PlainPipe {
  constructor() {
    this.state = 'open';
  }

  receive(bytes, budget) {
    if (budget <= 0 || this.state !== 'open') return { state: this.state, consumed: this.state === 'open' ? 0 : bytes.length };
    return { state: this.state, consumed: bytes.length, plaintext: bytes.length ? bytes : undefined };
  }

  receiveEof() {
    if (this.state === 'open') this.state = 'closed';
    return { state: this.state, consumed: 0 };
  }

  send(bytes) {
    // A copy: the caller may reuse its buffer once write() resolves.
    return { state: this.state, consumed: bytes.length, ciphertext: bytes.slice() };
  }

  close() {
    return { state: this.state, consumed: 0 };
  }

  handshakeInfo() {
    return undefined;
  }

  free() {}
}

/**
 * Moves bytes between `transport` and `app`:
 *   app.desiredSize()   room in the readable's queue, in bytes
 *   app.deliver(bytes)  plaintext for the reader
 *   app.onState(state, step)  the pipe's state changed ('open', 'closed', 'failed')
 */
export class Pump {
  constructor(transport, app, options) {
    this.transport = transport;
    this.app = app;
    this.pipe = null;
    this.state = 'connecting';
    this.parked = [];
    this.parkedBytes = 0;
    this.eof = false; // the transport ended; the pipe hears it once parked bytes are in
    this.eofDelivered = false;
    this.coreMayHold = false; // the pipe may hold plaintext beyond the last budget
    this.paused = false;
    this.receiveLimit = options.receiveBufferLimit > 0 ? options.receiveBufferLimit : LIMITS.receiveBufferLimit;
    this.trace = options.trace || null;
    this.writes = [];
    this.writing = false;
    this.stopped = false;
  }

  /** Starts (or, after STARTTLS, restarts) the path with `pipe`; sends its first flight. */
  start(pipe) {
    this.pipe = pipe;
    this.state = 'handshaking';
    this.coreMayHold = true;
    this.apply(guard(() => pipe.receive(EMPTY, 0)));
    this.drain();
  }

  /** A message from the transport. */
  onData(bytes) {
    if (this.stopped) return;
    if (this.trace) this.trace({ step: 'want-read', bytes: bytes.length });
    if (!this.pipe || this.parked.length > 0) {
      this.park(bytes);
      return;
    }
    this.feed(bytes, this.budget());
  }

  /** The transport ended in order (the server's EOF). */
  onEof() {
    if (this.stopped) return;
    this.eof = true;
    this.drain();
  }

  budget() {
    return Math.max(0, this.app.desiredSize());
  }

  feed(bytes, budget) {
    const step = guard(() => this.pipe.receive(bytes, budget));
    const delivered = step.plaintext ? step.plaintext.length : 0;
    // A spent budget may have left plaintext in the pipe; an unspent one did not.
    this.coreMayHold = delivered >= budget;
    if (step.consumed < bytes.length) {
      this.coreMayHold = true;
      this.park(step.consumed === 0 ? bytes : bytes.subarray(step.consumed), true);
    }
    this.apply(step);
  }

  park(bytes, front = false) {
    if (front) this.parked.unshift(bytes);
    else this.parked.push(bytes);
    this.parkedBytes += bytes.length;
    if (this.paused) return;
    if (this.transport.canPause) {
      if (this.parkedBytes > LIMITS.pauseAbove) {
        this.paused = true;
        this.transport.pause();
      }
    } else if (this.parkedBytes > this.receiveLimit) {
      this.fail(
        new TlsError(
          'receive-overflow',
          `more than ${this.receiveLimit} bytes arrived while the application was not reading, over a transport that cannot pause (a browser WebSocket): read faster, raise receiveBufferLimit, or use Wisp or WebSocketStream for backpressure`,
        ),
      );
    }
  }

  /** The reader has room: parked bytes first, then what the pipe holds, then EOF. */
  drain() {
    if (!this.pipe || this.stopped) return;
    let budget = this.budget();
    while (this.parked.length > 0 && budget > 0 && !this.stopped) {
      const head = this.parked.shift();
      this.parkedBytes -= head.length;
      this.feed(head, budget);
      budget = this.budget();
    }
    if (this.stopped) return;
    if (this.parked.length === 0 && this.coreMayHold && budget > 0 && this.state !== 'handshaking') {
      this.feed(EMPTY, budget);
    }
    if (this.paused && this.parkedBytes < LIMITS.resumeBelow) {
      this.paused = false;
      this.transport.resume();
    }
    if (this.eof && !this.eofDelivered && this.parked.length === 0 && !this.stopped) {
      this.eofDelivered = true;
      this.apply(guard(() => this.pipe.receiveEof()));
      if (!this.stopped) this.feed(EMPTY, this.budget());
    }
  }

  /** Sends a step's ciphertext, delivers its plaintext, and reports a new state. */
  apply(step) {
    if (step.ciphertext) {
      if (this.trace) this.trace({ step: 'want-write', bytes: step.ciphertext.length });
      this.transport.send(step.ciphertext);
    }
    if (step.plaintext) this.app.deliver(step.plaintext);
    if (step.state !== this.state) {
      const peerClosed = step.state === 'closed' && this.state === 'open';
      this.state = step.state;
      // The peer's close_notify gets ours before the transport closes (RFC 8446 §6.1);
      // after our own close it is already sent, and close() adds nothing.
      if (peerClosed) this.sendCloseReply();
      if (step.state === 'closed' || step.state === 'failed') this.stop();
      this.app.onState(step.state, step);
      if (step.state === 'open') this.pumpWrites();
    }
  }

  // ---- sending ----

  /** Queues `bytes` (a Uint8Array the caller will not change until this resolves). */
  write(bytes) {
    return new Promise((resolve, reject) => {
      this.writes.push({ bytes, offset: 0, resolve, reject });
      this.pumpWrites();
    });
  }

  async pumpWrites() {
    if (this.writing) return;
    this.writing = true;
    try {
      let sliceStart = performance.now();
      while (this.writes.length > 0 && this.state === 'open' && !this.stopped) {
        const w = this.writes[0];
        while (w.offset < w.bytes.length) {
          // A drain may come as a microtask of the same task (WebSocketStream), so only a
          // yield starts a new slice of work.
          if (this.transport.bufferedAmount > LIMITS.sendHighWater) {
            await this.transport.drained(LIMITS.sendHighWater);
          }
          if (performance.now() - sliceStart > LIMITS.sliceMs) {
            await yieldToEventLoop();
            sliceStart = performance.now();
          }
          if (this.state !== 'open' || this.stopped) return;
          const piece = w.bytes.subarray(w.offset, w.offset + LIMITS.writePiece);
          const step = guard(() => this.pipe.send(piece));
          w.offset += step.consumed;
          this.apply(step);
          if (step.consumed === 0) return;
        }
        this.writes.shift();
        // Resolved once the transport's queue is short again, as a WebSocket writer expects.
        await this.transport.drained(LIMITS.sendHighWater);
        w.resolve();
      }
    } catch (err) {
      this.fail(err instanceof TlsError ? err : new TlsError('invalid-state', String(err && err.message ? err.message : err)));
    } finally {
      this.writing = false;
    }
  }

  /** Queues close_notify (nothing, for plaintext); the writable calls it after its writes. */
  closeWrite() {
    if (this.stopped || !this.pipe || this.state !== 'open') return;
    this.apply(guard(() => this.pipe.close()));
  }

  sendCloseReply() {
    try {
      const reply = this.pipe.close();
      if (reply.ciphertext) this.transport.send(reply.ciphertext);
    } catch {
      // The connection is over either way; the reply is a courtesy.
    }
  }

  /** Rejects the writes not yet taken. */
  rejectWrites(error) {
    for (const w of this.writes) w.reject(error);
    this.writes = [];
  }

  fail(error) {
    if (this.stopped) return;
    this.stop();
    this.app.onState('failed', { state: 'failed', error });
  }

  stop() {
    this.stopped = true;
    this.parked = [];
    this.parkedBytes = 0;
  }
}
