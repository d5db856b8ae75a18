// Syslog header parsing (RFC 5424 and RFC 3164), done lazily at query time: the raw
// line is always what is stored and shown; these fields only feed filters and the
// embedding API.

export const SEVERITIES = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'] as const;
export const FACILITIES = [
  'kern', 'user', 'mail', 'daemon', 'auth', 'syslog', 'lpr', 'news', 'uucp', 'cron', 'authpriv', 'ftp',
  'ntp', 'security', 'console', 'solaris-cron', 'local0', 'local1', 'local2', 'local3', 'local4', 'local5',
  'local6', 'local7',
] as const;

const SEVERITY_ALIASES: Record<string, number> = { panic: 0, error: 3, warn: 4 };

export interface SyslogHeader {
  format: 'rfc5424' | 'rfc3164';
  facility: number;
  severity: number;
  /** Timestamp from the header in ms since the epoch, when present and valid. */
  timestamp: number | undefined;
  host: string | undefined;
  app: string | undefined;
  procId: string | undefined;
  msgId: string | undefined;
  /** The message after the header. */
  message: string;
}

/** Severity by name ("warning", "warn", "err") or number 0-7. */
export function parseSeverity(text: string): number | undefined {
  const t = text.toLowerCase();
  if (/^[0-7]$/.test(t)) return Number(t);
  const i = (SEVERITIES as readonly string[]).indexOf(t);
  if (i >= 0) return i;
  return SEVERITY_ALIASES[t];
}

/** Facility by name ("local0", "auth") or number 0-23. */
export function parseFacility(text: string): number | undefined {
  const t = text.toLowerCase();
  if (/^\d{1,2}$/.test(t)) return Number(t) <= 23 ? Number(t) : undefined;
  const i = (FACILITIES as readonly string[]).indexOf(t);
  return i >= 0 ? i : undefined;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

const RE_PRI = /^<(\d{1,3})>/;
// VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP rest
const RE_5424 = /^([1-9]\d{0,2}) (\S+) (\S+) (\S+) (\S+) (\S+)(?: (.*))?$/s;
// Mmm dd hh:mm:ss (some senders add a year or use an ISO timestamp)
const RE_3164_TS = /^([A-Z][a-z]{2}) ( \d|\d{2}) (\d{2}):(\d{2}):(\d{2})(?: (\d{4}))? /;
const RE_3164_ISO = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})) /;
const RE_TAG = /^([^\s:[\]]{1,48})(?:\[([^\]]*)\])?: ?/;

function nil(v: string): string | undefined {
  return v === '-' ? undefined : v;
}

/** Split the structured-data part of an RFC 5424 message from the MSG. */
function skipStructuredData(rest: string): string {
  if (rest.startsWith('-')) return rest.slice(rest.startsWith('- ') ? 2 : 1);
  let i = 0;
  while (rest[i] === '[') {
    // scan to the closing ']' honouring \] escapes and quoted values
    i++;
    let inQuote = false;
    for (; i < rest.length; i++) {
      const c = rest[i];
      if (c === '\\') i++;
      else if (c === '"') inQuote = !inQuote;
      else if (c === ']' && !inQuote) break;
    }
    i++;
  }
  if (rest[i] === ' ') i++;
  return rest.slice(i);
}

/** Parse a syslog header if the line has one; undefined otherwise. */
export function parseSyslog(line: string, now: Date = new Date()): SyslogHeader | undefined {
  const pri = RE_PRI.exec(line);
  if (!pri) return undefined;
  const prival = Number(pri[1]);
  if (prival > 191) return undefined;
  const facility = prival >> 3;
  const severity = prival & 7;
  const body = line.slice(pri[0].length);

  const m5424 = RE_5424.exec(body);
  if (m5424 && (m5424[2] === '-' || /^\d{4}-\d{2}-\d{2}T/.test(m5424[2]))) {
    const ts = m5424[2] === '-' ? undefined : Date.parse(m5424[2]);
    return {
      format: 'rfc5424',
      facility,
      severity,
      timestamp: ts !== undefined && Number.isFinite(ts) ? ts : undefined,
      host: nil(m5424[3]),
      app: nil(m5424[4]),
      procId: nil(m5424[5]),
      msgId: nil(m5424[6]),
      message: skipStructuredData(m5424[7] ?? ''),
    };
  }

  let rest = body;
  let timestamp: number | undefined;
  const ts = RE_3164_TS.exec(rest);
  if (ts) {
    const month = MONTHS.indexOf(ts[1]);
    if (month >= 0) {
      let year = ts[6] ? Number(ts[6]) : now.getFullYear();
      let d = new Date(year, month, Number(ts[2]), Number(ts[3]), Number(ts[4]), Number(ts[5]));
      // No year in RFC 3164: a date far in the future is last year's.
      if (!ts[6] && d.getTime() - now.getTime() > 31 * 86400_000) {
        year--;
        d = new Date(year, month, Number(ts[2]), Number(ts[3]), Number(ts[4]), Number(ts[5]));
      }
      timestamp = d.getTime();
      rest = rest.slice(ts[0].length);
    }
  } else {
    const iso = RE_3164_ISO.exec(rest);
    if (iso) {
      const t = Date.parse(iso[1]);
      timestamp = Number.isFinite(t) ? t : undefined;
      rest = rest.slice(iso[0].length);
    }
  }
  let host: string | undefined;
  let app: string | undefined;
  let procId: string | undefined;
  if (timestamp !== undefined) {
    // HOSTNAME SP TAG[pid]: MSG — unless the word is already the tag.
    const sp = rest.indexOf(' ');
    const first = sp >= 0 ? rest.slice(0, sp) : rest;
    if (first && !/[:[]/.test(first)) {
      host = first;
      rest = sp >= 0 ? rest.slice(sp + 1) : '';
    }
  }
  const tag = RE_TAG.exec(rest);
  if (tag && (timestamp !== undefined || tag[0].includes(':'))) {
    app = tag[1];
    procId = tag[2];
    rest = rest.slice(tag[0].length);
  }
  return { format: 'rfc3164', facility, severity, timestamp, host, app, procId, msgId: undefined, message: rest };
}
