// The package's Wisp wire format (pkg/src/wisp/wire.js) against the vectors it shares
// with the relay (tests/wisp-vectors.json, also run by relay/src/wisp/wire.rs): each
// valid vector decodes to its fields and its fields encode to its bytes; each malformed
// one is rejected by the decoder it names.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as wire from '../../pkg/src/wisp/wire.js';

const doc = JSON.parse(readFileSync(new URL('../wisp-vectors.json', import.meta.url), 'utf8'));

function hex(s) {
  const digits = s.replace(/\s+/g, '');
  assert.equal(digits.length % 2, 0, `odd hex ${s}`);
  return Uint8Array.from(digits.match(/../g) || [], (b) => parseInt(b, 16));
}

function hexOf(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Checks a decoded extension against its vector; returns the body its fields encode to. */
function checkExtension(name, got, want) {
  assert.equal(got.id, want.id, `${name}: extension id`);
  assert.equal(hexOf(got.body), hexOf(hex(want.body)), `${name}: extension body`);
  if ('passwordRequired' in want) {
    assert.equal(wire.passwordRequired(got.body), want.passwordRequired, name);
    return Uint8Array.of(want.passwordRequired ? 1 : 0);
  }
  if ('password' in want) {
    const { user, pass } = want.password;
    assert.deepEqual(wire.decodePassword(got.body), { username: user, password: pass }, name);
    const built = wire.passwordExtension(user, pass);
    assert.equal(built.id, wire.EXT_PASSWORD, name);
    return built.body;
  }
  if ('clientCredit' in want) {
    if (want.clientCredit === null) {
      // The server's offer.
      assert.equal(got.body.length, 0, name);
      return new Uint8Array(0);
    }
    assert.equal(wire.decodeClientCredit(got.body), want.clientCredit, name);
    const built = wire.clientCreditExtension(want.clientCredit);
    assert.equal(built.id, wire.EXT_CLIENT_CREDIT, name);
    return built.body;
  }
  // An extension this side does not know: its raw body.
  return got.body;
}

/** Decodes `bytes` as the vector says; returns what encoding its fields gives. */
function checkValid(name, bytes, v) {
  const p = wire.decodePacket(bytes);
  assert.equal(p.type, v.type, `${name}: type`);
  assert.equal(p.streamId, v.stream, `${name}: stream`);
  assert.equal(p.payload.buffer, bytes.buffer, `${name}: the payload is a view, not a copy`);
  if (v.connect) {
    assert.deepEqual(wire.decodeConnect(p.payload), v.connect, name);
    // Clients here open TCP streams only: other types are decodeOnly.
    return v.connect.streamType === wire.STREAM_TCP ? wire.encodeConnect(v.stream, v.connect.host, v.connect.port) : null;
  }
  if ('data' in v) {
    assert.equal(p.type, wire.PACKET.DATA, name);
    assert.equal(hexOf(p.payload), hexOf(hex(v.data)), `${name}: data`);
    return wire.encodeData(v.stream, hex(v.data));
  }
  if ('payload' in v) {
    assert.equal(hexOf(p.payload), hexOf(hex(v.payload)), `${name}: payload`);
    return wire.encodePacket(v.type, v.stream, hex(v.payload));
  }
  if ('credit' in v) {
    assert.equal(p.type, wire.PACKET.CONTINUE, name);
    assert.equal(wire.decodeContinue(p.payload), v.credit, name);
    return wire.encodeContinue(v.stream, v.credit);
  }
  if ('reason' in v) {
    assert.equal(p.type, wire.PACKET.CLOSE, name);
    assert.equal(wire.decodeClose(p.payload), v.reason, name);
    return wire.encodeClose(v.stream, v.reason);
  }
  if (v.info) {
    assert.equal(p.type, wire.PACKET.INFO, name);
    const info = wire.decodeInfo(p.payload);
    assert.equal(info.major, v.info.major, `${name}: major`);
    assert.equal(info.minor, v.info.minor, `${name}: minor`);
    assert.equal(info.extensions.length, v.info.extensions.length, `${name}: extensions`);
    const extensions = info.extensions.map((got, i) => ({
      id: got.id,
      body: checkExtension(name, got, v.info.extensions[i]),
    }));
    return wire.encodeInfo({ major: info.major, minor: info.minor, extensions });
  }
  assert.fail(`${name}: the vector gives no fields`);
}

const decoders = {
  connect: (p) => wire.decodeConnect(p),
  continue: (p) => wire.decodeContinue(p),
  info: (p) => wire.decodeInfo(p),
  password: (p) => wire.decodePassword(wire.decodeInfo(p).extensions.find((e) => e.id === wire.EXT_PASSWORD).body),
  clientCredit: (p) =>
    wire.decodeClientCredit(wire.decodeInfo(p).extensions.find((e) => e.id === wire.EXT_CLIENT_CREDIT).body),
};

test('the shared vectors cover every packet type and both extensions', () => {
  assert.ok(doc.vectors.length >= 30, `only ${doc.vectors.length} vectors`);
  const types = new Set(doc.vectors.filter((v) => !v.malformed).map((v) => v.type));
  for (const t of Object.values(wire.PACKET)) assert.ok(types.has(t), `no vector of type ${t}`);
  const ids = new Set(doc.vectors.flatMap((v) => (v.info ? v.info.extensions.map((e) => e.id) : [])));
  assert.ok(ids.has(wire.EXT_PASSWORD) && ids.has(wire.EXT_CLIENT_CREDIT));
  const stages = new Set(doc.vectors.map((v) => v.malformed).filter(Boolean));
  for (const s of ['packet', ...Object.keys(decoders)]) assert.ok(stages.has(s), `no malformed vector for ${s}`);
});

for (const v of doc.vectors) {
  test(`${v.malformed ? 'rejects' : 'decodes and encodes'}: ${v.name}`, () => {
    const bytes = hex(v.hex);
    if (v.malformed) {
      if (v.malformed === 'packet') {
        assert.throws(() => wire.decodePacket(bytes), wire.WireError);
        return;
      }
      const { payload } = wire.decodePacket(bytes);
      assert.throws(() => decoders[v.malformed](payload), wire.WireError);
      return;
    }
    const encoded = checkValid(v.name, bytes, v);
    if (!v.decodeOnly) assert.equal(hexOf(encoded), hexOf(bytes), `${v.name}: encoding`);
  });
}

test('encoders refuse what cannot be sent', () => {
  assert.throws(() => wire.passwordExtension('', 'pw'), wire.WireError);
  assert.throws(() => wire.passwordExtension('u'.repeat(256), 'pw'), wire.WireError);
  assert.throws(() => wire.passwordExtension('é'.repeat(128), 'pw'), wire.WireError); // 256 bytes
  assert.throws(() => wire.passwordExtension('u', 'p'.repeat(65536)), wire.WireError);
  assert.equal(wire.passwordExtension('u'.repeat(255), 'p'.repeat(65535)).body.length, 3 + 255 + 65535);
  assert.throws(() => wire.clientCreditExtension(0), wire.WireError);
  assert.throws(() => wire.clientCreditExtension(2 ** 32), wire.WireError);
  assert.throws(() => wire.encodeContinue(1, -1), wire.WireError);
  assert.throws(() => wire.encodePacket(wire.PACKET.DATA, 2 ** 32, new Uint8Array(0)), wire.WireError);
  assert.throws(() => wire.encodeConnect(1, 'example.com', 65536), wire.WireError);
  assert.throws(() => wire.encodeClose(1, 256), wire.WireError);
  assert.throws(() => wire.decodePacket([2, 1, 0, 0, 0]), wire.WireError);
});

test('decoding works on views into larger buffers', () => {
  const backing = new Uint8Array(64);
  const packet = wire.encodeContinue(0xdeadbeef, 0x01020304);
  backing.set(packet, 7);
  const p = wire.decodePacket(backing.subarray(7, 7 + packet.length));
  assert.equal(p.streamId, 0xdeadbeef);
  assert.equal(wire.decodeContinue(p.payload), 0x01020304);
});

test('the close reasons and refusals', () => {
  for (const r of wire.REFUSAL_REASONS) assert.ok(wire.CLOSE_REASON_TEXT[r], `no text for ${r}`);
  assert.ok(!wire.REFUSAL_REASONS.has(0x02) && !wire.REFUSAL_REASONS.has(0x03));
  assert.equal(wire.HEADER_LENGTH, 5);
});
