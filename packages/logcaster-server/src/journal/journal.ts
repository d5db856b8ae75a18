/**
 * LogCaster persistence journal: append-only, CRC-checked, rotated segment files.
 *
 * Hot path: `append()` encodes the record straight into one growable Buffer (no per-line objects);
 * the buffer is written with one positional `fs.writeSync` per event-loop turn (setImmediate
 * coalesced, or earlier once HIGH_WATER bytes are pending, so a single write stays small).
 * fsync always runs on the libuv threadpool (`fs.fdatasync` callback); only `close()` syncs on
 * the main thread. See JOURNAL.md for the file format and the durability contract.
 */
import * as fs from 'fs';
import * as path from 'path';
import { crc32 } from './crc32';
import {
  BODY_FIXED, FILE_MAGIC, HEADER_SIZE, MAX_BODY, MAX_PEER, RECORD_MARKER, RECORD_PREFIX, SEGMENT_RE,
  decodeHeader, encodeHeader, readU64, scanSegment, segmentName, writeU64,
} from './format';

export type FsyncPolicy = 'never' | 'interval' | 'always';

export interface JournalOptions {
  dir: string;
  /** rotate before a record would make the current segment exceed this many bytes */
  rotateSize: number;
  /** segment files kept, including the one being written (oldest deleted first) */
  maxFiles: number;
  fsync: FsyncPolicy;
  /** for 'interval' (default 1000) */
  fsyncIntervalMs?: number;
}

export interface JournalStats {
  /** records handed to the OS by this Journal since open */
  persistedLines: number;
  /** bytes (framing included) handed to the OS by this Journal since open */
  persistedBytes: number;
  /** segment files currently in the directory */
  files: number;
  /** damaged regions skipped or truncated (torn tails, bad CRCs) seen at open and in replay */
  tornRecordsSkipped: number;
  /** fdatasync/fsync calls issued on segment files */
  fsyncs: number;
}

/** Everything in JournalStats plus diagnostics. */
export interface JournalDetailedStats extends JournalStats {
  /** bytes of damaged data skipped or truncated */
  corruptBytesSkipped: number;
  /** lines accepted after an I/O failure and therefore not persisted */
  droppedLines: number;
  bufferedBytes: number;
  lastSeq: number;
  writtenSeq: number;
  durableSeq: number;
  replayedLines: number;
}

interface Segment {
  no: number;
  file: string;
}

const POLICIES: readonly FsyncPolicy[] = ['never', 'interval', 'always'];
const INITIAL_BUFFER = 256 * 1024;
/** Write out inline once this much is pending, so one writeSync never carries a huge burst. */
const HIGH_WATER = 1024 * 1024;
/** Give back memory after an exceptionally large record. */
const SHRINK_ABOVE = 8 * 1024 * 1024;
const MAX_LINE = MAX_BODY - BODY_FIXED - MAX_PEER;
const TWO32 = 0x100000000;

function noop(): void { /* ignore */ }

/** A file shorter than a header that starts like one (or is empty): a header write cut short. */
function isMagicPrefix(img: Buffer): boolean {
  const n = Math.min(img.length, FILE_MAGIC.length);
  return img.subarray(0, n).equals(FILE_MAGIC.subarray(0, n));
}

export class Journal {
  private readonly dir: string;
  private readonly rotateSize: number;
  private readonly maxFiles: number;
  private readonly policy: FsyncPolicy;
  private readonly intervalMs: number;

  private segments: Segment[] = [];
  private fd = -1;
  private dirFd = -1;
  private segNo = 0;
  /** file offset where the next buffered byte goes */
  private filePos = 0;
  /** bytes in the current segment, pending buffer included */
  private segBytes = 0;
  /** fds of finished segments awaiting their final fsync (sync policies) */
  private retiring: number[] = [];
  private dirDirty = false;

  private buf: Buffer = Buffer.allocUnsafe(INITIAL_BUFFER);
  private len = 0;
  private bufLines = 0;

  private seq = 0;
  private writtenSeq = 0;
  private syncedSeq = 0;
  private ackedSeq = 0;

  private lastPeer = '';
  private lastPeerBytes: Buffer = Buffer.alloc(0);

  private immediate: NodeJS.Immediate | null = null;
  private timer: NodeJS.Timeout | null = null;
  private syncing = false;
  private syncWaiters: Array<() => void> = [];
  private durableCbs: Array<(seq: number) => void> = [];
  private errorCbs: Array<(err: Error) => void> = [];
  private closing = false;
  private closed = false;
  private closePromise: Promise<void> | null = null;
  private failure: Error | null = null;

