import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import {
  HEADER_SIZE, Journal, JournalOptions, JournalStall, SegmentIndex, crc32, crc32Table, decodeAnyHeader, decodeHeader, scanSegment,
} from '../../src/journal';
import { encodeHeader } from '../../src/journal/format';
import { LogStore } from '../../src/store/log-store';
import { delay, fillFilesystem, nextTurn, rmDir, smallFilesystem, tmpDir, waitFor } from '@logcaster/testkit';
import { Entry, segFiles, writeV1Segment } from './helpers';

function opts(dir: string, over: Partial<JournalOptions> = {}): JournalOptions {
  return { dir, rotateSize: 1 << 20, maxFiles: 10, fsync: 'never', ...over };
}

function readAll(j: Journal, max = Infinity): { entries: Entry[]; loaded: number; tornSkipped: number } {
  const entries: Entry[] = [];
  const r = j.replay(max, (timeMs, peer, line, seq) => {
    entries.push({ timeMs, peer, line: line.toString('utf8'), seq });
  });
  return { entries, ...r };
}

function lineOf(i: number): string {
  return `line ${i} ` + 'x'.repeat(i % 37);
}

/** One record per line: the journal cuts a record per event-loop turn. */
async function appendEach(j: Journal, from: number, to: number, peer = (i: number) => `peer-${i % 3}`, time = (i: number) => i): Promise<void> {
  for (let i = from; i <= to; i++) {
    j.append(time(i), peer(i), Buffer.from(lineOf(i)));
    await nextTurn();
  }
}

/** Offsets of the records of a segment image. */
function recordStarts(img: Buffer): number[] {
  const starts: number[] = [];
  scanSegment(img, HEADER_SIZE, (pos) => starts.push(pos));
  return starts;
}

describe('journal: CRC-32', () => {
  it('matches the standard check value and zlib, also continued over pieces', () => {
    expect(crc32Table(Buffer.from('123456789'))).to.equal(0xcbf43926);
    expect(crc32(Buffer.from('123456789'))).to.equal(0xcbf43926);
    const nat = (zlib as unknown as { crc32?: (b: Uint8Array) => number }).crc32;
    for (let n = 0; n < 300; n += 7) {
      const b = Buffer.alloc(n + 5);
      for (let i = 0; i < b.length; i++) b[i] = (i * 131 + n) & 0xff;
      expect(crc32(b, 3, 3 + n)).to.equal(crc32Table(b.subarray(3, 3 + n)));
      expect(crc32(b, 3 + (n >> 1), 3 + n, crc32(b, 3, 3 + (n >> 1)))).to.equal(crc32Table(b.subarray(3, 3 + n)));
      expect(crc32Table(b, 2, b.length, crc32Table(b, 0, 2))).to.equal(crc32Table(b));
      if (nat) expect(crc32Table(b)).to.equal(nat(b) >>> 0);
    }
  });
});

