// Every error code the package can report, once: what it means and what to do about it.
// `core` codes come from the TLS core (Rust's `Error::code()`, the WIT `error-code` enum);
// `package` codes from this package's transports and socket. tests/types/check-codes.mjs
// checks this list against Rust, the WIT enum, index.d.ts's TlsErrorCode, every
// `new TlsError(...)` in the package, and the table in README.md (which it writes).

export const ERROR_CODES = Object.freeze({
  'certificate-expired': ['core', 'The server\'s certificate has expired.', 'The server must renew it; check the client\'s clock too.'],
  'certificate-not-yet-valid': ['core', 'The server\'s certificate is not valid yet.', 'Check the client\'s clock; else the server must use a current certificate.'],
  'certificate-name-mismatch': ['core', 'The certificate is not valid for the name connected to.', 'Connect by a name the certificate lists, or set `serverName` to one.'],
  'certificate-self-signed': ['core', 'The server sent a single self-signed certificate that is not trusted.', 'Pass that certificate (or its CA) in `ca`.'],
  'certificate-unknown-issuer': ['core', 'The chain does not reach a trusted root: it ends in an untrusted root, or at an issuer neither sent nor trusted (a CA not trusted here, or an intermediate the server does not send); the message names the issuer.', 'Pass that CA in `ca`; if it is a public CA, the server must send its intermediate.'],
  'certificate-revoked': ['core', 'A certificate in the chain has been revoked.', 'The server must replace it.'],
  'certificate-invalid-purpose': ['core', 'The certificate may not authenticate a TLS server.', 'The server must use a certificate issued for serverAuth.'],
  'certificate-bad-signature': ['core', 'A signature in the chain or the handshake does not verify.', 'The server\'s chain or key is wrong, or something altered the handshake.'],
  'certificate-invalid': ['core', 'Another certificate problem (unreadable, unsupported algorithm …); the message says which.', 'Read the message; the server\'s certificate must change.'],
  'peer-alert': ['core', 'The server ended the handshake or connection with a fatal alert; the message names it.', 'Read the alert: often a version, cipher or client-certificate mismatch.'],
  'protocol-version': ['core', 'No TLS version in common with the server.', 'The server must support TLS 1.2 or 1.3; check `minVersion`/`maxVersion`.'],
  'handshake-failure': ['core', 'Client and server could not agree on parameters (cipher suites, groups, signatures).', 'The server\'s TLS configuration must offer modern parameters.'],
  'client-certificate-required': ['core', 'The server requires a client certificate and accepted none.', 'Pass `cert` and `key`.'],
  'no-application-protocol': ['core', 'No ALPN protocol in common with the server.', 'Change `alpn` to a protocol the server speaks.'],
  'protocol-violation': ['core', 'The server broke the TLS protocol.', 'A server bug or something that is not a TLS server; check the port.'],
  'decrypt-error': ['core', 'A record failed to decrypt or authenticate: the data was altered on the way.', 'Retry; if it persists, something between client and server alters bytes.'],
  'unexpected-eof': ['core', 'The connection ended during the TLS handshake.', 'The server is not speaking TLS on that port, or closed on purpose; check the target and its logs.'],
  truncated: ['core', 'The connection ended after the handshake without close_notify: the data may be incomplete.', 'Treat what was read as possibly incomplete; retry if needed.'],
  'invalid-config': ['core', 'An option is wrong (a bad PEM, an unknown version, a malformed target or URL …).', 'Fix the option the message names.'],
  'invalid-state': ['core', 'A call the connection\'s state does not allow (write after close, startTls twice …).', 'Fix the calling code; the connection itself is unaffected.'],
  'invalid-input': ['core', 'A write of something other than a string, an ArrayBuffer or a view.', 'Pass bytes or a string; only that write is rejected.'],
  tls: ['core', 'Another TLS failure; the message says what.', 'Read the message.'],
  'relay-refused': ['package', 'The relay or Wisp server refused the target by its policy, or refused the client (authentication, limits).', 'Allow the target in the relay\'s configuration, or pass `wispAuth`.'],
  'target-unreachable': ['package', 'The relay could not open the TCP connection to the target: refused, unreachable, timed out, or the name did not resolve.', 'Check the target\'s host and port, and that the relay can reach it.'],
  'transport-closed': ['package', 'The WebSocket (or Wisp stream) to the relay could not be opened or was dropped; the message names the URL or the reason.', 'Check the relay\'s URL and that it is up; reconnect.'],
  'transport-error': ['package', 'The transport broke its own protocol (a text frame, a malformed Wisp packet), or a `transport` stream failed.', 'The relay is not a wasm-tls or websockify relay, or not a Wisp server; check the URL.'],
  timeout: ['package', 'The TLS handshake (`handshakeTimeout`, 30 s by default) or the Wisp handshake did not complete in time.', 'Check that the target speaks TLS on that port; raise `handshakeTimeout` for slow links.'],
  'receive-overflow': ['package', 'More than `receiveBufferLimit` bytes arrived while the application was not reading, over a transport that cannot push back.', 'Read faster, raise `receiveBufferLimit`, or use Wisp or WebSocketStream.'],
  'send-overflow': ['package', 'More than 16 MiB waited for Wisp credit the server never granted.', 'The Wisp server is stuck or overloaded.'],
  aborted: ['package', 'The socket was closed, or its writable aborted, before the operation completed.', 'Expected after close() or abort(); else see the reason in the message.'],
  'http-protocol': ['package', 'The HTTP server broke HTTP/1.1, HTTP/2 or the WebSocket protocol (a malformed response, a reset stream, a refused Upgrade), or the connection ended in the middle of a response; the message says what.', 'Check that the URL points at an HTTP server; retry if the connection dropped.'],
  'too-many-redirects': ['package', 'fetch() met more than 20 redirects in a row, or a redirect under `redirect: \'error\'`.', 'Fix the redirect loop on the server, or pass `redirect: \'manual\'` and follow them yourself.'],
  panic: ['package', 'The WebAssembly module failed internally; the module is unusable after.', 'Please report it with the message; reload the module.'],
});
