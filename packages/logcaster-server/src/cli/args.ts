// The options of `logcaster`, as one table. Parsing, range validation, the defaults
// the server applies and the `--help` text are all derived from it: adding an option
// is adding one row (and the field it sets in LogCasterOptions).
import { isIP } from 'node:net';

import { AllowList } from '../access/allow';
import { TokenSet } from '../access/tokens';
import type { LogCasterOptions } from '../server';
import { formatDuration, formatSize, parseCount, parseDuration, parseSize } from './size';

export const DEFAULT_DATA_DIR = './logcaster-data';
/** The CLI's HTTP port; embedded servers have none unless asked. */
export const DEFAULT_HTTP_PORT = 9997;

/** Node clamps timers above this to 1 ms, so no duration may exceed it. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** What the CLI hands the server: LogCasterOptions, with the data dir always decided. */
export type CliServerOptions = LogCasterOptions & { dataDir: string | null };
type ServerKey = keyof LogCasterOptions;
type Value = string | number | boolean | null | readonly string[];

/** How one kind of value is read from the command line and shown in messages. */
interface Kind {
  /** Placeholder in --help, e.g. '<size>'; absent for flags (they take no value). */
  placeholder?: string;
  /** What a valid value looks like, for error messages. */
  expected: string;
  /** The value, or undefined when `text` is not of this kind. */
  parse(text: string): Value | undefined;
  /** Its values are numbers (embedders must pass a number). */
  numeric?: boolean;
  /** Whole numbers only (checked for embedders, who pass numbers directly). */
  integer?: boolean;
  /** A number as users write it: 65536 → '64k'. */
  show?(n: number): string;
}

const wholeNumber = (text: string): number | undefined => (/^\d+$/.test(text) ? Number(text) : undefined);

export const KINDS = {
  flag: { expected: 'no value', parse: () => true },
  text: { placeholder: '<text>', expected: 'a non-empty word', parse: (t: string) => (t !== '' && !/\s/.test(t) ? t : undefined) },
  host: { placeholder: '<ip>', expected: "an IP address or 'localhost'", parse: (t: string) => (isIP(t) || t === 'localhost' ? t : undefined) },
  dir: { placeholder: '<dir>', expected: 'a directory, or "none" for memory only', parse: (t: string) => (t === '' ? undefined : t === 'none' ? null : t) },
  port: { placeholder: '<n>', expected: 'a port number', parse: wholeNumber, numeric: true, integer: true },
  count: { placeholder: '<n>', expected: 'a count like 1000 or 200k', parse: parseCount, numeric: true, integer: true, show: String },
  size: { placeholder: '<size>', expected: 'a size like 4096, 64k or 16M', parse: parseSize, numeric: true, integer: true, show: formatSize },
  ms: { placeholder: '<ms>', expected: 'whole milliseconds', parse: wholeNumber, numeric: true, integer: true, show: (n: number) => `${n} ms` },
  file: { placeholder: '<file>', expected: 'a file path', parse: (t: string) => (t !== '' ? t : undefined) },
  token: { placeholder: '<token>', expected: 'a word without spaces', parse: (t: string) => (TokenSet.isValid(t) ? [t] : undefined) },
  names: { placeholder: '<name,...>', expected: 'names separated by commas', parse: (t: string) => (t.split(',').every((n) => n.trim() !== '') ? t.split(',').map((n) => n.trim()) : undefined) },
  cidrs: { placeholder: '<cidr,...>', expected: 'addresses or CIDRs separated by commas, e.g. 10.0.0.0/8,192.168.1.7', parse: (t: string) => (AllowList.isValid(t) ? t.split(',').map((c) => c.trim()) : undefined) },
  // Written in octal (its range, 0 to 07777, is its form: at most four octal digits).
  mode: { placeholder: '<octal>', expected: 'an octal file mode like 660', parse: (t: string) => (/^0?[0-7]{3,4}$/.test(t) ? parseInt(t, 8) : undefined), numeric: true, integer: true, show: (n: number) => (n === 0 ? '0' : `0${n.toString(8)}`) },
  duration: { placeholder: '<time>', expected: 'a duration like 3600, 90m, 12h or 30d', parse: parseDuration, numeric: true, integer: true, show: formatDuration },
  seconds: { placeholder: '<sec>', expected: 'seconds, e.g. 300 or 0.5', parse: (t: string) => (/^\d+(\.\d+)?$/.test(t) ? Number(t) : undefined), numeric: true, show: (n: number) => `${n} s` },
} satisfies Record<string, Kind>;

