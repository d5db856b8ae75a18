// The receivers of the streamed-ingest benchmark, each started on a fresh port with the
// configuration shipped here, each able to say how many lines are in its output so far and
// where that output is (for the sequence check):
//   logcaster-journal  --data-dir <tmp> --fsync interval (the product path with persistence)
//   logcaster-memory   --data-dir none (the same, memory only)
//   rsyslog-imtcp      rsyslog imtcp -> omfile, tuned (large main queue, batch dequeue, async writes)
//   rsyslog-imptcp     the same with imptcp, rsyslog's multi-threaded plain-TCP input
//   syslog-ng          network(tcp) -> file(), tuned (threaded, large fifos, flow control)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

import { REPO_DIR } from '../build';
import { LOGCASTER_BIN } from '../servers';
import { freePort, queryLine, sleep, waitExit, which } from '../util';
import { findSyslogNg, type SyslogNg } from './syslog-ng';

export type PeerId = 'logcaster-journal' | 'logcaster-memory' | 'rsyslog-imtcp' | 'rsyslog-imptcp' | 'syslog-ng';
export const PEER_IDS: PeerId[] = ['logcaster-journal', 'logcaster-memory', 'rsyslog-imtcp', 'rsyslog-imptcp', 'syslog-ng'];

/** Where a stopped peer's lines are, for seqcheck. */
export type Output = { files: string[] } | { none: string };

export interface RunningPeer {
  pid: number;
  port: number;
  /** Lines in the peer's output so far (its own count, or file bytes / line size). */
  stored(): Promise<number>;
  /** Before stop(): whatever must be read while the peer runs (LogCaster memory: its window). */
  capture?(seqcheck: (input: NodeJS.ReadableStream) => Promise<string>): Promise<string>;
  /** Stops the peer gracefully (it flushes what it holds) and says where its output is. */
  stop(): Promise<Output>;
  /** Removes its files. */
  cleanup(): void;
}

export interface PeerSpec {
  id: PeerId;
  /** How it is configured, one line for the report. */
  config: string;
  /** Why it cannot run on this machine (a visible skip). */
  skip?: string;
  version?: string;
  start(lineBytes: number): Promise<RunningPeer>;
}

function tmpDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `logcaster-storebench-${tag}-`));
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function spawnLogged(cmd: string, args: string[], env?: NodeJS.ProcessEnv): { child: ChildProcess; tail: () => string } {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO_DIR, env });
  let out = '';
  const keep = (d: Buffer): void => {
    out += d.toString('utf8');
    if (out.length > 16384) out = out.slice(-8192);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  child.on('error', (e) => (out += String(e)));
  return { child, tail: () => out.trim().split('\n').slice(-3).join(' | ') };
}

