// Runs queries over the whole retained history and hands out results through the seam
// of result.ts.
//
// History is the journal's segments on disk (older lines) followed by the memory
// store (the newest --capacity lines, a cache of what is also being written to disk).
// A query is planned as a list of *units*, oldest first: index groups of segments for
// the lines older than the memory window, then blocks of the memory store — each
// restricted to the sequence range the query covers, so every line is in exactly one
// unit. Units whose time range misses the query's window are left out at planning.
// Memory blocks and disk segments are pinned for the result's lifetime.
//
// Counting runs in the scan pool, a job per few megabytes of units, all cores at once;
// disk groups are read by the workers (never by the main thread), and a keyword query
// skips a group whose token filter rules the keywords out. A memory unit with few
// matches reports where they are, so streaming them is a copy on the main thread.
// Other units are scanned again, a batch at a time, when the client pulls them — the
// result never holds more than one batch of entries. RECENT and time-only filters need
// no scan to count: counts come from the blocks' runs and the groups' line counts.
import { BlockMatcher, emptySpec, rangeOf, selectsByTimeOnly, type LineRange, type QuerySpec } from './matcher';
import { Budget, ScanPool, type PoolOptions } from './pool';
import { BatchBuilder, EMPTY_BATCH, QueryCancelledError, type EntryBatch, type QueryResult } from './result';
import { blockOf, type AnyUnit, type CountReply, type ExtractReply, type FileUnit, type FilterReply, type MemSource } from './scan-job';
import { lineEndFrom, runAt, type BlockView } from '../store/block';
import type { LogStore, StoreBlock } from '../store/log-store';
import { groupRanges, type Journal, type PinnedGroups, type Segment } from '../journal/journal';
import { CpuHeadroom } from './cpu-headroom';

export { QueryCancelledError, RegexTimeoutError } from './result';
export type { EntryBatch, QueryResult } from './result';

/** What to run: a filter (QUERY, SEARCH, FILTER, REGEX) or the newest `recent` entries.
 *  `fromSeq`: only entries from that sequence number on (a live tail's new lines). */
export type QueryRequest = { spec: QuerySpec; fromSeq?: number } | { recent: number };

export interface RunOptions {
  /** Whose query this is (one per client): the scan pool shares its workers fairly
   *  between owners. */
  owner: object;
  /** Polled while counting: a query whose client left stops early. */
  cancelled?: () => boolean;
}

export interface QueryEngineOptions {
  /** Time budget of one regex query, ms. */
  regexTimeoutMs: number;
  pool?: PoolOptions;
}

/** Counting jobs cover about this many bytes of units. */
const JOB_BYTES = 4 * 1024 * 1024;
/** A unit reports its matches' positions when it has at most this many… */
const UNIT_HIT_LIMIT = 4096;
/** …and a query keeps at most this many positions in all. */
const QUERY_HIT_LIMIT = 65536;
const DEFAULT_BATCH_BYTES = 256 * 1024;
/** A token filter that could not be built is tried again after 1 s, 2 s, … at most 60 s. */
const FILTER_RETRY_MS = 1000;
const FILTER_RETRY_MAX_MS = 60_000;
/** A finished segment's filter waits for a spare core (CpuHeadroom), checked this often,
 *  for at most FILTER_WAIT_MAX_MS after rotation: an ingest burst runs at full speed and
 *  its filters follow; under ingest that never lets up they are built beside it. */
const FILTER_WAIT_STEP_MS = 250;
const FILTER_WAIT_MAX_MS = 10_000;

interface MemUnit {
  kind: 'mem';
  view: BlockView;
  source: MemSource;
  range: LineRange;
  count: number;
  /** Line starts of the unit's matches, when counted with few enough of them. */
  hits: Uint32Array | null;
}

interface DiskUnit {
  kind: 'file';
  unit: FileUnit;
  count: number;
  /** The group's receive time range. */
  minTime: number;
  maxTime: number;
}

type Unit = MemUnit | DiskUnit;

