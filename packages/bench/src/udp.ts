// The datagram benchmarks (docs/BENCHMARKS.md, "UDP"):
//
// - ingest: a C sender (c/udp_sender.c, sendmmsg, one core's full rate) sends --count
//   datagrams of each --sizes; per receiver: datagrams stored, lost (sent - stored),
//   kernel drops where the receiver can tell, and the receiver's CPU seconds (all
//   threads, /proc/<pid>/stat) per million stored. Receivers: the C recvmmsg reference
//   (c/udp_ref.c), node:dgram, the reactor alone per backend, the real `logcaster
//   --udp-port` per backend, rsyslog imudp tuned (batch size, large receive buffer,
//   FixedArray main queue) writing a file.
// - echo: UDP ping-pong (c/udp_pingpong.c, 1 and --flows connected sockets) against
//   the C reference, node:dgram and the reactor per backend.
// - syscalls: strace -c on every thread of a receiver over --syscall-count datagrams.
//
//   node packages/bench/dist/src/udp.js [--count 1000000] [--sizes 64,512] [--repeats 3]
//     [--backends epoll,iouring,poll,select] [--only ingest,echo,syscalls] [--flows 64]
//     [--quick]
// Markdown tables on stdout; every raw figure in packages/bench/results/udp-<date>.json.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import { tryBackend } from '@logcaster/core';

import { BENCH_DIR, buildC, REPO_DIR, type CBinaries } from './build';
import { LOGCASTER_BIN } from './servers';
import { median, queryLine, run, sleep, threadIds, waitExit, which } from './util';

const { values: opt } = parseArgs({
  options: {
    count: { type: 'string', default: '1000000' },
    sizes: { type: 'string', default: '64,512' },
    repeats: { type: 'string', default: '3' },
    backends: { type: 'string', default: 'epoll,iouring,poll,select' },
    only: { type: 'string', default: 'ingest,echo,syscalls' },
    flows: { type: 'string', default: '64' },
    duration: { type: 'string', default: '2' },
    'syscall-count': { type: 'string', default: '200000' },
    quick: { type: 'boolean', default: false },
    out: { type: 'string', default: path.join(BENCH_DIR, 'results') },
  },
});
const quick = opt.quick!;
const COUNT = quick ? 20000 : Number(opt.count);
const SIZES = opt.sizes!.split(',').map(Number);
const REPEATS = quick ? 1 : Number(opt.repeats);
const FLOWS = [1, Number(opt.flows)];
const DURATION = quick ? 0.3 : Number(opt.duration);
const SYSCALL_COUNT = quick ? 20000 : Number(opt['syscall-count']);
const ONLY = new Set(opt.only!.split(','));
const BACKENDS = opt.backends!.split(',').filter((b) => tryBackend(b as Parameters<typeof tryBackend>[0]).attempt.status === 'loaded');
const RECV_BUFFER = 8 << 20;

/** utime + stime of a whole process (every thread), seconds. */
function cpuSeconds(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ: 100 on Linux
}

interface Receiver {
  id: string;
  pid: number;
  port: number;
  /** Datagrams received (stored) so far, and kernel drops when the receiver counts them. */
  count(): Promise<{ stored: number; dropped?: number }>;
  stop(): Promise<void>;
}

/** Spawn a server and wait for `ready` on its stdout; `lines` collects its later stdout lines. */
async function spawnReady(cmd: string, args: string[], ready: RegExp): Promise<{ child: ChildProcess; match: RegExpExecArray; lines: string[]; stderr: () => string }> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO_DIR });
  let out = '';
  let err = '';
  const lines: string[] = [];
  let match: RegExpExecArray | null = null;
  child.stdout!.on('data', (d: Buffer) => {
    out += d;
    let nl;
    while ((nl = out.indexOf('\n')) >= 0) {
      const line = out.slice(0, nl);
      out = out.slice(nl + 1);
      if (!match) match = ready.exec(line);
      else lines.push(line);
    }
  });
  child.stderr!.on('data', (d: Buffer) => (err = (err + d).slice(-4000)));
  const t0 = Date.now();
  while (!match) {
    if (child.exitCode !== null || Date.now() - t0 > 15000) {
      child.kill('SIGKILL');
      throw new Error(`${cmd} ${args.join(' ')}: not ready: ${err.trim().slice(-300)}`);
    }
    await sleep(20);
  }
  return { child, match, lines, stderr: () => err };
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  if (!(await waitExit(child, 3000))) {
    child.kill('SIGKILL');
    await waitExit(child, 3000);
  }
}

