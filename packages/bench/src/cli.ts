#!/usr/bin/env node
// `npm run bench`: every installed backend on the reactor against node:net and the C
// reference servers. Markdown on stdout, raw JSON + SVG charts in packages/bench/results/.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { BENCH_DIR, buildC, type CBinaries } from './build';
import { Progress } from './progress';
import { renderMarkdown, writeCharts } from './report';
import { LOGCASTER_BIN, makeServers, startServer, storedLines, type Role, type ServerSpec } from './servers';
import type { BenchResults, Cell, Config, LoadResult, RunRecord, SyscallRecord, Workload } from './types';
import { machine, median, run, sleep, threadIds, which } from './util';

function parseList(v: string): number[] {
  return v.split(',').filter(Boolean).map(Number);
}

function parseConfig(argv: string[]): Config {
  const quick = argv.includes('--quick');
  const c: Config = quick
    ? {
        quick: true,
        repeats: 1,
        duration: 0.3,
        warmup: 0.1,
        size: 64,
        conns: [1, 20],
        ackConns: [20],
        active: 20,
        idle: [0, 100],
        idleConns: 200,
        idleCpuSeconds: 0.5,
        streamConns: 10,
        persistConns: 20,
        syscallCount: 2000,
        syscalls: false,
        workloads: ['echo', 'ack', 'stream', 'sparse', 'idle-rss', 'persist', 'syscalls'],
        only: [],
        out: path.join(BENCH_DIR, 'results'),
        runMode: false,
        cModels: ['select', 'poll', 'epoll', 'iouring'],
      }
    : {
        quick: false,
        repeats: 3,
        duration: 2,
        warmup: 0.5,
        size: 64,
        conns: [1, 100, 1000, 10000],
        ackConns: [1, 100, 1000, 10000],
        active: 100,
        idle: [0, 1000, 3000, 9000],
        idleConns: 10000,
        idleCpuSeconds: 2,
        streamConns: 100,
        persistConns: 1000,
        syscallCount: 20000,
        syscalls: true,
        workloads: ['echo', 'ack', 'stream', 'sparse', 'idle-rss', 'persist', 'syscalls'],
        only: [],
        out: path.join(BENCH_DIR, 'results'),
        runMode: false,
        cModels: ['select', 'poll', 'epoll', 'iouring'],
      };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    const take = (): string => {
      if (v === undefined) throw new Error(`${k} needs a value`);
      i++;
      return v;
    };
    switch (k) {
      case '--quick':
        break;
      case '--repeats':
        c.repeats = Number(take());
        break;
      case '--duration':
        c.duration = Number(take());
        break;
      case '--warmup':
        c.warmup = Number(take());
        break;
      case '--size':
        c.size = Number(take());
        break;
      case '--conns':
        c.conns = parseList(take());
        break;
      case '--ack-conns':
        c.ackConns = parseList(take());
        break;
      case '--active':
        c.active = Number(take());
        break;
      case '--idle':
        c.idle = parseList(take());
        break;
      case '--idle-conns':
        c.idleConns = Number(take());
        break;
      case '--idle-cpu-seconds':
        c.idleCpuSeconds = Number(take());
        break;
      case '--stream-conns':
        c.streamConns = Number(take());
        break;
      case '--persist-conns':
        c.persistConns = Number(take());
        break;
      case '--syscall-count':
        c.syscallCount = Number(take());
        break;
      case '--syscalls':
        c.syscalls = true;
        break;
      case '--no-syscalls':
        c.syscalls = false;
        break;
      case '--workloads':
        c.workloads = take().split(',') as Workload[];
        break;
      case '--only':
        c.only = take().split(',');
        break;
      case '--c-models':
        c.cModels = take().split(',');
        break;
      case '--out':
        c.out = path.resolve(take());
        break;
      case '--run-mode':
        c.runMode = true;
        break;
      case '--help':
      case '-h':
        process.stdout.write(
          [
            'usage: node packages/bench/dist/src/cli.js [options]',
            '  --quick                 tiny counts, 1 repeat (< 1 minute)',
            '  --repeats N             runs per cell; medians are reported (default 3)',
            '  --duration S --warmup S measured window and warm-up per run (default 2, 0.5)',
            '  --size B                message / line size in bytes (default 64)',
            '  --conns 1,100,...       connection counts for echo; --ack-conns for ack ingest',
            '  --active N --idle a,b   sparse activity: N active + growing idle connections',
            '  --idle-conns N          idle connections held for the RSS-per-connection figure',
            '  --idle-cpu-seconds S    how long they idle while the server CPU is measured (default 2)',
            '  --stream-conns N        connections for streamed ingest; --persist-conns N for --fsync',
            '  --syscall-count N       messages traced by strace -c -f; --syscalls / --no-syscalls',
            '  --workloads a,b         echo,ack,stream,sparse,idle-rss,persist,syscalls',
            '  --only id,...           only servers whose id starts with one of these (c-epoll, node-net, reactor-, logcaster-)',
            '  --c-models a,b          C reference models (select,poll,epoll,iouring)',
            '  --run-mode              reactor echo servers use reactor.run() instead of the Node loop',
            '  --out DIR               results directory (default packages/bench/results)',
          ].join('\n') + '\n',
        );
        process.exit(0);
      // falls through (unreachable)
      default:
        throw new Error(`unknown option ${k} (try --help)`);
    }
  }
  return c;
}

