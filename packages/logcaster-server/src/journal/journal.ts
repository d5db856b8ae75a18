/**
 * LogCaster persistence journal: append-only, CRC-checked, rotated segment files of block
 * records (format.ts), the store of every retained line.
 *
 * Write path: the store hands over each turn's new lines as a range of one of its blocks
 * (RecordRange: bytes already laid out in a shared chunk). The journal encodes the
 * record's small head (runs, peers), decides where it goes, and posts it to the writer
 * thread (writer-worker.ts), which computes the CRC over the bytes, writes them and runs
 * fsync per policy. The main thread's cost is per turn, not per line. A chunk stays
 * pinned until its bytes are written; when the writer falls more than WRITER_BACKLOG
 * behind, the main thread waits for it, so a slow disk slows ingestion instead of
 * growing memory.
 *
 * See JOURNAL.md for the file format and the durability contract.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Worker } from 'worker_threads';

import type { BackendName } from '@logcaster/core';

import {
  HEADER_SIZE, LEGACY_VERSION, FORMAT_VERSION, FILE_MAGIC, decodeAnyHeader, encodeHeader, encodeRecordHead, filterName,
  indexName, parseRecord, SEGMENT_RE, segmentName, type ParsedRecord,
} from './format';
import { migrateSegment, removeMigrationLeftovers } from './migrate';
import { SegmentIndex } from './segment-index';
import { readRange, scanSegmentFile } from './segment-reader';
import { FILTER_HEADER, filterHeaderMatches, type GroupRange } from './token-filter';
import { CTL_FAILED, CTL_STALLED, CTL_WRITTEN, WRITE_TABLE_STRIDE, type WriterEvent, type WriterOp } from './writer-protocol';
import type { Runs } from '../store/block';
import { LogStore, type RecordRange } from '../store/log-store';

export type FsyncPolicy = 'never' | 'interval' | 'always';

export interface JournalOptions {
  dir: string;
  /** rotate before a record would make the current segment exceed this many bytes */
  rotateSize: number;
  /** segment files kept, including the one being written (oldest deleted first); 0 = no limit */
  maxFiles: number;
  /** bytes of segments kept (oldest deleted first); 0 or absent = no limit */
  retentionBytes?: number;
  /** segments whose newest line is older than this many ms are deleted; 0 or absent = no limit */
  retentionMs?: number;
  fsync: FsyncPolicy;
  /** for 'interval' (default 1000) */
  fsyncIntervalMs?: number;
  /** On a full disk: how often the writer tries again, ms (default 1000). */
  stallRetryMs?: number;
  /** On a full disk: bytes of lines kept for the disk while it is full (default 64 MiB);
   *  lines beyond it are counted in droppedLines and never reach the disk. */
  stallBufferBytes?: number;
  /** Drop what the journal wrote from the page cache once it is on disk, except the
   *  newest keepBytes (page-cache.ts says why); the backend named provides the call.
   *  Absent: the kernel decides what stays cached. */
  dropBehind?: { backend: BackendName; keepBytes: number };
}

export interface JournalStats {
  /** lines handed to the OS by this Journal since open */
  persistedLines: number;
  /** bytes (framing included) handed to the OS by this Journal since open */
  persistedBytes: number;
  /** segment files currently kept */
  files: number;
  /** damaged regions skipped or truncated (torn tails, bad CRCs) seen at open and in reads */
  tornRecordsSkipped: number;
  /** fdatasync/fsync calls issued on segment files */
  fsyncs: number;
}

/** Everything in JournalStats plus diagnostics. */
export interface JournalDetailedStats extends JournalStats {
  /** bytes of damaged data skipped or truncated */
  corruptBytesSkipped: number;
  /** lines accepted after an I/O failure, or beyond stallBufferBytes on a full disk,
   *  and therefore never persisted */
  droppedLines: number;
  /** bytes posted to the writer and not written yet */
  bufferedBytes: number;
  lastSeq: number;
  writtenSeq: number;
  durableSeq: number;
  replayedLines: number;
  /** lines deleted by retention since open */
  retiredLines: number;
  /** bytes of segment files kept */
  diskBytes: number;
  /** finished segments without a token filter yet (being built; read whole meanwhile) */
  filtersPending: number;
}

/** A segment as the journal keeps track of it. */
export interface Segment {
  readonly no: number;
  readonly file: string;
  /** first sequence number its header promises (the next one after the previous segment) */
  readonly firstSeq: number;
  /** bytes of the file, records posted to the writer included */
  size: number;
  readonly index: SegmentIndex;
  /** readers holding it: deletion waits for them */
  pins: number;
  /** retention or clear deleted it: gone once unpinned */
  doomed: boolean;
  /** Its token filter file, once one matching its finished index exists. */
  filter: string | undefined;
}

/** An index group of a segment, as a query reads it (a snapshot: the newest segment's
 *  last group may grow after it was taken). */
export interface HistoryGroup {
  readonly file: string;
  readonly off: number;
  readonly len: number;
  readonly firstSeq: number;
  readonly lines: number;
  readonly minTime: number;
  readonly maxTime: number;
  /** The segment's token filter file and this group's number in it. */
  readonly filter: { path: string; groups: number; group: number } | undefined;
}

/** Groups pinned for one reader (their segments stay on disk until release()). */
export interface PinnedGroups {
  readonly groups: readonly HistoryGroup[];
  /** Groups of the sequence range left out because their time range misses the window. */
  readonly outsideWindow: number;
  release(): void;
}

/** The file ranges of a segment's groups (what its token filter file was built from). */
export function groupRanges(idx: SegmentIndex): GroupRange[] {
  const out: GroupRange[] = [];
  for (let g = 0; g < idx.count; g++) out.push({ off: idx.off[g], len: idx.len[g] });
  return out;
}

