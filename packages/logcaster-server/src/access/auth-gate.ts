// The query port's authentication gate. A client that must authenticate (not on
// loopback, or every client with `authLoopback`) sends `AUTH <token>` as its first line;
// anything else is answered `ERROR: authentication required` and the connection is
// closed. Any client may send AUTH first (a loopback client's token is checked too, so a
// script finds a wrong token before it runs remotely). The gate wraps the port's handler:
// until the first line is settled the handler sees no byte; afterwards everything passes
// through unchanged. With mutual TLS, a client whose verified certificate authenticates
// it (see tls-config.ts) is let through without AUTH, wherever it connects from.
//
// The gate keeps its connections half-open: an answer it holds back must still reach
// a client that half-closed right after AUTH (`printf 'AUTH t\nCOUNT\n' | nc -N`).
// Once the first line is settled the port's handler decides, by its own allowHalfOpen
// (absent: our side ends after its onEnd, the reactor's default).
//
// Failed attempts are counted, reported and slowed down per address: after n failures,
// each further attempt from that address is answered no sooner than
// min(base * 2^(n-1), max) after the previous one, however many connections it opens at
// once. IPv6 peers are grouped by /64 (one host usually owns a whole /64).
import type { Connection, Handler } from '@logcaster/core';

import { isLoopback } from '../query/query-port';
import type { TokenSet } from './tokens';

export interface AuthGateOptions {
  /** undefined: no token configured (only clients that need no AUTH get in). */
  tokens: TokenSet | undefined;
  /** Require AUTH from loopback clients too (a shared host: loopback is not a boundary). */
  authLoopback: boolean;
  /** Clients other than loopback may query without AUTH (explicitly insecure). */
  insecure: boolean;
  /** First penalty after a failure, ms. Default 200. */
  penaltyBaseMs?: number;
  /** Longest penalty, ms. Default 10000. */
  penaltyMaxMs?: number;
  /** A client that must authenticate and sends no complete first line within this is
   *  closed, so silent connections cannot hold query slots. Default 10000. */
  firstLineTimeoutMs?: number;
  /** A failed attempt: the address and how many recent failures it has. */
  onFailure?: (address: string, failures: number) => void;
  /** Whether the connection's verified client certificate authenticates it (mutual
   *  TLS): then it needs no AUTH. Absent: certificates do not authenticate. */
  certificate?: (conn: Connection) => boolean;
}

export interface AuthCounters {
  /** AUTH with a wrong token. */
  failures: number;
  /** AUTH accepted. */
  successes: number;
  /** Clients closed because they sent something other than AUTH first (or nothing). */
  refused: number;
  /** Clients let in by their client certificate. */
  certificates: number;
}

/** Failure records are forgotten after this long without a new failure. */
const FORGET_MS = 15 * 60 * 1000;
/** Addresses tracked at most; the least recently failing are forgotten first. */
const MAX_TRACKED = 10_000;
/** Longest first line examined: an AUTH line is short. */
const MAX_FIRST_LINE = 4096;

interface FailureRecord {
  failures: number;
  /** The next attempt from this address is answered no sooner than this. */
  nextAt: number;
  lastFailureAt: number;
}

export class AuthGate {
  readonly counters: AuthCounters = { failures: 0, successes: 0, refused: 0, certificates: 0 };
  readonly firstLineTimeoutMs: number;
  private readonly records = new Map<string, FailureRecord>();
  private readonly base: number;
  private readonly max: number;

  constructor(private readonly opts: AuthGateOptions) {
    this.base = opts.penaltyBaseMs ?? 200;
    this.max = opts.penaltyMaxMs ?? 10_000;
    this.firstLineTimeoutMs = opts.firstLineTimeoutMs ?? 10_000;
  }

  /** Query tokens are configured. */
  get configured(): boolean {
    return this.opts.tokens !== undefined;
  }

  /** Some credential can be presented: tokens, or client certificates. */
  get authenticates(): boolean {
    return this.configured || this.opts.certificate !== undefined;
  }

  mustAuthenticate(conn: Connection): boolean {
    if (this.opts.certificate?.(conn)) {
      this.counters.certificates++;
      return false;
    }
    if (isLoopback(conn.remoteAddress) && !this.opts.authLoopback) return false;
    return !this.opts.insecure || this.authenticates;
  }

