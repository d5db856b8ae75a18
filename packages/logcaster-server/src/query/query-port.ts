// The query port: one command per line, several per connection, answered in order.
//
// Per connection, received bytes go into CommandLines; drive() takes the complete
// lines one at a time and executes them in a loop — never by recursion, so any number
// may arrive pipelined in one packet. It stops while a command is in progress (a scan,
// a regex, a streamed answer) or while the answer queue is over its high-water mark
// (write() returned false — HELP and COUNT obey it like FOUND streams do); reading from
// the client is paused meanwhile, so unprocessed commands wait in the kernel, not here.
//
// The handler is half-open: a client's FIN means "done sending". Every command
// received before it is answered, in order, and then we end the connection.
import type { Connection, Handler } from '@logcaster/core';

import { dropRefused, LINGER_MS, refuse } from '../refusal';
import type { LogStore } from '../store/log-store';
import { QueryCancelledError, RegexTimeoutError, type QueryEngine, type QueryRequest, type QueryResult } from './engine';
import { CommandLines, MAX_COMMAND, parseCommand, TOO_LONG, type Command } from './parse';
import { ResultStreamer } from './stream';

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

/** How metrics name each kind of command (QUERY covers SEARCH, FILTER and REGEX; ERROR
 *  an unknown command or a bad argument). */
const COMMAND_NAMES: Record<Command['kind'], string> = {
  none: 'NONE',
  help: 'HELP',
  count: 'COUNT',
  stats: 'STATS',
  quit: 'QUIT',
  clear: 'CLEAR',
  recent: 'RECENT',
  search: 'QUERY',
  error: 'ERROR',
};

export function tooManyClientsLine(limit: number): string {
  return `ERROR: Too many query clients (limit ${limit}). Try again later.\n`;
}

export interface QueryContext {
  store: LogStore;
  engine: QueryEngine;
  utc: boolean;
  adminToken: string | undefined;
  /** Concurrent query connections; more are refused with tooManyClientsLine. */
  maxClients: number;
  statsLine(): string;
  /** A command finished (answered, or its client went away): for metrics. */
  observe?(command: string, seconds: number): void;
  /** CLEAR was allowed: drop everything; returns how many entries were removed. */
  clear(): number;
  /** An exception escaped the handling of one connection (which is then destroyed). */
  reportError(err: unknown): void;
}

class QueryConn {
  readonly input = new CommandLines();
  /** A command is in progress: a scan or regex, or its answer is being streamed. */
  busy = false;
  /** The answer queue is over its high-water mark: wait for onDrain. */
  blocked = false;
  /** The peer sent FIN. */
  peerEnded = false;
  /** QUIT, or everything before the FIN answered: we ended the connection. */
  done = false;
  closed = false;
  stream: ResultStreamer | undefined;
  /** The command in progress, as metrics name it, and when it started (performance.now()). */
  command: string | undefined;
  startedAt = 0;
  constructor(readonly conn: Connection) {}
}

export class QueryPort implements Handler {
  /** Every command before the client's FIN is answered; drive() ends the connection. */
  readonly allowHalfOpen = true;
  readonly conns = new Set<QueryConn>();
  commands = 0;
  refused = 0;

  constructor(private readonly ctx: QueryContext) {}

  onOpen(conn: Connection): void {
    if (conn.openError) {
      try {
        conn.write(`ERROR: ${conn.openError.message}\n`);
      } catch {
        /* closing anyway */
      }
      return; // the reactor closes it
    }
    if (this.conns.size >= this.ctx.maxClients) {
      this.refused++;
      refuse(conn, tooManyClientsLine(this.ctx.maxClients));
      return;
    }
    const q = new QueryConn(conn);
    conn.context = q;
    this.conns.add(q);
  }

  onData(conn: Connection, data: Buffer): void {
    if (dropRefused(conn, false)) return;
    const q = conn.context as QueryConn;
    if (q.done) return;
    q.input.push(data);
    this.drive(q);
  }

  onDrain(conn: Connection): void {
    const q = conn.context;
    if (!(q instanceof QueryConn) || q.closed) return;
    q.blocked = false;
    q.stream?.pump(); // a stream's own writes wait for this too
    this.drive(q);
  }

  onEnd(conn: Connection): void {
    const q = conn.context;
    if (!(q instanceof QueryConn)) return;
    q.peerEnded = true;
    q.input.finish();
    this.drive(q);
  }

  onTimeout(conn: Connection): void {
    if (!dropRefused(conn, true)) conn.destroy(); // only refused and quitting connections have a timeout
  }

  onClose(conn: Connection): void {
    const q = conn.context;
    if (!(q instanceof QueryConn)) return;
    q.closed = true;
    q.stream?.stop();
    q.stream = undefined;
    this.conns.delete(q);
    this.observed(q);
  }

