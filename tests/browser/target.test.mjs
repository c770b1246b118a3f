// The package's target parsing against the vectors the relay and tls-client run too
// (tests/target-vectors.json).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseTarget, formatTarget } from '../../pkg/src/target.js';

const doc = JSON.parse(readFileSync(new URL('../target-vectors.json', import.meta.url), 'utf8'));

test('valid targets give the same host and port as in the relay and tls-client', () => {
  for (const c of doc.valid) {
    const { host, port } = parseTarget(c.input);
    assert.equal(host, c.host, c.input);
    assert.equal(port, c.port, c.input);
    assert.equal(formatTarget(host, port), c.target, c.input);
  }
});

test('invalid targets are refused with invalid-config', () => {
  for (const input of doc.invalid) {
    assert.throws(() => parseTarget(input), (err) => err.code === 'invalid-config', `accepted "${input}"`);
  }
});
