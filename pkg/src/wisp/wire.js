// The Wisp wire format, without I/O: packets and the extension records of the v2
// handshake (MercuryWorkshop's Wisp v1 and v2). The relay's relay/src/wisp/wire.rs is
// the same format for the server side; both run the vectors of tests/wisp-vectors.json.
//
// Every packet is one binary WebSocket message: type (u8), stream id (u32 LE), payload.
// Little-endian throughout.
//
//   CONNECT  0x01  stream type (u8: 0x01 TCP, 0x02 UDP), port (u16), host (UTF-8, the rest)
//   DATA     0x02  bytes of the stream
//   CONTINUE 0x03  credit (u32)
//   CLOSE    0x04  reason (u8)
//   INFO     0x05  major (u8), minor (u8), extension records: id (u8), length (u32), body
//
// Extensions: 0x02 password authentication (the server's body is one byte, non-zero
// when credentials are required, and an empty body means required; the client's is
// username length (u8), password length (u16), username, password), and
// EXT_CLIENT_CREDIT, wasm-tls-relay's own.
//
// Client credit (EXT_CLIENT_CREDIT, 0xE0). Wisp's CONTINUE lets the server slow the
// client down per stream, but nothing lets a client slow one stream down: the server
// sends each target's bytes as fast as the WebSocket takes them. With this extension
// the client grants the server credit per stream, in DATA packets:
// - The server offers it in its INFO with an empty body. A client accepts by listing
//   it in its INFO reply with a body of at least 4 bytes: the initial credit of every
//   stream (u32, non-zero). Later bytes are reserved and ignored. A shorter body or a
//   zero credit is a protocol violation.
// - Once accepted, for each stream opened after the client's INFO the server sends at
//   most that many DATA packets until the client grants more. The client grants with
//   a CONTINUE on that stream, of the same layout as the server's, whose u32 is an
//   increment added to the stream's credit (as HTTP/2's WINDOW_UPDATE), not the
//   absolute "buffer remaining" of the server's CONTINUE: an absolute value would race
//   with the packets in flight. Credit saturates at 2^32 - 1.
// - While a stream has no credit the server does not read its target, so the target's
//   TCP window fills and it slows down; the other streams of the WebSocket keep
//   flowing. A DATA packet carries at most 64 KiB, so a client buffers at most
//   credit × 64 KiB per stream.
// - Without the extension nothing changes, and a client's CONTINUE means nothing.
// The id: 0x01 (UDP), 0x02 (password), 0x03 (certificate authentication) and 0x04
// (server MOTD) are MercuryWorkshop's, which numbers its extensions from 0x01 upwards;
// 0xF0 has been used by other implementations. 0xE0 is far from both, where neither is
// likely to grow.
//
// Pure: no I/O and no state; TextEncoder, TextDecoder and DataView are the only
// globals used.

export const PACKET = { CONNECT: 0x01, DATA: 0x02, CONTINUE: 0x03, CLOSE: 0x04, INFO: 0x05 };
export const STREAM_TCP = 0x01;
export const EXT_PASSWORD = 0x02;
export const EXT_CLIENT_CREDIT = 0xe0;
export const HEADER_LENGTH = 5;

export const CLOSE_REASON_TEXT = {
  0x01: 'reason unspecified',
  0x02: 'closed voluntarily',
  0x03: 'a network error',
  0x04: 'incompatible extensions',
  0x41: 'invalid destination (address or port)',
  0x42: 'the destination host is unreachable',
  0x43: 'the connection to the destination timed out',
  0x44: 'the destination refused the connection',
  0x47: 'the data transfer timed out',
  0x48: 'the destination is blocked by the server',
  0x49: 'throttled (too many streams)',
  0x81: 'client error',
  0xc0: 'wrong username or password',
  0xc1: 'invalid signature',
  0xc2: 'credentials required',
};

// Reasons that mean the server did not (or no longer would) open the stream.
export const REFUSAL_REASONS = new Set([0x41, 0x42, 0x43, 0x44, 0x48, 0x49, 0xc0, 0xc1, 0xc2]);

/** Input that is not a well-formed Wisp packet or record, or a value that cannot be encoded. */
export class WireError extends Error {
  constructor(message) {
    super(message);
    this.name = 'WireError';
  }
}

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder('utf-8', { fatal: true });