  /** Checks `token` now; calls `done` when the answer may be given (at once unless the
   *  address has recent failures). Returns a function that cancels the pending answer. */
  attempt(address: string, token: string, done: (ok: boolean) => void): () => void {
    const key = addressKey(address);
    const now = Date.now();
    let rec = this.records.get(key);
    if (rec && now - rec.lastFailureAt > FORGET_MS) {
      this.records.delete(key);
      rec = undefined;
    }
    const ok = this.opts.tokens?.matches(token) ?? false;
    const at = rec ? Math.max(now, rec.nextAt) : now;
    if (ok) {
      this.counters.successes++;
      this.records.delete(key);
    } else {
      this.counters.failures++;
      if (!rec) rec = { failures: 0, nextAt: now, lastFailureAt: now };
      this.records.delete(key); // re-inserted: the map's order is the eviction order
      rec.failures++;
      rec.lastFailureAt = now;
      this.records.set(key, rec);
      if (this.records.size > MAX_TRACKED) this.records.delete(this.records.keys().next().value as string);
      this.opts.onFailure?.(address, rec.failures);
    }
    if (rec && !ok) rec.nextAt = at + this.penalty(rec.failures);
    const wait = at - now;
    if (wait <= 0) {
      done(ok);
      return () => {};
    }
    const timer = setTimeout(() => done(ok), wait);
    return () => clearTimeout(timer);
  }

  /** Failures recorded for the address (0 when none or forgotten). */
  failuresOf(address: string): number {
    return this.records.get(addressKey(address))?.failures ?? 0;
  }

  private penalty(failures: number): number {
    return failures <= 0 ? 0 : Math.min(this.base * 2 ** (failures - 1), this.max);
  }
}

/** The unit failures are counted per: an IPv4 address (also IPv4-mapped), or an IPv6 /64. */
export function addressKey(address: string): string {
  const a = address.replace(/%.*$/, '').toLowerCase();
  if (a.startsWith('::ffff:') && a.includes('.')) return a.slice(7);
  if (!a.includes(':')) return a;
  const [head, tail] = a.includes('::') ? a.split('::') : [a, undefined];
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':') + '::/64';
}

const NL = 10;

/** Per connection, until its first line is settled. */
class PreAuth {
  /** Bytes of the first line so far (copied: the reactor's views do not outlive onData). */
  head: Buffer = Buffer.alloc(0);
  /** AUTH was checked and the answer is being held back (penalty). */
  verdictPending = false;
  /** Bytes that arrived while the answer was held back. */
  held: Buffer[] = [];
  /** The peer half-closed before the first line was settled. */
  ended = false;
  cancel: () => void = () => {};
  timer: NodeJS.Timeout | undefined;
  constructor(readonly mustAuth: boolean) {}
}

