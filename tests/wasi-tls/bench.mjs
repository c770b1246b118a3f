// The figures of docs/benchmarks.md's wasi:tls section: handshake time and bulk
// throughput of the standard wasi:tls under the wasmtime CLI, wasmtime's own host
// implementation (`-S tls`) against our provider composed into the program, in the same
// run, against the same nginx on 127.0.0.1, alternating the two.
//
//   node tests/wasi-tls/bench.mjs [--rounds N] [--bulk-rounds N] [--bulk-mib N]
//
// after the "wasi:tls provider under wasmtime" stage of `cargo xtask test` has built
// target/wasi/. The consumer measures inside the guest (TIMING): `connect` alone, and
// the response from the request to the end of the stream. Prints a Markdown table.

import { stopAll } from '../browser/harness.mjs';
import * as servers from '../browser/servers.mjs';
import { makeAnchorPki, removeAnchorPki, viaHost, viaProvider } from './fixtures.mjs';

function option(name, fallback) {
  const at = process.argv.indexOf(name);
  return at === -1 ? fallback : Number(process.argv[at + 1]);
}
const ROUNDS = option('--rounds', 20);
const BULK_ROUNDS = option('--bulk-rounds', 5);
const BULK_MIB = option('--bulk-mib', 32);

function timing(run, what) {
  if (run.code !== 0) throw new Error(`${what} failed: ${run.stderr}`);
  const m = /timing: connect (\d+) us, response (\d+) bytes in (\d+) us/.exec(run.stderr);
  if (!m) throw new Error(`${what}: no timing line in ${run.stderr}`);
  return { connectUs: Number(m[1]), bytes: Number(m[2]), responseUs: Number(m[3]) };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const pki = makeAnchorPki();
try {
  const nginx = await servers.nginx(pki, { bigSize: BULK_MIB << 20 });
  const target = `127.0.0.1:${nginx.port}`;
  const ways = {
    host: (path) => viaHost(pki, [target, 'localhost', path], { TIMING: '1' }),
    provider: (path) => viaProvider([target, 'localhost', path], { WASM_TLS_ROOTS_PEM: pki.anchor, TIMING: '1' }),
  };
  const results = { host: { connect: [], wall: [], mibps: [] }, provider: { connect: [], wall: [], mibps: [] } };
  for (const name of Object.keys(ways)) await ways[name]('/'); // warm wasmtime's compilation cache
  for (let i = 0; i < ROUNDS; i++) {
    for (const name of Object.keys(ways)) {
      const started = process.hrtime.bigint();
      const t = timing(await ways[name]('/'), name);
      results[name].wall.push(Number(process.hrtime.bigint() - started) / 1e6);
      results[name].connect.push(t.connectUs / 1000);
    }
  }
  for (let i = 0; i < BULK_ROUNDS; i++) {
    for (const name of Object.keys(ways)) {
      const t = timing(await ways[name]('/big.bin'), name);
      if (t.bytes < BULK_MIB << 20) throw new Error(`${name}: short response (${t.bytes} bytes)`);
      results[name].mibps.push(t.bytes / 1048576 / (t.responseUs / 1e6));
    }
  }
  const f = (x, d = 1) => x.toFixed(d);
  console.log(`| wasi:tls under wasmtime 48.0.8, nginx on 127.0.0.1 (TLS 1.3) | wasmtime's host implementation (\`-S tls\`) | our provider, composed (\`wac plug\`) |`);
  console.log('|---|---:|---:|');
  const row = (label, key, digits) => console.log(`| ${label} | ${f(median(results.host[key]), digits)} | ${f(median(results.provider[key]), digits)} |`);
  row(`handshake: \`connect\`, median of ${ROUNDS} (ms)`, 'connect', 2);
  row(`one \`wasmtime run\` with a GET of a short page, median of ${ROUNDS} (ms)`, 'wall', 1);
  row(`bulk: ${BULK_MIB} MiB GET, median of ${BULK_ROUNDS} (MiB/s)`, 'mibps', 0);
} finally {
  await servers.stopServers();
  stopAll();
  removeAnchorPki(pki);
}
