// The reactor contract: what handlers see and what every backend package provides.

/** Names of the I/O multiplexing backends, one npm package each. */
export type BackendName = 'select' | 'poll' | 'epoll' | 'kqueue' | 'iouring';

/**
 * Per-connection callbacks. Readiness (select/poll/epoll/kqueue) and completion
 * (io_uring) backends deliver exactly the same sequence:
 * onOpen, then any number of onData/onDrain/onTimeout, at most one onEnd, and
 * exactly one onClose.
 */
export interface Handler {
  /** Connection accepted (listener) or connected (outbound). */
  onOpen?(conn: Connection): void;
  /** Bytes arrived. `data` is a view into the loop-wide read buffer: it is valid only
   *  during this call — copy what you keep. */
  onData?(conn: Connection, data: Buffer): void;
  /** A write returned false earlier and the write queue has now emptied. */
  onDrain?(conn: Connection): void;
  /** The peer half-closed (sent FIN). Unless the reactor allows half-open
   *  connections or the handler calls end()/destroy() here, the reactor ends our side. */
  onEnd?(conn: Connection): void;
  /** Exactly once per connection. `err` is set when it closed because of an error
   *  (ECONNRESET, ECONNREFUSED on connect, destroy(err), ...). */
  onClose?(conn: Connection, err?: Error): void;
  /** No bytes moved in either direction for the idle timeout. Fires again after
   *  another idle period unless the handler closes the connection. */
  onTimeout?(conn: Connection): void;
  /** This handler's connections stay open for writing after the peer's FIN until
   *  the handler ends them, whatever the reactor's `allowHalfOpen` says (a protocol
   *  that answers what arrived before the FIN asynchronously, such as HTTP). */
  readonly allowHalfOpen?: boolean;
}

export interface Connection {
  /** Engine id (slot and generation); unique among live connections. */
  readonly id: number;
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly remoteFamily: 'IPv4' | 'IPv6' | undefined;
  /** Set when the backend accepted the connection but cannot watch it (e.g. select and
   *  an fd >= FD_SETSIZE). onOpen may still write a short reply; the reactor then
   *  closes the connection with this error. */
  readonly openError: Error | undefined;
  readonly closed: boolean;
  /** false once closed or after end(): write() would throw. */
  readonly writable: boolean;
  readonly paused: boolean;
  /** Bytes queued natively, not yet accepted by the kernel. */
  readonly bufferedAmount: number;
  /** Free slot for the handler's per-connection state. */
  context: unknown;
  /** Send bytes. Returns false when the write queue is at or above the high-water
   *  mark: stop producing until onDrain. Throws if the connection is closed or ended. */
  write(data: Uint8Array | string): boolean;
  /** Flush the queue, then half-close our side (optionally writing `data` first). */
  end(data?: Uint8Array | string): void;
  /** Close now, dropping queued bytes; onClose gets `err`. */
  destroy(err?: Error): void;
  pause(): void;
  resume(): void;
  /** Idle timeout in ms (0 disables); onTimeout fires when it elapses. */
  setIdleTimeout(ms: number): void;
}

export interface ListenOptions {
  /** IP address or 'localhost'. Default '127.0.0.1'. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** Default: the system maximum (net.core.somaxconn). */
  backlog?: number;
  ipv6Only?: boolean;
}

export interface Listener {
  readonly host: string;
  readonly port: number;
  close(): void;
}

export interface ConnectOptions {
  host?: string;
  port: number;
}

export interface Timer {
  cancel(): void;
}

export interface ReactorStats {
  backend: string;
  connections: number;
  listeners: number;
  accepted: number;
  closed: number;
  bytesRead: number;
  bytesWritten: number;
  turns: number;
  dispatches: number;
  acceptPauses: number;
  /** Mechanism-specific counters (io_uring: receive-buffer pool state); {} when none. */
  driver: Record<string, number>;
}

export interface Reactor {
  /** The backend actually in use ('epoll', ...). */
  readonly backend: BackendName;
  listen(options: ListenOptions, handler: Handler): Listener;
  connect(options: ConnectOptions, handler: Handler): Connection;
  /** A timer owned by the reactor: cancelled by close(). */
  setTimer(ms: number, fn: () => void, options?: { repeat?: boolean }): Timer;
  /** Let the process exit while the reactor is still open (like server.unref()). */
  unref(): void;
  ref(): void;
  stats(): ReactorStats;
  /** Stop everything: listeners close, connections are destroyed (each gets onClose),
   *  timers are cancelled. Resolves when done. */
  close(): Promise<void>;
  /** Dedicated-thread mode: block this thread in the kernel and dispatch until
   *  close() is called from a handler or `until()` returns true. Node's event loop
   *  (timers, promises, other I/O) does not turn meanwhile. */
  run(until?: () => boolean): void;
}

export interface ReactorOptions {
  /** 'auto' (default) picks the best installed backend; see BACKEND_PREFERENCE. */
  backend?: BackendName | 'auto';
  /** Write-queue size at which write() starts returning false. Default 64 KiB. */
  highWaterMark?: number;
  /** epoll: edge-triggered instead of level-triggered. */
  edgeTriggered?: boolean;
  /** io_uring: kernel-side submission polling (burns a core; off by default). */
  sqpoll?: boolean;
  /** Size of the loop-wide read buffer shared by all connections. Default 1 MiB. */
  readBufferSize?: number;
  /** Events handed to JS per batch at most. Default 8192, at least 64. */
  maxEventsPerBatch?: number;
  /** Keep a connection open after the peer half-closes until the handler ends it. */
  allowHalfOpen?: boolean;
  /** Errors thrown by handlers. Default: rethrown after the batch (an uncaught exception). */
  onError?: (err: unknown, conn: Connection | undefined) => void;
}

// ---- The contract backend packages implement (native addon exports) ----

export interface BackendProbe {
  supported: boolean;
  /** Why not, when unsupported. */
  reason: string;
}

export interface NativeEngineOptions {
  highWaterMark?: number;
  edgeTriggered?: boolean;
  sqpoll?: boolean;
}

/** One native reactor instance (see core/native/addon.cc). Ids are connection ids;
 *  negative numbers returned are -errno. */
export interface NativeEngine {
  listen(host: string, port: number, backlog: number, ipv6Only: boolean): [number, number];
  closeListener(listenerId: number): number;
  connect(ip: string, port: number): number;
  write(id: number, data: Uint8Array): number;
  end(id: number): number;
  destroy(id: number): number;
  pause(id: number): number;
  resume(id: number): number;
  setIdleTimeout(id: number, ms: number): number;
  remoteAddress(id: number): [string, number, number] | null;
  queued(id: number): number;
  ref(): void;
  unref(): void;
  dispatchPending(): void;
  runOnce(timeoutMs: number): void;
  shutdown(): void;
  closeHandles(): void;
  stats(): Omit<ReactorStats, 'backend'>;
}

export interface BackendModule {
  readonly name: BackendName;
  probe(): BackendProbe;
  Engine: new (
    options: NativeEngineOptions,
    dispatch: () => void,
    events: Int32Array,
    arena: Uint8Array,
  ) => NativeEngine;
}
