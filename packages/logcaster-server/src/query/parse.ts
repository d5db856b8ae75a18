// The query port's input: bytes split into command lines (CommandLines), and one
// complete line parsed into a Command (parseCommand). Both are pure: no I/O, no
// exceptions for any input, the same result however the bytes were split.
//
// A line is decoded once, when it is complete, as Latin-1: one character per byte, so
// a string index is a byte offset and nothing is lost. The syntax is ASCII; values are
// then taken as what they are matched against — keywords as the raw bytes (lines are
// stored and searched as bytes), regexes and syslog names as UTF-8 text.
import { emptySpec, type QuerySpec } from './matcher';
import { parseFacility, parseSeverity } from './syslog';

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/** Longest command line, bytes; longer ones are discarded and answered with an error. */
export const MAX_COMMAND = 64 * 1024;

const LF = 10;
const CR = 13;

/** A command line over MAX_COMMAND (its bytes were discarded). */
export const TOO_LONG = Symbol('command too long');

/** Splits a connection's bytes into command lines. Holds at most the unprocessed
 *  input: complete lines not yet taken plus one partial line of at most MAX_COMMAND
 *  (+1 for a CR) bytes — the bytes of a longer line are dropped as they arrive. */
export class CommandLines {
  private buf = Buffer.alloc(0);
  private start = 0;
  private end = 0;
  /** buf[start..scanned) holds no LF. */
  private scanned = 0;
  /** Where the partial (unterminated) last line starts. */
  private partialFrom = 0;
  /** Dropping the rest of an over-long line until its LF. */
  private discarding = false;
  /** Offsets in buf where a TOO_LONG stands between two lines, in order. */
  private tooLongAt: number[] = [];
  private ended = false;

  /** Bytes held (complete lines not yet taken and the partial line). */
  get buffered(): number {
    return this.end - this.start;
  }

  push(data: Uint8Array): void {
    if (this.ended || data.length === 0) return;
    let from = 0;
    if (this.discarding) {
      const nl = data.indexOf(LF);
      if (nl < 0) return;
      this.discarding = false;
      this.tooLongAt.push(this.end);
      from = nl + 1;
    }
    const n = data.length - from;
    if (n === 0) return;
    if (this.start === this.end) {
      this.shift(this.start);
      // Do not let one long command pin a big buffer on an idle connection.
      if (this.buf.length > 16 * 1024) this.buf = Buffer.alloc(0);
    }
    if (this.end + n > this.buf.length) {
      const live = this.end - this.start;
      if (live + n <= this.buf.length) {
        this.buf.copy(this.buf, 0, this.start, this.end);
      } else {
        const grown = Buffer.allocUnsafe(Math.max(1024, 2 * (live + n)));
        this.buf.copy(grown, 0, this.start, this.end);
        this.buf = grown;
      }
      this.shift(this.start);
    }
    this.buf.set(data.subarray(from), this.end);
    const lastNl = data.lastIndexOf(LF);
    if (lastNl >= from) this.partialFrom = this.end + (lastNl - from) + 1;
    this.end += n;
    // A partial line longer than MAX_COMMAND + a CR can only become too long a line.
    if (this.end - this.partialFrom > MAX_COMMAND + 1) {
      this.discarding = true;
      this.end = this.partialFrom;
      if (this.scanned > this.end) this.scanned = this.end;
    }
  }

  /** The peer's FIN: a partial last line becomes a line. */
  finish(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.discarding) {
      this.discarding = false;
      this.tooLongAt.push(this.end);
    }
  }

  /** The next complete line (without its LF and a CR before it), TOO_LONG, or
   *  undefined when none is complete yet. The Buffer is valid until the next push(). */
  next(): Buffer | typeof TOO_LONG | undefined {
    if (this.tooLongAt.length > 0 && this.tooLongAt[0] === this.start) {
      this.tooLongAt.shift();
      return TOO_LONG;
    }
    const limit = this.tooLongAt.length > 0 ? this.tooLongAt[0] : this.end;
    const nl = this.buf.indexOf(LF, this.scanned);
    let lineEnd: number;
    let after: number;
    if (nl >= 0 && nl < limit) {
      lineEnd = nl;
      after = nl + 1;
    } else if (this.ended && this.start < limit) {
      lineEnd = after = limit; // the unterminated last line
    } else {
      this.scanned = this.end;
      return undefined;
    }
    const from = this.start;
    if (lineEnd > from && this.buf[lineEnd - 1] === CR) lineEnd--;
    this.start = this.scanned = after;
    return lineEnd - from > MAX_COMMAND ? TOO_LONG : this.buf.subarray(from, lineEnd);
  }

  private shift(by: number): void {
    this.start -= by;
    this.end -= by;
    this.scanned -= by;
    this.partialFrom -= by;
    for (let i = 0; i < this.tooLongAt.length; i++) this.tooLongAt[i] -= by;
  }
}