  /** segments whose damaged regions were already counted in stats */
  private counted = new Set<number>();
  /** damaged regions repaired (truncated) at open, reported by the first replay */
  private repairedAtOpen = 0;

  private s = {
    persistedLines: 0, persistedBytes: 0, tornRecordsSkipped: 0, fsyncs: 0,
    corruptBytesSkipped: 0, droppedLines: 0, replayedLines: 0,
  };

  private constructor(opts: JournalOptions) {
    if (!opts || typeof opts.dir !== 'string' || opts.dir === '') throw new TypeError('journal: dir required');
    if (!POLICIES.includes(opts.fsync)) throw new TypeError(`journal: fsync must be one of ${POLICIES.join(', ')}`);
    if (!(opts.rotateSize >= HEADER_SIZE + 64)) throw new RangeError(`journal: rotateSize must be >= ${HEADER_SIZE + 64}`);
    if (!(Number.isInteger(opts.maxFiles) && opts.maxFiles >= 1)) throw new RangeError('journal: maxFiles must be an integer >= 1');
    const iv = opts.fsyncIntervalMs ?? 1000;
    if (!(iv > 0)) throw new RangeError('journal: fsyncIntervalMs must be > 0');
    this.dir = path.resolve(opts.dir);
    this.rotateSize = opts.rotateSize;
    this.maxFiles = opts.maxFiles;
    this.policy = opts.fsync;
    this.intervalMs = iv;
  }

  /** Creates `dir`, scans existing segments, repairs a torn tail of the newest one. */
  static open(opts: JournalOptions): Journal {
    const j = new Journal(opts);
    j.init();
    return j;
  }

  private init(): void {
    fs.mkdirSync(this.dir, { recursive: true });
    try {
      this.dirFd = fs.openSync(this.dir, 'r');
    } catch {
      this.dirFd = -1; // platforms without directory fds: skip directory fsync
    }
    const segs: Segment[] = [];
    for (const name of fs.readdirSync(this.dir)) {
      const m = SEGMENT_RE.exec(name);
      if (m) segs.push({ no: Number(m[1]), file: path.join(this.dir, name) });
    }
    segs.sort((a, b) => a.no - b.no);
    this.segments = segs;

    const last = segs[segs.length - 1];
    let reuse = false;
    if (last !== undefined) {
      const img = fs.readFileSync(last.file);
      const hdr = decodeHeader(img);
      if (hdr !== null) {
        const scan = scanSegment(img, HEADER_SIZE);
        this.countDamage(last.no, scan.corruptRegions, scan.corruptBytes);
        if (scan.tornTail) this.repairedAtOpen++;
        this.seq = scan.records > 0 ? scan.lastSeq : Math.max(0, hdr.firstSeq - 1);
        this.fd = fs.openSync(last.file, 'r+');
        if (scan.goodEnd < img.length) fs.ftruncateSync(this.fd, scan.goodEnd);
        this.segNo = last.no;
        this.filePos = this.segBytes = scan.goodEnd;
        reuse = true;
      } else if (img.length < HEADER_SIZE && isMagicPrefix(img)) {
        // Crash while the header was being written: nothing else can be in there.
        this.seq = this.lastSeqBefore(segs.length - 1);
        this.fd = fs.openSync(last.file, 'r+');
        fs.ftruncateSync(this.fd, 0);
        const h = encodeHeader(last.no, this.seq + 1);
        fs.writeSync(this.fd, h, 0, h.length, 0);
        this.segNo = last.no;
        this.filePos = this.segBytes = HEADER_SIZE;
        reuse = true;
      } else {
        // Not a segment we can append to; leave it for inspection, count it, and move on.
        this.countDamage(last.no, 1, img.length);
        this.seq = this.lastSeqBefore(segs.length - 1);
      }
    }
    if (!reuse) this.createSegment((last?.no ?? 0) + 1, this.seq + 1);
    this.writtenSeq = this.syncedSeq = this.ackedSeq = this.seq;
    this.enforceRetention();
    if (this.policy === 'interval') {
      this.timer = setInterval(() => this.startSync(), this.intervalMs);
      this.timer.unref();
    }
  }

  /** Highest sequence stored in segments[0, idx), reading newest first. */
  private lastSeqBefore(idx: number): number {
    for (let i = idx - 1; i >= 0; i--) {
      let img: Buffer;
      try { img = fs.readFileSync(this.segments[i].file); } catch { continue; }
      const hdr = decodeHeader(img);
      if (hdr === null) continue;
      const scan = scanSegment(img, HEADER_SIZE);
      if (scan.records > 0) return scan.lastSeq;
      if (hdr.firstSeq > 1) return hdr.firstSeq - 1;
    }
    return 0;
  }

