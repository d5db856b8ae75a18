// The scan pool's scheduling and the block regex over blocks larger than one regex
// window: what gets preempted (only jobs that can run without bound), an owner limited to
// fewer running jobs than there are workers, and windows that see the same line edges as
// the whole block.
import { expect } from 'chai';

import { memSource } from '../../src/query/engine';
import { lineMatches, rangeOf, type QuerySpec } from '../../src/query/matcher';
import { ScanPool } from '../../src/query/pool';
import { runCount, type CountJob, type CountReply } from '../../src/query/scan-job';
import { LogStore, type StoreBlock } from '../../src/store/log-store';

const T0 = 1_700_000_000_000;

/** A store holding `lines` lines of about 60 bytes in packets of `perPacket` lines
 *  (one block each), and the lines' texts. */
function storeOf(lines: number, perPacket: number): { store: LogStore; texts: string[] } {
  const store = new LogStore(lines, 65536, 4 * 1024 * 1024);
  const peer = store.peers.intern('10.0.0.1:5');
  const texts: string[] = [];
  for (let i = 0; i < lines; i += perPacket) {
    const batch: string[] = [];
    for (let k = i; k < Math.min(lines, i + perPacket); k++) batch.push(`<34>1 2024-01-01T00:00:00Z web0${k % 3} app - - - ab line ${k} ${k % 7 === 0 ? 'error' : 'ok'} ba`);
    const pkt = Buffer.from(batch.map((t) => `${t}\n`).join(''));
    store.beginBlock(pkt, 0, pkt.length);
    let pos = 0;
    for (const t of batch) {
      store.append(pkt, pos, pos + t.length, T0, peer);
      pos += t.length + 1;
    }
    store.endBlock();
    texts.push(...batch);
  }
  return { store, texts };
}

function countJob(store: LogStore, blocks: readonly StoreBlock[], spec: QuerySpec): CountJob {
  const units = blocks.map((b) => {
    const { view, source } = memSource(b, store.peers.names);
    return { source, range: rangeOf(view, b.firstSeq, b.firstSeq + b.count) };
  });
  return { kind: 'count', spec, units, hitLimit: 0 };
}

const total = (r: unknown): number => (r as CountReply).counts.reduce((a, b) => a + b, 0);

describe('block regex over blocks larger than one regex window', () => {
  it('finds exactly the lines a line-at-a-time test finds, anchors and word edges included', () => {
    // One packet of 14,000 lines: a block of ~0.9 MB, scanned in 64 KiB windows.
    const { store, texts } = storeOf(14_000, 14_000);
    const pinned = store.pin();
    try {
      expect(pinned.blocks.length).to.equal(1);
      expect(pinned.blocks[0].end - pinned.blocks[0].start).to.be.greaterThan(800_000);
      const regexes = ['^<34>1 2024-01-01T00:00:00Z web02 app - - - ab line \\d*7 ', 'error ba$', '\\bab\\b', '\\d{4}9 ok', '^$', 'line 1[0-9]{4} error'];
      for (const source of regexes) {
        const spec: QuerySpec = { keywords: [], operator: 'AND', regex: { source, flags: '' } };
        const expected = texts.filter((t) => lineMatches(spec, Buffer.from(t), T0)).length;
        const got = total(runCount(countJob(store, pinned.blocks, spec)));
        expect(got, source).to.equal(expected);
      }
    } finally {
      pinned.release();
    }
  });
});

describe('scan pool scheduling', function () {
  this.timeout(60_000);
  const pools: ScanPool[] = [];
  afterEach(async () => {
    for (const p of pools.splice(0)) await p.close();
  });
  const pool = (size: number, quantumMs: number): ScanPool => {
    const p = new ScanPool({ size, quantumMs });
    pools.push(p);
    return p;
  };
  const keyword: QuerySpec = { keywords: [Buffer.from('zebrafish')], operator: 'AND' };
  const regex: QuerySpec = { keywords: [], operator: 'AND', regex: { source: 'zq[0-9]+x', flags: '' } };
  let store: LogStore;
  let texts: string[];
  let blocks: readonly StoreBlock[];
  let small: CountJob;
  before(() => {
    // 400,000 lines (~24 MB) in packets of 2,000 lines: a job that runs well past a 1 ms quantum.
    ({ store, texts } = storeOf(400_000, 2_000));
    blocks = store.pin().blocks;
    small = countJob(store, blocks.slice(0, 1), { keywords: [Buffer.from('error')], operator: 'AND' });
  });

  it('a keyword job runs to its end while another owner waits; a regex job is preempted for it and then finishes', async () => {
    for (const [spec, preempted] of [
      [keyword, false],
      [regex, true],
    ] as const) {
      const p = pool(1, 1);
      const long = p.submit({}, countJob(store, blocks, spec));
      const short = p.submit({}, small);
      const order: string[] = [];
      await Promise.all([long.then(() => order.push('long')), short.then(() => order.push('short'))]);
      expect(total(await long), 'no line holds it').to.equal(0);
      expect(total(await short)).to.equal(texts.slice(0, blocks[0].count).filter((t) => t.includes('error')).length);
      if (preempted) {
        expect(p.preemptions, 'the regex job yielded its worker').to.be.greaterThan(0);
        expect(order).to.deep.equal(['short', 'long']);
      } else {
        expect(p.preemptions, 'the keyword job kept its worker').to.equal(0);
        expect(order).to.deep.equal(['long', 'short']);
      }
    }
  });

  it('an owner limited to one running job leaves the other workers to the rest', async () => {
    for (const [maxRunning, firstDone] of [
      [1, 'other'],
      [Infinity, 'limited'],
    ] as const) {
      const p = pool(2, 50);
      // Start both workers first, so that no job waits for a thread to boot.
      await Promise.all([p.submit({}, small), p.submit({}, small)]);
      const owner = {};
      const order: string[] = [];
      // Slow but linear: every line has the keyword and is parsed for its syslog host.
      const slow: QuerySpec = { keywords: [Buffer.from('line')], operator: 'AND', host: 'web01' };
      const limited = [0, 1].map(() => p.submit(owner, countJob(store, blocks, slow), { maxRunning }).then(() => order.push('limited')));
      const other = p.submit({}, small).then(() => order.push('other'));
      await Promise.all([...limited, other]);
      expect(order[0], `maxRunning ${maxRunning}`).to.equal(firstDone);
    }
  });
});