export interface OptionRow {
  /** '--max-line' */
  flag: string;
  /** '-h' */
  alias?: string;
  /** The LogCasterOptions field it sets, or what the CLI itself does. */
  key: ServerKey | 'help' | 'version';
  kind: keyof typeof KINDS;
  /** One word of choices, e.g. the backends (kind text). */
  choices?: readonly string[];
  /** Inclusive range of numeric kinds, in the kind's unit. */
  min?: number;
  max?: number;
  /** The value the server uses when the option is absent (shown in --help). */
  default?: Value;
  /** A flag that sets its key to this instead of true (--no-persist: dataDir null). */
  sets?: Value;
  /** Placeholder override for --help. */
  placeholder?: string;
  help: string;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

export const BACKEND_CHOICES = ['auto', 'select', 'poll', 'epoll', 'kqueue', 'iouring'] as const;
export const FSYNC_CHOICES = ['never', 'interval', 'always'] as const;

export const OPTIONS: readonly OptionRow[] = [
  { flag: '--backend', key: 'backend', kind: 'text', choices: BACKEND_CHOICES, placeholder: '<name>', default: 'auto', help: 'I/O backend; auto takes the best one installed and supported here' },
  { flag: '--host', key: 'host', kind: 'host', default: '127.0.0.1', help: 'address the ingest port listens on (0.0.0.0: every interface)' },
  { flag: '--query-host', key: 'queryHost', kind: 'host', default: '127.0.0.1', help: 'address the query port listens on; a non-loopback one needs a query token (or --query-insecure)' },
  { flag: '--query-token-file', key: 'queryTokenFile', kind: 'file', help: `tokens (one per line) a query client not on loopback must send first as "AUTH <token>"; also read: $LOGCASTER_QUERY_TOKEN` },
  { flag: '--query-token', key: 'queryTokens', kind: 'token', help: 'a query token on the command line (visible to every user in ps: prefer --query-token-file)' },
  { flag: '--query-auth-loopback', key: 'queryAuthLoopback', kind: 'flag', help: 'require AUTH from loopback query clients too (a shared host)' },
  { flag: '--query-insecure', key: 'queryInsecure', kind: 'flag', help: 'allow a non-loopback --query-host without a token: anyone who can connect reads every line' },
  { flag: '--allow', key: 'allow', kind: 'cidrs', help: 'networks the ingest port accepts connections from; others are closed at accept (default: any)' },
  { flag: '--query-allow', key: 'queryAllow', kind: 'cidrs', help: 'networks the query port accepts connections from (default: any that reaches --query-host)' },
  { flag: '--port', key: 'port', kind: 'port', min: 0, max: 65535, default: 9999, help: 'ingest port; 0 picks a free port' },
  { flag: '--query-port', key: 'queryPort', kind: 'port', min: 0, max: 65535, default: 9998, help: 'query port; 0 picks a free port' },
  { flag: '--http-port', key: 'httpPort', kind: 'port', min: 0, max: 65535, default: DEFAULT_HTTP_PORT, help: 'HTTP port on --query-host: /metrics, /health, /ready, /api/query, /api/tail, /api/stats and the web console at /; 0 picks a free port' },
  { flag: '--no-http', key: 'httpPort', kind: 'flag', sets: null, help: 'no HTTP port' },
  { flag: '--http-token-file', key: 'httpTokenFile', kind: 'file', help: 'tokens (one per line) an HTTP client not on loopback sends as "Authorization: Bearer <token>"; POST /api/clear needs one from every client' },
  { flag: '--http-token', key: 'httpTokens', kind: 'token', help: 'an HTTP token on the command line (visible to every user in ps: prefer --http-token-file)' },
  { flag: '--tls-port', key: 'tlsPort', kind: 'port', min: 0, max: 65535, help: 'syslog over TLS on --host (RFC 5425; 6514 is the convention): octet-counted frames, or lines, as on the ingest port; needs --tls-cert and --tls-key; with --tls-ca only clients with a certificate it verifies get in (default: off)' },
  { flag: '--tls-cert', key: 'tlsCert', kind: 'file', help: 'PEM certificate (followed by its chain) of --tls-port and --query-tls' },
  { flag: '--tls-key', key: 'tlsKey', kind: 'file', help: 'PEM private key of --tls-cert (keep it chmod 600)' },
  { flag: '--tls-ca', key: 'tlsCa', kind: 'file', help: 'PEM CA certificate(s) for mutual TLS: --tls-port requires a client certificate it verifies; on --query-tls such a certificate replaces AUTH' },
  { flag: '--query-tls', key: 'queryTls', kind: 'flag', help: 'TLS on the query port and the HTTP port (HTTPS), with --tls-cert and --tls-key' },
  { flag: '--query-cert-cn', key: 'queryCertCn', kind: 'names', help: 'only client certificates with one of these common names (CN) may query without AUTH (default: every certificate --tls-ca verifies)' },
  { flag: '--udp-port', key: 'udpPort', kind: 'port', min: 0, max: 65535, help: 'syslog over UDP on --host (RFC 5426; 514 is the convention): one datagram is one line, the sender its peer (default: off)' },
  { flag: '--udp-recv-buffer', key: 'udpRecvBuffer', kind: 'size', min: 64 * KiB, max: 1 * GiB, default: 8 * MiB, help: 'kernel receive buffer of the UDP socket: what a burst may queue before the kernel drops (counted as UdpDropped); above net.core.rmem_max only with CAP_NET_ADMIN' },
  { flag: '--unix-socket', key: 'unixSocket', kind: 'file', placeholder: '<path>', help: 'a Unix datagram socket for local programs (logger -u <path>, or /dev/log); "@name" is an abstract name (Linux); a stale socket file is replaced (default: off)' },
  { flag: '--unix-stream-socket', key: 'unixStreamSocket', kind: 'file', placeholder: '<path>', help: 'a Unix stream socket speaking what the ingest port speaks (lines, octet counting) (default: off)' },
  { flag: '--unix-socket-mode', key: 'unixSocketMode', kind: 'mode', default: 0o666, help: 'permissions of the Unix socket files (0666: every local user may log, like /dev/log)' },
  { flag: '--relp-port', key: 'relpPort', kind: 'port', min: 0, max: 65535, help: "RELP on --host, what rsyslog's omrelp sends: each message acknowledged once stored, under --fsync always once on disk (default: off)" },
  { flag: '--capacity', key: 'capacity', kind: 'count', min: 1, max: 100_000_000, default: 100_000, help: 'log entries kept in memory (32 bytes of index each, allocated at start), the newest; with a journal older ones are read from disk, without one they are dropped and counted' },
  { flag: '--max-line', key: 'maxLine', kind: 'size', min: 16, max: 256 * MiB, default: 64 * KiB, help: 'longest line kept; longer lines keep their start and end with "…[truncated N bytes]"' },
  { flag: '--max-clients', key: 'maxClients', kind: 'count', min: 1, max: 1_000_000, default: 1000, help: 'concurrent ingest clients; more get "ERROR: Server at capacity. Try again later." and are closed' },
  { flag: '--max-query-clients', key: 'maxQueryClients', kind: 'count', min: 1, max: 100_000, default: 64, help: 'concurrent query clients; more get "ERROR: Too many query clients (limit N). Try again later." and are closed' },
  { flag: '--idle-timeout', key: 'idleTimeout', kind: 'seconds', min: 0, max: Math.floor(MAX_TIMER_MS / 1000), default: 0, help: 'close ingest connections idle this long; 0 = never' },
  { flag: '--data-dir', key: 'dataDir', kind: 'dir', default: DEFAULT_DATA_DIR, help: 'journal directory, reloaded on restart; "none" keeps everything in memory only' },
  { flag: '--no-persist', key: 'dataDir', kind: 'flag', sets: null, help: 'same as --data-dir none' },
  { flag: '--rotate-size', key: 'rotateSize', kind: 'size', min: 4 * KiB, max: 1 * GiB, default: 16 * MiB, help: 'journal segment size before rotating' },
  { flag: '--max-files', key: 'maxFiles', kind: 'count', min: 0, max: 100_000, default: 0, help: 'journal segments kept, the oldest deleted first; 0 = no limit (retention goes by size and age)' },
  { flag: '--retention-size', key: 'retentionSize', kind: 'size', min: 0, max: 2 ** 50, default: 4 * GiB, help: 'bytes of journal kept, the oldest segments deleted first; every retained line is queryable; 0 = no limit' },
  { flag: '--retention-time', key: 'retentionTime', kind: 'duration', min: 0, max: 100 * 365 * 86400, default: 0, help: 'how long lines are kept: segments whose newest line is older are deleted (checked every minute); 0 = no limit' },
  { flag: '--journal-cache', key: 'journalCache', kind: 'size', min: 0, max: 2 ** 50, default: 64 * MiB, help: 'bytes of the newest journal kept in the page cache once written; older written data is dropped from the cache when on disk (queries read it back); 0 = the kernel decides' },
  { flag: '--fsync', key: 'fsync', kind: 'text', choices: FSYNC_CHOICES, placeholder: '<policy>', default: 'interval', help: 'when the journal is fsynced: never, every --fsync-interval, or always before acking (group commit)' },
  { flag: '--fsync-interval', key: 'fsyncIntervalMs', kind: 'ms', min: 1, max: MAX_TIMER_MS, default: 1000, help: 'fsync period of --fsync interval' },
  { flag: '--ack', key: 'ack', kind: 'flag', help: 'answer "OK" per stored line, in order; with --fsync always only once the line is on disk' },
  { flag: '--admin-token', key: 'adminToken', kind: 'text', placeholder: '<tok>', help: 'lets non-loopback query clients run "CLEAR <tok>"' },
  { flag: '--regex-timeout', key: 'regexTimeoutMs', kind: 'ms', min: 1, max: MAX_TIMER_MS, default: 2000, help: 'time budget of one regex query' },
  { flag: '--utc', key: 'utc', kind: 'flag', help: 'print query timestamps in UTC instead of local time (the original used local time)' },
  { flag: '--help', alias: '-h', key: 'help', kind: 'flag', help: 'show this help' },
  { flag: '--version', alias: '-v', key: 'version', kind: 'flag', help: 'print the version' },
];

export interface CliOptions {
  help: boolean;
  version: boolean;
  server: CliServerOptions;
}

export type CliParse = { ok: true; value: CliOptions } | { ok: false; error: string };

function kindOf(row: OptionRow): Kind {
  return KINDS[row.kind];
}

function show(row: OptionRow, v: Value): string {
  const k = kindOf(row);
  return typeof v === 'number' && k.show ? k.show(v) : String(v);
}

/** Why `v` is not a valid value of `row`, or undefined when it is. */
function rangeError(row: OptionRow, v: Value): string | undefined {
  if (row.choices && !row.choices.includes(String(v))) return `expected one of: ${row.choices.join(', ')}`;
  if (typeof v !== 'number') return undefined;
  if (!Number.isFinite(v) || (kindOf(row).integer && !Number.isInteger(v))) return `expected ${kindOf(row).expected}`;
  if ((row.min !== undefined && v < row.min) || (row.max !== undefined && v > row.max)) return `must be ${rangeText(row)}`;
  return undefined;
}

function rangeText(row: OptionRow): string {
  if (row.max === undefined) return `at least ${show(row, row.min!)}`;
  if (row.min === undefined) return `at most ${show(row, row.max)}`;
  return `${show(row, row.min)} to ${show(row, row.max)}`;
}

const BY_NAME = new Map<string, OptionRow>();
for (const row of OPTIONS) {
  BY_NAME.set(row.flag, row);
  if (row.alias) BY_NAME.set(row.alias, row);
}

export function parseCli(argv: readonly string[]): CliParse {
  const out: CliOptions = { help: false, version: false, server: { dataDir: DEFAULT_DATA_DIR, httpPort: DEFAULT_HTTP_PORT } };
  const fail = (error: string): CliParse => ({ ok: false, error });
  let i = 0;
  while (i < argv.length) {
    let arg = argv[i++];
    let inline: string | undefined;
    if (arg.startsWith('--') && arg.includes('=')) {
      inline = arg.slice(arg.indexOf('=') + 1);
      arg = arg.slice(0, arg.indexOf('='));
    }
    const row = BY_NAME.get(arg);
    if (!row) return fail(arg.startsWith('-') ? `unknown option '${arg}'` : `unexpected argument '${arg}'`);
    const kind = kindOf(row);
    let value: Value;
    if (row.kind === 'flag') {
      if (inline !== undefined) return fail(`option ${arg} takes no value`);
      value = row.sets !== undefined ? row.sets : true;
    } else {
      let text = inline;
      if (text === undefined && i < argv.length && !(argv[i].startsWith('--') && argv[i].length > 2)) text = argv[i++];
      if (text === undefined) return fail(`option ${arg} needs a value (${kind.expected})`);
      const parsed = kind.parse(text);
      if (parsed === undefined) return fail(`invalid ${arg} '${text}' (expected ${kind.expected})`);
      const bad = rangeError(row, parsed);
      if (bad) return fail(`invalid ${arg} '${text}' (${bad})`);
      value = parsed;
    }
    if (row.key === 'help' || row.key === 'version') out[row.key] = true;
    else Object.assign(out.server, { [row.key]: value });
  }
  return { ok: true, value: out };
}

/** Range check of options given programmatically (the embedding API): the first
 *  problem as a message naming the option field, or undefined. */
export function checkOptions(options: LogCasterOptions): string | undefined {
  for (const row of OPTIONS) {
    if (row.key === 'help' || row.key === 'version' || row.kind === 'flag') continue;
    const v = options[row.key];
    if (v === undefined || v === null) continue;
    const numeric = kindOf(row).numeric === true;
    if (numeric !== (typeof v === 'number')) return `${row.key} expected ${numeric ? 'a number' : 'a string'}, got ${JSON.stringify(v)}`;
    const bad = rangeError(row, v);
    if (bad) return `${row.key} ${bad}, got ${String(v)}`;
  }
  return undefined;
}

/** The default of every server option that has one, from the table. */
export function optionDefault<K extends ServerKey>(key: K): LogCasterOptions[K] {
  const row = OPTIONS.find((r) => r.key === key && r.default !== undefined);
  if (!row) throw new Error(`option ${key} has no default`);
  return row.default as LogCasterOptions[K];
}

// ---- --help ----

const HELP_LEFT = 26;
const HELP_WIDTH = 96;

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let cur = '';
  for (const word of text.split(' ')) {
    if (cur !== '' && cur.length + 1 + word.length > width) {
      lines.push(cur);
      cur = word;
    } else {
      cur = cur === '' ? word : `${cur} ${word}`;
    }
  }
  if (cur !== '') lines.push(cur);
  return lines;
}

