// What a scan worker is asked to do, and doing it. Pure: the scan worker runs these
// over shared memory; tests run them directly.
//
// A *unit* is one block of the memory store (its bytes in a shared chunk) restricted to
// a line range, or one index group of a journal segment (a file range of whole
// records) restricted to a sequence range. Positions inside a memory unit (hits,
// resume points) are byte offsets of line starts in the block's data; inside a file
// unit a resume point is `record * 2^32 + offset` (the record's ordinal in the group,
// the line start in that record's data).
import * as fs from 'node:fs';

import { decodeRecord, RECORD_MARKER_BYTES, recordCrcOk, recordLength } from '../journal/format';
import { addTrigrams, checkedFilter, encodeFilterFile, FILTER_BYTES, FILTER_HEADER, filterOffset, mayContain } from '../journal/token-filter';
import { type BlockView, type Runs } from '../store/block';
import { BatchBuilder, type EntryBatch } from './result';
import { BlockMatcher, rangeOf, requiredLiteral, type LineRange, type QuerySpec } from './matcher';

/** A block of the memory store, as a worker can reach it. */
export interface MemSource {
  kind: 'mem';
  sab: SharedArrayBuffer;
  byteOffset: number;
  length: number;
  firstSeq: number;
  count: number;
  runs: Runs;
  peers: string[];
  lineEnds?: Uint32Array;
}

export interface ScanUnit {
  source: MemSource;
  range: LineRange;
}

/** An index group of a journal segment: whole records at file bytes [off, off + len),
 *  holding lines [firstSeq, firstSeq + lines). `filter`: the segment's token filter
 *  file and the group's number in it, when it has one (token-filter.ts). */
export interface FileSource {
  kind: 'file';
  path: string;
  off: number;
  len: number;
  firstSeq: number;
  lines: number;
  filter?: { path: string; groups: number; group: number };
}

/** A file source restricted to the lines [lo, hi) of the query. */
export interface FileUnit {
  source: FileSource;
  lo: number;
  hi: number;
}

export type AnyUnit = ScanUnit | FileUnit;

export function isFileUnit(u: AnyUnit): u is FileUnit {
  return u.source.kind === 'file';
}

export interface CountJob {
  kind: 'count';
  spec: QuerySpec;
  units: AnyUnit[];
  /** Report the line starts of a unit's matches when it has at most this many. */
  hitLimit: number;
}

export interface ExtractJob {
  kind: 'extract';
  spec: QuerySpec;
  unit: AnyUnit;
  /** Resume at this position (-1: the unit's start). */
  from: number;
  maxBytes: number;
}

/** Build the token filters of a finished segment's groups and write its filter file. */
export interface FilterJob {
  kind: 'filter';
  segment: string;
  segmentNo: number;
  segmentSize: number;
  groups: { off: number; len: number }[];
  /** The filter file: written to `<out>.tmp`, then renamed. */
  out: string;
}

export type ScanJob = CountJob | ExtractJob | FilterJob;

export interface CountReply {
  kind: 'count';
  counts: number[];
  /** Per unit: the line starts of its matches, when few enough (memory units only). */
  hits: (Uint32Array | null)[];
  /** File groups the token filter ruled out without reading them. */
  skipped: number;
  /** File groups whose bytes were not intact records when read (damaged since indexed). */
  damaged: number;
}

export interface ExtractReply {
  kind: 'extract';
  batch: EntryBatch;
  /** Where the next extraction of this unit starts; -1 when the unit is done. */
  next: number;
}

export interface FilterReply {
  kind: 'filter';
  /** False when the segment could not be read (gone, or shorter than its index says). */
  written: boolean;
}

export type ScanReply = CountReply | ExtractReply | FilterReply;

export function blockOf(src: MemSource): BlockView {
  return {
    data: Buffer.from(src.sab, src.byteOffset, src.length),
    firstSeq: src.firstSeq,
    count: src.count,
    runs: src.runs,
    peers: src.peers,
    lineEnds: src.lineEnds,
  };
}

