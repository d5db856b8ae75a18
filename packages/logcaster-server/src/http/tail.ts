// GET /api/tail: new lines as Server-Sent Events, filtered like a query. One timer for
// every subscriber (running only while there is one) looks at what arrived since each
// subscriber's last delivered sequence number, filters it through the query engine
// (its scan workers, regexes with their time budget) and writes one event per match.
import type { HttpResponse } from '@logcaster/http';

import { QueryCancelledError, type QueryEngine } from '../query/engine';
import type { QuerySpec } from '../query/matcher';
import type { LogStore } from '../store/log-store';
import { entryJson } from './entry-json';

/** How often new lines are looked for, ms: a sent line shows within this (plus the filter). */
const TICK_MS = 200;
/** A comment every so often keeps idle streams (and proxies) from timing out. */
const HEARTBEAT_MS = 15_000;
/** Lines examined per subscriber per tick at most; older ones are reported as skipped. */
const MAX_PER_TICK = 10_000;

interface Subscriber {
  res: HttpResponse;
  spec: QuerySpec;
  /** First sequence number not looked at yet. */
  next: number;
  /** The engine is filtering this subscriber's new lines. */
  filtering: boolean;
  /** The client is not keeping up: wait for its queue to drain. */
  blocked: boolean;
  lastWriteAt: number;
}

export class TailHub {
  private readonly subs = new Set<Subscriber>();
  private timer: NodeJS.Timeout | undefined;
  /** Lines skipped because a subscriber fell behind by more than a tick's worth. */
  skipped = 0;

  constructor(
    private readonly store: LogStore,
    private readonly engine: QueryEngine,
  ) {}

  get size(): number {
    return this.subs.size;
  }

  /** Start an event stream on `res` for lines after `afterSeq` (Last-Event-ID) or from now. */
  subscribe(res: HttpResponse, spec: QuerySpec, afterSeq: number | undefined): void {
    const store = this.store;
    const next = afterSeq === undefined ? store.nextSeq : Math.max(store.firstSeq, Math.min(afterSeq + 1, store.nextSeq));
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', 'X-Accel-Buffering': 'no' });
    const sub: Subscriber = { res, spec, next, filtering: false, blocked: false, lastWriteAt: Date.now() };
    // The retry hint and a first comment let the client know the stream is open.
    res.write(`retry: 1000\n: tail from seq ${next}\n\n`);
    res.onClose = () => this.subs.delete(sub);
    res.onDrain = () => {
      sub.blocked = false;
    };
    this.subs.add(sub);
    if (this.timer === undefined) this.arm();
  }

  /** End every stream (server stopping). */
  closeAll(): void {
    for (const s of this.subs) if (!s.res.closed && !s.res.finished) s.res.end();
    this.subs.clear();
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.tick();
      if (this.subs.size > 0) this.arm();
    }, TICK_MS);
    this.timer.unref();
  }

  private tick(): void {
    const now = Date.now();
    const store = this.store;
    const tail = store.nextSeq;
    for (const sub of this.subs) {
      if (sub.filtering || sub.blocked || sub.res.closed) continue;
      if (sub.next < store.firstSeq) sub.next = store.firstSeq; // CLEAR or eviction
      if (sub.next >= tail) {
        if (now - sub.lastWriteAt >= HEARTBEAT_MS) this.write(sub, ': keep-alive\n\n');
        continue;
      }
      let from = sub.next;
      if (tail - from > MAX_PER_TICK) {
        this.skipped += tail - MAX_PER_TICK - from;
        this.write(sub, `event: skipped\ndata: {"lines":${tail - MAX_PER_TICK - from}}\n\n`);
        from = tail - MAX_PER_TICK;
      }
      sub.filtering = true;
      void this.deliver(sub, from);
    }
  }

  /** The matches among entries from `from` on, one event each; the last event of a
   *  delivery carries the id a reconnect resumes after. */
  private async deliver(sub: Subscriber, from: number): Promise<void> {
    try {
      const result = await this.engine.run({ spec: sub.spec, fromSeq: from }, { owner: sub, cancelled: () => sub.res.closed });
      try {
        sub.next = result.endSeq;
        let text = '';
        for (let b = await result.next(); b.length > 0 && !sub.res.closed; b = await result.next()) {
          for (let i = 0; i < b.length; i++) text += `data: ${entryJson(b, i)}\n\n`;
        }
        if (text !== '' && !sub.res.closed) this.write(sub, `${text.slice(0, -1)}id: ${result.endSeq - 1}\n\n`);
      } finally {
        result.close();
      }
    } catch (err) {
      if (!(err instanceof QueryCancelledError) && !sub.res.closed) this.write(sub, `event: error\ndata: ${JSON.stringify({ error: (err as Error).message })}\n\n`);
    } finally {
      sub.filtering = false;
    }
  }

  private write(sub: Subscriber, text: string): void {
    sub.lastWriteAt = Date.now();
    // false: the client is slow; skip ticks until it drained (what it missed is picked
    // up from sub.next then, within MAX_PER_TICK).
    if (!sub.res.write(text)) sub.blocked = true;
  }
}
