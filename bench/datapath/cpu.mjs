// CPU time of this process's tree (Chromium's processes and threads, the relay, the
// servers, the Node client) and of the whole machine, from /proc, to say which process
// or thread a transfer kept busy. Linux only; elsewhere the figures are missing.

import { readFileSync, readdirSync } from 'node:fs';

const TICK = 100; // USER_HZ: /proc counts CPU time in 1/100 s on Linux

function stat(path) {
  try {
    const text = readFileSync(path, 'utf8');
    const close = text.lastIndexOf(')');
    const comm = text.slice(text.indexOf('(') + 1, close);
    const f = text.slice(close + 2).split(' ');
    // f[0] is field 3 (state): utime is field 14, stime 15, cutime 16, cstime 17.
    return { comm, ppid: Number(f[1]), own: Number(f[11]) + Number(f[12]), children: Number(f[13]) + Number(f[14]) };
  } catch {
    return null;
  }
}

const cmdlines = new Map();
function cmdline(pid) {
  if (!cmdlines.has(pid)) {
    let text = '';
    try {
      text = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
    } catch {}
    cmdlines.set(pid, text);
  }
  return cmdlines.get(pid);
}

/** What a process is, from its command line. */
function role(pid, rootPid) {
  if (pid === rootPid) return 'driver';
  const c = cmdline(pid);
  if (/wasm-tls-relay/.test(c)) return 'relay';
  if (/examples\/test_server/.test(c)) return 'TLS server';
  if (/plain-server\.mjs/.test(c)) return 'plain server';
  if (/hold-forwarder\.mjs/.test(c)) return 'forwarder';
  if (/websockify/.test(c)) return 'websockify';
  if (/nginx/.test(c)) return 'nginx';
  if (/node-client\.mjs/.test(c)) return 'Node client';
  if (/chrom/.test(c)) {
    if (/--type=renderer/.test(c)) return 'renderer';
    if (/--utility-sub-type=network\./.test(c)) return 'network service';
    if (/--type=gpu-process/.test(c)) return 'GPU process';
    if (/--type=/.test(c)) return 'Chromium (other)';
    return 'Chromium browser';
  }
  return 'other';
}

/** Roles whose threads are listed (to find a saturated thread). */
const THREADED = new Set(['driver', 'nginx', 'renderer', 'network service', 'Chromium browser', 'relay', 'Node client', 'websockify', 'TLS server']);

/** A snapshot of CPU ticks: per process and thread of the tree under `rootPid`, and the machine's. */
export function snapshot(rootPid = process.pid) {
  const procs = new Map();
  let pids = [];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
  } catch {
    return null;
  }
  const children = new Map();
  for (const pid of pids) {
    const s = stat(`/proc/${pid}/stat`);
    if (!s) continue;
    procs.set(pid, s);
    if (!children.has(s.ppid)) children.set(s.ppid, []);
    children.get(s.ppid).push(pid);
  }
  const out = { at: performance.now(), procs: new Map(), machine: machine() };
  const queue = [rootPid];
  while (queue.length) {
    const pid = queue.shift();
    const s = procs.get(pid);
    if (!s) continue;
    const r = role(pid, rootPid);
    const entry = { role: r, ticks: s.own + s.children, threads: new Map() };
    if (THREADED.has(r)) {
      try {
        for (const tid of readdirSync(`/proc/${pid}/task`)) {
          const t = stat(`/proc/${pid}/task/${tid}/stat`);
          if (t) entry.threads.set(Number(tid), { name: Number(tid) === pid ? `${r} main thread` : `${r}: ${t.comm}`, ticks: t.own });
        }
      } catch {}
    }
    out.procs.set(pid, entry);
    for (const c of children.get(pid) || []) queue.push(c);
  }
  return out;
}

function machine() {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = line[3] + (line[4] || 0);
    const all = line.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: all - idle, all };
  } catch {
    return null;
  }
}

/**
 * CPUs each role kept busy between two snapshots (CPU seconds per second of wall
 * time), the busiest threads, and what processes outside the tree used.
 */
export function usage(a, b) {
  if (!a || !b) return null;
  const wall = (b.at - a.at) / 1000;
  if (wall <= 0) return null;
  const roles = {};
  const threads = [];
  let ours = 0;
  for (const [pid, p] of b.procs) {
    const before = a.procs.get(pid);
    const d = p.ticks - (before ? before.ticks : 0);
    ours += d;
    roles[p.role] = (roles[p.role] || 0) + d / TICK / wall;
    for (const [tid, t] of p.threads) {
      const tb = before && before.threads.get(tid);
      const dt = t.ticks - (tb ? tb.ticks : 0);
      if (dt > 0) threads.push({ name: t.name, cpus: dt / TICK / wall });
    }
  }
  // Processes that exited in between took their ticks with them (unless reaped into a parent's).
  threads.sort((x, y) => y.cpus - x.cpus);
  let machineCpus = null;
  let others = null;
  if (a.machine && b.machine) {
    const all = b.machine.all - a.machine.all;
    const busy = b.machine.busy - a.machine.busy;
    const cpus = all / TICK / wall; // how many CPUs the machine has, as /proc/stat counts
    machineCpus = { busy: busy / TICK / wall, of: Math.round(cpus) };
    others = Math.max(0, (busy - ours) / TICK / wall);
  }
  const r = Object.fromEntries(Object.entries(roles).filter(([, v]) => v >= 0.005).sort((x, y) => y[1] - x[1]));
  return { wall, roles: r, threads: threads.slice(0, 6), machine: machineCpus, others };
}
