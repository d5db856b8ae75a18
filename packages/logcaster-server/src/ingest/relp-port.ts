// The RELP port: rsyslog's omrelp (and any librelp client) sends syslog messages as
// numbered commands and learns, from each "rsp 200 OK", which of them arrived. So a
// message is acknowledged only once it is stored — and, under --fsync always with a
// journal, once it is on disk: what the sender saw acknowledged survives a kill -9 of
// the server, and what it did not it sends again (at least once).
//
// Responses leave in the order of the commands, as RELP requires: an "open" or
// "close" answer waits behind acks still waiting for the disk. A framing error closes
// the connection (the sender reconnects and resends what was not acknowledged).
import type { Connection, Handler } from '@logcaster/core';

import type { Journal } from '../journal';
import type { LogStore } from '../store/log-store';
import { truncationMarker, utf8Cut } from './framing';
import type { StoredLine } from './ingest-port';
import { RelpParser } from './relp-frame';

export interface RelpOptions {
  maxLine: number;
  maxClients: number;
  /** Acks wait for Journal.onDurable (--fsync always with a journal). */
  ackAfterDurable: boolean;
  /** What the open response names as relp_software. */
  software: string;
  reportListenerError(err: unknown): void;
}

export interface RelpCounters {
  clients: number;
  connectionsTotal: number;
  rejected: number;
  /** syslog frames stored. */
  received: number;
  truncated: number;
  /** Connections closed for a framing or protocol error. */
  protocolErrors: number;
  lastDataAt: number;
}

const SERVERCLOSE = '0 serverclose 0\n';
const OFFER_LIMIT = 4096; // data kept of an "open" (its offers)

interface Pending {
  /** Store sequence the response waits for (-1: none, only order). */
  seq: number;
  text: string;
}

class RelpConn {
  opened = false;
  /** close received or framing error: no more commands are read. */
  done = false;
  peerEnded = false;
  ended = false;
  closed = false;
  peerId = 0;
  peerName = '';
  /** Its messages cannot reach the disk now: closed with serverclose once answered. */
  persistFailed = false;
  readonly pending: Pending[] = [];
  constructor(
    readonly conn: Connection,
    readonly parser: RelpParser,
  ) {}
}

function relpConn(conn: Connection): RelpConn | undefined {
  return conn.context instanceof RelpConn ? conn.context : undefined;
}

function rsp(txnr: number, body: string): string {
  return `${txnr} rsp ${Buffer.byteLength(body)} ${body}\n`;
}

const LF = 10;
const CR = 13;

export class RelpPort implements Handler {
  /** Responses owed after the client's FIN are still written. */
  readonly allowHalfOpen = true;
  readonly counters: RelpCounters = { clients: 0, connectionsTotal: 0, rejected: 0, received: 0, truncated: 0, protocolErrors: 0, lastDataAt: 0 };
  readonly conns = new Set<RelpConn>();
  onLine: ((entry: StoredLine) => void) | undefined;
  /** Connections with responses waiting for the disk. */
  private readonly waiting = new Set<RelpConn>();
  private durableSeq = -1;
  /** Why messages are not reaching the disk now (disk full, journal failed), or null. */
  private persistProblem: string | null = null;

  private journal: Journal | undefined;

  constructor(
    private readonly opts: RelpOptions,
    private readonly store: LogStore,
  ) {}

  /** The journal lines are persisted to (opened once every port is bound). */
  attachJournal(journal: Journal): void {
    this.journal = journal;
    if (this.opts.ackAfterDurable) journal.onDurable((seq) => this.onDurable(seq));
  }

  private get waitsForDisk(): boolean {
    return this.journal !== undefined && this.opts.ackAfterDurable;
  }

  onOpen(conn: Connection): void {
    if (conn.openError) return; // the reactor closes it
    if (this.counters.clients >= this.opts.maxClients) {
      this.counters.rejected++;
      conn.end(SERVERCLOSE);
      return;
    }
    const c: RelpConn = new RelpConn(conn, new RelpParser(Math.max(this.opts.maxLine + 2, OFFER_LIMIT), (txnr, command, buf, start, end, dropped) => this.frame(c, txnr, command, buf, start, end, dropped)));
    conn.context = c;
    c.peerName = conn.remoteAddress ?? 'unknown';
    c.peerId = this.store.peers.intern(c.peerName);
    this.counters.clients++;
    this.counters.connectionsTotal++;
    this.conns.add(c);
  }

  onData(conn: Connection, data: Buffer): void {
    const c = relpConn(conn);
    if (!c || c.done) return;
    this.counters.lastDataAt = Date.now();
    c.parser.push(data);
    if (c.parser.error !== undefined && !c.done) this.protocolError(c);
  }

  onDrain(conn: Connection): void {
    const c = relpConn(conn);
    if (c && !c.closed && !c.done && conn.paused) conn.resume();
  }

  onEnd(conn: Connection): void {
    const c = relpConn(conn);
    if (!c) return;
    // A frame cut by the FIN was never acknowledged: the sender sends it again.
    c.peerEnded = true;
    c.done = true;
    this.endIfAnswered(c);
  }

  onClose(conn: Connection): void {
    const c = relpConn(conn);
    if (!c || c.closed) return;
    c.closed = true;
    this.counters.clients--;
    this.conns.delete(c);
    this.waiting.delete(c);
  }