describe('journal: round trip and format', function () {
  let dir: string;
  beforeEach(() => { dir = tmpDir('rt'); });
  afterEach(() => rmDir(dir));

  it('writes one block record per turn and replays every line with time, peer and sequence', async () => {
    const j = Journal.open(opts(dir));
    const sent: Entry[] = [];
    for (let turn = 0; turn < 10; turn++) {
      for (let k = 1; k <= 100; k++) {
        const i = turn * 100 + k;
        const e = { timeMs: 1700000000000 + turn + 0.25, peer: `10.0.0.${turn % 3}:${4000 + (k % 2)}`, line: lineOf(i), seq: 0 };
        e.seq = j.append(e.timeMs, e.peer, Buffer.from(e.line));
        sent.push(e);
      }
      await nextTurn();
    }
    expect(sent.map((e) => e.seq)).to.deep.equal(sent.map((_, k) => k + 1));
    await j.close();
    expect(j.stats.persistedLines).to.equal(1000);

    const files = segFiles(dir);
    expect(files).to.deep.equal(['logcaster-000000000001.log']);
    const img = fs.readFileSync(path.join(dir, files[0]));
    expect(decodeHeader(img)).to.deep.equal({ version: 2, segmentNo: 1, firstSeq: 1 });
    const sc = scanSegment(img);
    expect([sc.records, sc.lines, sc.corruptRegions]).to.deep.equal([10, 1000, 0]);
    expect(j.stats.persistedBytes).to.equal(img.length - HEADER_SIZE);
    // The first record, byte by byte: marker, first seq, 100 lines, runs by peer, the data.
    const r0 = HEADER_SIZE;
    expect(img.subarray(r0, r0 + 4)).to.deep.equal(Buffer.from([0x1e, 0x4c, 0x43, 0x42]));
    expect(img.readUInt32LE(r0 + 12)).to.equal(1);
    expect(img.readUInt32LE(r0 + 20)).to.equal(100);
    expect(img.readUInt32LE(r0 + 24), 'one run per change of peer').to.equal(100);
    const dataLen = img.readUInt32LE(r0 + 32);
    const bodyEnd = r0 + 12 + img.readUInt32LE(r0 + 8);
    expect(img.toString('utf8', bodyEnd - dataLen, bodyEnd)).to.equal(sent.slice(0, 100).map((e) => `${e.line}\n`).join(''));

    const j2 = Journal.open(opts(dir));
    const r = readAll(j2);
    expect(r.loaded).to.equal(1000);
    expect(r.tornSkipped).to.equal(0);
    expect(r.entries).to.deep.equal(sent);
    // sequence numbers continue across restarts
    expect(j2.append(1, 'p', Buffer.from('after'))).to.equal(1001);
    await j2.close();
    const j3 = Journal.open(opts(dir));
    expect(readAll(j3, 2).entries.map((e) => e.line)).to.deep.equal([lineOf(1000), 'after']);
    await j3.close();
  });

  it('handles empty lines, empty peers, bytes with newlines, binary bytes and multi-byte peers', async () => {
    const j = Journal.open(opts(dir));
    const bin = Buffer.from([0, 1, 0x1e, 0x4c, 0x43, 0x42, 255, 10, 13, 10]);
    j.append(1, '', Buffer.alloc(0));
    j.append(2, 'hôte:1', bin);
    j.append(-3.5, 'p', new Uint8Array([65]));
    await j.close();
    const j2 = Journal.open(opts(dir));
    const got: Array<[number, string, Buffer]> = [];
    j2.replay(10, (t, p, l) => got.push([t, p, Buffer.from(l)]));
    expect(got).to.deep.equal([[1, '', Buffer.alloc(0)], [2, 'hôte:1', bin], [-3.5, 'p', Buffer.from('A')]]);
    await j2.close();
  });

  it('keeps a line of 70 MiB whole (version 1 cut lines at 64 MiB)', async function () {
    this.timeout(30000);
    const big = Buffer.alloc(70 * 1024 * 1024, 'z');
    big.write('start', 0);
    big.write('end', big.length - 3);
    const j = Journal.open(opts(dir, { rotateSize: 16 << 20 }));
    j.append(1, 'p', Buffer.from('before'));
    j.append(2, 'p', big);
    j.append(3, 'p', Buffer.from('after'));
    await j.close();
    const j2 = Journal.open(opts(dir, { rotateSize: 16 << 20 }));
    const lens: number[] = [];
    let same = false;
    j2.replay(10, (_t, _p, l) => {
      lens.push(l.length);
      if (l.length === big.length) same = l.equals(big);
    });
    expect(lens).to.deep.equal([6, big.length, 5]);
    expect(same).to.equal(true);
    await j2.close();
  });

  it('replays records appended earlier in the same session, and rejects use after close', async () => {
    const j = Journal.open(opts(dir));
    j.append(1, 'a', Buffer.from('one'));
    expect(readAll(j).entries.map((e) => e.line)).to.deep.equal(['one']);
    await j.close();
    expect(() => j.append(1, 'a', Buffer.from('x'))).to.throw(/closed/);
    await j.close(); // idempotent
  });

  it('validates options', () => {
    expect(() => Journal.open(opts(dir, { fsync: 'sometimes' as never }))).to.throw(TypeError);
    expect(() => Journal.open(opts(dir, { maxFiles: -1 }))).to.throw(RangeError);
    expect(() => Journal.open(opts(dir, { rotateSize: 10 }))).to.throw(RangeError);
  });
});

