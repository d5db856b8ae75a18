// A regex query searches for a literal the regex requires before running the regex on a
// line (and a token filter tests it). The literal must be in every line the regex
// matches: tricky patterns against lines they match, and the literal each yields.
import { expect } from 'chai';

import { BlockMatcher, lineMatches, requiredLiteral, wholeBlock } from '../../src/query/matcher';
import { NL, type BlockView } from '../../src/store/block';

const CASES: { source: string; flags?: string; lines: string[]; literal: string | undefined }[] = [
  { source: 'error.*timeout', lines: ['an error then a timeout'], literal: 'timeout' },
  { source: 'err(or)? [a-z]+', lines: ['err x', 'error y'], literal: 'err' },
  { source: 'abc?def', lines: ['abdef', 'abcdef'], literal: 'def' },
  { source: 'ab+cdef', lines: ['abbbcdef'], literal: 'cdef' },
  { source: 'x{0}abcd', lines: ['abcd'], literal: 'abcd'.slice(0) },
  { source: 'qq{0,2}rstu', lines: ['qrstu'], literal: 'rstu' },
  { source: '\\x41BCD', lines: ['ABCD'], literal: 'BCD' },
  { source: '\\u0041bcd', lines: ['Abcd'], literal: 'bcd' },
  { source: '\\u{41}bcd', flags: 'u', lines: ['Abcd'], literal: 'bcd' },
  { source: '(?<n>ab)\\k<n>cde', lines: ['ababcde'], literal: 'cde' },
  { source: '\\p{L}xyz', flags: 'u', lines: ['éxyz'], literal: 'xyz' },
  { source: '(a)\\1bcd', lines: ['aabcd'], literal: 'bcd' },
  { source: '\\.json\\b', lines: ['config.json is read'], literal: '.json' },
  { source: '[abc]def', lines: ['bdef'], literal: 'def' },
  { source: '(?:abc|xyz)defg', lines: ['xyzdefg'], literal: 'defg' },
  { source: 'GET|POST', lines: ['POST /x'], literal: undefined },
  { source: 'user=\\w+ action=login', lines: ['user=bob action=login'], literal: ' action=login' },
  { source: 'ERROR', flags: 'i', lines: ['error'], literal: undefined },
  { source: 'a\\sb', lines: ['a b'], literal: undefined },
  { source: '^(?![\\s\\S]*error)', lines: ['fine'], literal: undefined },
  { source: 'caf\u00e9 ok', flags: 'u', lines: ['café ok'], literal: 'caf' },
  { source: '{"level":"warn"', lines: ['{"level":"warn"}'], literal: '"level":"warn"' },
  { source: 'a\\cJbcd', lines: ['a\nbcd'], literal: 'bcd' },
];

function block(lines: string[]): BlockView {
  const data = Buffer.from(lines.map((l) => l + '\n').join(''));
  const lineEnds = new Uint32Array(lines.length);
  let o = 0;
  lines.forEach((l, i) => {
    o += Buffer.byteLength(l);
    lineEnds[i] = o;
    o++;
  });
  const hasNl = lines.some((l) => l.includes('\n'));
  expect(data[data.length - 1]).to.equal(NL);
  return {
    data,
    firstSeq: 0,
    count: lines.length,
    runs: { off: new Uint32Array([0]), lines: new Uint32Array([lines.length]), time: new Float64Array([0]), peer: new Uint32Array([0]) },
    peers: ['p'],
    lineEnds: hasNl ? lineEnds : undefined,
  };
}

describe('a regex query\'s required literal', () => {
  for (const c of CASES) {
    it(`/${c.source}/${c.flags ?? ''} → ${c.literal === undefined ? 'none' : JSON.stringify(c.literal)}; every line it matches is found`, () => {
      const regex = { source: c.source, flags: c.flags ?? '' };
      const lit = requiredLiteral(regex);
      expect(lit?.toString('latin1')).to.equal(c.literal);
      const re = new RegExp(c.source, c.flags ?? '');
      for (const line of c.lines) {
        expect(re.test(line), `the case's line matches: ${line}`).to.equal(true);
        if (lit !== undefined) expect(Buffer.from(line).includes(lit), line).to.equal(true);
      }
      // The scanner (which searches for the literal first) finds exactly what the
      // line-at-a-time predicate finds, among the lines and others that do not match.
      const lines = [...c.lines, 'nothing here', `${c.literal ?? 'zz'} but not the rest`];
      const spec = { keywords: [], operator: 'AND' as const, regex };
      const found: number[] = [];
      const b = block(lines);
      new BlockMatcher(spec).scan(b, wholeBlock(b), (ls) => {
        found.push(ls);
        return true;
      });
      const expected = lines.map((l, i) => (lineMatches(spec, Buffer.from(l), 0) ? i : -1)).filter((i) => i >= 0);
      expect(found.length).to.equal(expected.length);
    });
  }
});
