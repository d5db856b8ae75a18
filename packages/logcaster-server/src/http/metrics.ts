// GET /metrics: the server's counters in the Prometheus text format. Everything is read
// from counters the ports keep anyway at scrape time; the only running cost is the
// event-loop delay monitor (a libuv timer) and one histogram observation per query.
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

import type { HttpCounters } from '@logcaster/http';

import type { IngestCounters } from '../ingest/ingest-port';
import type { JournalDetailedStats } from '../journal';
import type { LogStore } from '../store/log-store';
import { Exposition, Histogram, type Sample } from './exposition';

/** Query latency buckets, seconds. */
const LATENCY_BOUNDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Event-loop delay is reported over windows of this length. */
const LOOP_WINDOW_MS = 10_000;
/** The delay monitor's timer period, ms: its samples are period + delay. */
const LOOP_RESOLUTION_MS = 10;

/** What the server hands over at scrape time. */
export interface MetricsSources {
  version: string;
  backend: string;
  startedAtMs: number;
  store: LogStore;
  ingest: IngestCounters | undefined;
  journal: (JournalDetailedStats & { failed: boolean; stalled: boolean }) | undefined;
  queryConnections: number;
  http: HttpCounters | undefined;
  tailSubscribers: number;
  authFailures: number;
  authRefused: number;
  ingestDenied: number;
  queryDenied: number;
  regexTimeouts: number;
  /** What queries can see and how they read the journal (undefined before start). */
  history: { retainedLines: number; groupsSkipped: number; groupsOutsideWindow: number; groupsDamaged: number; filterFailures: number; filterWaits: number } | undefined;
}

export type QueryVia = 'query_port' | 'http';

export class ServerMetrics {
  private readonly queries = new Map<string, number>();
  private readonly latency = new Histogram(LATENCY_BOUNDS);
  private readonly loop: IntervalHistogram;
  private readonly window: NodeJS.Timeout;
  /** p50/p99/max of the last complete window, seconds (the current one until then). */
  private loopLast: { p50: number; p99: number; max: number } | undefined;

  constructor() {
    this.loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
    this.loop.enable();
    this.window = setInterval(() => {
      this.loopLast = this.loopNow();
      this.loop.reset();
    }, LOOP_WINDOW_MS);
    this.window.unref();
  }

  /** A query finished: `command` as the query port names it (QUERY, RECENT, ...). */
  observe(via: QueryVia, command: string, seconds: number): void {
    const key = `${via}\u0000${command}`;
    this.queries.set(key, (this.queries.get(key) ?? 0) + 1);
    this.latency.observe(seconds);
  }

  close(): void {
    clearInterval(this.window);
    this.loop.disable();
  }