describe('journal: rotation, retention, indexes, replay across segments', function () {
  this.timeout(20000);
  let dir: string;
  beforeEach(() => { dir = tmpDir('rot'); });
  afterEach(() => rmDir(dir));

  it('rotates at rotateSize and keeps at most maxFiles (oldest deleted)', async () => {
    const j = Journal.open(opts(dir, { rotateSize: 1024, maxFiles: 3 }));
    await appendEach(j, 1, 200, () => '192.168.1.1:5000');
    await j.close();
    const files = segFiles(dir);
    expect(files.length).to.equal(3);
    expect(j.stats.files).to.equal(3);
    const numbers = files.map((f) => Number(/(\d{12})/.exec(f)![1]));
    expect(numbers[2] - numbers[0], 'the newest three, in order').to.equal(2);
    let kept = 0;
    for (const f of files) {
      const img = fs.readFileSync(path.join(dir, f));
      expect(img.length).to.be.at.most(1024);
      const sc = scanSegment(img);
      expect(sc.corruptRegions).to.equal(0);
      expect(decodeHeader(img)!.firstSeq).to.equal(sc.firstSeq);
      kept += sc.lines;
    }
    const j2 = Journal.open(opts(dir, { rotateSize: 1024, maxFiles: 3 }));
    const r = readAll(j2);
    expect(r.loaded).to.equal(kept);
    expect(r.entries.map((e) => e.seq)).to.deep.equal(Array.from({ length: kept }, (_, k) => 200 - kept + 1 + k));
    expect(j2.detailedStats.retiredLines).to.equal(0);
    await j2.close();
  });

  it('replays the newest N entries across segments, oldest first', async () => {
    const j = Journal.open(opts(dir, { rotateSize: 512, maxFiles: 1000 }));
    await appendEach(j, 1, 500, (i) => `peer${i % 4}`, (i) => i * 10);
    await j.close();
    expect(segFiles(dir).length).to.be.greaterThan(20);
    const j2 = Journal.open(opts(dir, { rotateSize: 512, maxFiles: 1000 }));
    for (const n of [0, 1, 3, 137, 499, 500, 501, 100000]) {
      const r = readAll(j2, n);
      const want = Math.min(n, 500);
      expect(r.loaded, `n=${n}`).to.equal(want);
      expect(r.entries.map((e) => e.seq)).to.deep.equal(Array.from({ length: want }, (_, k) => 500 - want + 1 + k));
      expect(r.entries.map((e) => e.line)).to.deep.equal(r.entries.map((e) => lineOf(e.seq)));
      expect(r.entries.map((e) => e.timeMs)).to.deep.equal(r.entries.map((e) => e.seq * 10));
      expect(r.entries.map((e) => e.peer)).to.deep.equal(r.entries.map((e) => `peer${e.seq % 4}`));
    }
    await j2.close();
  });

  it('writes an index next to each finished segment and reloads it; a damaged one is rebuilt', async () => {
    const j = Journal.open(opts(dir, { rotateSize: 4096, maxFiles: 100 }));
    await appendEach(j, 1, 300);
    await j.close();
    const segs = segFiles(dir);
    const idx = fs.readdirSync(dir).filter((n) => n.endsWith('.idx')).sort();
    expect(idx).to.deep.equal(segs.slice(0, -1).map((s) => s.replace('.log', '.idx')));
    const j2 = Journal.open(opts(dir, { rotateSize: 4096, maxFiles: 100 }));
    expect(j2.retainedLines).to.equal(300);
    expect(readAll(j2).entries.map((e) => e.seq)).to.deep.equal(Array.from({ length: 300 }, (_, k) => k + 1));
    await j2.close();
    // an index that does not describe its segment any more is ignored and rewritten
    const victim = path.join(dir, idx[1]);
    const before = fs.readFileSync(victim);
    fs.writeFileSync(victim, Buffer.from('not an index'));
    const j3 = Journal.open(opts(dir, { rotateSize: 4096, maxFiles: 100 }));
    expect(j3.retainedLines).to.equal(300);
    await j3.close();
    expect(fs.readFileSync(victim)).to.deep.equal(before);
  });

  it('applies a smaller maxFiles at open', async () => {
    const j = Journal.open(opts(dir, { rotateSize: 256, maxFiles: 100 }));
    await appendEach(j, 1, 100);
    await j.close();
    const before = segFiles(dir);
    const j2 = Journal.open(opts(dir, { rotateSize: 256, maxFiles: 2 }));
    expect(j2.stats.files).to.equal(2);
    await j2.close();
    expect(segFiles(dir)).to.deep.equal(before.slice(-2));
  });

  it('retention by size keeps the newest segments within retentionBytes', async () => {
    const j = Journal.open(opts(dir, { rotateSize: 2048, maxFiles: 0, retentionBytes: 8192 }));
    await appendEach(j, 1, 400);
    await j.close();
    const sizes = segFiles(dir).map((f) => fs.statSync(path.join(dir, f)).size);
    const total = sizes.reduce((a, b) => a + b, 0);
    expect(total).to.be.at.most(8192);
    expect(total + 2048, 'no more was deleted than needed').to.be.greaterThan(8192);
    expect(j.detailedStats.retiredLines).to.be.greaterThan(0);
    const j2 = Journal.open(opts(dir, { rotateSize: 2048, maxFiles: 0, retentionBytes: 8192 }));
    const r = readAll(j2);
    expect(r.entries[r.entries.length - 1].seq).to.equal(400);
    expect(r.loaded + j.detailedStats.retiredLines).to.equal(400);
    await j2.close();
  });

  it('retention by age deletes segments whose newest line is older than retentionMs', async () => {
    const now = Date.now();
    const hour = 3600_000;
    const j = Journal.open(opts(dir, { rotateSize: 1024, maxFiles: 0 }));
    // 100 lines 3 days old, then 100 from the last minute
    await appendEach(j, 1, 100, undefined, () => now - 72 * hour);
    await appendEach(j, 101, 200, undefined, () => now - 1000);
    await j.close();
    const j2 = Journal.open(opts(dir, { rotateSize: 1024, maxFiles: 0, retentionMs: 24 * hour }));
    const r = readAll(j2);
    expect(r.entries.every((e) => e.timeMs > now - 24 * hour || e.seq > 90), 'old segments gone').to.equal(true);
    expect(r.entries.filter((e) => e.timeMs > now - 24 * hour).length, 'recent lines kept').to.equal(100);
    expect(r.entries.length).to.be.below(115); // at most the segment shared by both ages
    await j2.close();
  });
});