  /** Execute complete commands in order until one is in progress or the answer
   *  queue is full; pause reading meanwhile; end the connection once everything
   *  received before the peer's FIN (or a QUIT) is answered. */
  private drive(q: QueryConn): void {
    while (!q.closed && !q.done && !q.busy && !q.blocked) {
      const line = q.input.next();
      if (line === undefined) break;
      if (line === TOO_LONG) this.reply(q, `ERROR: command longer than ${MAX_COMMAND} bytes\n`);
      else {
        this.execute(q, parseCommand(line));
        if (!q.busy) this.observed(q); // answered at once; a query is observed when its stream ends
      }
    }
    if (q.closed || q.done) return;
    if (q.busy || q.blocked) {
      q.conn.pause();
    } else if (q.peerEnded) {
      this.finish(q); // every command before the FIN is answered
    } else {
      q.conn.resume();
    }
  }

  private finish(q: QueryConn): void {
    q.done = true;
    q.conn.end();
  }

  private reply(q: QueryConn, text: string): void {
    if (q.closed || q.done || q.conn.closed) return;
    if (!q.conn.write(text)) q.blocked = true;
  }

  private execute(q: QueryConn, cmd: Command): void {
    if (cmd.kind === 'none') return;
    this.commands++;
    q.command = COMMAND_NAMES[cmd.kind];
    q.startedAt = performance.now();
    const store = this.ctx.store;
    switch (cmd.kind) {
      case 'help':
        return this.reply(q, HELP_TEXT);
      case 'count':
        return this.reply(q, `COUNT: ${this.ctx.engine.retained}\n`);
      case 'stats':
        return this.reply(q, `${this.ctx.statsLine()}\n`);
      case 'quit':
        this.finish(q);
        // A peer that neither reads nor closes after QUIT does not keep its descriptor.
        q.conn.setIdleTimeout(LINGER_MS);
        return;
      case 'clear':
        return this.reply(q, this.clear(q, cmd.token));
      case 'recent':
        return this.run(q, { recent: cmd.n });
      case 'search':
        return this.run(q, { spec: cmd.spec });
      case 'error':
        return this.reply(q, `ERROR: ${cmd.message}\n`);
    }
  }

  private clear(q: QueryConn, given: string): string {
    const token = this.ctx.adminToken;
    const loopback = isLoopback(q.conn.remoteAddress);
    if (given !== '' && token !== undefined && given !== token) return 'ERROR: invalid admin token\n';
    if (!(loopback || (token !== undefined && given === token))) {
      return token === undefined
        ? 'ERROR: CLEAR is only allowed from loopback (configure --admin-token to allow remote clients)\n'
        : 'ERROR: CLEAR requires the admin token: CLEAR <token>\n';
    }
    return `CLEARED: ${this.ctx.clear()}\n`;
  }

  /** A query: counted in the engine, then its entries streamed as the client reads. */
  private run(q: QueryConn, req: QueryRequest): void {
    q.busy = true;
    this.ctx.engine.run(req, { owner: q, cancelled: () => q.closed }).then(
      (res) => this.guarded(q, () => this.startStream(q, res)),
      (err: Error) =>
        this.guarded(q, () => {
          q.busy = false;
          this.observed(q);
          if (err instanceof QueryCancelledError) return;
          this.reply(q, err instanceof RegexTimeoutError ? `ERROR: ${err.message}\n` : `ERROR: query failed: ${err.message}\n`);
        }),
    );
  }

  private startStream(q: QueryConn, res: QueryResult): void {
    if (q.closed) {
      res.close();
      return;
    }
    this.reply(q, `FOUND: ${res.count} matches\n`);
    // done() runs after the last entry was written and the queue drained, or with the
    // error that cut the answer short (the count is already out: say why and close).
    q.stream = new ResultStreamer(res, q.conn, this.ctx.utc, (err) =>
      this.guarded(q, () => {
        q.stream = undefined;
        q.busy = false;
        this.observed(q);
        if (err) {
          this.reply(q, `ERROR: query failed: ${err.message}\n`);
          this.finish(q);
        }
      }),
    );
    q.stream.pump();
  }

  /** Work resumed outside a reactor callback (a counted query, a finished stream):
   *  then drive on. An exception is what the reactor does for its callbacks: that
   *  connection is destroyed, the error reported. */
  private guarded(q: QueryConn, fn: () => void): void {
    if (q.closed) return;
    try {
      fn();
      this.drive(q);
    } catch (err) {
      this.ctx.reportError(err);
      q.conn.destroy(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private observed(q: QueryConn): void {
    if (q.command === undefined) return;
    this.ctx.observe?.(q.command, (performance.now() - q.startedAt) / 1000);
    q.command = undefined;
  }

  closeAll(): void {
    for (const q of this.conns) {
      q.closed = true;
      q.stream?.stop();
      q.conn.destroy();
    }
  }
}

export function isLoopback(addr: string | undefined): boolean {
  if (!addr) return false;
  return addr === '::1' || addr.startsWith('127.') || addr.startsWith('::ffff:127.');
}
