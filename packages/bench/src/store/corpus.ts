// Realistic, varied log lines for the query benchmark: RFC 3164 syslog (sshd, kernel, cron,
// systemd, postfix), combined-format access logs, key=value application logs and JSON lines,
// with random users, addresses, paths, ids and numbers from a seeded generator. Repeated
// padding would let Boyer-Moore skip most bytes and flatter every searcher; this does not.
// The same seed gives the same bytes, so a corpus is generated once and cached.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** xorshift32: fast, seeded, good enough to vary text. */
class Rng {
  constructor(private s: number) {
    if (!this.s) this.s = 0x9e3779b9;
  }
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  int(n: number): number {
    return this.next() % n;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.next() % xs.length];
  }
  hex(n: number): string {
    let s = '';
    while (s.length < n) s += this.next().toString(16).padStart(8, '0');
    return s.slice(0, n);
  }
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const USERS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy', 'mallory', 'oscar', 'peggy', 'trent', 'victor', 'walter', 'deploy', 'backup', 'postgres', 'www-data'];
const HOSTS = ['web01', 'web02', 'web03', 'api-eu-1', 'api-us-2', 'db-primary', 'db-replica', 'cache01', 'worker-7', 'edge-fra', 'edge-iad', 'build-3'];
const SERVICES = ['payments', 'checkout', 'search', 'auth', 'inventory', 'notifications', 'billing', 'gateway', 'reports', 'scheduler'];
const LEVELS = ['debug', 'info', 'info', 'info', 'info', 'warn', 'error'];
const METHODS = ['GET', 'GET', 'GET', 'GET', 'POST', 'PUT', 'DELETE', 'HEAD'];
const PATHS = ['/api/v1/orders', '/api/v1/users', '/api/v2/search', '/static/app.js', '/static/style.css', '/login', '/logout', '/health', '/metrics', '/cart', '/checkout/confirm', '/images/logo.png', '/api/v1/payments', '/admin/settings'];
const STATUS = [200, 200, 200, 200, 200, 200, 201, 204, 301, 302, 304, 400, 401, 403, 404, 404, 429, 500, 502, 503];
const AGENTS = [
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15',
  'curl/8.4.0',
  'Prometheus/2.48.0',
  'Go-http-client/1.1',
  'python-requests/2.31.0',
];
const MSGS = ['request completed', 'cache miss', 'retrying upstream', 'slow query', 'token refreshed', 'queue drained', 'connection reset by peer', 'charge accepted', 'rate limited', 'config reloaded'];

function ip(r: Rng): string {
  return r.int(4) === 0 ? `10.${r.int(256)}.${r.int(256)}.${r.int(256)}` : `${1 + r.int(223)}.${r.int(256)}.${r.int(256)}.${1 + r.int(254)}`;
}