describe('journal: damage recovery', function () {
  this.timeout(30000);
  let dir: string;
  beforeEach(() => { dir = tmpDir('dmg'); });
  afterEach(() => rmDir(dir));

  async function writeN(d: string, n: number, o: Partial<JournalOptions> = {}): Promise<void> {
    const j = Journal.open(opts(d, o));
    await appendEach(j, 1, n);
    await j.close();
  }

  it('a stray file named like a segment (logcaster-999999999999.log, or one inside the numbering) is left alone and every start works', async () => {
    const stray = path.join(dir, 'logcaster-999999999999.log');
    const middle = path.join(dir, 'logcaster-000000000002.log');
    fs.writeFileSync(stray, 'not a journal segment\n');
    fs.writeFileSync(middle, 'copied here by hand\n');
    for (let run = 0; run < 3; run++) {
      const j = Journal.open(opts(dir, { rotateSize: 300, maxFiles: 100 }));
      const errors: Error[] = [];
      j.onError((e) => errors.push(e));
      expect(j.stats.tornRecordsSkipped, 'the stray files are counted').to.equal(2);
      await appendEach(j, run * 10 + 1, run * 10 + 10);
      await j.close();
      expect(errors).to.deep.equal([]);
    }
    expect(fs.readFileSync(stray, 'utf8')).to.equal('not a journal segment\n');
    expect(fs.readFileSync(middle, 'utf8')).to.equal('copied here by hand\n');
    const segs = segFiles(dir).filter((n) => !n.endsWith('999999999999.log'));
    expect(segs.length, 'rotated past the stray numbers').to.be.above(3);
    const j = Journal.open(opts(dir, { rotateSize: 300, maxFiles: 100 }));
    const r = readAll(j);
    expect(r.entries.map((e) => e.line)).to.deep.equal(Array.from({ length: 30 }, (_, i) => lineOf(i + 1)));
    expect(r.entries.map((e) => e.seq)).to.deep.equal(Array.from({ length: 30 }, (_, i) => i + 1));
    await j.close();
  });

  it('truncation at every byte offset inside the last records: complete ones kept, the tail repaired, appends continue', async function () {
    const N = 12;
    await writeN(dir, N);
    const file = path.join(dir, 'logcaster-000000000001.log');
    const orig = fs.readFileSync(file);
    const starts = recordStarts(orig);
    expect(starts.length).to.equal(N);
    starts.push(orig.length);
    let cases = 0;
    let opened = 0;
    for (let rec = N - 1; rec >= N - 4; rec--) {
      for (let cut = starts[rec]; cut < starts[rec + 1]; cut++) {
        // every cut: the scan keeps exactly the complete records and flags the torn tail
        const sc = scanSegment(orig.subarray(0, cut));
        expect([sc.records, sc.goodEnd, sc.tornTail], `cut ${cut}`).to.deep.equal([rec, starts[rec], cut > starts[rec]]);
        cases++;
        if (cut % 16 !== 0 && cut !== starts[rec] + 1) continue;
        // a sample through the journal: repaired at open, appends continue, reopens clean
        const d = tmpDir('cut');
        try {
          fs.writeFileSync(path.join(d, 'logcaster-000000000001.log'), orig.subarray(0, cut));
          const j = Journal.open(opts(d));
          expect(fs.statSync(path.join(d, 'logcaster-000000000001.log')).size, `cut ${cut}`).to.equal(starts[rec]);
          const r = readAll(j);
          expect(r.loaded, `cut ${cut}`).to.equal(rec);
          expect(r.tornSkipped, `cut ${cut}`).to.equal(cut > starts[rec] ? 1 : 0);
          expect(j.stats.tornRecordsSkipped).to.equal(cut > starts[rec] ? 1 : 0);
          expect(r.entries.map((e) => e.line)).to.deep.equal(Array.from({ length: rec }, (_, k) => lineOf(k + 1)));
          expect(j.append(99, 'new', Buffer.from('appended after repair'))).to.equal(rec + 1);
          await j.close();
          const j2 = Journal.open(opts(d));
          const r2 = readAll(j2);
          expect(r2.tornSkipped).to.equal(0);
          expect(r2.loaded).to.equal(rec + 1);
          expect(r2.entries[rec]).to.deep.equal({ timeMs: 99, peer: 'new', line: 'appended after repair', seq: rec + 1 });
          await j2.close();
          opened++;
        } finally {
          rmDir(d);
        }
      }
    }
    expect(cases).to.be.greaterThan(200);
    expect(opened).to.be.greaterThan(12);
  });

  it('a bad CRC in the middle is skipped and later records still replay', async () => {
    await writeN(dir, 20);
    const file = path.join(dir, 'logcaster-000000000001.log');
    const img = fs.readFileSync(file);
    const starts = recordStarts(img);
    img[starts[8] - 3] ^= 0x40; // a byte of record 8's line
    img.writeUInt32LE(0xffffff, starts[12] + 8); // record 13: absurd length field
    fs.writeFileSync(file, img);
    const j = Journal.open(opts(dir));
    expect(fs.statSync(file).size).to.equal(img.length); // middle damage is not truncated
    const r = readAll(j);
    expect(r.loaded).to.equal(18);
    expect(r.tornSkipped).to.equal(2);
    expect(r.entries.map((e) => e.seq)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15, 16, 17, 18, 19, 20]);
    expect(j.stats.tornRecordsSkipped).to.equal(2);
    readAll(j); // counted once
    expect(j.stats.tornRecordsSkipped).to.equal(2);
    expect(j.append(0, 'p', Buffer.from('z'))).to.equal(21);
    await j.close();
  });

  it('corruption in an older segment and a garbage tail in the newest', async () => {
    await writeN(dir, 60, { rotateSize: 600, maxFiles: 100 });
    const files = segFiles(dir);
    expect(files.length).to.be.greaterThan(3);
    for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.idx'))) fs.unlinkSync(path.join(dir, f));
    const f1 = path.join(dir, files[1]);
    const img = fs.readFileSync(f1);
    img[HEADER_SIZE + 4] ^= 1; // CRC of the first record of segment 2
    fs.writeFileSync(f1, img);
    const last = path.join(dir, files[files.length - 1]);
    const size = fs.statSync(last).size;
    fs.appendFileSync(last, Buffer.from('\x1eLCB garbage that is not a record'));
    const j = Journal.open(opts(dir, { rotateSize: 600, maxFiles: 100 }));
    expect(fs.statSync(last).size).to.equal(size);
    const r = readAll(j);
    expect(r.loaded).to.equal(59);
    expect(r.tornSkipped).to.equal(2);
    const seqs = r.entries.map((e) => e.seq);
    expect(new Set(seqs).size).to.equal(59);
    expect(seqs).to.deep.equal([...seqs].sort((a, b) => a - b));
    expect(j.append(0, 'p', Buffer.from('z'))).to.equal(61);
    await j.close();
  });

  it('a newest segment cut inside its header is rewritten; sequence continues from the previous one', async () => {
    await writeN(dir, 30, { rotateSize: 400, maxFiles: 100 });
    const files = segFiles(dir);
    const lastNo = files.length;
    const next = path.join(dir, `logcaster-${String(lastNo + 1).padStart(12, '0')}.log`);
    fs.writeFileSync(next, Buffer.from('LCJOUR'));
    const j = Journal.open(opts(dir, { rotateSize: 400, maxFiles: 100 }));
    expect(j.append(5, 'p', Buffer.from('after'))).to.equal(31);
    await j.close();
    const j2 = Journal.open(opts(dir, { rotateSize: 400, maxFiles: 100 }));
    const r = readAll(j2);
    expect(r.loaded).to.equal(31);
    expect(r.entries[30].line).to.equal('after');
    expect(decodeHeader(fs.readFileSync(next))!.firstSeq).to.equal(31);
    await j2.close();
  });

  it('a foreign file with a segment name is left alone and skipped', async () => {
    await writeN(dir, 5);
    const bogus = path.join(dir, 'logcaster-000000000002.log');
    fs.writeFileSync(bogus, 'this is not a journal segment at all, really not one');
    const j = Journal.open(opts(dir));
    expect(j.append(1, 'p', Buffer.from('six'))).to.equal(6);
    await j.close();
    expect(fs.readFileSync(bogus, 'utf8')).to.match(/^this is not/);
    const j2 = Journal.open(opts(dir));
    const r = readAll(j2);
    expect(r.entries.map((e) => e.seq)).to.deep.equal([1, 2, 3, 4, 5, 6]);
    expect(r.tornSkipped).to.equal(1);
    await j2.close();
  });

  it('reads records past 2 GiB of a segment (positional reads; 64-bit offsets in the index)', async function () {
    await writeN(dir, 10);
    const img = fs.readFileSync(path.join(dir, 'logcaster-000000000001.log'));
    const starts = recordStarts(img);
    const d = tmpDir('big');
    try {
      // segment 1: header, a 2.1 GiB sparse hole, then the records; its index says where
      const hole = Math.floor(2.1 * 1024 * 1024 * 1024);
      const big = path.join(d, 'logcaster-000000000001.log');
      const fd = fs.openSync(big, 'w');
      fs.writeSync(fd, img, 0, HEADER_SIZE, 0);
      fs.writeSync(fd, img, HEADER_SIZE, img.length - HEADER_SIZE, HEADER_SIZE + hole);
      fs.closeSync(fd);
      const idx = new SegmentIndex();
      starts.forEach((pos, k) => idx.add(pos + hole, (starts[k + 1] ?? img.length) - pos, k + 1, 1, k + 1, k + 1));
      idx.close();
      fs.writeFileSync(path.join(d, 'logcaster-000000000001.idx'), idx.encode(1, img.length + hole));
      fs.writeFileSync(path.join(d, 'logcaster-000000000002.log'), encodeHeader(2, 11));
      const j = Journal.open(opts(d));
      const r = readAll(j);
      expect(r.entries.map((e) => e.seq)).to.deep.equal(Array.from({ length: 10 }, (_, k) => k + 1));
      expect(r.entries.map((e) => e.line)).to.deep.equal(Array.from({ length: 10 }, (_, k) => lineOf(k + 1)));
      expect(j.append(0, 'p', Buffer.from('eleven'))).to.equal(11);
      await j.close();
    } finally {
      rmDir(d);
    }
  });
});

