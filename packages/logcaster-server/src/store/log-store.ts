// The in-memory log store: the newest `capacity` entries, as blocks (block.ts) whose
// bytes live in a ring of large shared chunks and whose per-entry metadata lives in
// typed arrays — no JS object or string per line, so millions of lines cost no GC work.
//
// Bytes are laid out as the block format says: each line followed by '\n', in sequence
// order. A received packet's lines are copied in one piece: lines that follow each other
// in the packet, separated by exactly one '\n', form a *run copy* that is copied once
// when the packet has been framed (endBlock) — a per-line Buffer.copy cost more than
// everything else of the ingest path together. Other lines (a line completed from the
// previous packet, CRLF lines, octet-counted frames, truncated lines with their marker)
// are copied one by one.
//
// Chunks are SharedArrayBuffers so scan workers read them without copying. A query pins
// the chunks it will read (Chunk.pins) and keeps a frozen view of their blocks; an
// evicted chunk is reused only once nothing pins it, so a query holds the bytes it
// counted, never a copy of the index. Reusing evicted chunks matters: allocating (and
// zeroing) a fresh 4 MiB chunk per 65k lines and leaving the old ones to GC cost both
// CPU and a resident set of over a gigabyte before GC caught up.
//
// So a chunk of the standard size is never left to GC: every one released goes back to
// the pool, which therefore holds the peak of chunks live at once (the window, the
// journal's write backlog, what queries pin), not a count that grows with traffic. A
// SharedArrayBuffer that has crossed to a worker (the journal writer, a scan) is freed
// only by a GC in every thread that saw it, and its size does not make V8 collect: with
// at most 8 spares kept, 65M journaled lines left ~250 dropped chunks (1 GB) resident.

import { NL, type Runs } from './block';

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

export const DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024;
/** A block is sealed once its bytes reach this size (the unit of a scan job). */
export const BLOCK_BYTES = 1024 * 1024;

/** A shared byte chunk of the arena. */
export class Chunk {
  /** Queries (and journal writes) that still read this chunk. */
  pins = 0;
  /** No live entry is in it any more: reused (or left to GC) once unpinned. */
  released = false;
  constructor(readonly buf: Buffer) {}
}

/** An immutable view of a block of the store: lines [firstSeq, firstSeq + count) in
 *  chunk.buf[start, end). Runs' peers are ids in the store's peer table. */
export interface StoreBlock {
  readonly chunk: Chunk;
  readonly start: number;
  readonly end: number;
  readonly firstSeq: number;
  readonly count: number;
  readonly runs: Runs;
  readonly lineEnds: Uint32Array | undefined;
  readonly minTime: number;
  readonly maxTime: number;
}

/** The block being filled. Offsets in runs and lineEnds are relative to `start`. */
class OpenBlock {
  count = 0;
  end: number;
  minTime = Infinity;
  maxTime = -Infinity;
  runOff: number[] = [];
  runLines: number[] = [];
  runTime: number[] = [];
  runPeer: number[] = [];
  lineEnds: number[] | undefined;
  private frozen: StoreBlock | undefined;
  constructor(
    readonly chunk: Chunk,
    readonly start: number,
    readonly firstSeq: number,
  ) {
    this.end = start;
  }

  /** The block as it is now (cached until it changes). */
  freeze(): StoreBlock {
    const f = this.frozen;
    if (f !== undefined && f.count === this.count) return f;
    const runs: Runs = {
      off: Uint32Array.from(this.runOff),
      lines: Uint32Array.from(this.runLines),
      time: Float64Array.from(this.runTime),
      peer: Uint32Array.from(this.runPeer),
    };
    this.frozen = {
      chunk: this.chunk,
      start: this.start,
      end: this.end,
      firstSeq: this.firstSeq,
      count: this.count,
      runs,
      lineEnds: this.lineEnds ? Uint32Array.from(this.lineEnds) : undefined,
      minTime: this.minTime,
      maxTime: this.maxTime,
    };
    return this.frozen;
  }
}

function sharedBuffer(size: number): Buffer {
  return Buffer.from(new SharedArrayBuffer(size));
}

/** Lines [firstSeq, firstSeq + count) of one block, handed to a recorder (the journal)
 *  once: bytes chunk.buf[start, end), runs and lineEnds relative to `start`, runs' peers
 *  ids in the store's peer table. The chunk stays pinned until release(). */
export interface RecordRange extends StoreBlock {
  release(): void;
}

