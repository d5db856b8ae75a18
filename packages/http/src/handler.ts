// HTTP/1.1 over the reactor's connection-level Handler: incremental parsing of heads
// and bodies, one exchange at a time per connection (pipelined requests wait, their
// answers leave in order), keep-alive, limits, timeouts and half-close.
import type { Connection, Handler } from '@logcaster/core';

import { ChunkedBody, FixedBody, type BodyReader } from './body';
import { HttpRequest } from './request';
import { parseRequestHead, type HeadError, type RequestHead } from './request-head';
import { HttpResponse, type ResponseSink } from './response';
import { dateField } from './date';
import { statusLine } from './status';

export type RequestHandler = (req: HttpRequest, res: HttpResponse) => void | Promise<void>;

export interface HttpOptions {
  /** Request line plus header fields, bytes; more is refused with 431. Default 16 KiB. */
  maxHeaderBytes?: number;
  /** Header fields per request; more is refused with 431. Default 100. */
  maxHeaders?: number;
  /** Request body, bytes (Content-Length or chunked); more is refused with 413. Default 1 MiB. */
  maxBodyBytes?: number;
  /** Open connections; more are answered 503 and closed. Default 1000. */
  maxConnections?: number;
  /** Close a connection idle this long between requests, ms. Default 5000. */
  keepAliveTimeoutMs?: number;
  /** A request (head and body) must arrive within this, ms; else 408. Default 30000. */
  requestTimeoutMs?: number;
  /** Close a response that moved no bytes for this long (the client stopped reading, or
   *  the handler stalled), ms. Long-lived streams send something more often. Default 60000. */
  responseTimeoutMs?: number;
  /** A request handler threw or rejected. The request got a 500 (or, if its head was
   *  already sent, its connection was closed). Default: a process warning. */
  onError?: (err: Error, req: HttpRequest) => void;
}

export interface HttpCounters {
  connections: number;
  connectionsTotal: number;
  connectionsRejected: number;
  requests: number;
  /** Requests refused before reaching the handler (400, 408, 413, 431, 501, 505). */
  badRequests: number;
  handlerErrors: number;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');
const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';
/** Unparsed bytes kept while an exchange is in progress before reading pauses. */
const PENDING_LIMIT = 64 * 1024;
/** Responses of one batch of pipelined requests are written together up to this size. */
const CORK_LIMIT = 64 * 1024;
/** After an error response we keep reading (and dropping) this long, so the client
 *  receives the answer instead of a reset caused by its unread request bytes. */
const LINGER_MS = 2000;

const enum Deadline {
  None,
  Request, // 408 when it passes
  Linger, // destroy when it passes
}

class HttpConnection implements ResponseSink {
  /** Received bytes not parsed yet (owned copies; onData's views die with the call). */
  pending: Buffer | undefined;
  head: RequestHead | undefined; // waiting for its body
  body: BodyReader | undefined;
  current: HttpResponse | undefined;
  /** Inside process(): completions continue the loop instead of re-entering it. */
  processing = false;
  /** The last write hit the high-water mark: the next exchange waits for onDrain. */
  blocked = false;
  /** No more requests are read: an error answer, Connection: close, or the end. */
  closing = false;
  peerEnded = false;
  deadline = 0;
  deadlineKind = Deadline.None;
  /** Idle periods in a row while an exchange is in progress. */
  idleStrikes = 0;
  private out: (string | Uint8Array)[] = [];
  private outBytes = 0;
  private corked = false;

  constructor(
    readonly conn: Connection,
    readonly server: HttpHandler,
  ) {}

  get closed(): boolean {
    return this.conn.closed;
  }

  write(data: string | Uint8Array): boolean {
    if (this.conn.closed) return false;
    this.idleStrikes = 0;
    if (this.corked) {
      this.out.push(data);
      this.outBytes += data.length;
      if (this.outBytes >= CORK_LIMIT) this.flush();
      return !this.blocked;
    }
    if (!this.conn.write(data)) this.blocked = true;
    return !this.blocked;
  }

  cork(): void {
    this.corked = true;
  }