describe('journal: format versions', function () {
  let dir: string;
  beforeEach(() => { dir = tmpDir('ver'); });
  afterEach(() => rmDir(dir));

  it('migrates a version-1 journal (one record per line) in place, damage skipped and counted', async () => {
    const lines = Array.from({ length: 50 }, (_, k) => ({ seq: k + 1, time: 1000 + Math.floor(k / 10), peer: `10.0.0.${k % 2}:9`, line: Buffer.from(k === 7 ? 'with\nnewline' : lineOf(k + 1)) }));
    writeV1Segment(path.join(dir, 'logcaster-000000000001.log'), 1, 1, lines.slice(0, 30), [12]);
    writeV1Segment(path.join(dir, 'logcaster-000000000002.log'), 2, 31, lines.slice(30));
    const j = Journal.open(opts(dir));
    for (const f of segFiles(dir)) expect(decodeHeader(fs.readFileSync(path.join(dir, f)))!.version).to.equal(2);
    const r = readAll(j);
    const want = lines.filter((l) => l.seq !== 13);
    expect(r.entries).to.deep.equal(want.map((l) => ({ timeMs: l.time, peer: l.peer, line: l.line.toString(), seq: l.seq })));
    expect(r.tornSkipped).to.equal(1);
    expect(j.append(5, 'p', Buffer.from('after migration'))).to.equal(51);
    await j.close();
    const j2 = Journal.open(opts(dir));
    expect(readAll(j2).entries.length).to.equal(50);
    await j2.close();
  });

  it('refuses a journal of a newer format version with a clear message, leaving it untouched', () => {
    const file = path.join(dir, 'logcaster-000000000001.log');
    writeV1Segment(file, 1, 1, [{ seq: 1, time: 1, peer: 'p', line: Buffer.from('x') }]);
    const img = fs.readFileSync(file);
    img.writeUInt16LE(3, 8);
    img.writeUInt32LE(crc32(img, 0, 36), 36);
    fs.writeFileSync(file, img);
    expect(decodeAnyHeader(img)!.version).to.equal(3);
    expect(() => Journal.open(opts(dir))).to.throw(/format version 3 is newer than this LogCaster reads .*refusing/);
    expect(fs.readFileSync(file)).to.deep.equal(img);
  });
});