async function waitListening(child: ChildProcess, port: number, what: string, tail: () => string): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${what} exited during start-up: ${tail() || 'no output'}`);
    if (await canConnect(port)) return;
    if (Date.now() - t0 > 15000) throw new Error(`${what} did not listen on ${port} within 15 s: ${tail()}`);
    await sleep(50);
  }
}

async function terminate(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  if (!(await waitExit(child, graceMs))) {
    child.kill('SIGKILL');
    await waitExit(child, 5000);
  }
}

/** A started peer that writes what it receives to the file `out` in its scratch `dir`:
 *  running once it listens on `port` (else stopped, its dir removed, and the error thrown). */
async function fileWritingPeer(child: ChildProcess, tail: () => string, what: string, port: number, dir: string, out: string, lineBytes: number): Promise<RunningPeer> {
  try {
    await waitListening(child, port, what, tail);
  } catch (e) {
    await terminate(child, 3000);
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    pid: child.pid!,
    port,
    stored: async () => fileLines(out, lineBytes),
    async stop() {
      await terminate(child, 60000);
      return { files: fs.existsSync(out) ? [out] : [] };
    },
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

function fileLines(file: string, lineBytes: number): number {
  try {
    return Math.floor(fs.statSync(file).size / lineBytes);
  } catch {
    return 0;
  }
}

export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else if (e.isFile()) out.push(p);
  }
  return out.sort();
}

async function statsField(queryPort: number, field: string): Promise<number> {
  const s = await queryLine(queryPort, 'STATS', 10000);
  const m = new RegExp(`\\b${field}=(\\d+)`).exec(s);
  if (!m) throw new Error(`STATS has no ${field}=: ${s.slice(0, 200)}`);
  return Number(m[1]);
}

/** LogCaster's options this bench relies on, checked against its --help once. */
function logcasterHelp(): string {
  const r = spawnSync(process.execPath, [LOGCASTER_BIN, '--help'], { encoding: 'utf8' });
  return r.stdout ?? '';
}

/** Flags that keep every line of a run in the journal (the sequence check reads all of them). */
export function keepEverythingFlags(help: string): string[] {
  if (/--retention-size/.test(help)) return ['--retention-size', '1T', ...(/--retention-time/.test(help) ? ['--retention-time', '0'] : [])];
  return ['--rotate-size', '256M', '--max-files', '100000'];
}

export interface LogcasterProc {
  pid: number;
  port: number;
  queryPort: number;
  /** The journal directory (a fresh temporary one), if any. */
  dataDir?: string;
  /** SIGTERM, then waits for the drain; throws unless it exited 0. */
  stop(): Promise<void>;
  cleanup(): void;
}

const LOGCASTER_BASE = ['--host', '127.0.0.1', '--no-http', '--max-clients', '20000'];

/** A LogCaster server on free ports, with a temporary journal (journal) or memory only. */
export async function startLogcaster(backend: string, journal: boolean, extra: string[] = []): Promise<LogcasterProc> {
  const dataDir = journal ? tmpDir('journal') : undefined;
  const args = [LOGCASTER_BIN, '--backend', backend, ...LOGCASTER_BASE, '--port', '0', '--query-port', '0'];
  if (dataDir) args.push('--data-dir', dataDir, '--fsync', 'interval');
  else args.push('--data-dir', 'none');
  args.push(...extra);
  const { child, tail } = spawnLogged(process.execPath, args);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  const cleanup = (): void => {
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  };
  const t0 = Date.now();
  let ports: RegExpExecArray | null = null;
  // the start line: "LogCaster <v> backend=... ingest=127.0.0.1:<p> query=127.0.0.1:<q> ..."
  while (!(ports = / ingest=127\.0\.0\.1:(\d+) query=127\.0\.0\.1:(\d+)/.exec(out))) {
    if (child.exitCode !== null || Date.now() - t0 > 20000) {
      await terminate(child, 3000);
      cleanup();
      throw new Error(`logcaster did not start: ${tail() || 'no output'}`);
    }
    await sleep(30);
  }
  return {
    pid: child.pid!,
    port: Number(ports[1]),
    queryPort: Number(ports[2]),
    dataDir,
    async stop() {
      await terminate(child, 120000);
      if (child.exitCode !== 0) throw new Error(`logcaster exited ${child.exitCode ?? child.signalCode} on SIGTERM: ${tail()}`);
    },
    cleanup,
  };
}

function logcasterPeer(id: 'logcaster-journal' | 'logcaster-memory', help: string, backend: string): PeerSpec {
  const journal = id === 'logcaster-journal';
  const keep = journal ? keepEverythingFlags(help) : [];
  const base = ['--backend', backend, ...LOGCASTER_BASE];
  return {
    id,
    config: journal
      ? `logcaster ${base.join(' ')} --data-dir <tmp> --fsync interval ${keep.join(' ')}`
      : `logcaster ${base.join(' ')} --data-dir none`,
    skip: fs.existsSync(LOGCASTER_BIN) ? undefined : `${LOGCASTER_BIN} not built (npm run build)`,
    async start() {
      const lc = await startLogcaster(backend, journal, keep);
      return {
        pid: lc.pid,
        port: lc.port,
        // the journal peer's output is what its writer has written; the memory peer's, what it stored
        stored: () => statsField(lc.queryPort, journal ? 'Persisted' : 'Total'),
        capture: journal
          ? undefined
          : async (seqcheck) => {
              // the in-memory window (--capacity): the older lines were evicted by design
              const current = await statsField(lc.queryPort, 'Current');
              const s = net.connect({ host: '127.0.0.1', port: lc.queryPort });
              s.write(`RECENT ${Math.max(1, current)}\nQUIT\n`);
              return seqcheck(s);
            },
        async stop() {
          await lc.stop();
          return lc.dataDir ? { files: filesUnder(lc.dataDir) } : { none: 'memory only' };
        },
        cleanup: lc.cleanup,
      };
    },
  };
}

function rsyslogConf(input: 'imtcp' | 'imptcp', dir: string, port: number, out: string): string {
  const inputConf =
    input === 'imtcp'
      ? // 8.2302's imtcp is one thread; its listen backlog is not configurable before 8.2502
        `module(load="imtcp" maxSessions="2000" maxListeners="10")\ninput(type="imtcp" address="127.0.0.1" port="${port}")`
      : `module(load="imptcp" threads="2" maxSessions="2000")\ninput(type="imptcp" address="127.0.0.1" port="${port}" socketBacklog="2048")`;
  return [
    `global(workDirectory="${dir}" maxMessageSize="64k")`,
    // a large in-memory queue, dequeued in big batches; when it fills, TCP inputs are
    // delayed (flow control), never dropped
    `main_queue(queue.type="FixedArray" queue.size="1000000" queue.dequeueBatchSize="8192" queue.workerThreads="1" queue.timeoutShutdown="60000")`,
    inputConf,
    `template(name="lines" type="string" string="%rawmsg%\\n")`,
    `action(type="omfile" file="${out}" template="lines" asyncWriting="on" ioBufferSize="4m" flushOnTXEnd="off" flushInterval="1")`,
    '',
  ].join('\n');
}

function rsyslogPeer(input: 'imtcp' | 'imptcp'): PeerSpec {
  const id: PeerId = input === 'imtcp' ? 'rsyslog-imtcp' : 'rsyslog-imptcp';
  const bin = which('rsyslogd') ?? (fs.existsSync('/usr/sbin/rsyslogd') ? '/usr/sbin/rsyslogd' : undefined);
  let version: string | undefined;
  let skip: string | undefined;
  if (!bin) skip = 'rsyslogd is not installed (apt-get install -y rsyslog)';
  else {
    const v = spawnSync(bin, ['-v'], { encoding: 'utf8' });
    version = /rsyslogd\s+(\S+)/.exec(v.stdout ?? '')?.[1];
    const mod = '/usr/lib/x86_64-linux-gnu/rsyslog';
    if (fs.existsSync(mod) && !fs.existsSync(path.join(mod, `${input}.so`))) skip = `rsyslog has no ${input} module here`;
  }
  return {
    id,
    config: rsyslogConf(input, '<dir>', 0, '<dir>/out.log').replace(/port="0"/, 'port="<p>"').trim().split('\n').join(' '),
    skip,
    version,
    async start(lineBytes) {
      const dir = tmpDir(id);
      const port = await freePort();
      const out = path.join(dir, 'out.log');
      const conf = path.join(dir, 'rsyslog.conf');
      fs.writeFileSync(conf, rsyslogConf(input, dir, port, out));
      const { child, tail } = spawnLogged(bin!, ['-n', '-f', conf, '-i', path.join(dir, 'rsyslog.pid')]);
      return fileWritingPeer(child, tail, id, port, dir, out, lineBytes);
    },
  };
}

function syslogNgConf(dir: string, port: number, out: string): string {
  return [
    '@version: 3.38',
    // threaded: input and output on separate threads; big fifos; one write() per 10,000 lines
    'options { threaded(yes); use-dns(no); use-fqdn(no); chain-hostnames(no); keep-hostname(yes);',
    '  log-fifo-size(2000000); flush-lines(10000); log-msg-size(65536); stats-freq(0); };',
    // no-parse: the whole line is $MSG and is written back unchanged
    `source s_tcp { network(ip("127.0.0.1") port(${port}) transport("tcp") flags(no-parse)`,
    '  max-connections(2000) listen-backlog(2048) log-iw-size(2000000) log-fetch-limit(1000)); };',
    `destination d_file { file("${out}" template("\${MSG}\\n") flush-lines(10000) log-fifo-size(2000000)); };`,
    // flow control: a full output fifo pauses reading instead of dropping
    'log { source(s_tcp); destination(d_file); flags(flow-control); };',
    '',
  ].join('\n');
}

function syslogNgPeer(download: boolean): PeerSpec {
  const ng = findSyslogNg(download);
  return {
    id: 'syslog-ng',
    config: syslogNgConf('<dir>', 0, '<dir>/out.log').replace('port(0)', 'port(<p>)').trim().split('\n').join(' '),
    skip: typeof ng === 'string' ? ng : undefined,
    version: typeof ng === 'string' ? undefined : ng.version,
    async start(lineBytes) {
      if (typeof ng === 'string') throw new Error(ng);
      const dir = tmpDir('syslog-ng');
      const port = await freePort();
      const out = path.join(dir, 'out.log');
      const conf = path.join(dir, 'syslog-ng.conf');
      fs.writeFileSync(conf, syslogNgConf(dir, port, out));
      const args = ['-F', '--no-caps', '-f', conf, '-R', path.join(dir, 'persist'), '-p', path.join(dir, 'pid'), '-c', path.join(dir, 'ctl')];
      if (ng.modulePath) args.push('--module-path', ng.modulePath);
      const { child, tail } = spawnLogged(ng.bin, args, ng.env);
      return fileWritingPeer(child, tail, 'syslog-ng', port, dir, out, lineBytes);
    },
  };
}

/** The chosen peers; syslog-ng may be downloaded and unpacked (download: false = only use it
 *  when it is installed or unpacked already). */
export function makePeers(backend: string, ids: PeerId[], download: boolean): PeerSpec[] {
  const help = ids.some((id) => id.startsWith('logcaster')) ? logcasterHelp() : '';
  const make: Record<PeerId, () => PeerSpec> = {
    'logcaster-journal': () => logcasterPeer('logcaster-journal', help, backend),
    'logcaster-memory': () => logcasterPeer('logcaster-memory', help, backend),
    'rsyslog-imtcp': () => rsyslogPeer('imtcp'),
    'rsyslog-imptcp': () => rsyslogPeer('imptcp'),
    'syslog-ng': () => syslogNgPeer(download),
  };
  return ids.map((id) => make[id]());
}

let clockTicks: number | undefined;

/** CPU seconds (user + sys, all threads) a process has used so far. */
export function cpuSeconds(pid: number): number {
  clockTicks ??= Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // fields after ")": state(3) ... utime(14) stime(15) → indexes 11, 12 here
    return (Number(f[11]) + Number(f[12])) / clockTicks;
  } catch {
    return NaN;
  }
}