  /** Write what was corked, in one piece. */
  flush(): void {
    this.corked = false;
    const out = this.out;
    if (out.length === 0) return;
    this.out = [];
    this.outBytes = 0;
    if (this.conn.closed) return;
    let data: string | Uint8Array;
    if (out.length === 1) data = out[0];
    else if (out.every((d) => typeof d === 'string')) data = out.join('');
    else data = Buffer.concat(out.map((d) => (typeof d === 'string' ? Buffer.from(d) : d)));
    if (!this.conn.write(data)) this.blocked = true;
  }

  responseDone(keepAlive: boolean): void {
    this.current = undefined;
    this.idleStrikes = 0;
    if (!keepAlive) {
      this.stopReading();
      return;
    }
    if (!this.processing) this.server.process(this);
  }

  destroy(err: Error): void {
    this.current = undefined;
    this.conn.destroy(err);
  }

  /** Answer nothing more: end our side once queued bytes are out, and linger a little
   *  so the client reads the answer rather than a reset. */
  stopReading(): void {
    if (this.closing) return;
    this.closing = true;
    this.pending = undefined;
    this.head = undefined;
    this.body = undefined;
    this.flush();
    if (this.conn.closed) return;
    this.conn.end();
    if (!this.conn.closed) this.server.watch(this, Deadline.Linger, LINGER_MS);
  }
}

/** A reactor Handler speaking HTTP/1.1; create with createHttpHandler(). */
export class HttpHandler implements Handler {
  /** Requests are answered after the client's FIN; our side ends when they are done. */
  readonly allowHalfOpen = true;
  readonly counters: HttpCounters = { connections: 0, connectionsTotal: 0, connectionsRejected: 0, requests: 0, badRequests: 0, handlerErrors: 0 };
  private readonly conns = new Set<HttpConnection>();
  private readonly watched = new Set<HttpConnection>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly maxHeaderBytes: number;
  private readonly maxHeaders: number;
  private readonly maxBodyBytes: number;
  private readonly maxConnections: number;
  private readonly keepAliveTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  private readonly responseTimeoutMs: number;
  private readonly reportError: (err: Error, req: HttpRequest) => void;

  constructor(
    private readonly handle: RequestHandler,
    options: HttpOptions = {},
  ) {
    this.maxHeaderBytes = limit('maxHeaderBytes', options.maxHeaderBytes ?? 16 * 1024, 256);
    this.maxHeaders = limit('maxHeaders', options.maxHeaders ?? 100, 1);
    this.maxBodyBytes = limit('maxBodyBytes', options.maxBodyBytes ?? 1024 * 1024, 0);
    this.maxConnections = limit('maxConnections', options.maxConnections ?? 1000, 1);
    this.keepAliveTimeoutMs = limit('keepAliveTimeoutMs', options.keepAliveTimeoutMs ?? 5000, 1);
    this.requestTimeoutMs = limit('requestTimeoutMs', options.requestTimeoutMs ?? 30000, 1);
    this.responseTimeoutMs = limit('responseTimeoutMs', options.responseTimeoutMs ?? 60000, 1);
    this.reportError = options.onError ?? ((err, req) => process.emitWarning(`HTTP handler failed on ${req.method} ${req.target}: ${err.stack ?? err.message}`, 'LogCasterHttpWarning'));
  }

  /** Close idle keep-alive connections and stop the timeout sweep; exchanges in
   *  progress finish, then their connections close. */
  closeIdle(): void {
    for (const c of this.conns) {
      if (c.current === undefined && c.head === undefined && c.pending === undefined) c.conn.destroy();
      else c.stopReading();
    }
  }

  onOpen(conn: Connection): void {
    if (conn.openError || this.counters.connections >= this.maxConnections) {
      this.counters.connectionsRejected++;
      const body = conn.openError ? 'server cannot watch more connections\n' : 'too many connections\n';
      conn.setIdleTimeout(LINGER_MS);
      conn.end(`${statusLine(503)}${dateField()}Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n${body}`);
      return;
    }
    const c = new HttpConnection(conn, this);
    conn.context = c;
    this.conns.add(c);
    this.counters.connections++;
    this.counters.connectionsTotal++;
    conn.setIdleTimeout(this.keepAliveTimeoutMs);
  }

