// Parsing of query-port commands into QuerySpecs.
import { emptySpec, type QuerySpec } from './matcher';
import { parseFacility, parseSeverity } from './syslog';

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

const KEYS = ['keyword', 'keywords', 'operator', 'regex', 'time_from', 'time_to', 'severity', 'facility', 'host', 'app'];
const KEY_RE = new RegExp(`(?:^|\\s)(${KEYS.join('|')})=`, 'gi');

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
  if (!/^-?\d+(\.\d+)?$/.test(text)) return { ok: false, error: `${name} must be a unix timestamp in seconds, got '${text}'` };
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

/** The arguments of QUERY: `key=value` pairs separated by spaces. A regex value may
 *  contain spaces (it runs up to the next known `key=`); other values are one word. */
export function parseQuery(args: string): Parsed<QuerySpec> {
  const text = args.trim();
  if (text === '') return { ok: false, error: 'QUERY needs parameters: keyword=, keywords=, operator=, regex=, time_from=, time_to=, severity=, facility=, host=, app=' };
  const starts: { key: string; at: number; valueAt: number }[] = [];
  KEY_RE.lastIndex = 0;
  for (let m = KEY_RE.exec(text); m; m = KEY_RE.exec(text)) {
    const at = m.index + (m[0].length - m[1].length - 1);
    starts.push({ key: m[1].toLowerCase(), at, valueAt: m.index + m[0].length });
  }
  if (starts.length === 0 || starts[0].at !== 0) {
    const first = text.split(/\s+/)[0];
    return { ok: false, error: `unknown parameter '${first}'` };
  }
  const values = new Map<string, string>();
  for (let i = 0; i < starts.length; i++) {
    const s = starts[i];
    const end = i + 1 < starts.length ? starts[i + 1].at : text.length;
    let value = text.slice(s.valueAt, end);
    if (s.key !== 'regex') {
      value = value.trim();
      const words = value.split(/\s+/);
      if (words.length > 1) {
        const stray = words[1];
        return { ok: false, error: stray.includes('=') ? `unknown parameter '${stray}'` : `unexpected '${stray}' after ${s.key}=${words[0]}` };
      }
    } else {
      value = value.replace(/\s+$/, '');
    }
    if (values.has(s.key)) return { ok: false, error: `parameter ${s.key}= given twice` };
    if (value === '') return { ok: false, error: `empty value for ${s.key}=` };
    values.set(s.key, value);
  }
  const spec = emptySpec();
  const kw = values.get('keyword');
  if (kw !== undefined) spec.keywords.push(kw);
  const kws = values.get('keywords');
  if (kws !== undefined) {
    const list = kws.split(',').filter((k) => k !== '');
    if (list.length === 0) return { ok: false, error: 'keywords= needs a comma-separated list' };
    spec.keywords.push(...list);
  }
  const op = values.get('operator');
  if (op !== undefined) {
    const u = op.toUpperCase();
    if (u !== 'AND' && u !== 'OR') return { ok: false, error: `operator must be AND or OR, got '${op}'` };
    spec.operator = u;
  }
  const re = values.get('regex');
  if (re !== undefined) {
    const r = parseRegex(re);
    if (!r.ok) return r;
    spec.regex = r.value;
  }
  const err = timeRange(values.get('time_from'), values.get('time_to'), spec);
  if (err) return { ok: false, error: err };
  const sev = values.get('severity');
  if (sev !== undefined) {
    spec.severity = parseSeverity(sev);
    if (spec.severity === undefined) return { ok: false, error: `unknown severity '${sev}' (0-7 or emerg, alert, crit, err, warning, notice, info, debug)` };
  }
  const fac = values.get('facility');
  if (fac !== undefined) {
    spec.facility = parseFacility(fac);
    if (spec.facility === undefined) return { ok: false, error: `unknown facility '${fac}'` };
  }
  const host = values.get('host');
  if (host !== undefined) spec.host = host;
  const app = values.get('app');
  if (app !== undefined) spec.app = app;
  return { ok: true, value: spec };
}
