// The reactor: owns one native engine, walks the batch of events it hands over per
// loop turn, and turns them into Handler calls on Connection objects.
import { lookup } from 'node:dns';
import { isIP } from 'node:net';
import { constants } from 'node:os';

import { familyName } from './address';
import { DatagramSocketImpl } from './datagram';
import { errnoCode, errnoError, nativeError, reactorError } from './errors';
import { loadBackend } from './loader';
import { ClientContexts, createContext, nativeTlsOptions, tlsInfo } from './tls';
import {
  EVENT_HEADER,
  EVENT_INTS,
  EV_CLOSE,
  EV_DATA,
  EV_DRAIN,
  EV_END,
  EV_LISTEN_ERROR,
  EV_MESSAGE,
  EV_OPEN,
  EV_SOCKET_ERROR,
  EV_TIMEOUT,
  PHASE_CONNECT,
  PHASE_READ,
  PHASE_TLS,
  PHASE_WATCH,
  PHASE_WRITE,
  SLOT_MASK,
} from './native-events';
import type {
  AddressFamily,
  BackendModule,
  BackendName,
  ConnectOptions,
  Connection,
  DatagramHandler,
  DatagramSocket,
  Handler,
  ListenOptions,
  Listener,
  NativeDatagramOptions,
  NativeEngine,
  Reactor,
  ReactorOptions,
  ReactorStats,
  Timer,
  UdpOptions,
  UnixConnectOptions,
  UnixDatagramOptions,
  UnixListenOptions,
  TlsInfo,
  TlsOptions,
} from './types';

const { EPIPE, ERANGE } = constants.errno;
const DEFAULT_READ_BUFFER = 1024 * 1024;
const DEFAULT_MAX_EVENTS = 8192;
/** The engine refuses a smaller event buffer (core/native/addon.cc): a harvest keeps
 *  slack for the records one read or close adds. */
const MIN_MAX_EVENTS = 64;

function normaliseHost(host: string | undefined): string {
  if (host === undefined || host === 'localhost') return '127.0.0.1';
  return host;
}

function checkPath(path: unknown, what: string): string {
  if (typeof path !== 'string' || path.length === 0) throw reactorError(`${what}: path must be a non-empty string`, 'ERR_INVALID_ARG_VALUE');
  return path;
}

/** File mode for a Unix socket; -1 = leave what the umask gives. */
function checkMode(mode: number | undefined, what: string): number {
  if (mode === undefined) return -1;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw new RangeError(`${what}: mode must be 0..0o7777, got ${mode}`);
  return mode;
}

const MAX_DATAGRAM = 65536;

function datagramLimits(
  o: { recvBufferSize?: number; sendBufferSize?: number; maxMessageSize?: number },
  what: string,
): Pick<NativeDatagramOptions, 'recvBufferSize' | 'sendBufferSize' | 'maxMessageSize'> {
  const size = (v: number | undefined, name: string, max: number): number | undefined => {
    if (v === undefined) return undefined;
    if (!Number.isInteger(v) || v < 1 || v > max) throw new RangeError(`${what}: ${name} must be 1..${max}, got ${v}`);
    return v;
  };
  return {
    recvBufferSize: size(o.recvBufferSize, 'recvBufferSize', 2 ** 31 - 1),
    sendBufferSize: size(o.sendBufferSize, 'sendBufferSize', 2 ** 31 - 1),
    maxMessageSize: size(o.maxMessageSize, 'maxMessageSize', MAX_DATAGRAM),
  };
}

class ConnectionImpl implements Connection {
  readonly kind = 'stream';
  context: unknown = undefined;
  /** No more I/O: set by destroy() at once, or by the engine's CLOSE. Events already
   *  harvested for this connection in the current batch are then dropped. */
  closed = false;
  /** onClose has been delivered. */
  finished = false;
  paused = false;
  ended = false; // end() called
  openError: Error | undefined = undefined;
  destroyError: Error | undefined = undefined;
  pendingWrites: Buffer[] | undefined; // before an outbound connection has an engine id
  tls: TlsInfo | undefined = undefined; // read at OPEN, when the handshake is done
  private addr: [string, number, number] | null | undefined;