export type Command =
  | { kind: 'none' }
  | { kind: 'help' }
  | { kind: 'count' }
  | { kind: 'stats' }
  | { kind: 'quit' }
  | { kind: 'clear'; token: string }
  | { kind: 'recent'; n: number }
  | { kind: 'search'; spec: QuerySpec }
  | { kind: 'error'; message: string };

/** Space and tab only: as Latin-1, byte 0xA0 (a UTF-8 continuation byte) would be
 *  taken for a no-break space by \s and String.trim(). */
const BLANK = /[ \t]+/;
const trimBlank = (s: string): string => s.replace(/^[ \t]+|[ \t]+$/g, '');
/** The bytes a Latin-1 string stands for, in memory of their own (a keyword crosses to
 *  the regex worker; a view into Buffer's shared pool would take the whole pool along). */
const bytesOf = (latin1: string): Uint8Array => new Uint8Array(Buffer.from(latin1, 'latin1'));
const utf8Of = (latin1: string): string => Buffer.from(latin1, 'latin1').toString('utf8');
/** User text echoed in an error: decoded, control characters made visible, bounded. */
const shown = (latin1: string): string => utf8Of(latin1.slice(0, 64)).replace(/[\u0000-\u001f\u007f]/g, '?');

const error = (message: string): Command => ({ kind: 'error', message });
const search = (spec: QuerySpec): Command => ({ kind: 'search', spec });

/** Parse one complete command line (bytes, without its line ending). */
export function parseCommand(line: Uint8Array): Command {
  const text = trimBlank(Buffer.from(line.buffer, line.byteOffset, line.byteLength).toString('latin1'));
  if (text === '') return { kind: 'none' };
  const sp = text.search(BLANK);
  const cmd = (sp < 0 ? text : text.slice(0, sp)).toUpperCase();
  const args = sp < 0 ? '' : trimBlank(text.slice(sp));
  switch (cmd) {
    case 'HELP':
      return { kind: 'help' };
    case 'COUNT':
      return { kind: 'count' };
    case 'STATS':
      return { kind: 'stats' };
    case 'QUIT':
    case 'EXIT':
      return { kind: 'quit' };
    case 'CLEAR':
      return { kind: 'clear', token: utf8Of(args) };
    case 'RECENT':
      if (!/^\d+$/.test(args)) return error('usage: RECENT <n> (n a non-negative integer)');
      return { kind: 'recent', n: Math.min(Number(args), Number.MAX_SAFE_INTEGER) };
    case 'SEARCH': {
      if (args === '') return error('usage: SEARCH <keyword>');
      const spec = emptySpec();
      spec.keywords.push(bytesOf(args));
      return search(spec);
    }
    case 'FILTER': {
      const parts = args.split(BLANK);
      if (parts.length !== 2 || parts[0] === '') return error('usage: FILTER <from unix seconds> <to unix seconds>');
      const spec = emptySpec();
      const err = timeRange(parts[0], parts[1], spec);
      return err ? error(err) : search(spec);
    }
    case 'REGEX': {
      if (args === '') return error('usage: REGEX <regular expression>');
      const r = parseRegex(utf8Of(args));
      if (!r.ok) return error(r.error);
      const spec = emptySpec();
      spec.regex = r.value;
      return search(spec);
    }
    case 'QUERY': {
      const r = parseQuery(args);
      return r.ok ? search(r.value) : error(r.error);
    }
    default:
      return error(`Unknown command '${shown(cmd)}'. Type HELP for the list of commands.`);
  }
}

const KEYS = ['keyword', 'keywords', 'operator', 'regex', 'time_from', 'time_to', 'severity', 'facility', 'host', 'app'];
const KEY_RE = new RegExp(`(?:^|[ \\t])(${KEYS.join('|')})=`, 'gi');

/** "/pattern/flags" or a bare pattern. Validates it by compiling. */
export function parseRegex(text: string): Parsed<{ source: string; flags: string }> {
  let source = text;
  let flags = '';
  const slashed = /^\/(.*)\/([a-z]*)$/s.exec(text);
  if (slashed) {
    source = slashed[1];
    flags = slashed[2];
    if (/[^dimsu]/.test(flags)) return { ok: false, error: `invalid regex flags '${flags}' (allowed: i, m, s, u, d)` };
  }
  if (source === '') return { ok: false, error: 'empty regex' };
  try {
    new RegExp(source, flags);
  } catch (e) {
    return { ok: false, error: `invalid regex: ${(e as Error).message}` };
  }
  return { ok: true, value: { source, flags } };
}