interface Discovery {
  reactor: string[];
  logcaster: string[];
  notes: string[];
  backends: Array<{ name: string; status: string; reason: string }>;
}

function discover(): Discovery {
  const d: Discovery = { reactor: [], logcaster: [], notes: [], backends: [] };
  let core: typeof import('@logcaster/core') | undefined;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    core = require('@logcaster/core') as typeof import('@logcaster/core');
  } catch (e) {
    d.notes.push(`@logcaster/core cannot be loaded (${(e as Error).message.split('\n')[0]}): reactor servers skipped`);
  }
  if (core) {
    for (const name of core.BACKEND_NAMES) {
      const { attempt } = core.tryBackend(name);
      d.backends.push({ name, status: attempt.status, reason: attempt.reason.split('\n')[0] });
      if (attempt.status === 'loaded') d.reactor.push(name);
    }
  }
  if (fs.existsSync(LOGCASTER_BIN)) d.logcaster = [...d.reactor];
  else d.notes.push(`LogCaster server not found at ${path.relative(process.cwd(), LOGCASTER_BIN)}: LogCaster ingest workloads skipped`);
  return d;
}

function pick(servers: ServerSpec[], only: string[], pred: (s: ServerSpec) => boolean): ServerSpec[] {
  return servers.filter((s) => pred(s) && (!only.length || only.some((o) => s.id.startsWith(o))));
}

function planCells(cfg: Config, servers: ServerSpec[]): Cell[] {
  const cells: Cell[] = [];
  const want = (w: Workload): boolean => cfg.workloads.includes(w);
  const echoAll = pick(servers, cfg.only, (s) => s.roles.includes('echo'));
  const cEpoll = (s: ServerSpec): boolean => s.id === 'c-epoll';
  const ingest = pick(servers, cfg.only, (s) => s.roles.includes('ingest') && (s.family !== 'c' || cEpoll(s)));
  const echoMain = pick(servers, cfg.only, (s) => s.roles.includes('echo') && (s.family !== 'c' || cEpoll(s)));
  const logcaster = pick(servers, cfg.only, (s) => s.family === 'logcaster');
  const add = (workload: Workload, s: ServerSpec, conns: number, idle = 0): void => {
    const c: Cell = { key: `${workload}|${s.id}|${conns}|${idle}`, workload, server: s.id, conns, idle, runs: [] };
    if (s.fdLimit && conns + idle >= s.fdLimit) {
      c.skip = `${s.backend} cannot watch fd >= FD_SETSIZE (${s.fdLimit}); ${conns + idle} connections need more descriptors`;
    }
    cells.push(c);
  };
  if (want('echo')) for (const n of cfg.conns) for (const s of echoAll) add('echo', s, n);
  if (want('ack')) for (const n of cfg.ackConns) for (const s of ingest) add('ack', s, n);
  if (want('stream')) for (const s of ingest) add('stream', s, cfg.streamConns);
  if (want('sparse')) for (const k of cfg.idle) for (const s of echoMain) add('sparse', s, cfg.active, k);
  if (want('idle-rss')) for (const s of [...echoMain, ...logcaster]) add('idle-rss', s, cfg.idleConns);
  if (want('persist')) for (const s of logcaster) add('persist', s, cfg.persistConns);
  return cells;
}

function roleOf(w: Workload, s: ServerSpec): Role {
  if (w === 'ack' || w === 'stream' || w === 'persist') return 'ingest';
  return s.roles.includes('echo') ? 'echo' : 'ingest';
}

