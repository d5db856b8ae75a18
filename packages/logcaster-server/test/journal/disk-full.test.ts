// The server on a real full disk (a small tmpfs): it reports the failure (STATS, the
// 'persistence' event, /ready), tells ack clients instead of going silent, keeps
// serving what it has, writes what waited once space returns, and starts on a full
// disk to serve what is stored.
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { connectTo, fillFilesystem as fill, freeBytes, smallFilesystem, waitFor } from '@logcaster/testkit';
import type { LogCaster, PersistenceEvent, StartInfo } from '../../src';
import { startCli, type Running } from '../support/cli';
import { RelpClient } from '../support/relp-client';
import { QueryClient, startServer } from '../support/helpers';

/** An ingest client: sends lines, collects what the server answers, sees it close. */
async function ackClient(port: number): Promise<{ send(text: string): void; end(): void; reply(): string; closed(): boolean; destroy(): void }> {
  const s = await connectTo(port);
  let reply = '';
  let closed = false;
  s.on('data', (d: Buffer) => (reply += d.toString('latin1')));
  s.on('error', () => {});
  s.on('close', () => (closed = true));
  return { send: (t) => s.write(t), end: () => s.end(), reply: () => reply, closed: () => closed, destroy: () => s.destroy() };
}

function statsField(line: string, key: string): string {
  const m = new RegExp(`(?:^STATS: |, )${key}=([^,]*)`).exec(line);
  if (!m) throw new Error(`no ${key}= in ${line}`);
  return m[1];
}

