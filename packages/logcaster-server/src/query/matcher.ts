// Query filters and the predicate that applies them to one stored entry. Pure and
// serialisable (QuerySpec crosses to the regex worker), used by both the main-thread
// scanner and the worker.
import { parseSyslog, type SyslogHeader } from './syslog';
import type { Snapshot } from '../store/log-store';

export interface QuerySpec {
  /** Substrings (case-sensitive, matched on the raw bytes). */
  keywords: string[];
  operator: 'AND' | 'OR';
  regex?: { source: string; flags: string };
  /** Receive time window in ms since the epoch: from inclusive, to exclusive. */
  timeFromMs?: number;
  timeToMs?: number;
  /** Syslog filters (lines without a syslog header never match these). */
  severity?: number; // this severity or more severe (numerically <=)
  facility?: number;
  host?: string;
  app?: string;
}

export function emptySpec(): QuerySpec {
  return { keywords: [], operator: 'AND' };
}

export function needsSyslog(spec: QuerySpec): boolean {
  return spec.severity !== undefined || spec.facility !== undefined || spec.host !== undefined || spec.app !== undefined;
}

export class Matcher {
  private readonly keys: Buffer[];
  private readonly and: boolean;
  private readonly re: RegExp | undefined;
  private readonly from: number;
  private readonly to: number;
  private readonly syslog: boolean;

  constructor(private readonly spec: QuerySpec) {
    this.keys = spec.keywords.map((k) => Buffer.from(k, 'utf8'));
    this.and = spec.operator !== 'OR';
    this.re = spec.regex ? new RegExp(spec.regex.source, spec.regex.flags.replace(/[gy]/g, '')) : undefined;
    this.from = spec.timeFromMs ?? -Infinity;
    this.to = spec.timeToMs ?? Infinity;
    this.syslog = needsSyslog(spec);
  }

  match(chunk: Buffer, off: number, len: number, timeMs: number): boolean {
    if (timeMs < this.from || timeMs >= this.to) return false;
    const keys = this.keys;
    let view: Buffer | undefined;
    if (keys.length > 0) {
      view = chunk.subarray(off, off + len);
      if (this.and) {
        for (let i = 0; i < keys.length; i++) if (view.indexOf(keys[i]) < 0) return false;
      } else {
        let any = false;
        for (let i = 0; i < keys.length; i++) {
          if (view.indexOf(keys[i]) >= 0) {
            any = true;
            break;
          }
        }
        if (!any) return false;
      }
    }
    if (this.syslog || this.re) {
      const text = chunk.toString('utf8', off, off + len);
      if (this.syslog && !this.matchSyslog(parseSyslog(text))) return false;
      if (this.re && !this.re.test(text)) return false;
    }
    return true;
  }

  private matchSyslog(h: SyslogHeader | undefined): boolean {
    if (!h) return false;
    const s = this.spec;
    if (s.severity !== undefined && h.severity > s.severity) return false;
    if (s.facility !== undefined && h.facility !== s.facility) return false;
    if (s.host !== undefined && h.host !== s.host) return false;
    if (s.app !== undefined && h.app !== s.app) return false;
    return true;
  }
}

/** A growable list of entry indexes. */
export class IndexList {
  data = new Uint32Array(1024);
  length = 0;
  push(i: number): void {
    if (this.length === this.data.length) {
      const grown = new Uint32Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    this.data[this.length++] = i;
  }
  toArray(): Uint32Array {
    return this.data.subarray(0, this.length);
  }
}

/** Test entries [from, to) of a snapshot; matching indexes are pushed to `out`. */
export function scanRange(s: Snapshot, m: Matcher, from: number, to: number, out: IndexList): void {
  const chunks = s.chunks;
  const ci = s.chunk;
  const off = s.off;
  const len = s.len;
  const time = s.time;
  for (let i = from; i < to; i++) {
    if (m.match(chunks[ci[i]], off[i], len[i], time[i])) out.push(i);
  }
}