function scanUnit(u: Unit): AnyUnit {
  return u.kind === 'mem' ? { source: u.source, range: u.range } : u.unit;
}

function unitBytes(u: Unit): number {
  return u.kind === 'mem' ? u.range.to - u.range.from : u.unit.source.len;
}

/** A block of the store as a scan worker reaches it: peers renumbered for the block. */
export function memSource(b: StoreBlock, names: readonly string[]): { view: BlockView; source: MemSource } {
  const local = new Map<number, number>();
  const peers: string[] = [];
  const peer = new Uint32Array(b.runs.peer.length);
  for (let i = 0; i < peer.length; i++) {
    const id = b.runs.peer[i];
    let p = local.get(id);
    if (p === undefined) {
      p = peers.length;
      peers.push(names[id]);
      local.set(id, p);
    }
    peer[i] = p;
  }
  const runs = { off: b.runs.off, lines: b.runs.lines, time: b.runs.time, peer };
  const buf = b.chunk.buf;
  const source: MemSource = {
    kind: 'mem',
    sab: buf.buffer as SharedArrayBuffer,
    byteOffset: buf.byteOffset + b.start,
    length: b.end - b.start,
    firstSeq: b.firstSeq,
    count: b.count,
    runs,
    peers,
    lineEnds: b.lineEnds,
  };
  return { view: blockOf(source), source };
}

/** Whether the block's or group's time range meets the query's window. */
function meetsWindow(spec: QuerySpec, minTime: number, maxTime: number): boolean {
  return !(maxTime < (spec.timeFromMs ?? -Infinity) || minTime >= (spec.timeToMs ?? Infinity));
}

/** Whether every line of that time range is inside the query's window. */
function insideWindow(spec: QuerySpec, minTime: number, maxTime: number): boolean {
  return minTime >= (spec.timeFromMs ?? -Infinity) && maxTime < (spec.timeToMs ?? Infinity);
}

export class QueryEngine {
  private readonly pool: ScanPool;
  private readonly sources = new WeakMap<StoreBlock, { view: BlockView; source: MemSource }>();
  private history: Journal | undefined;
  /** Who builds token filters, as the pool's fairness sees it: one more client, with
   *  one job running at most, so that queries always find a worker. */
  private readonly indexer = {};
  private filtering = new Set<Segment>();
  /** Disk groups a keyword query did not read thanks to their token filter. */
  groupsSkipped = 0;
  /** Disk groups a time window left out by their time range, without reading them. */
  groupsOutsideWindow = 0;
  /** Disk groups found damaged while a query read them (skipped, never fatal). */
  groupsDamaged = 0;
  /** Token filter files written. */
  filtersBuilt = 0;
  /** Token filter builds that wrote nothing (a short read, a failed write): retried. */
  filterFailures = 0;
  /** Token filter builds that waited for a spare core (FILTER_WAIT_MAX_MS at most). */
  filterWaits = 0;
  private readonly headroom = new CpuHeadroom();
  private readonly filterTimers = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(
    private readonly store: LogStore,
    private readonly options: QueryEngineOptions,
  ) {
    this.pool = new ScanPool(options.pool);
  }

  /** Queries answer over `journal`'s segments too (the lines older than the memory
   *  window), and its finished segments get token filters, built in the scan pool. */
  attachHistory(journal: Journal): void {
    this.history = journal;
    journal.onFinished((seg) => this.buildFilter(seg));
    for (const seg of journal.unfiltered) this.buildFilter(seg);
  }