/** Blocks pinned for one reader; release() once done (idempotent). */
export interface PinnedBlocks {
  readonly blocks: readonly StoreBlock[];
  release(): void;
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
  private chunks: Chunk[] = [];
  private firstChunk = 0;
  /** Released, unpinned chunks ready for reuse. */
  private spare: Chunk[] = [];
  private sealed: StoreBlock[] = [];
  private sealedHead = 0;
  private open: OpenBlock | undefined;
  private cur: Chunk | undefined;
  private curNo = -1;
  private curOff = 0;
  /** The packet given to beginBlock (valid until endBlock), and the pending run copy:
   *  bytes src[runSrcStart, runSrcEnd) go to cur.buf[runDest...] at flushRun(). */
  private blockSrc: Uint8Array | undefined;
  private blockSrcEnd = 0;
  private runActive = false;
  private runSrcStart = 0;
  private runSrcEnd = 0;
  private runDest = 0;
  /** Time and peer of the open block's last run. */
  private runTime = NaN;
  private runPeer = -1;
  /** Receives every line once, in order, a range of a block at a time (cut()). */
  private recorder: ((r: RecordRange) => void) | undefined;
  private cutScheduled = false;
  /** In the open block: lines, bytes and runs already handed to the recorder. */
  private recLines = 0;
  private recOff = 0;
  private recRun = 0;
  private recRunUsed = 0;
  /** Oldest live sequence number, and the next one to be assigned. */
  private head: number;
  private tail: number;
  /** Entries ever stored. */
  total = 0;
  /** Entries evicted because the ring was full. */
  dropped = 0;
  /** Bytes of live entries. */
  bytes = 0;
  /** Bytes of the standard chunks allocated (in use or pooled): they are never freed, so
   *  this is the store's share of the resident set. */
  allocatedBytes = 0;