  private countDamage(segNo: number, regions: number, bytes: number): void {
    if (regions === 0 || this.counted.has(segNo)) return;
    this.counted.add(segNo);
    this.s.tornRecordsSkipped += regions;
    this.s.corruptBytesSkipped += bytes;
  }

  private createSegment(no: number, firstSeq: number): void {
    const file = path.join(this.dir, segmentName(no));
    const fd = fs.openSync(file, 'wx');
    const h = encodeHeader(no, firstSeq);
    fs.writeSync(fd, h, 0, h.length, 0);
    this.fd = fd;
    this.segNo = no;
    this.filePos = this.segBytes = HEADER_SIZE;
    this.segments.push({ no, file });
    this.dirDirty = true;
  }

  private enforceRetention(): void {
    while (this.segments.length > this.maxFiles) {
      const old = this.segments.shift()!;
      try { fs.unlinkSync(old.file); } catch { /* already gone */ }
      this.counted.delete(old.no);
      this.dirDirty = true;
    }
  }

  private rotate(): void {
    this.writeOut();
    if (this.failure !== null) return;
    const old = this.fd;
    try {
      // seq was already incremented for the record that triggers the rotation
      this.createSegment(this.segNo + 1, this.seq);
    } catch (e) {
      this.fail(e as Error);
      return;
    }
    if (this.policy === 'never') fs.close(old, noop);
    else this.retiring.push(old);
    this.enforceRetention();
    // 'interval': make the finished segment durable (and release its fd) now, not a tick later
    if (this.policy === 'interval') this.startSync();
  }

  // ---------------------------------------------------------------- replay

  /**
   * Delivers the newest `max` intact records, oldest first. Damaged regions are skipped and
   * counted, never thrown. `line` is a view into a buffer private to this call's file image;
   * it is never overwritten, so it may be retained (copy it to avoid pinning the image).
   */
  replay(
    max: number,
    onEntry: (timeMs: number, peer: string, line: Buffer, seq: number) => void,
  ): { loaded: number; tornSkipped: number } {
    if (this.closed) throw new Error('journal: closed');
    this.writeOut();
    let tornSkipped = this.repairedAtOpen;
    this.repairedAtOpen = 0;
    if (!(max > 0)) return { loaded: 0, tornSkipped };

    const chosen: Array<{ img: Buffer; offs: number[] }> = [];
    let total = 0;
    for (let i = this.segments.length - 1; i >= 0 && total < max; i--) {
      const seg = this.segments[i];
      let img: Buffer;
      try { img = fs.readFileSync(seg.file); } catch { continue; }
      if (decodeHeader(img) === null) {
        if (img.length > 0) { tornSkipped++; this.countDamage(seg.no, 1, img.length); }
        continue;
      }
      const offs: number[] = [];
      const scan = scanSegment(img, HEADER_SIZE, (pos) => { offs.push(pos); });
      tornSkipped += scan.corruptRegions;
      this.countDamage(seg.no, scan.corruptRegions, scan.corruptBytes);
      chosen.push({ img, offs });
      total += offs.length;
    }

    let skip = Math.max(0, total - max);
    let loaded = 0;
    let peerStr = '';
    let peerBuf: Buffer | null = null;
    for (let c = chosen.length - 1; c >= 0; c--) {
      const { img, offs } = chosen[c];
      const start = Math.min(skip, offs.length);
      skip -= start;
      for (let k = start; k < offs.length; k++) {
        const pos = offs[k];
        const end = pos + RECORD_PREFIX + img.readUInt32LE(pos + 8);
        const seq = readU64(img, pos + 12);
        const timeMs = img.readDoubleLE(pos + 20);
        const plen = img.readUInt16LE(pos + 28);
        const p0 = pos + 30;
        if (peerBuf === null || peerBuf.length !== plen || img.compare(peerBuf, 0, plen, p0, p0 + plen) !== 0) {
          peerBuf = img.subarray(p0, p0 + plen);
          peerStr = peerBuf.toString('utf8');
        }
        loaded++;
        onEntry(timeMs, peerStr, img.subarray(p0 + plen, end), seq);
      }
    }
    this.s.replayedLines += loaded;
    return { loaded, tornSkipped };
  }

  // ---------------------------------------------------------------- append path