  /** `waitingSince`: when this build began to wait for a spare core. */
  private buildFilter(seg: Segment, attempt = 0, waitingSince?: number): void {
    const journal = this.history;
    if (journal === undefined || seg.doomed || this.filtering.has(seg) || this.closed) return;
    const since = waitingSince ?? Date.now();
    if (!this.headroom.spareCore() && Date.now() - since < FILTER_WAIT_MAX_MS) {
      if (waitingSince === undefined) this.filterWaits++;
      this.later(() => this.buildFilter(seg, attempt, since), FILTER_WAIT_STEP_MS);
      return;
    }
    this.filtering.add(seg);
    journal.pin([seg]);
    const out = journal.filterPath(seg);
    const groups = groupRanges(seg.index);
    let written = false;
    this.pool
      .submit(this.indexer, { kind: 'filter', segment: seg.file, segmentNo: seg.no, segmentSize: seg.size, groups, out }, { maxRunning: 1 })
      .then(
        (r) => {
          written = (r as FilterReply).written;
          if (written) {
            journal.setFilter(seg, out);
            this.filtersBuilt++;
          }
        },
        () => {
          /* the pool closed, or the worker failed (the filter file could not be written) */
        },
      )
      .finally(() => {
        this.filtering.delete(seg);
        journal.unpin([seg]);
        // Not written (a short read while the disk was full, a failed write): queries
        // read the segment whole meanwhile; try again later, less often each time.
        if (!written && !this.closed && !seg.doomed) {
          this.filterFailures++;
          this.later(() => this.buildFilter(seg, attempt + 1), Math.min(FILTER_RETRY_MAX_MS, FILTER_RETRY_MS * 2 ** attempt));
        }
      });
  }

  /** A timer for filter work, cleared by close(). */
  private later(fn: () => void, ms: number): void {
    const t = setTimeout(() => {
      this.filterTimers.delete(t);
      fn();
    }, ms);
    t.unref();
    this.filterTimers.add(t);
  }

  /** Regex queries stopped for exceeding the budget. */
  get regexTimeouts(): number {
    return this.pool.timeouts;
  }

  /** Scan jobs that yielded their worker to another client. */
  get preemptions(): number {
    return this.pool.preemptions;
  }

  /** Sequence number of the oldest line a query can see. */
  get firstSeq(): number {
    const store = this.store;
    // With a journal, history starts at its oldest retained line: lines retention
    // deleted are gone, even while the memory window still holds them.
    return this.history === undefined ? store.firstSeq : this.history.firstSeq;
  }

  /** Lines a query can see: the retained history. */
  get retained(): number {
    const store = this.store;
    const h = this.history;
    if (h === undefined) return store.size;
    // On disk (or posted to be), plus what the store has not handed to the journal yet.
    return h.retainedLines + Math.max(0, store.nextSeq - 1 - h.lastSeq);
  }

  private unitOf(b: StoreBlock, lo: number, hi: number): MemUnit {
    let s = this.sources.get(b);
    if (s === undefined) {
      s = memSource(b, this.store.peers.names);
      this.sources.set(b, s);
    }
    return { kind: 'mem', view: s.view, source: s.source, range: rangeOf(s.view, lo, hi), count: 0, hits: null };
  }

