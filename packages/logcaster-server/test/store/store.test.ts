import { expect } from 'chai';

import { LogStore, snapshotLine } from '../../src/store/log-store';

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

  it('snapshots stay valid while the store moves on', () => {
    const s = new LogStore(5, 16, 64);
    for (let i = 0; i < 5; i++) add(s, `old ${i}`, i);
    const snap = s.snapshot();
    for (let i = 0; i < 20; i++) add(s, `new ${i}`, 100 + i);
    expect(snap.count).to.equal(5);
    expect(Array.from({ length: 5 }, (_, i) => snapshotLine(snap, i).toString())).to.deep.equal(['old 0', 'old 1', 'old 2', 'old 3', 'old 4']);
    expect(Array.from(snap.time)).to.deep.equal([0, 1, 2, 3, 4]);
    const recent = s.snapshot(2);
    expect([snapshotLine(recent, 0).toString(), snapshotLine(recent, 1).toString()]).to.deep.equal(['new 18', 'new 19']);
  });

  it('recycles evicted chunks, except those a snapshot captured', () => {
    const s = new LogStore(8, 16, 64);
    const seen = new Set<ArrayBufferLike>();
    for (let i = 0; i < 400; i++) seen.add(s.line(add(s, `line ${i}`)).buffer);
    // 8 live entries of ~8 bytes span 2 chunks of 64; with 2 spares, a handful in all
    expect(seen.size, 'distinct chunks over 400 lines').to.be.at.most(5);
    const snap = s.snapshot();
    const before = Array.from({ length: snap.count }, (_, i) => snapshotLine(snap, i).toString());
    const capturedBuffers = new Set(snap.chunks.map((c) => c.buffer));
    // The current chunk keeps filling after the snapshot; a captured chunk must never
    // come back as a fresh current chunk once left.
    let prev = s.line(s.nextSeq - 1).buffer;
    for (let i = 0; i < 400; i++) {
      const b = s.line(add(s, `churn ${i}`)).buffer;
      if (b !== prev) expect(capturedBuffers.has(b), 'a captured chunk was reused').to.equal(false);
      prev = b;
    }
    expect(Array.from({ length: snap.count }, (_, i) => snapshotLine(snap, i).toString())).to.deep.equal(before);
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

  it('wraps around the ring correctly in snapshots', () => {
    const s = new LogStore(7, 16, 32);
    for (let i = 0; i < 23; i++) add(s, `e${i}`, i);
    const snap = s.snapshot();
    expect(Array.from({ length: snap.count }, (_, i) => snapshotLine(snap, i).toString())).to.deep.equal(
      Array.from({ length: 7 }, (_, i) => `e${16 + i}`),
    );
  });

  it('clear() empties the store and keeps working', () => {
    const s = new LogStore(4);
    for (let i = 0; i < 6; i++) add(s, `x${i}`);
    expect(s.clear()).to.equal(4);
    expect(s.size).to.equal(0);
    expect(s.snapshot().count).to.equal(0);
    const seq = add(s, 'after');
    expect(s.line(seq).toString()).to.equal('after');
    expect(s.size).to.equal(1);
  });

  it('stores a million lines with no per-line objects and modest heap growth', function () {
    this.timeout(20000);
    const s = new LogStore(1_000_000, 256);
    const b = Buffer.from('2024-01-01T00:00:00Z host app[123]: a typical log line of moderate length\n');
    const gc = (global as { gc?: () => void }).gc;
    gc?.();
    const before = process.memoryUsage().heapUsed;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 1_000_000; i++) s.append(b, 0, b.length - 1, i, 0);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    gc?.();
    const grown = process.memoryUsage().heapUsed - before;
    expect(s.size).to.equal(1_000_000);
    expect(ms).to.be.below(5000);
    // bytes live off-heap (SharedArrayBuffer chunks, typed arrays): the JS heap barely grows
    expect(grown).to.be.below(16 * 1024 * 1024);
  });
});
