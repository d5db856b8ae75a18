// The query protocol over real sockets: every command and its errors, checked
// against what README.md documents. Every test gets a fresh server with the same six
// lines, so none depends on another having run (or not) before it.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import type { LogCaster, LogCasterOptions, StartInfo } from '../../src';
import { sendAndClose, waitFor } from '@logcaster/testkit';
import { QueryClient, startServer, stripStamp } from '../support/helpers';

const README = readFileSync(join(__dirname, '..', '..', '..', 'README.md'), 'utf8');
/** The commands of README's "| Command | Answer |" table, in its order. */
const COMMAND_TABLE = README.slice(README.indexOf('| Command | Answer |')).split('\n\n')[0];
const DOCUMENTED_COMMANDS = [...COMMAND_TABLE.matchAll(/^\| `([A-Z]+)[ `]/gm)].map((m) => m[1]);
/** The fields of README's STATS answer, in its order. */
const DOCUMENTED_STATS = /`STATS: ([^`]+)`/.exec(README)![1].split(', ').map((f) => f.split('=')[0]);

/** "YYYY-MM-DD HH:MM:SS" of `ms`, written here independently of the server's formatter. */
function stamp(ms: number, utc: boolean): string {
  const d = new Date(ms);
  const [y, mo, da, h, mi, se] = utc
    ? [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()]
    : [d.getFullYear(), d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds()];
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${y}-${two(mo)}-${two(da)} ${two(h)}:${two(mi)}:${two(se)}`;
}

