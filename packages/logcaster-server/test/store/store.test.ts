import { expect } from 'chai';

import { forceGc } from '@logcaster/testkit';

import { LogStore, type PinnedBlocks, type StoreBlock } from '../../src/store/log-store';

/** The lines of a block, read back the way a scan does: from its bytes alone. */
function blockLines(b: StoreBlock): string[] {
  const data = b.chunk.buf.subarray(b.start, b.end);
  const out: string[] = [];
  let pos = 0;
  for (let i = 0; i < b.count; i++) {
    const end = b.lineEnds ? b.lineEnds[i] : data.indexOf(10, pos);
    expect(data[end], 'each line is followed by a newline').to.equal(10);
    out.push(data.toString('utf8', pos, end));
    pos = end + 1;
  }
  expect(pos, 'the block holds nothing else').to.equal(data.length);
  return out;
}

/** Lines of pinned blocks from sequence `from` on. */
function pinnedLines(p: PinnedBlocks, from: number): string[] {
  const out: string[] = [];
  for (const b of p.blocks) blockLines(b).forEach((l, i) => b.firstSeq + i >= from && out.push(l));
  return out;
}

function add(s: LogStore, text: string, t = 1000, peer = 0): number {
  const b = Buffer.from(text);
  return s.append(b, 0, b.length, t, peer);
}