function loadArgs(cfg: Config, cell: Cell, port: number, pid: number): string[] {
  const a = ['--port', String(port), '--server-pid', String(pid), '--size', String(cfg.size), '--connect-timeout', cfg.quick ? '5' : '30'];
  const timed = ['--duration', String(cfg.duration), '--warmup', String(cfg.warmup)];
  switch (cell.workload) {
    case 'echo':
      return [...a, '--mode', 'echo', '--conns', String(cell.conns), ...timed];
    case 'ack':
    case 'persist':
      return [...a, '--mode', 'ack', '--conns', String(cell.conns), ...timed];
    case 'stream':
      // no warm-up: every line written must be found in the server's count
      return [...a, '--mode', 'stream', '--conns', String(cell.conns), '--duration', String(cfg.duration), '--warmup', '0'];
    case 'sparse':
      return [...a, '--mode', 'echo', '--conns', String(cell.conns), '--idle', String(cell.idle), ...timed];
    case 'idle-rss':
      return [
        ...a,
        '--mode',
        'idle',
        '--conns',
        String(cell.conns),
        '--settle',
        cfg.quick ? '0.3' : '1',
        // the server's CPU while they idle is measured over this window
        '--duration',
        String(cfg.idleCpuSeconds),
        ...(cell.server.startsWith('logcaster-') ? ['--idle-proto', 'ack'] : []),
      ];
    default:
      throw new Error(`no load for ${cell.workload}`);
  }
}

async function runCell(cfg: Config, bins: CBinaries, spec: ServerSpec, cell: Cell): Promise<RunRecord> {
  const role = roleOf(cell.workload, spec);
  // ingest servers answer OK per line except in the streamed workload
  const ack = role === 'ingest' && cell.workload !== 'stream';
  const srv = await startServer(spec, role, { ack, persist: cell.workload === 'persist', loopDelay: cell.workload === 'echo' });
  const rec: RunRecord = {};
  try {
    const args = loadArgs(cfg, cell, srv.port, srv.pid);
    const budget = (cfg.duration + cfg.warmup) * 1000 + 120000;
    const r = await run(bins.loadgen, args, budget);
    if (r.code !== 0) {
      rec.error = `loadgen exit ${r.code ?? r.signal}: ${r.stderr.trim().split('\n').slice(-2).join(' | ')}`;
      return rec;
    }
    rec.load = JSON.parse(r.stdout) as LoadResult;
    const l = rec.load;
    if (cell.workload !== 'idle-rss' && l.messages === 0) {
      rec.error = `no data moved (${l.connected} connected, ${l.unanswered} never answered, ${l.closed_by_peer} closed by the server)`;
    } else if (cell.workload === 'idle-rss' && l.unanswered > 0) {
      rec.error = `${l.unanswered} of ${l.connected} idle connections never answered their first message`;
    }
    if (/warning/.test(r.stderr)) rec.warning = r.stderr.trim().split('\n').filter((l) => /warning/.test(l)).join(' ');
    if (!rec.error && (srv.child.exitCode !== null || srv.child.signalCode !== null)) {
      rec.error = `server exited during the run: ${srv.stderrTail()}`;
    }
    if (cell.workload === 'stream' && !rec.error) {
      // wait until the count stops moving (it should equal lines_sent already)
      let last = -1;
      const t0 = Date.now();
      for (;;) {
        const n = await storedLines(srv.queryPort);
        if (n === last || n >= (rec.load.lines_sent ?? 0) || Date.now() - t0 > 10000) {
          rec.stored = n;
          break;
        }
        last = n;
        await sleep(200);
      }
    }
    return rec;
  } finally {
    await srv.stop();
    // Written on SIGTERM by the reactor echo server (servers/reactor-echo.ts).
    const loop = /LOOP_DELAY_MS ([\d.]+) ([\d.]+) ([\d.]+)/.exec(srv.stderrTail());
    if (loop) rec.loopDelayMs = { p50: Number(loop[1]), p99: Number(loop[2]), max: Number(loop[3]) };
  }
}