  constructor(
    private readonly reactor: ReactorImpl,
    public id: number,
    readonly handler: Handler,
    readonly outbound: boolean,
    readonly target?: string,
    /** Outbound TLS: the options to connect with. */
    readonly tlsOptions?: TlsOptions,
  ) {}

  tlsSession(): Buffer | undefined {
    return this.closed || this.id <= 0 ? undefined : (this.engine.tlsSession(this.id) ?? undefined);
  }

  private get engine(): NativeEngine {
    return this.reactor.engine;
  }

  private address(): [string, number, number] | null {
    if (this.addr === undefined) this.addr = this.id > 0 && !this.closed ? this.engine.remoteAddress(this.id) : null;
    return this.addr;
  }
  get remoteAddress(): string | undefined {
    return this.address()?.[0];
  }
  get remotePort(): number | undefined {
    const a = this.address();
    return a && this.remoteFamily !== 'unix' ? a[1] : undefined;
  }
  get remoteFamily(): AddressFamily | undefined {
    const a = this.address();
    return a ? familyName(a[2]) : undefined;
  }
  get writable(): boolean {
    return !this.closed && !this.ended;
  }
  get bufferedAmount(): number {
    return this.closed || this.id <= 0 ? 0 : this.engine.queued(this.id);
  }

  /** Cache the peer address while the socket still exists (used before close). */
  rememberAddress(): void {
    this.address();
  }

  write(data: Uint8Array | string): boolean {
    if (this.closed) throw reactorError(`write after close (connection ${this.id})`, 'ERR_LOGCASTER_CLOSED');
    if (this.ended) throw reactorError(`write after end (connection ${this.id})`, 'ERR_LOGCASTER_ENDED');
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    if (this.id <= 0) {
      // Still resolving the host name: keep it until the engine has a socket.
      (this.pendingWrites ??= []).push(Buffer.from(bytes));
      return true;
    }
    const r = this.engine.write(this.id, bytes);
    // A write can tear the connection down (a socket error): outside a batch, its
    // CLOSE must still be delivered.
    this.reactor.afterNativeCall();
    if (r >= 0) return r === 1;
    // The engine already tore it down (e.g. reset seen earlier in this batch); the
    // CLOSE event is on its way, so report backpressure rather than throwing.
    if (r === -EPIPE) return false;
    throw errnoError(-r, 'write');
  }

  end(data?: Uint8Array | string): void {
    if (this.closed || this.ended) return;
    if (data !== undefined) this.write(data);
    this.ended = true;
    if (this.id > 0) {
      // Ending after the peer already ended closes the connection: outside a batch
      // (a timer), nothing else would deliver that CLOSE.
      this.engine.end(this.id);
      this.reactor.afterNativeCall();
    }
  }

  destroy(err?: Error): void {
    if (this.closed) return;
    if (err && !this.destroyError) this.destroyError = err;
    if (this.id <= 0) {
      this.reactor.closeUnstarted(this);
      return;
    }
    this.rememberAddress();
    this.closed = true;
    this.engine.destroy(this.id);
    this.reactor.afterNativeCall();
  }

  pause(): void {
    if (this.closed || this.paused) return;
    this.paused = true;
    if (this.id > 0) this.engine.pause(this.id);
  }

  resume(): void {
    if (this.closed || !this.paused) return;
    this.paused = false;
    if (this.id > 0) this.engine.resume(this.id);
  }

  setIdleTimeout(ms: number): void {
    if (this.closed) return;
    if (!(ms >= 0) || ms > 0xffffffff) throw new RangeError(`idle timeout must be 0..2^32-1 ms, got ${ms}`);
    if (this.id > 0) this.engine.setIdleTimeout(this.id, Math.round(ms));
  }
}