function helpEntry(row: OptionRow): string {
  const kind = kindOf(row);
  const placeholder = row.kind === 'flag' ? '' : ` ${row.placeholder ?? kind.placeholder}`;
  const left = `  ${row.alias ? `${row.alias}, ` : ''}${row.flag}${placeholder}`;
  const notes: string[] = [];
  if (row.choices) notes.push(row.choices.join(' | '));
  if (row.min !== undefined || row.max !== undefined) notes.push(rangeText(row));
  if (row.default !== undefined && row.kind !== 'flag') notes.push(`default ${show(row, row.default)}`);
  const text = notes.length ? `${row.help} (${notes.join('; ')})` : row.help;
  const body = wrap(text, HELP_WIDTH - HELP_LEFT);
  const first = left.length < HELP_LEFT ? `${left.padEnd(HELP_LEFT)}${body[0]}` : `${left}\n${' '.repeat(HELP_LEFT)}${body[0]}`;
  return [first, ...body.slice(1).map((l) => ' '.repeat(HELP_LEFT) + l)].join('\n');
}

export const USAGE =
  'Usage: logcaster [options]\n\n' +
  'LogCaster: collects log lines over TCP (ingest port; optionally UDP, Unix sockets, RELP)\n' +
  'and answers queries (query port).\n' +
  'Sizes take binary suffixes (64k = 65536), counts decimal ones (200k = 200000).\n\n' +
  'Options:\n' +
  OPTIONS.map(helpEntry).join('\n') +
  '\n';
