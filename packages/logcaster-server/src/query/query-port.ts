// The query port: one command per line, several per connection, answered in order.
// Results are counted first (FOUND n) and then streamed with backpressure: write()
// returning false stops the stream until onDrain; long streams also yield to the
// event loop so ingestion keeps flowing.
import type { Connection, Handler } from '@logcaster/core';

import { PrefixCache } from './format';
import { emptySpec, type QuerySpec } from './matcher';
import { parseQuery, parseRegex, timeRange } from './parse';
import { QueryCancelledError, RegexTimeoutError, type QueryEngine } from './engine';
import { snapshotLine, type LogStore, type Snapshot } from '../store/log-store';

export const HELP_TEXT = [
  'LogCaster query commands (one per line):',
  '  AUTH <token>                          authenticate (the first line of a client not on loopback)',
  '  HELP                                  this text',
  '  COUNT                                 COUNT: <entries stored>',
  '  STATS                                 STATS: Total=<n>, Dropped=<n>, Current=<n>, Clients=<n>, ...',
  '  QUERY <param>=<value> ...             FOUND: <n> matches, then [YYYY-MM-DD HH:MM:SS] <line> per match',
  '        keyword=<w>  keywords=<a,b>  operator=AND|OR (default AND)  regex=<re> or /<re>/i',
  '        time_from=<unix s>  time_to=<unix s>  severity=<max>  facility=<f>  host=<h>  app=<a>',
  '  SEARCH <keyword>                      QUERY keyword=<keyword>',
  '  FILTER <from unix s> <to unix s>      QUERY time_from=<from> time_to=<to>',
  '  REGEX <re>                            QUERY regex=<re>',
  '  RECENT <n>                            the newest n entries',
  '  CLEAR [<admin token>]                 delete every entry (loopback clients, or with the token)',
  '  QUIT                                  close this connection',
  'END',
].join('\n') + '\n';

const MAX_COMMAND = 64 * 1024;
const MAX_QUEUED = 64;
const BATCH_BYTES = 64 * 1024;
const TURN_BYTES = 1024 * 1024;
const NL = 10;

export interface QueryContext {
  store: LogStore;
  engine: QueryEngine;
  utc: boolean;
  adminToken: string | undefined;
  statsLine(): string;
  /** CLEAR was allowed: drop everything; returns how many entries were removed. */
  clear(): number;
}

class QueryConn {
  carry = '';
  overflow = false;
  queue: string[] = [];
  busy = false;
  closed = false;
  stream: Streamer | undefined;
  constructor(readonly conn: Connection) {}
}

/** Writes FOUND lines for a list of entry indexes of a snapshot. */
class Streamer {
  private pos = 0;
  private readonly prefix: PrefixCache;
  constructor(
    private readonly q: QueryConn,
    private readonly snap: Snapshot,
    private readonly matches: Uint32Array | undefined, // undefined: every entry
    utc: boolean,
    private readonly done: () => void,
  ) {
    this.prefix = new PrefixCache(utc);
  }

  get total(): number {
    return this.matches ? this.matches.length : this.snap.count;
  }

  pump(): void {
    const conn = this.q.conn;
    const total = this.total;
    let turnBytes = 0;
    let batch = Buffer.allocUnsafe(BATCH_BYTES);
    let used = 0;
    const flush = (): boolean => {
      if (used === 0) return true;
      const ok = conn.write(batch.subarray(0, used));
      turnBytes += used;
      used = 0;
      return ok;
    };
    while (this.pos < total) {
      if (this.q.closed || conn.closed) return;
      const i = this.matches ? this.matches[this.pos] : this.pos;
      const line = snapshotLine(this.snap, i);
      const pre = this.prefix.get(this.snap.time[i]);
      const need = pre.length + line.length + 1;
      if (used + need > batch.length) {
        if (!flush()) {
          return; // wait for onDrain
        }
        if (need > batch.length) batch = Buffer.allocUnsafe(need);
        if (turnBytes >= TURN_BYTES) {
          setImmediate(() => this.pump());
          return;
        }
      }
      pre.copy(batch, used);
      used += pre.length;
      const start = used;
      line.copy(batch, used);
      used += line.length;
      // One entry is one output line: octet-counted messages may contain line breaks.
      for (let k = batch.indexOf(NL, start); k >= 0 && k < used; k = batch.indexOf(NL, k + 1)) batch[k] = 32;
      for (let k = batch.indexOf(13, start); k >= 0 && k < used; k = batch.indexOf(13, k + 1)) batch[k] = 32;
      batch[used++] = NL;
      this.pos++;
    }
    const ok = flush();
    this.q.stream = undefined;
    if (ok) this.done();
    else this.q.stream = new DrainWaiter(this.done) as unknown as Streamer;
  }
}

