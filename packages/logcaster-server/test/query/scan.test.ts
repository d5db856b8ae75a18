// The block scanner must find exactly the lines a line-at-a-time test finds: a seeded
// property test over random blocks (varied lines, CRLF, UTF-8, lines holding '\n',
// many runs) and random queries (keywords AND/OR, regexes that run over the whole
// block and ones that must not, time windows, syslog filters, sub-ranges).
import { expect } from 'chai';

import { Rng } from '@logcaster/testkit';

import { BlockMatcher, lineMatches, rangeOf, type QuerySpec } from '../../src/query/matcher';
import { memSource } from '../../src/query/engine';
import { runCount, runExtract } from '../../src/query/scan-job';
import { LogStore } from '../../src/store/log-store';

/** A seeded source of floats in [0, 1). */
const rng = (seed: number): (() => number) => {
  const r = new Rng(seed);
  return () => r.float();
};

const WORDS = ['GET', '/api/v1/users', 'error', 'err', 'timeout', 'user=alice', 'id=7f3a', 'café', 'naïve', 'a', 'aa', 'b', 'x y', 'ERROR', '200', '404', 'connection reset', 'ab', 'ba'];
const SYSLOG = ['<34>1 2024-01-01T00:00:00Z web01 nginx - - - ', '<11>Jan  2 03:04:05 db02 postgres[7]: ', '<190>1 - web01 app - - - ', ''];

function randomLine(r: () => number): string {
  let s = SYSLOG[Math.floor(r() * SYSLOG.length)];
  const n = 1 + Math.floor(r() * 8);
  for (let i = 0; i < n; i++) s += (i ? ' ' : '') + WORDS[Math.floor(r() * WORDS.length)];
  if (r() < 0.05) s += '\r';
  return s;
}

const REGEXES: { source: string; flags: string }[] = [
  { source: 'err(or)? [a-z]+', flags: '' },
  { source: '^GET', flags: '' },
  { source: 'users$', flags: '' },
  { source: 'a\\sb', flags: '' },
  { source: 'error.*timeout', flags: 's' },
  { source: 'ERROR', flags: 'i' },
  { source: '(?<!x )y', flags: '' },
  { source: '^(?![\\s\\S]*error)', flags: '' },
  { source: 'caf\u00e9', flags: 'u' },
  { source: 'x*', flags: '' },
  { source: '\\bab\\b', flags: '' },
  { source: '^$', flags: 'm' },
  { source: 'line\\nframe', flags: '' },
];

function randomSpec(r: () => number, t0: number): QuerySpec {
  const spec: QuerySpec = { keywords: [], operator: r() < 0.3 ? 'OR' : 'AND' };
  const kinds = r();
  if (kinds < 0.6) {
    const n = 1 + Math.floor(r() * 3);
    for (let i = 0; i < n; i++) {
      const w = WORDS[Math.floor(r() * WORDS.length)];
      const a = Math.floor(r() * w.length);
      spec.keywords.push(Buffer.from(w.slice(a, a + 1 + Math.floor(r() * w.length)) || w));
    }
  }
  if (kinds > 0.4) spec.regex = REGEXES[Math.floor(r() * REGEXES.length)];
  if (r() < 0.3) spec.timeFromMs = t0 + Math.floor(r() * 40);
  if (r() < 0.3) spec.timeToMs = t0 + Math.floor(r() * 60);
  if (r() < 0.15) spec.host = r() < 0.5 ? 'web01' : 'db02';
  if (r() < 0.1) spec.severity = Math.floor(r() * 8);
  return spec;
}

describe('block scanner agrees with a line-at-a-time scan', function () {
  this.timeout(60000);

  it('over random blocks and queries (seeded), whole blocks and sub-ranges', () => {
    let checked = 0;
    for (let seed = 1; seed <= 12; seed++) {
      const r = rng(seed * 7919);
      const store = new LogStore(5000, 256, 8192);
      const t0 = 1_700_000_000_000;
      const peerA = store.peers.intern('10.0.0.1:5');
      const peerB = store.peers.intern('10.0.0.2:6');
      const lines: { text: Buffer; time: number }[] = [];
      let time = t0;
      while (lines.length < 3000) {
        // one "packet" of lines, as the ingest port delivers them
        const k = 1 + Math.floor(r() * 40);
        const texts: string[] = [];
        for (let i = 0; i < k; i++) texts.push(r() < 0.02 ? 'multi\nline frame error' : randomLine(r));
        if (r() < 0.3) time += 1;
        const peer = r() < 0.5 ? peerA : peerB;
        const pkt = Buffer.from(texts.map((t) => `${t}\n`).join(''));
        store.beginBlock(pkt, 0, pkt.length);
        let pos = 0;
        for (const t of texts) {
          const len = Buffer.byteLength(t);
          if (t.includes('\n')) {
            // as an octet-counted frame arrives: not right after a '\n' of its packet
            store.append(Buffer.from(t), 0, len, time, peer);
          } else {
            store.append(pkt, pos, pos + len, time, peer);
          }
          lines.push({ text: pkt.subarray(pos, pos + len), time });
          pos += len + 1;
        }
        store.endBlock();
        for (const l of lines.slice(-k)) l.text = Buffer.from(l.text);
      }
      const pinned = store.pin();
      const names = store.peers.names;
      for (let q = 0; q < 40; q++) {
        const spec = randomSpec(r, t0);
        const lo = r() < 0.5 ? 0 : Math.floor(r() * lines.length);
        const hi = r() < 0.5 ? lines.length : lo + Math.floor(r() * (lines.length - lo));
        const expected: string[] = [];
        for (let s = lo; s < hi; s++) if (lineMatches(spec, lines[s].text, lines[s].time)) expected.push(lines[s].text.toString('latin1'));
        const m = new BlockMatcher(spec);
        const got: string[] = [];
        let counted = 0;
        for (const b of pinned.blocks) {
          const { view, source: src } = memSource(b, names);
          const range = rangeOf(view, lo, hi);
          counted += m.count(view, range);
          // extraction in small batches, resuming where the last one stopped
          let from = range.from;
          for (;;) {
            const rep = runExtract({ kind: 'extract', spec, unit: { source: src, range }, from, maxBytes: 1 + Math.floor(r() * 300) });
            for (let i = 0; i < rep.batch.length; i++) got.push(Buffer.from(rep.batch.bytes.subarray(rep.batch.start[i], rep.batch.end[i])).toString('latin1'));
            if (rep.next < 0) break;
            from = rep.next;
          }
          const c = runCount({ kind: 'count', spec, units: [{ source: src, range }], hitLimit: 1 << 20 });
          expect(c.hits[0]!.length).to.equal(c.counts[0]);
        }
        const what = `seed ${seed} query ${q}: ${JSON.stringify(spec)} [${lo}, ${hi})`;
        if (JSON.stringify(got) !== JSON.stringify(expected)) {
          const e = new Set(expected);
          const g = new Set(got);
          console.log('extra', got.filter((x) => !e.has(x)).slice(0, 5), 'missing', expected.filter((x) => !g.has(x)).slice(0, 5));
        }
        expect(got, what).to.deep.equal(expected);
        expect(counted, what).to.equal(expected.length);
        checked++;
      }
      pinned.release();
    }
    expect(checked).to.equal(480);
  });
});