describe('LogStore', () => {
  it('stores bytes, time and peer per entry', () => {
    const s = new LogStore(10);
    const p = s.peers.intern('10.0.0.1');
    const b = Buffer.from('xxhello worldyy');
    const seq = s.append(b, 2, 13, 1234.5, p, Buffer.from('!'));
    expect(s.line(seq).toString()).to.equal('hello world!');
    expect(s.time(seq)).to.equal(1234.5);
    expect(s.peer(seq)).to.equal('10.0.0.1');
    expect(s.peers.intern('10.0.0.1')).to.equal(p);
  });

  it('drops the oldest entries beyond capacity and counts them', () => {
    const s = new LogStore(3);
    for (let i = 0; i < 10; i++) add(s, `line ${i}`);
    expect(s.size).to.equal(3);
    expect(s.total).to.equal(10);
    expect(s.dropped).to.equal(7);
    expect([s.firstSeq, s.nextSeq]).to.deep.equal([7, 10]);
    expect(s.line(7).toString()).to.equal('line 7');
    expect(() => s.line(6)).to.throw(RangeError);
  });

  it('releases arena chunks whose entries are all gone', () => {
    const s = new LogStore(100, 1024, 4096);
    const line = 'a'.repeat(1000);
    for (let i = 0; i < 1000; i++) add(s, line + i);
    // 100 live entries of ~1 KB in 4 KB chunks: about 25-26 chunks, not 250
    expect(s.arenaBytes).to.be.at.most(30 * 4096);
    expect(s.line(999).toString()).to.equal(line + 999);
  });

  it('pinned blocks stay valid while the store moves on', () => {
    const s = new LogStore(5, 16, 64);
    for (let i = 0; i < 5; i++) add(s, `old ${i}`, i);
    const p = s.pin();
    for (let i = 0; i < 20; i++) add(s, `new ${i}`, 100 + i);
    expect(pinnedLines(p, 0)).to.deep.equal(['old 0', 'old 1', 'old 2', 'old 3', 'old 4']);
    const times = p.blocks.flatMap((b) => Array.from(b.runs.time));
    expect(times).to.deep.equal([0, 1, 2, 3, 4]);
    p.release();
    const recent = s.pin(s.nextSeq - 2);
    expect(pinnedLines(recent, s.nextSeq - 2)).to.deep.equal(['new 18', 'new 19']);
    recent.release();
  });

  it('recycles evicted chunks, except those a reader pinned', () => {
    const s = new LogStore(8, 16, 64);
    const seen = new Set<ArrayBufferLike>();
    for (let i = 0; i < 400; i++) seen.add(s.line(add(s, `line ${i}`)).buffer);
    // 8 live entries of ~8 bytes span 2 chunks of 64; with 2 spares, a handful in all
    expect(seen.size, 'distinct chunks over 400 lines').to.be.at.most(5);
    const p = s.pin();
    const before = pinnedLines(p, s.firstSeq);
    const pinnedBuffers = new Set(p.blocks.map((b) => b.chunk.buf.buffer));
    // The current chunk keeps filling after the pin; a pinned chunk must never come
    // back as a fresh current chunk once left.
    let prev = s.line(s.nextSeq - 1).buffer;
    for (let i = 0; i < 400; i++) {
      const b = s.line(add(s, `churn ${i}`)).buffer;
      if (b !== prev) expect(pinnedBuffers.has(b), 'a pinned chunk was reused').to.equal(false);
      prev = b;
    }
    expect(pinnedLines(p, 0).slice(-before.length)).to.deep.equal(before);
    p.release();
    // released: they are reused again
    const again = new Set<ArrayBufferLike>();
    for (let i = 0; i < 400; i++) again.add(s.line(add(s, `after ${i}`)).buffer);
    expect(again.size).to.be.at.most(5);
  });

  it('keeps time and peer per run of lines, and a line holding a newline in an indexed block', () => {
    const s = new LogStore(100);
    const a = s.peers.intern('a');
    const b = s.peers.intern('b');
    const pkt = Buffer.from('one\ntwo\nthree\n');
    s.beginBlock(pkt, 0, pkt.length);
    s.append(pkt, 0, 3, 10, a);
    s.append(pkt, 4, 7, 10, a);
    s.append(pkt, 8, 13, 11, b);
    s.endBlock();
    const multi = Buffer.from('multi\nline frame');
    s.append(multi, 0, multi.length, 12, b);
    add(s, 'plain', 12, b);
    const p = s.pin();
    expect(p.blocks.length).to.equal(2);
    const [first, second] = p.blocks;
    expect(blockLines(first)).to.deep.equal(['one', 'two', 'three']);
    expect(Array.from(first.runs.lines)).to.deep.equal([2, 1]);
    expect(Array.from(first.runs.time)).to.deep.equal([10, 11]);
    expect(Array.from(first.runs.peer)).to.deep.equal([a, b]);
    expect(Array.from(first.runs.off)).to.deep.equal([0, 8]);
    expect(first.lineEnds).to.equal(undefined);
    expect(blockLines(second)).to.deep.equal(['multi\nline frame', 'plain']);
    expect(second.lineEnds).to.not.equal(undefined);
    p.release();
  });

  it('stores lines framed from a block copied in once, mixed with copied ones', () => {
    const s = new LogStore(1000, 16, 64);
    const expected: string[] = [];
    for (let round = 0; round < 50; round++) {
      const text = `a${round}\nbb${round}\nccc${round}\n`;
      const block = Buffer.from(`..${text}..`);
      s.beginBlock(block, 2, 2 + text.length);
      // a line from elsewhere (a carried partial line) lands after the block
      add(s, `carry${round}`);
      expected.push(`carry${round}`);
      let pos = 2;
      for (const part of text.split('\n').slice(0, -1)) {
        if (part.startsWith('bb')) {
          // a truncated line needs its marker appended: copied, not referenced
          s.append(block, pos, pos + part.length, 0, 0, Buffer.from('~'));
          expected.push(`${part}~`);
        } else {
          s.append(block, pos, pos + part.length, 0, 0);
          expected.push(part);
        }
        pos += part.length + 1;
      }
      s.endBlock();
      block.fill(0x21); // the source is reused by the reactor: stored lines must not change
    }
    // 64-byte chunks: blocks and copies keep forcing new chunks mid-block
    const lines = Array.from({ length: s.size }, (_, i) => s.line(s.firstSeq + i).toString());
    expect(lines).to.deep.equal(expected);
    // and the blocks hold the same lines, in sequence order
    const p = s.pin();
    expect(pinnedLines(p, s.firstSeq)).to.deep.equal(expected);
    p.release();
    // and eviction still releases chunks in order
    const small = new LogStore(3, 16, 64);
    const out: string[] = [];
    for (let i = 0; i < 100; i++) {
      const b = Buffer.from(`x${i}\ny${i}\n`);
      small.beginBlock(b, 0, b.length);
      small.append(b, 0, b.indexOf(10), 0, 0);
      small.append(b, b.indexOf(10) + 1, b.length - 1, 0, 0);
      small.endBlock();
      out.push(`x${i}`, `y${i}`);
    }
    expect(Array.from({ length: 3 }, (_, i) => small.line(small.firstSeq + i).toString())).to.deep.equal(out.slice(-3));
  });

  it('wraps around the ring: pinning from the oldest live entry', () => {
    const s = new LogStore(7, 16, 32);
    for (let i = 0; i < 23; i++) add(s, `e${i}`, i);
    const p = s.pin();
    expect(pinnedLines(p, s.firstSeq)).to.deep.equal(Array.from({ length: 7 }, (_, i) => `e${16 + i}`));
    p.release();
  });

  it('clear() empties the store and keeps working', () => {
    const s = new LogStore(4);
    for (let i = 0; i < 6; i++) add(s, `x${i}`);
    expect(s.clear()).to.equal(4);
    expect(s.size).to.equal(0);
    expect(s.pin().blocks.length).to.equal(0);
    const seq = add(s, 'after');
    expect(s.line(seq).toString()).to.equal('after');
    expect(s.size).to.equal(1);
  });

  it('stores a million lines with no per-line objects and modest heap growth', function () {
    this.timeout(20000);
    const s = new LogStore(1_000_000, 256);
    const b = Buffer.from('2024-01-01T00:00:00Z host app[123]: a typical log line of moderate length\n');
    forceGc();
    const before = process.memoryUsage().heapUsed;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 1_000_000; i++) s.append(b, 0, b.length - 1, i, 0);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    forceGc();
    const grown = process.memoryUsage().heapUsed - before;
    expect(s.size).to.equal(1_000_000);
    expect(ms).to.be.below(5000);
    // bytes live off-heap (SharedArrayBuffer chunks, typed arrays): the JS heap barely grows
    expect(grown).to.be.below(16 * 1024 * 1024);
  });
});