/** After the last batch: continue with the next command once the queue drained. */
class DrainWaiter {
  constructor(private readonly done: () => void) {}
  pump(): void {
    this.done();
  }
}

export class QueryPort implements Handler {
  readonly conns = new Set<QueryConn>();
  commands = 0;

  constructor(private readonly ctx: QueryContext) {}

  onOpen(conn: Connection): void {
    if (conn.openError) {
      try {
        conn.write(`ERROR: ${conn.openError.message}\n`);
      } catch {
        /* closing anyway */
      }
      return;
    }
    const q = new QueryConn(conn);
    conn.context = q;
    this.conns.add(q);
  }

  onData(conn: Connection, data: Buffer): void {
    const q = conn.context as QueryConn | undefined;
    if (!q) return;
    let pos = 0;
    while (pos < data.length) {
      const nl = data.indexOf(NL, pos);
      const end = nl < 0 ? data.length : nl;
      if (!q.overflow) {
        if (q.carry.length + (end - pos) > MAX_COMMAND) {
          q.overflow = true;
          q.carry = '';
        } else {
          q.carry += data.toString('utf8', pos, end);
        }
      }
      if (nl < 0) break;
      if (q.overflow) {
        q.queue.push('\u0000too-long');
        q.overflow = false;
      } else {
        q.queue.push(q.carry);
      }
      q.carry = '';
      pos = nl + 1;
    }
    if (q.queue.length > MAX_QUEUED) conn.pause();
    this.next(q);
  }

  onDrain(conn: Connection): void {
    const q = conn.context as QueryConn | undefined;
    if (q?.stream) q.stream.pump();
  }

  onEnd(conn: Connection): void {
    const q = conn.context as QueryConn | undefined;
    if (!q) return;
    if (q.carry.trim() !== '') q.queue.push(q.carry);
    q.carry = '';
    this.next(q);
  }

  onClose(conn: Connection): void {
    const q = conn.context as QueryConn | undefined;
    if (!q) return;
    q.closed = true;
    q.stream = undefined;
    this.conns.delete(q);
  }

  private reply(q: QueryConn, text: string): void {
    if (q.closed || q.conn.closed) return;
    try {
      q.conn.write(text);
    } catch {
      /* peer went away */
    }
  }

  private next(q: QueryConn): void {
    while (!q.busy && !q.closed && q.queue.length > 0) {
      const line = q.queue.shift()!;
      if (q.conn.paused && q.queue.length <= MAX_QUEUED / 2) q.conn.resume();
      q.busy = true;
      this.execute(q, line.replace(/\r$/, ''));
    }
  }

  private finish(q: QueryConn): void {
    q.busy = false;
    this.next(q);
  }