function two(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** One line (no newline) at time t (seconds since the epoch). */
function line(r: Rng, t: number): string {
  const d = new Date(t * 1000);
  const hms = `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}`;
  const kind = r.int(10);
  if (kind < 4) {
    const stamp = `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${hms}`;
    const host = r.pick(HOSTS);
    const pid = 100 + r.int(60000);
    const pri = `<${8 * r.pick([1, 3, 4, 10]) + r.int(8)}>`;
    switch (r.int(6)) {
      case 0:
        return `${pri}${stamp} ${host} sshd[${pid}]: Accepted publickey for ${r.pick(USERS)} from ${ip(r)} port ${1024 + r.int(64000)} ssh2: ED25519 SHA256:${r.hex(22)}`;
      case 1:
        return `${pri}${stamp} ${host} sshd[${pid}]: Failed password for ${r.int(3) ? '' : 'invalid user '}${r.pick(USERS)} from ${ip(r)} port ${1024 + r.int(64000)} ssh2`;
      case 2:
        return `${pri}${stamp} ${host} kernel: [${r.int(900000)}.${r.int(1000000)}] ${r.pick(['eth0', 'ens3', 'nvme0n1', 'sda'])}: ${r.pick(['link up, 10Gbps full duplex', 'I/O error, dev sector ' + r.int(1e9), 'TCP: request_sock_TCP: Possible SYN flooding on port ' + r.int(65536), 'Out of memory: Killed process ' + pid])}`;
      case 3:
        return `${pri}${stamp} ${host} CRON[${pid}]: (${r.pick(USERS)}) CMD (/usr/local/bin/${r.pick(['backup.sh', 'rotate-logs', 'sync-mirror', 'report --daily'])} >/dev/null 2>&1)`;
      case 4:
        return `${pri}${stamp} ${host} systemd[1]: ${r.pick(['Started', 'Stopped', 'Reloading'])} ${r.pick(SERVICES)}.service - ${r.pick(SERVICES)} worker ${r.int(64)}.`;
      default:
        return `${pri}${stamp} ${host} postfix/smtpd[${pid}]: ${r.hex(10).toUpperCase()}: client=${r.pick(['mail', 'mx', 'relay'])}${r.int(20)}.example.net[${ip(r)}], sasl_username=${r.pick(USERS)}`;
    }
  }
  if (kind < 6) {
    const stamp = `${two(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${hms} +0000`;
    const q = r.int(3) ? '' : `?id=${r.int(100000)}&page=${r.int(50)}`;
    return `${ip(r)} - ${r.int(4) ? '-' : r.pick(USERS)} [${stamp}] "${r.pick(METHODS)} ${r.pick(PATHS)}${q} HTTP/1.1" ${r.pick(STATUS)} ${r.int(200000)} "${r.int(2) ? '-' : 'https://shop.example.com' + r.pick(PATHS)}" "${r.pick(AGENTS)}"`;
  }
  const iso = `${d.toISOString().slice(0, 19)}.${String(r.int(1000)).padStart(3, '0')}Z`;
  if (kind < 8) {
    return `ts=${iso} level=${r.pick(LEVELS)} svc=${r.pick(SERVICES)} host=${r.pick(HOSTS)} msg="${r.pick(MSGS)}" user=${r.pick(USERS)} latency_ms=${r.int(r.int(20) ? 200 : 5000)} status=${r.pick(STATUS)} trace_id=${r.hex(16)}`;
  }
  return `{"ts":"${iso}","level":"${r.pick(LEVELS)}","service":"${r.pick(SERVICES)}","host":"${r.pick(HOSTS)}","msg":"${r.pick(MSGS)}","user":"${r.pick(USERS)}","duration_ms":${r.int(3000)},"rows":${r.int(500)},"req_id":"${r.hex(12)}"}`;
}

export interface CorpusOptions {
  lines: number;
  seed: number;
  /** A word that occurs only in these lines (index → the line carries it). */
  needle?: { word: string; every: number };
  /** Seconds since the epoch of the first line; the lines span ~1 line per 100 µs. */
  start?: number;
}

/** Writes the corpus to file (cached: the same options give the same file). Returns its byte size. */
export function writeCorpus(file: string, o: CorpusOptions): number {
  const tag = JSON.stringify(o);
  const tagFile = `${file}.options`;
  if (fs.existsSync(file) && fs.existsSync(tagFile) && fs.readFileSync(tagFile, 'utf8') === tag) return fs.statSync(file).size;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const r = new Rng(o.seed);
  const fd = fs.openSync(file, 'w');
  const start = o.start ?? Date.UTC(2026, 10, 30, 0, 0, 0) / 1000;
  let chunk: string[] = [];
  let size = 0;
  try {
    for (let i = 0; i < o.lines; i++) {
      let l = line(r, start + i / 10000);
      if (o.needle && i % o.needle.every === o.needle.every >> 1) l += ` ref=${o.needle.word}`;
      chunk.push(l);
      if (chunk.length === 20000 || i === o.lines - 1) {
        const b = Buffer.from(chunk.join('\n') + '\n', 'utf8');
        fs.writeSync(fd, b);
        size += b.length;
        chunk = [];
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  fs.writeFileSync(tagFile, tag);
  return size;
}
