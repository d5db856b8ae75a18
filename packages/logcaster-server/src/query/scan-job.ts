// What a scan worker is asked to do, and doing it. Pure: the scan worker runs these
// over shared memory; tests run them directly.
//
// A *unit* is one block of the memory store (its bytes in a shared chunk) restricted to
// a line range. Positions inside a unit (hits, resume points) are byte offsets of line
// starts in the block's data.
import { type BlockView, type Runs } from '../store/block';
import { BatchBuilder, type EntryBatch } from './result';
import { BlockMatcher, type LineRange, type QuerySpec } from './matcher';

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

export interface CountJob {
  kind: 'count';
  spec: QuerySpec;
  units: ScanUnit[];
  /** Report the line starts of a unit's matches when it has at most this many. */
  hitLimit: number;
}

export interface ExtractJob {
  kind: 'extract';
  spec: QuerySpec;
  unit: ScanUnit;
  /** Resume at this line start. */
  from: number;
  maxBytes: number;
}

export type ScanJob = CountJob | ExtractJob;

export interface CountReply {
  kind: 'count';
  counts: number[];
  /** Per unit: the line starts of its matches, when few enough. */
  hits: (Uint32Array | null)[];
}

export interface ExtractReply {
  kind: 'extract';
  batch: EntryBatch;
  /** Where the next extraction of this unit starts; -1 when the unit is done. */
  next: number;
}

export type ScanReply = CountReply | ExtractReply;

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
  for (const u of job.units) {
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
  return { kind: 'count', counts, hits };
}

export function runExtract(job: ExtractJob): ExtractReply {
  const b = blockOf(job.unit.source);
  const m = new BlockMatcher(job.spec);
  const out = new BatchBuilder(true);
  const r = job.unit.range;
  const next = m.scan(b, { ...r, from: Math.max(job.from, r.from) }, (ls, le, run) => {
    out.add(b.data, ls, le, b.runs.time[run], b.peers[b.runs.peer[run]]);
    return out.bytesUsed < job.maxBytes;
  });
  return { kind: 'extract', batch: out.build(), next: next >= r.to ? -1 : next };
}

export function runJob(job: ScanJob): ScanReply {
  return job.kind === 'count' ? runCount(job) : runExtract(job);
}
