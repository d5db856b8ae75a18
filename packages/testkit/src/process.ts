// Child node processes for tests: started, watched and always ended by the test.
import { spawn, spawnSync, type ChildProcess, type ChildProcessWithoutNullStreams, type StdioOptions } from 'node:child_process';

export interface NodeExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface NodeChild {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<NodeExit>;
  /** Resolves with the first match of `re` in stdout; rejects if the process exits or `ms` pass first. */
  waitForOutput(re: RegExp, ms?: number): Promise<RegExpExecArray>;
  /** SIGKILL unless already gone; resolves once it has exited. Safe to call twice. */
  kill(): Promise<NodeExit>;
}

export interface NodeChildOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Open an IPC channel (child.send / process.send). */
  ipc?: boolean;
  /** Extra node flags before `-e`. */
  execArgv?: string[];
}

/** Start `node -e script`; stdout and stderr are collected (see stdout()/stderr()). */
export function startNode(script: string, options: NodeChildOptions = {}): NodeChild {
  const stdio: StdioOptions = options.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'];
  const child = spawn(process.execPath, [...(options.execArgv ?? []), '-e', script], { stdio, env: options.env, cwd: options.cwd });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (err += d));
  const exited = new Promise<NodeExit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const gone = (): boolean => child.exitCode !== null || child.signalCode !== null;
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitForOutput(re, ms = 10000) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          const m = re.exec(out);
          if (m) finish(() => resolve(m));
          return m !== null;
        };
        const onExit = (): void => finish(() => reject(new Error(`child exited before printing ${re}; stderr: ${err.slice(-2000)}`)));
        const timer = setTimeout(() => finish(() => reject(new Error(`timed out after ${ms} ms waiting for ${re}; stdout: ${out.slice(-500)}`))), ms);
        const finish = (settle: () => void): void => {
          clearTimeout(timer);
          child.stdout!.off('data', check);
          child.off('exit', onExit);
          settle();
        };
        if (check()) return;
        child.stdout!.on('data', check);
        child.once('exit', onExit);
      });
    },
    kill() {
      if (!gone()) child.kill('SIGKILL');
      return exited;
    },
  };
}

/** Run `node -e script` to completion; SIGKILLed after `timeoutMs` (then `signal` says so). */
export async function runNode(script: string, timeoutMs: number, options: NodeChildOptions = {}): Promise<NodeExit & { stdout: string; stderr: string }> {
  const c = startNode(script, options);
  const timer = setTimeout(() => void c.kill(), timeoutMs);
  try {
    const exit = await c.exited;
    return { ...exit, stdout: c.stdout(), stderr: c.stderr() };
  } finally {
    clearTimeout(timer);
    await c.kill();
  }
}

/**
 * Run `node -e script` synchronously: this thread — and so every reactor in this
 * process — is blocked until the child exits. Whatever the child does to our sockets
 * meanwhile (connects, sends, closes) is waiting in the kernel when our loop turns
 * again, so the next turn harvests it all at once. `args` are the script's
 * process.argv[1...], `nodeOptions` node's own (`--expose-gc`). Returns the child's stdout.
 */
export function runNodeBlocking(script: string, args: string[] = [], timeoutMs = 20000, nodeOptions: string[] = []): string {
  const r = spawnSync(process.execPath, [...nodeOptions, '-e', script, ...args], { encoding: 'utf8', timeout: timeoutMs });
  if (r.status !== 0) throw new Error(`blocking child failed (${r.status ?? r.signal}): ${r.stderr}${r.error ? String(r.error) : ''}`);
  return r.stdout;
}

/** What `child` prints on stdout once it exits 0, after `input` went to its stdin;
 *  rejects, naming it `label`, on another exit status (with its stderr) or after
 *  `timeoutMs` (it is killed). For client programs a test drives: nc, python3 peers. */
export function stdoutOf(child: ChildProcessWithoutNullStreams, label: string, input: string | Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${label} did not exit within ${timeoutMs} ms (printed ${Buffer.concat(out).length} bytes)`));
    }, timeoutMs);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(Buffer.concat(out));
      else reject(new Error(`${label} exited ${code}: ${err}`));
    });
    child.stdin.on('error', () => {}); // the peer may close before it read all of `input`
    child.stdin.end(input);
  });
}
