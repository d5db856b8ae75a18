// The ingest port: frames each connection's bytes into lines, stores them, hands
// them to the journal, emits 'line' events when someone listens, and writes acks.
import type { Connection, Handler } from '@logcaster/core';

import type { Journal } from '../journal';
import type { LogStore } from '../store/log-store';
import { LineFramer, truncationMarker } from './framing';

export const CAPACITY_MESSAGE = 'ERROR: Server at capacity. Try again later.\n';

export interface IngestOptions {
  maxLine: number;
  maxClients: number;
  /** ms, 0 = none */
  idleTimeoutMs: number;
  ack: boolean;
  /** Acks wait for Journal.onDurable (--fsync always with a journal). */
  ackAfterDurable: boolean;
}

export interface IngestCounters {
  clients: number;
  connectionsTotal: number;
  rejected: number;
  linesReceived: number;
  bytesReceived: number;
  truncated: number;
  idleClosed: number;
  openErrors: number;
  lastDataAt: number;
}

/** What a 'line' listener receives. */
export interface StoredLine {
  seq: number;
  timeMs: number;
  peer: string;
  line: Buffer;
}

const OKS = Buffer.from('OK\n'.repeat(4096));

class IngestConn {
  framer: LineFramer;
  peerId = 0;
  peerName = '';
  rejected = false;
  /** Acks counted during the current onData call. */
  batchAcks = 0;
  /** Journal seq of the last line of the current batch. */
  lastJournalSeq = -1;
  /** Acks that could not be written yet because the send queue was full. */
  timeouts = 0;
  closed = false;
  constructor(
    readonly conn: Connection,
    framer: LineFramer,
  ) {
    this.framer = framer;
  }
}

interface PendingAck {
  c: IngestConn;
  seq: number;
  count: number;
}

export class IngestPort implements Handler {
  readonly counters: IngestCounters = {
    clients: 0,
    connectionsTotal: 0,
    rejected: 0,
    linesReceived: 0,
    bytesReceived: 0,
    truncated: 0,
    idleClosed: 0,
    openErrors: 0,
    lastDataAt: 0,
  };
  readonly conns = new Set<IngestConn>();
  /** Set when someone listens for 'line' events. */
  onLine: ((entry: StoredLine) => void) | undefined;
  private readonly pending: PendingAck[] = [];
  private pendingHead = 0;
  private now = 0;

  constructor(
    private readonly opts: IngestOptions,
    private readonly store: LogStore,
    private journal: Journal | undefined,
  ) {
    if (journal && opts.ack && opts.ackAfterDurable) journal.onDurable((seq) => this.onDurable(seq));
  }

  onOpen(conn: Connection): void {
    if (conn.openError) {
      this.counters.openErrors++;
      try {
        conn.write(`ERROR: ${conn.openError.message}\n`);
      } catch {
        /* closing anyway */
      }
      return; // the reactor closes it
    }
    const c = new IngestConn(conn, undefined as unknown as LineFramer);
    conn.context = c;
    if (this.counters.clients >= this.opts.maxClients) {
      c.rejected = true;
      this.counters.rejected++;
      conn.end(CAPACITY_MESSAGE);
      return;
    }
    this.counters.clients++;
    this.counters.connectionsTotal++;
    this.conns.add(c);
    c.peerName = conn.remoteAddress ?? 'unknown';
    c.peerId = this.store.peers.intern(c.peerName);
    c.framer = new LineFramer(this.opts.maxLine, (buf, start, end, truncated) => this.line(c, buf, start, end, truncated));
    if (this.opts.idleTimeoutMs > 0) conn.setIdleTimeout(this.opts.idleTimeoutMs);
  }

  onData(conn: Connection, data: Buffer): void {
    const c = conn.context as IngestConn | undefined;
    if (!c || c.rejected) return;
    this.counters.bytesReceived += data.length;
    this.now = Date.now();
    this.counters.lastDataAt = this.now;
    c.timeouts = 0;
    // One copy of the whole block into the store; its lines become offsets into it.
    this.store.beginBlock(data, 0, data.length);
    try {
      c.framer.push(data);
    } finally {
      this.store.endBlock();
    }
    this.finishBatch(c);
  }

