// The query-result seam: count first, then an ordered pull cursor that pins what it
// reads (no copy of the matches), is cancellable, and shares the scan workers fairly.
import { expect } from 'chai';

import { connectTo, delay, forceGc, sendAndClose, waitFor } from '@logcaster/testkit';

import { QueryCancelledError, QueryEngine, type EntryBatch, type QueryResult } from '../../src/query/engine';
import { emptySpec } from '../../src/query/matcher';
import { LogStore } from '../../src/store/log-store';
import { QueryClient, startServer, stripStamp } from '../support/helpers';

function add(s: LogStore, text: string, t = 1000): number {
  const b = Buffer.from(text);
  return s.append(b, 0, b.length, t, 0);
}

function texts(b: EntryBatch): string[] {
  return Array.from({ length: b.length }, (_, i) => b.bytes.toString('utf8', b.start[i], b.end[i]));
}

async function drain(res: QueryResult, maxBytes?: number): Promise<string[]> {
  const out: string[] = [];
  for (let b = await res.next(maxBytes); b.length > 0; b = await res.next(maxBytes)) out.push(...texts(b));
  return out;
}

describe('query results: count first, then an ordered cursor', function () {
  this.timeout(30000);
  let engine: QueryEngine | undefined;
  afterEach(async () => {
    await engine?.close();
    engine = undefined;
  });

  it('counts, then delivers every match in order, in batches of the size asked', async () => {
    const store = new LogStore(10_000, 64, 4096);
    for (let i = 0; i < 5000; i++) add(store, i % 3 === 0 ? `match ${i}` : `other ${i}`, 1000 + i);
    engine = new QueryEngine(store, { regexTimeoutMs: 5000 });
    const spec = emptySpec();
    spec.keywords.push(Buffer.from('match'));
    const res = await engine.run({ spec }, { owner: {} });
    expect(res.count).to.equal(1667);
    const got = await drain(res, 100);
    expect(got).to.deep.equal(Array.from({ length: 1667 }, (_, k) => `match ${3 * k}`));
    expect((await res.next()).length, 'empty once done').to.equal(0);
    const recent = await engine.run({ recent: 3 }, { owner: {} });
    expect(recent.count).to.equal(3);
    expect(await drain(recent)).to.deep.equal(['other 4997', 'match 4998', 'other 4999']);
    const none = await engine.run({ recent: 0 }, { owner: {} });
    expect(none.count).to.equal(0);
    expect((await none.next()).length).to.equal(0);
  });

  it('keeps delivering what it counted while the store evicts it, and releases it on close', async () => {
    const store = new LogStore(1000, 64, 4096);
    for (let i = 0; i < 1000; i++) add(store, `early ${i}`);
    engine = new QueryEngine(store, { regexTimeoutMs: 5000 });
    const res = await engine.run({ recent: 1000 }, { owner: {} });
    const mine = store.pin();
    const chunks = new Set(mine.blocks.map((b) => b.chunk));
    const first = await res.next(500);
    const got = texts(first);
    // the whole window turns over twice while the client reads slowly
    for (let i = 0; i < 2000; i++) add(store, `late ${i}`);
    got.push(...(await drain(res, 500)));
    expect(got).to.deep.equal(Array.from({ length: 1000 }, (_, i) => `early ${i}`));
    for (const c of chunks) expect(c.pins, 'the result released its pins after the last batch').to.equal(1);
    mine.release();
    for (const c of chunks) expect(c.pins).to.equal(0);

    const again = await engine.run({ recent: 500 }, { owner: {} });
    await again.next(100);
    again.close();
    let err: unknown;
    try {
      await again.next();
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(QueryCancelledError);
  });

  it('counts regex, keyword and time queries over many blocks without a copy per query', async () => {
    const store = new LogStore(200_000, 64);
    for (let i = 0; i < 200_000; i++) add(store, `host${i % 7} request id=${i.toString(16)} status=${i % 5 === 0 ? 500 : 200}`, 1_000_000 + i);
    engine = new QueryEngine(store, { regexTimeoutMs: 10000 });
    const spec = emptySpec();
    spec.regex = { source: 'host3 .* status=500$', flags: '' };
    const res = await engine.run({ spec }, { owner: {} });
    let expected = 0;
    for (let i = 0; i < 200_000; i++) if (i % 7 === 3 && i % 5 === 0) expected++;
    expect(res.count).to.equal(expected);
    const lines = await drain(res);
    expect(lines.length).to.equal(expected);
    expect(lines.every((l) => l.startsWith('host3 ') && l.endsWith('status=500'))).to.equal(true);
    const timed = emptySpec();
    timed.timeFromMs = 1_000_000 + 150_000;
    const t = await engine.run({ spec: timed }, { owner: {} });
    expect(t.count).to.equal(50_000);
    t.close();
  });
});

describe('query results through the query port', function () {
  this.timeout(60000);

  it('50 clients asking RECENT 1000000 without reading cost little memory (no copy of the index per query)', async function () {
    const { lc, info } = await startServer({ capacity: 1_000_000 });
    const clients: import('node:net').Socket[] = [];
    try {
      const line = 'a moderately long log line of sixty-four bytes, more or less..\n';
      const burst = line.repeat(100_000);
      for (let k = 0; k < 10; k++) await sendAndClose(info.ingestPort, burst);
      await waitFor(() => lc.stats().current === 1_000_000, 20000, 'a million stored lines');
      forceGc();
      await delay(200);
      const before = process.memoryUsage().rss;
      for (let i = 0; i < 50; i++) {
        const s = await connectTo(info.queryPort);
        s.on('error', () => {});
        s.pause(); // never read: the server must stop at the socket's backpressure
        s.write('RECENT 1000000\n');
        clients.push(s);
      }
      // Every answer has started and filled what the sockets take.
      await waitFor(() => lc.stats().queryClients === 50, 10000);
      await delay(1500);
      forceGc();
      const grown = process.memoryUsage().rss - before;
      // Copying the index per query (24 B per entry) would cost 50 × 24 MB = 1.2 GB.
      // Pinned chunks are shared; each answer holds one batch plus its send queue.
      expect(grown, `RSS grew by ${Math.round(grown / 1e6)} MB`).to.be.below(150 * 1024 * 1024);
      // and the server still answers others
      const q = await QueryClient.open(info.queryPort);
      expect(await q.ask('COUNT')).to.equal('COUNT: 1000000');
      const r = await q.found('RECENT 2');
      expect(r.lines.map(stripStamp)).to.deep.equal([line.trim(), line.trim()]);
      q.close();
    } finally {
      for (const s of clients) s.destroy();
      await lc.stop();
    }
  });

  it("answers every command sent before the client's FIN, then closes", async () => {
    const { lc, info } = await startServer();
    try {
      await sendAndClose(info.ingestPort, 'first hello\nsecond hello\nother\n');
      await waitFor(() => lc.stats().current === 3);
      // what `printf 'RECENT 2\nSEARCH hello\nCOUNT\n' | nc -N` does
      const out = (await sendAndClose(info.queryPort, 'RECENT 2\nSEARCH hello\nREGEX ^oth\nCOUNT\n')).toString().split('\n');
      expect(out[0]).to.equal('FOUND: 2 matches');
      expect(out.slice(1, 3).map(stripStamp)).to.deep.equal(['second hello', 'other']);
      expect(out[3]).to.equal('FOUND: 2 matches');
      expect(out.slice(4, 6).map(stripStamp)).to.deep.equal(['first hello', 'second hello']);
      expect(out[6]).to.equal('FOUND: 1 matches');
      expect(out.slice(8)).to.deep.equal(['COUNT: 3', '']);
    } finally {
      await lc.stop();
    }
  });

  it("10 clients running `(a+)+$` do not make another client's REGEX wait for them", async function () {
    // Budget far above the test's bounds: without fair sharing the good query would wait
    // for the bad ones to exhaust it.
    const { lc, info } = await startServer({ capacity: 100_000, regexTimeoutMs: 60_000 });
    const bad: QueryClient[] = [];
    try {
      const evil = `${'a'.repeat(32)}!\n`;
      await sendAndClose(info.ingestPort, evil.repeat(2000) + 'abc good line\n' + evil.repeat(2000));
      await waitFor(() => lc.stats().current === 4001, 10000);
      for (let i = 0; i < 10; i++) {
        const c = await QueryClient.open(info.queryPort);
        c.send('REGEX (a+)+$');
        bad.push(c);
      }
      await delay(300); // they hold both workers and queue behind them
      const good = await QueryClient.open(info.queryPort);
      const t0 = Date.now();
      const r = await good.found('REGEX ^abc');
      const waited = Date.now() - t0;
      expect(r.lines.map(stripStamp)).to.deep.equal(['abc good line']);
      // Fair sharing gives it a worker within a few 50 ms quanta (plus worker restarts on
      // a busy machine); without it, it would wait for a 60 s budget.
      expect(waited, `answered after ${waited} ms`).to.be.below(10_000);
      good.close();
    } finally {
      for (const c of bad) c.close();
      await lc.stop();
    }
  });
});
