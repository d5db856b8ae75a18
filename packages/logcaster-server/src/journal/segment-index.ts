// The index of one segment: its records gathered into *groups* of consecutive intact
// records of about GROUP_BYTES, each with its file range, sequence range, line count and
// time range. A query plans over groups (skipping those outside its time window) and
// reads a group with one positional read. Columns are typed arrays: a segment of a
// million one-line records still costs a few hundred groups, not a million objects.
//
// A finished segment's index is kept next to it (`logcaster-NNN.idx`, format below) so
// a restart reloads it instead of reading the segment; a missing or damaged index file
// is rebuilt by scanning the segment.
//
// Index file: 0 magic "LCINDEX\0" | 8 version u16 (=1) | 10 header length u16 (=48)
//   12 flags u32 (=0) | 16 segment number u64 | 24 segment size u64 (bytes indexed)
//   32 group count u32 | 36 reserved u32 | 40 reserved u32 | 44 CRC-32 of bytes 0..43
//   48 groups: count × 64 bytes { file offset u64, length u64, first seq u64, lines u32,
//      records u32, min time f64, max time f64, reserved u64 ×2 }
//   then CRC-32 of the group table (u32).
import { crc32 } from './crc32';
import { readSidecarHeader, readU64, SIDECAR_HEADER, writeSidecarHeader, writeU64 } from './format';

export const GROUP_BYTES = 1024 * 1024;
const INDEX_MAGIC = Buffer.from('LCINDEX\0', 'latin1');
const INDEX_VERSION = 1;
const INDEX_HEADER = SIDECAR_HEADER;
const GROUP_ENTRY = 64;

function grow<T extends Float64Array | Uint32Array>(a: T, n: number): T {
  if (n <= a.length) return a;
  const b = new (a.constructor as new (n: number) => T)(Math.max(n, a.length * 2));
  b.set(a);
  return b;
}

export class SegmentIndex {
  count = 0;
  off = new Float64Array(8);
  len = new Float64Array(8);
  firstSeq = new Float64Array(8);
  lines = new Float64Array(8);
  records = new Uint32Array(8);
  minTime = new Float64Array(8);
  maxTime = new Float64Array(8);
  /** The last group takes more records (contiguous, under GROUP_BYTES). */
  private open = false;
  /** Lines in all groups. */
  totalLines = 0;

  /** Adds the intact record at `pos`. `afterLast`: it directly follows the previous one. */
  add(pos: number, length: number, firstSeq: number, count: number, minTime: number, maxTime: number, afterLast = true): void {
    const g = this.count - 1;
    if (this.open && afterLast && this.off[g] + this.len[g] === pos && this.len[g] + length <= GROUP_BYTES) {
      this.len[g] += length;
      this.lines[g] += count;
      this.records[g]++;
      if (minTime < this.minTime[g]) this.minTime[g] = minTime;
      if (maxTime > this.maxTime[g]) this.maxTime[g] = maxTime;
    } else {
      const n = this.count + 1;
      this.off = grow(this.off, n);
      this.len = grow(this.len, n);
      this.firstSeq = grow(this.firstSeq, n);
      this.lines = grow(this.lines, n);
      this.records = grow(this.records, n);
      this.minTime = grow(this.minTime, n);
      this.maxTime = grow(this.maxTime, n);
      this.off[g + 1] = pos;
      this.len[g + 1] = length;
      this.firstSeq[g + 1] = firstSeq;
      this.lines[g + 1] = count;
      this.records[g + 1] = 1;
      this.minTime[g + 1] = minTime;
      this.maxTime[g + 1] = maxTime;
      this.count = n;
      this.open = true;
    }
    this.totalLines += count;
  }

  /** No later record joins the last group. */
  close(): void {
    this.open = false;
  }

  get firstSeqOf(): number {
    return this.count > 0 ? this.firstSeq[0] : 0;
  }
  get lastSeqOf(): number {
    const g = this.count - 1;
    return g >= 0 ? this.firstSeq[g] + this.lines[g] - 1 : 0;
  }
  get maxTimeOf(): number {
    let t = -Infinity;
    for (let g = 0; g < this.count; g++) if (this.maxTime[g] > t) t = this.maxTime[g];
    return t;
  }

  /** The group holding sequence `seq` (or the first one after it), -1 past the end. */
  groupOf(seq: number): number {
    let lo = 0;
    let hi = this.count - 1;
    if (hi < 0 || seq > this.lastSeqOf) return -1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.firstSeq[mid] + this.lines[mid] - 1 < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  encode(segmentNo: number, segmentSize: number): Buffer {
    const n = this.count;
    const buf = Buffer.alloc(INDEX_HEADER + n * GROUP_ENTRY + 4);
    writeSidecarHeader(buf, INDEX_MAGIC, INDEX_VERSION, { segmentNo, segmentSize, count: n, words: [0, 0, 0] });
    for (let g = 0; g < n; g++) {
      const o = INDEX_HEADER + g * GROUP_ENTRY;
      writeU64(buf, this.off[g], o);
      writeU64(buf, this.len[g], o + 8);
      writeU64(buf, this.firstSeq[g], o + 16);
      buf.writeUInt32LE(this.lines[g], o + 24);
      buf.writeUInt32LE(this.records[g], o + 28);
      buf.writeDoubleLE(this.minTime[g], o + 32);
      buf.writeDoubleLE(this.maxTime[g], o + 40);
    }
    const t = INDEX_HEADER + n * GROUP_ENTRY;
    buf.writeUInt32LE(crc32(buf, INDEX_HEADER, t), t);
    return buf;
  }

  /** The index of segment `segmentNo` of `segmentSize` bytes, or null if `buf` is not an
   *  intact index of exactly that. */
  static decode(buf: Buffer, segmentNo: number, segmentSize: number): SegmentIndex | null {
    const h = readSidecarHeader(buf, INDEX_MAGIC, INDEX_VERSION);
    if (h === null || h.segmentNo !== segmentNo || h.segmentSize !== segmentSize) return null;
    const n = h.count;
    const t = INDEX_HEADER + n * GROUP_ENTRY;
    if (buf.length !== t + 4 || crc32(buf, INDEX_HEADER, t) !== buf.readUInt32LE(t)) return null;
    const idx = new SegmentIndex();
    for (let g = 0; g < n; g++) {
      const o = INDEX_HEADER + g * GROUP_ENTRY;
      idx.add(readU64(buf, o), readU64(buf, o + 8), readU64(buf, o + 16), buf.readUInt32LE(o + 24), buf.readDoubleLE(o + 32), buf.readDoubleLE(o + 40), false);
      idx.records[g] = buf.readUInt32LE(o + 28);
      idx.len[g] = readU64(buf, o + 8);
    }
    idx.close();
    return idx;
  }
}