/** Servers that answer SIGUSR1 with one JSON line of counters. */
async function jsonReceiver(id: string, cmd: string, args: string[], key: { stored: string; dropped?: string }): Promise<Receiver> {
  const s = await spawnReady(cmd, args, /^(?:READY |port )(\d+)/);
  return {
    id,
    pid: s.child.pid!,
    port: Number(s.match[1]),
    async count() {
      const before = s.lines.length;
      s.child.kill('SIGUSR1');
      const t0 = Date.now();
      while (s.lines.length === before) {
        if (Date.now() - t0 > 5000) throw new Error(`${id}: no counters: ${s.stderr().slice(-200)}`);
        await sleep(10);
      }
      const j = JSON.parse(s.lines[s.lines.length - 1]) as Record<string, number>;
      return { stored: j[key.stored], dropped: key.dropped ? j[key.dropped] : undefined };
    },
    stop: () => kill(s.child),
  };
}

async function logcasterReceiver(backend: string): Promise<Receiver> {
  const args = [LOGCASTER_BIN, '--backend', backend, '--port', '0', '--query-port', '0', '--no-http', '--udp-port', '0', '--udp-recv-buffer', String(RECV_BUFFER), '--data-dir', 'none', '--capacity', String(COUNT * 2 + 10000)];
  const s = await spawnReady(process.execPath, args, /udp=[^ ]*:(\d+) .*query=[^ ]*:(\d+)|query=[^ ]*:(\d+) .*udp=[^ ]*:(\d+)/);
  const udpPort = Number(s.match[1] ?? s.match[4]);
  const queryPort = Number(s.match[2] ?? s.match[3]);
  return {
    id: `logcaster-${backend}`,
    pid: s.child.pid!,
    port: udpPort,
    async count() {
      const st = await queryLine(queryPort, 'STATS');
      return { stored: Number(/Total=(\d+)/.exec(st)![1]), dropped: Number(/UdpDropped=(\d+)/.exec(st)![1]) };
    },
    stop: () => kill(s.child),
  };
}

