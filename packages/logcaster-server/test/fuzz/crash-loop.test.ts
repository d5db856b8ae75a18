// Crash loop: ITERATIONS times, a `logcaster --ack --fsync always` child with concurrent
// ack clients is killed with SIGKILL at a random moment (sometimes while it is still
// starting and reloading its journal), then started again on the same data dir.
// Every restart must succeed (the dead owner's lock is taken over, the torn journal
// tail repaired), and every line that was acknowledged before a kill must be stored,
// exactly once. LOGCASTER_FUZZ_SEED=<n> replays a run; LOGCASTER_FUZZ_LONG=<seconds>
// keeps killing that long.
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';

import { expect } from 'chai';

import { delay, fuzzLongSeconds, fuzzSeed, HOST, randomSplit, Rng, rmDir, sendAndClose, tmpDir } from '@logcaster/testkit';

import { BIN } from '../support/cli';
import { checkAnswers } from './answers';

const ITERATIONS = 20;
/** "[YYYY-MM-DD HH:MM:SS] " before each result line. */
const STAMP = 22;

interface Server {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the ports once the start line is printed (rejects if it exits first). */
  ready: Promise<{ ingestPort: number; queryPort: number }>;
  stderr(): string;
}

function startServer(dir: string): Server {
  const args = [BIN, '--port', '0', '--query-port', '0', '--no-http', '--ack', '--fsync', 'always', '--data-dir', dir, '--rotate-size', '256k', '--max-files', '100000', '--capacity', '2M'];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const ready = new Promise<{ ingestPort: number; queryPort: number }>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /ingest=[^ ]+:(\d+) query=[^ ]+:(\d+) /.exec(out);
      if (m) resolve({ ingestPort: Number(m[1]), queryPort: Number(m[2]) });
    });
    void exited.then((e) => reject(new Error(`exited (${e.code ?? e.signal}) before its start line; stderr: ${err.slice(-2000)}`)));
  });
  ready.catch(() => {}); // an early kill is awaited through `exited`
  return { child, exited, ready, stderr: () => err };
}

/** One ack client: sends `count` lines with ids `crash-<iter>-<client>-<n>`, counts the
 *  OKs it receives until the server closes or dies. Acks come in order, so `acked` OKs
 *  mean lines 0 .. acked-1 were acknowledged. */
function ackClient(port: number, rng: Rng, iter: number, client: number, count: number): Promise<{ acked: number; sent: number }> {
  return new Promise((resolve) => {
    const lines: Buffer[] = [];
    for (let i = 0; i < count; i++) lines.push(Buffer.from(`crash-${iter}-${client}-${i} ${'p'.repeat(rng.range(0, 80))}\n`));
    const data = Buffer.concat(lines);
    const s = connect({ host: HOST, port });
    let oks = 0;
    let partial = 0; // bytes of an OK\n cut between reads
    s.on('data', (d: Buffer) => {
      const n = partial + d.length;
      oks += Math.floor(n / 3);
      partial = n % 3;
    });
    s.on('error', () => {});
    s.on('close', () => resolve({ acked: oks, sent: count }));
    s.once('connect', async () => {
      // Paced over ~0.5 s, so that the kill (0-500 ms in) mostly lands mid-stream.
      for (const p of randomSplit(rng, data, 50)) {
        if (s.destroyed) return;
        s.write(p);
        await delay(rng.range(2, 20));
      }
      s.end();
    });
  });
}

/** Ids stored whose prefix is `prefix`, with how often each is stored. */
async function storedIds(queryPort: number, prefix: string): Promise<Map<string, number>> {
  const answer = await sendAndClose(queryPort, `SEARCH ${prefix}\n`);
  const check = checkAnswers(answer, [{ kind: 'found' }], true);
  if (check.problem) throw new Error(`SEARCH ${prefix}: ${check.problem}`);
  const ids = new Map<string, number>();
  const text = answer.toString('latin1');
  for (const line of text.split('\n').slice(1, -1)) {
    const id = line.slice(STAMP).split(' ')[0];
    ids.set(id, (ids.get(id) ?? 0) + 1);
  }
  return ids;
}

