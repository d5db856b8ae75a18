// Walking the records of a segment: from a file read in windows (any size, no 2 GiB
// readFileSync limit) or from an image in memory. Damage is skipped, never thrown: when
// the bytes at a position are not an intact record, the walk resyncs on the next marker
// that starts an intact record continuing the sequence, and counts the skipped bytes.
import * as fs from 'node:fs';

import {
  HEADER_SIZE, MAX_BODY, RECORD_FIXED, RECORD_MARKER, RECORD_MARKER_BYTES, RECORD_PREFIX, parseRecord, type ParsedRecord,
} from './format';

const WINDOW = 8 * 1024 * 1024;

/** Byte access to a segment: views valid until the next call. */
interface Source {
  readonly size: number;
  view(pos: number, len: number): Buffer;
}

class ImageSource implements Source {
  constructor(private readonly img: Buffer) {}
  get size(): number {
    return this.img.length;
  }
  view(pos: number, len: number): Buffer {
    return this.img.subarray(pos, Math.min(this.img.length, pos + len));
  }
}

class FileSource implements Source {
  private buf = Buffer.allocUnsafe(0);
  private start = 0;
  private len = 0;
  constructor(
    private readonly fd: number,
    readonly size: number,
  ) {}
  view(pos: number, len: number): Buffer {
    const want = Math.min(len, this.size - pos);
    if (pos >= this.start && pos + want <= this.start + this.len) return this.buf.subarray(pos - this.start, pos - this.start + want);
    const cap = Math.max(WINDOW, want);
    if (this.buf.length < cap) this.buf = Buffer.allocUnsafe(cap);
    const n = Math.min(cap, this.size - pos);
    let got = 0;
    while (got < n) {
      const r = fs.readSync(this.fd, this.buf, got, n - got, pos + got);
      if (r === 0) break;
      got += r;
    }
    this.start = pos;
    this.len = got;
    return this.buf.subarray(0, Math.min(want, got));
  }
}

export interface ScanOutcome {
  records: number;
  lines: number;
  /** Offset just past the last intact record (`start` if none). */
  goodEnd: number;
  /** Damaged regions skipped (each a run of bytes up to the next intact record or the end). */
  corruptRegions: number;
  corruptBytes: number;
  /** The segment ends in bytes that are not an intact record. */
  tornTail: boolean;
  firstSeq: number;
  lastSeq: number;
}

/** Called per intact record in file order; `rec` views bytes valid only during the call. */
export type RecordVisitor = (pos: number, rec: ParsedRecord) => void;

function recordAt(src: Source, pos: number): ParsedRecord | null {
  if (pos + RECORD_FIXED > src.size) return null;
  const head = src.view(pos, RECORD_FIXED);
  if (head.readUInt32LE(0) !== RECORD_MARKER) return null;
  const body = head.readUInt32LE(8);
  if (body > MAX_BODY || pos + RECORD_PREFIX + body > src.size) return null;
  const whole = src.view(pos, RECORD_PREFIX + body);
  return parseRecord(whole, 0, whole.length);
}

function walk(src: Source, start: number, onRecord?: RecordVisitor): ScanOutcome {
  const res: ScanOutcome = { records: 0, lines: 0, goodEnd: start, corruptRegions: 0, corruptBytes: 0, tornTail: false, firstSeq: 0, lastSeq: 0 };
  const end = src.size;
  let pos = start;
  const take = (at: number, rec: ParsedRecord): void => {
    const b = rec.block;
    if (res.records === 0) res.firstSeq = b.firstSeq;
    res.lastSeq = b.firstSeq + b.count - 1;
    res.records++;
    res.lines += b.count;
    onRecord?.(at, rec);
    pos = at + rec.length;
    res.goodEnd = pos;
  };
  while (pos < end) {
    const rec = recordAt(src, pos);
    if (rec !== null && (res.records === 0 || rec.block.firstSeq > res.lastSeq)) {
      take(pos, rec);
      continue;
    }
    // Damaged: find the next intact record that continues the sequence.
    res.corruptRegions++;
    let found = -1;
    let from = pos + 1;
    search: while (from < end) {
      const win = src.view(from, WINDOW);
      const k = win.indexOf(RECORD_MARKER_BYTES);
      if (k >= 0) {
        const at = from + k;
        const cand = recordAt(src, at);
        if (cand !== null && (res.records === 0 || cand.block.firstSeq > res.lastSeq)) {
          found = at;
          break search;
        }
        from = at + 1; // recordAt moved the window: search on after the candidate
        continue;
      }
      if (win.length < RECORD_MARKER_BYTES.length) break;
      from += win.length - (RECORD_MARKER_BYTES.length - 1);
    }
    if (found < 0) {
      res.corruptBytes += end - pos;
      res.tornTail = true;
      break;
    }
    res.corruptBytes += found - pos;
    take(found, recordAt(src, found)!);
  }
  return res;
}

/** Walks a segment image in memory from `start` (after the header). */
export function scanSegment(img: Buffer, start = HEADER_SIZE, onRecord?: RecordVisitor): ScanOutcome {
  return walk(new ImageSource(img), start, onRecord);
}

/** Walks a segment file of `size` bytes from `start`, reading it in windows. */
export function scanSegmentFile(fd: number, size: number, start = HEADER_SIZE, onRecord?: RecordVisitor): ScanOutcome {
  return walk(new FileSource(fd, size), start, onRecord);
}

/** Reads [pos, pos + len) of a file into a new buffer. */
export function readRange(fd: number, pos: number, len: number): Buffer {
  const buf = Buffer.allocUnsafe(len);
  let got = 0;
  while (got < len) {
    const r = fs.readSync(fd, buf, got, len - got, pos + got);
    if (r === 0) throw new Error(`short read at ${pos + got}`);
    got += r;
  }
  return buf;
}