/** rsyslog imudp, tuned as its documentation advises for high rates, into a file. */
async function rsyslogReceiver(): Promise<Receiver> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'logcaster-bench-rsyslog-'));
  const port = await freeUdpPort();
  const file = path.join(dir, 'out.log');
  fs.writeFileSync(
    path.join(dir, 'rsyslog.conf'),
    `global(workDirectory="${dir}" maxMessageSize="64k")\n` +
      `module(load="imudp" threads="1" batchSize="128")\n` +
      `input(type="imudp" address="127.0.0.1" port="${port}" rcvBufSize="${RECV_BUFFER}")\n` +
      `main_queue(queue.type="FixedArray" queue.size="200000" queue.dequeueBatchSize="1024" queue.workerThreads="1")\n` +
      `template(name="raw" type="string" string="%rawmsg%\\n")\n` +
      `action(type="omfile" file="${file}" template="raw" ioBufferSize="1m")\n`,
  );
  const child = spawn('rsyslogd', ['-n', '-f', path.join(dir, 'rsyslog.conf'), '-i', path.join(dir, 'rsyslog.pid')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d).slice(-2000)));
  // Lines written so far: newlines counted incrementally.
  let offset = 0;
  let lines = 0;
  const countLines = (): number => {
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch {
      return lines;
    }
    try {
      const buf = Buffer.alloc(1 << 20);
      for (let n; (n = fs.readSync(fd, buf, 0, buf.length, offset)) > 0; offset += n) {
        for (let i = buf.indexOf(10); i >= 0 && i < n; i = buf.indexOf(10, i + 1)) lines++;
      }
    } finally {
      fs.closeSync(fd);
    }
    return lines;
  };
  await sleep(500); // imudp binds after start-up
  if (child.exitCode !== null) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`rsyslogd exited at start-up: ${stderr.trim().slice(-300)}`);
  }
  return {
    id: 'rsyslog-imudp',
    pid: child.pid!,
    port,
    count: async () => ({ stored: countLines() }),
    stop: async () => {
      await kill(child);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function freeUdpPort(): Promise<number> {
  return new Promise((resolve) => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const s = (require('node:dgram') as typeof import('node:dgram')).createSocket('udp4');
    s.bind(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

const dist = path.join(BENCH_DIR, 'dist', 'src', 'servers');

function ingestReceivers(bins: CBinaries): Array<[string, () => Promise<Receiver>]> {
  const list: Array<[string, () => Promise<Receiver>]> = [
    ['c-recvmmsg', () => jsonReceiver('c-recvmmsg', bins.udpRef, ['--mode', 'sink', '--rcvbuf', String(RECV_BUFFER), '--batch', '64'], { stored: 'received', dropped: 'dropped' })],
    ['node-dgram', () => jsonReceiver('node-dgram', process.execPath, [path.join(dist, 'dgram-udp.js'), '--mode', 'sink', '--recv-buffer', String(RECV_BUFFER)], { stored: 'received' })],
  ];
  for (const b of BACKENDS) {
    list.push([`reactor-${b}`, () => jsonReceiver(`reactor-${b}`, process.execPath, [path.join(dist, 'reactor-udp.js'), '--mode', 'sink', '--backend', b, '--recv-buffer', String(RECV_BUFFER)], { stored: 'received', dropped: 'dropped' })]);
  }
  for (const b of BACKENDS) list.push([`logcaster-${b}`, () => logcasterReceiver(b)]);
  if (which('rsyslogd')) list.push(['rsyslog-imudp', rsyslogReceiver]);
  return list;
}

/** Poll until the count stops moving (or reaches `want`); returns the last count. */
async function settle(r: Receiver, want: number): Promise<{ stored: number; dropped?: number }> {
  let last = await r.count();
  let still = 0;
  while (last.stored < want && still < 4) {
    await sleep(150);
    const c = await r.count();
    still = c.stored === last.stored ? still + 1 : 0;
    last = c;
  }
  return last;
}

interface IngestRun {
  receiver: string;
  size: number;
  sent: number;
  senderRate: number;
  stored: number;
  lost: number;
  kernelDropped?: number;
  cpuSeconds: number;
  cpuPerM: number;
  error?: string;
}

async function sendBurst(bins: CBinaries, port: number, size: number, count: number): Promise<{ sent: number; rate: number }> {
  const r = await run(bins.udpSender, ['--port', String(port), '--size', String(size), '--count', String(count), '--batch', '64'], 300000);
  if (r.code !== 0) throw new Error(`udp_sender: ${r.stderr.trim()}`);
  const j = JSON.parse(r.stdout) as { sent: number; rate: number };
  return j;
}

async function ingestOnce(bins: CBinaries, id: string, start: () => Promise<Receiver>, size: number): Promise<IngestRun> {
  const rec: IngestRun = { receiver: id, size, sent: 0, senderRate: NaN, stored: 0, lost: 0, cpuSeconds: NaN, cpuPerM: NaN };
  let r: Receiver | undefined;
  try {
    r = await start();
    // Warm-up (JIT, buffers, rsyslog's file): 2000 datagrams, counted out of the result.
    await sendBurst(bins, r.port, size, 2000);
    const warm = await settle(r, 2000);
    const cpu0 = cpuSeconds(r.pid);
    const s = await sendBurst(bins, r.port, size, COUNT);
    const end = await settle(r, warm.stored + COUNT);
    rec.cpuSeconds = cpuSeconds(r.pid) - cpu0;
    rec.sent = s.sent;
    rec.senderRate = s.rate;
    rec.stored = end.stored - warm.stored;
    rec.lost = rec.sent - rec.stored;
    if (end.dropped !== undefined) rec.kernelDropped = end.dropped - (warm.dropped ?? 0);
    rec.cpuPerM = (rec.cpuSeconds / rec.stored) * 1e6;
  } catch (e) {
    rec.error = (e as Error).message;
  } finally {
    await r?.stop();
  }
  return rec;
}

interface EchoRun {
  server: string;
  flows: number;
  rate: number;
  p50: number;
  p99: number;
  lost: number;
  cpuPerM: number;
  error?: string;
}

function echoServers(bins: CBinaries): Array<[string, () => Promise<Receiver>]> {
  const list: Array<[string, () => Promise<Receiver>]> = [
    ['c-recvmmsg', () => jsonReceiver('c-recvmmsg', bins.udpRef, ['--mode', 'echo', '--batch', '64'], { stored: 'received' })],
    ['node-dgram', () => jsonReceiver('node-dgram', process.execPath, [path.join(dist, 'dgram-udp.js'), '--mode', 'echo'], { stored: 'received' })],
  ];
  for (const b of BACKENDS) list.push([`reactor-${b}`, () => jsonReceiver(`reactor-${b}`, process.execPath, [path.join(dist, 'reactor-udp.js'), '--mode', 'echo', '--backend', b], { stored: 'received' })]);
  return list;
}

async function echoOnce(bins: CBinaries, id: string, start: () => Promise<Receiver>, flows: number): Promise<EchoRun> {
  const rec: EchoRun = { server: id, flows, rate: NaN, p50: NaN, p99: NaN, lost: 0, cpuPerM: NaN };
  let r: Receiver | undefined;
  try {
    r = await start();
    const out = await run(bins.udpPingpong, ['--port', String(r.port), '--flows', String(flows), '--size', '64', '--duration', String(DURATION), '--warmup', '0.5', '--server-pid', String(r.pid)], 60000);
    if (out.code !== 0) throw new Error(`udp_pingpong: ${out.stderr.trim()}`);
    const j = JSON.parse(out.stdout) as { trips: number; rate: number; p50_us: number; p99_us: number; lost: number; server_cpu: number };
    Object.assign(rec, { rate: j.rate, p50: j.p50_us, p99: j.p99_us, lost: j.lost, cpuPerM: (j.server_cpu / j.trips) * 1e6 });
  } catch (e) {
    rec.error = (e as Error).message;
  } finally {
    await r?.stop();
  }
  return rec;
}

interface SyscallRun {
  receiver: string;
  stored: number;
  calls: number;
  perDatagram: number;
  /** Datagrams per receiving call (recvmmsg / io_uring_enter / recvmsg...), where one dominates. */
  top: Array<{ name: string; calls: number }>;
  error?: string;
}

async function syscallsOnce(bins: CBinaries, id: string, start: () => Promise<Receiver>): Promise<SyscallRun> {
  const rec: SyscallRun = { receiver: id, stored: 0, calls: 0, perDatagram: NaN, top: [] };
  const out = path.join(os.tmpdir(), `logcaster-bench-udp-strace-${process.pid}.txt`);
  let r: Receiver | undefined;
  let st: ChildProcess | undefined;
  try {
    r = await start();
    await sendBurst(bins, r.port, 64, 2000);
    const warm = await settle(r, 2000);
    const tids = threadIds(r.pid);
    st = spawn('strace', ['-c', '-f', '-o', out, ...tids.flatMap((t) => ['-p', String(t)])], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    st.stderr!.on('data', (d) => (err += d));
    const t0 = Date.now();
    while ((err.match(/attached/g) ?? []).length < tids.length && Date.now() - t0 < 3000 && st.exitCode === null) await sleep(20);
    await sleep(200);
    await sendBurst(bins, r.port, 64, SYSCALL_COUNT);
    // Counting asks the receiver (SIGUSR1 / a query connection): a few syscalls, not per datagram.
    const end = await settle(r, warm.stored + SYSCALL_COUNT);
    st.kill('SIGINT');
    await waitExit(st, 5000);
    rec.stored = end.stored - warm.stored;
    const rows: Array<{ name: string; calls: number }> = [];
    for (const line of fs.readFileSync(out, 'utf8').split('\n')) {
      const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$/.exec(line);
      if (!m) continue;
      if (m[2] === 'total') rec.calls = Number(m[1]);
      else rows.push({ name: m[2], calls: Number(m[1]) });
    }
    rows.sort((a, b) => b.calls - a.calls);
    rec.top = rows.slice(0, 4);
    rec.perDatagram = rec.calls / rec.stored;
  } catch (e) {
    rec.error = (e as Error).message;
  } finally {
    if (st && st.exitCode === null) st.kill('SIGKILL');
    await r?.stop();
    fs.rmSync(out, { force: true });
  }
  return rec;
}

const f = (x: number, d = 0): string => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

async function main(): Promise<void> {
  const bins = buildC((m) => process.stderr.write(`${m}\n`));
  const started = new Date();
  const load0 = fs.readFileSync('/proc/loadavg', 'utf8').trim();
  const results: { ingest: IngestRun[]; echo: EchoRun[]; syscalls: SyscallRun[] } = { ingest: [], echo: [], syscalls: [] };
  console.log(`# UDP benchmarks\n\n${os.cpus().length} cores, Linux ${os.release()}, Node ${process.version}; ${started.toISOString()}; load average at start ${load0}`);
  console.log(`Command: \`node packages/bench/dist/src/udp.js ${process.argv.slice(2).join(' ')}\``.replace(/ `$/, '`'));

  if (ONLY.has('ingest')) {
    const receivers = ingestReceivers(bins);
    for (const size of SIZES) {
      // Repeats interleaved across receivers so that a change of machine load hits all.
      for (let rep = 0; rep < REPEATS; rep++) {
        for (const [id, start] of receivers) {
          const x = await ingestOnce(bins, id, start, size);
          results.ingest.push(x);
          process.stderr.write(`ingest ${size} B ${id} #${rep + 1}: ${x.error ?? `stored ${x.stored}/${x.sent} at ${f(x.senderRate)}/s, cpu ${f(x.cpuPerM, 2)} s/M`}\n`);
        }
      }
      console.log(`\n### UDP ingest, ${size}-byte datagrams, ${COUNT} sent at the sender's full rate (median of ${REPEATS})\n`);
      console.log('| receiver | sender rate (dgrams/s) | stored | lost (sent − stored) | kernel drops | CPU-s per M stored | × rsyslog CPU |');
      console.log('|---|---|---|---|---|---|---|');
      const rs = median(results.ingest.filter((x) => x.size === size && x.receiver === 'rsyslog-imudp' && !x.error).map((x) => x.cpuPerM));
      for (const [id] of receivers) {
        const runs = results.ingest.filter((x) => x.size === size && x.receiver === id && !x.error);
        if (!runs.length) {
          console.log(`| ${id} | error: ${results.ingest.find((x) => x.size === size && x.receiver === id)?.error ?? '?'} | | | | | |`);
          continue;
        }
        const cpu = median(runs.map((x) => x.cpuPerM));
        const drops = runs.every((x) => x.kernelDropped !== undefined) ? f(median(runs.map((x) => x.kernelDropped!))) : 'not counted';
        console.log(`| ${id} | ${f(median(runs.map((x) => x.senderRate)))} | ${f(median(runs.map((x) => x.stored)))} | ${f(median(runs.map((x) => x.lost)))} (max ${f(Math.max(...runs.map((x) => x.lost)))}) | ${drops} | ${f(cpu, 2)} | ${f(cpu / rs, 2)} |`);
      }
    }
  }

  if (ONLY.has('echo')) {
    const servers = echoServers(bins);
    for (const flows of FLOWS) {
      for (let rep = 0; rep < REPEATS; rep++) {
        for (const [id, start] of servers) {
          const x = await echoOnce(bins, id, start, flows);
          results.echo.push(x);
          process.stderr.write(`echo ${flows} flows ${id} #${rep + 1}: ${x.error ?? `${f(x.rate)}/s p99 ${f(x.p99, 1)} µs`}\n`);
        }
      }
      console.log(`\n### UDP echo ping-pong, 64 B, ${flows} flow(s), ${DURATION} s (median of ${REPEATS})\n`);
      console.log('| server | round trips/s | × node:dgram | p50 µs | p99 µs | resent (no echo in 200 ms) | server CPU-s per M |');
      console.log('|---|---|---|---|---|---|---|');
      const nodeRate = median(results.echo.filter((x) => x.flows === flows && x.server === 'node-dgram' && !x.error).map((x) => x.rate));
      for (const [id] of servers) {
        const runs = results.echo.filter((x) => x.flows === flows && x.server === id && !x.error);
        if (!runs.length) {
          console.log(`| ${id} | error: ${results.echo.find((x) => x.flows === flows && x.server === id)?.error ?? '?'} | | | | | |`);
          continue;
        }
        const rate = median(runs.map((x) => x.rate));
        console.log(`| ${id} | ${f(rate)} | ${f(rate / nodeRate, 2)} | ${f(median(runs.map((x) => x.p50)), 1)} | ${f(median(runs.map((x) => x.p99)), 1)} | ${f(median(runs.map((x) => x.lost)))} | ${f(median(runs.map((x) => x.cpuPerM)), 2)} |`);
      }
    }
  }

  if (ONLY.has('syscalls')) {
    if (!which('strace')) {
      console.log('\n### Syscalls per datagram: skipped (strace is not installed)');
    } else {
      const list = ingestReceivers(bins).filter(([id]) => id !== 'rsyslog-imudp');
      for (const [id, start] of list) {
        const x = await syscallsOnce(bins, id, start);
        results.syscalls.push(x);
        process.stderr.write(`syscalls ${id}: ${x.error ?? f(x.perDatagram, 3)}\n`);
      }
      console.log(`\n### Syscalls per datagram received (strace -c -f on every thread, ${SYSCALL_COUNT} × 64 B at full rate)\n`);
      console.log('| receiver | stored | syscalls | per datagram | most frequent (calls) |');
      console.log('|---|---|---|---|---|');
      for (const x of results.syscalls) {
        if (x.error) console.log(`| ${x.receiver} | error: ${x.error} | | | |`);
        else console.log(`| ${x.receiver} | ${x.stored} | ${x.calls} | ${f(x.perDatagram, 3)} | ${x.top.map((t) => `${t.name} ${t.calls}`).join(', ')} |`);
      }
    }
  }

  const load1 = fs.readFileSync('/proc/loadavg', 'utf8').trim();
  console.log(`\nLoad average at the end ${load1}; took ${Math.round((Date.now() - started.getTime()) / 1000)} s.`);
  fs.mkdirSync(opt.out!, { recursive: true });
  const file = path.join(opt.out!, `udp-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(file, JSON.stringify({ started, load: [load0, load1], count: COUNT, sizes: SIZES, repeats: REPEATS, backends: BACKENDS, results }, null, 1));
  process.stderr.write(`raw results: ${file}\n`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
