// The in-memory log store: a ring of `capacity` entries whose bytes live in a byte
// arena (a ring of large Buffer chunks) and whose metadata lives in typed arrays —
// no JS object or string per line, so millions of lines cost no GC work.
//
// Chunks are allocated on SharedArrayBuffer so a query worker can read them without
// copying. A chunk that a query snapshot captured is never reused: the snapshot keeps
// reading valid bytes and GC frees the chunk afterwards. A chunk no snapshot saw is
// recycled once evicted — at millions of lines per second, allocating (and zeroing)
// a fresh 4 MiB chunk per 65k lines and leaving the old ones to GC cost both CPU and
// a resident set of over a gigabyte before GC caught up.
//
// A received block can be copied in once (beginBlock); the lines framed from it are
// then recorded as offsets into that copy instead of being copied one by one — a
// per-line Buffer.copy cost more than everything else of the ingest path together.

export interface PeerTable {
  readonly names: readonly string[];
  intern(name: string): number;
}

class Peers implements PeerTable {
  readonly names: string[] = [];
  private readonly ids = new Map<string, number>();
  intern(name: string): number {
    let id = this.ids.get(name);
    if (id === undefined) {
      id = this.names.length;
      this.names.push(name);
      this.ids.set(name, id);
    }
    return id;
  }
}

/** A consistent, immutable view of a range of entries, for queries. */
export interface Snapshot {
  count: number;
  /** Sequence number of entry 0 of the snapshot. */
  firstSeq: number;
  chunks: Buffer[];
  /** Per entry: index into `chunks`, offset, length, receive time (ms), peer id. */
  chunk: Uint32Array;
  off: Uint32Array;
  len: Uint32Array;
  time: Float64Array;
  peer: Uint32Array;
  peers: readonly string[];
}

export const DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024;

function sharedBuffer(size: number): Buffer {
  return Buffer.from(new SharedArrayBuffer(size));
}

function sharedU32(n: number): Uint32Array {
  return new Uint32Array(new SharedArrayBuffer(Math.max(1, n) * 4));
}

function sharedF64(n: number): Float64Array {
  return new Float64Array(new SharedArrayBuffer(Math.max(1, n) * 8));
}

export class LogStore {
  readonly capacity: number;
  readonly peers: PeerTable = new Peers();
  private readonly chunkSize: number;
  // per slot (seq % capacity)
  private readonly chunkNo: Float64Array;
  private readonly offs: Uint32Array;
  private readonly lens: Uint32Array;
  private readonly times: Float64Array;
  private readonly peerIds: Uint32Array;
  // chunks[k] holds chunk number firstChunk + k
  private chunks: Buffer[] = [];
  private firstChunk = 0;
  /** Evicted chunks no snapshot captured, ready for reuse. */
  private spare: Buffer[] = [];
  /** Live chunks some snapshot captured (never reused). */
  private captured = new Set<Buffer>();
  /** The block copied by beginBlock: its source range and where it landed. */
  private blockSrc: Uint8Array | undefined;
  private blockStart = 0;
  private blockEnd = 0;
  private blockOff = 0;
  private cur: Buffer | undefined;
  private curNo = -1;
  private curOff = 0;
  /** Oldest live sequence number, and the next one to be assigned. */
  private head = 0;
  private tail = 0;
  /** Entries ever stored. */
  total = 0;
  /** Entries evicted because the ring was full. */
  dropped = 0;
  /** Bytes of live entries. */
  bytes = 0;