function viewOf(bytes) {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function checkBytes(bytes, what) {
  if (!(bytes instanceof Uint8Array)) throw new WireError(`${what} must be a Uint8Array`);
}

function checkInt(n, max, what) {
  if (!Number.isInteger(n) || n < 0 || n > max) {
    throw new WireError(`${what} must be an integer from 0 to ${max}, not ${n}`);
  }
}

function utf8(bytes, what) {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    throw new WireError(`malformed ${what} (not UTF-8)`);
  }
}

/** Splits a message into header and payload; the payload is a view of `bytes`, not a copy. */
export function decodePacket(bytes) {
  checkBytes(bytes, 'a packet');
  if (bytes.length < HEADER_LENGTH) {
    throw new WireError(`malformed Wisp packet (${bytes.length} bytes, shorter than the 5-byte header)`);
  }
  return {
    type: bytes[0],
    streamId: viewOf(bytes).getUint32(1, true),
    payload: bytes.subarray(HEADER_LENGTH),
  };
}

/** Header and payload, in one new buffer. */
export function encodePacket(type, streamId, payload) {
  checkInt(type, 0xff, 'the packet type');
  checkInt(streamId, 0xffffffff, 'the stream id');
  checkBytes(payload, 'the payload');
  const p = new Uint8Array(HEADER_LENGTH + payload.length);
  p[0] = type;
  viewOf(p).setUint32(1, streamId, true);
  p.set(payload, HEADER_LENGTH);
  return p;
}

/** A CONNECT for a TCP stream to host:port. */
export function encodeConnect(streamId, host, port) {
  checkInt(port, 0xffff, 'the port');
  if (typeof host !== 'string') throw new WireError('the host must be a string');
  const name = encoder.encode(host);
  const payload = new Uint8Array(3 + name.length);
  payload[0] = STREAM_TCP;
  viewOf(payload).setUint16(1, port, true);
  payload.set(name, 3);
  return encodePacket(PACKET.CONNECT, streamId, payload);
}

/**
 * Reads a CONNECT's payload -> { streamType, host, port }. (A client never receives
 * one; here for the shared vectors and for tools.)
 */
export function decodeConnect(payload) {
  checkBytes(payload, 'a payload');
  if (payload.length < 3) {
    throw new WireError(
      `malformed CONNECT (${payload.length} payload bytes: a stream type and a 2-byte port come first)`,
    );
  }
  return {
    streamType: payload[0],
    host: utf8(payload.subarray(3), 'CONNECT (the host)'),
    port: viewOf(payload).getUint16(1, true),
  };
}

/** A DATA packet carrying `bytes`. */
export function encodeData(streamId, bytes) {
  return encodePacket(PACKET.DATA, streamId, bytes);
}

/** A CONTINUE carrying `credit` (the server's buffer left, or a client-credit increment). */
export function encodeContinue(streamId, credit) {
  checkInt(credit, 0xffffffff, 'the credit');
  const payload = new Uint8Array(4);
  viewOf(payload).setUint32(0, credit, true);
  return encodePacket(PACKET.CONTINUE, streamId, payload);
}

/** Reads a CONTINUE's credit; bytes after the first 4 are ignored. */
export function decodeContinue(payload) {
  checkBytes(payload, 'a payload');
  if (payload.length < 4) {
    throw new WireError(`malformed CONTINUE (${payload.length} payload bytes, fewer than 4)`);
  }
  return viewOf(payload).getUint32(0, true);
}

/** A CLOSE with `reason`. */
export function encodeClose(streamId, reason) {
  checkInt(reason, 0xff, 'the close reason');
  return encodePacket(PACKET.CLOSE, streamId, Uint8Array.of(reason));
}

/** Reads a CLOSE's reason; an empty payload gives no reason (0x01). */
export function decodeClose(payload) {
  checkBytes(payload, 'a payload');
  return payload.length > 0 ? payload[0] : 0x01;
}