  onData(conn: Connection, data: Buffer): void {
    const c = conn.context as HttpConnection | undefined;
    if (c === undefined || c.closing) return; // refused, or lingering after an error: dropped
    if (c.pending === undefined && c.current === undefined && !c.blocked) {
      this.parse(c, data, true);
      return;
    }
    c.pending = c.pending === undefined ? Buffer.from(data) : Buffer.concat([c.pending, data]);
    if (c.current !== undefined || c.blocked) {
      if (c.pending.length >= PENDING_LIMIT) conn.pause(); // a pipelining client waits for us
      return;
    }
    this.process(c);
  }

  onDrain(conn: Connection): void {
    const c = conn.context as HttpConnection | undefined;
    if (c === undefined) return;
    c.blocked = false;
    if (c.current !== undefined) c.current.onDrain?.();
    else if (!c.closing) this.process(c);
  }

  onEnd(conn: Connection): void {
    const c = conn.context as HttpConnection | undefined;
    if (c === undefined) return;
    c.peerEnded = true;
    if (!c.closing && c.current === undefined && !c.blocked) this.process(c);
  }

  onTimeout(conn: Connection): void {
    const c = conn.context as HttpConnection | undefined;
    if (c === undefined || c.closing) {
      conn.destroy();
      return;
    }
    if (c.current !== undefined) {
      // A stream in progress: only its lack of progress closes it.
      if (++c.idleStrikes * this.keepAliveTimeoutMs >= this.responseTimeoutMs) conn.destroy(new Error('HTTP response made no progress'));
      return;
    }
    if (c.head !== undefined || c.pending !== undefined) this.refuse(c, { status: 408, reason: 'request not received in time' });
    else conn.destroy(); // idle keep-alive: nothing is unread, so this is a plain FIN
  }

  onClose(conn: Connection): void {
    const c = conn.context as HttpConnection | undefined;
    if (c === undefined) return;
    this.conns.delete(c);
    this.unwatch(c);
    this.counters.connections--;
    const res = c.current;
    c.current = undefined;
    res?.onClose?.();
  }

  /** Continue with the bytes kept in `pending` (after a response, a drain, the FIN). */
  process(c: HttpConnection): void {
    const buf = c.pending ?? EMPTY;
    c.pending = undefined;
    this.parse(c, buf, false);
    if (c.conn.paused && pendingBytes(c) < PENDING_LIMIT / 2) c.conn.resume();
  }

  /** Parse and answer requests in `buf` while no exchange is in progress; keep the rest.
   *  `transient`: `buf` is onData's view and must be copied to be kept. */
  private parse(c: HttpConnection, buf: Buffer, transient: boolean): void {
    c.processing = true;
    c.cork();
    let off = 0;
    try {
      while (c.current === undefined && !c.closing && !c.blocked) {
        if (c.body !== undefined) {
          off = c.body.push(buf, off, buf.length);
          if (c.body.error) {
            this.refuse(c, c.body.error);
            return;
          }
          if (!c.body.done) break;
          const head = c.head!;
          const body = c.body.body();
          c.head = undefined;
          c.body = undefined;
          this.dispatch(c, head, body);
          continue;
        }
        // A blank line before a request line is allowed (RFC 9112 §2.2).
        while (off + 1 < buf.length && buf[off] === 13 && buf[off + 1] === 10) off += 2;
        if (off >= buf.length) break;
        const end = buf.indexOf(CRLFCRLF, off);
        if (end < 0 || end - off > this.maxHeaderBytes) {
          if (end >= 0 || buf.length - off > this.maxHeaderBytes) {
            this.refuse(c, { status: 431, reason: `request head larger than ${this.maxHeaderBytes} bytes` });
            return;
          }
          break; // the head continues in a later packet
        }
        const head = parseRequestHead(buf, off, end, { maxHeaders: this.maxHeaders, maxBodyBytes: this.maxBodyBytes });
        off = end + 4;
        if ('status' in head) {
          this.refuse(c, head);
          return;
        }
        if (head.bodyLength === 0) {
          this.dispatch(c, head, EMPTY);
          continue;
        }
        c.head = head;
        c.body = head.bodyLength > 0 ? new FixedBody(head.bodyLength) : new ChunkedBody(this.maxBodyBytes, this.maxHeaderBytes);
        if (head.expectContinue && head.version === '1.1' && off >= buf.length) c.write(CONTINUE);
      }
      if (off < buf.length && !c.closing) c.pending = transient ? Buffer.from(buf.subarray(off)) : off > 0 ? buf.subarray(off) : buf;
    } finally {
      c.processing = false;
      c.flush();
    }
    this.afterParse(c);
  }