  /** `maxEntryBytes` is the largest entry ever appended (max line + marker); chunks are
   *  at least that big. */
  constructor(capacity: number, maxEntryBytes = 65536, chunkSize = DEFAULT_CHUNK_SIZE) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
    this.chunkSize = Math.max(chunkSize, maxEntryBytes);
    this.chunkNo = new Float64Array(capacity);
    this.offs = new Uint32Array(capacity);
    this.lens = new Uint32Array(capacity);
    this.times = new Float64Array(capacity);
    this.peerIds = new Uint32Array(capacity);
  }

  get size(): number {
    return this.tail - this.head;
  }
  get firstSeq(): number {
    return this.head;
  }
  get nextSeq(): number {
    return this.tail;
  }
  /** Bytes held by the arena (live chunks), including slack. */
  get arenaBytes(): number {
    return this.chunks.length * this.chunkSize;
  }

  /** Copy bytes [start, end) of src into the arena in one piece: until endBlock(),
   *  appends of ranges inside it record where they are instead of copying. */
  beginBlock(src: Uint8Array, start: number, end: number): void {
    const len = end - start;
    if (len <= 0 || len > this.chunkSize) return;
    if (this.cur === undefined || this.curOff + len > this.cur.length) this.newChunk(len);
    this.cur!.set(src.subarray(start, end), this.curOff);
    this.blockSrc = src;
    this.blockStart = start;
    this.blockEnd = end;
    this.blockOff = this.curOff;
    this.curOff += len;
  }

  endBlock(): void {
    this.blockSrc = undefined;
  }

  /** Store bytes [start, end) of src, followed by `tail` if given. Returns the seq. */
  append(src: Uint8Array, start: number, end: number, timeMs: number, peer: number, tail?: Uint8Array): number {
    const len = end - start + (tail ? tail.length : 0);
    if (this.tail - this.head === this.capacity) this.evictOldest();
    let off: number;
    if (src === this.blockSrc && !tail && start >= this.blockStart && end <= this.blockEnd) {
      off = this.blockOff + (start - this.blockStart);  // already in the arena
    } else {
      if (this.cur === undefined || this.curOff + len > this.cur.length) this.newChunk(len);
      const chunk = this.cur!;
      off = this.curOff;
      chunk.set(src.subarray(start, end), off);
      if (tail) chunk.set(tail, off + end - start);
      this.curOff = off + len;
    }
    const seq = this.tail++;
    const slot = seq % this.capacity;
    this.chunkNo[slot] = this.curNo;
    this.offs[slot] = off;
    this.lens[slot] = len;
    this.times[slot] = timeMs;
    this.peerIds[slot] = peer;
    this.total++;
    this.bytes += len;
    return seq;
  }

  private newChunk(minLen: number): void {
    // Entries must reference chunks in order (eviction releases every chunk before the
    // oldest entry's), so a block cannot be used once a newer chunk exists.
    this.blockSrc = undefined;
    const size = Math.max(this.chunkSize, minLen);
    const reuse = size === this.chunkSize ? this.spare.pop() : undefined;
    this.cur = reuse ?? sharedBuffer(size);
    this.curNo++;
    this.curOff = 0;
    if (this.chunks.length === 0) this.firstChunk = this.curNo;
    this.chunks.push(this.cur);
  }

  private evictOldest(): void {
    const slot = this.head % this.capacity;
    this.bytes -= this.lens[slot];
    this.head++;
    this.dropped++;
    this.releaseChunksBefore(this.head < this.tail ? this.chunkNo[this.head % this.capacity] : this.curNo);
  }

  private releaseChunksBefore(no: number): void {
    let n = 0;
    while (this.firstChunk + n < no && n < this.chunks.length) n++;
    if (n > 0) {
      for (const chunk of this.chunks.splice(0, n)) this.recycle(chunk);
      this.firstChunk += n;
    }
  }

  private recycle(chunk: Buffer): void {
    if (this.captured.delete(chunk)) return;  // a snapshot may still read it: GC frees it
    if (chunk.length === this.chunkSize && this.spare.length < 2) this.spare.push(chunk);
  }

  private check(seq: number): number {
    if (seq < this.head || seq >= this.tail) throw new RangeError(`entry ${seq} is not in the store (${this.head}..${this.tail - 1})`);
    return seq % this.capacity;
  }

  /** A view of the entry's bytes (valid until the entry is evicted). */
  line(seq: number): Buffer {
    const slot = this.check(seq);
    const chunk = this.chunks[this.chunkNo[slot] - this.firstChunk];
    return chunk.subarray(this.offs[slot], this.offs[slot] + this.lens[slot]);
  }
  time(seq: number): number {
    return this.times[this.check(seq)];
  }
  peer(seq: number): string {
    return this.peers.names[this.peerIds[this.check(seq)]];
  }

  /** Remove every entry. Returns how many were removed. */
  clear(): number {
    const n = this.size;
    this.head = this.tail;
    this.bytes = 0;
    this.chunks = [];
    this.captured.clear();
    this.blockSrc = undefined;
    this.cur = undefined;
    this.firstChunk = this.curNo + 1;
    return n;
  }

  /** Copy the metadata of the newest `max` entries (or all) into a snapshot that stays
   *  valid however the store changes afterwards. */
  snapshot(max = Infinity): Snapshot {
    const count = Math.min(this.size, max);
    const first = this.tail - count;
    const chunk = sharedU32(count);
    const off = sharedU32(count);
    const len = sharedU32(count);
    const time = sharedF64(count);
    const peer = sharedU32(count);
    let base = 0;
    let chunks: Buffer[] = [];
    if (count > 0) {
      base = this.chunkNo[first % this.capacity];
      chunks = this.chunks.slice(base - this.firstChunk);
      for (const c of chunks) this.captured.add(c);
    }
    const cap = this.capacity;
    // Copy in at most two contiguous runs of the ring.
    let i = 0;
    while (i < count) {
      const slot = (first + i) % cap;
      const run = Math.min(count - i, cap - slot);
      off.set(this.offs.subarray(slot, slot + run), i);
      len.set(this.lens.subarray(slot, slot + run), i);
      time.set(this.times.subarray(slot, slot + run), i);
      peer.set(this.peerIds.subarray(slot, slot + run), i);
      for (let k = 0; k < run; k++) chunk[i + k] = this.chunkNo[slot + k] - base;
      i += run;
    }
    return { count, firstSeq: first, chunks, chunk, off, len, time, peer, peers: this.peers.names.slice() };
  }
}

/** Bytes of entry i of a snapshot (a view). */
export function snapshotLine(s: Snapshot, i: number): Buffer {
  const o = s.off[i];
  return s.chunks[s.chunk[i]].subarray(o, o + s.len[i]);
}