async function traceSyscalls(cfg: Config, bins: CBinaries, spec: ServerSpec, mode: 'echo' | 'ack'): Promise<SyscallRecord> {
  const conns = Math.min(100, cfg.active);
  const rec: SyscallRecord = { server: spec.id, mode, conns, messages: 0, calls: 0, perMessage: NaN, top: [] };
  const role: Role = mode === 'echo' ? 'echo' : 'ingest';
  const srv = await startServer(spec, role, { ack: mode === 'ack' });
  const out = path.join(os.tmpdir(), `logcaster-bench-strace-${process.pid}-${spec.id}.txt`);
  try {
    const tids = threadIds(srv.pid);
    const st = spawn('strace', ['-c', '-f', '-o', out, ...tids.flatMap((t) => ['-p', String(t)])], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    st.stderr!.on('data', (d) => (err += d));
    const t0 = Date.now();
    while ((err.match(/attached/g) ?? []).length < tids.length && Date.now() - t0 < 3000 && st.exitCode === null) await sleep(20);
    await sleep(100);
    const r = await run(
      bins.loadgen,
      ['--port', String(srv.port), '--connect-timeout', '20', '--mode', mode, '--conns', String(conns), '--size', String(cfg.size), '--count', String(cfg.syscallCount), '--timeout', '120'],
      180000,
    );
    await sleep(100);
    st.kill('SIGINT');
    await new Promise<void>((res) => (st.exitCode !== null ? res() : st.once('exit', () => res())));
    if (r.code !== 0) throw new Error(`loadgen: ${r.stderr.trim()}`);
    const load = JSON.parse(r.stdout) as LoadResult;
    rec.messages = load.messages_total + load.connected; // measured messages + one priming exchange per connection
    const text = fs.readFileSync(out, 'utf8');
    const rows: Array<{ name: string; calls: number }> = [];
    for (const line of text.split('\n')) {
      const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$/.exec(line);
      if (!m) continue;
      if (m[2] === 'total') rec.calls = Number(m[1]);
      else rows.push({ name: m[2], calls: Number(m[1]) });
    }
    rows.sort((a, b) => b.calls - a.calls);
    rec.perMessage = rec.calls / rec.messages;
    rec.top = rows.slice(0, 6).map((x) => ({ name: x.name, perMessage: x.calls / rec.messages }));
  } catch (e) {
    rec.error = (e as Error).message;
  } finally {
    await srv.stop();
    fs.rmSync(out, { force: true });
  }
  return rec;
}

function summarise(cell: Cell): void {
  const ok = cell.runs.filter((r) => r.load && !r.error);
  if (!ok.length) return;
  const L = ok.map((r) => r.load!);
  const refused = median(L.map((l) => l.connect_failed + l.closed_by_peer + l.errors));
  const s: Cell['summary'] = {
    runs: ok.length,
    msgsPerSec: median(L.map((l) => l.msgs_per_sec)),
    p50: median(L.map((l) => l.latency_us.p50)),
    p90: median(L.map((l) => l.latency_us.p90)),
    p99: median(L.map((l) => l.latency_us.p99)),
    p999: median(L.map((l) => l.latency_us.p999)),
    cpuPerM: median(L.map((l) => (l.server_cpu && l.messages ? ((l.server_cpu.user + l.server_cpu.sys) / l.messages) * 1e6 : NaN))),
    serverUtil: median(L.map((l) => l.server_cpu?.utilization ?? NaN)),
    clientUtil: median(L.map((l) => l.client_cpu.utilization)),
    hwmKb: median(L.map((l) => l.server_rss_kb.hwm)),
    refused,
  };
  if (ok.some((r) => r.loopDelayMs)) {
    s.loopP99 = median(ok.map((r) => r.loopDelayMs?.p99 ?? NaN));
    s.loopMax = median(ok.map((r) => r.loopDelayMs?.max ?? NaN));
  }
  if (cell.workload === 'idle-rss') {
    s.idleBytesPerConn = median(
      L.map((l) => ((l.server_rss_kb.idle_held - l.server_rss_kb.before) * 1024) / Math.max(1, l.connected - l.rss_base_conns)),
    );
    s.msgsPerSec = NaN;
  }
  if (cell.workload === 'stream') {
    const stored = ok.map((r) => r.stored ?? NaN);
    s.stored = median(stored);
    s.lost = median(ok.map((r) => (r.load!.lines_sent ?? 0) - (r.stored ?? 0)));
    s.msgsPerSec = median(ok.map((r) => (r.stored ?? NaN) / (r.load!.seconds + (r.load!.drain_seconds ?? 0))));
  }
  cell.summary = s;
  const notes: string[] = [];
  if (refused > 0) {
    const sel = cell.server.endsWith('select');
    notes.push(`${refused} of ${cell.conns + cell.idle} connections refused/closed${sel ? ' (fd >= FD_SETSIZE)' : ''}`);
  }
  if (ok.some((r) => r.load!.client_cpu.saturated)) notes.push('client core saturated');
  if (cell.runs.length > ok.length) notes.push(`${cell.runs.length - ok.length} run(s) failed: ${cell.runs.find((r) => r.error)?.error}`);
  if (notes.length) cell.note = notes.join('; ');
}

async function main(): Promise<void> {
  const cfg = parseConfig(process.argv.slice(2));
  const t0 = Date.now();
  const loadavg = (): string => {
    try {
      return fs.readFileSync('/proc/loadavg', 'utf8').trim().split(' ').slice(0, 3).join(' ');
    } catch {
      return '';
    }
  };
  const loadStart = loadavg();
  const bins = buildC((m) => process.stderr.write(`${m}\n`));
  const disc = discover();
  const servers = makeServers(bins, cfg.cModels, disc.reactor, disc.logcaster, cfg.runMode);
  const cells = planCells(cfg, servers);
  for (const n of disc.notes) process.stderr.write(`note: ${n}\n`);
  const haveStrace = Boolean(which('strace'));
  const traceTargets: Array<[ServerSpec, 'echo' | 'ack']> = [];
  let syscallSkip: string | undefined;
  if (cfg.syscalls && cfg.workloads.includes('syscalls')) {
    if (!haveStrace) syscallSkip = 'strace is not installed (apt-get install -y strace)';
    else {
      for (const s of pick(servers, cfg.only, (x) => x.roles.includes('echo'))) traceTargets.push([s, 'echo']);
      for (const s of pick(servers, cfg.only, (x) => x.roles.includes('ingest') && (x.family !== 'c' || x.id === 'c-epoll')))
        traceTargets.push([s, 'ack']);
    }
  } else syscallSkip = cfg.quick ? 'skipped in --quick mode (pass --syscalls)' : 'disabled (--no-syscalls)';
  if (!cfg.workloads.includes('persist') || !disc.logcaster.length) {
    /* nothing */
  }

  const runnable = cells.filter((c) => !c.skip);
  const perRun = cfg.duration + cfg.warmup + 1.2;
  const weights = runnable.length * cfg.repeats * perRun + traceTargets.length * 6;
  const progress = new Progress(runnable.length * cfg.repeats + traceTargets.length, weights);
  const specById = new Map(servers.map((s) => [s.id, s]));
  for (let rep = 0; rep < cfg.repeats; rep++) {
    for (const cell of runnable) {
      const spec = specById.get(cell.server)!;
      let rec: RunRecord;
      try {
        rec = await runCell(cfg, bins, spec, cell);
      } catch (e) {
        rec = { error: (e as Error).message };
      }
      cell.runs.push(rec);
      if (rec.error) progress.note(`! ${cell.key}: ${rec.error}`);
      progress.step(`${cell.workload} ${cell.server} c=${cell.conns}${cell.idle ? ` idle=${cell.idle}` : ''} rep ${rep + 1}`, perRun);
    }
  }
  const syscalls: SyscallRecord[] = [];
  for (const [s, mode] of traceTargets) {
    const r = await traceSyscalls(cfg, bins, s, mode);
    if (r.error) progress.note(`! strace ${s.id} ${mode}: ${r.error}`);
    syscalls.push(r);
    progress.step(`strace ${s.id} ${mode}`, 6);
  }
  progress.finish();
  for (const c of cells) summarise(c);

  const results: BenchResults = {
    machine: { ...machine(), loadavgStart: loadStart, loadavgEnd: loadavg() },
    config: cfg,
    command: `node packages/bench/dist/src/cli.js ${process.argv.slice(2).join(' ')}`.trim(),
    backends: disc.backends,
    notes: disc.notes,
    compiler: bins.compiler,
    cells,
    syscalls,
    syscallSkip,
    elapsedSeconds: (Date.now() - t0) / 1000,
  };
  fs.mkdirSync(cfg.out, { recursive: true });
  const stamp = results.machine.date.replace(/[:.]/g, '-');
  const jsonPath = path.join(cfg.out, `bench-${stamp}.json`);
  fs.writeFileSync(jsonPath, JSON.stringify(results, null, 1));
  fs.writeFileSync(path.join(cfg.out, 'latest.json'), JSON.stringify(results, null, 1));
  const charts = writeCharts(results, cfg.out);
  const md = renderMarkdown(results, charts.map((c) => path.basename(c)));
  fs.writeFileSync(path.join(cfg.out, 'latest.md'), md);
  process.stdout.write(md);
  process.stderr.write(`\nraw results: ${jsonPath}\ncharts: ${charts.join(', ')}\n`);
}

main().catch((e) => {
  process.stderr.write(`bench: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
