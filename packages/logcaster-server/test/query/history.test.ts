// Queries over the whole retained history: the journal's segments on disk followed by
// the memory window (--capacity). Every line exactly once and in order across both,
// the same answers after a restart (which reloads the segment indexes, not the lines),
// retention by size and by age, and damaged records skipped and counted, never fatal.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import * as os from 'node:os';

import { delay, rmDir, sendAndClose, startNode, tmpDir, waitFor, type NodeChild } from '@logcaster/testkit';

import { CpuHeadroom } from '../../src/query/cpu-headroom';
import { lineMatches, type QuerySpec } from '../../src/query/matcher';
import { parseRecord, scanSegment, segmentName } from '../../src/journal';
import type { LogCaster, LogCasterOptions } from '../../src';
import { QueryClient, startServer, streamQuery } from '../support/helpers';

const WORDS = ['GET /api/v1/users 200', 'sshd[812]: Accepted publickey for deploy', 'user=alice action=login', '{"level":"warn","msg":"slow"}', 'kernel: eth0 link up', 'POST /upload 413'];

/** Line i: its number (zero-padded, so text order is number order), varied words, and
 *  a rare needle on every 99,991st line. */
function lineText(i: number): string {
  const needle = i % 99_991 === 7 ? ` needle-${i}` : '';
  return `L${String(i).padStart(8, '0')} ${WORDS[i % WORDS.length]} r=${(i * 2654435761) % 1000003}${needle}`;
}

function linesBuffer(from: number, to: number): Buffer {
  const parts: string[] = [];
  for (let i = from; i < to; i++) parts.push(lineText(i));
  return Buffer.from(parts.join('\n') + '\n');
}

const numberOf = (text: string): number => Number(text.slice(1, 9));

/** Sends lines [from, to) in big writes and waits until the server stored them. */
async function feed(lc: LogCaster, port: number, from: number, to: number, step = 250_000): Promise<void> {
  const before = lc.stats().total;
  for (let a = from; a < to; a += step) await sendAndClose(port, linesBuffer(a, Math.min(to, a + step)));
  await waitFor(() => lc.stats().total >= before + (to - from), 60_000, () => `stored ${lc.stats().total - before} of ${to - from}`);
}

/** Streams a query and checks that its lines are exactly `expected` numbers, in order. */
async function expectNumbers(port: number, cmd: string, expected: (k: number) => number, n: number): Promise<void> {
  let k = 0;
  let bad: string | undefined;
  const r = await streamQuery(port, cmd, (text) => {
    if (bad === undefined && numberOf(text) !== expected(k)) bad = `line ${k} of ${cmd}: expected L${expected(k)}, got ${text}`;
    k++;
  });
  expect(bad).to.equal(undefined);
  expect(r.found, `${cmd}: FOUND`).to.equal(n);
  expect(r.received, `${cmd}: lines received`).to.equal(n);
}

function segmentFiles(dir: string, ext: string): string[] {
  return fs.readdirSync(dir).filter((f) => f.endsWith(ext)).sort();
}

