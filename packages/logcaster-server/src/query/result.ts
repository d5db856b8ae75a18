// The query-result seam between the store and whoever answers a client (the query
// port, the HTTP API): running a query yields its match count first, then an ordered
// pull cursor over the matching entries.
//
//   const res = await engine.run({ spec }, { owner: client });   // count is known here
//   write(`FOUND: ${res.count} matches\n`);
//   for (let b = await res.next(); b.length > 0; b = await res.next()) write(format(b));
//   res.close();                                                  // or when the client leaves
//
// A result pins the store's chunks and journal segments it still has to read and holds
// a sequence range per block, never a copy of the matches: its memory does not grow
// with the store. Pull as fast as the client reads (write backpressure): nothing is
// read ahead beyond one batch.

/** A batch of matching entries, oldest first. Valid until the next next()/close(). */
export interface EntryBatch {
  readonly length: number;
  /** Entry i's bytes are bytes[start[i], end[i]). */
  readonly bytes: Buffer;
  readonly start: Uint32Array;
  readonly end: Uint32Array;
  /** Receive time, ms since the epoch. */
  readonly time: Float64Array;
  /** Peer of entry i: peers[peer[i]]. */
  readonly peer: Uint32Array;
  readonly peers: readonly string[];
}

export interface QueryResult {
  /** Entries the cursor will deliver, fixed before the first one is read. */
  readonly count: number;
  /** The store's next sequence number when the query began: it covers entries before it. */
  readonly endSeq: number;
  /** The next entries in order, about `maxBytes` of line bytes at most (at least one
   *  entry); an empty batch once all `count` were delivered. One call at a time. */
  next(maxBytes?: number): Promise<EntryBatch>;
  /** Releases what the result pins; pending and later next() calls reject with
   *  QueryCancelledError. Idempotent; done implicitly after the last batch. */
  close(): void;
}

export const EMPTY_BATCH: EntryBatch = {
  length: 0,
  bytes: Buffer.alloc(0),
  start: new Uint32Array(0),
  end: new Uint32Array(0),
  time: new Float64Array(0),
  peer: new Uint32Array(0),
  peers: [],
};

export class QueryCancelledError extends Error {
  constructor() {
    super('query cancelled');
  }
}

export class RegexTimeoutError extends Error {
  constructor(readonly ms: number) {
    super(`regex timed out after ${ms} ms`);
  }
}

/** Placeholders before a builder's first entry (never handed out: build() makes its own). */
const NO_BYTES = Buffer.alloc(0);
const NO_U32 = new Uint32Array(0);
const NO_F64 = new Float64Array(0);

/** Collects entries into an EntryBatch. `copy`: the bytes are copied into a buffer of
 *  the batch's own (a worker's reply, transferred); otherwise they stay views of `src`.
 *  Nothing is allocated before the first entry: most scan jobs of a selective query
 *  find none, and a 64 KiB buffer per 1 MiB group read was, in a full-history scan,
 *  tens of MB of transferred garbage waiting for the main thread's GC. */
export class BatchBuilder {
  length = 0;
  bytesUsed = 0;
  private bytes = NO_BYTES;
  private start = NO_U32;
  private end = NO_U32;
  private time = NO_F64;
  private peer = NO_U32;
  private readonly peerIds = new Map<string, number>();
  private readonly peers: string[] = [];
  private src: Buffer | undefined;

  constructor(
    private readonly copy: boolean,
    private readonly expected = 256,
  ) {}

  /** Adds src[s, e). Without `copy`, every entry of a batch must come from one `src`. */
  add(src: Buffer, s: number, e: number, timeMs: number, peer: string): void {
    const i = this.length;
    if (i === this.start.length) this.grow();
    let p = this.peerIds.get(peer);
    if (p === undefined) {
      p = this.peers.length;
      this.peers.push(peer);
      this.peerIds.set(peer, p);
    }
    if (this.copy) {
      const len = e - s;
      if (this.bytesUsed + len > this.bytes.length) {
        const grown = Buffer.allocUnsafe(Math.max(64 * 1024, this.bytes.length * 2, this.bytesUsed + len));
        this.bytes.copy(grown, 0, 0, this.bytesUsed);
        this.bytes = grown;
      }
      src.copy(this.bytes, this.bytesUsed, s, e);
      this.start[i] = this.bytesUsed;
      this.end[i] = this.bytesUsed + len;
      this.bytesUsed += len;
    } else {
      if (this.src !== undefined && this.src !== src) throw new Error('BatchBuilder: entries from two buffers in one view batch');
      this.src = src;
      this.start[i] = s;
      this.end[i] = e;
      this.bytesUsed += e - s;
    }
    this.time[i] = timeMs;
    this.peer[i] = p;
    this.length = i + 1;
  }

  private grow(): void {
    const n = Math.max(16, this.expected, this.start.length * 2);
    const g = <T extends Uint32Array | Float64Array>(a: T, make: (n: number) => T): T => {
      const b = make(n);
      b.set(a);
      return b;
    };
    this.start = g(this.start, (k) => new Uint32Array(k));
    this.end = g(this.end, (k) => new Uint32Array(k));
    this.time = g(this.time, (k) => new Float64Array(k));
    this.peer = g(this.peer, (k) => new Uint32Array(k));
  }

  build(): EntryBatch {
    const n = this.length;
    // fresh empty views, never shared constants: a worker transfers a reply's buffers
    if (n === 0) return { length: 0, bytes: Buffer.alloc(0), start: new Uint32Array(0), end: new Uint32Array(0), time: new Float64Array(0), peer: new Uint32Array(0), peers: this.peers };
    return {
      length: n,
      bytes: this.copy ? this.bytes.subarray(0, this.bytesUsed) : (this.src ?? Buffer.alloc(0)),
      start: this.start.subarray(0, n),
      end: this.end.subarray(0, n),
      time: this.time.subarray(0, n),
      peer: this.peer.subarray(0, n),
      peers: this.peers,
    };
  }
}