/** Unix seconds (fractions allowed) → ms. */
function parseUnix(name: string, text: string): Parsed<number> {
  if (!/^-?\d+(\.\d+)?$/.test(text) || !Number.isFinite(Number(text) * 1000)) {
    return { ok: false, error: `${name} must be a unix timestamp in seconds, got '${shown(text)}'` };
  }
  return { ok: true, value: Number(text) * 1000 };
}

/** Inclusive upper bound in seconds: a whole second includes all of that second. */
function upperBound(ms: number): number {
  return ms % 1000 === 0 ? ms + 1000 : ms + 1;
}

export function timeRange(fromText: string | undefined, toText: string | undefined, spec: QuerySpec): string | undefined {
  if (fromText !== undefined) {
    const r = parseUnix('time_from', fromText);
    if (!r.ok) return r.error;
    spec.timeFromMs = r.value;
  }
  if (toText !== undefined) {
    const r = parseUnix('time_to', toText);
    if (!r.ok) return r.error;
    spec.timeToMs = upperBound(r.value);
  }
  if (spec.timeFromMs !== undefined && spec.timeToMs !== undefined && spec.timeFromMs >= spec.timeToMs) {
    return 'time_from must not be after time_to';
  }
  return undefined;
}

/** The arguments of QUERY (Latin-1, see above): `key=value` pairs separated by blanks.
 *  A regex value may contain blanks (it runs up to the next known `key=`); other values
 *  are one word. */
export function parseQuery(args: string): Parsed<QuerySpec> {
  const text = trimBlank(args);
  if (text === '') return { ok: false, error: 'QUERY needs parameters: keyword=, keywords=, operator=, regex=, time_from=, time_to=, severity=, facility=, host=, app=' };
  const starts: { key: string; at: number; valueAt: number }[] = [];
  KEY_RE.lastIndex = 0;
  for (let m = KEY_RE.exec(text); m; m = KEY_RE.exec(text)) {
    const at = m.index + (m[0].length - m[1].length - 1);
    starts.push({ key: m[1].toLowerCase(), at, valueAt: m.index + m[0].length });
  }
  if (starts.length === 0 || starts[0].at !== 0) {
    return { ok: false, error: `unknown parameter '${shown(text.split(BLANK)[0])}'` };
  }
  const values = new Map<string, string>();
  for (let i = 0; i < starts.length; i++) {
    const s = starts[i];
    const end = i + 1 < starts.length ? starts[i + 1].at : text.length;
    let value = text.slice(s.valueAt, end);
    if (s.key !== 'regex') {
      value = trimBlank(value);
      const words = value.split(BLANK);
      if (words.length > 1) {
        const stray = words[1];
        return { ok: false, error: stray.includes('=') ? `unknown parameter '${shown(stray)}'` : `unexpected '${shown(stray)}' after ${s.key}=${shown(words[0])}` };
      }
    } else {
      value = value.replace(/[ \t]+$/, '');
    }
    if (values.has(s.key)) return { ok: false, error: `parameter ${s.key}= given twice` };
    if (value === '') return { ok: false, error: `empty value for ${s.key}=` };
    values.set(s.key, value);
  }
  const spec = emptySpec();
  const kw = values.get('keyword');
  if (kw !== undefined) spec.keywords.push(bytesOf(kw));
  const kws = values.get('keywords');
  if (kws !== undefined) {
    const list = kws.split(',').filter((k) => k !== '');
    if (list.length === 0) return { ok: false, error: 'keywords= needs a comma-separated list' };
    for (const k of list) spec.keywords.push(bytesOf(k));
  }
  const op = values.get('operator');
  if (op !== undefined) {
    const u = op.toUpperCase();
    if (u !== 'AND' && u !== 'OR') return { ok: false, error: `operator must be AND or OR, got '${shown(op)}'` };
    spec.operator = u;
  }
  const re = values.get('regex');
  if (re !== undefined) {
    const r = parseRegex(utf8Of(re));
    if (!r.ok) return r;
    spec.regex = r.value;
  }
  const err = timeRange(values.get('time_from'), values.get('time_to'), spec);
  if (err) return { ok: false, error: err };
  const sev = values.get('severity');
  if (sev !== undefined) {
    spec.severity = parseSeverity(sev);
    if (spec.severity === undefined) return { ok: false, error: `unknown severity '${shown(sev)}' (0-7 or emerg, alert, crit, err, warning, notice, info, debug)` };
  }
  const fac = values.get('facility');
  if (fac !== undefined) {
    spec.facility = parseFacility(fac);
    if (spec.facility === undefined) return { ok: false, error: `unknown facility '${shown(fac)}'` };
  }
  const host = values.get('host');
  if (host !== undefined) spec.host = utf8Of(host);
  const app = values.get('app');
  if (app !== undefined) spec.app = utf8Of(app);
  return { ok: true, value: spec };
}
