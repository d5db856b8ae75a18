// Query filters, and the scanner that applies them to a whole block (store/block.ts) at
// once: a keyword is searched over the block's bytes with Buffer.indexOf and each hit
// is mapped back to its line by the newlines around it; a regex runs over the block's
// text in one pass when that cannot miss a line (see BlockMatcher). Only lines a hit
// points at are looked at one by one. QuerySpec is plain data: it crosses to the scan
// workers.
import { isAscii } from 'node:buffer';

import { lineEndFrom, lineStartAt, offsetOfLine, runAt, type BlockView } from '../store/block';
import { parseSyslog, type SyslogHeader } from './syslog';

export interface QuerySpec {
  /** Substrings as raw bytes (case-sensitive): lines are stored and matched as bytes,
   *  so a keyword need not be valid UTF-8. */
  keywords: Uint8Array[];
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

/** A keyword as a Buffer over its own bytes (after crossing to a worker it is a plain
 *  Uint8Array). */
function keywordBytes(k: Uint8Array): Buffer {
  return Buffer.from(k.buffer, k.byteOffset, k.byteLength);
}

export function emptySpec(): QuerySpec {
  return { keywords: [], operator: 'AND' };
}

export function needsSyslog(spec: QuerySpec): boolean {
  return spec.severity !== undefined || spec.facility !== undefined || spec.host !== undefined || spec.app !== undefined;
}

/** Whether every line that passes the time filter matches: no line has to be read. */
export function selectsByTimeOnly(spec: QuerySpec): boolean {
  return spec.keywords.length === 0 && spec.regex === undefined && !needsSyslog(spec);
}

/** A regex over a whole block finds every line that matches on its own unless the
 *  pattern looks outside its match: a lookaround could see the neighbouring line, or
 *  not see the start/end of the line it needs. (^ and $ become line anchors with the
 *  m flag, \b sees '\n' as the non-word character the line edge is.) */
function blockRegexSafe(source: string): boolean {
  return !/\(\?<?[=!]/.test(source);
}

/** Bytes of lines a block regex runs over at once (see scanRegex): below V8's 128 KiB
 *  large-object threshold, so that the window strings die young. */
const REGEX_WINDOW = 64 * 1024;

/** Escaped characters that stand for themselves. */
const LITERAL_ESCAPES = new Set('.-/\\:=,;@#%&!~`\'"<>[](){}*+?|^$ _'.split(''));
/** Characters that stand for themselves in a pattern (ASCII only: its UTF-8 bytes are
 *  itself, so the literal can be searched for in the raw bytes). */
const PLAIN = /[A-Za-z0-9 _\-:=\/"',;@#%&<>!~`]/;

/** Index of the last character of the escape whose letter is at `i` (`\x41`, `\u{1F600}`,
 *  `\k<name>`, `\p{L}`, `\12`, ...): its arguments are not literals. */
function escapeEnd(src: string, i: number): number {
  const e = src[i];
  const upTo = (close: string): number => {
    const j = src.indexOf(close, i);
    return j < 0 ? src.length : j;
  };
  if (e === 'x') return i + 2;
  if (e === 'u') return src[i + 1] === '{' ? upTo('}') : i + 4;
  if (e === 'c') return i + 1;
  if (e === 'k') return upTo('>');
  if (e === 'p' || e === 'P') return upTo('}');
  if (e !== undefined && e >= '0' && e <= '9') {
    while (i + 1 < src.length && src[i + 1] >= '0' && src[i + 1] <= '9') i++;
  }
  return i;
}

/** The longest run of at least 3 characters every match of the regex must contain —
 *  found conservatively: only top-level characters outside groups and classes count
 *  (a pattern with a top-level `|`, or the `i` flag, has none); a quantifier that
 *  allows zero repetitions drops the character before it. A regex query searches the
 *  bytes for it (and a token filter tests it) before running the regex on a line. */
export function requiredLiteral(regex: { source: string; flags: string }): Buffer | undefined {
  if (regex.flags.includes('i')) return undefined;
  const src = regex.source;
  const runs: string[] = [];
  let cur = '';
  const end = (): void => {
    if (cur.length > 0) runs.push(cur);
    cur = '';
  };
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === '\\') {
      const e = src[++i];
      if (e !== undefined && LITERAL_ESCAPES.has(e)) {
        cur += e;
        continue;
      }
      end();
      i = escapeEnd(src, i);
      continue;
    }
    if (c === '|') return undefined;
    if (c === '[') {
      end();
      for (i++; i < src.length && src[i] !== ']'; i++) if (src[i] === '\\') i++;
      continue;
    }
    if (c === '(') {
      end();
      // Skip the group, nested ones and classes inside included (a `|` in it is its own).
      let depth = 1;
      for (i++; i < src.length && depth > 0; i++) {
        const g = src[i];
        if (g === '\\') {
          i++;
        } else if (g === '[') {
          for (i++; i < src.length && src[i] !== ']'; i++) if (src[i] === '\\') i++;
        } else if (g === '(') {
          depth++;
        } else if (g === ')') {
          depth--;
        }
      }
      i--;
      continue;
    }
    const bounds = c === '{' ? /^\{\d+(,\d*)?\}/.exec(src.slice(i)) : null;
    if (c === '?' || c === '*' || bounds !== null) {
      cur = cur.slice(0, -1); // the character before may be absent
      end();
      if (bounds !== null) i += bounds[0].length - 1;
      continue;
    }
    if (c === '+') {
      end();
      continue;
    }
    if (PLAIN.test(c)) cur += c;
    else end();
  }
  end();
  let best = '';
  for (const r of runs) if (r.length > best.length) best = r;
  return best.length >= 3 ? Buffer.from(best, 'latin1') : undefined;
}

/** Where the lines a scan looks at lie in a block: ordinals [fromOrd, toOrd) starting
 *  at byte offsets [from, to). */
export interface LineRange {
  fromOrd: number;
  toOrd: number;
  from: number;
  to: number;
}

export function wholeBlock(b: BlockView): LineRange {
  return { fromOrd: 0, toOrd: b.count, from: 0, to: b.data.length };
}

/** The part of block `b` holding sequence numbers [lo, hi). */
export function rangeOf(b: BlockView, lo: number, hi: number): LineRange {
  const fromOrd = Math.max(0, Math.min(b.count, lo - b.firstSeq));
  const toOrd = Math.max(fromOrd, Math.min(b.count, hi - b.firstSeq));
  const from = offsetOfLine(b, fromOrd);
  const to = toOrd === b.count ? b.data.length : offsetOfLine(b, toOrd);
  return { fromOrd, toOrd, from, to };
}

/** Called per matching line (bytes [start, end) of the block's data, its run index).
 *  Return false to stop the scan. */
export type LineVisitor = (start: number, end: number, run: number) => boolean;

export class BlockMatcher {
  private readonly keys: Buffer[];
  private readonly and: boolean;
  /** The line-alone regex, and the whole-block one (g + m flags) when safe. */
  private readonly re: RegExp | undefined;
  private readonly blockRe: RegExp | undefined;
  private readonly from: number;
  private readonly to: number;
  private readonly syslog: boolean;
  /** Per keyword: the next occurrence at or after the current line (AND/OR scans). */
  private readonly next: number[];
  private runHint = 0;

