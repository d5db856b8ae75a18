// By hand: wrk -t1 -c50 (keep-alive) against a small in-memory response served by
// @logcaster/http, node:http and, when its binary is found, Bun.serve; the servers are
// child processes, measured alternately, median of the runs; wrk's own CPU is sampled so
// a load-generator bottleneck shows.
//
//   node packages/http/dist/bench/wrk.js [--runs 3] [--duration 5] [--connections 50]
//        [--backend auto] [--path /health] [--target name=URL-of-a-running-server ...]
//
// Bun: set LOGCASTER_BUN=/path/to/bun, or `npm install --no-save @oven/bun-linux-x64`.
// Needs wrk (apt-get install -y wrk).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '50' },
    backend: { type: 'string', default: 'auto' },
    path: { type: 'string', default: '/health' },
    target: { type: 'string', multiple: true, default: [] },
  },
});

interface Target {
  name: string;
  port: number;
  child?: ChildProcess;
  runs: { rps: number; wrkCpu: number; serverCpu: number }[];
}

function findBun(): string | undefined {
  if (process.env.LOGCASTER_BUN) return process.env.LOGCASTER_BUN;
  try {
    return require.resolve('@oven/bun-linux-x64/bin/bun');
  } catch {
    /* not installed next to the project */
  }
  try {
    return execFileSync('sh', ['-c', 'command -v bun'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

function start(name: string, cmd: string, args: string[]): Promise<Target> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      const m = /listening (\d+) (\S+)/.exec(out);
      if (m) resolve({ name: `${name} (${m[2]})`, port: Number(m[1]), child, runs: [] });
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}`)));
  });
}

/** utime + stime of a process, seconds. */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

function wrk(t: Target): Promise<{ rps: number; wrkCpu: number; serverCpu: number }> {
  const url = t.port > 0 ? `http://127.0.0.1:${t.port}${opts.path}` : t.name.split('=')[1];
  const duration = Number(opts.duration);
  return new Promise((resolve, reject) => {
    const serverBefore = t.child?.pid ? cpuSeconds(t.child.pid) : NaN;
    const w = spawn('wrk', ['-t1', `-c${opts.connections}`, `-d${duration}s`, url], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    let wrkCpu = 0;
    const sample = setInterval(() => (wrkCpu = Math.max(wrkCpu, cpuSeconds(w.pid!) || 0)), 200);
    w.stdout!.on('data', (d: Buffer) => (out += d));
    w.once('exit', (code) => {
      clearInterval(sample);
      if (code !== 0) return reject(new Error(`wrk exited with ${code}: ${out}`));
      const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
      const problems = [/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[0], /Socket errors: .*/.exec(out)?.[0]].filter(Boolean);
      if (problems.length) console.log(`    ${t.name}: ${problems.join('; ')}`);
      const serverCpu = t.child?.pid ? cpuSeconds(t.child.pid) - serverBefore : NaN;
      resolve({ rps, wrkCpu: wrkCpu / duration, serverCpu: serverCpu / duration });
    });
  });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
/** Requests per second of server CPU: what a request costs, less sensitive than req/s to
 *  other load on the machine. */
const perCpu = (r: { rps: number; serverCpu: number }): string => (r.serverCpu > 0 ? `${(r.rps / r.serverCpu / 1000).toFixed(0).padStart(4)}k req/cpu-s` : '');
const pct = (x: number): string => (Number.isNaN(x) ? '  ?' : `${Math.round(x * 100)}%`.padStart(4));

async function main(): Promise<void> {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      console.error('wrk is not installed (apt-get install -y wrk)');
      process.exit(2);
    }
  }
  const server = path.join(__dirname, 'health-server.js');
  const targets: Target[] = [await start('@logcaster/http', process.execPath, [server, 'logcaster', opts.backend!]), await start('node:http', process.execPath, [server, 'node'])];
  const bun = findBun();
  const bunScript = path.join(__dirname, '..', '..', 'bench', 'bun-health.ts');
  if (bun && existsSync(bunScript)) targets.push(await start('Bun.serve', bun, [bunScript]));
  else console.log('Bun.serve: not measured (set LOGCASTER_BUN or npm install --no-save @oven/bun-linux-x64)');
  for (const spec of opts.target!) targets.push({ name: spec, port: 0, runs: [] });
  const runs = Number(opts.runs);
  console.log(`wrk -t1 -c${opts.connections} -d${opts.duration}s ${opts.path}, ${runs} runs each, alternating; node ${process.version}`);
  try {
    for (let i = 0; i < runs; i++) {
      for (const t of targets) {
        const r = await wrk(t);
        t.runs.push(r);
        console.log(`  run ${i + 1} ${t.name.padEnd(34)} ${r.rps.toFixed(0).padStart(8)} req/s  server cpu ${pct(r.serverCpu)}  wrk cpu ${pct(r.wrkCpu)}  ${perCpu(r)}`);
      }
    }
  } finally {
    for (const t of targets) t.child?.kill('SIGTERM');
  }
  const base = median(targets[1].runs.map((r) => r.rps));
  console.log('median:');
  for (const t of targets) {
    const m = median(t.runs.map((r) => r.rps));
    const c = median(t.runs.map((r) => r.rps / r.serverCpu));
    console.log(`  ${t.name.padEnd(34)} ${m.toFixed(0).padStart(8)} req/s  ${(m / base).toFixed(2)}x node:http  ${(c / 1000).toFixed(0)}k req/cpu-s  (runs: ${t.runs.map((r) => r.rps.toFixed(0)).join(', ')})`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
