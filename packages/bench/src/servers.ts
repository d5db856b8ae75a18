// The servers under test: how to start each, what it can do, and its limits.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { BENCH_DIR, REPO_DIR, type CBinaries } from './build';
import { freePort, queryLine, sleep, waitExit } from './util';

export type Family = 'c' | 'node-net' | 'reactor' | 'logcaster';
export type Role = 'echo' | 'ingest';

export interface IngestOptions {
  ack: boolean;
  /** Reactor echo: measure Node's event-loop delay (a 10 ms timer, so not while idle). */
  loopDelay?: boolean;
  /** LogCaster only: persist to a temporary data dir with --fsync interval. */
  persist?: boolean;
}

export interface ServerSpec {
  id: string; // 'c-epoll', 'node-net', 'reactor-epoll', 'logcaster-epoll'
  family: Family;
  backend?: string;
  roles: Role[];
  /** Highest fd the server can watch + 1 (select: FD_SETSIZE). */
  fdLimit?: number;
  command(role: Role, port: number, queryPort: number, opt: IngestOptions): { cmd: string; args: string[]; dataDir?: string };
}

/** LogCaster CLI flags used by every run; one place to adjust if the CLI changes. */
export const LOGCASTER_BIN = path.join(REPO_DIR, 'packages', 'logcaster-server', 'bin', 'logcaster.js');

export function makeServers(
  bins: CBinaries,
  cModels: string[],
  reactorBackends: string[],
  logcasterBackends: string[],
  reactorRunMode: boolean,
): ServerSpec[] {
  const specs: ServerSpec[] = [];
  const dist = path.join(BENCH_DIR, 'dist', 'src', 'servers');
  for (const m of cModels) {
    specs.push({
      id: `c-${m}`,
      family: 'c',
      backend: m,
      roles: ['echo', 'ingest'],
      fdLimit: m === 'select' ? 1024 : undefined,
      command(role, port, qport, opt) {
        const args = ['--model', m, '--port', String(port), '--query-port', String(qport)];
        if (role === 'ingest') args.push('--ingest');
        if (opt.ack) args.push('--ack');
        return { cmd: bins.refServer, args };
      },
    });
  }
  specs.push({
    id: 'node-net',
    family: 'node-net',
    roles: ['echo', 'ingest'],
    command(role, port, qport, opt) {
      if (role === 'echo') return { cmd: process.execPath, args: [path.join(dist, 'net-echo.js'), '--port', String(port)] };
      const args = [path.join(dist, 'net-ingest.js'), '--port', String(port), '--query-port', String(qport)];
      if (opt.ack) args.push('--ack');
      return { cmd: process.execPath, args };
    },
  });
  for (const b of reactorBackends) {
    specs.push({
      id: `reactor-${b}`,
      family: 'reactor',
      backend: b,
      roles: ['echo'],
      fdLimit: b === 'select' ? 1024 : undefined,
      command(_role, port, _queryPort, opt) {
        const args = [path.join(dist, 'reactor-echo.js'), '--backend', b, '--port', String(port)];
        if (reactorRunMode) args.push('--run');
        else if (opt.loopDelay) args.push('--loop-delay');
        return { cmd: process.execPath, args };
      },
    });
  }
  for (const b of logcasterBackends) {
    specs.push({
      id: `logcaster-${b}`,
      family: 'logcaster',
      backend: b,
      roles: ['ingest'],
      fdLimit: b === 'select' ? 1024 : undefined,
      command(_role, port, qport, opt) {
        const args = [LOGCASTER_BIN, '--backend', b, '--host', '127.0.0.1', '--port', String(port), '--query-port', String(qport), '--no-http'];
        args.push('--max-clients', '20000');
        let dataDir: string | undefined;
        if (opt.persist) {
          dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'logcaster-bench-'));
          args.push('--data-dir', dataDir, '--fsync', 'interval');
        } else {
          args.push('--data-dir', 'none');
        }
        if (opt.ack) args.push('--ack');
        return { cmd: process.execPath, args, dataDir };
      },
    });
  }
  return specs;
}

export interface Running {
  pid: number;
  port: number;
  queryPort: number;
  child: ChildProcess;
  stderrTail(): string;
  stop(): Promise<void>;
}

/** Start a server on fresh ports and wait until it serves (READY line or query port answering). */
export async function startServer(spec: ServerSpec, role: Role, opt: IngestOptions, timeoutMs = 15000): Promise<Running> {
  const port = await freePort();
  let queryPort = await freePort();
  while (queryPort === port) queryPort = await freePort();
  const { cmd, args, dataDir } = spec.command(role, port, queryPort, opt);
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO_DIR });
  let stdout = '';
  let stderr = '';
  let exited = false;
  child.stdout!.on('data', (d) => {
    stdout += d;
    if (stdout.length > 65536) stdout = stdout.slice(-32768);
  });
  child.stderr!.on('data', (d) => {
    stderr += d;
    if (stderr.length > 65536) stderr = stderr.slice(-32768);
  });
  child.on('exit', () => (exited = true));
  child.on('error', (e) => {
    exited = true;
    stderr += String(e);
  });
  const stop = async (): Promise<void> => {
    if (!exited) {
      child.kill('SIGTERM');
      if (!(await waitExit(child, 3000))) {
        child.kill('SIGKILL');
        await waitExit(child, 3000);
      }
    }
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  };
  const t0 = Date.now();
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`${spec.id} exited during start-up: ${stderr.trim().split('\n').slice(-3).join(' | ') || 'no output'}`);
    }
    const m = /^READY (\d+) (-?\d+)/m.exec(stdout);
    if (m) {
      return {
        pid: child.pid!,
        port: Number(m[1]),
        queryPort: Number(m[2]),
        child,
        stderrTail: () => stderr.trim().split('\n').slice(-3).join(' | '),
        stop,
      };
    }
    if (spec.family === 'logcaster') {
      try {
        const line = await queryLine(queryPort, 'COUNT', 500);
        if (/^COUNT:/.test(line)) {
          return { pid: child.pid!, port, queryPort, child, stderrTail: () => stderr.trim().split('\n').slice(-3).join(' | '), stop };
        }
      } catch {
        /* not yet */
      }
    }
    if (Date.now() - t0 > timeoutMs) {
      await stop();
      throw new Error(`${spec.id} did not become ready in ${timeoutMs} ms: ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
    }
    await sleep(50);
  }
}

/** Lines the server has stored: STATS Total when it reports one, else COUNT. */
export async function storedLines(queryPort: number): Promise<number> {
  try {
    const s = await queryLine(queryPort, 'STATS');
    const m = /Total=(\d+)/.exec(s);
    if (m) return Number(m[1]);
  } catch {
    /* fall back to COUNT */
  }
  const c = await queryLine(queryPort, 'COUNT');
  const m = /^COUNT:\s*(\d+)/.exec(c);
  if (!m) throw new Error(`unexpected COUNT reply: ${c}`);
  return Number(m[1]);
}
