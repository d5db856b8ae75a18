// Datagram sockets (UDP, Unix datagram) on the reactor: the JS face of an engine
// socket, sending, and turning a datagram's record in the arena into onMessage's
// arguments.
import { familyName, ipv4Text, ipv6Text } from './address';
import { errnoError, nativeError, reactorError } from './errors';
import { DATAGRAM_HEADER, DATAGRAM_TRUNCATED, FAMILY_IPV4, FAMILY_IPV6, PHASE_READ } from './native-events';
import type { AddressFamily, DatagramHandler, DatagramSocket, DatagramStats, NativeEngine, RemoteInfo } from './types';

/** What a socket needs of the reactor that owns it. */
export interface SocketOwner {
  readonly engine: NativeEngine;
  /** Deliver events a native call made outside a batch produced (DRAIN, errors, CLOSE). */
  afterNativeCall(): void;
}

const NO_STATS: DatagramStats = Object.freeze({ received: 0, truncated: 0, dropped: 0, sent: 0, sendErrors: 0 });

export class DatagramSocketImpl implements DatagramSocket {
  readonly kind = 'datagram';
  context: unknown = undefined;
  closed = false;
  /** onClose has been delivered. */
  finished = false;
  readonly address: string;
  readonly port: number;
  readonly family: AddressFamily;
  private readonly defaultHost: string;
  private finalStats: DatagramStats | undefined;
  // The last sender, reused while datagrams keep coming from it.
  private lastRemote: RemoteInfo | undefined;
  private lastV4 = -1; // its IPv4 address * 65536 + port, or -1
  private lastRaw: Buffer | undefined; // other families: its record bytes (family .. address)

  constructor(
    private readonly owner: SocketOwner,
    readonly id: number,
    readonly handler: DatagramHandler,
    readonly unix: boolean,
    private readonly connected: boolean,
  ) {
    const local = owner.engine.localAddress(id);
    this.address = local?.[0] ?? '';
    this.port = local?.[1] ?? 0;
    this.family = familyName(local?.[2] ?? 0);
    this.defaultHost = this.family === 'IPv6' ? '::1' : '127.0.0.1';
  }

  get bufferedAmount(): number {
    return this.closed ? 0 : this.owner.engine.queued(this.id);
  }

  send(data: Uint8Array | string, portOrPath?: number | string, host?: string): boolean {
    if (this.closed) throw reactorError(`send after close (socket ${this.id})`, 'ERR_LOGCASTER_CLOSED');
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    const engine = this.owner.engine;
    let r: number;
    try {
      if (portOrPath === undefined) {
        if (!this.connected) throw reactorError('send: a destination is needed (the socket is not connected)', 'ERR_LOGCASTER_DESTINATION');
        r = this.unix ? engine.sendDatagramTo(this.id, bytes, '') : engine.sendDatagram(this.id, bytes, 0, '');
      } else if (this.unix) {
        if (typeof portOrPath !== 'string') throw new TypeError('send: a Unix datagram socket sends to a path');
        r = engine.sendDatagramTo(this.id, bytes, portOrPath);
      } else {
        if (typeof portOrPath !== 'number' || !Number.isInteger(portOrPath) || portOrPath <= 0 || portOrPath > 65535) {
          throw new RangeError(`send: port must be 1..65535, got ${String(portOrPath)}`);
        }
        r = engine.sendDatagram(this.id, bytes, portOrPath, host === undefined || host === 'localhost' ? this.defaultHost : host);
      }
    } catch (e) {
      throw nativeError(e, 'send');
    }
    this.owner.afterNativeCall();
    return r === 1;
  }

  pause(): void {
    if (!this.closed) this.owner.engine.pause(this.id);
  }

  resume(): void {
    if (!this.closed) this.owner.engine.resume(this.id);
  }

  stats(): DatagramStats {
    if (this.closed) return this.finalStats ?? NO_STATS;
    return this.owner.engine.datagramStats(this.id) ?? NO_STATS;
  }

  /** Keep the counters the engine forgets once the socket is gone. */
  rememberStats(): void {
    if (!this.closed) this.finalStats = this.owner.engine.datagramStats(this.id) ?? undefined;
  }

  close(): void {
    if (this.closed) return;
    this.rememberStats();
    this.closed = true;
    this.owner.engine.destroy(this.id);
    this.owner.afterNativeCall();
  }

  // ---- events (called by the reactor's batch walk) ----

  onMessageRecord(arena: Buffer, off: number, len: number): void {
    const n = arena[off + 4] | (arena[off + 5] << 8);
    const at = off + DATAGRAM_HEADER + n;
    this.handler.onMessage?.(this, arena.subarray(at, at + len), this.remoteAt(arena, off, n), (arena[off] & DATAGRAM_TRUNCATED) !== 0);
  }

  onErrorEvent(errno: number, phase: number): void {
    this.handler.onError?.(this, errnoError(errno, phase === PHASE_READ ? 'recv' : 'send', this.unix ? this.address : `${this.address}:${this.port}`));
  }

  onCloseEvent(): void {
    if (this.finished) return;
    this.finished = true;
    this.closed = true;
    this.handler.onClose?.(this);
  }

  private remoteAt(a: Buffer, off: number, n: number): RemoteInfo {
    const family = a[off + 1];
    const port = a[off + 2] | (a[off + 3] << 8);
    const at = off + DATAGRAM_HEADER;
    if (family === FAMILY_IPV4 && n === 4) {
      const key = a.readUInt32BE(at) * 65536 + port;
      if (key === this.lastV4 && this.lastRemote) return this.lastRemote;
      this.lastV4 = key;
      this.lastRaw = undefined;
      return (this.lastRemote = Object.freeze({ address: ipv4Text(a, at), port, family: 'IPv4' as const }));
    }
    const raw = this.lastRaw;
    if (raw && this.lastRemote && raw.length === n + 5 && a.compare(raw, 0, raw.length, off + 1, at + n) === 0) return this.lastRemote;
    this.lastV4 = -1;
    this.lastRaw = Buffer.from(a.subarray(off + 1, at + n));
    const address = family === FAMILY_IPV6 && n === 16 ? ipv6Text(a, at) : a.toString('utf8', at, at + n);
    return (this.lastRemote = Object.freeze({ address, port, family: familyName(family) }));
  }
}
