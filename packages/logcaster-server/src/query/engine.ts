// Runs queries over the store and hands out results through the seam of result.ts.
//
// A query is planned as a list of *units* (a block restricted to the sequence range the
// query covers), pinned for the result's lifetime. Counting runs in the scan pool, a
// job per few megabytes of units, all cores at once; a unit with few matches reports
// where they are, so streaming them is a copy on the main thread. Units with many
// matches are scanned again, a batch at a time, when the client pulls them — the
// result never holds more than one batch of entries. RECENT and time-only filters
// need no scan: counts come from the blocks' runs, entries are walked as they are sent.
import { BlockMatcher, emptySpec, rangeOf, selectsByTimeOnly, type LineRange, type QuerySpec } from './matcher';
import { Budget, ScanPool, type PoolOptions } from './pool';
import { BatchBuilder, EMPTY_BATCH, QueryCancelledError, type EntryBatch, type QueryResult } from './result';
import { blockOf, type CountReply, type ExtractReply, type MemSource } from './scan-job';
import { lineEndFrom, runAt, type BlockView } from '../store/block';
import type { LogStore, PinnedBlocks, StoreBlock } from '../store/log-store';

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

interface Unit {
  view: BlockView;
  source: MemSource;
  range: LineRange;
  count: number;
  /** Line starts of the unit's matches, when counted with few enough of them. */
  hits: Uint32Array | null;
}

/** A block of the store as a scan worker reaches it: peers renumbered for the block. */
function memSource(b: StoreBlock, names: readonly string[]): { view: BlockView; source: MemSource } {
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

export class QueryEngine {
  private readonly pool: ScanPool;
  private readonly sources = new WeakMap<StoreBlock, { view: BlockView; source: MemSource }>();

  constructor(
    private readonly store: LogStore,
    private readonly options: QueryEngineOptions,
  ) {
    this.pool = new ScanPool(options.pool);
  }

  /** Regex queries stopped for exceeding the budget. */
  get regexTimeouts(): number {
    return this.pool.timeouts;
  }

  /** Scan jobs that yielded their worker to another client. */
  get preemptions(): number {
    return this.pool.preemptions;
  }

  private unitOf(b: StoreBlock, lo: number, hi: number): Unit {
    let s = this.sources.get(b);
    if (s === undefined) {
      s = memSource(b, this.store.peers.names);
      this.sources.set(b, s);
    }
    return { view: s.view, source: s.source, range: rangeOf(s.view, lo, hi), count: 0, hits: null };
  }

  async run(req: QueryRequest, opts: RunOptions): Promise<QueryResult> {
    const store = this.store;
    const hi = store.nextSeq;
    const recent = 'recent' in req;
    const lo = recent ? Math.max(store.firstSeq, hi - req.recent) : Math.min(hi, Math.max(store.firstSeq, req.fromSeq ?? store.firstSeq));
    const spec = recent ? emptySpec() : req.spec;
    const pinned = store.pin(lo);
    const units = pinned.blocks.map((b) => this.unitOf(b, lo, hi)).filter((u) => u.range.toOrd > u.range.fromOrd);
    const budget = spec.regex ? new Budget(this.options.regexTimeoutMs) : undefined;
    try {
      if (selectsByTimeOnly(spec)) {
        const m = new BlockMatcher(spec);
        for (const u of units) u.count = m.count(u.view, u.range);
      } else {
        await this.count(units, spec, opts, budget);
      }
    } catch (e) {
      pinned.release();
      throw e;
    }
    if (opts.cancelled?.()) {
      pinned.release();
      throw new QueryCancelledError();
    }
    return new StoreResult(this.pool, opts.owner, spec, units, pinned, hi);
  }

  private async count(units: Unit[], spec: QuerySpec, opts: RunOptions, budget: Budget | undefined): Promise<void> {
    const jobs: Unit[][] = [];
    let cur: Unit[] = [];
    let bytes = 0;
    for (const u of units) {
      cur.push(u);
      bytes += u.range.to - u.range.from;
      if (bytes >= JOB_BYTES) {
        jobs.push(cur);
        cur = [];
        bytes = 0;
      }
    }
    if (cur.length > 0) jobs.push(cur);
    const replies = await Promise.all(
      jobs.map((group) =>
        this.pool.submit(
          opts.owner,
          { kind: 'count', spec, units: group.map((u) => ({ source: u.source, range: u.range })), hitLimit: UNIT_HIT_LIMIT },
          { budget, cancelled: opts.cancelled },
        ),
      ),
    );
    let kept = 0;
    replies.forEach((reply, j) => {
      const r = reply as CountReply;
      jobs[j].forEach((u, k) => {
        u.count = r.counts[k];
        const hits = r.hits[k];
        if (hits !== null && u.count > 0 && kept + hits.length <= QUERY_HIT_LIMIT) {
          u.hits = hits;
          kept += hits.length;
        }
      });
    });
  }

  async close(): Promise<void> {
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
    private readonly pinned: PinnedBlocks,
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
      const batch = u.hits !== null ? this.fromHits(u, maxBytes) : this.timeOnly ? this.walk(u, maxBytes) : await this.rescan(u, maxBytes);
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
  private fromHits(u: Unit, maxBytes: number): EntryBatch {
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
  private walk(u: Unit, maxBytes: number): EntryBatch {
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

  /** A unit with many matches: a worker scans the next batch of them. A regex already
   *  finished this unit within its budget while counting: no budget applies here (the
   *  pool still preempts it when other clients wait). */
  private async rescan(u: Unit, maxBytes: number): Promise<EntryBatch> {
    const from = this.pos < 0 ? u.range.from : this.pos;
    const reply = (await this.pool.submit(
      this.owner,
      { kind: 'extract', spec: this.spec, unit: { source: u.source, range: u.range }, from, maxBytes },
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
    this.pinned.release();
  }
}

/** A batch that crossed from a worker arrives with plain Uint8Arrays: make the bytes a Buffer. */
function asBuffers(b: EntryBatch): EntryBatch {
  const bytes = b.bytes as Uint8Array;
  return Buffer.isBuffer(bytes) ? b : { ...b, bytes: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
}
