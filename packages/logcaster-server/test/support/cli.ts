// The `logcaster` command as a child process, for CLI tests.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';

export const BIN = path.resolve(__dirname, '../../../bin/logcaster.js');

/** Runs the CLI to completion (flags that exit, refusals). */
export function runSync(args: string[], env: NodeJS.ProcessEnv = process.env, wrap?: Wrap): { status: number | null; stdout: string; stderr: string } {
  const argv = [process.execPath, BIN, ...args];
  const { command, args: cmdArgs } = wrap ? wrap(argv) : { command: argv[0], args: argv.slice(1) };
  const r = spawnSync(command, cmdArgs, { encoding: 'utf8', timeout: 15000, env });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs the CLI to completion without blocking the event loop (the server under test
 *  may run in this process), feeding `input` to its stdin. */
export function runCli(args: string[], input: string | Buffer = '', env: NodeJS.ProcessEnv = process.env): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20000);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
    child.stdin!.on('error', () => {});
    child.stdin!.end(input);
  });
}

export interface Running {
  child: ChildProcess;
  line: string;
  ingestPort: number;
  queryPort: number;
  /** The HTTP port (tests start it on a free port). */
  httpPort: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: () => string;
}

/** Runs `argv` as it is, or inside something (withTmpfs of @logcaster/testkit). */
export type Wrap = (argv: string[]) => { command: string; args: string[] };

/** Starts the CLI on free ports (in `cwd`, by default this process's) and resolves with its start line. */
export async function startCli(args: string[], env: NodeJS.ProcessEnv = process.env, wrap?: Wrap, cwd?: string): Promise<Running> {
  const argv = [process.execPath, BIN, '--port', '0', '--query-port', '0', '--http-port', '0', ...args];
  const { command, args: cmdArgs } = wrap ? wrap(argv) : { command: argv[0], args: argv.slice(1) };
  const child = spawn(command, cmdArgs, { stdio: ['ignore', 'pipe', 'pipe'], env, cwd });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const line = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no start line; stderr: ${err}`)), 10000);
    child.stdout!.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(t);
        resolve(out.slice(0, nl));
      }
    });
    child.once('exit', (code) => reject(new Error(`exited ${code} before starting: ${err}`)));
  });
  const m = /ingest=[^ ]+:(\d+) query=[^ ]+:(\d+) (?:http=[^ ]+:(\d+) )?/.exec(line);
  if (!m) throw new Error(`bad start line: ${line}`);
  return { child, line, ingestPort: Number(m[1]), queryPort: Number(m[2]), httpPort: Number(m[3] ?? NaN), exited, stderr: () => err };
}

/** A start function for a suite whose every server is killed after its test, whether
 *  the test passed or not (call it in the describe body: it registers an afterEach). */
export function startCliPerTest(): (args: string[], env?: NodeJS.ProcessEnv, cwd?: string) => Promise<Running> {
  const started: Running[] = [];
  afterEach(async () => {
    for (const r of started.splice(0)) {
      r.child.kill('SIGKILL');
      await r.exited;
    }
  });
  return async (args, env, cwd) => {
    const r = await startCli(args, env, undefined, cwd);
    started.push(r);
    return r;
  };
}
