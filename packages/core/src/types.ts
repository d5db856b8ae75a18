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

/** 'unix': a Unix domain socket (its address is a path, "" when unnamed). */
export type AddressFamily = 'IPv4' | 'IPv6' | 'unix';

export interface Connection {
  /** Engine id (slot and generation); unique among live connections. */
  readonly id: number;
  /** The peer's IP address, or for a Unix socket its path ("" when the peer is unnamed,
   *  as clients usually are). */
  readonly remoteAddress: string | undefined;
  /** undefined for Unix sockets. */
  readonly remotePort: number | undefined;
  readonly remoteFamily: AddressFamily | undefined;
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
  /** The TLS side of a connection made with `tls` options (the handshake is done by
   *  the time onOpen runs); undefined for plain TCP. */
  readonly tls: TlsInfo | undefined;
  /** Client side: the session to pass as `tls.session` to resume it on a later
   *  connection (TLS 1.3 sends it after the handshake: ask once data has arrived). */
  tlsSession(): Buffer | undefined;
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
  /** Speak TLS on this listener (cert and key required). */
  tls?: TlsOptions;
}

/** TLS settings, for `listen` (server) and `connect` (client). PEM text throughout. */
export interface TlsOptions {
  /** The certificate, followed by its chain. Required to listen; a client's own certificate. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** CAs that verify the peer's certificate. Client default: Node's root certificates. */
  ca?: string | Buffer | readonly (string | Buffer)[];
  /** Server: ask clients for a certificate, verified against `ca`. */
  requestCert?: boolean;
  /** Default true: a peer whose certificate does not verify (a server's client with
   *  `requestCert` also when it sends none) fails the handshake. false: the handshake
   *  goes on and the handler decides from `conn.tls.authorized`. */
  rejectUnauthorized?: boolean;
  /** ALPN protocols, most preferred first (a server picks the first the client offers). */
  ALPNProtocols?: readonly string[];
  /** Server: other certificates, by the name the client asks for ('*.example.com' matches one label). */
  SNI?: Readonly<Record<string, { cert: string | Buffer; key: string | Buffer }>>;
  /** Client: the name sent as SNI and checked against the certificate. Default: the host
   *  connected to (an IP address is checked against the certificate's IP entries). */
  servername?: string;
  /** Client: a session from `conn.tlsSession()` to resume. */
  session?: Uint8Array;
  /** A handshake not done within this many ms closes the connection. Default 10000. */
  handshakeTimeout?: number;
}

/** What a handler can learn about a TLS connection. */
export interface TlsInfo {
  /** 'TLSv1.3' or 'TLSv1.2' */
  protocol: string;
  cipher: string;
  /** The ALPN protocol agreed on, or undefined. */
  alpnProtocol: string | undefined;
  /** The SNI name the client asked for (server side) or sent (client side). */
  servername: string | undefined;
  /** The peer certificate's subject and issuer (RFC 2253: 'CN=client,O=Example'), undefined without one. */
  peerSubject: string | undefined;
  peerIssuer: string | undefined;
  /** SHA-256 of the peer certificate, 'AB:CD:…'. */
  peerFingerprint256: string | undefined;
  /** The peer's certificate verified against the CAs (client side: and names the server). */
  authorized: boolean;
  /** Why not, when not authorized ('no peer certificate', 'certificate has expired', …). */
  authorizationError: string | undefined;
  /** The session was resumed (no full handshake). */
  resumed: boolean;
}

/** A Unix stream socket. A socket file left by a process that is gone is replaced;
 *  one a running process accepts on is refused (EADDRINUSE), as is a path that is not
 *  a socket. The file is removed when the listener closes. */
export interface UnixListenOptions {
  /** File path, or on Linux an abstract name: a leading '\0' (no file). */
  path: string;
  /** Permissions of the socket file, e.g. 0o660. Default: what the umask gives. */
  mode?: number;
  backlog?: number;
}

export interface Listener {
  /** '' for a Unix listener. */
  readonly host: string;
  /** 0 for a Unix listener. */
  readonly port: number;
  /** The Unix socket path; undefined for TCP. */
  readonly path: string | undefined;
  close(): void;
}

export interface ConnectOptions {
  host?: string;
  port: number;
  /** Speak TLS once connected; the certificate is verified unless rejectUnauthorized is false. */
  tls?: TlsOptions;
}

export interface UnixConnectOptions {
  path: string;
}

