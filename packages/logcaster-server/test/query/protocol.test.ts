// The query protocol over real sockets: every command and its errors.
import { expect } from 'chai';

import type { LogCaster, StartInfo } from '../../src';
import { formatTimestamp } from '../../src/query/format';
import { HELP_TEXT } from '../../src/query/query-port';
import { sendAndClose, waitFor } from '@logcaster/testkit';
import { QueryClient, startServer, stripStamp } from '../support/helpers';

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

  before(async () => {
    ({ lc, info } = await startServer({ capacity: 1000, adminToken: 's3cret' }));
    t0 = Date.now();
    await sendAndClose(info.ingestPort, LINES.join('\n') + '\n');
    await waitFor(() => lc.stats().current === LINES.length);
    q = await QueryClient.open(info.queryPort);
  });
  after(async () => {
    q?.close();
    await lc?.stop();
  });

  it('HELP lists the commands', async () => {
    q.send('HELP');
    const got: string[] = [];
    for (;;) {
      const l = await q.line();
      got.push(l);
      if (l === 'END') break;
    }
    expect(got.join('\n') + '\n').to.equal(HELP_TEXT);
    for (const c of ['COUNT', 'STATS', 'QUERY', 'SEARCH', 'FILTER', 'REGEX', 'RECENT', 'CLEAR']) expect(HELP_TEXT).to.include(c);
  });

  it('COUNT', async () => {
    expect(await q.ask('COUNT')).to.equal(`COUNT: ${LINES.length}`);
    expect(await q.ask('count')).to.equal(`COUNT: ${LINES.length}`); // case-insensitive
  });

  it('STATS starts with the original fields and adds more on the same line', async () => {
    const s = await q.ask('STATS');
    expect(s).to.match(/^STATS: Total=6, Dropped=0, Current=6, Clients=0, Backend=\w+, Connections=1, /);
    for (const f of ['LinesReceived=6', 'BytesReceived=', 'Truncated=0', 'Persisted=0', 'Uptime=']) expect(s).to.include(f);
  });

  it('QUERY keyword=, with the timestamp prefix in local time', async () => {
    const r = await q.found('QUERY keyword=error');
    expect(r.n).to.equal(2);
    expect(r.lines.map(stripStamp)).to.deep.equal(['alpha error disk full', 'gamma error cpu melted']);
    const stamp = r.lines[0].slice(1, 20);
    const ms = lc.store.time(lc.store.firstSeq);
    expect(stamp).to.equal(formatTimestamp(ms));
    expect(Math.abs(ms - t0)).to.be.below(5000);
  });

  it('QUERY keywords= with AND (default) and OR', async () => {
    expect((await q.found('QUERY keywords=error,cpu')).lines.map(stripStamp)).to.deep.equal(['gamma error cpu melted']);
    expect((await q.found('QUERY keywords=error,cpu operator=AND')).n).to.equal(1);
    expect((await q.found('QUERY keywords=disk,good operator=OR')).lines.map(stripStamp)).to.deep.equal(['alpha error disk full', 'delta info all good']);
    expect((await q.found('QUERY keywords=disk,good operator=or')).n).to.equal(2);
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