describe('journal: fsync policies and durability acknowledgements', function () {
  this.timeout(20000);
  let dir: string;
  beforeEach(() => { dir = tmpDir('sync'); });
  afterEach(() => rmDir(dir));

  it("'always': acks only once durable, in order, never from inside append, many records per fsync", async function () {
    const j = Journal.open(opts(dir, { fsync: 'always', rotateSize: 4 << 20, maxFiles: 50 }));
    const acks: number[] = [];
    let inAppend = false;
    j.onDurable((seq) => {
      expect(inAppend, 'ack from inside append').to.equal(false);
      expect(seq, 'ack beyond what was written').to.be.at.most(j.detailedStats.writtenSeq);
      acks.push(seq);
    });
    const total = 100000;
    let sent = 0;
    const t0 = Date.now();
    while (sent < total) {
      inAppend = true;
      for (let k = 0; k < 1000; k++) j.append(Date.now(), '127.0.0.1:1234', Buffer.from(`durable line ${++sent}`));
      inAppend = false;
      await nextTurn();
    }
    while (j.durableSeq < total && Date.now() - t0 < 15000) await delay(2);
    expect(j.durableSeq).to.equal(total);
    const fsyncs = j.stats.fsyncs;
    await j.close();
    for (let i = 1; i < acks.length; i++) expect(acks[i]).to.be.greaterThan(acks[i - 1]);
    console.log(`      group commit: ${total} lines in ${total / 1000} records, ${fsyncs} fsyncs, ${acks.length} acks, ${Date.now() - t0} ms`);
    expect(fsyncs).to.be.greaterThan(0);
    expect(fsyncs, 'group commit: fewer fsyncs than records').to.be.below(total / 1000);
  });

  it("'always': a single record is acknowledged after one fsync, from a later turn", async () => {
    const j = Journal.open(opts(dir, { fsync: 'always' }));
    const acks: number[] = [];
    j.onDurable((s) => acks.push(s));
    const seq = j.append(1, 'p', Buffer.from('one'));
    expect(acks).to.deep.equal([]);
    j.flush();
    expect(acks).to.deep.equal([]);
    const t0 = Date.now();
    while (acks.length === 0 && Date.now() - t0 < 5000) await delay(1);
    expect(acks).to.deep.equal([seq]);
    expect(j.stats.fsyncs).to.be.at.least(1);
    await j.close();
  });

  it("'never': acks when written, no fsync until close", async () => {
    const j = Journal.open(opts(dir, { fsync: 'never' }));
    const acks: number[] = [];
    j.onDurable((s) => acks.push(s));
    for (let i = 0; i < 10; i++) j.append(i, 'p', Buffer.from('x'));
    expect(acks).to.deep.equal([]);
    const t0 = Date.now();
    while (acks.length === 0 && Date.now() - t0 < 5000) await delay(1);
    expect(acks).to.deep.equal([10]);
    expect(j.stats.persistedLines).to.equal(10);
    expect(fs.statSync(path.join(dir, segFiles(dir)[0])).size).to.be.greaterThan(HEADER_SIZE);
    expect(j.stats.fsyncs).to.equal(0);
    await j.close();
    expect(j.stats.fsyncs).to.equal(1);
  });

  it("'interval': acks when written and fsyncs periodically, not when idle", async () => {
    const j = Journal.open(opts(dir, { fsync: 'interval', fsyncIntervalMs: 30 }));
    const acks: number[] = [];
    j.onDurable((s) => acks.push(s));
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 100; i++) j.append(i, 'p', Buffer.from('y'));
      await delay(60);
    }
    expect(acks[acks.length - 1]).to.equal(500);
    await delay(250); // the last interval's fsync round runs and reports
    expect(j.stats.fsyncs).to.be.within(1, 10); // periodic, not one per write (a round can take long on a busy disk)
    const before = j.stats.fsyncs;
    await delay(250); // idle: nothing new, no fsync
    expect(j.stats.fsyncs).to.equal(before);
    await j.close();
  });

  it("'interval': finished segments are fsynced and closed at rotation, not held until the timer", async () => {
    const fdCount = (): number => fs.readdirSync('/proc/self/fd').length;
    const j = Journal.open(opts(dir, { fsync: 'interval', fsyncIntervalMs: 60000, rotateSize: 300, maxFiles: 1000 }));
    await delay(20);
    const fds0 = fdCount();
    await appendEach(j, 1, 200);
    // every rotation fsyncs the finished segment (and the directory): a few ms each
    await waitFor(() => j.stats.persistedLines === 200, 15000, 'all lines written');
    await waitFor(() => j.stats.fsyncs > 50, 15000, 'the finished segments synced');
    expect(segFiles(dir).length).to.be.greaterThan(50);
    // closed once their fsync round completes (one round may cover many segments: records
    // wait for a busy writer), long before the 60 s timer
    await waitFor(() => fdCount() - fds0 <= 3, 15000, 'the finished segments closed');
    await j.close();
  });

  it('close() waits for in-flight writes and fsyncs and leaves everything durable', async () => {
    const j = Journal.open(opts(dir, { fsync: 'always', rotateSize: 300, maxFiles: 100 }));
    const acks: number[] = [];
    j.onDurable((s) => acks.push(s));
    for (let i = 1; i <= 50; i++) j.append(i, 'p', Buffer.from(lineOf(i)));
    j.flush();
    await j.close();
    expect(acks[acks.length - 1]).to.equal(50);
    const j2 = Journal.open(opts(dir, { rotateSize: 300, maxFiles: 100 }));
    expect(readAll(j2).loaded).to.equal(50);
    await j2.close();
  });
});

