// LogCaster: wires the reactor, the store, the journal, the ingest and query ports.
import { EventEmitter } from 'node:events';
import { access, constants as fsConstants } from 'node:fs/promises';
import * as path from 'node:path';

import { createReactor, type BackendName, type Connection, type DatagramSocket, type Handler, type Listener, type Reactor } from '@logcaster/core';

import { admitOnly } from './access/allow';
import { requireAuth } from './access/auth-gate';
import { resolveAccess, type Access, type AccessEvent } from './access/config';
import { certificateAuthenticates, ingestTlsOptions, queryTlsOptions, readServerTls, type ServerTls } from './access/tls-config';
import type { TokenSet } from './access/tokens';
import { checkOptions, MAX_TIMER_MS, optionDefault } from './cli/args';
import type { ReadyReport } from './http/api';
import { HttpPort, resolveHttpAccess } from './http/http-port';
import type { ServerMetrics } from './http/metrics';
import { DataDirLock } from './data-dir';
import { DatagramIngest } from './ingest/datagram-ingest';
import { IngestPort, type StoredLine } from './ingest/ingest-port';
import { RelpPort } from './ingest/relp-port';
import { Journal, type FsyncPolicy } from './journal';
import { QueryEngine } from './query/engine';
import { QueryPort } from './query/query-port';
import { parseSyslog, type SyslogHeader } from './query/syslog';
import { LogStore } from './store/log-store';

export interface LogCasterOptions {
  /** Reactor backend: 'auto' (default) or one name. */
  backend?: BackendName | 'auto';
  /** Address of the ingest port. Default 127.0.0.1. */
  host?: string;
  /** Address of the query port. Default 127.0.0.1: only this machine can query. */
  queryHost?: string;
  /** Tokens a query client may send as `AUTH <token>`. A client not on loopback must. */
  queryTokens?: string[];
  /** A file of query tokens, one per line ('#' comments), read at construction. */
  queryTokenFile?: string;
  /** Allow a non-loopback queryHost without tokens: anyone who can connect reads everything. */
  queryInsecure?: boolean;
  /** Require AUTH from loopback clients too (on a shared host loopback is no boundary). */
  queryAuthLoopback?: boolean;
  /** Networks (CIDRs or addresses) the ingest port accepts connections from; others are closed at accept. */
  allow?: string[];
  /** Networks the query port accepts connections from. */
  queryAllow?: string[];
  /** Ingest port, default 9999 (0 picks a free port). */
  port?: number;
  /** Query port, default 9998 (0 picks a free port). */
  queryPort?: number;
  /** HTTP port (metrics, health, query API, live tail, web console) on queryHost; 0 picks
   *  a free port. Default null: none (the CLI's default is 9997). */
  httpPort?: number | null;
  /** Tokens a non-loopback HTTP client sends as `Authorization: Bearer <token>`; CLEAR
   *  over HTTP needs one from every client. */
  httpTokens?: string[];
  /** A file of HTTP tokens, one per line ('#' comments), read at construction. */
  httpTokenFile?: string;
  /** Syslog over UDP on `host` (0 picks a free port). Default: off. */
  udpPort?: number;
  /** SO_RCVBUF of the UDP socket, bytes. Default 8 MiB. */
  udpRecvBuffer?: number;
  /** A Unix datagram socket for local programs (logger -u, /dev/log); '@name' is an
   *  abstract name (Linux). Default: off. */
  unixSocket?: string;
  /** A Unix stream socket speaking the ingest port's protocol. Default: off. */
  unixStreamSocket?: string;
  /** Permissions of the Unix socket files. Default 0o666. */
  unixSocketMode?: number;
  /** RELP on `host` (0 picks a free port). Default: off. */
  relpPort?: number;
  /** RFC 5425 syslog over TLS on `host` (0 picks a free port); needs tlsCert and tlsKey.
   *  Default: off. */
  tlsPort?: number;
  /** Files (PEM) of the certificate and key the TLS ports present. */
  tlsCert?: string;
  tlsKey?: string;
  /** A CA file (PEM): tlsPort requires client certificates it verifies; with queryTls
   *  such a certificate authenticates a query client instead of AUTH. */
  tlsCa?: string;
  /** TLS on the query port and the HTTP port. */
  queryTls?: boolean;
  /** Only client certificates with one of these CNs authenticate query clients. */
  queryCertCn?: string[];
  /** Entries kept in memory (the newest; with a journal, older ones are read from its
   *  segments; without one they are dropped). Default 100000. */
  capacity?: number;
  /** Longest line kept, bytes; longer lines are truncated and marked. Default 65536. */
  maxLine?: number;
  /** Concurrent ingest clients. Default 1000. */
  maxClients?: number;
  /** Concurrent query clients. Default 64. */
  maxQueryClients?: number;
  /** Close ingest connections idle this many seconds (0 = never). Default 0. */
  idleTimeout?: number;
  /** Journal directory; undefined/null/'none' = memory only (the embedding default). */
  dataDir?: string | null;
  /** Journal segment size before rotation, bytes. Default 16 MiB. */
  rotateSize?: number;
  /** Journal segments kept (0: no limit). Default 0. */
  maxFiles?: number;
  /** Bytes of journal segments kept (the oldest deleted first; 0: no limit). Default 4 GiB. */
  retentionSize?: number;
  /** Seconds a line is kept (segments whose newest line is older are deleted; 0: no limit). Default 0. */
  retentionTime?: number;
  /** Bytes of the newest journal data kept in the page cache once written; older data
   *  is dropped from the cache when it is on disk (queries read it back). 0: the kernel
   *  decides. Default 64 MiB. */
  journalCache?: number;
  fsync?: FsyncPolicy;
  fsyncIntervalMs?: number;
  /** Write "OK\n" per stored line (after fsync with fsync 'always'). */
  ack?: boolean;
  /** Lets non-loopback query clients run CLEAR <token>. */
  adminToken?: string;
  /** Show query timestamps in UTC instead of local time. */
  utc?: boolean;
  /** Budget of one regex query, ms. Default 2000. */
  regexTimeoutMs?: number;
  /** On stop(): how long to keep reading from clients still sending, ms. Default 2000. */
  shutdownGraceMs?: number;
}