export function runCount(job: CountJob): CountReply {
  const m = new BlockMatcher(job.spec);
  const counts: number[] = [];
  const hits: (Uint32Array | null)[] = [];
  const reply: CountReply = { kind: 'count', counts, hits, skipped: 0, damaged: 0 };
  for (const u of job.units) {
    if (isFileUnit(u)) {
      counts.push(countFile(m, job.spec, u, reply));
      hits.push(null);
      continue;
    }
    const b = blockOf(u.source);
    const starts: number[] = [];
    let n = 0;
    m.scan(b, u.range, (ls) => {
      if (n++ < job.hitLimit) starts.push(ls);
      return true;
    });
    counts.push(n);
    hits.push(n <= job.hitLimit ? Uint32Array.from(starts) : null);
  }
  return reply;
}

/** Matching lines of a file unit: ruled out by the group's token filter when it can be,
 *  else counted over each record's block. A record's CRC is checked only when it has
 *  matches (a damaged record counts none): a rare keyword costs a search, not a
 *  checksum, per byte. */
function countFile(m: BlockMatcher, spec: QuerySpec, u: FileUnit, reply: CountReply): number {
  if (!filterAllows(spec, u.source)) {
    reply.skipped++;
    return 0;
  }
  let n = 0;
  let damaged = false;
  const ok = eachRecord(
    u.source,
    (b, _k, intact) => {
      const r = rangeOf(b, u.lo, u.hi);
      if (r.toOrd <= r.fromOrd) return true;
      const c = m.count(b, r);
      if (c > 0 && !intact()) damaged = true;
      else n += c;
      return true;
    },
    0,
    false,
  );
  if (!ok || damaged) reply.damaged++;
  return n;
}

/** Whether the group's token filter lets the keywords (and the literal a regex
 *  requires) through. No filter, or a damaged one: yes. */
export function filterAllows(spec: QuerySpec, src: FileSource): boolean {
  const literal = spec.regex !== undefined ? requiredLiteral(spec.regex) : undefined;
  if ((spec.keywords.length === 0 && literal === undefined) || src.filter === undefined) return true;
  const f = src.filter;
  const crc = readBytes(f.path, FILTER_HEADER + 4 * f.group, 4);
  const raw = crc === null ? null : readBytes(f.path, filterOffset(f.groups, f.group), FILTER_BYTES, filterScratch);
  const bits = raw === null ? null : checkedFilter(crc!, raw);
  if (bits === null) return true; // missing or damaged: read the group
  if (literal !== undefined && !mayContain(bits, literal)) return false;
  if (spec.keywords.length === 0) return true;
  return spec.operator === 'OR' ? spec.keywords.some((k) => mayContain(bits, k)) : spec.keywords.every((k) => mayContain(bits, k));
}

/** A buffer a worker reads into, reused from job to job (one of each per thread: a
 *  fresh megabyte per group, or 64 KiB per filter probed, was allocation and GC work,
 *  and external memory that piled up until the thread's next full GC). */
class Scratch {
  private buf = Buffer.allocUnsafe(0);
  /** `len` bytes, valid until the next get(). */
  get(len: number): Buffer {
    if (this.buf.length < len) this.buf = Buffer.allocUnsafe(Math.max(len, 2 * this.buf.length));
    return this.buf.subarray(0, len);
  }
}
const groupScratch = new Scratch();
const filterScratch = new Scratch();

/** file[off, off + len) — in `into` when given (valid until its next use), else in a
 *  buffer of its own — or null when it cannot all be read. */
function readBytes(file: string, off: number, len: number, into?: Scratch): Buffer | null {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return null;
  }
  try {
    const buf = into !== undefined ? into.get(len) : Buffer.allocUnsafe(len);
    let got = 0;
    while (got < len) {
      const n = fs.readSync(fd, buf, got, len - got, off + got);
      if (n === 0) return null;
      got += n;
    }
    return buf;
  } finally {
    fs.closeSync(fd);
  }
}

