// Compiles the C load generators and reference servers (TCP and datagram) with the system compiler into
// packages/bench/build/ (gitignored), only when a source is newer than the binary.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const BENCH_DIR = path.resolve(__dirname, '..', '..');
export const REPO_DIR = path.resolve(BENCH_DIR, '..', '..');

export interface CBinaries {
  loadgen: string;
  refServer: string;
  /** sendmmsg UDP load, recvmmsg reference sink/echo, UDP ping-pong client */
  udpSender: string;
  udpRef: string;
  udpPingpong: string;
  /** Checks a receiver's output against loadgen --seq (c/seqcheck.c). */
  seqcheck: string;
  compiler: string;
}

function mtime(p: string): number {
  try {
    return fs.statSync(p).mtimeMs;
  } catch {
    return -1;
  }
}

export function buildC(log: (s: string) => void = () => undefined): CBinaries {
  const cdir = path.join(BENCH_DIR, 'c');
  const out = path.join(BENCH_DIR, 'build');
  fs.mkdirSync(out, { recursive: true });
  const cc = process.env.CC || 'cc';
  const sources = fs.readdirSync(cdir).map((f) => path.join(cdir, f));
  const newest = Math.max(...sources.map(mtime));
  const targets: Array<[string, string]> = [
    ['loadgen', 'loadgen.c'],
    ['ref_server', 'ref_server.c'],
    ['udp_sender', 'udp_sender.c'],
    ['udp_ref', 'udp_ref.c'],
    ['udp_pingpong', 'udp_pingpong.c'],
    ['seqcheck', 'seqcheck.c'],
  ];
  for (const [bin, src] of targets) {
    const exe = path.join(out, bin);
    if (mtime(exe) >= newest) continue;
    log(`compiling ${src} with ${cc} -O2`);
    execFileSync(cc, ['-O2', '-Wall', '-o', exe, path.join(cdir, src)], { stdio: ['ignore', 'inherit', 'inherit'] });
  }
  const bin = (name: string): string => path.join(out, name);
  return {
    loadgen: bin('loadgen'),
    refServer: bin('ref_server'),
    udpSender: bin('udp_sender'),
    udpRef: bin('udp_ref'),
    udpPingpong: bin('udp_pingpong'),
    seqcheck: bin('seqcheck'),
    compiler: cc,
  };
}