export interface StartInfo {
  ingestPort: number;
  queryPort: number;
  /** When enabled: the UDP and RELP ports, the Unix socket paths. */
  udpPort?: number;
  relpPort?: number;
  /** The RFC 5425 port, when enabled. */
  tlsPort?: number;
  unixSocket?: string;
  unixStreamSocket?: string;
  /** The query port (and the HTTP port) speak TLS. */
  queryTls: boolean;
  backend: BackendName;
  host: string;
  queryHost: string;
  /** The HTTP port, when there is one (on queryHost). */
  httpPort: number | undefined;
  /** Absolute journal directory, or undefined when memory-only. */
  dataDir: string | undefined;
  /** Entries reloaded from the journal. */
  reloaded: number;
}

export interface LogCasterStats {
  total: number;
  dropped: number;
  current: number;
  clients: number;
  backend: string;
  connections: number;
  rejected: number;
  /** Lines stored from every transport (TCP, UDP, Unix sockets, RELP). */
  linesReceived: number;
  bytesReceived: number;
  udpReceived: number;
  /** Datagrams stored cut (longer than maxLine). */
  udpTruncated: number;
  /** Datagrams the kernel dropped: the receive queue was full (raise udpRecvBuffer). */
  udpDropped: number;
  unixReceived: number;
  unixTruncated: number;
  unixDropped: number;
  relpClients: number;
  relpReceived: number;
  /** TLS handshakes completed and failed (bad or missing certificate, timeout, the peer left) on every TLS port. */
  tlsHandshakes: number;
  tlsHandshakeFailures: number;
  /** Query clients let in by their client certificate. */
  authCertificates: number;
  truncated: number;
  idleClosed: number;
  queryClients: number;
  /** Open HTTP connections and requests received on the HTTP port. */
  httpClients: number;
  httpRequests: number;
  /** AUTH attempts with a wrong token. */
  authFailures: number;
  /** Query clients closed for not sending AUTH first. */
  authRequired: number;
  /** Connections closed at accept by the allow lists. */
  ingestDenied: number;
  queryDenied: number;
  /** Query connections refused over maxQueryClients. */
  queryRejected: number;
  /** Query commands executed. */
  queryCommands: number;
  /** Exceptions isolated: in a handler (that connection was closed) or a 'line' listener. */
  errors: number;
  regexTimeouts: number;
  persisted: number;
  persistedBytes: number;
  /** 'off' (memory only), 'ok', 'stalled' (disk full: lines wait in memory, retried every
   *  second) or 'failed' (any other I/O error: nothing more is persisted until restart). */
  persisting: 'off' | 'ok' | 'stalled' | 'failed';
  /** While stalled or failed: the code and the file, e.g. `ENOSPC on /data/logcaster-000000000003.log`. */
  persistError: string | undefined;
  /** Lines stored in memory that will never reach the disk (journal failed, or more
   *  than 64 MiB waited on a full disk). */
  persistDropped: number;
  reloaded: number;
  tornSkipped: number;
  /** Disk groups keyword queries did not read: their token filter ruled the keywords out. */
  historyGroupsSkipped: number;
  /** Disk groups time filters did not read: their time range misses the window. */
  historyGroupsOutsideWindow: number;
  /** Disk groups found damaged while a query read them (the damaged records skipped). */
  historyGroupsDamaged: number;
  /** Bytes and files of the journal's segments on disk (0 memory-only). */
  journalBytes: number;
  journalFiles: number;
  /** Finished segments whose token filter is still being built (read whole meanwhile). */
  filtersPending: number;
  /** Token filter builds that wrote nothing (a short read, a failed write), each retried. */
  filterFailures: number;
  /** Token filter builds that first waited for a spare core (at most 10 s each). */
  filterWaits: number;
  storeBytes: number;
  uptimeSeconds: number;
}