const POLICIES: readonly FsyncPolicy[] = ['never', 'interval', 'always'];
/** Post to the writer at once when this much is pending in a turn. */
const POST_BYTES = 4 * 1024 * 1024;
/** Least time between two write messages while records keep arriving (see postSoon). */
const POST_GAP_MS = 5;
/** The main thread waits for the writer when this much is posted but not written:
 *  about 70 ms of the writer's work at line rate, far more than a scheduler's slice,
 *  and every MiB of it is a pinned store chunk (32 MiB measured 10 MB more peak RSS). */
const WRITER_BACKLOG = 16 * 1024 * 1024;
const RETENTION_CHECK_MS = 60_000;
const STALL_RETRY_MS = 1000;
const STALL_BUFFER_BYTES = 64 * 1024 * 1024;

/** The journal's writer found the disk full (ENOSPC, EDQUOT): `error` names the file
 *  (`path`) and the code; it keeps trying. */
export interface JournalStall {
  error: NodeJS.ErrnoException;
  /** Every line up to this one was written before the disk filled. */
  writtenSeq: number;
}

/** A record waiting for the next write message: its head, and its data in a store chunk. */
interface Pending {
  head: Uint8Array;
  sab: SharedArrayBuffer;
  off: number;
  len: number;
  pos: number;
  lines: number;
  lastSeq: number;
  release: () => void;
  bytes: number;
}

interface InFlight {
  msg: number;
  lastSeq: number;
  /** The segment written to, and where its last record ends. */
  file: string;
  end: number;
  lines: number;
  bytes: number;
  releases: (() => void)[];
}

/** A file shorter than a header that starts like one (or is empty): a header write cut short. */
function isMagicPrefix(img: Buffer): boolean {
  const n = Math.min(img.length, FILE_MAGIC.length);
  return img.subarray(0, n).equals(FILE_MAGIC.subarray(0, n));
}

export class Journal {
  private readonly dir: string;
  private readonly rotateSize: number;
  private readonly maxFiles: number;
  private readonly retentionBytes: number;
  private readonly retentionMs: number;
  private readonly policy: FsyncPolicy;
  private readonly intervalMs: number;
  private readonly stallRetryMs: number;
  private readonly dropBehind: JournalOptions['dropBehind'];
  private readonly stallBufferBytes: number;

  private segments: Segment[] = [];
  /** Doomed segments still pinned by readers. */
  private doomed: Segment[] = [];
  private worker: Worker | undefined;
  private readonly ctl = new Int32Array(new SharedArrayBuffer(12));
  private pending: Pending[] = [];
  private pendingBytes = 0;
  private immediate: NodeJS.Immediate | null = null;
  /** Sends held-back records once POST_GAP_MS have passed since the last message. */
  private postTimer: NodeJS.Timeout | undefined;
  private lastPostAt = 0;
  private inflight: InFlight[] = [];
  private inflightBytes = 0;
  private sentMsgs = 0;
  /** The chunks the writer holds, by id: those of the last write message (see post()). */
  private writerChunks = new Map<SharedArrayBuffer, number>();
  private lastChunkId = 0;
  private retentionTimer: NodeJS.Timeout | null = null;

  private seq = 0;
  private writtenSeq = 0;
  private ackedSeq = 0;

  private durableCbs: Array<(seq: number) => void> = [];
  private finishedCbs: Array<(seg: Segment) => void> = [];
  /** Readers waiting for lines to be written: resolved once writtenSeq reaches seq. */
  private writtenWaiters: { seq: number; resolve: () => void }[] = [];
  private errorCbs: Array<(err: Error) => void> = [];
  private stallCbs: Array<(stall: JournalStall | null) => void> = [];
  private stalled: JournalStall | null = null;
  /** Last sequence number given to the segment index: a record after a gap (lines
   *  dropped on a full disk) starts a new index group. */
  private indexedSeq = 0;
  /** Segment numbers taken by files that are not segments (left alone, skipped). */
  private readonly strayNumbers = new Set<number>();
  private closing = false;
  private closed = false;
  private closePromise: Promise<void> | null = null;
  private closeResolve: (() => void) | null = null;
  private failure: Error | null = null;
  /** The store behind append() (standalone use), made on first use. */
  private own: LogStore | undefined;

  /** damaged regions found at open, reported by the first replay */
  private damageAtOpen = -1;

  private s = {
    persistedLines: 0, persistedBytes: 0, tornRecordsSkipped: 0, fsyncs: 0,
    corruptBytesSkipped: 0, droppedLines: 0, replayedLines: 0, retiredLines: 0,
  };

  private constructor(opts: JournalOptions) {
    if (!opts || typeof opts.dir !== 'string' || opts.dir === '') throw new TypeError('journal: dir required');
    if (!POLICIES.includes(opts.fsync)) throw new TypeError(`journal: fsync must be one of ${POLICIES.join(', ')}`);
    if (!(opts.rotateSize >= HEADER_SIZE + 64)) throw new RangeError(`journal: rotateSize must be >= ${HEADER_SIZE + 64}`);
    if (!(Number.isInteger(opts.maxFiles) && opts.maxFiles >= 0)) throw new RangeError('journal: maxFiles must be an integer >= 0');
    const iv = opts.fsyncIntervalMs ?? 1000;
    if (!(iv > 0)) throw new RangeError('journal: fsyncIntervalMs must be > 0');
    this.dir = path.resolve(opts.dir);
    this.rotateSize = opts.rotateSize;
    this.maxFiles = opts.maxFiles;
    this.retentionBytes = opts.retentionBytes ?? 0;
    this.retentionMs = opts.retentionMs ?? 0;
    this.policy = opts.fsync;
    this.intervalMs = iv;
    this.stallRetryMs = opts.stallRetryMs ?? STALL_RETRY_MS;
    this.dropBehind = opts.dropBehind;
    this.stallBufferBytes = opts.stallBufferBytes ?? STALL_BUFFER_BYTES;
  }

  /** Creates `dir`, migrates a version-1 journal, loads or rebuilds segment indexes,
   *  repairs a torn tail of the newest segment. Throws on a journal of a newer format. */
  static open(opts: JournalOptions): Journal {
    const j = new Journal(opts);
    j.init();
    return j;
  }