  onDrain(conn: Connection): void {
    const c = conn.context as IngestConn | undefined;
    if (c && !c.closed && conn.paused) conn.resume();
  }

  onEnd(conn: Connection): void {
    const c = conn.context as IngestConn | undefined;
    if (!c || c.rejected) return;
    this.now = Date.now();
    c.framer.finish();
    this.finishBatch(c);
  }

  onTimeout(conn: Connection): void {
    const c = conn.context as IngestConn | undefined;
    if (!c) return conn.destroy();
    c.timeouts++;
    this.counters.idleClosed += c.timeouts === 1 ? 1 : 0;
    // First: a polite close (queued acks still go out); if even that stalls, drop it.
    if (c.timeouts === 1) conn.end();
    else conn.destroy();
  }

  onClose(conn: Connection): void {
    const c = conn.context as IngestConn | undefined;
    if (!c || c.rejected || c.closed) return;
    c.closed = true;
    this.now = Date.now();
    c.framer.finish(); // a last unterminated line still counts
    this.counters.clients--;
    this.conns.delete(c);
  }

  private line(c: IngestConn, buf: Buffer, start: number, end: number, truncated: number): void {
    let tail: Buffer | undefined;
    if (truncated > 0) {
      tail = truncationMarker(truncated);
      this.counters.truncated++;
    }
    const seq = this.store.append(buf, start, end, this.now, c.peerId, tail);
    this.counters.linesReceived++;
    if (this.journal) {
      const bytes = tail ? this.store.line(seq) : buf.subarray(start, end);
      c.lastJournalSeq = this.journal.append(this.now, c.peerName, bytes);
    }
    if (this.onLine) {
      this.onLine({ seq, timeMs: this.now, peer: c.peerName, line: Buffer.from(this.store.line(seq)) });
    }
    c.batchAcks++;
  }

  private finishBatch(c: IngestConn): void {
    const n = c.batchAcks;
    if (n === 0 || !this.opts.ack) {
      c.batchAcks = 0;
      return;
    }
    c.batchAcks = 0;
    if (this.journal && this.opts.ackAfterDurable) {
      this.pending.push({ c, seq: c.lastJournalSeq, count: n });
    } else {
      this.writeAcks(c, n);
    }
  }

  private writeAcks(c: IngestConn, n: number): void {
    if (c.closed || c.conn.closed) return;
    let ok = true;
    try {
      while (n > 0) {
        const k = Math.min(n, 4096);
        ok = c.conn.write(k === 4096 ? OKS : OKS.subarray(0, k * 3));
        n -= k;
      }
    } catch {
      return; // ended/closed under us: nothing to ack to
    }
    // A client that does not read its acks: stop reading from it until it does.
    if (!ok) c.conn.pause();
  }

  private onDurable(seq: number): void {
    const q = this.pending;
    let i = this.pendingHead;
    while (i < q.length && q[i].seq <= seq) {
      const p = q[i];
      this.writeAcks(p.c, p.count);
      i++;
    }
    if (i === q.length) {
      q.length = 0;
      this.pendingHead = 0;
    } else if (i > 1024 && i > q.length / 2) {
      q.splice(0, i);
      this.pendingHead = 0;
    } else {
      this.pendingHead = i;
    }
  }

  /** Acks still waiting for durability. */
  get pendingAcks(): number {
    let n = 0;
    for (let i = this.pendingHead; i < this.pending.length; i++) n += this.pending[i].count;
    return n;
  }

  /** Shutdown: hand on partial lines of connections still open. */
  finishAll(): void {
    this.now = Date.now();
    for (const c of this.conns) {
      c.framer.finish();
      this.finishBatch(c);
    }
  }

  detachJournal(): void {
    this.journal = undefined;
  }
}
