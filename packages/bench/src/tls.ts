#!/usr/bin/env node
// `npm run bench:tls -w @logcaster/bench`: TLS on the reactor against node:tls and plain
// TCP, in one run, cells interleaved per repeat so a change in machine load hits all:
//   echo       ping-pong of 64-byte messages over 1000 connections: reactor TLS,
//              node:tls, reactor plain TCP (msgs/s)
//   ingest     streamed 64-byte lines over 100 connections into LogCaster --tls-port,
//              LogCaster's plain ingest port, and a node:tls line server (lines/s to
//              stored, and the server's CPU per line)
//   handshake  100 concurrent clients connecting, completing a full TLS 1.3 handshake
//              (RSA-2048 certificate, no resumption) and closing: reactor vs node:tls
// echo and ingest are measured once every connection has completed its handshake (the
// time that took is a column of its own); handshakes are what the third cell measures.
// The client is a C program (c/tls_loadgen.c, OpenSSL, one thread); its own CPU is
// reported beside each cell, so a reader can see whether it was the bottleneck.
// Markdown on stdout; JSON in packages/bench/results/tls.json.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { BENCH_DIR, REPO_DIR } from './build';
import { LOGCASTER_BIN } from './servers';
import { freePort, median, queryLine, sleep, waitExit } from './util';

interface Opts {
  repeats: number;
  duration: number;
  echoConns: number;
  streamConns: number;
  handshakeConns: number;
  backend: string;
}

function parse(argv: string[]): Opts {
  const o: Opts = { repeats: 3, duration: 3, echoConns: 1000, streamConns: 100, handshakeConns: 100, backend: 'auto' };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[++i];
    switch (argv[i - 1]) {
      case '--repeats':
        o.repeats = Number(v);
        break;
      case '--duration':
        o.duration = Number(v);
        break;
      case '--echo-conns':
        o.echoConns = Number(v);
        break;
      case '--stream-conns':
        o.streamConns = Number(v);
        break;
      case '--handshake-conns':
        o.handshakeConns = Number(v);
        break;
      case '--backend':
        o.backend = v;
        break;
      default:
        throw new Error(`unknown argument ${argv[i - 1]}`);
    }
  }
  return o;
}

function buildLoadgen(): string {
  const out = path.join(BENCH_DIR, 'build');
  fs.mkdirSync(out, { recursive: true });
  const src = path.join(BENCH_DIR, 'c', 'tls_loadgen.c');
  const exe = path.join(out, 'tls_loadgen');
  if (!fs.existsSync(exe) || fs.statSync(exe).mtimeMs < fs.statSync(src).mtimeMs) {
    // The client links the system's OpenSSL (Debian: libssl-dev); the servers use Node's.
    execFileSync(process.env.CC || 'cc', ['-O2', '-Wall', '-o', exe, src, '-lssl', '-lcrypto'], { stdio: 'inherit' });
  }
  return exe;
}