  /** Buffers one record; returns its sequence number (monotonic across restarts). */
  append(timeMs: number, peer: string, line: Uint8Array): number {
    if (this.closing) throw new Error('journal: closed');
    const seq = ++this.seq;
    if (this.failure !== null) { this.s.droppedLines++; return seq; }

    if (peer !== this.lastPeer) {
      let pb = Buffer.from(peer, 'utf8');
      if (pb.length > MAX_PEER) pb = pb.subarray(0, MAX_PEER);
      this.lastPeer = peer;
      this.lastPeerBytes = pb;
    }
    const pb = this.lastPeerBytes;
    const plen = pb.length;
    let llen = line.length;
    if (llen > MAX_LINE) llen = MAX_LINE;
    const bodyLen = BODY_FIXED + plen + llen;
    const recLen = RECORD_PREFIX + bodyLen;

    if (this.segBytes > HEADER_SIZE && this.segBytes + recLen > this.rotateSize) {
      this.rotate();
      if (this.failure !== null) { this.s.droppedLines++; return seq; }
    }
    if (this.len + recLen > this.buf.length) this.grow(recLen);

    const b = this.buf;
    const o = this.len;
    b.writeUInt32LE(RECORD_MARKER, o);
    b.writeUInt32LE(bodyLen, o + 8);
    b.writeUInt32LE(seq % TWO32 >>> 0, o + 12);
    b.writeUInt32LE(Math.floor(seq / TWO32), o + 16);
    b.writeDoubleLE(timeMs, o + 20);
    b.writeUInt16LE(plen, o + 28);
    if (plen > 0) pb.copy(b, o + 30);
    if (llen > 0) b.set(llen === line.length ? line : line.subarray(0, llen), o + 30 + plen);
    b.writeUInt32LE(crc32(b, o + 8, o + recLen), o + 4);
    this.len = o + recLen;
    this.bufLines++;
    this.segBytes += recLen;

    if (this.immediate === null) this.immediate = setImmediate(this.tick);
    if (this.len >= HIGH_WATER) this.writeOut();
    return seq;
  }

  private grow(need: number): void {
    let cap = this.buf.length * 2;
    while (cap < this.len + need) cap *= 2;
    const nb = Buffer.allocUnsafe(cap);
    this.buf.copy(nb, 0, 0, this.len);
    this.buf = nb;
  }

  /** Writes the pending buffer to the current segment (positional, synchronous). */
  private writeOut(): void {
    if (this.len === 0 || this.failure !== null) return;
    const start = this.filePos;
    let off = 0;
    try {
      while (off < this.len) {
        const n = fs.writeSync(this.fd, this.buf, off, this.len - off, this.filePos);
        off += n;
        this.filePos += n;
      }
    } catch (e) {
      // Leave no torn record behind; the journal becomes failed (fail-stop).
      try { fs.ftruncateSync(this.fd, start); } catch { /* best effort */ }
      this.filePos = start;
      this.s.droppedLines += this.bufLines;
      this.len = 0;
      this.bufLines = 0;
      this.fail(e as Error);
      return;
    }
    this.s.persistedBytes += this.len;
    this.s.persistedLines += this.bufLines;
    this.len = 0;
    this.bufLines = 0;
    this.writtenSeq = this.seq;
    if (this.buf.length > SHRINK_ABOVE) this.buf = Buffer.allocUnsafe(INITIAL_BUFFER);
  }

  private readonly tick = (): void => {
    this.immediate = null;
    if (this.closed || this.failure !== null) return;
    this.writeOut();
    this.afterWrite();
  };

  private afterWrite(): void {
    if (this.failure !== null) return;
    if (this.policy === 'always') this.startSync();
    else this.notify(this.writtenSeq);
  }

  /** Group commit: one fsync round covers everything written so far. */
  private startSync(): void {
    if (this.syncing || this.closed || this.failure !== null || this.fd < 0) return;
    const target = this.writtenSeq;
    if (target <= this.syncedSeq && this.retiring.length === 0 && !this.dirDirty) return;
    this.syncing = true;
    const fds = this.retiring;
    this.retiring = [];
    const syncDir = this.dirDirty && this.dirFd >= 0;
    this.dirDirty = false;
    let pending = fds.length + 1 + (syncDir ? 1 : 0);
    let err: Error | null = null;
    const done = (e: NodeJS.ErrnoException | null): void => {
      if (e && err === null) err = e;
      if (--pending > 0) return;
      for (const f of fds) fs.close(f, noop);
      this.syncing = false;
      if (err !== null) { this.fail(err); }
      else {
        if (target > this.syncedSeq) this.syncedSeq = target;
        if (this.policy === 'always') this.notify(target);
      }
      if (this.syncWaiters.length > 0) {
        const w = this.syncWaiters;
        this.syncWaiters = [];
        for (const f of w) f();
      } else if (this.retiring.length > 0 || (this.policy === 'always' && this.writtenSeq > this.syncedSeq)) {
        this.startSync(); // finished segments waiting for their final fsync, or the next group
      }
    };
    for (const f of fds) { this.s.fsyncs++; fs.fdatasync(f, done); }
    this.s.fsyncs++;
    fs.fdatasync(this.fd, done);
    if (syncDir) fs.fsync(this.dirFd, done);
  }

