// Access control of the whole server over real sockets: separate bind addresses, AUTH on
// the query port (loopback made untrusted with queryAuthLoopback, so it runs anywhere),
// the allow lists, and the configurations it refuses to start with.
import { expect } from 'chai';

import { connectTo, sendAndClose, waitFor } from '@logcaster/testkit';

import { createLogCaster, type LogCaster, type StartInfo } from '../../src';
import { AccessConfigError, type AccessEvent } from '../../src/access/config';
import { QueryClient, startServer, stripStamp } from '../support/helpers';

const TOKEN = 'server-access-token-4f9a1c2e';

async function closedAnswer(port: number, send: string): Promise<string> {
  return (await sendAndClose(port, send)).toString();
}

describe('access: query port AUTH (loopback not trusted)', function () {
  this.timeout(30000);
  let lc: LogCaster;
  let info: StartInfo;
  const events: AccessEvent[] = [];

  before(async () => {
    ({ lc, info } = await startServer({ queryTokens: [TOKEN], queryAuthLoopback: true }));
    lc.on('access', (e) => events.push(e));
    await sendAndClose(info.ingestPort, 'one secret line\ntwo secret lines\n');
    await waitFor(() => lc.stats().current === 2);
  });
  after(async () => {
    await lc?.stop();
  });

  it('answers "authentication required" to a first command other than AUTH, then closes', async () => {
    const q = await QueryClient.open(info.queryPort);
    q.send('RECENT 1000000');
    expect(await q.line()).to.equal('ERROR: authentication required');
    await waitFor(() => q.closed, 5000, 'the server to close');
    expect(lc.stats().authRequired).to.equal(1);
  });

  it('serves an authenticated client, commands pipelined behind AUTH in one packet', async () => {
    const answer = await closedAnswer(info.queryPort, `AUTH ${TOKEN}\nCOUNT\nRECENT 1\n`);
    const lines = answer.split('\n');
    expect(lines.slice(0, 3)).to.deep.equal(['AUTH: OK', 'COUNT: 2', 'FOUND: 1 matches']);
    expect(stripStamp(lines[3])).to.equal('two secret lines');
  });

  it('closes after a wrong token, counts it in STATS and reports it as an access event', async () => {
    const before = lc.stats().authFailures;
    const q = await QueryClient.open(info.queryPort);
    q.send('AUTH wrong-token');
    q.send('RECENT 10');
    expect(await q.line()).to.equal('ERROR: authentication failed');
    await waitFor(() => q.closed, 5000, 'the server to close');
    expect(lc.stats().authFailures).to.equal(before + 1);
    expect(events).to.deep.include({ kind: 'auth-failed', address: '127.0.0.1', failures: 1 });
    const q2 = await QueryClient.open(info.queryPort);
    q2.send(`AUTH ${TOKEN}`);
    expect(await q2.line()).to.equal('AUTH: OK');
    expect(await q2.ask('STATS')).to.match(/AuthFailures=1, AuthRequired=1, IngestDenied=0, QueryDenied=0/);
    q2.close();
  });
});

describe('access: bind addresses and allow lists', function () {
  this.timeout(30000);
  let lc: LogCaster | undefined;
  afterEach(async () => {
    await lc?.stop();
    lc = undefined;
  });

  it('keeps the query port on loopback when --host opens ingest to the network', async () => {
    lc = createLogCaster({ host: '0.0.0.0', port: 0, queryPort: 0 });
    const info = await lc.start();
    expect(info.host).to.equal('0.0.0.0');
    expect(info.queryHost).to.equal('127.0.0.1');
  });

  it('closes ingest connections from outside --allow at accept, stores nothing and counts them', async () => {
    const events: AccessEvent[] = [];
    lc = createLogCaster({ port: 0, queryPort: 0, allow: ['10.0.0.0/8'] });
    lc.on('access', (e) => events.push(e));
    const info = await lc.start();
    const s = await connectTo(info.ingestPort);
    s.on('error', () => {});
    s.write('should not be stored\n');
    await new Promise((r) => s.once('close', r));
    expect(lc.stats().ingestDenied).to.equal(1);
    expect(lc.stats().total).to.equal(0);
    expect(events).to.deep.equal([{ kind: 'refused', port: 'ingest', address: '127.0.0.1' }]);
    // The query port has its own list (none): still reachable.
    const q = await QueryClient.open(info.queryPort);
    expect(await q.ask('COUNT')).to.equal('COUNT: 0');
    q.close();
  });

  it('admits what --allow and --query-allow list', async () => {
    lc = createLogCaster({ port: 0, queryPort: 0, allow: ['127.0.0.1/32'], queryAllow: ['10.9.9.9', '127.0.0.0/8'] });
    const info = await lc.start();
    await sendAndClose(info.ingestPort, 'allowed line\n');
    await waitFor(() => lc!.stats().current === 1);
    expect(await closedAnswer(info.queryPort, 'COUNT\n')).to.equal('COUNT: 1\n');
  });

  it('closes query connections from outside --query-allow before any AUTH', async () => {
    lc = createLogCaster({ port: 0, queryPort: 0, queryAllow: ['192.168.0.0/16'], queryTokens: [TOKEN] });
    const info = await lc.start();
    expect(await closedAnswer(info.queryPort, `AUTH ${TOKEN}\nCOUNT\n`)).to.equal('');
    expect(lc.stats()).to.include({ queryDenied: 1, ingestDenied: 0, authFailures: 0 });
  });
});

describe('access: configurations refused at start', () => {
  it('a non-loopback query host without a token', () => {
    for (const queryHost of ['0.0.0.0', '::', '192.168.1.10']) {
      expect(() => createLogCaster({ queryHost }), queryHost).to.throw(AccessConfigError, /reachable from other machines, with no query token.*--query-insecure/);
    }
  });
  it('but not with a token, or with queryInsecure said explicitly, or on loopback', () => {
    expect(() => createLogCaster({ queryHost: '0.0.0.0', queryTokens: [TOKEN] })).not.to.throw();
    expect(() => createLogCaster({ queryHost: '0.0.0.0', queryInsecure: true })).not.to.throw();
    expect(() => createLogCaster({ queryHost: '::1' })).not.to.throw();
  });
  it('queryAuthLoopback without a token, bad tokens, bad allow lists', () => {
    expect(() => createLogCaster({ queryAuthLoopback: true })).to.throw(AccessConfigError, /needs a query token/);
    expect(() => createLogCaster({ queryTokens: ['has space'] })).to.throw(/spaces/);
    expect(() => createLogCaster({ allow: ['10.0.0.0/40'] })).to.throw(/prefix length/);
    expect(() => createLogCaster({ queryAllow: ['nowhere'] })).to.throw(/not an IP address/);
  });
});
