// Writers waiting for a transport's send queue to drain: each waits for the queue to
// fall to its own limit, or for the transport to close.

export class DrainWaiters {
  /** `state()` returns { amount, closed } for the transport now. */
  constructor(state) {
    this._state = state;
    this._waiters = [];
  }

  get waiting() {
    return this._waiters.length > 0;
  }

  /** Resolves once at most `limit` bytes wait to be sent, or the transport closed. */
  wait(limit) {
    const { amount, closed } = this._state();
    if (closed || amount <= limit) return Promise.resolve();
    return new Promise((resolve) => this._waiters.push({ limit, resolve }));
  }

  /** Resolves the waiters whose limit is now met. */
  wake() {
    if (this._waiters.length === 0) return;
    const { amount, closed } = this._state();
    this._waiters = this._waiters.filter((w) => {
      if (closed || amount <= w.limit) {
        w.resolve();
        return false;
      }
      return true;
    });
  }
}