  async run(req: QueryRequest, opts: RunOptions): Promise<QueryResult> {
    const store = this.store;
    const hi = store.nextSeq;
    const first = this.firstSeq;
    const recent = 'recent' in req;
    const lo = recent ? Math.max(first, hi - req.recent) : Math.min(hi, Math.max(first, req.fromSeq ?? first));
    const spec = recent ? emptySpec() : req.spec;
    const pinned = store.pin(lo);
    const memLo = Math.max(lo, store.firstSeq);
    const mem: Unit[] = [];
    for (const b of pinned.blocks) {
      if (!meetsWindow(spec, b.minTime, b.maxTime)) continue;
      const u = this.unitOf(b, memLo, hi);
      if (u.range.toOrd > u.range.fromOrd) mem.push(u);
    }
    let disk: PinnedGroups | undefined;
    const units: Unit[] = [];
    const budget = spec.regex ? new Budget(this.options.regexTimeoutMs) : undefined;
    try {
      if (this.history !== undefined && lo < memLo) {
        disk = this.history.pinGroups(lo, memLo, spec.timeFromMs, spec.timeToMs);
        this.groupsOutsideWindow += disk.outsideWindow;
        let need = 0;
        for (const g of disk.groups) {
          need = Math.max(need, g.firstSeq + g.lines - 1);
          units.push({
            kind: 'file',
            unit: { source: { kind: 'file', path: g.file, off: g.off, len: g.len, firstSeq: g.firstSeq, lines: g.lines, filter: g.filter }, lo, hi: memLo },
            count: 0,
            minTime: g.minTime,
            maxTime: g.maxTime,
          });
        }
        // Lines that left the memory window may still be on their way to the file.
        if (units.length > 0) await this.history.written(need);
        // On a full disk the newest of them may wait for space: what is in the file is
        // read, the rest is not waited for (it is answered once written).
        const w = this.history.writtenExtent;
        for (let i = units.length - 1; i >= 0; i--) {
          const u = units[i];
          if (u.kind !== 'file' || u.unit.source.kind !== 'file') continue;
          const src = u.unit.source;
          if (src.firstSeq + src.lines - 1 <= w.seq) continue;
          if (src.firstSeq > w.seq || src.path !== w.file) units.splice(i, 1);
          else u.unit.source = { ...src, len: w.end - src.off, lines: w.seq - src.firstSeq + 1, filter: undefined };
        }
      }
      units.push(...mem);
      if (selectsByTimeOnly(spec)) await this.countByTime(units, spec, opts);
      else await this.count(units, spec, opts, budget);
    } catch (e) {
      pinned.release();
      disk?.release();
      throw e;
    }
    const release = (): void => {
      pinned.release();
      disk?.release();
    };
    if (opts.cancelled?.()) {
      release();
      throw new QueryCancelledError();
    }
    return new StoreResult(this.pool, opts.owner, spec, units.filter((u) => u.count > 0), release, hi);
  }

  /** Time-only filters: memory blocks count from their runs, disk groups inside the
   *  window from the index; groups the window cuts are counted by a worker. */
  private async countByTime(units: Unit[], spec: QuerySpec, opts: RunOptions): Promise<void> {
    const m = new BlockMatcher(spec);
    const cut: Unit[] = [];
    for (const u of units) {
      if (u.kind === 'mem') u.count = m.count(u.view, u.range);
      else {
        const src = u.unit.source;
        if (insideWindow(spec, u.minTime, u.maxTime)) {
          u.count = Math.max(0, Math.min(src.firstSeq + src.lines, u.unit.hi) - Math.max(src.firstSeq, u.unit.lo));
        } else cut.push(u);
      }
    }
    if (cut.length > 0) await this.count(cut, spec, opts, undefined);
  }

  private async count(units: Unit[], spec: QuerySpec, opts: RunOptions, budget: Budget | undefined): Promise<void> {
    const jobs: Unit[][] = [];
    let cur: Unit[] = [];
    let bytes = 0;
    for (const u of units) {
      cur.push(u);
      bytes += unitBytes(u);
      if (bytes >= JOB_BYTES) {
        jobs.push(cur);
        cur = [];
        bytes = 0;
      }
    }
    if (cur.length > 0) jobs.push(cur);
    const replies = await Promise.all(
      jobs.map((group) =>
        this.pool.submit(opts.owner, { kind: 'count', spec, units: group.map(scanUnit), hitLimit: UNIT_HIT_LIMIT }, { budget, cancelled: opts.cancelled }),
      ),
    );
    let kept = 0;
    replies.forEach((reply, j) => {
      const r = reply as CountReply;
      this.groupsSkipped += r.skipped;
      this.groupsDamaged += r.damaged;
      jobs[j].forEach((u, k) => {
        u.count = r.counts[k];
        const hits = r.hits[k];
        if (u.kind === 'mem' && hits !== null && u.count > 0 && kept + hits.length <= QUERY_HIT_LIMIT) {
          u.hits = hits;
          kept += hits.length;
        }
      });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.filterTimers) clearTimeout(t);
    this.filterTimers.clear();
    await this.pool.close();
  }
}

class StoreResult implements QueryResult {
  readonly count: number;
  private unit = 0;
  /** Within the current unit: index of the next hit, or offset of the next line. */
  private pos = -1;
  private delivered = 0;
  private closed = false;
  private readonly timeOnly: boolean;
  private readonly matcher: BlockMatcher;