  private notify(seq: number): void {
    if (seq <= this.ackedSeq) return;
    this.ackedSeq = seq;
    for (const cb of this.durableCbs) cb(seq);
  }

  private fail(err: Error): void {
    if (this.failure !== null) return;
    this.failure = err;
    const cbs = this.errorCbs.slice();
    process.nextTick(() => {
      if (cbs.length === 0) process.emitWarning(`LogCaster journal failed: ${err.message}`);
      for (const cb of cbs) cb(err);
    });
  }

  /**
   * `cb(seq)`: every record with sequence <= seq is durable per the policy ('always': an fsync
   * covering it completed; 'never'/'interval': it was written to the OS). Never called from
   * inside append()/flush(); called with strictly increasing values.
   */
  onDurable(cb: (seq: number) => void): void {
    this.durableCbs.push(cb);
  }

  /**
   * I/O failures (write, fsync) put the journal in a failed state: further appends are counted
   * as dropped and no more durability acknowledgements are given. Listeners are told once.
   */
  onError(cb: (err: Error) => void): void {
    this.errorCbs.push(cb);
  }

  /** Pushes buffered records to the OS now ('always': also starts an fsync round). */
  flush(): void {
    if (this.closed) return;
    this.writeOut();
    if (this.failure !== null) return;
    if (this.policy === 'always') this.startSync();
    else if (this.writtenSeq > this.ackedSeq && this.immediate === null) {
      // acknowledge from the next turn, never from inside the caller's stack
      this.immediate = setImmediate(this.tick);
    }
  }

  /** Flush + fsync + close. Rejects when the journal has failed. */
  close(): Promise<void> {
    if (this.closePromise !== null) return this.closePromise;
    this.closing = true;
    this.closePromise = new Promise<void>((resolve, reject) => {
      const finish = (): void => {
        if (this.immediate !== null) { clearImmediate(this.immediate); this.immediate = null; }
        if (this.timer !== null) { clearInterval(this.timer); this.timer = null; }
        this.writeOut();
        if (this.failure === null) {
          try {
            for (const f of this.retiring) { this.s.fsyncs++; fs.fdatasyncSync(f); }
            this.s.fsyncs++;
            fs.fsyncSync(this.fd);
            if (this.dirDirty && this.dirFd >= 0) fs.fsyncSync(this.dirFd);
            this.dirDirty = false;
            this.syncedSeq = this.writtenSeq;
          } catch (e) {
            this.fail(e as Error);
          }
        }
        for (const f of this.retiring) { try { fs.closeSync(f); } catch { /* ignore */ } }
        this.retiring = [];
        for (const f of [this.fd, this.dirFd]) if (f >= 0) { try { fs.closeSync(f); } catch { /* ignore */ } }
        this.fd = this.dirFd = -1;
        this.closed = true;
        if (this.failure === null) this.notify(this.writtenSeq);
        if (this.failure !== null) reject(this.failure);
        else resolve();
      };
      if (this.syncing) this.syncWaiters.push(finish);
      else finish();
    });
    return this.closePromise;
  }

  /** Highest sequence number assigned so far (0 when the journal is empty). */
  get lastSeq(): number { return this.seq; }
  /** Highest sequence acknowledged through onDurable. */
  get durableSeq(): number { return this.ackedSeq; }
  /** The I/O error that failed the journal, if any. */
  get error(): Error | null { return this.failure; }

  get stats(): JournalStats {
    return {
      persistedLines: this.s.persistedLines,
      persistedBytes: this.s.persistedBytes,
      files: this.segments.length,
      tornRecordsSkipped: this.s.tornRecordsSkipped,
      fsyncs: this.s.fsyncs,
    };
  }

  get detailedStats(): JournalDetailedStats {
    return {
      ...this.stats,
      corruptBytesSkipped: this.s.corruptBytesSkipped,
      droppedLines: this.s.droppedLines,
      bufferedBytes: this.len,
      lastSeq: this.seq,
      writtenSeq: this.writtenSeq,
      durableSeq: this.ackedSeq,
      replayedLines: this.s.replayedLines,
    };
  }
}