describe('journal: memory while it writes', function () {
  this.timeout(60000);
  let dir: string;
  beforeEach(() => { dir = tmpDir('mem'); });
  afterEach(() => rmDir(dir));

  it('releases the store chunks it has written while the main thread never yields (line rate)', async () => {
    // At line rate ingestion keeps the main thread busy, and the writer's 'written'
    // messages arrive late; the chunks they release must not pile up meanwhile (they did:
    // over 1 GB resident). Here the thread does not yield at all while 256 MiB go through
    // a 64 KiB-chunk store: what it allocates must stay near the writer's backlog (32 MiB).
    const j = Journal.open(opts(dir, { fsync: 'interval', rotateSize: 64 << 20, maxFiles: 100 }));
    try {
      const store = new LogStore(1000, 1024, 64 * 1024, 1);
      store.setRecorder((r) => j.write(r, store.peers.names));
      const line = Buffer.alloc(1000, 'x');
      const n = Math.ceil((256 << 20) / (line.length + 1));
      for (let i = 0; i < n; i++) store.append(line, 0, line.length, i, 0);
      store.cut();
      expect(store.allocatedBytes, 'bytes of store chunks allocated').to.be.at.most(48 << 20);
      j.flush();
      await j.close();
      expect(j.stats.persistedLines).to.equal(n);
    } finally {
      await j.close();
    }
  });
});

