// The query port: one command per line, several per connection, answered in order.
// Results are counted first (FOUND n) and then streamed with backpressure by a
// ResultStreamer (stream.ts): write() returning false stops the stream until onDrain.
import type { Connection, Handler } from '@logcaster/core';

import { emptySpec, type QuerySpec } from './matcher';
import { parseQuery, parseRegex, timeRange } from './parse';
import { QueryCancelledError, RegexTimeoutError, type QueryEngine, type QueryRequest, type QueryResult } from './engine';
import { ResultStreamer } from './stream';
import type { LogStore } from '../store/log-store';

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
  /** The peer half-closed: end once every command it sent is answered. */
  ended = false;
  stream: ResultStreamer | undefined;
  constructor(readonly conn: Connection) {}
}

export class QueryPort implements Handler {
  /** Answers are asynchronous: after a client's FIN the port still writes them, then ends. */
  readonly allowHalfOpen = true;
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
    q.ended = true;
    this.next(q);
  }

  onClose(conn: Connection): void {
    const q = conn.context as QueryConn | undefined;
    if (!q) return;
    q.closed = true;
    q.stream?.stop();
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
    if (q.ended && !q.busy && !q.closed && q.queue.length === 0) {
      q.closed = true;
      q.conn.end();
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
        return this.run(q, { recent: Number(args) });
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
    this.run(q, { spec });
  }

  private run(q: QueryConn, req: QueryRequest): void {
    this.ctx.engine.run(req, { owner: q, cancelled: () => q.closed }).then(
      (res) => this.stream(q, res),
      (err: Error) => {
        if (err instanceof QueryCancelledError) return;
        if (err instanceof RegexTimeoutError) this.reply(q, `ERROR: ${err.message}\n`);
        else this.reply(q, `ERROR: query failed: ${err.message}\n`);
        this.finish(q);
      },
    );
  }

  private stream(q: QueryConn, res: QueryResult): void {
    if (q.closed) {
      res.close();
      return;
    }
    this.reply(q, `FOUND: ${res.count} matches\n`);
    q.stream = new ResultStreamer(res, q.conn, this.ctx.utc, (err) => {
      q.stream = undefined;
      if (err) {
        // The answer cannot be completed: say why and close, the count is already out.
        this.reply(q, `ERROR: query failed: ${err.message}\n`);
        if (!q.conn.closed) q.conn.end();
        q.closed = true;
        return;
      }
      this.finish(q);
    });
    q.stream.pump();
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