  private frame(c: RelpConn, txnr: number, command: string, buf: Buffer, start: number, end: number, dropped: number): void {
    if (c.done) return;
    switch (command) {
      case 'open': {
        if (c.opened) return this.protocolError(c);
        c.opened = true;
        const offers = buf.toString('latin1', start, end);
        const version = /(?:^|\n)relp_version=(\d+)/.exec(offers)?.[1] ?? '0';
        this.respond(c, -1, rsp(txnr, `200 OK\nrelp_version=${version}\nrelp_software=${this.opts.software}\ncommands=syslog`));
        return;
      }
      case 'syslog':
        if (!c.opened) return this.protocolError(c);
        // Not acknowledged, so not stored: the sender sends it again after reconnecting.
        if (this.persistProblem !== null && this.waitsForDisk) return this.giveUp(c);
        this.respond(c, this.store1(c, buf, start, end, dropped), rsp(txnr, '200 OK'));
        return;
      case 'close':
        this.respond(c, -1, rsp(txnr, '200 OK'));
        c.done = true;
        this.endIfAnswered(c);
        return;
      default:
        this.respond(c, -1, rsp(txnr, '500 command not supported'));
    }
  }

  /** Store one message; its sequence number. */
  private store1(c: RelpConn, buf: Buffer, start: number, end: number, dropped: number): number {
    while (end > start && (buf[end - 1] === LF || buf[end - 1] === CR)) end--;
    let keep = end - start;
    let tail: Buffer | undefined;
    const len = keep + dropped;
    if (len > this.opts.maxLine) {
      keep = utf8Cut(buf, start, keep, this.opts.maxLine);
      tail = truncationMarker(len - keep);
      this.counters.truncated++;
    }
    const now = Date.now();
    const seq = this.store.append(buf, start, start + keep, now, c.peerId, tail);
    this.counters.received++;
    if (this.onLine) {
      try {
        this.onLine({ seq, timeMs: now, peer: c.peerName, line: Buffer.from(this.store.line(seq)) });
      } catch (err) {
        this.opts.reportListenerError(err);
      }
    }
    return seq;
  }

  /** Send `text` now, or once `seq` is durable and every earlier response went out. */
  private respond(c: RelpConn, seq: number, text: string): void {
    const mustWait = this.waitsForDisk && seq > this.durableSeq;
    if (c.pending.length === 0 && !mustWait) {
      this.write(c, text);
      return;
    }
    c.pending.push({ seq: this.waitsForDisk ? seq : -1, text });
    this.waiting.add(c);
  }

  private write(c: RelpConn, text: string): void {
    if (c.closed || c.ended) return;
    // A sender that does not read its acks: stop reading from it until it does.
    if (!c.conn.write(text) && !c.done) c.conn.pause();
  }

  private onDurable(seq: number): void {
    this.durableSeq = seq;
    for (const c of this.waiting) {
      let i = 0;
      while (i < c.pending.length && c.pending[i].seq <= seq) this.write(c, c.pending[i++].text);
      c.pending.splice(0, i);
      if (c.pending.length === 0) {
        this.waiting.delete(c);
        this.endIfAnswered(c);
      }
    }
  }

  /** After close (or the peer's FIN): end once every response has been written. */
  private endIfAnswered(c: RelpConn): void {
    if (!c.done || c.ended || c.closed || c.pending.length > 0) return;
    c.ended = true;
    if (c.persistFailed) c.conn.end(SERVERCLOSE);
    else c.conn.end();
  }

  /** No more messages of `c` can be acknowledged: answer what can be, then serverclose
   *  (the sender reconnects and resends what was not acknowledged). */
  private giveUp(c: RelpConn): void {
    c.done = true;
    c.persistFailed = true;
    if (c.pending.length === 0) this.waiting.delete(c);
    this.endIfAnswered(c);
  }

  /**
   * Acks after fsync: messages past `coveredSeq` (the last one written before the disk
   * filled, or the last durable one when the journal failed) will not be acknowledged
   * now; their senders are closed with serverclose once the earlier ones are answered,
   * and so is every sender of a message while `problem` lasts. `null`: all is well again.
   */
  setPersistProblem(problem: string | null, coveredSeq: number): void {
    this.persistProblem = problem;
    if (problem === null || !this.waitsForDisk) return;
    for (const c of [...this.waiting]) {
      let i = 0;
      while (i < c.pending.length && c.pending[i].seq <= coveredSeq) i++;
      if (i === c.pending.length) continue;
      c.pending.length = i;
      this.giveUp(c);
    }
  }

  private protocolError(c: RelpConn): void {
    this.counters.protocolErrors++;
    c.done = true;
    c.pending.length = 0; // commands after the damage are not answered; the sender resends
    this.waiting.delete(c);
    c.ended = true;
    c.conn.end(SERVERCLOSE);
  }

  /** Responses still waiting for the disk. */
  get pendingAcks(): number {
    let n = 0;
    for (const c of this.waiting) n += c.pending.length;
    return n;
  }

  /** Shutdown: answer what is owed, tell each client, close. */
  finishAll(): void {
    for (const c of this.conns) {
      c.done = true;
      if (c.pending.length === 0 && !c.ended && !c.closed) {
        c.ended = true;
        c.conn.end(SERVERCLOSE);
      }
    }
  }
}