const small = smallFilesystem(256 * 1024);
describe(`journal: a full disk${typeof small === 'string' ? ` — skipped: ${small}` : ''}`, function () {
  this.timeout(30000);
  if (typeof small === 'string') return;
  const disk = small;
  after(() => disk.close());
  let dir = '';
  beforeEach(() => {
    dir = path.join(disk.dir, `journal-${Date.now()}`);
  });
  afterEach(() => {
    fs.rmSync(path.join(disk.dir, 'filler'), { force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A journal with one line on disk, then a disk with `leave` bytes free. */
  async function onFullDisk(over: Partial<JournalOptions> = {}): Promise<{ j: Journal; acks: number[]; stalls: (JournalStall | null)[]; errors: Error[]; filler: string }> {
    const j = Journal.open(opts(dir, { fsync: 'always', stallRetryMs: 50, ...over }));
    const acks: number[] = [];
    const stalls: (JournalStall | null)[] = [];
    const errors: Error[] = [];
    j.onDurable((s) => acks.push(s));
    j.onStall((s) => stalls.push(s));
    j.onError((e) => errors.push(e));
    j.append(1, 'p', Buffer.from('ok'));
    await waitFor(() => acks.length > 0, 5000, 'the first ack');
    return { j, acks, stalls, errors, filler: fillFilesystem(disk.dir, 8 * 1024) };
  }

  it('ENOSPC stalls, naming the file: nothing acknowledged past it, nothing blocks; written once space returns', async () => {
    const { j, acks, stalls, errors, filler } = await onFullDisk();
    const line = Buffer.alloc(16 * 1024, 'f');
    for (let i = 0; i < 8; i++) j.append(2, 'p', line); // 128 KiB into 8 KiB
    await waitFor(() => stalls.length > 0, 5000, 'the stall');
    const stall = stalls[0]!;
    expect(stall.error.code).to.equal('ENOSPC');
    expect(stall.error.path).to.equal(path.join(dir, 'logcaster-000000000001.log'));
    expect(j.stall).to.equal(stall);
    expect(j.error).to.equal(null);
    expect(errors).to.deep.equal([]);
    // The writer waits for space; the main thread does not wait for the writer.
    for (let i = 0; i < 4; i++) j.append(3, 'p', line);
    j.flush();
    await delay(200);
    expect(acks[acks.length - 1]).to.be.at.most(stall.writtenSeq);
    expect(j.detailedStats.droppedLines).to.equal(0);
    fs.rmSync(filler);
    await waitFor(() => stalls.length === 2, 5000, 'the resume');
    expect(stalls[1]).to.equal(null);
    expect(j.stall).to.equal(null);
    await waitFor(() => acks[acks.length - 1] === 13, 5000, () => `every line acknowledged (last ${acks[acks.length - 1]})`);
    await j.close();
    const j2 = Journal.open(opts(dir));
    const r = readAll(j2);
    expect(r.tornSkipped).to.equal(0);
    expect(r.entries.map((e) => e.seq)).to.deep.equal(Array.from({ length: 13 }, (_, i) => i + 1));
    expect(r.entries.slice(1).every((e) => e.line === line.toString())).to.equal(true);
    await j2.close();
  });

  it('keeps at most stallBufferBytes for the disk: the rest is dropped and counted; numbering stays exact across the gap', async () => {
    const { j, stalls, filler } = await onFullDisk({ fsync: 'never', stallBufferBytes: 40 * 1024 });
    const line = Buffer.alloc(16 * 1024, 'g');
    j.append(2, 'p', line); // 16 KiB into 8 KiB: the stall
    await waitFor(() => stalls.length > 0, 5000, 'the stall');
    for (let i = 0; i < 8; i++) {
      j.append(3, 'p', line);
      await nextTurn();
    }
    // Kept: the line that stalled and one more (32 KiB of 40); the other 7 dropped.
    expect(j.detailedStats.droppedLines).to.equal(7);
    expect(j.detailedStats.bufferedBytes).to.be.at.most(40 * 1024);
    fs.rmSync(filler);
    await waitFor(() => stalls.length === 2, 5000, 'the resume');
    const last = j.append(4, 'p', Buffer.from('last'));
    expect(last).to.equal(11);
    await j.close();
    const j2 = Journal.open(opts(dir));
    expect(j2.lastSeq, 'the numbering continues after the newest line, gap or not').to.equal(11);
    const r = readAll(j2);
    expect(r.tornSkipped).to.equal(0);
    expect(r.entries.map((e) => [e.seq, e.line.slice(0, 4)])).to.deep.equal([[1, 'ok'], [2, 'gggg'], [3, 'gggg'], [11, 'last']]);
    expect(j2.append(5, 'p', Buffer.from('next'))).to.equal(12);
    await j2.close();
  });

  it('close() while the disk stays full rejects with the ENOSPC error and counts the lines lost', async () => {
    const { j, stalls } = await onFullDisk();
    for (let i = 0; i < 4; i++) j.append(2, 'p', Buffer.alloc(16 * 1024, 'h'));
    await waitFor(() => stalls.length > 0, 5000, 'the stall');
    let rejected: NodeJS.ErrnoException | null = null;
    await j.close().catch((e: NodeJS.ErrnoException) => (rejected = e));
    expect(rejected).to.not.equal(null);
    expect(rejected!.code).to.equal('ENOSPC');
    expect(j.detailedStats.droppedLines).to.be.at.least(1);
    // What was acknowledged is back, and nothing torn was left behind.
    fs.rmSync(path.join(disk.dir, 'filler'));
    const j2 = Journal.open(opts(dir));
    const r = readAll(j2);
    expect(r.tornSkipped).to.equal(0);
    expect(r.entries[0].line).to.equal('ok');
    await j2.close();
  });
});