describe('query protocol', function () {
  this.timeout(30000);
  let lc: LogCaster;
  let info: StartInfo;
  let q: QueryClient;
  const LINES = [
    'alpha error disk full',
    'beta warning cpu hot',
    'gamma error cpu melted',
    '<11>1 2024-01-01T00:00:00Z web01 nginx 42 - - upstream timed out',
    '<14>Jan  2 03:04:05 db01 postgres[7]: checkpoint complete',
    'delta info all good',
  ];
  let t0: number;

  // A zone 12:45 (or 13:45) off UTC for every test, so that local time and UTC differ
  // even on a machine that runs in UTC.
  let savedTz: string | undefined;
  before(() => {
    savedTz = process.env.TZ;
    process.env.TZ = 'Pacific/Chatham';
  });
  after(() => {
    if (savedTz === undefined) delete process.env.TZ;
    else process.env.TZ = savedTz;
  });

  const start = async (opts: LogCasterOptions = {}): Promise<void> => {
    ({ lc, info } = await startServer({ capacity: 1000, adminToken: 's3cret', ...opts }));
    t0 = Date.now();
    await sendAndClose(info.ingestPort, LINES.join('\n') + '\n');
    await waitFor(() => lc.stats().current === Math.min(LINES.length, opts.capacity ?? 1000));
    q = await QueryClient.open(info.queryPort);
  };
  beforeEach(() => start());
  afterEach(async () => {
    q?.close();
    await lc?.stop();
  });

  it('HELP lists every documented command, one per line, then END', async () => {
    expect(DOCUMENTED_COMMANDS).to.include.members(['HELP', 'COUNT', 'STATS', 'QUERY', 'SEARCH', 'FILTER', 'REGEX', 'RECENT', 'CLEAR', 'QUIT']);
    q.send('HELP');
    const got: string[] = [];
    for (let l = await q.line(); l !== 'END'; l = await q.line()) got.push(l);
    const listed = got.map((l) => /^ {2}([A-Z]+)\b/.exec(l)?.[1]).filter(Boolean);
    expect(listed).to.deep.equal(DOCUMENTED_COMMANDS);
  });

  it('command names are case-insensitive', async () => {
    expect(await q.ask('count')).to.equal(`COUNT: ${LINES.length}`);
    expect(await q.ask('Count')).to.equal(`COUNT: ${LINES.length}`);
    expect(await q.ask('stats')).to.match(/^STATS: Total=6, /);
    expect((await q.found('query keyword=error')).n).to.equal(2);
    expect((await q.found('Search cpu')).n).to.equal(2);
    expect((await q.found('regex ^[ab]')).n).to.equal(2);
    expect((await q.found('recent 1')).n).to.equal(1);
    const now = Math.floor(Date.now() / 1000);
    expect((await q.found(`filter ${now - 100} ${now + 100}`)).n).to.equal(6);
    q.send('help');
    expect(await q.line()).to.match(/commands/);
    for (let l = await q.line(); l !== 'END'; l = await q.line());
    expect(await q.ask('clear')).to.equal('CLEARED: 6');
    q.send('quit');
    await waitFor(() => q.closed, 5000, 'close after quit');
  });

  it('STATS: every documented field, in order, with the values of this server', async () => {
    const s = await q.ask('STATS');
    const m = /^STATS: (.*)$/.exec(s)!;
    const fields = m[1].split(', ').map((kv) => kv.split('='));
    expect(fields.map(([k]) => k), 'fields').to.deep.equal(DOCUMENTED_STATS);
    const v = Object.fromEntries(fields) as Record<string, string>;
    const bytes = LINES.reduce((n, l) => n + Buffer.byteLength(l) + 1, 0);
    expect(v).to.include({
      Total: '6', Dropped: '0', Current: '6', Clients: '0', Backend: lc.stats().backend, Connections: '1', Rejected: '0',
      LinesReceived: '6', BytesReceived: String(bytes), Truncated: '0', Persisted: '0', PersistedBytes: '0', Reloaded: '0',
      QueryClients: '1', QueryRejected: '0', AuthFailures: '0', AuthRequired: '0', IngestDenied: '0', QueryDenied: '0', Errors: '0',
    });
    expect(Number(v.StoreBytes), 'StoreBytes').to.be.at.least(bytes - 6);
    expect(v.Uptime).to.match(/^\d+s$/);
  });

  it('STATS counts what --capacity evicted as Dropped', async () => {
    await lc.stop();
    q.close();
    await start({ capacity: 4 });
    expect(await q.ask('STATS')).to.match(/^STATS: Total=6, Dropped=2, Current=4, /);
    expect((await q.found('RECENT 10')).lines.map(stripStamp)).to.deep.equal(LINES.slice(2));
  });

  it('QUERY keyword=, with the timestamp prefix in local time', async () => {
    const r = await q.found('QUERY keyword=error');
    expect(r.n).to.equal(2);
    expect(r.lines.map(stripStamp)).to.deep.equal(['alpha error disk full', 'gamma error cpu melted']);
    const ms = lc.store.time(lc.store.firstSeq);
    expect(Math.abs(ms - t0)).to.be.below(5000);
    expect(r.lines[0].slice(1, 20)).to.equal(stamp(ms, false));
    expect(stamp(ms, false), 'local time differs from UTC here').to.not.equal(stamp(ms, true));
  });

  it('--utc: timestamps in UTC', async () => {
    await lc.stop();
    q.close();
    await start({ utc: true });
    const r = await q.found('RECENT 1');
    expect(r.lines[0].slice(1, 20)).to.equal(stamp(lc.store.time(lc.store.firstSeq + 5), true));
  });

  it('QUERY keywords= with AND (default) and OR', async () => {
    expect((await q.found('QUERY keywords=error,cpu')).lines.map(stripStamp)).to.deep.equal(['gamma error cpu melted']);
    expect((await q.found('QUERY keywords=error,cpu operator=AND')).n).to.equal(1);
    expect((await q.found('QUERY keywords=disk,good operator=OR')).lines.map(stripStamp)).to.deep.equal(['alpha error disk full', 'delta info all good']);
    expect((await q.found('QUERY keywords=disk,good operator=or')).n).to.equal(2);
  });

  it('regex flags i m s u d, each changing what matches as in JavaScript; others refused', async () => {
    // An octet-counted frame keeps its newline: "two lines" in one entry.
    const frame = 'first part\nsecond part';
    await sendAndClose(info.ingestPort, `${Buffer.byteLength(frame)} ${frame}`);
    await sendAndClose(info.ingestPort, 'smile \u{1F600}\n');
    await waitFor(() => lc.stats().current === 8);
    const n = async (re: string): Promise<number> => (await q.found(`REGEX ${re}`)).n;
    expect([await n('/^ALPHA/'), await n('/^ALPHA/i')], 'i').to.deep.equal([0, 1]);
    expect([await n('/^second/'), await n('/^second/m')], 'm').to.deep.equal([0, 1]);
    expect([await n('/part.second/'), await n('/part.second/s')], 's').to.deep.equal([0, 1]);
    expect([await n('/^smile .$/'), await n('/^smile .$/u')], 'u').to.deep.equal([0, 1]);
    expect(await n('/smile/d'), 'd').to.equal(1);
    expect(await q.ask('REGEX /smile/g')).to.equal("ERROR: invalid regex flags 'g' (allowed: i, m, s, u, d)");
  });

  it('QUERY regex= (also /re/flags and with spaces), combined with keywords', async () => {
    expect((await q.found('QUERY regex=^(alpha|delta)')).n).to.equal(2);
    expect((await q.found('QUERY regex=/^ALPHA/i')).n).to.equal(1);
    expect((await q.found('QUERY regex=cpu (hot|melted)')).n).to.equal(2);
    expect((await q.found('QUERY regex=cpu keyword=gamma')).lines.map(stripStamp)).to.deep.equal(['gamma error cpu melted']);
  });

  it('QUERY time_from= / time_to= (unix seconds, inclusive)', async () => {
    const now = Math.floor(Date.now() / 1000);
    expect((await q.found(`QUERY time_from=${now - 60} time_to=${now + 60}`)).n).to.equal(6);
    expect((await q.found(`QUERY time_from=${now + 60}`)).n).to.equal(0);
    expect((await q.found(`QUERY time_to=${now - 60}`)).n).to.equal(0);
    expect((await q.found(`QUERY keyword=beta time_from=${now - 60}`)).n).to.equal(1);
  });

  it('QUERY syslog filters: severity=, facility=, host=, app=', async () => {
    expect((await q.found('QUERY severity=err')).lines.map(stripStamp)).to.deep.equal([LINES[3]]);
    expect((await q.found('QUERY severity=info')).n).to.equal(2);
    expect((await q.found('QUERY host=db01')).lines.map(stripStamp)).to.deep.equal([LINES[4]]);
    expect((await q.found('QUERY app=nginx facility=user')).n).to.equal(1);
  });

  it('SEARCH, FILTER, REGEX, RECENT', async () => {
    expect((await q.found('SEARCH cpu')).n).to.equal(2);
    expect((await q.found('SEARCH cpu hot')).lines.map(stripStamp)).to.deep.equal(['beta warning cpu hot']);
    const now = Math.floor(Date.now() / 1000);
    expect((await q.found(`FILTER ${now - 100} ${now + 100}`)).n).to.equal(6);
    expect((await q.found('REGEX ^[ab]')).n).to.equal(2);
    expect((await q.found('RECENT 2')).lines.map(stripStamp)).to.deep.equal(LINES.slice(4));
    expect((await q.found('RECENT 100')).n).to.equal(6);
    expect((await q.found('RECENT 0')).n).to.equal(0);
  });

  it('answers errors with ERROR: and keeps the connection usable', async () => {
    const cases = [
      'NOPE',
      'QUERY',
      'QUERY keyword=',
      'QUERY color=red',
      'QUERY keyword=a bogus',
      'QUERY operator=XOR keyword=a',
      'QUERY regex=(unclosed',
      'QUERY time_from=yesterday',
      'QUERY time_from=200 time_to=100',
      'QUERY severity=loud',
      'SEARCH',
      'FILTER 1',
      'FILTER a b',
      'REGEX',
      'REGEX [z-a]',
      'RECENT',
      'RECENT -1',
      'RECENT many',
    ];
    for (const c of cases) expect(await q.ask(c), c).to.match(/^ERROR: /);
    expect(await q.ask('COUNT')).to.equal('COUNT: 6');
  });

  it('pipelined commands are answered in order', async () => {
    q.send('COUNT\nSEARCH alpha\nCOUNT\nRECENT 1\nCOUNT');
    expect(await q.line()).to.equal('COUNT: 6');
    expect(await q.line()).to.equal('FOUND: 1 matches');
    expect(stripStamp(await q.line())).to.equal(LINES[0]);
    expect(await q.line()).to.equal('COUNT: 6');
    expect(await q.line()).to.equal('FOUND: 1 matches');
    expect(stripStamp(await q.line())).to.equal(LINES[5]);
    expect(await q.line()).to.equal('COUNT: 6');
  });

  it('CLEAR: a wrong token is refused; loopback or the right token clears', async () => {
    expect(await q.ask('CLEAR wrong')).to.match(/^ERROR: /);
    expect(await q.ask('COUNT')).to.equal('COUNT: 6');
    expect(await q.ask('CLEAR s3cret')).to.equal('CLEARED: 6');
    expect(await q.ask('COUNT')).to.equal('COUNT: 0');
    await sendAndClose(info.ingestPort, 'x\n');
    await waitFor(() => lc.stats().current === 1);
    expect(await q.ask('CLEAR')).to.equal('CLEARED: 1'); // loopback client
    expect(await q.ask('STATS')).to.match(/^STATS: Total=7, Dropped=0, Current=0, /);
  });

  it('QUIT closes the connection', async () => {
    const c = await QueryClient.open(info.queryPort);
    c.send('QUIT');
    await waitFor(() => c.closed, 3000, 'close after QUIT');
  });
});

describe('query access control', () => {
  it('isLoopback recognises IPv4, IPv6 and mapped loopback only', async () => {
    const { isLoopback } = await import('../../src/query/query-port');
    expect(isLoopback('127.0.0.1')).to.equal(true);
    expect(isLoopback('127.5.5.5')).to.equal(true);
    expect(isLoopback('::1')).to.equal(true);
    expect(isLoopback('::ffff:127.0.0.1')).to.equal(true);
    expect(isLoopback('10.0.0.1')).to.equal(false);
    expect(isLoopback('::ffff:10.0.0.1')).to.equal(false);
    expect(isLoopback(undefined)).to.equal(false);
  });
});