class ListenerImpl implements Listener {
  closed = false;
  constructor(
    private readonly reactor: ReactorImpl,
    readonly nativeId: number,
    readonly host: string,
    readonly port: number,
    readonly handler: Handler,
    readonly path: string | undefined = undefined,
    readonly tls: boolean = false,
  ) {}
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.reactor.removeListener(this);
  }
}

class TimerImpl implements Timer {
  handle: NodeJS.Timeout | undefined;
  constructor(private readonly timers: Set<TimerImpl>) {}
  cancel(): void {
    if (this.handle) clearTimeout(this.handle);
    this.handle = undefined;
    this.timers.delete(this);
  }
}

class ReactorImpl implements Reactor {
  readonly backend: BackendName;
  engine: NativeEngine;
  private readonly events: Int32Array;
  private readonly arena: Buffer;
  /** Connections and datagram sockets by engine slot (they share the id space). */
  private readonly conns: (ConnectionImpl | DatagramSocketImpl | undefined)[] = [];
  private readonly listeners = new Map<number, ListenerImpl>();
  private readonly timers = new Set<TimerImpl>();
  private readonly tlsClients = new ClientContexts();
  private readonly allowHalfOpen: boolean;
  private readonly onError: ((err: unknown, conn: Connection | DatagramSocket | undefined) => void) | undefined;
  private dispatching = false;
  private flushQueued = false;
  private closing: Promise<void> | undefined;
  private closed = false;
  private unrefd = false;
  private liveConns = 0;
  private closeWaiters: (() => void)[] = [];

  constructor(options: ReactorOptions, module: BackendModule) {
    this.backend = module.name;
    this.allowHalfOpen = options.allowHalfOpen ?? false;
    this.onError = options.onError;
    const maxEvents = options.maxEventsPerBatch ?? DEFAULT_MAX_EVENTS;
    if (!Number.isInteger(maxEvents) || maxEvents < MIN_MAX_EVENTS) {
      throw new RangeError(`maxEventsPerBatch must be an integer of at least ${MIN_MAX_EVENTS}, got ${maxEvents}`);
    }
    this.events = new Int32Array(EVENT_HEADER + EVENT_INTS * maxEvents);
    // Own (unpooled) memory: the engine keeps a pointer into it for its lifetime.
    this.arena = Buffer.allocUnsafeSlow(options.readBufferSize ?? DEFAULT_READ_BUFFER);
    this.engine = new module.Engine(
      { highWaterMark: options.highWaterMark, edgeTriggered: options.edgeTriggered, sqpoll: options.sqpoll },
      this.dispatch,
      this.events,
      this.arena,
    );
  }

