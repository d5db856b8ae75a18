// The HTTP port as the server wires it: @logcaster/http running the API routes, the
// live tail hub, the metrics and the console files, and its access rules.
import { createHttpHandler, type HttpHandler } from '@logcaster/http';

import { isLoopbackHost } from '../access/config';
import { readTokenFile, tokenWarnings, TokenSet } from '../access/tokens';
import type { QueryEngine } from '../query/engine';
import type { LogStore } from '../store/log-store';
import { createHttpApi, type HttpApiCounters, type ReadyReport } from './api';
import { ConsoleAssets } from './console-assets';
import { ServerMetrics } from './metrics';
import { RateHistory } from './rate';
import { TailHub } from './tail';

export interface HttpAccessOptions {
  /** Address it listens on (the query host). */
  host: string;
  /** HTTP tokens: they read and they CLEAR. */
  tokens: readonly string[];
  /** The query port's tokens: they read over HTTP too. */
  queryTokens: TokenSet | undefined;
  tokenFile?: string;
}

/** The HTTP tokens, and warnings about them. */
export function resolveHttpAccess(o: HttpAccessOptions): { tokens: TokenSet | undefined; warnings: string[] } {
  const given = [...o.tokens];
  const warnings: string[] = [];
  if (o.tokenFile !== undefined) {
    const file = readTokenFile(o.tokenFile);
    given.push(...file.tokens);
    warnings.push(...file.warnings);
  }
  warnings.push(...tokenWarnings(given).map((w) => w.replace('query token', 'HTTP token')));
  const tokens = given.length > 0 ? TokenSet.of(given) : undefined;
  // A non-loopback query host has query tokens, or the access rules already required
  // --query-insecure: then, with no token at all, the HTTP API still serves only loopback.
  if (!tokens && !o.queryTokens && !isLoopbackHost(o.host)) {
    warnings.push(`the HTTP port on ${o.host} has no token: it answers only loopback clients (and /health, /ready)`);
  }
  return { tokens, warnings };
}

/** What the server gives its HTTP port. */
export interface HttpPortContext {
  store: LogStore;
  engine: QueryEngine;
  /** HTTP tokens (read and CLEAR) and query tokens (read). */
  tokens: TokenSet | undefined;
  queryTokens: TokenSet | undefined;
  version: string;
  stats(): object;
  /** Lines received so far (sampled each second for the console's chart). */
  linesReceived(): number;
  ready(): Promise<ReadyReport>;
  clear(): number;
  /** The metrics text, given the port's own query metrics. */
  metrics(m: ServerMetrics): string;
}

export class HttpPort {
  readonly metrics = new ServerMetrics();
  readonly tail: TailHub;
  readonly handler: HttpHandler;
  readonly counters: HttpApiCounters = { authFailures: 0, refusedHosts: 0 };
  private readonly rate: RateHistory;

  constructor(ctx: HttpPortContext) {
    this.tail = new TailHub(ctx.store, ctx.engine);
    this.rate = new RateHistory(() => ctx.linesReceived());
    const api = createHttpApi(
      {
        store: ctx.store,
        engine: ctx.engine,
        tokens: ctx.tokens,
        queryTokens: ctx.queryTokens,
        version: ctx.version,
        stats: () => ({ ...ctx.stats(), tailSubscribers: this.tail.size, rate: this.rate.series() }),
        ready: () => ctx.ready(),
        clear: () => ctx.clear(),
        tail: this.tail,
        assets: new ConsoleAssets(),
        observe: (command, seconds) => this.metrics.observe('http', command, seconds),
        metrics: () => ctx.metrics(this.metrics),
      },
      this.counters,
    );
    this.handler = createHttpHandler(api, { onError: (err, req) => process.emitWarning(`LogCaster HTTP ${req.method} ${req.target}: ${err.stack ?? err.message}`, 'LogCasterWarning') });
  }

  /** Stop: end the event streams, close idle connections, stop the metrics timers. */
  close(): void {
    this.tail.closeAll();
    this.handler.closeIdle();
    this.metrics.close();
    this.rate.close();
  }
}
