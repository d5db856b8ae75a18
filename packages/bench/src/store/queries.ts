// Query-side measurements: LogCaster's answer time for a command against grep and ripgrep
// over the same lines as files, each answer's count compared so a fast wrong answer shows.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';

import { median, queryLine, sleep } from '../util';

export interface Timed {
  seconds: number;
  count: number;
}

export interface ToolTimes {
  /** medians of the repeats */
  seconds: number;
  count: number;
  runs: number[];
}

/** Streams a file into an ingest port, half-closes, resolves when the server has closed. */
export function sendFile(port: number, file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.on('connect', () => fs.createReadStream(file, { highWaterMark: 1 << 20 }).pipe(s));
    s.on('data', () => undefined);
    s.on('error', reject);
    s.on('close', () => resolve());
  });
}

export async function statsValue(queryPort: number, field: string): Promise<number> {
  const s = await queryLine(queryPort, 'STATS', 30000);
  const m = new RegExp(`\\b${field}=(\\d+)`).exec(s);
  if (!m) throw new Error(`STATS has no ${field}=`);
  return Number(m[1]);
}

/** Waits until STATS <field> reaches n (or stops moving for stallMs). Returns the last value. */
export async function waitStat(queryPort: number, field: string, n: number, stallMs = 10000): Promise<number> {
  let last = -1;
  let moved = Date.now();
  for (;;) {
    const v = await statsValue(queryPort, field);
    if (v >= n) return v;
    if (v !== last) moved = Date.now();
    else if (Date.now() - moved > stallMs) return v;
    last = v;
    await sleep(50);
  }
}

/** One query-port command: seconds from sending it to the last byte of its answer, and its
 *  FOUND count (the lines are read and counted too). */
export function timeQuery(queryPort: number, command: string, timeoutMs = 600000): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port: queryPort });
    let t0 = 0n;
    let head = '';
    let found = -1;
    let newlines = 0;
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`${command}: no complete answer in ${timeoutMs} ms`));
    }, timeoutMs);
    s.on('connect', () => {
      t0 = process.hrtime.bigint();
      s.write(`${command}\nQUIT\n`);
    });
    s.on('data', (d: Buffer) => {
      if (found < 0) {
        head += d.toString('latin1', 0, Math.min(d.length, 256));
        const m = /^(?:FOUND: (\d+) matches|(ERROR: .*))\r?\n/.exec(head);
        if (m?.[2]) {
          clearTimeout(timer);
          s.destroy();
          reject(new Error(`${command}: ${m[2]}`));
          return;
        }
        if (m) found = Number(m[1]);
      }
      for (let i = d.indexOf(10); i >= 0; i = d.indexOf(10, i + 1)) newlines++;
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    s.on('close', () => {
      clearTimeout(timer);
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (found < 0) reject(new Error(`${command}: no FOUND line`));
      else if (newlines - 1 < found) reject(new Error(`${command}: FOUND ${found} but ${newlines - 1} lines came`));
      else resolve({ seconds, count: found });
    });
  });
}

/** A program that prints match counts (grep -c / rg -c, one count per file): wall time and their sum. */
export function timeProgram(cmd: string, args: string[]): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      // grep -c exits 1 when nothing matched: still a valid count
      if (code !== 0 && code !== 1) return reject(new Error(`${cmd} exited ${code}: ${err.trim()}`));
      const count = out
        .split('\n')
        .filter(Boolean)
        .reduce((a, l) => a + Number(l.slice(l.lastIndexOf(':') + 1)), 0);
      resolve({ seconds, count });
    });
  });
}

export async function repeat(n: number, f: () => Promise<Timed>): Promise<ToolTimes> {
  const runs: Timed[] = [];
  await f(); // warm: page cache, JIT, worker start-up
  for (let i = 0; i < n; i++) runs.push(await f());
  const counts = new Set(runs.map((r) => r.count));
  if (counts.size !== 1) throw new Error(`the count changed between repeats: ${[...counts].join(', ')}`);
  return { seconds: median(runs.map((r) => r.seconds)), count: runs[0].count, runs: runs.map((r) => r.seconds) };
}
