// One streamed-ingest run against one peer: 100 connections write numbered syslog lines
// (loadgen --mode stream --seq) for --duration seconds; the run ends when every line sent is
// in the peer's output. Then the output is checked line by line (seqcheck), so a peer that
// loses or duplicates lines cannot look fast.
import { spawn } from 'node:child_process';

import type { CBinaries } from '../build';
import type { LoadResult } from '../types';
import { procStatusKb, run, sleep } from '../util';
import { cpuSeconds, type PeerSpec } from './peers';

export interface SeqCheck {
  bytes: number;
  sent: number;
  found: number;
  distinct: number;
  duplicates: number;
  lost: number;
  unexpected: number;
  out_of_order: number;
}

export interface IngestRun {
  peer: string;
  error?: string;
  sent: number;
  /** Lines in the output: distinct numbered lines found (memory only: the server's Total). */
  stored: number;
  lost: number;
  duplicates: number;
  unexpected: number;
  outOfOrder: number;
  /** How the output was checked. */
  checked: string;
  /** First line sent → last line in the output. */
  seconds: number;
  linesPerSec: number;
  /** The peer's CPU (all threads) over the run, per million lines stored. */
  cpuPerMLines: number;
  serverUtil: number;
  clientUtil: number;
  peakRssMb: number;
  /** The output never reached the lines sent (it stopped growing). */
  incomplete: boolean;
}

export interface IngestOptions {
  conns: number;
  size: number;
  duration: number;
  /** Give up waiting for the output after it has not grown for this long. */
  stallMs: number;
}

export function runSeqcheck(bins: CBinaries, sent: number[], files: string[] | NodeJS.ReadableStream): Promise<SeqCheck> {
  return new Promise((resolve, reject) => {
    const args = ['--sent', sent.join(','), ...(Array.isArray(files) ? files : ['-'])];
    const child = spawn(bins.seqcheck, args, { stdio: [Array.isArray(files) ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (err += d));
    if (!Array.isArray(files)) {
      files.pipe(child.stdin!);
      files.on('error', (e) => child.stdin!.destroy(e));
      child.stdin!.on('error', () => undefined);
    }
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`seqcheck exited ${code}: ${err.trim()}`));
      else resolve(JSON.parse(out) as SeqCheck);
    });
  });
}

export async function ingestOnce(bins: CBinaries, spec: PeerSpec, o: IngestOptions): Promise<IngestRun> {
  const rec: IngestRun = {
    peer: spec.id,
    sent: 0,
    stored: 0,
    lost: 0,
    duplicates: 0,
    unexpected: 0,
    outOfOrder: 0,
    checked: '',
    seconds: NaN,
    linesPerSec: NaN,
    cpuPerMLines: NaN,
    serverUtil: NaN,
    clientUtil: NaN,
    peakRssMb: NaN,
    incomplete: false,
  };
  const peer = await spec.start(o.size);
  let stopped = false;
  try {
    const cpu0 = cpuSeconds(peer.pid);
    const t0 = Date.now();
    const args = ['--port', String(peer.port), '--mode', 'stream', '--seq', '--conns', String(o.conns), '--size', String(o.size)];
    args.push('--duration', String(o.duration), '--warmup', '0', '--connect-timeout', '30', '--timeout', '300', '--server-pid', String(peer.pid));
    const r = await run(bins.loadgen, args, (o.duration + 400) * 1000);
    if (r.code !== 0) throw new Error(`loadgen exit ${r.code ?? r.signal}: ${r.stderr.trim().split('\n').slice(-2).join(' | ')}`);
    const load = JSON.parse(r.stdout) as LoadResult;
    const tEnd = Date.now();
    const tFirst = t0 + load.connect_seconds * 1000;
    const perConn = load.lines_per_conn ?? [];
    rec.sent = perConn.reduce((a, b) => a + b, 0);
    rec.clientUtil = load.client_cpu.utilization;
    if (load.connected < o.conns) throw new Error(`only ${load.connected} of ${o.conns} connections were accepted (${load.connect_failed} failed)`);
    // wait until every line is in the output, or until it stops growing
    let n = await peer.stored();
    let tDone = Date.now();
    let lastGrowth = Date.now();
    while (n < rec.sent) {
      await sleep(20);
      const m = await peer.stored();
      const now = Date.now();
      if (m > n) {
        lastGrowth = now;
        tDone = now;
      }
      n = m;
      if (n >= rec.sent) break;
      if (now - lastGrowth > o.stallMs) {
        rec.incomplete = true;
        break;
      }
    }
    if (n >= rec.sent) tDone = Math.max(tEnd, tDone);
    const cpu1 = cpuSeconds(peer.pid);
    rec.peakRssMb = procStatusKb(peer.pid, 'VmHWM') / 1024;
    rec.seconds = (tDone - tFirst) / 1000;
    let check: SeqCheck | undefined;
    if (peer.capture) {
      check = JSON.parse(await peer.capture((input) => runSeqcheck(bins, perConn, input).then((c) => JSON.stringify(c)))) as SeqCheck;
    }
    stopped = true;
    const out = await peer.stop();
    if ('files' in out) {
      check = await runSeqcheck(bins, perConn, out.files);
      rec.stored = check.distinct;
      rec.lost = check.lost;
      rec.checked = `every line, in ${out.files.length} output file(s)`;
    } else {
      // memory only: the server's own count for lost lines; the window read back for the rest
      rec.stored = n;
      rec.lost = Math.max(0, rec.sent - n);
      rec.checked = `count from STATS; ${check?.found ?? 0} lines of the in-memory window read back`;
    }
    if (check) {
      rec.duplicates = check.duplicates;
      rec.unexpected = check.unexpected;
      rec.outOfOrder = check.out_of_order;
    }
    rec.linesPerSec = rec.stored / rec.seconds;
    rec.cpuPerMLines = ((cpu1 - cpu0) / rec.stored) * 1e6;
    rec.serverUtil = (cpu1 - cpu0) / rec.seconds;
    return rec;
  } finally {
    if (!stopped) await peer.stop().catch(() => undefined);
    peer.cleanup();
  }
}
