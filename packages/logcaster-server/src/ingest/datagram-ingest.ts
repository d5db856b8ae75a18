// Syslog over datagrams: UDP (RFC 5426) and the Unix datagram socket local programs
// write to (`logger -u`, /dev/log). One datagram is one message: trailing line ends
// and NULs are dropped, the rest is stored as one line — RFC 5424 / 3164 headers are
// parsed at query time, as for TCP. The sender's address is the line's peer.
import type { DatagramHandler, DatagramSocket, RemoteInfo } from '@logcaster/core';

import type { AllowList } from '../access/allow';
import type { LogStore } from '../store/log-store';
import { truncationMarker, utf8Cut } from './framing';
import type { StoredLine } from './ingest-port';

const LF = 10;
const CR = 13;
const NUL = 0;
/** A datagram longer than the socket's receive limit (64 KiB): its length is unknown. */
const CUT_MARKER = Buffer.from('…[truncated]', 'utf8');

export interface DatagramIngestOptions {
  maxLine: number;
  /** Senders the port takes datagrams from (the ingest allow list); undefined: any. */
  allow: AllowList | undefined;
  /** Peer name of senders without an address (unnamed Unix sockets). */
  unnamedPeer: string;
  /** A 'line' listener threw: reported here, and ingestion goes on. */
  reportListenerError(err: unknown): void;
  /** A datagram from a sender the allow list refuses. */
  onDenied(address: string): void;
}

export interface DatagramCounters {
  /** Datagrams stored. */
  received: number;
  /** ... of them cut (longer than --max-line, or than a datagram can be). */
  truncated: number;
  /** Empty datagrams (nothing but line ends) and refused senders: not stored. */
  ignored: number;
  lastDataAt: number;
}

export class DatagramIngest implements DatagramHandler {
  readonly counters: DatagramCounters = { received: 0, truncated: 0, ignored: 0, lastDataAt: 0 };
  /** Set when someone listens for 'line' events. */
  onLine: ((entry: StoredLine) => void) | undefined;
  readonly sockets = new Set<DatagramSocket>();
  // The last sender: consecutive datagrams of one sender share their RemoteInfo.
  private lastRemote: RemoteInfo | undefined;
  private lastPeerId = 0;
  private lastPeerName = '';
  private lastAllowed = true;

  constructor(
    private readonly opts: DatagramIngestOptions,
    private readonly store: LogStore,
  ) {}

  /** Datagrams the kernel dropped on these sockets (receive queue full; closed sockets
   *  keep their last count). */
  get kernelDropped(): number {
    let n = 0;
    for (const s of this.sockets) n += s.stats().dropped;
    return n;
  }

  add(sock: DatagramSocket): DatagramSocket {
    this.sockets.add(sock);
    return sock;
  }

  onMessage(_sock: DatagramSocket, data: Buffer, remote: RemoteInfo, truncated: boolean): void {
    if (remote !== this.lastRemote) this.sender(remote);
    let end = data.length;
    while (end > 0 && (data[end - 1] === LF || data[end - 1] === CR || data[end - 1] === NUL)) end--;
    if (end === 0 || !this.lastAllowed) {
      this.counters.ignored++;
      if (!this.lastAllowed) this.opts.onDenied(remote.address);
      return;
    }
    let keep = end;
    let tail: Buffer | undefined;
    if (end > this.opts.maxLine) {
      keep = utf8Cut(data, 0, end, this.opts.maxLine);
      tail = truncationMarker(end - keep);
    } else if (truncated) {
      tail = CUT_MARKER;
    }
    if (tail) this.counters.truncated++;
    const now = Date.now();
    this.counters.lastDataAt = now;
    const seq = this.store.append(data, 0, keep, now, this.lastPeerId, tail);
    this.counters.received++;
    if (this.onLine) {
      try {
        this.onLine({ seq, timeMs: now, peer: this.lastPeerName, line: Buffer.from(this.store.line(seq)) });
      } catch (err) {
        this.opts.reportListenerError(err);
      }
    }
  }

  private sender(remote: RemoteInfo): void {
    this.lastRemote = remote;
    this.lastPeerName = remote.address === '' ? this.opts.unnamedPeer : remote.address;
    this.lastPeerId = this.store.peers.intern(this.lastPeerName);
    this.lastAllowed = remote.family === 'unix' || !this.opts.allow || this.opts.allow.allows(remote.address);
  }
}