  constructor(
    private readonly pool: ScanPool,
    private readonly owner: object,
    private readonly spec: QuerySpec,
    private readonly units: Unit[],
    private readonly releasePins: () => void,
    readonly endSeq: number,
  ) {
    this.count = units.reduce((n, u) => n + u.count, 0);
    this.timeOnly = selectsByTimeOnly(spec);
    this.matcher = new BlockMatcher(spec);
    if (this.count === 0) this.close();
  }

  async next(maxBytes = DEFAULT_BATCH_BYTES): Promise<EntryBatch> {
    for (;;) {
      if (this.closed) {
        if (this.delivered >= this.count) return EMPTY_BATCH;
        throw new QueryCancelledError();
      }
      const u = this.units[this.unit];
      if (u === undefined || this.delivered >= this.count) {
        this.close();
        return EMPTY_BATCH;
      }
      if (u.count === 0) {
        this.advance();
        continue;
      }
      const batch =
        u.kind === 'file' ? await this.rescan(u, maxBytes) : u.hits !== null ? this.fromHits(u, maxBytes) : this.timeOnly ? this.walk(u, maxBytes) : await this.rescan(u, maxBytes);
      if (batch.length === 0) continue;
      this.delivered += batch.length;
      return batch;
    }
  }

  private advance(): void {
    this.unit++;
    this.pos = -1;
  }

  /** Entries at the hit positions the count reported (the main thread copies nothing:
   *  the batch views the pinned block). */
  private fromHits(u: MemUnit, maxBytes: number): EntryBatch {
    const hits = u.hits!;
    const b = u.view;
    const out = new BatchBuilder(false, Math.min(hits.length, 1024));
    let k = Math.max(0, this.pos);
    let run = 0;
    for (; k < hits.length && out.bytesUsed < maxBytes; k++) {
      const ls = hits[k];
      const le = lineEndFrom(b, ls);
      run = runAt(b.runs, ls, run);
      out.add(b.data, ls, le, b.runs.time[run], b.peers[b.runs.peer[run]]);
    }
    if (k >= hits.length) this.advance();
    else this.pos = k;
    return out.build();
  }

  /** Every line of the unit that passes the time filter, walked on the main thread. */
  private walk(u: MemUnit, maxBytes: number): EntryBatch {
    const b = u.view;
    const out = new BatchBuilder(false);
    const from = this.pos < 0 ? u.range.from : this.pos;
    const next = this.matcher.scan(b, { ...u.range, from }, (ls, le, run) => {
      out.add(b.data, ls, le, b.runs.time[run], b.peers[b.runs.peer[run]]);
      return out.bytesUsed < maxBytes;
    });
    if (next >= u.range.to) this.advance();
    else this.pos = next;
    return out.build();
  }

  /** A disk unit, or a memory unit with many matches: a worker scans the next batch of
   *  them. A regex already finished this unit within its budget while counting: no
   *  budget applies here (the pool still preempts it when other clients wait). */
  private async rescan(u: Unit, maxBytes: number): Promise<EntryBatch> {
    const from = u.kind === 'file' ? this.pos : this.pos < 0 ? u.range.from : this.pos;
    const reply = (await this.pool.submit(
      this.owner,
      { kind: 'extract', spec: this.spec, unit: scanUnit(u), from, maxBytes },
      { cancelled: () => this.closed },
    )) as ExtractReply;
    if (this.closed) throw new QueryCancelledError();
    if (reply.next < 0) this.advance();
    else this.pos = reply.next;
    return asBuffers(reply.batch);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.releasePins();
  }
}

/** A batch that crossed from a worker arrives with plain Uint8Arrays: make the bytes a Buffer. */
function asBuffers(b: EntryBatch): EntryBatch {
  const bytes = b.bytes as Uint8Array;
  return Buffer.isBuffer(bytes) ? b : { ...b, bytes: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
}
