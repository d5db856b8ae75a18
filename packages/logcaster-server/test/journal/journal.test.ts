import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
// the real module object (not an import wrapper), so tests can observe the journal's fs calls
import nodeFs = require('fs');
import {
  HEADER_SIZE, Journal, JournalOptions, crc32, crc32Table, decodeHeader, recordSize, scanSegment,
} from '../../src/journal';
import { delay, nextTurn, rmDir, tmpDir } from '@logcaster/testkit';
import { Entry, segFiles } from './helpers';

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

describe('journal: CRC-32', () => {
  it('matches the standard check value and zlib', () => {
    expect(crc32Table(Buffer.from('123456789'))).to.equal(0xcbf43926);
    expect(crc32(Buffer.from('123456789'))).to.equal(0xcbf43926);
    const nat = (zlib as unknown as { crc32?: (b: Uint8Array) => number }).crc32;
    for (let n = 0; n < 300; n += 7) {
      const b = Buffer.alloc(n + 5);
      for (let i = 0; i < b.length; i++) b[i] = (i * 131 + n) & 0xff;
      expect(crc32(b, 3, 3 + n)).to.equal(crc32Table(b.subarray(3, 3 + n)));
      if (nat) expect(crc32Table(b)).to.equal(nat(b) >>> 0);
    }
  });
});