const small = smallFilesystem(2 * 1024 * 1024);
describe(`server on a full disk${typeof small === 'string' ? ` — skipped: ${small}` : ''}`, function () {
  this.timeout(60000);
  if (typeof small === 'string') return;
  after(() => small.close());
  let dir = '';
  beforeEach(() => {
    dir = path.join(small.dir, `data-${Date.now()}`);
    fs.rmSync(path.join(small.dir, 'filler'), { force: true });
  });
  afterEach(() => {
    fs.rmSync(path.join(small.dir, 'filler'), { force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('reports ENOSPC naming the file, tells ack clients, keeps serving, and writes what waited once space returns', async () => {
    let server: { lc: LogCaster; info: StartInfo } | undefined;
    const q: QueryClient[] = [];
    try {
      // A memory window smaller than what waits for the disk: queries read the rest from it.
      server = await startServer({ dataDir: dir, ack: true, fsync: 'always', capacity: 300 });
      const { lc, info } = server;
      const events: PersistenceEvent[] = [];
      lc.on('persistence', (e) => events.push(e));

      const a = await ackClient(info.ingestPort);
      a.send(Array.from({ length: 100 }, (_, i) => `before ${i}\n`).join(''));
      await waitFor(() => a.reply() === 'OK\n'.repeat(100), 10000, 'the acks of the lines before the disk fills');
      a.end();
      const filler = fill(small.dir, 64 * 1024);

      // 1 MB of lines into 64 KB of space.
      const b = await ackClient(info.ingestPort);
      const line = (i: number): string => `full ${i} ${'y'.repeat(1000)}\n`;
      b.send(Array.from({ length: 1000 }, (_, i) => line(i)).join(''));
      await waitFor(() => events.length > 0, 10000, 'the persistence event');
      expect(events[0].state).to.equal('stalled');
      expect(events[0].error?.code).to.equal('ENOSPC');
      expect(events[0].error?.path).to.match(/logcaster-\d{12}\.log$/);
      const file = events[0].error!.path!;
      expect(path.dirname(file)).to.equal(dir);
      // Acks for what reached the disk, then the reason, then the connection is closed.
      await waitFor(() => b.closed(), 10000, () => `the ack client to be told and closed: ${JSON.stringify(b.reply().slice(-200))}`);
      const told = b.reply().split('\n');
      expect(told.pop()).to.equal('');
      const error = told.pop();
      expect(error).to.equal(`ERROR: persistence failed: ENOSPC on ${file}; lines after the last OK are not on disk`);
      expect(told.every((l) => l === 'OK'), 'only OKs before it').to.equal(true);
      expect(told.length).to.be.below(1000);

      const qc = await QueryClient.open(info.queryPort);
      q.push(qc);
      // Queries are answered meanwhile, from memory and the file: lines that left the
      // memory window and still wait for space are not waited for.
      const before = await qc.found('SEARCH before');
      expect(before.n).to.equal(100);
      const during = await qc.found('SEARCH full');
      const nums = during.lines.map((l) => Number(/full (\d+) /.exec(l)![1]));
      expect(nums.every((n, i) => i === 0 || n > nums[i - 1]), 'in order, each once').to.equal(true);
      expect(nums[nums.length - 1], 'the newest line, in memory').to.equal(999);
      expect(during.n).to.be.below(1000); // some left memory and wait for the disk
      const stalled = await qc.ask('STATS');
      expect(statsField(stalled, 'Persisting')).to.equal(`stalled (ENOSPC on ${file})`);
      expect(Number(statsField(stalled, 'Persisted'))).to.be.below(1100);
      expect(statsField(stalled, 'PersistDropped')).to.equal('0'); // 1 MB waits: under the bound
      expect((await lc.ready()).ready, '/ready while the disk is full').to.equal(false);

      // A new ack client is told at its first line, not left waiting.
      const c = await ackClient(info.ingestPort);
      c.send('while stalled\n');
      await waitFor(() => c.closed(), 10000, 'the new ack client to be told and closed');
      expect(c.reply()).to.equal(`ERROR: persistence failed: ENOSPC on ${file}; lines after the last OK are not on disk\n`);

      // Space returns: what waited is written, acks work again.
      fs.rmSync(filler);
      await waitFor(() => events.some((e) => e.state === 'resumed'), 15000, 'the resumed event');
      await waitFor(() => lc.stats().persisted === lc.stats().total, 10000, () => `every line written (${lc.stats().persisted} of ${lc.stats().total})`);
      const ok = await qc.ask('STATS');
      expect(statsField(ok, 'Persisting')).to.equal('ok');
      expect(statsField(ok, 'PersistDropped')).to.equal('0');
      expect((await lc.ready()).ready).to.equal(true);
      expect((await qc.found('SEARCH full')).n, 'every line once written').to.equal(1000);
      const d = await ackClient(info.ingestPort);
      d.send('after 0\nafter 1\n');
      d.end();
      await waitFor(() => d.closed(), 10000, 'the acks after space returned');
      expect(d.reply()).to.equal('OK\nOK\n');
      qc.close();
      await lc.stop();
      server = undefined;

      // Everything is on disk: a restart reloads every line, in order.
      server = await startServer({ dataDir: dir });
      expect(server.info.reloaded).to.equal(1103);
      const q2 = await QueryClient.open(server.info.queryPort);
      q.push(q2);
      const all = await q2.found('RECENT 1103');
      const texts = all.lines.map((l) => l.replace(/^\[[^\]]+\] /, ''));
      expect(texts.slice(0, 100)).to.deep.equal(Array.from({ length: 100 }, (_, i) => `before ${i}`));
      expect(texts.slice(100, 1100)).to.deep.equal(Array.from({ length: 1000 }, (_, i) => line(i).slice(0, -1)));
      expect(texts.slice(1100)).to.deep.equal(['while stalled', 'after 0', 'after 1']);
    } finally {
      for (const c of q) c.close();
      // After a failed check the disk may still be full: stop() then rejects, and the
      // check's own error is the one to see.
      await server?.lc.stop().catch(() => {});
    }
  });

  it('RELP with --fsync always: senders are answered for what reached the disk, then closed with serverclose; served again once space returns', async () => {
    let server: { lc: LogCaster; info: StartInfo } | undefined;
    try {
      server = await startServer({ dataDir: dir, fsync: 'always', relpPort: 0 });
      const { lc, info } = server;
      const events: PersistenceEvent[] = [];
      lc.on('persistence', (e) => events.push(e));
      const a = await RelpClient.connect(info.relpPort!);
      a.open();
      for (let i = 0; i < 5; i++) a.command('syslog', `<13>before ${i}`);
      await a.waitResponses(6);
      expect(a.responses.every((r) => r.data.startsWith('200 OK'))).to.equal(true);
      const filler = fill(small.dir, 8 * 1024);
      for (let i = 0; i < 200; i++) a.command('syslog', `<13>full ${i} ${'z'.repeat(1000)}`);
      await waitFor(() => a.closed, 10000, 'the sender closed');
      const last = a.responses[a.responses.length - 1];
      expect(last).to.deep.include({ txnr: 0, command: 'serverclose' });
      const acked = a.responses.slice(6, -1);
      expect(acked.every((r, i) => r.command === 'rsp' && r.data === '200 OK' && r.txnr === 7 + i), 'answers in order, then serverclose').to.equal(true);
      expect(acked.length).to.be.below(200);
      const stored = lc.stats().relpReceived;
      expect(stored).to.be.at.least(5 + acked.length);
      // A sender connecting meanwhile is let in, and closed at its first message, unstored.
      const b = await RelpClient.connect(info.relpPort!);
      b.open();
      await b.waitResponses(1);
      b.command('syslog', '<13>while stalled');
      await waitFor(() => b.closed, 10000, 'the second sender closed');
      expect(b.responses.map((r) => r.command)).to.deep.equal(['rsp', 'serverclose']);
      expect(lc.stats().relpReceived, 'the message refused while stalled is not stored').to.equal(stored);
      fs.rmSync(filler);
      await waitFor(() => lc.stats().persisting === 'ok', 15000, 'persistence resumed');
      expect(events.map((e) => e.state)).to.deep.equal(['stalled', 'resumed']);
      const c = await RelpClient.connect(info.relpPort!);
      c.open();
      c.command('syslog', '<13>after');
      c.command('close');
      await c.waitResponses(3);
      expect(c.responses.map((r) => r.data.slice(0, 6))).to.deep.equal(['200 OK', '200 OK', '200 OK']);
      expect(lc.stats().relpReceived).to.equal(stored + 1);
    } finally {
      await server?.lc.stop().catch(() => {});
    }
  });

  it('starts on a full disk and serves what is stored; reports the full disk naming the file once a line must be written', async () => {
    let run: Running | undefined;
    try {
      {
        const { lc, info } = await startServer({ dataDir: dir });
        const a = await ackClient(info.ingestPort);
        a.send(Array.from({ length: 50 }, (_, i) => `stored ${i}\n`).join(''));
        a.end();
        await waitFor(() => a.closed(), 10000, 'the lines stored');
        await lc.stop();
      }
      fill(small.dir, 0);
      expect(freeBytes(small.dir), 'the disk is full').to.be.below(4096);
      run = await startCli(['--data-dir', dir, '--fsync', 'always']);
      expect(run.line).to.match(/ reloaded=50\n?$/);
      const qc = await QueryClient.open(run.queryPort);
      try {
        expect(await qc.ask('COUNT')).to.equal('COUNT: 50');
        expect(statsField(await qc.ask('STATS'), 'Persisting')).to.equal('ok');
        const a = await ackClient(run.ingestPort);
        a.send('one more\n'.repeat(2000)); // more than the page cache the last block had
        a.end();
        await waitFor(() => a.closed(), 10000, 'the line stored');
        await waitFor(() => /disk full/.test(run!.stderr()), 10000, () => `the disk-full report on stderr: ${run!.stderr()}`);
        const stats = await qc.ask('STATS');
        expect(statsField(stats, 'Persisting')).to.match(new RegExp(`^stalled \\(ENOSPC on ${dir.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}/logcaster-\\d{12}\\.log\\)$`));
        expect(run.stderr()).to.match(/disk full, lines are kept in memory and written once space returns \(ENOSPC: .*logcaster-\d{12}\.log/);
        expect(await qc.ask('COUNT')).to.equal('COUNT: 2050');
      } finally {
        qc.close();
      }
      run.child.kill('SIGTERM');
      const exit = await run.exited;
      // The lines the full disk kept out are lost at exit, and the exit status says so.
      expect(exit.code).to.equal(1);
      expect(run.stderr()).to.match(/error during shutdown: .*ENOSPC/);
      run = undefined;
    } finally {
      if (run) {
        run.child.kill('SIGKILL');
        await run.exited;
      }
    }
  });
});
