// The ingest port: frames each connection's bytes into lines, stores them, hands
// them to the journal, emits 'line' events when someone listens, and writes acks.
//
// The handler is half-open: a client's FIN means "done sending". Its last
// unterminated line is stored, every ack owed is written (with --fsync always, once
// the lines are on disk), and then we end the connection.
import type { Connection, Handler } from '@logcaster/core';

import type { Journal } from '../journal';
import { dropRefused, refuse } from '../refusal';
import type { LogStore } from '../store/log-store';
import { LineFramer, truncationMarker } from './framing';

export const CAPACITY_MESSAGE = 'ERROR: Server at capacity. Try again later.\n';

/** Told to an ack client whose lines cannot be put on disk (after the OKs it is owed). */
export function persistErrorLine(problem: string): string {
  return `ERROR: persistence failed: ${problem}; lines after the last OK are not on disk\n`;
}

export interface IngestOptions {
  maxLine: number;
  maxClients: number;
  /** ms, 0 = none */
  idleTimeoutMs: number;
  ack: boolean;
  /** Acks wait for Journal.onDurable (--fsync always with a journal). */
  ackAfterDurable: boolean;
  /** A 'line' listener threw: reported here, and ingestion goes on. */
  reportListenerError(err: unknown): void;
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
  /** The peer sent FIN. */
  peerEnded = false;
  /** We ended the connection (after the peer's FIN, once every ack was written). */
  ended = false;
  /** Ack batches queued in `pending`, waiting for the journal to be durable. */
  pendingBatches = 0;
  /** Acks counted during the current onData call. */
  batchAcks = 0;
  /** Journal seq of the last line of the current batch. */
  lastJournalSeq = -1;
  /** Acks that could not be written yet because the send queue was full. */
  timeouts = 0;
  /** Persistence failed for lines of this client that are not acknowledged: it is told
   *  so (after the acks it is still owed) and closed. */
  persistError: string | undefined;
  closed = false;
  constructor(
    readonly conn: Connection,
    framer: LineFramer,
  ) {
    this.framer = framer;
  }
}

function ingestConn(conn: Connection): IngestConn | undefined {
  const c = conn.context;
  return c instanceof IngestConn ? c : undefined;
}

interface PendingAck {
  c: IngestConn;
  seq: number;
  count: number;
}

export class IngestPort implements Handler {
  /** Acks owed after the client's FIN are still written; endIfAnswered() ends it. */
  readonly allowHalfOpen = true;
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

  private journal: Journal | undefined;
  /** Why lines are not reaching the disk now (disk full, journal failed), or null. */
  private persistProblem: string | null = null;

  constructor(
    private readonly opts: IngestOptions,
    private readonly store: LogStore,
  ) {}

  /** Lines from now on are journaled (the server opens the journal once its ports are
   *  bound; nothing is dispatched in between). */
  attachJournal(journal: Journal): void {
    this.journal = journal;
    if (this.opts.ack && this.opts.ackAfterDurable) journal.onDurable((seq) => this.onDurable(seq));
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
    if (this.counters.clients >= this.opts.maxClients) {
      this.counters.rejected++;
      refuse(conn, CAPACITY_MESSAGE);
      return;
    }
    const c = new IngestConn(conn, new LineFramer(this.opts.maxLine, (buf, start, end, truncated) => this.line(c, buf, start, end, truncated)));
    this.counters.clients++;
    this.counters.connectionsTotal++;
    this.conns.add(c);
    conn.context = c;
    c.peerName = conn.remoteAddress ?? 'unknown';
    c.peerId = this.store.peers.intern(c.peerName);
    if (this.opts.idleTimeoutMs > 0) conn.setIdleTimeout(this.opts.idleTimeoutMs);
  }

  onData(conn: Connection, data: Buffer): void {
    if (dropRefused(conn, false)) return;
    const c = ingestConn(conn);
    // After the persistence error line: what it sends is not acknowledged, so not kept
    // either (it sends it again to a server that can store it).
    if (!c || c.peerEnded || c.persistError !== undefined) return;
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
    const c = ingestConn(conn);
    if (c && !c.closed && conn.paused) conn.resume();
  }

  onEnd(conn: Connection): void {
    const c = ingestConn(conn);
    if (!c) return;
    c.peerEnded = true;
    this.now = Date.now();
    c.framer.finish();
    this.finishBatch(c);
    this.endIfAnswered(c);
  }

  /** After the peer's FIN, or a persistence failure: end once no ack is owed any more. */
  private endIfAnswered(c: IngestConn): void {
    if (!(c.peerEnded || c.persistError !== undefined) || c.ended || c.closed || c.pendingBatches > 0) return;
    c.ended = true;
    if (c.persistError !== undefined) {
      try {
        c.conn.write(persistErrorLine(c.persistError));
      } catch {
        return; // closed under us
      }
    }
    c.conn.end();
  }

  /**
   * Acks after fsync: lines past `coveredSeq` (the last one written before the disk
   * filled, or the last durable one when the journal failed) will not be acknowledged
   * now. Each client owed such an ack gets the acks it is still owed up to there, then
   * `ERROR: persistence failed: <why>` and the end of the connection; while `problem`
   * lasts, so does every client that sends a line. `null`: lines reach the disk again.
   */
  setPersistProblem(problem: string | null, coveredSeq: number): void {
    this.persistProblem = problem;
    if (problem === null || !this.opts.ack || !this.opts.ackAfterDurable) return;
    const q = this.pending;
    let cut = q.length;
    while (cut > this.pendingHead && q[cut - 1].seq > coveredSeq) cut--;
    const told = new Set<IngestConn>();
    for (let i = cut; i < q.length; i++) {
      q[i].c.pendingBatches--;
      q[i].c.persistError ??= problem;
      told.add(q[i].c);
    }
    q.length = cut;
    for (const c of told) this.endIfAnswered(c);
  }

  onTimeout(conn: Connection): void {
    if (dropRefused(conn, true)) return;
    const c = ingestConn(conn);
    if (!c) return conn.destroy();
    c.timeouts++;
    this.counters.idleClosed += c.timeouts === 1 ? 1 : 0;
    // First: a polite close (queued acks still go out); if even that stalls, drop it.
    if (c.timeouts === 1) {
      c.ended = true;
      conn.end();
    }
    else conn.destroy();
  }

  onClose(conn: Connection): void {
    const c = ingestConn(conn);
    if (!c || c.closed) return;
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
    // The store hands its blocks to the journal; the sequence numbers are the same.
    if (this.journal) c.lastJournalSeq = seq;
    if (this.onLine) {
      try {
        this.onLine({ seq, timeMs: this.now, peer: c.peerName, line: Buffer.from(this.store.line(seq)) });
      } catch (err) {
        // The listener's fault, not the client's: the line is stored, ingestion goes on.
        this.opts.reportListenerError(err);
      }
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
      if (this.persistProblem !== null) {
        c.persistError ??= this.persistProblem;
        return this.endIfAnswered(c);
      }
      this.pending.push({ c, seq: c.lastJournalSeq, count: n });
      c.pendingBatches++;
    } else {
      this.writeAcks(c, n);
    }
  }

  private writeAcks(c: IngestConn, n: number): void {
    if (c.closed || c.ended || c.conn.closed) return;
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
      p.c.pendingBatches--;
      this.endIfAnswered(p.c);
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
