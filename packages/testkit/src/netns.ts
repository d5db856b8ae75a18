// A network namespace joined to this one by a veth pair, for tests that need a client
// the server does not see as local: inside it, a connection to `hostAddress` arrives
// from `peerAddress`, a real non-loopback address. Needs root (CAP_NET_ADMIN) and the
// `ip` command; `netnsUnavailable()` says why not, for a visible skip.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export interface RunResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

export interface NetNamespace {
  readonly name: string;
  /** The host's end of the veth pair: listen here (or on 0.0.0.0). */
  readonly hostAddress: string;
  /** The namespace's end: connections made inside come from this address. */
  readonly peerAddress: string;
  /** Runs `cmd args…` inside the namespace, feeding `input` to its stdin. */
  run(cmd: string, args: readonly string[], options?: { input?: string | Buffer; timeoutMs?: number }): Promise<RunResult>;
  /** Deletes the namespace (and with it the veth pair). */
  close(): void;
}

const live = new Set<string>();
let exitHook = false;
let probed: string | undefined | null = null;

function ip(args: readonly string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** undefined when a namespace can be made here; otherwise the reason (for a skip title). */
export function netnsUnavailable(): string | undefined {
  if (probed !== null) return probed;
  try {
    createNetNamespace().close();
    probed = undefined;
  } catch (e) {
    const err = e as { stderr?: Buffer | string; message: string };
    const detail = (err.stderr ? String(err.stderr) : err.message).trim().split('\n')[0];
    probed = `no network namespace with a veth pair can be made here (${detail})`;
  }
  return probed;
}

/** A fresh namespace on its own /30 of 10.231.0.0/16, chosen to not collide with addresses in use. */
export function createNetNamespace(): NetNamespace {
  const used = ip(['-4', '-o', 'addr', 'show']);
  let net = -1;
  for (let tries = 0; tries < 100 && net < 0; tries++) {
    const n = randomBytes(2).readUInt16BE(0) & 0x3fff; // 16384 /30 blocks
    if (!used.includes(`10.231.${n >> 6}.${(n & 63) * 4 + 1}/`)) net = n;
  }
  if (net < 0) throw new Error('no free /30 in 10.231.0.0/16');
  const base = `10.231.${net >> 6}.${(net & 63) * 4}`;
  const octets = base.split('.').map(Number);
  const hostAddress = `${octets[0]}.${octets[1]}.${octets[2]}.${octets[3] + 1}`;
  const peerAddress = `${octets[0]}.${octets[1]}.${octets[2]}.${octets[3] + 2}`;
  const id = randomBytes(3).toString('hex');
  const name = `logcaster-${id}`;
  const hostIf = `lch${id}`;
  const peerIf = `lcn${id}`;
  ip(['netns', 'add', name]);
  live.add(name);
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => {
      for (const n of live) deleteNamespace(n);
    });
  }
  try {
    ip(['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', peerIf]);
    ip(['link', 'set', peerIf, 'netns', name]);
    ip(['addr', 'add', `${hostAddress}/30`, 'dev', hostIf]);
    ip(['link', 'set', hostIf, 'up']);
    ip(['-n', name, 'addr', 'add', `${peerAddress}/30`, 'dev', peerIf]);
    ip(['-n', name, 'link', 'set', peerIf, 'up']);
    ip(['-n', name, 'link', 'set', 'lo', 'up']);
  } catch (e) {
    deleteNamespace(name);
    try {
      ip(['link', 'del', hostIf]);
    } catch {
      /* it went with the namespace, or was never made */
    }
    throw e;
  }
  return {
    name,
    hostAddress,
    peerAddress,
    run: (cmd, args, options = {}) => runIn(name, cmd, args, options.input, options.timeoutMs ?? 30_000),
    close: () => deleteNamespace(name),
  };
}

function deleteNamespace(name: string): void {
  if (!live.delete(name)) return;
  try {
    ip(['netns', 'del', name]);
  } catch {
    /* already gone */
  }
}

function runIn(name: string, cmd: string, args: readonly string[], input: string | Buffer | undefined, timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', name, cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} in ${name} did not finish within ${timeoutMs} ms; stderr: ${err}`));
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr: err });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}