/** Visits the records of a group in order (stop by returning false); `intact()` checks
 *  the record's CRC (each is checked before the visit when `checkAll`). Returns false
 *  when some of the group's bytes could not be read or were not records: a damaged
 *  record is skipped (the walk resyncs on the next marker that starts a well-formed
 *  record continuing the sequence), never fails a query. `ordinal` numbers the records
 *  visited. The blocks view a buffer reused by the next read. */
function eachRecord(src: FileSource, visit: (b: BlockView, ordinal: number, intact: () => boolean) => boolean, fromRecord = 0, checkAll = true): boolean {
  const img = readBytes(src.path, src.off, src.len, groupScratch);
  if (img === null) return false;
  let ok = true;
  let pos = 0;
  let lastSeq = -1;
  for (let k = 0; pos < img.length; ) {
    const len = recordLength(img, pos);
    const rec = len < 0 || (checkAll && !recordCrcOk(img, pos, len)) ? null : decodeRecord(img, pos, len);
    if (rec === null || rec.block.firstSeq <= lastSeq) {
      ok = false;
      const at = img.indexOf(RECORD_MARKER_BYTES, pos + 1);
      if (at < 0) break;
      pos = at;
      continue;
    }
    const at = pos;
    pos += len;
    lastSeq = rec.block.firstSeq + rec.block.count - 1;
    if (k++ < fromRecord) continue;
    if (!visit(rec.block, k - 1, () => checkAll || recordCrcOk(img, at, len))) return ok;
  }
  return ok;
}

export const RECORD_POS = 2 ** 32;

export function runExtract(job: ExtractJob): ExtractReply {
  const u = job.unit;
  if (isFileUnit(u)) return extractFile(job, u);
  const b = blockOf(u.source);
  const m = new BlockMatcher(job.spec);
  const out = new BatchBuilder(true);
  const r = u.range;
  const next = m.scan(b, { ...r, from: Math.max(job.from, r.from) }, (ls, le, run) => {
    out.add(b.data, ls, le, b.runs.time[run], b.peers[b.runs.peer[run]]);
    return out.bytesUsed < job.maxBytes;
  });
  return { kind: 'extract', batch: out.build(), next: next >= r.to ? -1 : next };
}

function extractFile(job: ExtractJob, u: FileUnit): ExtractReply {
  const m = new BlockMatcher(job.spec);
  const out = new BatchBuilder(true);
  const fromRec = job.from < 0 ? 0 : Math.floor(job.from / RECORD_POS);
  const fromOff = job.from < 0 ? 0 : job.from % RECORD_POS;
  let next = -1;
  eachRecord(
    u.source,
    (b, k) => {
      const r = rangeOf(b, u.lo, u.hi);
      if (r.toOrd <= r.fromOrd) return true;
      const from = k === fromRec ? Math.max(fromOff, r.from) : r.from;
      const end = m.scan(b, { ...r, from }, (ls, le, run) => {
        out.add(b.data, ls, le, b.runs.time[run], b.peers[b.runs.peer[run]]);
        return out.bytesUsed < job.maxBytes;
      });
      if (end < r.to) {
        next = k * RECORD_POS + end;
        return false;
      }
      return true;
    },
    fromRec,
  );
  return { kind: 'extract', batch: out.build(), next };
}

/** Every byte of each group goes into its filter (record heads too: a few more
 *  trigrams, no parsing). */
export function runFilter(job: FilterJob): FilterReply {
  const filters: Uint8Array[] = [];
  for (const g of job.groups) {
    const img = readBytes(job.segment, g.off, g.len, groupScratch);
    if (img === null) return { kind: 'filter', written: false };
    const bits = new Uint8Array(FILTER_BYTES);
    addTrigrams(bits, img);
    filters.push(bits);
  }
  const tmp = `${job.out}.tmp`;
  fs.writeFileSync(tmp, encodeFilterFile(job.segmentNo, job.segmentSize, job.groups, filters));
  fs.renameSync(tmp, job.out);
  return { kind: 'filter', written: true };
}

export function runJob(job: ScanJob): ScanReply {
  switch (job.kind) {
    case 'count':
      return runCount(job);
    case 'extract':
      return runExtract(job);
    case 'filter':
      return runFilter(job);
  }
}
