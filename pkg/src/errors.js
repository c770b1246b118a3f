// The package's error type. Every failure the package reports is a TlsError with a
// stable `code`; the wasm module throws the same shape for the core's errors.

/** An Error with a stable `code` (and, for TLS failures, OpenSSL's class as `sslError`). */
export class TlsError extends Error {
  constructor(code, message, sslError) {
    super(message);
    this.name = 'TlsError';
    this.code = code;
    if (sslError) this.sslError = sslError;
  }
}

/** Whatever was thrown or passed as a reason, as a TlsError. */
export function asTlsError(reason, fallbackCode = 'aborted') {
  if (reason instanceof TlsError) return reason;
  if (reason instanceof Error && typeof reason.code === 'string' && reason.name === 'TlsError') return reason;
  const message = reason instanceof Error ? reason.message : String(reason);
  return new TlsError(fallbackCode, message);
}