/** `inner` behind the AUTH gate. */
export function requireAuth(inner: Handler, gate: AuthGate): Handler {
  const pending = new Map<Connection, PreAuth>();

  const settle = (conn: Connection, st: PreAuth): void => {
    pending.delete(conn);
    st.cancel();
    if (st.timer) clearTimeout(st.timer);
  };

  const refuse = (conn: Connection, st: PreAuth, message: string): void => {
    settle(conn, st);
    gate.counters.refused++;
    if (conn.writable) conn.end(`${message}\n`);
    else conn.destroy();
  };

  /** The peer's FIN reaches the port's handler; then our side ends unless it keeps it open. */
  const ended = (conn: Connection): void => {
    inner.onEnd?.(conn);
    if (inner.allowHalfOpen !== true && !conn.closed) conn.end();
  };

  /** The first line is settled and the client may go on: hand the rest to `inner`. */
  const pass = (conn: Connection, st: PreAuth, rest: Buffer): void => {
    settle(conn, st);
    const bytes = st.held.length > 0 ? Buffer.concat([rest, ...st.held]) : rest;
    if (conn.paused) conn.resume();
    if (bytes.length > 0) inner.onData?.(conn, bytes);
    if (st.ended && !conn.closed) ended(conn);
  };

  /** `line` is the first line (without its LF), `raw` its bytes with the LF, `rest` what followed. */
  const firstLine = (conn: Connection, st: PreAuth, line: string, raw: Buffer, rest: Buffer): void => {
    const m = /^AUTH(?:[ \t]+(.*))?$/i.exec(line.replace(/\r$/, '').trim());
    if (!m) {
      if (st.mustAuth) return refuse(conn, st, 'ERROR: authentication required');
      return pass(conn, st, Buffer.concat([raw, rest]));
    }
    if (!gate.configured) {
      // Only client certificates authenticate here: a client that needs to cannot by AUTH.
      if (st.mustAuth) return refuse(conn, st, 'ERROR: authentication required (this server takes client certificates, not tokens)');
      if (conn.writable) conn.write('ERROR: no query token is configured on this server\n');
      return pass(conn, st, rest);
    }
    if (st.timer) clearTimeout(st.timer);
    st.timer = undefined;
    st.verdictPending = true;
    st.cancel = gate.attempt(conn.remoteAddress ?? '', (m[1] ?? '').trim(), (ok) => {
      st.verdictPending = false;
      st.cancel = () => {};
      if (conn.closed) return settle(conn, st);
      if (!ok) {
        settle(conn, st);
        if (conn.writable) conn.end('ERROR: authentication failed\n');
        else conn.destroy();
        return;
      }
      if (conn.writable) conn.write('AUTH: OK\n');
      pass(conn, st, rest);
    });
  };

  return {
    allowHalfOpen: true,
    onOpen(conn) {
      inner.onOpen?.(conn);
      if (conn.closed || !conn.writable) return;
      const st = new PreAuth(gate.mustAuthenticate(conn));
      pending.set(conn, st);
      if (st.mustAuth) {
        st.timer = setTimeout(() => {
          if (pending.get(conn) === st && !st.verdictPending) refuse(conn, st, 'ERROR: authentication required (no AUTH line received in time)');
        }, gate.firstLineTimeoutMs);
      }
    },
    onData(conn, data) {
      const st = pending.get(conn);
      if (!st) return inner.onData?.(conn, data);
      if (st.verdictPending) {
        st.held.push(Buffer.from(data));
        conn.pause();
        return;
      }
      const nl = data.indexOf(NL);
      const part = nl < 0 ? data : data.subarray(0, nl);
      const head = st.head.length > 0 ? Buffer.concat([st.head, part]) : Buffer.from(part);
      if (!st.mustAuth && !mayBeAuth(head)) return pass(conn, st, nl < 0 ? head : Buffer.concat([head, data.subarray(nl)]));
      if (head.length > MAX_FIRST_LINE) {
        if (st.mustAuth) return refuse(conn, st, 'ERROR: authentication required');
        return pass(conn, st, nl < 0 ? head : Buffer.concat([head, data.subarray(nl)]));
      }
      if (nl < 0) {
        st.head = head;
        return;
      }
      const rest = Buffer.from(data.subarray(nl + 1));
      firstLine(conn, st, head.toString('utf8'), Buffer.concat([head, Buffer.of(NL)]), rest);
    },
    onEnd(conn) {
      const st = pending.get(conn);
      if (!st) return ended(conn);
      st.ended = true;
      if (st.verdictPending) return;
      // The peer is done sending: what it sent is its whole first line.
      if (st.head.length > 0) return firstLine(conn, st, st.head.toString('utf8'), st.head, Buffer.alloc(0));
      if (st.mustAuth) return refuse(conn, st, 'ERROR: authentication required');
      pass(conn, st, Buffer.alloc(0));
    },
    onDrain(conn) {
      inner.onDrain?.(conn);
    },
    onTimeout(conn) {
      inner.onTimeout?.(conn);
    },
    onClose(conn, err) {
      const st = pending.get(conn);
      if (st) settle(conn, st);
      inner.onClose?.(conn, err);
    },
  };
}

const AUTH = 'auth ';

/** Could the first line's bytes so far still be an AUTH line? (Leading blanks skipped.) */
function mayBeAuth(head: Buffer): boolean {
  let i = 0;
  while (i < head.length && (head[i] === 32 || head[i] === 9)) i++;
  for (let k = 0; k < AUTH.length && i + k < head.length; k++) {
    const c = head[i + k];
    const lower = c >= 65 && c <= 90 ? c + 32 : c;
    if (k === 4 ? lower !== 32 && lower !== 9 && lower !== 13 : lower !== AUTH.charCodeAt(k)) return false;
  }
  return true;
}
