// The token filter must never rule out a group that holds a keyword (a false negative
// would hide matching lines): a seeded property test over random data and keywords
// against a plain indexOf, plus the filter file's checks.
import { expect } from 'chai';

import { Rng } from '@logcaster/testkit';

import {
  addTrigrams, checkedFilter, encodeFilterFile, FILTER_BYTES, FILTER_HEADER, filterHeaderMatches, filterOffset, mayContain,
} from '../../src/journal/token-filter';

/** A seeded source of floats in [0, 1). */
const rng = (seed: number): (() => number) => {
  const r = new Rng(seed);
  return () => r.float();
};

const WORDS = ['GET', '/api/v1/users', 'error', 'timeout', 'user=alice', 'id=7f3a', 'café', 'sshd[812]:', '200', '404', '{"level":"warn"}', 'connection reset', '10.0.0.7'];

function randomData(r: () => number, lines: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < lines; i++) {
    const n = 1 + Math.floor(r() * 8);
    const words: string[] = [];
    for (let k = 0; k < n; k++) words.push(r() < 0.2 ? Math.floor(r() * 1e9).toString(36) : WORDS[Math.floor(r() * WORDS.length)]);
    parts.push(Buffer.from(words.join(' ') + '\n'));
    if (r() < 0.05) parts.push(Buffer.from([Math.floor(r() * 256), Math.floor(r() * 256), Math.floor(r() * 256), 10]));
  }
  return Buffer.concat(parts);
}

describe('token filter', () => {
  it('never rules out a keyword the data holds (2000 random cases), and rules out most absent ones', () => {
    const r = rng(12);
    let absent = 0;
    let ruledOut = 0;
    for (let c = 0; c < 2000; c++) {
      const data = randomData(r, 1 + Math.floor(r() * 300));
      const bits = new Uint8Array(FILTER_BYTES);
      addTrigrams(bits, data);
      // a substring of the data (often across words or lines), or a made-up one
      let kw: Buffer;
      if (r() < 0.6) {
        const at = Math.floor(r() * data.length);
        kw = data.subarray(at, Math.min(data.length, at + 1 + Math.floor(r() * 20)));
      } else {
        kw = Buffer.from(Math.floor(r() * 1e12).toString(36) + WORDS[Math.floor(r() * WORDS.length)].slice(1));
      }
      const present = data.indexOf(kw) >= 0;
      const may = mayContain(bits, kw);
      if (present) expect(may, `keyword ${JSON.stringify(kw.toString('latin1'))} is in the data`).to.equal(true);
      else if (kw.length >= 3) {
        absent++;
        if (!may) ruledOut++;
      }
    }
    // Not a bound the scanner relies on, only that the filter filters at all.
    expect(absent).to.be.greaterThan(100);
    expect(ruledOut / absent).to.be.greaterThan(0.5);
  });

  it('lets every keyword shorter than three bytes through', () => {
    const bits = new Uint8Array(FILTER_BYTES);
    addTrigrams(bits, Buffer.from('abc\n'));
    expect(mayContain(bits, Buffer.from('zz'))).to.equal(true);
    expect(mayContain(bits, Buffer.from('abc'))).to.equal(true);
    expect(mayContain(bits, Buffer.from('abd'))).to.equal(false);
  });

  it('a filter file names its segment, size and grouping; a damaged filter is not used', () => {
    const groups = [{ off: 40, len: 1000 }, { off: 1040, len: 500 }];
    const f0 = new Uint8Array(FILTER_BYTES);
    const f1 = new Uint8Array(FILTER_BYTES);
    addTrigrams(f0, Buffer.from('first group\n'));
    addTrigrams(f1, Buffer.from('second group\n'));
    const file = encodeFilterFile(7, 1540, groups, [f0, f1]);
    expect(file.length).to.equal(FILTER_HEADER + 8 + 2 * FILTER_BYTES);
    const head = file.subarray(0, FILTER_HEADER);
    expect(filterHeaderMatches(head, 7, 1540, groups)).to.equal(true);
    expect(filterHeaderMatches(head, 8, 1540, groups)).to.equal(false);
    expect(filterHeaderMatches(head, 7, 1541, groups)).to.equal(false);
    expect(filterHeaderMatches(head, 7, 1540, [{ off: 40, len: 999 }, { off: 1039, len: 501 }])).to.equal(false);
    const crc1 = file.subarray(FILTER_HEADER + 4, FILTER_HEADER + 8);
    const body1 = Buffer.from(file.subarray(filterOffset(2, 1), filterOffset(2, 2)));
    expect(mayContain(checkedFilter(crc1, body1)!, Buffer.from('second'))).to.equal(true);
    expect(mayContain(checkedFilter(crc1, body1)!, Buffer.from('first'))).to.equal(false);
    body1[100] ^= 0xff;
    expect(checkedFilter(crc1, body1)).to.equal(null);
    const bad = Buffer.from(head);
    bad[20] ^= 1;
    expect(filterHeaderMatches(bad, 7, 1540, groups)).to.equal(false);
  });
});