/** An RSA-2048 server certificate for localhost, made with the openssl command line. */
function makeCert(dir: string): { cert: string; key: string } {
  const cert = path.join(dir, 'server.pem');
  const key = path.join(dir, 'server.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
  return { cert, key };
}

interface Server {
  pid: number;
  port: number;
  queryPort: number;
  stop(): Promise<void>;
}

async function start(cmd: string, args: string[], port: number, queryPort: number, readyWhen: 'READY' | 'COUNT'): Promise<Server> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO_DIR });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const stop = async (): Promise<void> => {
    child.kill('SIGTERM');
    if (!(await waitExit(child, 5000))) child.kill('SIGKILL');
  };
  const until = Date.now() + 15000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${args.join(' ')} exited: ${err}`);
    const m = /^READY (\d+) (-?\d+)/m.exec(out);
    if (readyWhen === 'READY' && m) return { pid: child.pid!, port: Number(m[1]), queryPort: Number(m[2]), stop };
    if (readyWhen === 'COUNT') {
      try {
        if (/^COUNT:/.test(await queryLine(queryPort, 'COUNT', 500))) return { pid: child.pid!, port, queryPort, stop };
      } catch {
        /* not yet */
      }
    }
    if (Date.now() > until) {
      await stop();
      throw new Error(`${args.join(' ')} did not start: ${err}`);
    }
    await sleep(50);
  }
}

/** CPU seconds (user + system) of a process so far. */
function cpuOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in USER_HZ (100 on Linux)
}

interface LoadgenResult {
  seconds: number;
  count: number;
  lines: number;
  failures: number;
  loadgenCpu: number;
}

/** Runs the load generator; `onReady` when every connection completed its handshake
 *  (echo, stream: the measured work starts after it). */
function loadgen(exe: string, args: string[], onReady: (connectSeconds: number) => void = () => {}): Promise<LoadgenResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(exe, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let result: LoadgenResult | undefined;
    child.stdout.on('data', (d) => {
      out += d;
      let nl: number;
      while ((nl = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        const ready = /^READY ([\d.]+)$/.exec(line);
        if (ready) onReady(Number(ready[1]));
        else result ??= JSON.parse(line) as LoadgenResult;
      }
    });
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => (code === 0 && result ? resolve(result) : reject(new Error(`tls_loadgen ${args.join(' ')}: exit ${code}: ${err}`))));
  });
}

interface CellRun {
  rate: number;
  /** Seconds until every connection had completed its handshake (echo, ingest). */
  connectSeconds?: number;
  serverCpuPerMsgUs?: number;
  loadgenCpuShare: number;
  failures: number;
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  const exe = buildLoadgen();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'logcaster-tls-bench-'));
  const pem = makeCert(dir);
  const dist = path.join(BENCH_DIR, 'dist', 'src', 'servers');
  const tlsArgs = ['--tls-cert', pem.cert, '--tls-key', pem.key];
  const load0 = fs.readFileSync('/proc/loadavg', 'utf8').trim();
  const runs = new Map<string, CellRun[]>();
  const add = (cell: string, r: CellRun): void => {
    if (!runs.has(cell)) runs.set(cell, []);
    runs.get(cell)!.push(r);
  };

  const echoServers: Array<[string, string[]]> = [
    ['echo: reactor TLS', [path.join(dist, 'reactor-echo.js'), '--backend', o.backend, ...tlsArgs]],
    ['echo: node:tls', [path.join(dist, 'net-echo.js'), ...tlsArgs]],
    ['echo: reactor plain TCP', [path.join(dist, 'reactor-echo.js'), '--backend', o.backend]],
  ];
  const handshakeServers: Array<[string, string[]]> = [
    ['handshake: reactor TLS', [path.join(dist, 'reactor-echo.js'), '--backend', o.backend, ...tlsArgs]],
    ['handshake: node:tls', [path.join(dist, 'net-echo.js'), ...tlsArgs]],
  ];

  try {
    for (let rep = 0; rep < o.repeats; rep++) {
      for (const [cell, args] of echoServers) {
        const port = await freePort();
        const s = await start(process.execPath, [...args, '--port', String(port)], port, -1, 'READY');
        try {
          const plain = cell.includes('plain');
          let connectSeconds = 0;
          const r = await loadgen(exe, ['--mode', 'echo', '--port', String(s.port), '--conns', String(o.echoConns), '--size', '64', '--duration', String(o.duration), '--warmup', '1', ...(plain ? ['--plain'] : [])], (t) => (connectSeconds = t));
          add(cell, { rate: r.count / r.seconds, connectSeconds, loadgenCpuShare: r.loadgenCpu / r.seconds, failures: r.failures });
        } finally {
          await s.stop();
        }
      }
      for (const [cell, args] of handshakeServers) {
        const port = await freePort();
        const s = await start(process.execPath, [...args, '--port', String(port)], port, -1, 'READY');
        try {
          const cpu0 = cpuOf(s.pid);
          const r = await loadgen(exe, ['--mode', 'handshake', '--port', String(s.port), '--conns', String(o.handshakeConns), '--duration', String(o.duration), '--warmup', '0']);
          const cpu = cpuOf(s.pid) - cpu0;
          add(cell, { rate: r.count / r.seconds, serverCpuPerMsgUs: (cpu / r.count) * 1e6, loadgenCpuShare: r.loadgenCpu / r.seconds, failures: r.failures });
        } finally {
          await s.stop();
        }
      }
      const ingestServers: Array<[string, (port: number, qport: number) => string[], boolean]> = [
        ['ingest: LogCaster --tls-port', (p, q) => [LOGCASTER_BIN, '--backend', o.backend, '--port', '0', '--tls-port', String(p), ...tlsArgs, '--query-port', String(q), '--no-http', '--data-dir', 'none', '--capacity', '2M'], true],
        ['ingest: node:tls line server', (p, q) => [path.join(dist, 'net-ingest.js'), '--port', String(p), '--query-port', String(q), ...tlsArgs], true],
        ['ingest: LogCaster plain TCP', (p, q) => [LOGCASTER_BIN, '--backend', o.backend, '--port', String(p), '--query-port', String(q), '--no-http', '--data-dir', 'none', '--capacity', '2M'], false],
      ];
      for (const [cell, argsOf, tls] of ingestServers) {
        const port = await freePort();
        const qport = await freePort();
        const s = await start(process.execPath, argsOf(port, qport), port, qport, 'COUNT');
        try {
          const stored0 = Number(/Total=(\d+)/.exec(await queryLine(qport, 'STATS'))![1]);
          // From the moment every connection is ready (handshakes done, nothing written yet).
          let cpu0 = 0;
          let t0 = 0;
          let connectSeconds = 0;
          const r = await loadgen(exe, ['--mode', 'stream', '--port', String(port), '--conns', String(o.streamConns), '--size', '64', '--duration', String(o.duration), '--warmup', '0', ...(tls ? [] : ['--plain'])], (t) => {
            cpu0 = cpuOf(s.pid);
            t0 = Date.now();
            connectSeconds = t;
          });
          let stored = 0;
          const until = Date.now() + 60000;
          while ((stored = Number(/Total=(\d+)/.exec(await queryLine(qport, 'STATS'))![1]) - stored0) < r.lines && Date.now() < until) await sleep(20);
          const seconds = (Date.now() - t0) / 1000;
          const cpu = cpuOf(s.pid) - cpu0;
          if (stored !== r.lines) throw new Error(`${cell}: ${r.lines} lines sent, ${stored} stored`);
          add(cell, { rate: stored / seconds, connectSeconds, serverCpuPerMsgUs: (cpu / stored) * 1e6, loadgenCpuShare: r.loadgenCpu / seconds, failures: r.failures });
        } finally {
          await s.stop();
        }
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const load1 = fs.readFileSync('/proc/loadavg', 'utf8').trim();
  const summary = [...runs].map(([cell, rs]) => ({
    cell,
    rate: median(rs.map((r) => r.rate)),
    rates: rs.map((r) => Math.round(r.rate)),
    serverCpuPerMsgUs: rs[0].serverCpuPerMsgUs === undefined ? undefined : median(rs.map((r) => r.serverCpuPerMsgUs!)),
    loadgenCpuShare: median(rs.map((r) => r.loadgenCpuShare)),
    connectSeconds: rs[0].connectSeconds === undefined ? undefined : median(rs.map((r) => r.connectSeconds!)),
    failures: rs.reduce((a, r) => a + r.failures, 0),
  }));
  const byCell = new Map(summary.map((s) => [s.cell, s]));
  const ratio = (a: string, b: string, f: (s: (typeof summary)[0]) => number): string => (f(byCell.get(a)!) / f(byCell.get(b)!)).toFixed(2);
  const lines = [
    `TLS benchmark: ${o.repeats} repeats × ${o.duration} s, backend ${o.backend}, ${os.cpus().length} CPUs, Node ${process.version}; load average at start ${load0}, at end ${load1}`,
    '',
    '| Cell | Median rate /s | Runs | Server CPU µs per message | Load generator CPU (share of a core) | All connected after (s) | Client errors |',
    '|---|---|---|---|---|---|---|',
    ...summary.map(
      (s) =>
        `| ${s.cell} | ${Math.round(s.rate)} | ${s.rates.join(', ')} | ${s.serverCpuPerMsgUs === undefined ? '' : s.serverCpuPerMsgUs.toFixed(2)} | ${s.loadgenCpuShare.toFixed(2)} | ${s.connectSeconds === undefined ? '' : s.connectSeconds.toFixed(2)} | ${s.failures} |`,
    ),
    '',
    `* echo, reactor TLS / node:tls: ${ratio('echo: reactor TLS', 'echo: node:tls', (s) => s.rate)}× messages/s (target ≥ 1.3×); reactor TLS / reactor plain: ${ratio('echo: reactor TLS', 'echo: reactor plain TCP', (s) => s.rate)}×`,
    `* ingest, LogCaster TLS / node:tls: ${ratio('ingest: LogCaster --tls-port', 'ingest: node:tls line server', (s) => s.rate)}× lines/s; CPU per line, TLS / plain TCP: ${ratio('ingest: LogCaster --tls-port', 'ingest: LogCaster plain TCP', (s) => s.serverCpuPerMsgUs!)}× (target ≤ 1.5×)`,
    `* handshakes, reactor / node:tls: ${ratio('handshake: reactor TLS', 'handshake: node:tls', (s) => s.rate)}× per second`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
  const outDir = path.join(BENCH_DIR, 'results');
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'tls.json'), JSON.stringify({ options: o, load: [load0, load1], summary, runs: Object.fromEntries(runs) }, null, 2));
}

main().catch((e: Error) => {
  process.stderr.write(`${e.stack ?? e.message}\n`);
  process.exit(1);
});