/** An INFO packet (always on stream 0): version and extension records. */
export function encodeInfo({ major, minor, extensions = [] }) {
  checkInt(major, 0xff, 'the major version');
  checkInt(minor, 0xff, 'the minor version');
  let length = 2;
  for (const ext of extensions) {
    checkInt(ext.id, 0xff, 'an extension id');
    checkBytes(ext.body, 'an extension body');
    length += 5 + ext.body.length;
  }
  const payload = new Uint8Array(length);
  const view = viewOf(payload);
  payload[0] = major;
  payload[1] = minor;
  let at = 2;
  for (const ext of extensions) {
    payload[at] = ext.id;
    view.setUint32(at + 1, ext.body.length, true);
    payload.set(ext.body, at + 5);
    at += 5 + ext.body.length;
  }
  return encodePacket(PACKET.INFO, 0, payload);
}

/**
 * Reads an INFO's payload -> { major, minor, extensions: [{ id, body }] }; every byte
 * must belong to a whole record. Bodies are views of `payload`.
 */
export function decodeInfo(payload) {
  checkBytes(payload, 'a payload');
  if (payload.length < 2) {
    throw new WireError(`malformed INFO (${payload.length} payload bytes: the 2 version bytes come first)`);
  }
  const view = viewOf(payload);
  const extensions = [];
  let at = 2;
  while (at < payload.length) {
    const left = payload.length - at;
    if (left < 5) {
      throw new WireError(`malformed INFO (an extension record cut short: ${left} bytes of its 5-byte header)`);
    }
    const id = payload[at];
    const length = view.getUint32(at + 1, true);
    if (length > left - 5) {
      const hex = `0x${id.toString(16).padStart(2, '0')}`;
      throw new WireError(`malformed INFO (extension ${hex} claims ${length} bytes, ${left - 5} remain)`);
    }
    extensions.push({ id, body: payload.subarray(at + 5, at + 5 + length) });
    at += 5 + length;
  }
  return { major: payload[0], minor: payload[1], extensions };
}

/**
 * The client's password extension -> { id, body }. The username takes 1 to 255 bytes
 * of UTF-8, the password at most 65535.
 */
export function passwordExtension(username, password) {
  if (typeof username !== 'string' || typeof password !== 'string') {
    throw new WireError('the username and the password must be strings');
  }
  const user = encoder.encode(username);
  const pass = encoder.encode(password);
  if (user.length < 1 || user.length > 255 || pass.length > 65535) {
    throw new WireError('the username must be 1 to 255 bytes, the password at most 65535');
  }
  const body = new Uint8Array(3 + user.length + pass.length);
  body[0] = user.length;
  viewOf(body).setUint16(1, pass.length, true);
  body.set(user, 3);
  body.set(pass, 3 + user.length);
  return { id: EXT_PASSWORD, body };
}

/**
 * Reads the client's password extension body -> { username, password }. (A client
 * never receives one; here for the shared vectors and for tools.)
 */
export function decodePassword(body) {
  checkBytes(body, 'an extension body');
  if (body.length < 3) {
    throw new WireError(`malformed password extension (${body.length} bytes, shorter than its 3 length bytes)`);
  }
  const userLength = body[0];
  const passLength = viewOf(body).getUint16(1, true);
  if (body.length !== 3 + userLength + passLength) {
    throw new WireError(
      `malformed password extension (${body.length} bytes where its lengths say ${3 + userLength + passLength})`,
    );
  }
  return {
    username: utf8(body.subarray(3, 3 + userLength), 'password extension'),
    password: utf8(body.subarray(3 + userLength), 'password extension'),
  };
}

/** Whether the server's password extension body requires credentials (empty: it does). */
export function passwordRequired(body) {
  checkBytes(body, 'an extension body');
  return body.length === 0 || body[0] !== 0;
}

/** The client's acceptance of client credit -> { id, body }: every stream's initial credit. */
export function clientCreditExtension(initialCredit) {
  checkInt(initialCredit, 0xffffffff, 'the initial credit');
  if (initialCredit === 0) throw new WireError('the initial credit must be at least 1 packet');
  const body = new Uint8Array(4);
  viewOf(body).setUint32(0, initialCredit, true);
  return { id: EXT_CLIENT_CREDIT, body };
}

/** Reads the client's client-credit body: the initial credit (at least 1); later bytes are reserved. */
export function decodeClientCredit(body) {
  checkBytes(body, 'an extension body');
  if (body.length < 4) {
    throw new WireError(`malformed client credit extension (${body.length} bytes, fewer than 4)`);
  }
  const credit = viewOf(body).getUint32(0, true);
  if (credit === 0) throw new WireError('client credit extension with an initial credit of 0');
  return credit;
}