  private afterParse(c: HttpConnection): void {
    if (c.closing || c.current !== undefined || c.blocked) return;
    if (c.peerEnded) {
      // Everything complete before the FIN is answered; a partial request never will be.
      c.stopReading();
      return;
    }
    if (c.head !== undefined || c.pending !== undefined) {
      if (c.deadlineKind !== Deadline.Request) this.watch(c, Deadline.Request, this.requestTimeoutMs);
    } else if (c.deadlineKind !== Deadline.None) this.unwatch(c);
  }

  private dispatch(c: HttpConnection, head: RequestHead, body: Buffer): void {
    if (c.deadlineKind !== Deadline.None) this.unwatch(c);
    this.counters.requests++;
    const req = new HttpRequest(head, body, c.conn);
    const res = new HttpResponse(c, req);
    c.current = res;
    try {
      const done = this.handle(req, res);
      if (done instanceof Promise) done.catch((err: unknown) => this.failed(c, req, res, err));
    } catch (err) {
      this.failed(c, req, res, err);
    }
  }

  private failed(c: HttpConnection, req: HttpRequest, res: HttpResponse, err: unknown): void {
    this.counters.handlerErrors++;
    const e = err instanceof Error ? err : new Error(String(err));
    this.reportError(e, req);
    if (res.finished || c.conn.closed) return;
    if (res.headersSent) {
      c.destroy(e);
      return;
    }
    res.keepAlive = false;
    res.send(500, 'internal server error\n');
  }

  /** Answer a request that cannot be served with `status` and stop reading. */
  private refuse(c: HttpConnection, err: HeadError): void {
    this.counters.badRequests++;
    c.pending = undefined;
    const body = `${err.reason}\n`;
    c.write(`${statusLine(err.status)}${dateField()}Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    c.stopReading();
  }

  watch(c: HttpConnection, kind: Deadline, ms: number): void {
    c.deadline = Date.now() + ms;
    c.deadlineKind = kind;
    this.watched.add(c);
    if (this.sweepTimer === undefined) this.armSweep();
  }

  private unwatch(c: HttpConnection): void {
    c.deadlineKind = Deadline.None;
    this.watched.delete(c);
  }

  private armSweep(): void {
    // One timer for every deadline; it runs only while some connection has one. Unref'd:
    // the connections themselves keep the process alive.
    this.sweepTimer = setTimeout(() => {
      this.sweepTimer = undefined;
      const now = Date.now();
      for (const c of this.watched) {
        if (c.deadline > now) continue;
        const kind = c.deadlineKind;
        this.unwatch(c);
        if (c.conn.closed) continue;
        if (kind === Deadline.Request) this.refuse(c, { status: 408, reason: 'request not received in time' });
        else c.conn.destroy();
      }
      if (this.watched.size > 0) this.armSweep();
    }, 250);
    this.sweepTimer.unref();
  }
}

const EMPTY = Buffer.alloc(0);

function pendingBytes(c: HttpConnection): number {
  return c.pending === undefined ? 0 : c.pending.length;
}

function limit(name: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min) throw new RangeError(`${name} must be an integer >= ${min}, got ${value}`);
  return value;
}

/** A reactor Handler that answers HTTP/1.1 requests with `handle`:
 *  `reactor.listen({ port: 8080 }, createHttpHandler((req, res) => res.send(200, 'hi\n')))`. */
export function createHttpHandler(handle: RequestHandler, options?: HttpOptions): HttpHandler {
  return new HttpHandler(handle, options);
}
