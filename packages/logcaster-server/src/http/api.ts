// The HTTP port's routes: health and readiness, Prometheus metrics, the query API
// (NDJSON), the live tail (SSE), statistics, CLEAR, and the web console's files.
import { isIP } from 'node:net';
import { hostname } from 'node:os';

import type { HttpRequest, HttpResponse, RequestHandler } from '@logcaster/http';

import type { TokenSet } from '../access/tokens';
import { QueryCancelledError, RegexTimeoutError, type QueryEngine, type QueryRequest } from '../query/engine';
import { emptySpec, type QuerySpec } from '../query/matcher';
import { parseQuery } from '../query/parse';
import { isLoopback } from '../query/query-port';
import type { LogStore } from '../store/log-store';
import type { ConsoleAssets } from './console-assets';
import { CONTENT_TYPE as METRICS_TYPE } from './exposition';
import { streamNdjson } from './ndjson';
import type { TailHub } from './tail';

export interface ReadyReport {
  ready: boolean;
  /** Each check: true when fine, or what is wrong. */
  checks: Record<string, true | string>;
}

export interface HttpApiContext {
  store: LogStore;
  engine: QueryEngine;
  tail: TailHub;
  assets: ConsoleAssets;
  /** HTTP tokens: they read and they CLEAR. With neither kind configured, non-loopback
   *  clients are refused; without an HTTP token, CLEAR always is. */
  tokens: TokenSet | undefined;
  /** Query tokens: they read. */
  queryTokens: TokenSet | undefined;
  version: string;
  stats(): object;
  metrics(): string;
  ready(): Promise<ReadyReport>;
  clear(): number;
  /** A query answered over HTTP, for the metrics. */
  observe(command: string, seconds: number): void;
}

export interface HttpApiCounters {
  authFailures: number;
  refusedHosts: number;
}

const NDJSON = 'application/x-ndjson';
const OPEN_PATHS = new Set(['/health', '/ready']);