  /** `maxEntryBytes` is the largest entry ever appended (max line + marker); chunks are
   *  at least that big. `firstSeq` numbers the first entry (a journal continues its own). */
  constructor(capacity: number, maxEntryBytes = 65536, chunkSize = DEFAULT_CHUNK_SIZE, firstSeq = 0) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
    this.chunkSize = Math.max(chunkSize, maxEntryBytes + 1);
    this.chunkNo = new Float64Array(capacity);
    this.offs = new Uint32Array(capacity);
    this.lens = new Uint32Array(capacity);
    this.times = new Float64Array(capacity);
    this.peerIds = new Uint32Array(capacity);
    this.head = this.tail = firstSeq;
  }

  /** Number the next entry `seq` (a journal's next sequence); only while empty. */
  startAt(seq: number): void {
    if (this.size !== 0) throw new Error('LogStore.startAt: the store holds entries');
    this.head = this.tail = seq;
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
    let n = 0;
    for (const c of this.chunks) n += c.buf.length;
    return n;
  }

  /** Lines appended until endBlock() that lie in src[start, end) and follow each other
   *  there after exactly one '\n' are copied together at endBlock(). Such a line must not
   *  contain '\n' itself (newline framing guarantees it; an octet-counted frame is never
   *  preceded by '\n' in its packet). src must stay unchanged until endBlock(). */
  beginBlock(src: Uint8Array, start: number, end: number): void {
    this.flushRun();
    this.blockSrc = src;
    this.blockSrcEnd = Math.min(end, src.length);
    if (start < 0 || start > this.blockSrcEnd) throw new RangeError('beginBlock: bad range');
  }

  endBlock(): void {
    this.flushRun();
    this.blockSrc = undefined;
  }

  /** Store bytes [start, end) of src, followed by `tail` if given. Returns the seq. */
  append(src: Uint8Array, start: number, end: number, timeMs: number, peer: number, tail?: Uint8Array): number {
    const len = end - start + (tail ? tail.length : 0);
    if (this.tail - this.head === this.capacity) this.evictOldest();
    let off: number;
    const open = this.open;
    if (
      this.runActive &&
      src === this.blockSrc &&
      tail === undefined &&
      start === this.runSrcEnd + 1 &&
      src[this.runSrcEnd] === NL &&
      end <= this.blockSrcEnd &&
      this.runDest + (end - this.runSrcStart) < this.cur!.buf.length &&
      this.runDest + (end - this.runSrcStart) + 1 - open!.start <= BLOCK_BYTES
    ) {
      off = this.runDest + (start - this.runSrcStart);
      this.runSrcEnd = end;
      this.curOff = off + len + 1;
    } else {
      off = this.place(src, start, end, tail, len);
    }
    const block = this.open!;
    if (timeMs !== this.runTime || peer !== this.runPeer || block.count === 0) {
      block.runOff.push(off - block.start);
      block.runLines.push(0);
      block.runTime.push(timeMs);
      block.runPeer.push(peer);
      this.runTime = timeMs;
      this.runPeer = peer;
      if (timeMs < block.minTime) block.minTime = timeMs;
      if (timeMs > block.maxTime) block.maxTime = timeMs;
    }
    block.runLines[block.runLines.length - 1]++;
    block.count++;
    block.end = this.curOff;
    if (block.lineEnds) block.lineEnds.push(off + len - block.start);
    const seq = this.tail++;
    const slot = seq % this.capacity;
    this.chunkNo[slot] = this.curNo;
    this.offs[slot] = off;
    this.lens[slot] = len;
    this.times[slot] = timeMs;
    this.peerIds[slot] = peer;
    this.total++;
    this.bytes += len;
    if (this.recorder !== undefined && !this.cutScheduled) {
      this.cutScheduled = true;
      setImmediate(this.cutLater);
    }
    return seq;
  }

  /** Finds room for a line that does not continue the pending run; copies it, or starts
   *  a new run with it. Returns its offset in the current chunk. */
  private place(src: Uint8Array, start: number, end: number, tail: Uint8Array | undefined, len: number): number {
    this.flushRun();
    const hasNl = tail === undefined ? lineHasNl(src, start, end) : lineHasNl(src, start, end) || tail.includes(NL);
    const open = this.open;
    if (this.cur === undefined || this.curOff + len + 1 > this.cur.buf.length) {
      this.newChunk(len + 1);
    } else if (open === undefined || (open.count > 0 && (this.curOff + len + 1 - open.start > BLOCK_BYTES || (hasNl && open.lineEnds === undefined)))) {
      this.startBlock();
    }
    const block = this.open!;
    if (hasNl && block.lineEnds === undefined) block.lineEnds = [];
    const off = this.curOff;
    const buf = this.cur!.buf;
    if (tail === undefined && src === this.blockSrc && end <= this.blockSrcEnd && !hasNl) {
      this.runActive = true;
      this.runSrcStart = start;
      this.runSrcEnd = end;
      this.runDest = off;
    } else {
      buf.set(src.subarray(start, end), off);
      if (tail) buf.set(tail, off + end - start);
      buf[off + len] = NL;
    }
    this.curOff = off + len + 1;
    return off;
  }

  private flushRun(): void {
    if (!this.runActive) return;
    this.runActive = false;
    const buf = this.cur!.buf;
    buf.set(this.blockSrc!.subarray(this.runSrcStart, this.runSrcEnd), this.runDest);
    buf[this.runDest + this.runSrcEnd - this.runSrcStart] = NL;
  }

  /** Seal the open block (if it holds anything) and open a new one at curOff. */
  private startBlock(): void {
    const open = this.open;
    if (open !== undefined && open.count > 0) {
      this.cut();
      this.sealed.push(open.freeze());
    }
    this.open = new OpenBlock(this.cur!, this.curOff, this.tail);
    this.recLines = this.recRun = this.recRunUsed = 0;
    this.recOff = this.curOff;
  }

  /** Every line appended from now on goes to `fn`, once (see cut()). */
  setRecorder(fn: (r: RecordRange) => void): void {
    this.recorder = fn;
    this.recLines = this.open?.count ?? 0;
    this.recOff = this.open?.end ?? 0;
    this.recRun = Math.max(0, (this.open?.runLines.length ?? 1) - 1);
    this.recRunUsed = this.open?.runLines[this.recRun] ?? 0;
  }

  private readonly cutLater = (): void => {
    this.cutScheduled = false;
    this.cut();
  };

  /** Hand the lines of the open block appended since the last cut to the recorder (done
   *  at the end of every turn that appended, and when a block is sealed). */
  cut(): void {
    const b = this.open;
    if (this.recorder === undefined || b === undefined || b.count === this.recLines) return;
    this.flushRun();
    // The run the last cut ended in, if it got no more lines since, is not part of this one.
    const skip = b.runLines[this.recRun] === this.recRunUsed ? 1 : 0;
    const firstRun = this.recRun + skip;
    const used = skip ? 0 : this.recRunUsed;
    const nRuns = b.runOff.length - firstRun;
    const runs: Runs = { off: new Uint32Array(nRuns), lines: new Uint32Array(nRuns), time: new Float64Array(nRuns), peer: new Uint32Array(nRuns) };
    let minTime = Infinity;
    let maxTime = -Infinity;
    const base = this.recOff - b.start;
    for (let i = 0; i < nRuns; i++) {
      const r = firstRun + i;
      runs.off[i] = i === 0 ? 0 : b.runOff[r] - base;
      runs.lines[i] = b.runLines[r] - (i === 0 ? used : 0);
      runs.time[i] = b.runTime[r];
      runs.peer[i] = b.runPeer[r];
      if (b.runTime[r] < minTime) minTime = b.runTime[r];
      if (b.runTime[r] > maxTime) maxTime = b.runTime[r];
    }
    let lineEnds: Uint32Array | undefined;
    if (b.lineEnds) {
      lineEnds = new Uint32Array(b.count - this.recLines);
      for (let i = 0; i < lineEnds.length; i++) lineEnds[i] = b.lineEnds[this.recLines + i] - base;
    }
    const chunk = b.chunk;
    chunk.pins++;
    let released = false;
    const range: RecordRange = {
      chunk,
      start: this.recOff,
      end: b.end,
      firstSeq: b.firstSeq + this.recLines,
      count: b.count - this.recLines,
      runs,
      lineEnds,
      minTime,
      maxTime,
      release: () => {
        if (released) return;
        released = true;
        this.unpin(chunk);
      },
    };
    this.recLines = b.count;
    this.recOff = b.end;
    this.recRun = b.runLines.length - 1;
    this.recRunUsed = b.runLines[this.recRun];
    this.recorder(range);
  }

  private newChunk(minLen: number): void {
    const size = Math.max(this.chunkSize, minLen);
    const reuse = size === this.chunkSize ? this.spare.pop() : undefined;
    if (reuse) reuse.released = false;
    else if (size === this.chunkSize) this.allocatedBytes += size;
    this.cur = reuse ?? new Chunk(sharedBuffer(size));
    this.curNo++;
    this.curOff = 0;
    if (this.chunks.length === 0) this.firstChunk = this.curNo;
    this.chunks.push(this.cur);
    this.startBlock();
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
    if (n === 0) return;
    for (const chunk of this.chunks.splice(0, n)) {
      chunk.released = true;
      if (chunk.pins === 0) this.recycle(chunk);
    }
    this.firstChunk += n;
    // Blocks live in chunk order: drop those whose chunk went.
    const s = this.sealed;
    let h = this.sealedHead;
    while (h < s.length && s[h].chunk.released) h++;
    if (h > 64 && h * 2 > s.length) {
      this.sealed = s.slice(h);
      h = 0;
    }
    this.sealedHead = h;
  }

  /** Chunks of the standard size all go back to the pool (see the top of this file); a
   *  larger one, made for an entry over maxEntryBytes (Journal.append's lines), goes to GC. */
  private recycle(chunk: Chunk): void {
    if (chunk.buf.length === this.chunkSize) this.spare.push(chunk);
  }

  /** Pin the blocks holding entries [fromSeq, nextSeq) (fromSeq clamped to the oldest
   *  live entry) so their bytes stay valid until release(). */
  pin(fromSeq = this.head): PinnedBlocks {
    this.flushRun();
    const from = Math.max(fromSeq, this.head);
    const blocks: StoreBlock[] = [];
    if (from < this.tail) {
      const s = this.sealed;
      for (let i = this.sealedHead; i < s.length; i++) if (s[i].firstSeq + s[i].count > from) blocks.push(s[i]);
      if (this.open !== undefined && this.open.count > 0) blocks.push(this.open.freeze());
    }
    const chunks = new Set<Chunk>();
    for (const b of blocks) chunks.add(b.chunk);
    for (const c of chunks) c.pins++;
    let released = false;
    return {
      blocks,
      release: () => {
        if (released) return;
        released = true;
        for (const c of chunks) this.unpin(c);
      },
    };
  }

  private unpin(c: Chunk): void {
    c.pins--;
    if (c.pins === 0 && c.released) this.recycle(c);
  }

  private check(seq: number): number {
    if (seq < this.head || seq >= this.tail) throw new RangeError(`entry ${seq} is not in the store (${this.head}..${this.tail - 1})`);
    return seq % this.capacity;
  }

  /** A view of the entry's bytes (valid until the entry is evicted). */
  line(seq: number): Buffer {
    const slot = this.check(seq);
    this.flushRun();
    const chunk = this.chunks[this.chunkNo[slot] - this.firstChunk];
    return chunk.buf.subarray(this.offs[slot], this.offs[slot] + this.lens[slot]);
  }
  time(seq: number): number {
    return this.times[this.check(seq)];
  }
  peer(seq: number): string {
    return this.peers.names[this.peerIds[this.check(seq)]];
  }

  /** Remove every entry. Returns how many were removed. */
  clear(): number {
    this.cut();
    this.flushRun();
    const n = this.size;
    this.head = this.tail;
    this.bytes = 0;
    for (const chunk of this.chunks) {
      chunk.released = true;
      if (chunk.pins === 0) this.recycle(chunk);
    }
    this.chunks = [];
    this.sealed = [];
    this.sealedHead = 0;
    this.open = undefined;
    this.blockSrc = undefined;
    this.cur = undefined;
    this.firstChunk = this.curNo + 1;
    return n;
  }
}

/** Whether src[start, end) contains '\n' (searching only that range). */
function lineHasNl(src: Uint8Array, start: number, end: number): boolean {
  return end > start && src.subarray(start, end).indexOf(NL) >= 0;
}