describe('journal: round trip and format', function () {
  let dir: string;
  beforeEach(() => { dir = tmpDir('rt'); });
  afterEach(() => rmDir(dir));

  it('writes a headed segment and replays every record with time, peer, line and sequence', async () => {
    const j = Journal.open(opts(dir));
    const sent: Entry[] = [];
    for (let i = 1; i <= 1000; i++) {
      const e = { timeMs: 1700000000000 + i + 0.25, peer: `10.0.0.${i % 5}:${4000 + (i % 3)}`, line: lineOf(i), seq: 0 };
      e.seq = j.append(e.timeMs, e.peer, Buffer.from(e.line));
      sent.push(e);
    }
    expect(sent.map((e) => e.seq)).to.deep.equal(sent.map((_, k) => k + 1));
    await j.close();
    expect(j.stats.persistedLines).to.equal(1000);

    const files = segFiles(dir);
    expect(files).to.deep.equal(['logcaster-000000000001.log']);
    const img = fs.readFileSync(path.join(dir, files[0]));
    expect(img.subarray(0, 8).toString('latin1')).to.equal('LCJOURNL');
    expect(decodeHeader(img)).to.deep.equal({ version: 1, segmentNo: 1, firstSeq: 1 });
    const expectedSize = HEADER_SIZE + sent.reduce((a, e) => a + recordSize(Buffer.byteLength(e.peer), Buffer.byteLength(e.line)), 0);
    expect(img.length).to.equal(expectedSize);
    expect(j.stats.persistedBytes).to.equal(expectedSize - HEADER_SIZE);

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

  it('handles empty lines, empty peers, binary bytes and multi-byte peers', async () => {
    const j = Journal.open(opts(dir));
    const bin = Buffer.from([0, 1, 0x1e, 0x4c, 0x43, 0x52, 255, 10, 13]);
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
    expect(() => Journal.open(opts(dir, { maxFiles: 0 }))).to.throw(RangeError);
    expect(() => Journal.open(opts(dir, { rotateSize: 10 }))).to.throw(RangeError);
  });
});

describe('journal: rotation, retention, replay across segments', function () {
  let dir: string;
  beforeEach(() => { dir = tmpDir('rot'); });
  afterEach(() => rmDir(dir));

  it('rotates at rotateSize and keeps at most maxFiles (oldest deleted)', async () => {
    const j = Journal.open(opts(dir, { rotateSize: 1024, maxFiles: 3 }));
    const peer = '192.168.1.1:5000';
    const rec = recordSize(peer.length, 60);
    for (let i = 1; i <= 200; i++) {
      j.append(i, peer, Buffer.from(String(i).padStart(60, '.')));
      if (i % 17 === 0) await nextTurn();
    }
    await j.close();
    const files = segFiles(dir);
    const perFile = Math.floor((1024 - HEADER_SIZE) / rec);
    const totalFiles = Math.ceil(200 / perFile);
    expect(files.length).to.equal(3);
    expect(j.stats.files).to.equal(3);
    // the newest three names survive, in order
    expect(files).to.deep.equal([totalFiles - 2, totalFiles - 1, totalFiles].map((n) => `logcaster-${String(n).padStart(12, '0')}.log`));
    for (const f of files) {
      const size = fs.statSync(path.join(dir, f)).size;
      expect(size).to.be.at.most(1024);
      const img = fs.readFileSync(path.join(dir, f));
      const sc = scanSegment(img);
      expect(sc.corruptRegions).to.equal(0);
      if (f !== files[2]) expect(sc.records).to.equal(perFile); // full segments
      expect(decodeHeader(img)!.firstSeq).to.equal(sc.firstSeq);
    }
    const j2 = Journal.open(opts(dir, { rotateSize: 1024, maxFiles: 3 }));
    const r = readAll(j2);
    const expectN = 200 - (totalFiles - 3) * perFile;
    expect(r.loaded).to.equal(expectN);
    expect(r.entries.map((e) => e.seq)).to.deep.equal(Array.from({ length: expectN }, (_, k) => 200 - expectN + 1 + k));
    await j2.close();
  });

  it('replays the newest N entries across segments, oldest first', async () => {
    const j = Journal.open(opts(dir, { rotateSize: 512, maxFiles: 1000 }));
    for (let i = 1; i <= 500; i++) j.append(i * 10, `peer${i % 4}`, Buffer.from(lineOf(i)));
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
    }
    await j2.close();
  });

  it('applies a smaller maxFiles at open', async () => {
    const j = Journal.open(opts(dir, { rotateSize: 256, maxFiles: 100 }));
    for (let i = 1; i <= 100; i++) j.append(i, 'p', Buffer.from(lineOf(i)));
    await j.close();
    const before = segFiles(dir);
    const j2 = Journal.open(opts(dir, { rotateSize: 256, maxFiles: 2 }));
    expect(segFiles(dir)).to.deep.equal(before.slice(-2));
    expect(j2.stats.files).to.equal(2);
    await j2.close();
  });
});

describe('journal: damage recovery', function () {
  let dir: string;
  beforeEach(() => { dir = tmpDir('dmg'); });
  afterEach(() => rmDir(dir));

  async function writeN(d: string, n: number, o: Partial<JournalOptions> = {}): Promise<void> {
    const j = Journal.open(opts(d, o));
    for (let i = 1; i <= n; i++) j.append(i, `peer-${i % 3}`, Buffer.from(lineOf(i)));
    await j.close();
  }

  it('truncation at every byte offset inside the last records: replays complete ones, appends continue', async function () {
    this.timeout(30000);
    const N = 12;
    await writeN(dir, N);
    const file = path.join(dir, 'logcaster-000000000001.log');
    const orig = fs.readFileSync(file);
    const starts: number[] = [];
    scanSegment(orig, HEADER_SIZE, (pos) => starts.push(pos));
    expect(starts.length).to.equal(N);
    starts.push(orig.length);
    let cases = 0;
    for (let rec = N - 1; rec >= N - 4; rec--) {
      for (let cut = starts[rec]; cut < starts[rec + 1]; cut++) {
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
          cases++;
        } finally {
          rmDir(d);
        }
      }
    }
    expect(cases).to.be.greaterThan(100);
  });

  it('a bad CRC in the middle is skipped and later records still replay', async () => {
    await writeN(dir, 20);
    const file = path.join(dir, 'logcaster-000000000001.log');
    const img = fs.readFileSync(file);
    const starts: number[] = [];
    scanSegment(img, HEADER_SIZE, (pos) => starts.push(pos));
    img[starts[7] + 35] ^= 0x40; // a byte of record 8's line
    img.writeUInt32LE(0xffffff, starts[12] + 8); // record 13: absurd length field
    fs.writeFileSync(file, img);
    const j = Journal.open(opts(dir));
    expect(fs.statSync(file).size).to.equal(img.length); // middle damage is not truncated
    const r = readAll(j);
    expect(r.loaded).to.equal(18);
    expect(r.tornSkipped).to.equal(2);
    expect(r.entries.map((e) => e.seq)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15, 16, 17, 18, 19, 20]);
    expect(j.stats.tornRecordsSkipped).to.equal(2);
    readAll(j); // counted once per segment
    expect(j.stats.tornRecordsSkipped).to.equal(2);
    expect(j.append(0, 'p', Buffer.from('z'))).to.equal(21);
    await j.close();
  });

  it('corruption in an older segment and a garbage tail in the newest', async () => {
    await writeN(dir, 60, { rotateSize: 600, maxFiles: 100 });
    const files = segFiles(dir);
    expect(files.length).to.be.greaterThan(3);
    const f1 = path.join(dir, files[1]);
    const img = fs.readFileSync(f1);
    img[HEADER_SIZE + 4] ^= 1; // CRC of the first record of segment 2
    fs.writeFileSync(f1, img);
    const last = path.join(dir, files[files.length - 1]);
    const size = fs.statSync(last).size;
    fs.appendFileSync(last, Buffer.from('\x1eLCR garbage that is not a record'));
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
});

describe('journal: fsync policies and durability acknowledgements', function () {
  let dir: string;
  const realFdatasync = fs.fdatasync;
  beforeEach(() => { dir = tmpDir('sync'); });
  afterEach(() => { try { rmDir(dir); } finally { (nodeFs as { fdatasync: unknown }).fdatasync = realFdatasync; } });

  it("'always': acks only after an fsync that covers them, many records per fsync", async function () {
    this.timeout(20000);
    const j = Journal.open(opts(dir, { fsync: 'always', rotateSize: 4 << 20, maxFiles: 50 }));
    // Observe every fdatasync: what was written when it started, and when it completed.
    let coveredByCompleted = 0;
    let inFlight = 0;
    let maxInFlight = 0;
    (nodeFs as { fdatasync: unknown }).fdatasync = (fd: number, cb: (e: NodeJS.ErrnoException | null) => void) => {
      const covered = j.detailedStats.writtenSeq;
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      realFdatasync(fd, (e) => {
        inFlight--;
        coveredByCompleted = Math.max(coveredByCompleted, covered);
        cb(e);
      });
    };
    const acks: number[] = [];
    let inAppend = false;
    j.onDurable((seq) => {
      expect(inAppend, 'ack from inside append').to.equal(false);
      expect(seq, 'ack before a covering fsync completed').to.be.at.most(coveredByCompleted);
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
    expect(maxInFlight).to.be.at.most(2); // one group at a time (segment + maybe a retiring segment)
    console.log(`      group commit: ${total} records, ${fsyncs} fsyncs, ${acks.length} acks, ` +
      `${(total / Math.max(1, fsyncs)).toFixed(0)} records/fsync, ${Date.now() - t0} ms`);
    expect(fsyncs).to.be.greaterThan(0);
    expect(total / fsyncs).to.be.greaterThan(10);
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
    expect(fs.statSync(path.join(dir, segFiles(dir)[0])).size).to.equal(HEADER_SIZE); // still buffered
    await nextTurn();
    await nextTurn();
    expect(acks).to.deep.equal([10]);
    expect(j.stats.persistedLines).to.equal(10);
    expect(j.stats.fsyncs).to.equal(0);
    await j.close();
    expect(j.stats.fsyncs).to.equal(1);
  });

  it("'interval': acks when written and fsyncs periodically", async () => {
    const j = Journal.open(opts(dir, { fsync: 'interval', fsyncIntervalMs: 30 }));
    const acks: number[] = [];
    j.onDurable((s) => acks.push(s));
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 100; i++) j.append(i, 'p', Buffer.from('y'));
      await delay(40);
    }
    expect(acks[acks.length - 1]).to.equal(500);
    expect(j.stats.fsyncs).to.be.within(2, 10);
    const before = j.stats.fsyncs;
    await delay(100); // idle: nothing new, no fsync
    expect(j.stats.fsyncs).to.equal(before);
    await j.close();
  });

  it("'interval': finished segments are fsynced and their fds released at rotation, not held until the timer", async () => {
    const fdCount = (): number => fs.readdirSync('/proc/self/fd').length;
    const j = Journal.open(opts(dir, { fsync: 'interval', fsyncIntervalMs: 60000, rotateSize: 300, maxFiles: 1000 }));
    const fds0 = fdCount();
    for (let i = 1; i <= 400; i++) {
      j.append(i, 'p', Buffer.from(lineOf(i)));
      if (i % 10 === 0) { await nextTurn(); await delay(1); }
    }
    await delay(50);
    expect(segFiles(dir).length).to.be.greaterThan(50);
    expect(j.stats.fsyncs).to.be.greaterThan(10);
    expect(fdCount() - fds0).to.be.at.most(3);
    await j.close();
  });

  it('close() waits for an in-flight fsync and leaves everything durable', async () => {
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

describe('journal: I/O failure', function () {
  let dir: string;
  const realWriteSync = fs.writeSync;
  beforeEach(() => { dir = tmpDir('fail'); });
  afterEach(() => { try { rmDir(dir); } finally { (nodeFs as { writeSync: unknown }).writeSync = realWriteSync; } });

  it('fails stop on a write error: reports it, drops later lines, stops acknowledging', async () => {
    const j = Journal.open(opts(dir));
    const acks: number[] = [];
    const errors: Error[] = [];
    j.onDurable((s) => acks.push(s));
    j.onError((e) => errors.push(e));
    j.append(1, 'p', Buffer.from('ok'));
    await nextTurn();
    await nextTurn();
    expect(acks).to.deep.equal([1]);
    (nodeFs as { writeSync: unknown }).writeSync = () => {
      throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    };
    j.append(2, 'p', Buffer.from('lost'));
    await nextTurn();
    await nextTurn();
    (nodeFs as { writeSync: unknown }).writeSync = realWriteSync;
    expect(errors.map((e) => (e as NodeJS.ErrnoException).code)).to.deep.equal(['ENOSPC']);
    expect(j.error).to.equal(errors[0]);
    expect(j.append(3, 'p', Buffer.from('dropped'))).to.equal(3);
    expect(j.detailedStats.droppedLines).to.equal(2);
    let rejected: unknown = null;
    await j.close().catch((e) => { rejected = e; });
    expect(rejected).to.equal(errors[0]);
    expect(acks).to.deep.equal([1]);
    const j2 = Journal.open(opts(dir));
    expect(readAll(j2).entries.map((e) => e.line)).to.deep.equal(['ok']);
    expect(j2.append(4, 'p', Buffer.from('next'))).to.equal(2);
    await j2.close();
  });
});