/** What 'line' listeners receive. `line` is a private copy of the stored bytes. */
export class LogLine {
  private parsed: SyslogHeader | null | undefined;
  constructor(
    readonly seq: number,
    readonly timeMs: number,
    readonly peer: string,
    readonly line: Buffer,
  ) {}
  get text(): string {
    return this.line.toString('utf8');
  }
  /** The syslog header, parsed on first access (undefined when the line has none). */
  get syslog(): SyslogHeader | undefined {
    if (this.parsed === undefined) this.parsed = parseSyslog(this.text) ?? null;
    return this.parsed ?? undefined;
  }
}

/** What the 'persistence' event reports: lines stopped reaching the disk, or again do. */
export interface PersistenceEvent {
  /** 'stalled': the disk is full, lines wait in memory and are written once space
   *  returns; 'resumed': they were; 'failed': an I/O error, nothing more is persisted. */
  state: 'stalled' | 'resumed' | 'failed';
  /** For 'stalled' and 'failed': the error, with `code` and `path` (the file). */
  error?: NodeJS.ErrnoException;
  /** Lines that will never reach the disk, so far. */
  dropped: number;
}

export declare interface LogCaster {
  on(event: 'line', listener: (entry: LogLine) => void): this;
  /** The journal stopped persisting (disk full, I/O error) or resumed. Without a
   *  listener, a process warning. */
  on(event: 'persistence', listener: (e: PersistenceEvent) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  /** Failed AUTH attempts and connections refused by an allow list. */
  on(event: 'access', listener: (e: AccessEvent) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

type OptionalTransports = 'udpPort' | 'unixSocket' | 'unixStreamSocket' | 'relpPort' | 'tlsPort' | 'tlsCert' | 'tlsKey' | 'tlsCa';

function resolveOptions(
  o: LogCasterOptions,
): Required<Omit<LogCasterOptions, 'adminToken' | 'dataDir' | 'queryTokenFile' | 'httpTokenFile' | OptionalTransports>> &
  Pick<LogCasterOptions, OptionalTransports> & { adminToken?: string; dataDir?: string; queryTokenFile?: string; httpTokenFile?: string } {
  const bad = checkOptions(o);
  if (bad) throw new RangeError(`LogCaster: ${bad}`);
  if (o.shutdownGraceMs !== undefined && !(Number.isInteger(o.shutdownGraceMs) && o.shutdownGraceMs >= 0 && o.shutdownGraceMs <= MAX_TIMER_MS)) {
    throw new RangeError(`LogCaster: shutdownGraceMs must be 0 to ${MAX_TIMER_MS} ms, got ${o.shutdownGraceMs}`);
  }
  const dataDir = o.dataDir === null || o.dataDir === undefined || o.dataDir === 'none' ? undefined : o.dataDir;
  return {
    backend: o.backend ?? optionDefault('backend')!,
    host: o.host ?? optionDefault('host')!,
    queryHost: o.queryHost ?? optionDefault('queryHost')!,
    queryTokens: o.queryTokens ?? [],
    queryTokenFile: o.queryTokenFile,
    queryInsecure: o.queryInsecure ?? false,
    queryAuthLoopback: o.queryAuthLoopback ?? false,
    allow: o.allow ?? [],
    queryAllow: o.queryAllow ?? [],
    port: o.port ?? optionDefault('port')!,
    queryPort: o.queryPort ?? optionDefault('queryPort')!,
    httpPort: o.httpPort ?? null,
    httpTokens: o.httpTokens ?? [],
    httpTokenFile: o.httpTokenFile,
    udpPort: o.udpPort,
    udpRecvBuffer: o.udpRecvBuffer ?? optionDefault('udpRecvBuffer')!,
    unixSocket: o.unixSocket,
    unixStreamSocket: o.unixStreamSocket,
    unixSocketMode: o.unixSocketMode ?? optionDefault('unixSocketMode')!,
    relpPort: o.relpPort,
    tlsPort: o.tlsPort,
    tlsCert: o.tlsCert,
    tlsKey: o.tlsKey,
    tlsCa: o.tlsCa,
    queryTls: o.queryTls ?? false,
    queryCertCn: o.queryCertCn ?? [],
    capacity: o.capacity ?? optionDefault('capacity')!,
    maxLine: o.maxLine ?? optionDefault('maxLine')!,
    maxClients: o.maxClients ?? optionDefault('maxClients')!,
    maxQueryClients: o.maxQueryClients ?? optionDefault('maxQueryClients')!,
    idleTimeout: o.idleTimeout ?? optionDefault('idleTimeout')!,
    dataDir,
    rotateSize: o.rotateSize ?? optionDefault('rotateSize')!,
    maxFiles: o.maxFiles ?? optionDefault('maxFiles')!,
    retentionSize: o.retentionSize ?? optionDefault('retentionSize')!,
    retentionTime: o.retentionTime ?? optionDefault('retentionTime')!,
    journalCache: o.journalCache ?? optionDefault('journalCache')!,
    fsync: o.fsync ?? optionDefault('fsync')!,
    fsyncIntervalMs: o.fsyncIntervalMs ?? optionDefault('fsyncIntervalMs')!,
    ack: o.ack ?? false,
    adminToken: o.adminToken,
    utc: o.utc ?? false,
    regexTimeoutMs: o.regexTimeoutMs ?? optionDefault('regexTimeoutMs')!,
    shutdownGraceMs: o.shutdownGraceMs ?? 2000,
  };
}

export class LogCaster extends EventEmitter {
  readonly options: ReturnType<typeof resolveOptions>;
  readonly store: LogStore;
  private reactor: Reactor | undefined;
  private ingest: IngestPort | undefined;
  private query: QueryPort | undefined;
  private udp: DatagramIngest | undefined;
  private unix: DatagramIngest | undefined;
  private relp: RelpPort | undefined;
  private datagramSockets: DatagramSocket[] = [];
  private readonly access: Access;
  /** TLS material, read at construction; undefined without TLS ports. */
  private readonly tls: ServerTls | undefined;
  private readonly httpTokens: TokenSet | undefined;
  private httpPort: HttpPort | undefined;
  /** Absolute journal directory once started. */
  private dataDir: string | undefined;
  /** Settings that work but weaken access control (printed by the CLI at start). */
  readonly warnings: readonly string[];
  private denied = { ingest: 0, query: 0 };
  private engine: QueryEngine | undefined;
  private journal: Journal | undefined;
  private lock: DataDirLock | undefined;
  private listeners_: Listener[] = [];
  private startedAt = 0;
  private reloaded = 0;
  private tornSkipped = 0;
  private errors = 0;
  private lastWarningAt = 0;
  private warningsHeld = 0;
  private state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';
  private stopping: Promise<void> | undefined;

  constructor(options: LogCasterOptions = {}) {
    super();
    this.options = resolveOptions(options);
    const o = this.options;
    this.tls = readServerTls(o);
    const tls = this.tls;
    const certificate = tls?.ca !== undefined && o.queryTls ? (conn: Connection) => certificateAuthenticates(tls, conn.tls) : undefined;
    this.access = resolveAccess({ ...o, certificate }, (address, failures) => this.emit('access', { kind: 'auth-failed', address, failures } satisfies AccessEvent));
    const http = o.httpPort === null ? undefined : resolveHttpAccess({ host: o.queryHost, tokens: o.httpTokens, tokenFile: o.httpTokenFile, queryTokens: this.access.queryTokens });
    this.httpTokens = http?.tokens;
    this.warnings = [...this.access.warnings, ...(http?.warnings ?? [])];
    this.store = new LogStore(o.capacity, o.maxLine + 64);
    // Only pay for 'line' events while someone listens.
    this.on('newListener', (event) => {
      if (event === 'line') queueMicrotask(() => this.updateLineHook());
    });
    this.on('removeListener', (event) => {
      if (event === 'line') this.updateLineHook();
    });
  }

  private updateLineHook(): void {
    const hook = this.listenerCount('line') > 0 ? (e: StoredLine) => this.emit('line', new LogLine(e.seq, e.timeMs, e.peer, e.line)) : undefined;
    for (const sink of [this.ingest, this.udp, this.unix, this.relp]) if (sink) sink.onLine = hook;
  }

  async start(): Promise<StartInfo> {
    if (this.state !== 'new') throw new Error(`LogCaster.start(): already ${this.state}`);
    this.state = 'starting';
    const o = this.options;
    let dataDir: string | undefined;
    try {
      this.engine = new QueryEngine(this.store, { regexTimeoutMs: o.regexTimeoutMs });
      this.ingest = new IngestPort(
        {
          maxLine: o.maxLine,
          maxClients: o.maxClients,
          idleTimeoutMs: o.idleTimeout * 1000,
          ack: o.ack,
          ackAfterDurable: o.fsync === 'always',
          reportListenerError: (err) => this.reportError(err),
        },
        this.store,
      );
      this.updateLineHook();
      this.query = new QueryPort({
        store: this.store,
        engine: this.engine,
        utc: o.utc,
        adminToken: o.adminToken,
        maxClients: o.maxQueryClients,
        statsLine: () => this.statsLine(),
        observe: (command, seconds) => this.httpPort?.metrics.observe('query_port', command, seconds),
        clear: () => this.clear(),
        reportError: (err) => this.reportError(err),
      });
      this.reactor = createReactor({
        backend: o.backend,
        // With a connection: a handler threw (the reactor closed that connection).
        // Without: the listener could not accept (EMFILE), reported, not counted.
        onError: (err, conn) => this.reportError(err, conn !== undefined),
      });
      const ingestL = this.reactor.listen({ host: o.host, port: o.port }, this.guard('ingest', this.ingest));
      this.listeners_.push(ingestL);
      const queryTls = o.queryTls ? queryTlsOptions(this.tls!) : undefined;
      const queryL = this.reactor.listen({ host: o.queryHost, port: o.queryPort, tls: queryTls }, this.guard('query', requireAuth(this.query, this.access.gate)));
      this.listeners_.push(queryL);
      let httpL: Listener | undefined;
      if (o.httpPort !== null) {
        this.httpPort = new HttpPort({
          store: this.store,
          engine: this.engine,
          tokens: this.httpTokens,
          queryTokens: this.access.queryTokens,
          version: VERSION,
          stats: () => this.stats(),
          linesReceived: () => this.ingest?.counters.linesReceived ?? 0,
          ready: () => this.ready(),
          clear: () => this.clear(),
          metrics: (m) => this.metricsText(m),
        });
        // The query port's allow list covers the HTTP port too: both answer queries.
        httpL = this.reactor.listen({ host: o.queryHost, port: o.httpPort, tls: queryTls }, this.guard('query', this.httpPort.handler));
        this.listeners_.push(httpL);
      }
      const extra = this.startTransports(this.reactor);
      this.updateLineHook();
      // Only now, with every port bound, is anything on disk touched: a second server
      // that cannot bind, or finds the directory locked, leaves the owner's journal be.
      if (o.dataDir !== undefined) {
        dataDir = path.resolve(o.dataDir);
        this.openDataDir(dataDir, this.reactor.backend);
      }
      this.startedAt = Date.now();
      this.state = 'running';
      return { ingestPort: ingestL.port, queryPort: queryL.port, httpPort: httpL?.port, ...extra, queryTls: o.queryTls, backend: this.reactor.backend, host: o.host, queryHost: o.queryHost, dataDir, reloaded: this.reloaded };
    } catch (e) {
      this.state = 'stopped';
      for (const l of this.listeners_) l.close();
      this.listeners_ = [];
      this.httpPort?.close();
      await this.reactor?.close();
      await this.engine?.close();
      await this.journal?.close().catch(() => {});
      this.lock?.release();
      throw e;
    }
  }

  /** Lock the data directory, open its journal (its segment indexes, not its lines:
   *  queries read older lines from the segments), and journal what arrives from now on.
   *  `backend`: the reactor's, whose native calls the journal writer uses too. */
  private openDataDir(dir: string, backend: BackendName): void {
    const o = this.options;
    this.lock = DataDirLock.acquire(dir);
    this.dataDir = dir;
    this.journal = Journal.open({
      dir,
      rotateSize: o.rotateSize,
      maxFiles: o.maxFiles,
      retentionBytes: o.retentionSize,
      retentionMs: o.retentionTime * 1000,
      fsync: o.fsync,
      fsyncIntervalMs: o.fsyncIntervalMs,
      dropBehind: o.journalCache > 0 ? { backend, keepBytes: o.journalCache } : undefined,
    });
    const journal = this.journal;
    const peers = this.store.peers;
    // The store continues the journal's sequence; what the journal holds stays on disk.
    this.store.startAt(journal.lastSeq + 1);
    this.reloaded = journal.retainedLines;
    this.tornSkipped = journal.stats.tornRecordsSkipped;
    this.store.setRecorder((range) => journal.write(range, peers.names));
    this.engine!.attachHistory(journal);
    this.ingest!.attachJournal(journal);
    this.relp?.attachJournal(journal);
    journal.onStall((stall) => {
      const problem = stall === null ? null : persistProblem(stall.error);
      this.ingest?.setPersistProblem(problem, stall?.writtenSeq ?? 0);
      this.relp?.setPersistProblem(problem, stall?.writtenSeq ?? 0);
      this.tellPersistence(stall === null ? { state: 'resumed', dropped: journal.detailedStats.droppedLines } : { state: 'stalled', error: stall.error, dropped: journal.detailedStats.droppedLines });
    });
    journal.onError((err) => {
      const problem = persistProblem(err);
      this.ingest?.setPersistProblem(problem, journal.durableSeq);
      this.relp?.setPersistProblem(problem, journal.durableSeq);
      this.tellPersistence({ state: 'failed', error: err, dropped: journal.detailedStats.droppedLines });
    });
  }

  private tellPersistence(e: PersistenceEvent): void {
    if (this.listenerCount('persistence') > 0) {
      this.emit('persistence', e);
      return;
    }
    const what = e.state === 'resumed' ? 'persistence resumed' : `persistence ${e.state}: ${persistProblem(e.error!)}`;
    process.emitWarning(`LogCaster: ${what} (${e.dropped} lines not persisted so far)`, 'LogCasterWarning');
  }

  /** How the journal is doing, for STATS and /ready. */
  private persistence(): { state: LogCasterStats['persisting']; problem: string | undefined } {
    const j = this.journal;
    if (!j) return { state: 'off', problem: undefined };
    if (j.error) return { state: 'failed', problem: persistProblem(j.error) };
    if (j.stall) return { state: 'stalled', problem: persistProblem(j.stall.error) };
    return { state: 'ok', problem: undefined };
  }

  /** CLEAR: every retained line goes, in memory and on disk. Returns how many. */
  private clear(): number {
    const n = this.engine?.retained ?? this.store.size;
    this.store.clear();
    this.journal?.clear();
    return n;
  }

  /** The optional transports: UDP, Unix datagram and stream sockets, RELP. */
  private startTransports(reactor: Reactor): Pick<StartInfo, 'udpPort' | 'relpPort' | 'tlsPort' | 'unixSocket' | 'unixStreamSocket'> {
    const o = this.options;
    const info: Pick<StartInfo, 'udpPort' | 'relpPort' | 'tlsPort' | 'unixSocket' | 'unixStreamSocket'> = {};
    const datagrams = (unnamedPeer: string): DatagramIngest =>
      new DatagramIngest(
        {
          maxLine: o.maxLine,
          allow: this.access.ingestAllow,
          unnamedPeer,
          reportListenerError: (err) => this.reportError(err),
          onDenied: (address) => {
            this.denied.ingest++;
            this.emit('access', { kind: 'refused', port: 'ingest', address } satisfies AccessEvent);
          },
        },
        this.store,
      );
    if (o.udpPort !== undefined) {
      this.udp = datagrams('unknown');
      const sock = this.udp.add(reactor.bindUdp({ host: o.host, port: o.udpPort, recvBufferSize: o.udpRecvBuffer }, this.udp));
      this.datagramSockets.push(sock);
      info.udpPort = sock.port;
    }
    if (o.unixSocket !== undefined) {
      this.unix = datagrams('localhost');
      const sock = this.unix.add(reactor.bindUnixDgram({ path: unixPath(o.unixSocket), mode: o.unixSocketMode, recvBufferSize: o.udpRecvBuffer }, this.unix));
      this.datagramSockets.push(sock);
      info.unixSocket = o.unixSocket;
    }
    if (o.tlsPort !== undefined) {
      // RFC 5425: the ingest port's handler (octet counting or lines) behind TLS.
      const l = reactor.listen({ host: o.host, port: o.tlsPort, tls: ingestTlsOptions(this.tls!) }, this.guard('ingest', this.ingest!));
      this.listeners_.push(l);
      info.tlsPort = l.port;
    }
    if (o.unixStreamSocket !== undefined) {
      // The ingest port's handler; allow lists are about IP networks, not local users.
      this.listeners_.push(reactor.listen({ path: unixPath(o.unixStreamSocket), mode: o.unixSocketMode }, this.ingest!));
      info.unixStreamSocket = o.unixStreamSocket;
    }
    if (o.relpPort !== undefined) {
      this.relp = new RelpPort(
        {
          maxLine: o.maxLine,
          maxClients: o.maxClients,
          ackAfterDurable: o.fsync === 'always',
          software: `LogCaster,${VERSION}`,
          reportListenerError: (err) => this.reportError(err),
        },
        this.store,
      );
      const l = reactor.listen({ host: o.host, port: o.relpPort }, this.guard('ingest', this.relp));
      this.listeners_.push(l);
      info.relpPort = l.port;
    }
    return info;
  }

  /** `handler` behind the port's allow list, if it has one. */
  private guard(port: 'ingest' | 'query', handler: Handler): Handler {
    const allow = port === 'ingest' ? this.access.ingestAllow : this.access.queryAllow;
    if (!allow) return handler;
    return admitOnly(allow, handler, (address) => {
      this.denied[port]++;
      this.emit('access', { kind: 'refused', port, address } satisfies AccessEvent);
    });
  }

  /** An exception isolated by the reactor (handler: it closed that connection) or by
   *  the ingest port ('line' listener): counted, then the 'error' event, or a warning. */
  private reportError(err: unknown, counted = true): void {
    if (counted) this.errors++;
    const e = err instanceof Error ? err : new Error(String(err));
    if (this.listenerCount('error') > 0) {
      this.emit('error', e);
      return;
    }
    // A warning at most once a second: a 'line' listener failing on every line must
    // not turn stderr into the bottleneck.
    const now = Date.now();
    if (now - this.lastWarningAt < 1000) {
      this.warningsHeld++;
      return;
    }
    const held = this.warningsHeld ? ` (and ${this.warningsHeld} more errors in the last second)` : '';
    this.lastWarningAt = now;
    this.warningsHeld = 0;
    process.emitWarning(`LogCaster: ${e.stack ?? e.message}${held}`, 'LogCasterWarning');
  }

  get backend(): string | undefined {
    return this.reactor?.backend;
  }

  stats(): LogCasterStats {
    const c = this.ingest?.counters;
    const js = this.journal?.detailedStats;
    const rs = this.tls ? this.reactor?.stats() : undefined;
    const p = this.persistence();
    return {
      total: this.store.total + this.reloaded,
      dropped: js ? js.retiredLines + js.droppedLines : this.store.dropped,
      current: this.engine?.retained ?? this.store.size,
      clients: c?.clients ?? 0,
      backend: this.reactor?.backend ?? 'none',
      connections: c?.connectionsTotal ?? 0,
      rejected: c?.rejected ?? 0,
      linesReceived: (c?.linesReceived ?? 0) + (this.udp?.counters.received ?? 0) + (this.unix?.counters.received ?? 0) + (this.relp?.counters.received ?? 0),
      bytesReceived: c?.bytesReceived ?? 0,
      udpReceived: this.udp?.counters.received ?? 0,
      udpTruncated: this.udp?.counters.truncated ?? 0,
      udpDropped: this.udp?.kernelDropped ?? 0,
      unixReceived: this.unix?.counters.received ?? 0,
      unixTruncated: this.unix?.counters.truncated ?? 0,
      unixDropped: this.unix?.kernelDropped ?? 0,
      relpClients: this.relp?.counters.clients ?? 0,
      relpReceived: this.relp?.counters.received ?? 0,
      tlsHandshakes: rs?.tlsHandshakes ?? 0,
      tlsHandshakeFailures: rs?.tlsHandshakeFailures ?? 0,
      authCertificates: this.access.gate.counters.certificates,
      truncated: c?.truncated ?? 0,
      idleClosed: c?.idleClosed ?? 0,
      queryClients: this.query?.conns.size ?? 0,
      httpClients: this.httpPort?.handler.counters.connections ?? 0,
      httpRequests: this.httpPort?.handler.counters.requests ?? 0,
      authFailures: this.access.gate.counters.failures,
      authRequired: this.access.gate.counters.refused,
      ingestDenied: this.denied.ingest,
      queryDenied: this.denied.query,
      queryRejected: this.query?.refused ?? 0,
      queryCommands: this.query?.commands ?? 0,
      errors: this.errors,
      regexTimeouts: this.engine?.regexTimeouts ?? 0,
      persisted: js?.persistedLines ?? 0,
      persistedBytes: js?.persistedBytes ?? 0,
      persisting: p.state,
      persistError: p.problem,
      persistDropped: js?.droppedLines ?? 0,
      reloaded: this.reloaded,
      tornSkipped: this.tornSkipped,
      historyGroupsSkipped: this.engine?.groupsSkipped ?? 0,
      historyGroupsOutsideWindow: this.engine?.groupsOutsideWindow ?? 0,
      historyGroupsDamaged: this.engine?.groupsDamaged ?? 0,
      journalBytes: js?.diskBytes ?? 0,
      journalFiles: js?.files ?? 0,
      filtersPending: js?.filtersPending ?? 0,
      filterFailures: this.engine?.filterFailures ?? 0,
      filterWaits: this.engine?.filterWaits ?? 0,
      storeBytes: this.store.bytes,
      uptimeSeconds: this.startedAt ? Math.floor((Date.now() - this.startedAt) / 1000) : 0,
    };
  }

  statsLine(): string {
    const s = this.stats();
    return (
      `STATS: Total=${s.total}, Dropped=${s.dropped}, Current=${s.current}, Clients=${s.clients}, ` +
      `Backend=${s.backend}, Connections=${s.connections}, Rejected=${s.rejected}, LinesReceived=${s.linesReceived}, ` +
      `BytesReceived=${s.bytesReceived}, Truncated=${s.truncated}, Persisted=${s.persisted}, PersistedBytes=${s.persistedBytes}, ` +
      `Persisting=${s.persisting}${s.persistError ? ` (${s.persistError.replace(/, /g, ' ')})` : ''}, PersistDropped=${s.persistDropped}, ` +
      `Reloaded=${s.reloaded}, StoreBytes=${s.storeBytes}, JournalBytes=${s.journalBytes}, JournalFiles=${s.journalFiles}, ` +
      `FiltersPending=${s.filtersPending}, FilterFailures=${s.filterFailures}, FilterWaits=${s.filterWaits}, HistoryGroupsSkipped=${s.historyGroupsSkipped}, HistoryGroupsOutsideWindow=${s.historyGroupsOutsideWindow}, ` +
      `HistoryGroupsDamaged=${s.historyGroupsDamaged}, QueryClients=${s.queryClients}, QueryRejected=${s.queryRejected}, ` +
      `AuthFailures=${s.authFailures}, AuthRequired=${s.authRequired}, IngestDenied=${s.ingestDenied}, QueryDenied=${s.queryDenied}, ` +
      `UdpReceived=${s.udpReceived}, UdpTruncated=${s.udpTruncated}, UdpDropped=${s.udpDropped}, ` +
      `UnixReceived=${s.unixReceived}, UnixTruncated=${s.unixTruncated}, UnixDropped=${s.unixDropped}, ` +
      `RelpClients=${s.relpClients}, RelpReceived=${s.relpReceived}, ` +
      `TlsHandshakes=${s.tlsHandshakes}, TlsHandshakeFailures=${s.tlsHandshakeFailures}, AuthCertificates=${s.authCertificates}, ` +
      `Errors=${s.errors}, Uptime=${s.uptimeSeconds}s`
    );
  }

  /** GET /metrics: every counter, read now. */
  private metricsText(m: ServerMetrics): string {
    const j = this.journal;
    return m.render({
      version: VERSION,
      backend: this.reactor?.backend ?? 'none',
      startedAtMs: this.startedAt,
      store: this.store,
      ingest: this.ingest?.counters,
      journal: j ? { ...j.detailedStats, failed: j.error !== null, stalled: j.stall !== null } : undefined,
      queryConnections: this.query?.conns.size ?? 0,
      http: this.httpPort?.handler.counters,
      tailSubscribers: this.httpPort?.tail.size ?? 0,
      authFailures: this.access.gate.counters.failures + (this.httpPort?.counters.authFailures ?? 0),
      authRefused: this.access.gate.counters.refused,
      ingestDenied: this.denied.ingest,
      queryDenied: this.denied.query,
      regexTimeouts: this.engine?.regexTimeouts ?? 0,
      history: this.engine && {
        retainedLines: this.engine.retained,
        groupsSkipped: this.engine.groupsSkipped,
        groupsOutsideWindow: this.engine.groupsOutsideWindow,
        groupsDamaged: this.engine.groupsDamaged,
        filterFailures: this.engine.filterFailures,
        filterWaits: this.engine.filterWaits,
      },
    });
  }

  /** GET /ready: the ports are bound and the journal (if any) can still be written. */
  async ready(): Promise<ReadyReport> {
    const checks: Record<string, true | string> = {};
    checks.listening = this.state === 'running' ? true : `server is ${this.state}`;
    const j = this.journal;
    if (j) {
      if (j.error) checks.journal = `journal failed: ${j.error.message}`;
      else if (j.stall) checks.journal = `disk full, lines wait in memory: ${j.stall.error.message}`;
      else {
        try {
          await access(this.dataDir!, fsConstants.W_OK);
          checks.journal = true;
        } catch (e) {
          checks.journal = `data directory not writable: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
        }
      }
    }
    return { ready: Object.values(checks).every((c) => c === true), checks };
  }

  /** Graceful stop: stop accepting, keep reading from clients still sending until they
   *  go quiet (at most shutdownGraceMs), store and ack what arrived, flush and fsync
   *  the journal, then close everything. */
  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    if (this.state === 'new' || this.state === 'stopped') {
      this.state = 'stopped';
      return;
    }
    this.state = 'stopping';
    for (const l of this.listeners_) l.close();
    this.listeners_ = [];
    // Datagrams have no sender waiting for an answer: the sockets go with the listeners.
    for (const d of this.datagramSockets) d.close();
    this.datagramSockets = [];
    this.query?.closeAll();
    this.httpPort?.close();
    const ingest = this.ingest!;
    const relp = this.relp;
    const deadline = Date.now() + this.options.shutdownGraceMs;
    const QUIET_MS = 200;
    const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
    // Let connections that are still sending finish, until quiet or out of time.
    const lastDataAt = (): number => Math.max(ingest.counters.lastDataAt, relp?.counters.lastDataAt ?? 0);
    while (ingest.conns.size + (relp?.conns.size ?? 0) > 0 && Date.now() < deadline && Date.now() - lastDataAt() < QUIET_MS) {
      await sleep(25);
    }
    for (const c of ingest.conns) c.conn.pause();
    for (const c of relp?.conns ?? []) c.conn.pause();
    ingest.finishAll();
    if (this.journal) {
      this.store.cut();
      this.journal.flush();
      // With acks after fsync: wait (bounded) until every stored line is durable and acked.
      const ackDeadline = Date.now() + 5000;
      while (ingest.pendingAcks + (relp?.pendingAcks ?? 0) > 0 && Date.now() < ackDeadline) await sleep(10);
    }
    relp?.finishAll();
    // Let queued acks reach the clients, then close.
    for (const c of ingest.conns) {
      if (!c.conn.closed) c.conn.end();
    }
    const endDeadline = Date.now() + 500;
    while (ingest.conns.size > 0 && Date.now() < endDeadline) {
      let queued = 0;
      for (const c of ingest.conns) queued += c.conn.closed ? 0 : c.conn.bufferedAmount;
      if (queued === 0) break;
      await sleep(10);
    }
    await this.reactor?.close();
    await this.engine?.close();
    ingest.detachJournal();
    try {
      await this.journal?.close();
    } finally {
      this.lock?.release();
      this.state = 'stopped';
    }
  }
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const VERSION: string = (require('../../package.json') as { version: string }).version;
/** `ENOSPC on /data/logcaster-000000000003.log`: what STATS, acks and warnings say. */
function persistProblem(err: NodeJS.ErrnoException): string {
  return `${err.code ?? err.message}${err.path !== undefined ? ` on ${err.path}` : ''}`;
}

/** '@name' is the CLI's spelling of a Linux abstract socket name ('\0name'). */
function unixPath(p: string): string {
  return p.startsWith('@') ? `\0${p.slice(1)}` : p;
}

export function createLogCaster(options: LogCasterOptions = {}): LogCaster {
  return new LogCaster(options);
}