  // ---- the hot path: one call per batch ----
  private readonly dispatch = (): void => {
    const ev = this.events;
    const conns = this.conns;
    let firstError: unknown;
    this.dispatching = true;
    try {
      for (let i = 0; i < ev[0]; i++) {
        const base = EVENT_HEADER + i * EVENT_INTS;
        const kind = ev[base];
        const id = ev[base + 1];
        let conn: ConnectionImpl | DatagramSocketImpl | undefined;
        if (kind !== EV_LISTEN_ERROR) {
          conn = conns[id & SLOT_MASK];
          if (kind !== EV_OPEN && (conn === undefined || conn.id !== id)) continue;
        }
        try {
          switch (kind) {
            case EV_DATA:
              if (!conn!.closed && conn!.kind === 'stream') conn!.handler.onData?.(conn!, this.arena.subarray(ev[base + 2], ev[base + 2] + ev[base + 3]));
              break;
            case EV_MESSAGE:
              if (!conn!.closed && conn!.kind === 'datagram') conn!.onMessageRecord(this.arena, ev[base + 2], ev[base + 3]);
              break;
            case EV_OPEN:
              // Bound before the handler runs, so an exception in onOpen closes this
              // connection (the catch below) instead of leaving it open and unowned.
              conn = this.openConnection(id, ev[base + 2], ev[base + 3]);
              if (conn) {
                conn.handler.onOpen?.(conn);
                if (conn.openError && !conn.closed) conn.destroy(conn.openError);
              }
              break;
            case EV_DRAIN:
              if (!conn!.closed) {
                if (conn!.kind === 'stream') conn!.handler.onDrain?.(conn!);
                else conn!.handler.onDrain?.(conn!);
              }
              break;
            case EV_END:
              if (!conn!.closed && conn!.kind === 'stream') {
                conn!.handler.onEnd?.(conn!);
                if (!(conn!.handler.allowHalfOpen ?? this.allowHalfOpen) && !conn!.closed) conn!.end();
              }
              break;
            case EV_TIMEOUT:
              if (!conn!.closed && conn!.kind === 'stream') conn!.handler.onTimeout?.(conn!);
              break;
            case EV_CLOSE:
              if (conn!.kind === 'stream') this.onClose(conn!, ev[base + 2], ev[base + 3]);
              else this.onSocketClose(conn!);
              break;
            case EV_SOCKET_ERROR:
              if (!conn!.closed && conn!.kind === 'datagram') conn!.onErrorEvent(ev[base + 2], ev[base + 3]);
              break;
            case EV_LISTEN_ERROR:
              this.onListenError(id, ev[base + 2]);
              break;
          }
        } catch (err) {
          if (this.onError) {
            this.onError(err, conn);
          } else if (firstError === undefined) {
            firstError = err;
          }
          // A connection is one client: it goes. A datagram socket serves every sender,
          // so one failing message must not take it down.
          if (conn && !conn.closed && conn.kind === 'stream') conn.destroy(err instanceof Error ? err : new Error(String(err)));
        }
      }
    } finally {
      this.dispatching = false;
    }
    if (firstError !== undefined) {
      // Like an exception in a 'data' listener of node:net: uncaught, after the rest of
      // the batch has been delivered.
      throw firstError;
    }
  };

  /** The connection an OPEN event is for: an outbound one now connected, or a new
   *  accepted one (undefined when it is gone or its listener was closed). */
  private openConnection(id: number, listenerId: number, watchErrno: number): ConnectionImpl | undefined {
    let conn: ConnectionImpl | undefined;
    if (listenerId < 0) {
      const e = this.conns[id & SLOT_MASK];
      if (!e || e.kind !== 'stream' || e.id !== id || e.closed) return undefined;
      conn = e;
      if (conn.tlsOptions) conn.tls = this.readTlsInfo(id);
    } else {
      const listener = this.listeners.get(listenerId);
      if (!listener) {
        this.engine.destroy(id);
        return undefined;
      }
      conn = new ConnectionImpl(this, id, listener.handler, false);
      if (listener.tls) conn.tls = this.readTlsInfo(id);
      this.conns[id & SLOT_MASK] = conn;
      this.liveConns++;
      if (watchErrno) {
        conn.openError = reactorError(
          watchErrno === ERANGE
            ? `${this.backend} backend cannot watch this connection: descriptor is beyond FD_SETSIZE (1024)`
            : `${this.backend} backend cannot watch this connection: ${errnoCode(watchErrno)}`,
          errnoCode(watchErrno),
          watchErrno,
        );
      }
    }
    return conn;
  }

  private onClose(conn: ConnectionImpl, errno: number, phase: number): void {
    if (conn.finished) return;
    conn.finished = true;
    conn.closed = true;
    this.conns[conn.id & SLOT_MASK] = undefined;
    this.liveConns--;
    let err: Error | undefined = conn.destroyError;
    if (!err && phase === PHASE_TLS) {
      err = reactorError(this.engine.tlsError(conn.id) || 'TLS failed', 'ERR_LOGCASTER_TLS', errno, 'tls');
    } else if (!err && errno) {
      const syscall = phase === PHASE_CONNECT ? 'connect' : phase === PHASE_READ ? 'read' : phase === PHASE_WRITE ? 'write' : phase === PHASE_WATCH ? 'watch' : 'socket';
      err = errnoError(errno, syscall, phase === PHASE_CONNECT ? conn.target : undefined);
    }
    try {
      conn.handler.onClose?.(conn, err);
    } finally {
      if (this.liveConns === 0 && this.closeWaiters.length) {
        const waiters = this.closeWaiters;
        this.closeWaiters = [];
        for (const w of waiters) w();
      }
    }
  }

