// What each documented CLI option does once the server runs (README "Command line"):
// the address, the time zone of answers, the regex budget, where and how the journal is
// kept, the start line, and how signals end the process. The parsing and ranges of the
// option table are cli.test.ts's.
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { connectTo, delay, itUnless, rmDir, sendAndClose, tmpDir, waitFor } from '@logcaster/testkit';
import { BIN, startCliPerTest } from '../support/cli';
import { QueryClient, stripStamp } from '../support/helpers';

describe('logcaster CLI options at work', function () {
  this.timeout(60000);
  const start = startCliPerTest();
  const dirs: string[] = [];
  const scratch = (): string => {
    const d = tmpDir('cli');
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmDir(d);
  });

  it('--host: the ingest port listens on that address only', async () => {
    // 127.0.0.2 is loopback too (all of 127/8 is), so this stays on this machine.
    const r = await start(['--no-persist', '--host', '127.0.0.2']);
    expect(r.line).to.include(`ingest=127.0.0.2:${r.ingestPort} `);
    const reply = await sendAndClose(r.ingestPort, 'to the second loopback\n', 0, '127.0.0.2');
    expect(reply.length).to.equal(0);
    // The same port on 127.0.0.1 is not ours: refused, or (rarely) another program's.
    await sendAndClose(r.ingestPort, 'to the first loopback\n', 0, '127.0.0.1').catch((e: NodeJS.ErrnoException) => expect(e.code).to.equal('ECONNREFUSED'));
    const q = await QueryClient.open(r.queryPort);
    expect((await q.found('RECENT 1')).lines.map(stripStamp)).to.deep.equal(['to the second loopback']);
    q.close();
  });

  it('--utc: answers carry UTC timestamps; without it, local time', async () => {
    // The server runs in a zone 12:45 (or 13:45) off UTC, so the two cannot coincide.
    const timeZone = 'Pacific/Chatham';
    const stampOf = async (args: string[]): Promise<{ stamp: string; sent: number }> => {
      const r = await start(['--no-persist', ...args], { ...process.env, TZ: timeZone });
      const sent = Date.now();
      await sendAndClose(r.ingestPort, 'when\n');
      const q = await QueryClient.open(r.queryPort);
      const line = (await q.found('RECENT 1')).lines[0];
      q.close();
      return { stamp: line.slice(1, 20), sent };
    };
    /** "YYYY-MM-DD HH:MM:SS" in `zone`, by Intl rather than the server's formatter. */
    const inZone = (ms: number, zone: string): string => {
      const f = new Intl.DateTimeFormat('en-CA', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
      const p = Object.fromEntries(f.formatToParts(ms).map((x) => [x.type, x.value]));
      return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
    };
    // The line was received within a few seconds after `sent`.
    const near = (stamp: string, ms: number, zone: string): boolean => [0, 1, 2, 3, 4, 5].some((s) => inZone(ms + s * 1000 - 1000, zone) === stamp);
    const utc = await stampOf(['--utc']);
    expect(near(utc.stamp, utc.sent, 'UTC'), `UTC stamp ${utc.stamp}`).to.equal(true);
    const local = await stampOf([]);
    expect(near(local.stamp, local.sent, timeZone), `local stamp ${local.stamp}`).to.equal(true);
    expect(near(local.stamp, local.sent, 'UTC'), 'local is not UTC').to.equal(false);
  });

  it('--regex-timeout: the budget of a regex query', async () => {
    const r = await start(['--no-persist', '--regex-timeout', '300']);
    await sendAndClose(r.ingestPort, `${'a'.repeat(40)}!\n`);
    const q = await QueryClient.open(r.queryPort);
    expect(await q.ask('COUNT')).to.equal('COUNT: 1');
    q.send('REGEX (a+)+$');
    expect(await q.line(20000)).to.equal('ERROR: regex timed out after 300 ms');
    q.close();
  });

  it('--rotate-size and --max-files reach the journal: small segments, no more of them than allowed', async () => {
    const dir = scratch();
    const r = await start(['--data-dir', dir, '--rotate-size', '4k', '--max-files', '3', '--fsync', 'never']);
    const lines = Array.from({ length: 20000 }, (_, i) => `rotate me ${String(i).padStart(6, '0')} ${'x'.repeat(40)}`);
    await sendAndClose(r.ingestPort, lines.join('\n') + '\n');
    r.child.kill('SIGTERM');
    expect((await r.exited).code).to.equal(0);
    // ~1.1 MB of lines: with 16M segments one file; with 4k ones the journal rotated
    // (a segment passes rotateSize only when one record — a block of lines — is larger)
    // and kept only 3 segments, so the oldest lines are gone from disk.
    const segments = fs.readdirSync(dir).filter((f) => /^logcaster-\d+\.log$/.test(f));
    expect(segments.length, `segments in ${fs.readdirSync(dir).join(', ')}`).to.equal(3);
    expect(segments.map((f) => Number(/\d+/.exec(f)![0])).sort((x, y) => x - y)[0], 'oldest segment kept').to.be.greaterThan(1);
    // What they hold is the newest lines, reloaded in order.
    const b = await start(['--data-dir', dir]);
    const q = await QueryClient.open(b.queryPort);
    const count = Number(/^COUNT: (\d+)$/.exec(await q.ask('COUNT'))![1]);
    expect(count).to.be.greaterThan(0).and.below(lines.length);
    expect((await q.found(`RECENT ${count}`)).lines.map(stripStamp)).to.deep.equal(lines.slice(-count));
    q.close();
  });

  it('without --data-dir: ./logcaster-data in the working directory; --no-persist: nothing on disk', async () => {
    const cwd = scratch();
    const a = await start([], process.env, cwd);
    expect(a.line).to.include(`data-dir=${path.join(fs.realpathSync(cwd), 'logcaster-data')} (fsync interval)`);
    await sendAndClose(a.ingestPort, 'kept by default\n');
    a.child.kill('SIGTERM');
    expect((await a.exited).code).to.equal(0);
    expect(fs.readdirSync(path.join(cwd, 'logcaster-data')).length).to.be.greaterThan(0);

    const bare = scratch();
    const b = await start(['--no-persist'], process.env, bare);
    expect(b.line).to.include('data-dir=none (memory only)');
    expect(b.line).to.not.include('fsync');
    await sendAndClose(b.ingestPort, 'memory only\n');
    b.child.kill('SIGTERM');
    expect((await b.exited).code).to.equal(0);
    expect(fs.readdirSync(bare)).to.deep.equal([]);
  });

  it('the start line names the fsync policy in force', async () => {
    for (const policy of ['never', 'interval', 'always']) {
      const r = await start(['--data-dir', scratch(), '--fsync', policy]);
      expect(r.line, policy).to.match(new RegExp(` \\(fsync ${policy}\\)$`));
    }
  });

  itUnless(spawnSync('strace', ['-V']).status === 0 ? null : 'strace is not installed', '--fsync-interval sets how often the journal syncs while lines arrive', async () => {
    // Count the server's fsync/fdatasync calls (strace attached to every thread, -f for
    // those started later) over 1.5 s of steady ingest: every 50 ms is dozens, every
    // 1000 ms a couple.
    const syncs = async (intervalMs: number): Promise<number> => {
      const dir = scratch();
      const trace = path.join(dir, 'trace');
      // strace runs the server as its child (attaching to another process may be refused).
      const strace = spawn('strace', ['-f', '-qq', '-e', 'trace=fsync,fdatasync', '-o', trace, process.execPath, BIN, '--port', '0',
        '--query-port', '0', '--http-port', '0', '--data-dir', path.join(dir, 'data'), '--fsync', 'interval', '--fsync-interval', String(intervalMs)],
      { stdio: ['ignore', 'pipe', 'pipe'] });
      const traced = new Promise<number | null>((resolve) => strace.once('exit', (code) => resolve(code)));
      let server = 0;
      try {
        let out = '';
        strace.stdout.on('data', (d: Buffer) => (out += d));
        await waitFor(() => out.includes('\n'), 20000, 'the start line');
        server = Number(fs.readFileSync(`/proc/${strace.pid}/task/${strace.pid}/children`, 'utf8').trim().split(' ')[0]);
        const s = await connectTo(Number(/ingest=[^ ]+:(\d+)/.exec(out)![1]));
        const until = Date.now() + 1500;
        for (let i = 0; Date.now() < until; i++) {
          s.write(`steady line ${i}\n`);
          await delay(5);
        }
        s.end();
        process.kill(server, 'SIGTERM'); // the server, not strace: it exits, then strace does
        expect(await traced, 'exit status (the server\'s, through strace)').to.equal(0);
        return fs.readFileSync(trace, 'utf8').split('\n').filter((l) => /\b(fsync|fdatasync)\(/.test(l)).length;
      } finally {
        if (server) {
          try {
            process.kill(server, 'SIGKILL');
          } catch {
            /* already gone */
          }
        }
        strace.kill('SIGKILL');
        await traced;
      }
    };
    const fast = await syncs(50);
    const slow = await syncs(1000);
    console.log(`      fsync/fdatasync calls over 1.5 s of ingest: ${fast} at --fsync-interval 50, ${slow} at 1000`);
    expect(fast, 'syncs with --fsync-interval 50').to.be.at.least(8);
    expect(slow, 'syncs with --fsync-interval 1000').to.be.below(fast / 2);
  });

  describe('signals', () => {
    /** A client that keeps sending until told to stop. */
    const firehose = async (port: number): Promise<{ stop(): void }> => {
      const s = await connectTo(port);
      s.on('error', () => {});
      let stopped = false;
      let n = 0;
      const pump = (): void => {
        if (stopped) return;
        if (s.write(`hose ${n++}\n`.repeat(100))) setTimeout(pump, 1);
        else s.once('drain', pump);
      };
      pump();
      return {
        stop() {
          stopped = true;
          s.destroy();
        },
      };
    };

    it('a client that never stops sending cannot hold up SIGTERM: it exits 0 after the grace period', async () => {
      const dir = scratch();
      const r = await start(['--data-dir', dir]);
      const hose = await firehose(r.ingestPort);
      try {
        await delay(200);
        r.child.kill('SIGTERM');
        // The grace period is 2 s; far more only bounds how slow this machine may be.
        const exit = await Promise.race([r.exited, delay(20000).then(() => 'still running')]);
        expect(exit).to.deep.equal({ code: 0, signal: null });
      } finally {
        hose.stop();
      }
      const b = await start(['--data-dir', dir]);
      const q = await QueryClient.open(b.queryPort);
      expect(Number(/^COUNT: (\d+)$/.exec(await q.ask('COUNT'))![1]), 'lines kept').to.be.greaterThan(0);
      q.close();
    });

    it('a second signal exits at once (status 130) instead of finishing the drain', async () => {
      const r = await start(['--data-dir', scratch()]);
      const hose = await firehose(r.ingestPort);
      try {
        await delay(200);
        r.child.kill('SIGTERM');
        await waitFor(() => r.stderr().includes('finishing received lines'), 10000, 'the first signal to be taken');
        r.child.kill('SIGINT');
        expect(await r.exited).to.deep.equal({ code: 130, signal: null });
        expect(r.stderr()).to.include('SIGINT again, exiting now');
      } finally {
        hose.stop();
      }
    });
  });
});