export function createHttpApi(ctx: HttpApiContext, counters: HttpApiCounters): RequestHandler {
  const localNames = new Set(['localhost', hostname().toLowerCase()]);
  const fail = (res: HttpResponse, status: number, error: string, headers?: Record<string, string>): void => res.json(status, { error }, headers);

  return (req: HttpRequest, res: HttpResponse): void => {
    const path = req.path;
    // A page elsewhere could make a browser on this machine talk to us under a name that
    // resolves to 127.0.0.1 (DNS rebinding): only answer addresses and local names.
    if (!hostAllowed(req.headers.host, localNames)) {
      counters.refusedHosts++;
      return fail(res, 421, 'unexpected Host header: use an IP address, localhost or this machine\'s name');
    }
    if (path === '/api/clear') return clear(req, res);
    if (req.method !== 'GET' && req.method !== 'HEAD') return fail(res, 405, `${req.method} is not allowed here`, { Allow: 'GET, HEAD' });
    if (ctx.assets.serve(req, res)) return; // the page holds no data; it asks for a token when needed
    if (!OPEN_PATHS.has(path) && !authorized(req)) return unauthorized(res);
    switch (path) {
      case '/health':
        return res.json(200, { status: 'ok', version: ctx.version });
      case '/ready':
        void ctx.ready().then((r) => res.json(r.ready ? 200 : 503, r), (err: Error) => res.json(503, { ready: false, checks: { probe: err.message } }));
        return;
      case '/metrics':
        return res.send(200, ctx.metrics(), METRICS_TYPE);
      case '/api/stats':
        return res.json(200, ctx.stats());
      case '/api/query':
        return query(req, res);
      case '/api/tail':
        return tail(req, res);
      default:
        return fail(res, 404, `no such endpoint: ${path}`);
    }
  };

  function authorized(req: HttpRequest): boolean {
    return isLoopback(req.remoteAddress) || bearer(req, true);
  }

  /** A valid bearer token: an HTTP token, or (`forReading`) a query token. */
  function bearer(req: HttpRequest, forReading: boolean): boolean {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (m === null) return false;
    // Both sets are checked, so the time taken does not tell which kind a token is.
    const http = ctx.tokens?.matches(m[1]) ?? false;
    const query = ctx.queryTokens?.matches(m[1]) ?? false;
    if (http || (forReading && query)) return true;
    counters.authFailures++;
    return false;
  }

  function unauthorized(res: HttpResponse): void {
    const why = ctx.tokens === undefined && ctx.queryTokens === undefined ? 'this server has no HTTP or query token: only loopback clients may use the HTTP API' : 'send Authorization: Bearer <token>';
    fail(res, 401, why, { 'WWW-Authenticate': 'Bearer realm="logcaster"' });
  }

  function clear(req: HttpRequest, res: HttpResponse): void {
    if (req.method !== 'POST') return fail(res, 405, 'CLEAR is POST /api/clear', { Allow: 'POST' });
    if (ctx.tokens === undefined) return fail(res, 403, 'CLEAR over HTTP needs an --http-token, even from loopback');
    if (!bearer(req, false)) return unauthorized(res);
    res.json(200, { cleared: ctx.clear() });
  }

  /** q, limit, offset, order: the page of a query that /api/query streams. */
  function spec(req: HttpRequest, res: HttpResponse): QuerySpec | undefined {
    const q = (req.query.get('q') ?? '').trim();
    if (q === '') return emptySpec();
    const parsed = parseQuery(q);
    if (parsed.ok) return parsed.value;
    fail(res, 400, parsed.error);
    return undefined;
  }

  function query(req: HttpRequest, res: HttpResponse): void {
    const started = performance.now();
    const s = spec(req, res);
    if (s === undefined) return;
    const limit = count(req, 'limit', Number.MAX_SAFE_INTEGER);
    const offset = count(req, 'offset', 0);
    const order = req.query.get('order') ?? 'oldest';
    if (limit === undefined || offset === undefined) return fail(res, 400, 'limit and offset must be non-negative integers');
    if (order !== 'oldest' && order !== 'newest') return fail(res, 400, "order must be 'oldest' or 'newest'");
    const newest = order === 'newest';
    const everything = isEmptySpec(s);
    const stored = ctx.engine.retained;
    // Newest first without a filter, only the newest offset + limit entries are read.
    const request: QueryRequest = everything && newest ? { recent: Math.min(offset + limit, stored) } : { spec: s };
    const done = (): void => ctx.observe('QUERY', (performance.now() - started) / 1000);
    ctx.engine.run(request, { owner: res, cancelled: () => res.closed }).then(
      (result) => {
        if (res.closed) {
          result.close();
          return done();
        }
        const found = everything ? stored : result.count;
        // A newest-first page is the entries before the newest `offset`, read in order then reversed.
        const page = newest
          ? { skip: Math.max(0, result.count - offset - limit), limit: Math.min(limit, Math.max(0, result.count - offset)), reverse: true }
          : { skip: offset, limit, reverse: false };
        // X-LogCaster-Seq: the newest sequence number the search covered (a tail resumes after it).
        res.writeHead(200, { 'Content-Type': NDJSON, 'Cache-Control': 'no-store', 'X-LogCaster-Found': found, 'X-LogCaster-Seq': result.endSeq - 1 });
        streamNdjson(res, result, page, done);
      },
      (err: Error) => {
        done();
        if (err instanceof QueryCancelledError || res.closed) return;
        if (err instanceof RegexTimeoutError) fail(res, 422, err.message);
        else fail(res, 500, `query failed: ${err.message}`);
      },
    );
  }

  function tail(req: HttpRequest, res: HttpResponse): void {
    const s = spec(req, res);
    if (s === undefined) return;
    const last = req.headers['last-event-id'];
    const after = last !== undefined && /^\d+$/.test(last) ? Number(last) : undefined;
    ctx.observe('TAIL', 0);
    ctx.tail.subscribe(res, s, after);
  }
}

function count(req: HttpRequest, name: string, absent: number): number | undefined {
  const v = req.query.get(name);
  if (v === null || v === '') return absent;
  return /^\d{1,15}$/.test(v) ? Number(v) : undefined;
}

/** Host header names an IP address, localhost (or *.localhost), or this machine. */
function hostAllowed(host: string | undefined, localNames: Set<string>): boolean {
  if (host === undefined) return true; // HTTP/1.0 clients may omit it
  let name = host.toLowerCase();
  if (name.startsWith('[')) return name.includes(']'); // [IPv6]:port
  const colon = name.lastIndexOf(':');
  if (colon >= 0) name = name.slice(0, colon);
  return isIP(name) !== 0 || localNames.has(name) || name.endsWith('.localhost');
}

function isEmptySpec(s: QuerySpec): boolean {
  return s.keywords.length === 0 && s.regex === undefined && s.timeFromMs === undefined && s.timeToMs === undefined && s.severity === undefined && s.facility === undefined && s.host === undefined && s.app === undefined;
}