  constructor(private readonly spec: QuerySpec) {
    const keys = spec.keywords.map(keywordBytes);
    // A literal the regex requires is searched for like an AND keyword (the regex then
    // runs only on the lines holding it). Not beside OR keywords: "(a or b) and regex".
    const literal = spec.regex !== undefined && (spec.operator !== 'OR' || keys.length === 0) ? requiredLiteral(spec.regex) : undefined;
    if (literal !== undefined) keys.push(literal);
    // AND: the longest keyword drives the search (the likeliest to be rare and the one
    // Boyer-Moore skips best); the others are checked on the lines it finds.
    if (spec.operator !== 'OR') keys.sort((a, b) => b.length - a.length);
    this.keys = keys;
    this.and = spec.operator !== 'OR';
    this.next = keys.map(() => -1);
    if (spec.regex) {
      const flags = spec.regex.flags.replace(/[gy]/g, '');
      this.re = new RegExp(spec.regex.source, flags);
      if (blockRegexSafe(spec.regex.source)) this.blockRe = new RegExp(spec.regex.source, `${flags.replace('m', '')}gm`);
    }
    this.from = spec.timeFromMs ?? -Infinity;
    this.to = spec.timeToMs ?? Infinity;
    this.syslog = needsSyslog(spec);
  }

  private timeOk(b: BlockView, run: number): boolean {
    const t = b.runs.time[run];
    return t >= this.from && t < this.to;
  }