  private execute(q: QueryConn, line: string): void {
    if (line === '\u0000too-long') {
      this.reply(q, `ERROR: command longer than ${MAX_COMMAND} bytes\n`);
      return this.finish(q);
    }
    const trimmed = line.trim();
    if (trimmed === '') return this.finish(q);
    this.commands++;
    const sp = trimmed.search(/\s/);
    const cmd = (sp < 0 ? trimmed : trimmed.slice(0, sp)).toUpperCase();
    const args = sp < 0 ? '' : trimmed.slice(sp + 1).trim();
    const store = this.ctx.store;
    switch (cmd) {
      case 'HELP':
        this.reply(q, HELP_TEXT);
        return this.finish(q);
      case 'COUNT':
        this.reply(q, `COUNT: ${store.size}\n`);
        return this.finish(q);
      case 'STATS':
        this.reply(q, `${this.ctx.statsLine()}\n`);
        return this.finish(q);
      case 'QUIT':
      case 'EXIT':
        q.conn.end();
        q.closed = true;
        return;
      case 'CLEAR': {
        const token = this.ctx.adminToken;
        const loopback = isLoopback(q.conn.remoteAddress);
        if (args !== '' && token !== undefined && args !== token) {
          this.reply(q, 'ERROR: invalid admin token\n');
        } else if (!(loopback || (token !== undefined && args === token))) {
          this.reply(q, token === undefined ? 'ERROR: CLEAR is only allowed from loopback (configure --admin-token to allow remote clients)\n' : 'ERROR: CLEAR requires the admin token: CLEAR <token>\n');
        } else {
          this.reply(q, `CLEARED: ${this.ctx.clear()}\n`);
        }
        return this.finish(q);
      }
      case 'RECENT': {
        if (!/^\d+$/.test(args)) {
          this.reply(q, 'ERROR: usage: RECENT <n> (n a non-negative integer)\n');
          return this.finish(q);
        }
        const snap = store.snapshot(Number(args));
        return this.stream(q, snap, undefined);
      }
      case 'SEARCH': {
        if (args === '') {
          this.reply(q, 'ERROR: usage: SEARCH <keyword>\n');
          return this.finish(q);
        }
        const spec = emptySpec();
        spec.keywords.push(args);
        return this.search(q, spec);
      }
      case 'FILTER': {
        const parts = args.split(/\s+/);
        if (parts.length !== 2 || parts[0] === '') {
          this.reply(q, 'ERROR: usage: FILTER <from unix seconds> <to unix seconds>\n');
          return this.finish(q);
        }
        const spec = emptySpec();
        const err = timeRange(parts[0], parts[1], spec);
        if (err) {
          this.reply(q, `ERROR: ${err}\n`);
          return this.finish(q);
        }
        return this.search(q, spec);
      }
      case 'REGEX': {
        if (args === '') {
          this.reply(q, 'ERROR: usage: REGEX <regular expression>\n');
          return this.finish(q);
        }
        const r = parseRegex(args);
        if (!r.ok) {
          this.reply(q, `ERROR: ${r.error}\n`);
          return this.finish(q);
        }
        const spec = emptySpec();
        spec.regex = r.value;
        return this.search(q, spec);
      }
      case 'QUERY': {
        const r = parseQuery(args);
        if (!r.ok) {
          this.reply(q, `ERROR: ${r.error}\n`);
          return this.finish(q);
        }
        return this.search(q, r.value);
      }
      default:
        this.reply(q, `ERROR: Unknown command '${cmd.slice(0, 64)}'. Type HELP for the list of commands.\n`);
        return this.finish(q);
    }
  }

  private search(q: QueryConn, spec: QuerySpec): void {
    const snap = this.ctx.store.snapshot();
    this.ctx.engine.run(snap, spec, () => q.closed).then(
      (matches) => this.stream(q, snap, matches),
      (err: Error) => {
        if (err instanceof QueryCancelledError) return;
        if (err instanceof RegexTimeoutError) this.reply(q, `ERROR: ${err.message}\n`);
        else this.reply(q, `ERROR: query failed: ${err.message}\n`);
        this.finish(q);
      },
    );
  }

  private stream(q: QueryConn, snap: Snapshot, matches: Uint32Array | undefined): void {
    if (q.closed) return;
    const s = new Streamer(q, snap, matches, this.ctx.utc, () => this.finish(q));
    this.reply(q, `FOUND: ${s.total} matches\n`);
    q.stream = s;
    s.pump();
  }

  closeAll(): void {
    for (const q of this.conns) {
      q.closed = true;
      q.conn.destroy();
    }
  }
}

export function isLoopback(addr: string | undefined): boolean {
  if (!addr) return false;
  return addr === '::1' || addr.startsWith('127.') || addr.startsWith('::ffff:127.');
}