/** Who sent a datagram. Immutable; consecutive datagrams from one sender share the
 *  object. */
export interface RemoteInfo {
  /** IP address, or the sender's socket path ("" for an unnamed Unix sender). */
  readonly address: string;
  /** 0 for Unix senders. */
  readonly port: number;
  readonly family: AddressFamily;
}

/** Callbacks of a datagram socket (UDP or Unix datagram). */
export interface DatagramHandler {
  /** One datagram. `data` is a view into the loop-wide read buffer, valid only during
   *  this call — copy what you keep. `truncated`: it was longer than the socket's
   *  maxMessageSize and `data` holds its first part. */
  onMessage?(socket: DatagramSocket, data: Buffer, remote: RemoteInfo, truncated: boolean): void;
  /** A send returned false earlier and the queue has now emptied. */
  onDrain?(socket: DatagramSocket): void;
  /** An error the kernel reported for this socket (an ICMP port unreachable on a
   *  connected socket, a datagram it refused to send: EMSGSIZE, ENETUNREACH...). The
   *  socket stays open. */
  onError?(socket: DatagramSocket, err: Error): void;
  /** Exactly once, after close() or reactor.close(). */
  onClose?(socket: DatagramSocket): void;
}

interface DatagramCommonOptions {
  /** SO_RCVBUF in bytes (the kernel caps it at net.core.rmem_max). Default: the system's. */
  recvBufferSize?: number;
  /** SO_SNDBUF in bytes. Default: the system's. */
  sendBufferSize?: number;
  /** Longest datagram delivered whole (1..65536, default 65536); longer ones arrive cut
   *  and flagged truncated. */
  maxMessageSize?: number;
}

export interface UdpOptions extends DatagramCommonOptions {
  /** IP address or 'localhost'. Default '127.0.0.1'; '0.0.0.0' / '::' for every interface. */
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** An IPv6 socket takes IPv4 traffic too unless this is set. */
  ipv6Only?: boolean;
  /** SO_REUSEPORT: several sockets (processes, workers) share the port. */
  reusePort?: boolean;
  /** Connected UDP: only this peer's datagrams arrive, send(data) needs no address,
   *  and ICMP errors are reported (onError). */
  connect?: { host: string; port: number };
}

export interface UnixDatagramOptions extends DatagramCommonOptions {
  /** Where to bind (a file path, or on Linux '\0name'); omitted: an unnamed socket
   *  that can only send. A stale socket file is replaced, a live one refused. */
  path?: string;
  /** Permissions of the socket file, e.g. 0o666 for a /dev/log-style socket. */
  mode?: number;
  connect?: { path: string };
}

export interface DatagramStats {
  /** Datagrams delivered to onMessage. */
  received: number;
  /** ... of them cut to maxMessageSize. */
  truncated: number;
  /** Datagrams the kernel dropped because the receive queue was full (SO_RXQ_OVFL;
   *  0 where the system does not count them). */
  dropped: number;
  /** Datagrams the kernel took for sending. */
  sent: number;
  /** Datagrams the kernel refused to send (each reported to onError). */
  sendErrors: number;
}

export interface DatagramSocket {
  /** Engine id; shares the id space with connections. */
  readonly id: number;
  /** Local address: the IP address, or the socket path ("" when unnamed). */
  readonly address: string;
  /** Local port (0 for Unix sockets). */
  readonly port: number;
  readonly family: AddressFamily;
  readonly closed: boolean;
  /** Bytes queued for sending, not yet taken by the kernel. */
  readonly bufferedAmount: number;
  /** Free slot for the handler's per-socket state. */
  context: unknown;
  /** Send one datagram: UDP `send(data, port, host)` (host defaults to the loopback
   *  address of the socket's family), Unix `send(data, path)`, a connected socket
   *  `send(data)`. Sends made inside a handler leave together after the batch (one
   *  sendmmsg). Returns false when the queue is at or above the high-water mark: wait
   *  for onDrain. Errors the kernel reports later go to onError. */
  send(data: Uint8Array | string, portOrPath?: number | string, host?: string): boolean;
  pause(): void;
  resume(): void;
  stats(): DatagramStats;
  /** Close now; datagrams the kernel takes at once still leave. onClose follows. */
  close(): void;
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
  /** Every datagram socket's counters, summed. */
  datagrams: DatagramStats;
  /** TLS handshakes completed, and failed (bad certificate, timeout, the peer left). */
  tlsHandshakes: number;
  tlsHandshakeFailures: number;
  /** Mechanism-specific counters (io_uring: receive-buffer pool state); {} when none. */
  driver: Record<string, number>;
}