  private readTlsInfo(id: number): TlsInfo | undefined {
    const n = this.engine.tlsInfo(id);
    return n ? tlsInfo(n) : undefined;
  }

  private onSocketClose(sock: DatagramSocketImpl): void {
    if (sock.finished) return;
    this.conns[sock.id & SLOT_MASK] = undefined;
    sock.onCloseEvent();
  }

  private onListenError(listenerId: number, errno: number): void {
    const listener = this.listeners.get(listenerId);
    const err = errnoError(errno, 'accept', listener ? `${listener.host}:${listener.port}` : undefined);
    // Accepting pauses and resumes by itself; report so operators see fd exhaustion.
    if (this.onError) this.onError(err, undefined);
    else process.emitWarning(`LogCaster reactor: ${err.message}; accepting paused until descriptors free up`, 'ReactorWarning');
  }

  /** Events produced by a call made outside a batch (destroy, end or a failing write
   *  from a timer...) are delivered on a microtask, so onClose never runs inside the
   *  caller's call. Inside a batch the walk picks them up; this returns at once. */
  afterNativeCall(): void {
    if (this.dispatching || this.flushQueued || this.events[0] === 0) return;
    this.flushQueued = true;
    queueMicrotask(() => {
      this.flushQueued = false;
      if (!this.closed || this.events[0] > 0) this.engine.dispatchPending();
    });
  }

  closeUnstarted(conn: ConnectionImpl): void {
    // Outbound connection still resolving its host name: nothing native exists yet.
    conn.closed = true;
    conn.finished = true;
    this.liveConns--;
    queueMicrotask(() => conn.handler.onClose?.(conn, conn.destroyError));
  }

  removeListener(listener: ListenerImpl): void {
    this.listeners.delete(listener.nativeId);
    if (!this.closed) this.engine.closeListener(listener.nativeId);
  }

  // ---- public API ----