  /** Visit the matching lines of `r`, in order. Returns the offset to resume at: the
   *  start of the line after the last one visited, or r.to when the range is done. */
  scan(b: BlockView, r: LineRange, visit: LineVisitor): number {
    this.runHint = 0;
    if (r.from >= r.to) return r.to;
    if (this.keys.length > 0) return this.and ? this.scanAnd(b, r, visit) : this.scanOr(b, r, visit);
    if (this.blockRe !== undefined && isAscii(b.data.subarray(r.from, r.to))) return this.scanRegex(b, r, visit);
    return this.scanLines(b, r, visit);
  }

  /** Number of matching lines of `r`. Time-only filters count from the runs. */
  count(b: BlockView, r: LineRange): number {
    if (selectsByTimeOnly(this.spec)) return this.countByTime(b, r);
    let n = 0;
    this.scan(b, r, () => {
      n++;
      return true;
    });
    return n;
  }

  private countByTime(b: BlockView, r: LineRange): number {
    const runs = b.runs;
    let n = 0;
    let ord = 0;
    for (let i = 0; i < runs.lines.length && ord < r.toOrd; i++) {
      const lo = Math.max(ord, r.fromOrd);
      const hi = Math.min(ord + runs.lines[i], r.toOrd);
      if (hi > lo && this.timeOk(b, i)) n += hi - lo;
      ord += runs.lines[i];
    }
    return n;
  }

  /** Conditions other than the driving keyword, on the line [ls, le). */
  private rest(b: BlockView, ls: number, le: number, run: number, firstKey: number): boolean {
    if (!this.timeOk(b, run)) return false;
    const data = b.data;
    const keys = this.keys;
    for (let k = firstKey; k < keys.length; k++) {
      let at = this.next[k];
      if (at !== Infinity && at < ls) {
        at = data.indexOf(keys[k], ls);
        if (at < 0) at = Infinity;
        this.next[k] = at;
      }
      if (at + keys[k].length > le) return false;
    }
    return this.textOk(data, ls, le);
  }

  /** Syslog and regex conditions, on the line's decoded text. */
  private textOk(data: Buffer, ls: number, le: number): boolean {
    if (!this.syslog && this.re === undefined) return true;
    const text = data.toString('utf8', ls, le);
    if (this.syslog && !this.matchSyslog(parseSyslog(text))) return false;
    if (this.re !== undefined && !this.re.test(text)) return false;
    return true;
  }

  private scanAnd(b: BlockView, r: LineRange, visit: LineVisitor): number {
    const data = b.data;
    const anchor = this.keys[0];
    for (let k = 1; k < this.keys.length; k++) this.next[k] = -1;
    let pos = r.from;
    while (pos < r.to) {
      const h = data.indexOf(anchor, pos);
      if (h < 0 || h >= r.to) break;
      const ls = lineStartAt(b, h);
      const le = lineEndFrom(b, ls);
      if (h + anchor.length > le) {
        pos = h + 1; // runs over the line's end: not a hit in this line
        continue;
      }
      const run = (this.runHint = runAt(b.runs, ls, this.runHint));
      if (this.rest(b, ls, le, run, 1) && !visit(ls, le, run)) return le + 1;
      pos = le + 1;
    }
    return r.to;
  }

  private scanOr(b: BlockView, r: LineRange, visit: LineVisitor): number {
    const data = b.data;
    const keys = this.keys;
    const next = this.next;
    let pos = r.from;
    for (let k = 0; k < keys.length; k++) next[k] = -1;
    while (pos < r.to) {
      let h = Infinity;
      for (let k = 0; k < keys.length; k++) {
        if (next[k] !== Infinity && next[k] < pos) {
          const at = data.indexOf(keys[k], pos);
          next[k] = at < 0 || at >= r.to ? Infinity : at;
        }
        if (next[k] < h) h = next[k];
      }
      if (h === Infinity) break;
      const ls = lineStartAt(b, h);
      const le = lineEndFrom(b, ls);
      let inLine = false;
      for (let k = 0; k < keys.length && !inLine; k++) inLine = next[k] + keys[k].length <= le && next[k] >= ls;
      if (inLine) {
        const run = (this.runHint = runAt(b.runs, ls, this.runHint));
        if (this.timeOk(b, run) && this.textOk(data, ls, le) && !visit(ls, le, run)) return le + 1;
        pos = le + 1;
      } else {
        pos = h + 1;
      }
    }
    return r.to;
  }

