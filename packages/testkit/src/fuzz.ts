// Fuzzing helpers: a seeded PRNG whose seed is printed and can be replayed, random
// splits of a byte stream, and the process figures (RSS, open fds) a fuzzer watches.
//
// Replay: every fuzz test prints `seed=<n>`; LOGCASTER_FUZZ_SEED=<n> runs it again with
// that seed. LOGCASTER_FUZZ_LONG=<seconds> makes the fuzzers run that long (hours, by
// hand) instead of their bounded CI budget.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** A small, fast, seeded PRNG (mulberry32): the same seed gives the same sequence. */
export class Rng {
  private state: number;
  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }
  /** A uniform 32-bit unsigned integer. */
  u32(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** A uniform float in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }
  /** An integer in [lo, hi] (both inclusive). */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.float() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  /** An item chosen with the given relative weights. */
  weighted<T>(choices: readonly (readonly [T, number])[]): T {
    let total = 0;
    for (const [, w] of choices) total += w;
    let x = this.float() * total;
    for (const [v, w] of choices) {
      if ((x -= w) < 0) return v;
    }
    return choices[choices.length - 1][0];
  }
  /** `n` random bytes. */
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }
  /** An independent generator, seeded from this one (one per client, so a client's
   *  behaviour does not depend on how others interleave). */
  fork(): Rng {
    return new Rng(this.u32());
  }
}

/** The seed of this run: LOGCASTER_FUZZ_SEED when set (to replay a failure), else a
 *  fresh one. `label` names the test in the printed line. */
export function fuzzSeed(label: string): number {
  const given = process.env.LOGCASTER_FUZZ_SEED;
  let seed: number;
  if (given !== undefined && given !== '') {
    seed = Number(given);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`LOGCASTER_FUZZ_SEED must be an integer 0..4294967295, got '${given}'`);
  } else {
    seed = (Math.random() * 0x100000000) >>> 0;
  }
  console.log(`      ${label}: seed=${seed} (replay: LOGCASTER_FUZZ_SEED=${seed})`);
  return seed;
}

/** Seconds the fuzzers should run by hand (LOGCASTER_FUZZ_LONG), or 0 in the bounded
 *  CI mode. */
export function fuzzLongSeconds(): number {
  const v = process.env.LOGCASTER_FUZZ_LONG;
  if (v === undefined || v === '') return 0;
  const s = Number(v);
  if (!(s > 0)) throw new Error(`LOGCASTER_FUZZ_LONG must be a number of seconds > 0, got '${v}'`);
  return s;
}

/** `data` cut at random places into at most `maxParts` parts (empty parts never
 *  appear; a part may be a single byte). Concatenated, they are `data` again. */
export function randomSplit(rng: Rng, data: Buffer, maxParts: number): Buffer[] {
  if (data.length <= 1 || maxParts <= 1) return [data];
  const cuts = new Set<number>();
  const want = rng.range(1, Math.min(maxParts, data.length) - 1);
  for (let i = 0; i < want; i++) cuts.add(rng.range(1, data.length - 1));
  const sorted = [...cuts].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let from = 0;
  for (const c of sorted) {
    parts.push(data.subarray(from, c));
    from = c;
  }
  parts.push(data.subarray(from));
  return parts;
}

/** A copy of `data` with a few random mutations: bytes flipped, replaced by
 *  interesting ones (LF, CR, space, digits, NUL, 0xFF, UTF-8 lead bytes), inserted,
 *  deleted, or a slice duplicated. */
export function mutate(rng: Rng, data: Buffer, interesting: readonly number[] = INTERESTING_BYTES): Buffer {
  let b = Buffer.from(data);
  const n = rng.range(1, 4);
  for (let i = 0; i < n; i++) {
    const at = b.length ? rng.int(b.length) : 0;
    switch (rng.int(5)) {
      case 0:
        if (b.length) b[at] ^= 1 << rng.int(8);
        break;
      case 1:
        if (b.length) b[at] = rng.pick(interesting);
        break;
      case 2:
        b = Buffer.concat([b.subarray(0, at), Buffer.from([rng.pick(interesting)]), b.subarray(at)]);
        break;
      case 3:
        if (b.length) b = Buffer.concat([b.subarray(0, at), b.subarray(at + rng.range(1, 8))]);
        break;
      default: {
        const len = rng.range(1, 16);
        b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + len), b.subarray(at)]);
      }
    }
  }
  return b;
}

export const INTERESTING_BYTES: readonly number[] = [0x0a, 0x0d, 0x20, 0x09, 0x30, 0x31, 0x39, 0x3d, 0x2f, 0x00, 0xff, 0xc3, 0xe2, 0x80, 0xa0, 0x7f];

/** Resident set size of process `pid`, bytes (VmRSS of /proc/<pid>/status). */
export function processRss(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** Open file descriptors of process `pid` (entries of /proc/<pid>/fd). */
export function processFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** What each open fd of process `pid` is (socket:[inode], a path, anon_inode:...),
 *  for an error message. */
export function processFdTargets(pid: number): string[] {
  const out: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      out.push(`${fd}→${readlinkSync(`/proc/${pid}/fd/${fd}`)}`);
    } catch {
      /* closed meanwhile */
    }
  }
  return out;
}

/** Open sockets of process `pid` (its fds that are sockets): what client connections
 *  hold, unlike the pipes and epoll fds of its worker threads, which come and go with
 *  the threads. */
export function processSockets(pid: number): number {
  return processFdTargets(pid).filter((t) => t.includes('socket:[')).length;
}