describe('queries over the retained history (disk segments + memory window)', function () {
  this.timeout(180_000);
  let dir: string;
  const servers: LogCaster[] = [];
  const start = async (opts: LogCasterOptions): Promise<{ lc: LogCaster; ingest: number; query: number }> => {
    const { lc, info } = await startServer({ dataDir: dir, ...opts });
    servers.push(lc);
    return { lc, ingest: info.ingestPort, query: info.queryPort };
  };
  beforeEach(() => {
    dir = tmpDir('history');
  });
  afterEach(async () => {
    for (const lc of servers.splice(0)) await lc.stop();
    rmDir(dir);
  });

  it('1M lines with a 100k window: every line exactly once, in order, across disk and memory; a restart reloads the index and answers the same', async () => {
    const N = 1_000_000;
    const opts: LogCasterOptions = { capacity: 100_000, rotateSize: 4 * 1024 * 1024, fsync: 'never' };
    const a = await start(opts);
    await feed(a.lc, a.ingest, 0, N);
    expect(a.lc.store.size, 'memory holds the window only').to.be.at.most(100_000);
    const needles = Array.from({ length: N }, (_, i) => i).filter((i) => i % 99_991 === 7);
    const qa = await QueryClient.open(a.query);
    const answers = async (q: QueryClient): Promise<string[]> => [
      await q.ask('COUNT'),
      ...(await q.found('SEARCH needle-')).lines,
      ...(await q.found('QUERY keywords=needle-199989,needle-7 operator=OR')).lines,
      ...(await q.found('REGEX needle-\\d+9$')).lines,
      ...(await q.found('RECENT 3')).lines,
    ];
    const before = await answers(qa);
    expect(before[0]).to.equal(`COUNT: ${N}`);
    const found = before.slice(1, 1 + needles.length).map((l) => numberOf(l.replace(/^\[[^\]]*\] /, '')));
    expect(found, 'SEARCH finds every needle, oldest first, on disk and in memory').to.deep.equal(needles);
    expect(needles[needles.length - 1]).to.be.greaterThan(N - 100_000); // one needle is in memory
    await expectNumbers(a.query, `RECENT ${N}`, (k) => k, N);
    await expectNumbers(a.query, 'RECENT 150000', (k) => N - 150_000 + k, 150_000);
    await expectNumbers(a.query, `SEARCH ${WORDS[1].slice(0, 12)}`, (k) => 1 + k * WORDS.length, Math.ceil((N - 1) / WORDS.length));
    qa.close();
    // Token filters are built for the finished segments in the background.
    await waitFor(() => segmentFiles(dir, '.tf').length === segmentFiles(dir, '.log').length - 1, 60_000, 'token filters');
    await expectNumbers(a.query, 'SEARCH needle-', (k) => needles[k], needles.length);
    const skipped = a.lc.stats().historyGroupsSkipped;
    expect(skipped, 'the filters let SEARCH skip groups').to.be.greaterThan(0);
    await expectNumbers(a.query, 'REGEX needle-\\d+$', (k) => needles[k], needles.length);
    expect(a.lc.stats().historyGroupsSkipped, 'and a regex by the literal it requires').to.be.greaterThan(skipped);
    await a.lc.stop();

    const b = await start(opts);
    expect(b.lc.store.size, 'a restart reads no line into memory').to.equal(0);
    expect(b.lc.stats().reloaded).to.equal(N);
    const qb = await QueryClient.open(b.query);
    expect(await answers(qb)).to.deep.equal(before);
    qb.close();
    await expectNumbers(b.query, `RECENT ${N}`, (k) => k, N);
    const stats = await QueryClient.open(b.query);
    const line = await stats.ask('STATS');
    stats.close();
    expect(line).to.match(new RegExp(`Total=${N}, Dropped=0, Current=${N},`));
    expect(line).to.match(new RegExp(`Reloaded=${N},`));
  });

  it('every finished segment gets its token filter, also when rotation outran the writer thread', async () => {
    // Each rotation hands the finished segment to the filter builder while its last
    // records may still be on their way through the writer thread: the builder must
    // read the segment only once they are in the file (a short read built nothing, and
    // the segment stayed unfiltered for good).
    // Many small connections: many small records, so that the writer thread lags.
    const a = await start({ capacity: 1_000, rotateSize: 64 * 1024, fsync: 'never' });
    await feed(a.lc, a.ingest, 0, 90_000, 100);
    const finished = (): number => segmentFiles(dir, '.log').length - 1;
    expect(finished(), 'segments finished').to.be.greaterThan(10);
    await waitFor(() => a.lc.stats().filtersPending === 0, 20_000, () => `${a.lc.stats().filtersPending} of ${finished()} finished segments still without a token filter`);
    expect(segmentFiles(dir, '.tf').length).to.equal(finished());
    expect(a.lc.stats().filterFailures, 'no build read a segment before its records were written').to.equal(0);
  });

  it('a token filter build waits while every core is busy, 10 s at most; on an idle machine it starts at once', async () => {
    const a = await start({ capacity: 1_000, rotateSize: 64 * 1024, fsync: 'never' });
    const finished = (): number => segmentFiles(dir, '.log').length - 1;
    // Control: once the machine has a core to spare (what earlier tests left running
    // settles), a finished segment's filter is built without waiting.
    const headroom = new CpuHeadroom();
    await waitFor(() => headroom.spareCore(), 30_000, 'a spare core before the control');
    const idleWaits = a.lc.stats().filterWaits;
    // Connections of 300 lines: records of one connection's bytes, so segments rotate.
    await feed(a.lc, a.ingest, 0, 3_000, 300);
    await waitFor(() => finished() >= 1 && a.lc.stats().filtersPending === 0, 5_000, () => `control: ${finished()} segments finished, ${a.lc.stats().filtersPending} without a filter, ${a.lc.stats().filterWaits - idleWaits} builds waited, spare core now: ${headroom.spareCore()}`);
    expect(a.lc.stats().filterWaits, 'control: no build waited').to.equal(idleWaits);
    // Every core busy: one spinning process per core.
    const spinners: NodeChild[] = Array.from({ length: os.cpus().length }, () => startNode('for (;;) {}'));
    try {
      await delay(800); // the headroom is measured over 250 ms intervals
      const before = finished();
      await feed(a.lc, a.ingest, 3_000, 6_000, 300);
      await waitFor(() => finished() > before, 10_000, 'new segments finished');
      await delay(2_000);
      expect(a.lc.stats().filterWaits, 'builds waited for a core').to.be.greaterThan(idleWaits);
      expect(a.lc.stats().filtersPending, 'still waiting after 2 s').to.be.greaterThan(0);
      const waitedFrom = Date.now();
      await waitFor(() => a.lc.stats().filtersPending === 0, 15_000, () => `${a.lc.stats().filtersPending} filters still waiting under load`);
      expect(Date.now() - waitedFrom, 'built within the 10 s bound').to.be.below(12_000);
    } finally {
      for (const s of spinners) s.child.kill('SIGKILL');
      await Promise.all(spinners.map((s) => s.exited));
    }
    expect(segmentFiles(dir, '.tf').length).to.equal(finished());
  });

  it('keyword and regex queries with token filters find exactly what a plain scan of every line finds (random keywords)', async () => {
    const N = 60_000;
    const a = await start({ capacity: 5_000, rotateSize: 256 * 1024, fsync: 'never' });
    await feed(a.lc, a.ingest, 0, N);
    // Rotate past the last lines, so that nearly everything is in filtered segments.
    await waitFor(() => segmentFiles(dir, '.tf').length >= segmentFiles(dir, '.log').length - 1, 60_000, 'token filters');
    const all = Array.from({ length: N }, (_, i) => lineText(i));
    let seed = 99;
    const rnd = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x80000000;
    };
    for (let c = 0; c < 12; c++) {
      const src = all[Math.floor(rnd() * N)];
      const at = Math.floor(rnd() * (src.length - 4));
      // A substring of some line, or one no line holds.
      const kw = rnd() < 0.7 ? src.slice(at, at + 3 + Math.floor(rnd() * 8)).trim() || 'L0' : `zq${Math.floor(rnd() * 1e6)}x`;
      // Every other case as a regex: the scan and the filters go by the literal it requires.
      const asRegex = c % 2 === 1;
      const source = `${kw.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\b`;
      const spec: QuerySpec = asRegex ? { keywords: [], operator: 'AND', regex: { source, flags: '' } } : { keywords: [Buffer.from(kw)], operator: 'AND' };
      const expected = all.map((t, i) => (lineMatches(spec, Buffer.from(t), 0) ? i : -1)).filter((i) => i >= 0);
      await expectNumbers(a.query, asRegex ? `REGEX ${source}` : `SEARCH ${kw}`, (k) => expected[k], expected.length);
    }
  });

  it('time filters over disk and memory: exactly the lines of the window; groups outside it are not read', async () => {
    const a = await start({ capacity: 500, rotateSize: 64 * 1024, fsync: 'never' });
    await feed(a.lc, a.ingest, 0, 3_000, 300);
    // The next lines arrive in a later whole second than every line before them.
    const boundary = Math.floor(Date.now() / 1000) + 1;
    await delay(boundary * 1000 - Date.now() + 20);
    await feed(a.lc, a.ingest, 3_000, 6_000, 300);
    const far = boundary + 3600;
    const skippedBefore = a.lc.stats().historyGroupsOutsideWindow;
    await expectNumbers(a.query, `FILTER ${boundary} ${far}`, (k) => 3_000 + k, 3_000);
    expect(a.lc.stats().historyGroupsOutsideWindow, 'the first lines’ groups were left out').to.be.greaterThan(skippedBefore);
    await expectNumbers(a.query, `FILTER 0 ${boundary - 1}`, (k) => k, 3_000);
    await expectNumbers(a.query, `QUERY keyword=L0 time_from=${boundary}`, (k) => 3_000 + k, 3_000);
    await expectNumbers(a.query, `FILTER ${far} ${far + 10}`, (k) => k, 0);
  });

  it('retention by size: the oldest segments go; queries see exactly the retained suffix and COUNT agrees', async () => {
    const a = await start({ capacity: 1_000, rotateSize: 64 * 1024, retentionSize: 256 * 1024, fsync: 'never' });
    await feed(a.lc, a.ingest, 0, 40_000, 2_000);
    const q = await QueryClient.open(a.query);
    const count = Number((await q.ask('COUNT')).split(' ')[1]);
    q.close();
    expect(count).to.be.greaterThan(1_000).and.below(40_000);
    await expectNumbers(a.query, 'RECENT 40000', (k) => 40_000 - count + k, count);
    // Kept: at most --retention-size of segments (the one being written is never deleted).
    // Segments the query was reading are unlinked by the writer thread once it unpins them.
    // A segment listed may be unlinked before its stat: it then holds nothing.
    const bytes = (): number => segmentFiles(dir, '.log').reduce((n, f) => n + (fs.statSync(path.join(dir, f), { throwIfNoEntry: false })?.size ?? 0), 0);
    await waitFor(() => bytes() <= 256 * 1024, 15_000, () => `${bytes()} bytes of segments kept after the query`);
    expect(segmentFiles(dir, '.log').length).to.be.greaterThan(1);
    expect(a.lc.stats().dropped, 'Dropped: lines deleted by retention').to.equal(40_000 - count);
  });

  it('retention by age: segments whose newest line is older than --retention-time go, newer lines stay', async () => {
    const a = await start({ capacity: 100_000, rotateSize: 64 * 1024, retentionTime: 2, fsync: 'never' });
    await feed(a.lc, a.ingest, 0, 5_000);
    await delay(3_000);
    // Retention is checked at every rotation: these lines rotate several times.
    await feed(a.lc, a.ingest, 5_000, 15_000);
    const q = await QueryClient.open(a.query);
    const count = Number((await q.ask('COUNT')).split(' ')[1]);
    q.close();
    // Every new line is kept; of the old ones only those in the segment that went on to
    // take new lines too (its newest line is new): at most one segment's worth (~1,400).
    // The others are gone from queries, the memory window included.
    expect(count).to.be.at.least(10_000).and.below(11_500);
    await expectNumbers(a.query, 'RECENT 15000', (k) => 15_000 - count + k, count);
  });

  it('a torn tail and a corrupt record are skipped and counted; every other line is answered once, in order', async () => {
    const N = 20_000;
    const opts: LogCasterOptions = { capacity: 1_000, rotateSize: 256 * 1024, fsync: 'never' };
    const a = await start(opts);
    // Small sends: records of a few hundred lines, several per segment.
    await feed(a.lc, a.ingest, 0, N, 500);
    await a.lc.stop();
    const logs = segmentFiles(dir, '.log');
    expect(logs.length).to.be.at.least(3);
    // Corrupt one byte of the data of the second record of the second segment (its
    // index file still describes it: the damage is found when a query reads it).
    const victim = path.join(dir, logs[1]);
    const img = fs.readFileSync(victim);
    const lost = new Set<number>();
    let second = -1;
    let k = 0;
    scanSegment(img, 40, (pos) => {
      if (k++ === 1) second = pos;
    });
    expect(k, 'records in the second segment').to.be.at.least(3);
    const rec = parseRecord(img, second)!;
    for (const t of rec.block.data.toString('latin1').split('\n').filter(Boolean)) lost.add(numberOf(t));
    img[second + rec.length - 10] ^= 0x20;
    fs.writeFileSync(victim, img);
    // Cut the newest segment inside its last record.
    const newest = path.join(dir, logs[logs.length - 1]);
    const nimg = fs.readFileSync(newest);
    let last = -1;
    scanSegment(nimg, 40, (pos) => {
      last = pos;
    });
    const lastRec = parseRecord(nimg, last)!;
    for (const t of lastRec.block.data.toString('latin1').split('\n').filter(Boolean)) lost.add(numberOf(t));
    fs.truncateSync(newest, last + Math.floor(lastRec.length / 2));
    expect(segmentName(1)).to.equal(logs[0]);

    const b = await start(opts);
    expect(b.lc.stats().tornSkipped, 'the torn tail, counted at open').to.be.at.least(1);
    const kept = Array.from({ length: N }, (_, i) => i).filter((i) => !lost.has(i));
    await expectNumbers(b.query, 'SEARCH L0', (i) => kept[i], kept.length);
    expect(b.lc.stats().historyGroupsDamaged, 'the corrupt record, counted when read').to.be.at.least(1);
    // The server keeps serving, and numbering continues after the lines it kept.
    await feed(b.lc, b.ingest, N, N + 10);
    await expectNumbers(b.query, 'RECENT 10', (i) => N + i, 10);
  });
});