describe('fuzz: crash loop (kill -9 of logcaster --ack --fsync always under load)', function () {
  const long = fuzzLongSeconds();
  this.timeout(long > 0 ? long * 1000 + 120_000 : 240_000);

  let server: Server | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    if (server) {
      server.child.kill('SIGKILL');
      await server.exited;
    }
    server = undefined;
    if (dir) rmDir(dir);
    dir = undefined;
  });

  it(`${ITERATIONS} kills at random moments: every restart succeeds, no acknowledged line is lost or doubled`, async () => {
    const seed = fuzzSeed('crash loop');
    const rng = new Rng(seed);
    dir = tmpDir('crash-loop');
    /** Per iteration and client: lines acknowledged, lines sent. */
    const acked: { iter: number; client: number; acked: number; sent: number }[] = [];
    let totalAcked = 0;
    let earlyKills = 0;
    const started = Date.now();
    const iterations = long > 0 ? Infinity : ITERATIONS;
    let iter = 0;
    for (; iter < iterations && (long === 0 || Date.now() - started < long * 1000); iter++) {
      const where = `seed ${seed}, iteration ${iter + 1}`;
      server = startServer(dir);
      const s = server;
      if (iter > 0 && rng.chance(0.15)) {
        // Killed while starting: before, during or just after the journal's reload.
        earlyKills++;
        await delay(rng.range(0, 400));
        s.child.kill('SIGKILL');
        const e = await s.exited;
        if (e.signal !== 'SIGKILL') throw new Error(`${where}: the server exited by itself while starting (${e.code}): ${s.stderr().slice(-2000)}`);
        server = undefined;
        continue;
      }
      const { ingestPort, queryPort } = await s.ready.catch((e: Error) => {
        throw new Error(`${where}: restart failed: ${e.message}`);
      });

      // What the previous iterations had acknowledged is all there, once.
      if (iter > 0) {
        const count = /^COUNT: (\d+)$/m.exec((await sendAndClose(queryPort, 'COUNT\n')).toString());
        expect(Number(count?.[1]), `${where}: entries after the restart`).to.be.at.least(totalAcked);
        const last = acked.filter((a) => a.iter === acked[acked.length - 1].iter);
        const ids = await storedIds(queryPort, `crash-${last[0].iter}-`);
        for (const a of last) {
          for (let i = 0; i < a.sent; i++) {
            const n = ids.get(`crash-${a.iter}-${a.client}-${i}`) ?? 0;
            if (n > 1) throw new Error(`${where}: line ${i} of client ${a.client} of iteration ${a.iter + 1} stored ${n} times`);
            if (i < a.acked && n !== 1) throw new Error(`${where}: line ${i} of client ${a.client} of iteration ${a.iter + 1} was acknowledged (${a.acked} acks) but is lost`);
          }
        }
      }

      const clients = rng.range(2, 6);
      const runs = [];
      for (let c = 0; c < clients; c++) runs.push(ackClient(ingestPort, rng.fork(), iter, c, rng.range(300, 6000)));
      // Mostly while the clients are still sending and being acknowledged.
      await delay(rng.range(0, 500));
      s.child.kill('SIGKILL');
      const e = await s.exited;
      if (e.signal !== 'SIGKILL') throw new Error(`${where}: the server exited by itself (${e.code}): ${s.stderr().slice(-2000)}`);
      server = undefined;
      const results = await Promise.all(runs);
      results.forEach((r, c) => {
        acked.push({ iter, client: c, ...r });
        totalAcked += r.acked;
      });
    }

    // A last start checks every acknowledged line of every iteration, then stops cleanly.
    server = startServer(dir);
    const { queryPort } = await server.ready;
    const ids = await storedIds(queryPort, 'crash-');
    let maybe = 0;
    for (const a of acked) {
      for (let i = 0; i < a.sent; i++) {
        const n = ids.get(`crash-${a.iter}-${a.client}-${i}`) ?? 0;
        if (n > 1) throw new Error(`seed ${seed}: line ${i} of client ${a.client} of iteration ${a.iter + 1} stored ${n} times`);
        if (i < a.acked && n !== 1) throw new Error(`seed ${seed}: line ${i} of client ${a.client} of iteration ${a.iter + 1} was acknowledged but is lost`);
        if (i >= a.acked && n === 1) maybe++;
      }
    }
    const sent = acked.reduce((n, a) => n + a.sent, 0);
    const cut = acked.filter((a) => a.acked < a.sent).length;
    console.log(`      ${iter} kills (${earlyKills} while starting), ${acked.length} clients (${cut} cut off by a kill), ${sent} lines sent, ${totalAcked} acknowledged and all stored, ${maybe} more stored unacknowledged`);
    expect(totalAcked, 'lines acknowledged before the kills').to.be.greaterThan(0);
    expect(cut, 'clients a kill cut off while sending').to.be.greaterThan(0);
    server.child.kill('SIGTERM');
    expect(await server.exited).to.deep.equal({ code: 0, signal: null });
    server = undefined;
  });
});
