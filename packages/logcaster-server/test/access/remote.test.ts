// Access control seen from another machine: a client in a network namespace joined by a
// veth pair connects from a real non-loopback address. Skipped, with the reason in the
// title, where namespaces cannot be made (not root, no `ip`).
import { expect } from 'chai';

import { createNetNamespace, netnsUnavailable, opensslUnavailable, sendAndClose, TCP_CLIENT_SCRIPT, testPki, TLS_CLIENT_SCRIPT, waitFor, type NetNamespace } from '@logcaster/testkit';

import type { LogCaster } from '../../src';
import { stripStamp, startServer } from '../support/helpers';

const TOKEN = 'remote-test-token-77c1d0e3a9';
const why = netnsUnavailable();
const describeNetns = why ? describe.skip : describe;

describeNetns(`access: from another address (network namespace)${why ? ` — skipped: ${why}` : ''}`, function () {
  this.timeout(60000);
  let ns: NetNamespace;
  let lc: LogCaster | undefined;

  /** `printf input | nc -N host port`, run inside the namespace. */
  const remote = async (port: number, input: string): Promise<{ code: number | null; out: string; err: string }> => {
    const r = await ns.run(process.execPath, [TCP_CLIENT_SCRIPT, ns.hostAddress, String(port)], { input });
    return { code: r.code, out: r.stdout.toString(), err: r.stderr };
  };

  before(() => (ns = createNetNamespace()));
  after(() => ns?.close());
  afterEach(async () => {
    await lc?.stop();
    lc = undefined;
  });

  it('by default the query port is not reachable from the network even with --host 0.0.0.0', async () => {
    let info;
    ({ lc, info } = await startServer({ host: '0.0.0.0' }));
    const ingest = await remote(info.ingestPort, 'from the namespace\n');
    expect(ingest.code).to.equal(0);
    await waitFor(() => lc!.stats().current === 1);
    const query = await remote(info.queryPort, 'RECENT 10\n');
    expect(query.out).to.equal('');
    expect(query.err).to.match(/ECONNREFUSED/);
    // The line did come from the namespace's address.
    const local = (await sendAndClose(info.queryPort, 'RECENT 1\n')).toString().split('\n');
    expect(stripStamp(local[1])).to.equal('from the namespace');
  });

  it('a remote query client without AUTH is refused; with the token it is served; loopback needs none', async () => {
    let info;
    ({ lc, info } = await startServer({ host: '0.0.0.0', queryHost: '0.0.0.0', queryTokens: [TOKEN] }));
    await sendAndClose(info.ingestPort, 'secret one\nsecret two\n');
    await waitFor(() => lc!.stats().current === 2);
    const refused = await remote(info.queryPort, 'RECENT 1000000\n');
    expect(refused.out).to.equal('ERROR: authentication required\n');
    const wrong = await remote(info.queryPort, 'AUTH guessed-token\nRECENT 1000000\n');
    expect(wrong.out).to.equal('ERROR: authentication failed\n');
    // Held back after that failure, and the client half-closed at once (nc -N): still answered.
    const served = await remote(info.queryPort, `AUTH ${TOKEN}\nRECENT 1\n`);
    const lines = served.out.split('\n');
    expect(lines.slice(0, 2)).to.deep.equal(['AUTH: OK', 'FOUND: 1 matches']);
    expect(stripStamp(lines[2])).to.equal('secret two');
    expect(lc.stats()).to.include({ authFailures: 1, authRequired: 1 });
    expect((await sendAndClose(info.queryPort, 'COUNT\n')).toString()).to.equal('COUNT: 2\n');
  });

  it('--query-insecure lets remote clients query without AUTH, as it says', async () => {
    let info;
    ({ lc, info } = await startServer({ queryHost: '0.0.0.0', queryInsecure: true }));
    expect((await remote(info.queryPort, 'COUNT\n')).out).to.equal('COUNT: 0\n');
  });

  const noOpenssl = opensslUnavailable();
  it(`mutual TLS from another address: a verified client certificate is the credential, without one nothing is read${noOpenssl ? ` — skipped: ${noOpenssl}` : ''}`, async function () {
    if (noOpenssl) this.skip();
    const pki = testPki();
    let info;
    ({ lc, info } = await startServer({ queryHost: '0.0.0.0', queryTls: true, tlsCert: pki.server.certFile, tlsKey: pki.server.keyFile, tlsCa: pki.caFile }));
    await sendAndClose(info.ingestPort, 'secret line\n');
    await waitFor(() => lc!.stats().current === 1);
    /** node:tls inside the namespace; it exits after `lines` answer lines or the server's close. */
    const tlsRemote = async (input: string, lines: number, cert: 'client' | 'none'): Promise<string> => {
      const own = cert === 'client' ? [pki.client.certFile, pki.client.keyFile] : ['-', '-'];
      const r = await ns.run(process.execPath, [TLS_CLIENT_SCRIPT, ns.hostAddress, String(info.queryPort), pki.caFile, ...own, String(lines)], { input });
      expect(r.code, r.stderr).to.equal(0);
      return r.stdout.toString();
    };
    expect(await tlsRemote('RECENT 10\n', 1, 'none')).to.equal('ERROR: authentication required\n');
    const served = (await tlsRemote('RECENT 10\n', 2, 'client')).split('\n');
    expect(served[0]).to.equal('FOUND: 1 matches');
    expect(stripStamp(served[1])).to.equal('secret line');
    expect(lc.stats()).to.include({ authCertificates: 1, authRequired: 1 });
  });

  it('--allow closes ingest connections from elsewhere at accept and counts them', async () => {
    let info;
    ({ lc, info } = await startServer({ host: '0.0.0.0', allow: ['127.0.0.0/8'] }));
    const events: unknown[] = [];
    lc.on('access', (e) => events.push(e));
    await remote(info.ingestPort, 'must not be stored\n');
    await sendAndClose(info.ingestPort, 'local line\n');
    await waitFor(() => lc!.stats().current === 1);
    expect(lc.stats().ingestDenied).to.equal(1);
    expect(events).to.deep.equal([{ kind: 'refused', port: 'ingest', address: ns.peerAddress }]);
    await remote(info.ingestPort, 'still not\n');
    await waitFor(() => lc!.stats().ingestDenied === 2);
    expect(lc.stats().total).to.equal(1);
  });
});