  listen(options: ListenOptions | UnixListenOptions, handler: Handler): Listener {
    this.assertOpen();
    if ('path' in options) return this.listenUnix(options, handler);
    const host = normaliseHost(options.host);
    if (!isIP(host)) throw reactorError(`listen: host must be an IP address or 'localhost', got '${host}'`, 'ERR_INVALID_ARG_VALUE');
    const port = options.port;
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`listen: port must be 0..65535, got ${port}`);
    const tlsContext = options.tls ? createContext(this.engine, nativeTlsOptions(options.tls, true)) : -1;
    let result: [number, number];
    try {
      result = this.engine.listen(host, port, options.backlog ?? 0, options.ipv6Only ?? false, tlsContext);
    } catch (e) {
      throw nativeError(e, 'listen');
    } finally {
      // The listener holds the context from here on; it goes when the listener does.
      if (tlsContext >= 0) this.engine.releaseTlsContext(tlsContext);
    }
    const listener = new ListenerImpl(this, result[0], host, result[1], handler, undefined, tlsContext >= 0);
    this.listeners.set(result[0], listener);
    return listener;
  }

  private listenUnix(options: UnixListenOptions, handler: Handler): Listener {
    const path = checkPath(options.path, 'listen');
    let id: number;
    try {
      id = this.engine.listenUnix(path, checkMode(options.mode, 'listen'), options.backlog ?? 0);
    } catch (e) {
      throw nativeError(e, 'listen');
    }
    const listener = new ListenerImpl(this, id, '', 0, handler, path);
    this.listeners.set(id, listener);
    return listener;
  }

  connect(options: ConnectOptions | UnixConnectOptions, handler: Handler): Connection {
    this.assertOpen();
    if ('path' in options) {
      const path = checkPath(options.path, 'connect');
      const conn = new ConnectionImpl(this, 0, handler, true, path);
      this.liveConns++;
      this.startOutbound(conn, () => this.engine.connectUnix(path), path);
      return conn;
    }
    const host = normaliseHost(options.host);
    const port = options.port;
    if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new RangeError(`connect: port must be 1..65535, got ${port}`);
    // Resolved now: a bad certificate or option throws here, not later in onClose.
    if (options.tls) this.tlsClients.get(this.engine, options.tls);
    const conn = new ConnectionImpl(this, 0, handler, true, `${host}:${port}`, options.tls);
    this.liveConns++;
    const name = options.host ?? host; // 'localhost' stays the TLS server name
    if (isIP(host)) {
      this.startConnect(conn, host, port, name);
    } else {
      lookup(host, (err, address) => {
        if (conn.closed) return;
        if (err) {
          conn.destroy(reactorError(`connect: cannot resolve ${host}: ${err.message}`, (err as NodeJS.ErrnoException).code ?? 'ENOTFOUND'));
          return;
        }
        this.startConnect(conn, address, port, name);
      });
    }
    return conn;
  }

  bindUdp(options: UdpOptions, handler: DatagramHandler): DatagramSocket {
    this.assertOpen();
    const host = normaliseHost(options.host);
    if (!isIP(host)) throw reactorError(`bindUdp: host must be an IP address or 'localhost', got '${host}'`, 'ERR_INVALID_ARG_VALUE');
    const port = options.port ?? 0;
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`bindUdp: port must be 0..65535, got ${port}`);
    const native: NativeDatagramOptions = { unix: false, host, port, ipv6Only: options.ipv6Only, reusePort: options.reusePort, ...datagramLimits(options, 'bindUdp') };
    if (options.connect) {
      const to = normaliseHost(options.connect.host);
      if (!isIP(to)) throw reactorError(`bindUdp: connect.host must be an IP address, got '${to}'`, 'ERR_INVALID_ARG_VALUE');
      const cport = options.connect.port;
      if (!Number.isInteger(cport) || cport <= 0 || cport > 65535) throw new RangeError(`bindUdp: connect.port must be 1..65535, got ${cport}`);
      native.connectHost = to;
      native.connectPort = cport;
    }
    return this.bindDatagram(native, handler, false, options.connect !== undefined, 'bind');
  }

  bindUnixDgram(options: UnixDatagramOptions, handler: DatagramHandler): DatagramSocket {
    this.assertOpen();
    const native: NativeDatagramOptions = { unix: true, mode: checkMode(options.mode, 'bindUnixDgram'), ...datagramLimits(options, 'bindUnixDgram') };
    if (options.path !== undefined) native.path = checkPath(options.path, 'bindUnixDgram');
    if (options.connect) native.connectPath = checkPath(options.connect.path, 'bindUnixDgram');
    return this.bindDatagram(native, handler, true, options.connect !== undefined, 'bind');
  }

  private bindDatagram(native: NativeDatagramOptions, handler: DatagramHandler, unix: boolean, connected: boolean, syscall: string): DatagramSocket {
    let id: number;
    try {
      id = this.engine.bindDatagram(native)[0];
    } catch (e) {
      throw nativeError(e, syscall);
    }
    const sock = new DatagramSocketImpl(this, id, handler, unix, connected);
    this.conns[id & SLOT_MASK] = sock;
    return sock;
  }

  /** `name`: the host name connected to, the default TLS servername. */
  private startConnect(conn: ConnectionImpl, ip: string, port: number, name: string): void {
    const t = conn.tlsOptions;
    const open = t
      ? () => this.engine.connect(ip, port, this.tlsClients.get(this.engine, t), t.servername ?? name, t.session ?? null)
      : () => this.engine.connect(ip, port, -1, '', null);
    this.startOutbound(conn, open, `${ip}:${port}`);
  }

  private startOutbound(conn: ConnectionImpl, open: () => number, target: string): void {
    let id: number;
    try {
      id = open();
    } catch (e) {
      const errno = (e as { errno?: number }).errno ?? 0;
      conn.destroy(errno ? errnoError(errno, 'connect', target) : (e as Error));
      return;
    }
    conn.id = id;
    this.conns[id & SLOT_MASK] = conn;
    const pending = conn.pendingWrites;
    conn.pendingWrites = undefined;
    if (pending) for (const b of pending) this.engine.write(id, b);
    if (conn.paused) this.engine.pause(id);
    if (conn.ended) this.engine.end(id);
    this.afterNativeCall();
  }

  setTimer(ms: number, fn: () => void, options?: { repeat?: boolean }): Timer {
    this.assertOpen();
    const timer = new TimerImpl(this.timers);
    const repeat = options?.repeat ?? false;
    const fire = (): void => {
      if (repeat) timer.handle = setTimeout(fire, ms);
      else this.timers.delete(timer);
      fn();
    };
    timer.handle = setTimeout(fire, ms);
    if (this.unrefd) timer.handle.unref();
    this.timers.add(timer);
    return timer;
  }

  unref(): void {
    this.unrefd = true;
    if (!this.closed) this.engine.unref();
    for (const t of this.timers) t.handle?.unref();
  }

  ref(): void {
    this.unrefd = false;
    if (!this.closed) this.engine.ref();
    for (const t of this.timers) t.handle?.ref();
  }

  stats(): ReactorStats {
    const s = this.closed
      ? { connections: 0, listeners: 0, accepted: 0, closed: 0, bytesRead: 0, bytesWritten: 0, turns: 0, dispatches: 0, acceptPauses: 0, tlsHandshakes: 0, tlsHandshakeFailures: 0, datagrams: { received: 0, truncated: 0, dropped: 0, sent: 0, sendErrors: 0 }, driver: {} }
      : this.engine.stats();
    return { backend: this.backend, ...s };
  }

  get connectionCount(): number {
    return this.liveConns;
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = new Promise<void>((resolve) => {
      for (const t of [...this.timers]) t.cancel();
      this.listeners.clear();
      for (const e of this.conns) if (e?.kind === 'datagram') e.rememberStats();
      // Destroys every connection; their CLOSE events are delivered right here (or,
      // when close() is called from a handler, later in the current batch).
      this.engine.shutdown();
      const finish = (): void => {
        if (this.dispatching) {
          setImmediate(finish);
          return;
        }
        this.engine.dispatchPending();
        this.closed = true;
        this.engine.closeHandles();
        resolve();
      };
      if (this.dispatching) setImmediate(finish);
      else finish();
    });
    return this.closing;
  }

  run(until?: () => boolean): void {
    this.assertOpen();
    if (this.dispatching) throw reactorError('run() cannot be called from a handler', 'ERR_LOGCASTER_REENTRANT');
    while (!this.closing && !(until?.() ?? false)) {
      this.engine.runOnce(100);
    }
  }

  private assertOpen(): void {
    if (this.closing) throw reactorError('reactor is closed', 'ERR_LOGCASTER_CLOSED');
  }
}

/** Create a reactor on the given backend ('auto' by default). */
export function createReactor(options: ReactorOptions = {}): Reactor & { readonly connectionCount: number } {
  const loaded = loadBackend(options.backend ?? 'auto');
  return new ReactorImpl(options, loaded.module);
}

/** Create a reactor on an already-loaded backend module (tests, custom builds). */
export function createReactorWith(module: BackendModule, options: ReactorOptions = {}): Reactor & { readonly connectionCount: number } {
  return new ReactorImpl(options, module);
}