export interface Reactor {
  /** The backend actually in use ('epoll', ...). */
  readonly backend: BackendName;
  /** A TCP listener, or a Unix stream listener (`{ path }`): the same Connection and
   *  Handler either way. */
  listen(options: ListenOptions | UnixListenOptions, handler: Handler): Listener;
  connect(options: ConnectOptions | UnixConnectOptions, handler: Handler): Connection;
  /** A UDP socket (IPv4 or IPv6). */
  bindUdp(options: UdpOptions, handler: DatagramHandler): DatagramSocket;
  /** A Unix datagram socket (what `logger -u` and /dev/log speak). */
  bindUnixDgram(options: UnixDatagramOptions, handler: DatagramHandler): DatagramSocket;
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
  onError?: (err: unknown, conn: Connection | DatagramSocket | undefined) => void;
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

export interface NativeDatagramOptions {
  unix: boolean;
  host?: string;
  port?: number;
  ipv6Only?: boolean;
  reusePort?: boolean;
  connectHost?: string;
  connectPort?: number;
  path?: string;
  mode?: number;
  connectPath?: string;
  recvBufferSize?: number;
  sendBufferSize?: number;
  maxMessageSize?: number;
}

/** One native reactor instance (see core/native/addon.cc). Ids are connection ids;
 *  negative numbers returned are -errno. */
/** createTlsContext's options: TlsOptions resolved to text (see core/src/tls.ts). */
export interface NativeTlsOptions {
  server: boolean;
  cert: string;
  key: string;
  ca: string;
  requestCert: boolean;
  rejectUnauthorized: boolean;
  alpn: string[];
  sni: { servername: string; cert: string; key: string }[];
  handshakeTimeout: number;
}

/** tlsInfo's answer: TlsInfo with '' where TlsInfo has undefined. */
export type NativeTlsInfo = { [K in keyof TlsInfo]: TlsInfo[K] extends boolean ? boolean : string };

export interface NativeEngine {
  /** tlsContext: an id from createTlsContext (server), or -1. */
  listen(host: string, port: number, backlog: number, ipv6Only: boolean, tlsContext: number): [number, number];
  closeListener(listenerId: number): number;
  /** tlsContext: a client context id or -1; servername '' for none; session bytes or null. */
  connect(ip: string, port: number, tlsContext: number, servername: string, session: Uint8Array | null): number;
  listenUnix(path: string, mode: number, backlog: number): number;
  connectUnix(path: string): number;
  bindDatagram(options: NativeDatagramOptions): [number, number];
  /** 1 below the high-water mark, 0 at or above it. host '' on a connected socket. */
  sendDatagram(id: number, data: Uint8Array, port: number, host: string): number;
  sendDatagramTo(id: number, data: Uint8Array, path: string): number;
  datagramStats(id: number): DatagramStats | null;
  localAddress(id: number): [string, number, number] | null;
  /** Throws with OpenSSL's reason when the certificate, key or CAs do not load. */
  createTlsContext(options: NativeTlsOptions): number;
  /** The caller is done with the id; listeners and connections keep the context alive. */
  releaseTlsContext(id: number): void;
  tlsInfo(id: number): NativeTlsInfo | null;
  tlsSession(id: number): Buffer | null;
  /** Why a connection closed with PHASE_TLS, while its CLOSE is being dispatched. */
  tlsError(id: number): string;
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
  /**
   * Process-wide: fixes glibc malloc's mmap threshold at `bytes` (it otherwise grows to
   * the largest block freed, and blocks below it stay resident after free). True if
   * applied; false where the C library has no such setting. For programs that own
   * their process, not for libraries embedded in someone else's.
   */
  setMallocMmapThreshold(bytes: number): boolean;
  /**
   * Page-cache advice for a file written once and rarely read back (a log journal).
   * startWriteback queues the range's dirty pages for writeback and returns at once;
   * dropFromPageCache waits until the range is written (to the device, not flushed
   * from its cache: fdatasync is still what makes data durable) and drops it from the
   * page cache. Both return false where the OS has no such call (Linux has both) or
   * refused; the file's data is never affected. Blocking: call from a worker thread.
   */
  startWriteback(fd: number, offset: number, length: number): boolean;
  dropFromPageCache(fd: number, offset: number, length: number): boolean;
}