  private scanRegex(b: BlockView, r: LineRange, visit: LineVisitor): number {
    const data = b.data;
    const re = this.blockRe!;
    // The regex runs over windows of whole lines, not the whole range at once: a
    // window's string is small enough for V8's young generation, where the next
    // scavenge frees it, while a range-sized string (megabytes) would sit in
    // large-object space until a full collection. Each window starts at a line start
    // and ends after a line's '\n', so ^, $ and \b see the same edges as in the range.
    for (let from = r.from; from < r.to; ) {
      const to = from + REGEX_WINDOW >= r.to ? r.to : Math.min(r.to, lineEndFrom(b, lineStartAt(b, from + REGEX_WINDOW)) + 1);
      // ASCII: one latin1 character per byte, so string positions are byte offsets.
      const text = data.toString('latin1', from, to);
      re.lastIndex = 0;
      for (let m = re.exec(text); m !== null; m = re.exec(text)) {
        const h = from + m.index;
        if (h >= to) break; // an empty match at the very end belongs to no line
        const ls = lineStartAt(b, h);
        const le = lineEndFrom(b, ls);
        // A match inside the line is the line's own match, unless the line holds a '\n'
        // that the m flag turned into a line edge; anything else is checked line alone.
        const own = b.lineEnds === undefined && h + m[0].length <= le;
        const run = (this.runHint = runAt(b.runs, ls, this.runHint));
        if (this.timeOk(b, run) && (own ? this.syslogOk(data, ls, le) : this.textOk(data, ls, le)) && !visit(ls, le, run)) return le + 1;
        if (le + 1 >= to) break;
        re.lastIndex = le + 1 - from;
      }
      from = to;
    }
    return r.to;
  }

  private syslogOk(data: Buffer, ls: number, le: number): boolean {
    return !this.syslog || this.matchSyslog(parseSyslog(data.toString('utf8', ls, le)));
  }

  /** Every line, one by one (time filters skip whole runs). */
  private scanLines(b: BlockView, r: LineRange, visit: LineVisitor): number {
    const runs = b.runs;
    const data = b.data;
    let ls = r.from;
    let run = runAt(runs, ls);
    while (ls < r.to) {
      while (run + 1 < runs.off.length && runs.off[run + 1] <= ls) run++;
      if (!this.timeOk(b, run)) {
        ls = run + 1 < runs.off.length ? Math.min(runs.off[run + 1], r.to) : r.to;
        continue;
      }
      const le = lineEndFrom(b, ls);
      if (this.textOk(data, ls, le) && !visit(ls, le, run)) return le + 1;
      ls = le + 1;
    }
    return r.to;
  }

  private matchSyslog(h: SyslogHeader | undefined): boolean {
    return syslogMatches(this.spec, h);
  }
}

/** The syslog filters of `spec` on a parsed header (no header: no match). */
function syslogMatches(s: QuerySpec, h: SyslogHeader | undefined): boolean {
  if (!h) return false;
  if (s.severity !== undefined && h.severity > s.severity) return false;
  if (s.facility !== undefined && h.facility !== s.facility) return false;
  if (s.host !== undefined && h.host !== s.host) return false;
  if (s.app !== undefined && h.app !== s.app) return false;
  return true;
}

/** Line-at-a-time reference predicate: the definition the block scanner must agree with
 *  (the index and scanner property tests compare against it). */
export function lineMatches(spec: QuerySpec, line: Buffer, timeMs: number): boolean {
  if (spec.timeFromMs !== undefined && timeMs < spec.timeFromMs) return false;
  if (spec.timeToMs !== undefined && timeMs >= spec.timeToMs) return false;
  if (spec.keywords.length > 0) {
    const hits = spec.keywords.map((k) => line.indexOf(keywordBytes(k)) >= 0);
    if (spec.operator === 'OR' ? !hits.some(Boolean) : !hits.every(Boolean)) return false;
  }
  if (needsSyslog(spec) || spec.regex) {
    const text = line.toString('utf8');
    if (needsSyslog(spec) && !syslogMatches(spec, parseSyslog(text))) return false;
    if (spec.regex && !new RegExp(spec.regex.source, spec.regex.flags.replace(/[gy]/g, '')).test(text)) return false;
  }
  return true;
}