  private init(): void {
    fs.mkdirSync(this.dir, { recursive: true });
    const names = fs.readdirSync(this.dir);
    removeMigrationLeftovers(this.dir, names);
    const found: { no: number; file: string }[] = [];
    for (const name of names) {
      const m = SEGMENT_RE.exec(name);
      if (m) found.push({ no: Number(m[1]), file: path.join(this.dir, name) });
    }
    found.sort((a, b) => a.no - b.no);
    // A file named like a segment that is not one (no header of ours) is left alone for
    // inspection, counted, and its number skipped: it must neither be taken for the
    // newest segment nor make the next segment's name collide with it.
    for (let i = found.length - 1; i >= 0; i--) {
      const stray = this.strayBytes(found[i].file);
      if (stray < 0) continue;
      this.countDamage(1, stray);
      this.strayNumbers.add(found[i].no);
      found.splice(i, 1);
    }

    let lastSeq = 0;
    const rebuilt: Segment[] = [];
    for (let i = 0; i < found.length; i++) {
      const { no, file } = found[i];
      const newest = i === found.length - 1;
      const fd = fs.openSync(file, newest ? 'r+' : 'r');
      try {
        const size = fs.fstatSync(fd).size;
        const head = readRange(fd, 0, Math.min(size, HEADER_SIZE));
        let hdr = decodeAnyHeader(head);
        if (hdr !== null && hdr.version > FORMAT_VERSION) {
          throw new Error(`journal ${file}: format version ${hdr.version} is newer than this LogCaster reads (${LEGACY_VERSION}-${FORMAT_VERSION}); refusing to start rather than misread it`);
        }
        if (hdr !== null && hdr.version === LEGACY_VERSION) {
          const damaged = migrateSegment(file, no, hdr.firstSeq);
          if (damaged > 0) this.countDamage(damaged, 0);
          i--; // read it again, now in version 2
          continue;
        }
        if (hdr === null) {
          if (newest && size < HEADER_SIZE && isMagicPrefix(head)) {
            // Crash while the header was being written: nothing else can be in there.
            fs.ftruncateSync(fd, 0);
            const h = encodeHeader(no, lastSeq + 1);
            fs.writeSync(fd, h, 0, h.length, 0);
            hdr = { version: FORMAT_VERSION, segmentNo: no, firstSeq: lastSeq + 1 };
          } else {
            // Not a segment: leave it for inspection, count it, and move on.
            this.countDamage(1, size);
            continue;
          }
        }
        const seg: Segment = { no, file, firstSeq: hdr.firstSeq, size: Math.max(size, HEADER_SIZE), index: new SegmentIndex(), pins: 0, doomed: false, filter: undefined };
        if (!newest && this.loadIndex(seg)) {
          // trusted: written when the segment was finished, for exactly this size
        } else {
          const scan = this.indexSegment(fd, seg, size);
          if (!newest) rebuilt.push(seg);
          if (newest && scan.goodEnd < size) {
            fs.ftruncateSync(fd, scan.goodEnd);
            seg.size = scan.goodEnd;
          }
        }
        if (!newest && !rebuilt.includes(seg)) seg.filter = this.findFilter(seg);
        const segLast = seg.index.count > 0 ? seg.index.lastSeqOf : seg.firstSeq - 1;
        if (segLast > lastSeq) lastSeq = segLast;
        this.segments.push(seg);
      } finally {
        fs.closeSync(fd);
      }
    }
    this.seq = this.writtenSeq = this.ackedSeq = this.indexedSeq = lastSeq;
    const newest = this.segments[this.segments.length - 1];
    this.writtenEnd = { seq: lastSeq, file: newest?.file, end: newest?.size ?? 0 };
    this.damageAtOpen = this.s.tornRecordsSkipped;

    this.startWorker();
    for (const seg of rebuilt) this.send({ op: 'writeFile', path: path.join(this.dir, indexName(seg.no)), data: seg.index.encode(seg.no, seg.size) });
    const last = this.segments[this.segments.length - 1];
    if (last !== undefined) {
      this.send({ op: 'open', segNo: last.no, path: last.file, header: null, size: last.size });
    } else {
      this.createSegment(this.nextSegmentNo(found[found.length - 1]?.no ?? 0), this.seq + 1);
    }
    this.enforceRetention();
    if (this.retentionMs > 0) {
      this.retentionTimer = setInterval(() => this.enforceRetention(), Math.min(RETENTION_CHECK_MS, this.retentionMs));
      this.retentionTimer.unref();
    }
  }