  render(s: MetricsSources): string {
    const e = new Exposition();
    const c = s.ingest;
    const tcp = { transport: 'tcp' };
    e.gauge('logcaster_build_info', 'Version and I/O backend of this server (always 1).', [[{ version: s.version, backend: s.backend }, 1]]);
    e.counter('logcaster_received_lines_total', 'Lines received, by transport.', [[tcp, c?.linesReceived ?? 0]]);
    e.counter('logcaster_received_bytes_total', 'Bytes received on ingest connections, by transport.', [[tcp, c?.bytesReceived ?? 0]]);
    e.counter('logcaster_truncated_lines_total', 'Lines longer than --max-line, stored truncated.', c?.truncated ?? 0);
    e.counter('logcaster_stored_lines_total', 'Lines stored in memory since start (reloaded ones included).', s.store.total);
    e.counter('logcaster_dropped_lines_total', 'Lines evicted from memory at --capacity (still in the journal while it keeps them).', s.store.dropped);
    e.gauge('logcaster_store_lines', 'Lines held in memory now.', s.store.size);
    e.gauge('logcaster_store_bytes', 'Bytes of the lines held in memory now.', s.store.bytes);
    e.gauge('logcaster_store_allocated_bytes', 'Bytes of the memory window\'s chunks, in use or pooled (never freed).', s.store.allocatedBytes);
    const h = s.history;
    if (h) {
      e.gauge('logcaster_retained_lines', 'Lines a query can see now: the memory window and, with a journal, every line it retains.', h.retainedLines);
      e.counter('logcaster_history_groups_skipped_total', 'Journal groups keyword queries did not read: their token filter ruled the keywords out.', h.groupsSkipped);
      e.counter('logcaster_history_groups_outside_window_total', 'Journal groups time-filtered queries did not read: their time range misses the window.', h.groupsOutsideWindow);
      e.counter('logcaster_history_groups_damaged_total', 'Journal groups found damaged while a query read them (the damaged records skipped).', h.groupsDamaged);
      e.counter('logcaster_history_filter_failures_total', 'Token filter builds that wrote nothing (a short read, a failed write); each is retried.', h.filterFailures);
      e.counter('logcaster_history_filter_waits_total', 'Token filter builds that waited for a spare core (ingest had the machine), at most 10 s each.', h.filterWaits);
    }
    const j = s.journal;
    if (j) {
      e.counter('logcaster_persisted_lines_total', 'Lines written to the journal.', j.persistedLines);
      e.counter('logcaster_persist_failed_lines_total', 'Lines that will not be persisted: the journal failed, or too many waited on a full disk.', j.droppedLines);
      e.gauge('logcaster_journal_failed', '1 when the journal hit an I/O error and stopped persisting.', j.failed ? 1 : 0);
      e.gauge('logcaster_journal_stalled', '1 while the disk is full: lines wait in memory and are written once space returns.', j.stalled ? 1 : 0);
      e.counter('logcaster_journal_written_bytes_total', 'Bytes (framing included) written to the journal.', j.persistedBytes);
      e.gauge('logcaster_journal_segments', 'Journal segment files in the data directory.', j.files);
      e.gauge('logcaster_journal_bytes', 'Bytes of the journal segment files kept (retention applies to these).', j.diskBytes);
      e.gauge('logcaster_journal_filters_pending', 'Finished journal segments whose token filter is still being built (queries read them whole meanwhile).', j.filtersPending);
      e.counter('logcaster_journal_fsyncs_total', 'fsync calls on journal segments.', j.fsyncs);
      e.counter('logcaster_journal_corrupt_bytes_total', 'Damaged journal bytes skipped at open (torn tails, bad CRCs).', j.corruptBytesSkipped);
    }
    const ports = (values: [string, number | undefined][]): Sample[] => values.filter(([, v]) => v !== undefined).map(([port, v]) => [{ port }, v!]);
    e.gauge('logcaster_connections', 'Open connections, by port.', ports([['ingest', c?.clients ?? 0], ['query', s.queryConnections], ['http', s.http?.connections]]));
    e.counter('logcaster_connections_accepted_total', 'Connections accepted, by port.', ports([['ingest', c?.connectionsTotal ?? 0], ['http', s.http?.connectionsTotal]]));
    e.counter('logcaster_connections_rejected_total', 'Connections refused, by port and reason.', [
      [{ port: 'ingest', reason: 'capacity' }, c?.rejected ?? 0],
      [{ port: 'ingest', reason: 'allow_list' }, s.ingestDenied],
      [{ port: 'query', reason: 'allow_list' }, s.queryDenied],
      [{ port: 'query', reason: 'auth' }, s.authRefused],
      ...(s.http ? [[{ port: 'http', reason: 'capacity' }, s.http.connectionsRejected] as Sample] : []),
    ]);
    e.counter('logcaster_auth_failures_total', 'AUTH attempts with a wrong token on the query port.', s.authFailures);
    e.counter('logcaster_queries_total', 'Queries answered, by command and by where they came from.', [...this.queries].map(([k, n]) => {
      const [via, command] = k.split('\u0000');
      return [{ command, via }, n] as Sample;
    }));
    e.histogram('logcaster_query_duration_seconds', 'Time from a query to the last byte of its answer handed to the connection (query port and HTTP).', [[{}, this.latency]]);
    e.counter('logcaster_regex_timeouts_total', 'Regex queries stopped at --regex-timeout.', s.regexTimeouts);
    if (s.http) {
      e.counter('logcaster_http_requests_total', 'HTTP requests received.', s.http.requests);
      e.counter('logcaster_http_bad_requests_total', 'HTTP requests refused before routing (400, 408, 413, 431, 501, 505).', s.http.badRequests);
      e.gauge('logcaster_http_tail_subscribers', 'Open /api/tail event streams.', s.tailSubscribers);
    }
    const loop = this.loopLast ?? this.loopNow();
    e.gauge('logcaster_event_loop_delay_seconds', `Event-loop delay over the last ${LOOP_WINDOW_MS / 1000} s window, by statistic.`, [
      [{ stat: 'p50' }, loop.p50],
      [{ stat: 'p99' }, loop.p99],
      [{ stat: 'max' }, loop.max],
    ]);
    const mem = process.memoryUsage();
    const cpu = process.cpuUsage();
    e.gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', mem.rss);
    e.gauge('nodejs_heap_used_bytes', 'V8 heap in use, bytes.', mem.heapUsed);
    e.counter('process_cpu_seconds_total', 'User and system CPU time spent, seconds.', (cpu.user + cpu.system) / 1e6);
    e.gauge('process_start_time_seconds', 'Start time of the server since the epoch, seconds.', Math.floor(s.startedAtMs / 1000));
    return e.toString();
  }

  private loopNow(): { p50: number; p99: number; max: number } {
    const h = this.loop;
    // An empty histogram reports its initial extremes: say 0 instead.
    if (h.count === 0) return { p50: 0, p99: 0, max: 0 };
    const delay = (ns: number): number => Math.max(0, ns / 1e9 - LOOP_RESOLUTION_MS / 1000);
    return { p50: delay(h.percentile(50)), p99: delay(h.percentile(99)), max: delay(h.max) };
  }
}