  /** The size of a file named like a segment that is not one, or -1 when it is one (or
   *  a newest segment whose header write was cut short, repaired below). */
  private strayBytes(file: string): number {
    let size: number;
    let head: Buffer;
    try {
      const fd = fs.openSync(file, 'r');
      try {
        size = fs.fstatSync(fd).size;
        head = readRange(fd, 0, Math.min(size, HEADER_SIZE));
      } finally {
        fs.closeSync(fd);
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EISDIR') return 0;
      throw e;
    }
    if (decodeAnyHeader(head) !== null) return -1;
    return size < HEADER_SIZE && isMagicPrefix(head) ? -1 : size;
  }

  /** The number of the segment after `no`, past the numbers of stray files. */
  private nextSegmentNo(no: number): number {
    let n = no + 1;
    while (this.strayNumbers.has(n)) n++;
    return n;
  }

  /** Load the index file of a finished segment; false when absent or not for this file. */
  private loadIndex(seg: Segment): boolean {
    let buf: Buffer;
    try {
      buf = fs.readFileSync(path.join(this.dir, indexName(seg.no)));
    } catch {
      return false;
    }
    const idx = SegmentIndex.decode(buf, seg.no, seg.size);
    if (idx === null) return false;
    (seg as { index: SegmentIndex }).index = idx;
    return true;
  }

  /** The segment's token filter file when it exists and was built for exactly its index. */
  private findFilter(seg: Segment): string | undefined {
    const file = path.join(this.dir, filterName(seg.no));
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch {
      return undefined;
    }
    try {
      const head = Buffer.alloc(FILTER_HEADER);
      const n = fs.readSync(fd, head, 0, FILTER_HEADER, 0);
      return n === FILTER_HEADER && filterHeaderMatches(head, seg.no, seg.size, groupRanges(seg.index)) ? file : undefined;
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Scan a segment's records into its index (damage skipped and counted). */
  private indexSegment(fd: number, seg: Segment, size: number): { goodEnd: number; tornTail: boolean } {
    let prevEnd = -1;
    let nextSeq = -1;
    const scan = scanSegmentFile(fd, size, HEADER_SIZE, (pos, rec) => {
      const b = rec.block;
      // A group holds consecutive records of consecutive lines (none dropped between).
      seg.index.add(pos, rec.length, b.firstSeq, b.count, rec.minTime, rec.maxTime, pos === prevEnd && b.firstSeq === nextSeq);
      prevEnd = pos + rec.length;
      nextSeq = b.firstSeq + b.count;
    });
    seg.index.close();
    this.countDamage(scan.corruptRegions - (scan.tornTail ? 1 : 0), scan.corruptBytes);
    if (scan.tornTail) this.s.tornRecordsSkipped++;
    return scan;
  }

  private countDamage(regions: number, bytes: number): void {
    this.s.tornRecordsSkipped += regions;
    this.s.corruptBytesSkipped += bytes;
  }

  private startWorker(): void {
    const w = new Worker(path.join(__dirname, 'writer-worker.js'), {
      workerData: { dir: this.dir, policy: this.policy, intervalMs: this.intervalMs, retryMs: this.stallRetryMs, ctl: this.ctl.buffer, dropBehind: this.dropBehind },
      resourceLimits: { maxYoungGenerationSizeMb: 8 },
    });
    w.unref();
    w.on('message', (e: WriterEvent) => this.onWriter(e));
    w.on('error', (err) => this.fail(err));
    w.on('exit', () => {
      if (!this.closed && this.closeResolve === null) this.fail(new Error('journal writer thread exited'));
      this.finishClose();
    });
    this.worker = w;
  }

  private send(op: WriterOp): void {
    this.worker!.postMessage(op);
  }

  private createSegment(no: number, firstSeq: number): void {
    const file = path.join(this.dir, segmentName(no));
    const header = encodeHeader(no, firstSeq);
    this.segments.push({ no, file, firstSeq, size: HEADER_SIZE, index: new SegmentIndex(), pins: 0, doomed: false, filter: undefined });
    this.send({ op: 'open', segNo: no, path: file, header, size: HEADER_SIZE });
  }

  private rotate(firstSeq: number): void {
    this.post();
    const old = this.segments[this.segments.length - 1];
    old.index.close();
    this.send({ op: 'retire', segNo: old.no });
    this.send({ op: 'writeFile', path: path.join(this.dir, indexName(old.no)), data: old.index.encode(old.no, old.size) });
    this.createSegment(this.nextSegmentNo(old.no), firstSeq);
    this.enforceRetention();
    // Its last records may still be on their way through the writer thread: readers of
    // the file hear of the segment once they are there (or the journal stalled, failed
    // or closed: then what is missing is never read, see written()).
    void this.written(old.index.lastSeqOf).then(() => {
      if (!old.doomed && !this.closed) for (const cb of this.finishedCbs) cb(old);
    });
  }

  /** Every file of a segment: its records, index and token filter. */
  private filesOf(seg: Segment): string[] {
    return [seg.file, path.join(this.dir, indexName(seg.no)), path.join(this.dir, filterName(seg.no))];
  }

  private get diskBytes(): number {
    let n = 0;
    for (const s of this.segments) n += s.size;
    return n;
  }

  /** diskBytes kept up to date by write() and enforceRetention() (retention by size). */
  private diskTotal = 0;

  /** Delete the oldest finished segments beyond maxFiles, retentionBytes, retentionMs. */
  enforceRetention(): void {
    const now = Date.now();
    let bytes = this.diskBytes;
    const gone: string[] = [];
    while (this.segments.length > 1) {
      const oldest = this.segments[0];
      const tooMany = this.maxFiles > 0 && this.segments.length > this.maxFiles;
      const tooBig = this.retentionBytes > 0 && bytes > this.retentionBytes;
      const tooOld = this.retentionMs > 0 && oldest.index.count > 0 && oldest.index.maxTimeOf < now - this.retentionMs;
      if (!tooMany && !tooBig && !tooOld) break;
      this.post(); // nothing queued for the writer may outlive the segment's deletion
      this.segments.shift();
      bytes -= oldest.size;
      this.s.retiredLines += oldest.index.totalLines;
      oldest.doomed = true;
      if (oldest.pins > 0) this.doomed.push(oldest);
      else gone.push(...this.filesOf(oldest));
    }
    this.diskTotal = bytes;
    if (gone.length > 0 && !this.closed) this.send({ op: 'unlink', paths: gone });
  }

  // ---------------------------------------------------------------- write path

  /** Persist a range of a store block; `r.release()` is called once it is written. */
  write(r: RecordRange, peerNames: readonly string[]): void {
    if (this.closing) throw new Error('journal: closed');
    if (r.count === 0) return r.release();
    const lastSeq = r.firstSeq + r.count - 1;
    if (r.firstSeq !== this.seq + 1) throw new Error(`journal: lines ${r.firstSeq}.. do not follow ${this.seq}`);
    this.seq = lastSeq;
    const dataLength = r.end - r.start;
    // Failed, or the disk is full and as much as it may hold back is waiting already:
    // these lines stay in memory but will not reach the disk.
    if (this.failure !== null || (this.stalled !== null && this.inflightBytes + this.pendingBytes + dataLength > this.stallBufferBytes)) {
      this.s.droppedLines += r.count;
      r.release();
      return;
    }
    const local = localPeers(r.runs, peerNames);
    const head = encodeRecordHead({
      firstSeq: r.firstSeq,
      count: r.count,
      runs: local.runs,
      peers: local.peers,
      lineEnds: r.lineEnds,
      dataLength,
      minTime: r.minTime,
      maxTime: r.maxTime,
    });
    const len = head.length + dataLength;
    let seg = this.segments[this.segments.length - 1];
    if (seg.size > HEADER_SIZE && seg.size + len > this.rotateSize) {
      this.rotate(r.firstSeq);
      seg = this.segments[this.segments.length - 1];
    }
    const pos = seg.size;
    seg.size += len;
    seg.index.add(pos, len, r.firstSeq, r.count, r.minTime, r.maxTime, r.firstSeq === this.indexedSeq + 1);
    this.indexedSeq = lastSeq;
    if (this.retentionBytes > 0 && (this.diskTotal += len) > this.retentionBytes) this.enforceRetention();
    const buf = r.chunk.buf;
    this.pending.push({
      head, sab: buf.buffer as SharedArrayBuffer, off: buf.byteOffset + r.start, len: dataLength,
      pos, lines: r.count, lastSeq, release: r.release, bytes: len,
    });
    this.pendingBytes += len;
    if (this.pendingBytes >= POST_BYTES) this.post();
    else if (this.immediate === null) this.immediate = setImmediate(this.tick);
  }

  private readonly tick = (): void => {
    this.immediate = null;
    if (this.postSoon()) this.post();
  };

  /** Whether this turn's records go to the writer now. A write message wakes the writer
   *  thread, and on a busy machine the wake-up costs the main thread its core for a while:
   *  at line rate, one message per turn took a fifth of its time. So while the writer is
   *  still busy, or a message left less than POST_GAP_MS ago, records join the next
   *  message — sent when the writer reports 'written', when the gap has passed (timer) or
   *  once POST_BYTES are pending. A lone line to an idle writer goes at once. 'always'
   *  posts every turn: its acks wait for the disk, and its fsyncs are what batch. */
  private postSoon(): boolean {
    if (this.policy === 'always') return true;
    if (Atomics.load(this.ctl, CTL_WRITTEN) < this.sentMsgs) return false;
    const wait = this.lastPostAt + POST_GAP_MS - Date.now();
    if (wait <= 0) return true;
    this.postTimer ??= setTimeout(() => {
      this.postTimer = undefined;
      this.post();
    }, wait);
    return false;
  }

  /** Post this turn's records to the writer (one message per run of one segment). */
  private post(): void {
    this.settleCounted();
    if (this.pending.length === 0) return;
    const items = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    const seg = this.segments[this.segments.length - 1];
    const last = items[items.length - 1];
    let bytes = 0;
    let lines = 0;
    for (const it of items) {
      bytes += it.bytes;
      lines += it.lines;
    }
    this.lastPostAt = Date.now();
    const msg = ++this.sentMsgs;
    this.inflight.push({ msg, lastSeq: last.lastSeq, file: seg.file, end: last.pos + last.bytes, releases: items.map((it) => it.release), lines, bytes });
    this.inflightBytes += bytes;
    this.worker!.ref();
    // One message whatever the record count: the heads packed into one buffer,
    // each record's data named by (chunk id, offset, length), and a chunk's
    // SharedArrayBuffer sent only when the writer does not hold it (the chunks of the last
    // message; the others it is told to forget, so it never keeps a chunk alive). Cloning a
    // SharedArrayBuffer and a pooled head per record cost the main thread more than the
    // rest of the journal's work at line rate.
    let headBytes = 0;
    for (const it of items) headBytes += it.head.length;
    const heads = new Uint8Array(headBytes);
    const table = new Float64Array(items.length * WRITE_TABLE_STRIDE);
    const used = new Map<SharedArrayBuffer, number>();
    const chunks: Array<{ id: number; sab: SharedArrayBuffer }> = [];
    let hoff = 0;
    for (let i = 0; i < items.length; i++) {
      const it = items[i];
      let id = used.get(it.sab);
      if (id === undefined) {
        id = this.writerChunks.get(it.sab);
        if (id === undefined) chunks.push({ id: (id = ++this.lastChunkId), sab: it.sab });
        used.set(it.sab, id);
      }
      heads.set(it.head, hoff);
      hoff += it.head.length;
      const t = i * WRITE_TABLE_STRIDE;
      table[t] = it.head.length;
      table[t + 1] = id;
      table[t + 2] = it.off;
      table[t + 3] = it.len;
    }
    const forget: number[] = [];
    for (const [sab, id] of this.writerChunks) if (!used.has(sab)) forget.push(id);
    this.writerChunks = used;
    // (copied, not transferred: for a few KiB a copy costs less than detaching)
    this.send({ op: 'write', segNo: seg.no, pos: items[0].pos, lastSeq: last.lastSeq, heads, table, chunks, forget });
    // Not on a full disk: the writer is waiting for space, not for time (see write()).
    if (this.inflightBytes > WRITER_BACKLOG && this.stalled === null) {
      this.waitWriter(() => this.inflightBytesNow() <= WRITER_BACKLOG / 2);
      this.settleCounted();
    }
  }

  /** The messages up to `done` are written: their lines count as persisted and their
   *  store chunks are released. */
  private settle(done: number): void {
    while (this.inflight.length > 0 && this.inflight[0].msg <= done) {
      const f = this.inflight.shift()!;
      this.writtenEnd = { seq: f.lastSeq, file: f.file, end: f.end };
      this.inflightBytes -= f.bytes;
      this.s.persistedLines += f.lines;
      this.s.persistedBytes += f.bytes;
      if (f.lastSeq > this.writtenSeq) this.writtenSeq = f.lastSeq;
      for (const r of f.releases) r();
    }
  }

  /** settle() what the shared counter says is written, without waiting for the writer's
   *  'written' message: at line rate the writer is busy and its messages arrive late, and
   *  the chunks they would release stay pinned meanwhile (hundreds of 4 MiB chunks, over
   *  1 GB resident at 4M lines/s). Readers and acks still wake on the message. After a
   *  failure the counter also counts messages given up: fail() settles those. */
  private settleCounted(): void {
    const done = Atomics.load(this.ctl, CTL_WRITTEN);
    if (Atomics.load(this.ctl, CTL_FAILED) === 0) this.settle(done);
  }

  /** Bytes posted and not written yet, from the shared counter (no event loop needed). */
  private inflightBytesNow(): number {
    const done = Atomics.load(this.ctl, CTL_WRITTEN);
    let n = 0;
    for (const f of this.inflight) if (f.msg > done) n += f.bytes;
    return n;
  }

  /** Block the main thread until `cond` (re-checked as the writer finishes messages). */
  private waitWriter(cond: () => boolean): void {
    while (!cond() && Atomics.load(this.ctl, CTL_FAILED) === 0 && Atomics.load(this.ctl, CTL_STALLED) === 0) {
      Atomics.wait(this.ctl, CTL_WRITTEN, Atomics.load(this.ctl, CTL_WRITTEN), 1000);
    }
  }

  private onWriter(e: WriterEvent): void {
    switch (e.ev) {
      case 'written': {
        this.s.fsyncs = e.fsyncs;
        this.settle(e.msgs);
        this.wakeReaders();
        // the records held back while the writer was busy (postSoon)
        if (this.pending.length > 0 && !this.closed && this.postSoon()) this.post();
        // Not while closing: the process must stay up until the writer says 'closed'.
        if (this.inflight.length === 0 && this.pending.length === 0 && this.closeResolve === null) this.worker?.unref();
        if (this.policy !== 'always') this.notify(this.writtenSeq);
        return;
      }
      case 'durable':
        this.s.fsyncs = e.fsyncs;
        this.notify(e.seq);
        return;
      case 'error':
        this.fail(writerError(e));
        return;
      case 'stalled': {
        const stall: JournalStall = { error: writerError(e), writtenSeq: e.seq };
        this.stalled = stall;
        this.wakeReaders();
        this.tellStall(stall);
        return;
      }
      case 'resumed':
        if (this.stalled === null) return;
        this.stalled = null;
        this.tellStall(null);
        return;
      case 'closed':
        this.s.fsyncs = e.fsyncs;
        this.finishClose();
        return;
    }
  }

  private notify(seq: number): void {
    if (seq <= this.ackedSeq) return;
    this.ackedSeq = seq;
    for (const cb of this.durableCbs) cb(seq);
  }

  private tellStall(stall: JournalStall | null): void {
    const cbs = this.stallCbs.slice();
    process.nextTick(() => {
      if (cbs.length === 0 && stall !== null) process.emitWarning(`LogCaster journal: disk full, retrying: ${stall.error.message}`);
      for (const cb of cbs) cb(stall);
    });
  }

  private fail(err: Error): void {
    if (this.failure !== null) return;
    this.failure = err;
    this.stalled = null;
    // What was posted will not be written: count it, let the store reuse its chunks.
    for (const f of this.inflight) {
      this.s.droppedLines += f.lines;
      for (const r of f.releases) r();
    }
    this.inflight = [];
    this.inflightBytes = 0;
    for (const p of this.pending) {
      this.s.droppedLines += p.lines;
      p.release();
    }
    this.pending = [];
    this.wakeReaders();
    const cbs = this.errorCbs.slice();
    process.nextTick(() => {
      if (cbs.length === 0) process.emitWarning(`LogCaster journal failed: ${err.message}`);
      for (const cb of cbs) cb(err);
    });
  }

  /**
   * `cb(seq)`: every record with sequence <= seq is durable per the policy ('always': an fsync
   * covering it completed; 'never'/'interval': it was written to the OS). Never called from
   * inside write()/append()/flush(); called with strictly increasing values.
   */
  onDurable(cb: (seq: number) => void): void {
    this.durableCbs.push(cb);
  }

  /**
   * I/O failures (write, fsync) put the journal in a failed state: further lines are counted
   * as dropped and no more durability acknowledgements are given. Listeners are told once.
   */
  onError(cb: (err: Error) => void): void {
    this.errorCbs.push(cb);
  }

  /**
   * A full disk (ENOSPC, EDQUOT on a write): `cb(stall)` when the writer starts waiting
   * for space, `cb(null)` once what waited is written. Meanwhile lines are kept for the
   * disk up to stallBufferBytes (those beyond are dropped and counted), no
   * acknowledgement goes past `stall.writtenSeq` until then, and nothing blocks.
   */
  onStall(cb: (stall: JournalStall | null) => void): void {
    this.stallCbs.push(cb);
  }

  /** The disk-full wait in progress, if any. */
  get stall(): JournalStall | null {
    return this.stalled;
  }

  /** Lines for standalone use (tests, tools): kept in a small store of the journal's own
   *  and recorded like the server's. Returns the sequence number. */
  append(timeMs: number, peer: string, line: Uint8Array): number {
    if (this.closing) throw new Error('journal: closed');
    if (this.own === undefined) {
      const own = new LogStore(65536, 65536, undefined, this.seq + 1);
      own.setRecorder((r) => this.write(r, own.peers.names));
      this.own = own;
    }
    return this.own.append(line, 0, line.length, timeMs, this.own.peers.intern(peer));
  }

  /** Hand what is pending to the writer now ('always': an fsync follows). */
  flush(): void {
    if (this.closed) return;
    this.own?.cut();
    if (this.postTimer !== undefined) {
      clearTimeout(this.postTimer);
      this.postTimer = undefined;
    }
    if (this.immediate !== null) {
      clearImmediate(this.immediate);
      this.immediate = null;
    }
    this.post();
  }

  /** Everything posted is written (blocking the main thread until then). */
  private flushSync(): void {
    this.flush();
    const target = this.sentMsgs;
    this.waitWriter(() => Atomics.load(this.ctl, CTL_WRITTEN) >= target);
  }

  // ---------------------------------------------------------------- reading

  /** Segments kept, oldest first (the last one is being written). */
  get segmentList(): readonly Segment[] {
    return this.segments;
  }

  /** Sequence number of the oldest retained line (lastSeq + 1 when none is). */
  get firstSeq(): number {
    for (const seg of this.segments) if (seg.index.count > 0) return seg.index.firstSeqOf;
    return this.seq + 1;
  }

  /** Resolves once every line up to `seq` handed to write() is in the files (or the
   *  journal failed or closed: then what was not written never will be; or the disk is
   *  full: a reader does not wait for space, see writtenThrough). */
  written(seq: number): Promise<void> {
    if (seq <= this.writtenSeq || this.failure !== null || this.closed || this.stalled !== null) return Promise.resolve();
    this.flush();
    return new Promise((resolve) => this.writtenWaiters.push({ seq, resolve }));
  }

  /** Where the written part of the journal ends: every line up to `seq` is in the
   *  files, the last of them in `file`, whose records up to `end` are written. A group
   *  holding `seq` and later lines is readable up to there (on a full disk, the rest
   *  waits for space). */
  get writtenExtent(): { seq: number; file: string | undefined; end: number } {
    return this.writtenEnd;
  }
  private writtenEnd: { seq: number; file: string | undefined; end: number } = { seq: 0, file: undefined, end: 0 };

  private wakeReaders(): void {
    if (this.writtenWaiters.length === 0) return;
    const all = this.failure !== null || this.closeResolve !== null || this.closed || this.stalled !== null;
    const still: { seq: number; resolve: () => void }[] = [];
    for (const w of this.writtenWaiters) {
      if (all || w.seq <= this.writtenSeq) w.resolve();
      else still.push(w);
    }
    this.writtenWaiters = still;
  }

  /** The groups holding lines [lo, hi) whose time range meets [timeFrom, timeTo), oldest
   *  first, their segments pinned until release(). */
  pinGroups(lo: number, hi: number, timeFrom = -Infinity, timeTo = Infinity): PinnedGroups {
    const groups: HistoryGroup[] = [];
    const segs: Segment[] = [];
    let outsideWindow = 0;
    for (const seg of this.segments) {
      const idx = seg.index;
      if (idx.count === 0 || idx.firstSeqOf >= hi || idx.lastSeqOf < lo) continue;
      let used = false;
      for (let g = Math.max(0, idx.groupOf(lo)); g < idx.count && idx.firstSeq[g] < hi; g++) {
        if (idx.firstSeq[g] + idx.lines[g] <= lo) continue;
        if (idx.maxTime[g] < timeFrom || idx.minTime[g] >= timeTo) {
          outsideWindow++;
          continue;
        }
        groups.push({
          file: seg.file,
          off: idx.off[g],
          len: idx.len[g],
          firstSeq: idx.firstSeq[g],
          lines: idx.lines[g],
          minTime: idx.minTime[g],
          maxTime: idx.maxTime[g],
          filter: seg.filter === undefined ? undefined : { path: seg.filter, groups: idx.count, group: g },
        });
        used = true;
      }
      if (used) segs.push(seg);
    }
    this.pin(segs);
    let released = false;
    return {
      groups,
      outsideWindow,
      release: () => {
        if (released) return;
        released = true;
        this.unpin(segs);
      },
    };
  }

  /** `cb(seg)` after a segment was finished (rotation) and its records written: its
   *  index is final and its file holds every record the index names. */
  onFinished(cb: (seg: Segment) => void): void {
    this.finishedCbs.push(cb);
  }

  /** Finished segments that have no token filter file yet, oldest first. */
  get unfiltered(): Segment[] {
    return this.segments.slice(0, -1).filter(needsFilter);
  }

  /** `file` now holds the token filters of `seg` (built for its current index). The
   *  build read the segment back into the page cache; with drop-behind it leaves again. */
  setFilter(seg: Segment, file: string): void {
    if (seg.doomed) return;
    seg.filter = file;
    if (!this.closed && this.dropBehind !== undefined) this.send({ op: 'drop', path: seg.file, length: seg.size });
  }

  /** The path of a segment's token filter file (whether it exists or not). */
  filterPath(seg: Segment): string {
    return path.join(this.dir, filterName(seg.no));
  }

  /** Keep `segs` on disk until unpin(), even if retention or clear() deletes them. */
  pin(segs: readonly Segment[]): void {
    for (const s of segs) s.pins++;
  }

  unpin(segs: readonly Segment[]): void {
    const gone: string[] = [];
    for (const s of segs) {
      if (--s.pins === 0 && s.doomed) {
        this.doomed = this.doomed.filter((d) => d !== s);
        gone.push(...this.filesOf(s));
      }
    }
    if (gone.length > 0 && !this.closed) this.send({ op: 'unlink', paths: gone });
  }

  /**
   * Delivers the newest `max` intact lines, oldest first: `onEntry(timeMs, peer, line, seq)`.
   * Damaged records are skipped and counted, never thrown. `line` is a view into a buffer
   * private to this call, never overwritten, so it may be kept (copy it to avoid pinning
   * the whole group it was read with). Writes what is pending first.
   */
  replay(max: number, onEntry: (timeMs: number, peer: string, line: Buffer, seq: number) => void): { loaded: number; tornSkipped: number } {
    if (this.closed) throw new Error('journal: closed');
    this.flushSync();
    let tornSkipped = Math.max(0, this.damageAtOpen);
    this.damageAtOpen = 0;
    if (!(max > 0)) return { loaded: 0, tornSkipped };
    // groups newest first until they hold max lines
    const chosen: { seg: Segment; g: number }[] = [];
    let total = 0;
    for (let i = this.segments.length - 1; i >= 0 && total < max; i--) {
      const seg = this.segments[i];
      for (let g = seg.index.count - 1; g >= 0 && total < max; g--) {
        chosen.push({ seg, g });
        total += seg.index.lines[g];
      }
    }
    let skip = Math.max(0, total - max);
    let loaded = 0;
    for (let c = chosen.length - 1; c >= 0; c--) {
      const { seg, g } = chosen[c];
      const idx = seg.index;
      let img: Buffer;
      try {
        const fd = fs.openSync(seg.file, 'r');
        try {
          img = readRange(fd, idx.off[g], idx.len[g]);
        } finally {
          fs.closeSync(fd);
        }
      } catch {
        tornSkipped++;
        continue;
      }
      for (const rec of recordsOf(img, () => {
        tornSkipped++;
        this.countDamage(1, 0);
      })) {
        const b = rec.block;
        let pos = 0;
        let run = 0;
        let inRun = 0;
        for (let k = 0; k < b.count; k++) {
          while (inRun >= b.runs.lines[run]) {
            run++;
            inRun = 0;
          }
          inRun++;
          const end = b.lineEnds ? b.lineEnds[k] : b.data.indexOf(10, pos);
          if (skip > 0) skip--;
          else {
            loaded++;
            onEntry(b.runs.time[run], b.peers[b.runs.peer[run]], b.data.subarray(pos, end), b.firstSeq + k);
          }
          pos = end + 1;
        }
      }
    }
    this.s.replayedLines += loaded;
    return { loaded, tornSkipped };
  }

  /** Delete every segment (CLEAR): the journal continues in a fresh one. */
  clear(): void {
    this.flush();
    const old = this.segments;
    const last = old[old.length - 1];
    last.index.close();
    this.send({ op: 'retire', segNo: last.no });
    this.segments = [];
    this.createSegment(this.nextSegmentNo(last.no), this.seq + 1);
    const gone: string[] = [];
    for (const s of old) {
      s.doomed = true;
      this.s.retiredLines += s.index.totalLines;
      if (s.pins > 0) this.doomed.push(s);
      else gone.push(...this.filesOf(s));
    }
    if (gone.length > 0) this.send({ op: 'unlink', paths: gone });
  }

  /** Flush + fsync + close. Rejects when the journal has failed. */
  close(): Promise<void> {
    if (this.closePromise !== null) return this.closePromise;
    this.closePromise = new Promise<void>((resolve, reject) => {
      this.flush();
      this.closing = true;
      if (this.retentionTimer !== null) clearInterval(this.retentionTimer);
      this.closeResolve = () => {
        this.closed = true;
        if (this.failure === null) this.notify(this.writtenSeq);
        if (this.failure !== null) reject(this.failure);
        else resolve();
      };
      const last = this.segments[this.segments.length - 1];
      if (last !== undefined && this.failure === null) {
        last.index.close();
      }
      if (this.worker === undefined) this.finishClose();
      else {
        this.worker.ref();
        this.send({ op: 'close' });
      }
    });
    return this.closePromise;
  }

  private finishClose(): void {
    this.wakeReaders();
    const done = this.closeResolve;
    if (done === null || this.closed) return;
    const w = this.worker;
    this.worker = undefined;
    if (w) void w.terminate();
    done();
  }

  /** Lines in the segments kept. */
  get retainedLines(): number {
    let n = 0;
    for (const seg of this.segments) n += seg.index.totalLines;
    return n;
  }

  /** Highest sequence number assigned so far (0 when the journal is empty): recorded,
   *  or given out by append() and still to be recorded at the end of the turn. */
  get lastSeq(): number {
    return this.own !== undefined ? Math.max(this.seq, this.own.nextSeq - 1) : this.seq;
  }
  /** Highest sequence acknowledged through onDurable. */
  get durableSeq(): number {
    return this.ackedSeq;
  }
  /** The I/O error that failed the journal, if any. */
  get error(): Error | null {
    return this.failure;
  }

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
      bufferedBytes: this.inflightBytes + this.pendingBytes,
      lastSeq: this.seq,
      writtenSeq: this.writtenSeq,
      durableSeq: this.ackedSeq,
      replayedLines: this.s.replayedLines,
      retiredLines: this.s.retiredLines,
      diskBytes: this.diskBytes,
      filtersPending: this.filtersPending(),
    };
  }

  private filtersPending(): number {
    let n = 0;
    for (let i = 0; i < this.segments.length - 1; i++) if (needsFilter(this.segments[i])) n++;
    return n;
  }
}

/** A finished segment that has lines and no token filter file (yet). */
function needsFilter(s: Segment): boolean {
  return s.filter === undefined && !s.doomed && s.index.count > 0;
}

/** An error the writer thread reported, with the code and the file it failed on. */
function writerError(e: { message: string; code: string | undefined; path: string | undefined }): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(e.path !== undefined && !e.message.includes(e.path) ? `${e.message} (${e.path})` : e.message);
  if (e.code !== undefined) err.code = e.code;
  if (e.path !== undefined) err.path = e.path;
  return err;
}

/** Runs with their peers renumbered into a table of the record's own. */
function localPeers(runs: Runs, names: readonly string[]): { runs: Runs; peers: string[] } {
  const ids = new Map<number, number>();
  const peers: string[] = [];
  const peer = new Uint32Array(runs.peer.length);
  for (let i = 0; i < peer.length; i++) {
    let p = ids.get(runs.peer[i]);
    if (p === undefined) {
      p = peers.length;
      peers.push(names[runs.peer[i]] ?? '');
      ids.set(runs.peer[i], p);
    }
    peer[i] = p;
  }
  return { runs: { off: runs.off, lines: runs.lines, time: runs.time, peer }, peers };
}

/** The records of a group's bytes (written by this journal: consecutive, intact unless
 *  the disk changed them — then the rest of the group is skipped and counted). */
export function* recordsOf(img: Buffer, onDamage: () => void): Generator<ParsedRecord> {
  let pos = 0;
  while (pos < img.length) {
    const rec = parseRecord(img, pos);
    if (rec === null) {
      onDamage();
      return;
    }
    yield rec;
    pos += rec.length;
  }
}
