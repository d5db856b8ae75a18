// TLS on the server's ports with real clients: `openssl s_client` and node:tls to the
// RFC 5425 port (--tls-port) and the query port (--query-tls), HTTPS on the HTTP port,
// mutual TLS (a verified client certificate replaces AUTH; --tls-ca makes one required
// for ingest), and the CLI's refusal of bad certificate files. Certificates are made with
// the openssl command line (testkit pki).
import { expect } from 'chai';
import { get as httpsGet } from 'node:https';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';

import { connectTo, delay, opensslClient, opensslUnavailable, rmDir, testPki, tlsPeer, tmpDir, waitFor, type OpensslClient, type TestPki, type TlsPeer } from '@logcaster/testkit';

import type { LogCaster, LogCasterOptions } from '../../src';
import { commonName } from '../../src/access/tls-config';
import { runCli, runSync, startCli, type Running } from '../support/cli';
import { stripStamp, startServer } from '../support/helpers';

const TOKEN = 'tls-test-query-token-4f1e9c07';
const why = opensslUnavailable();

/** RFC 5425 / RFC 6587 octet counting: "<len> <msg>". */
const frame = (msg: string): string => `${Buffer.byteLength(msg)} ${msg}`;

(why ? describe.skip : describe)(`access: TLS ports${why ? ` — skipped: ${why}` : ''}`, function () {
  this.timeout(30000);
  let pki: TestPki;
  let lc: LogCaster | undefined;
  const clients: (OpensslClient | TlsPeer)[] = [];

  before(() => (pki = testPki()));
  afterEach(async () => {
    for (const c of clients.splice(0)) 'kill' in c ? c.kill() : c.socket.destroy();
    await lc?.stop();
    lc = undefined;
  });

  const files = (): Pick<LogCasterOptions, 'tlsCert' | 'tlsKey'> => ({ tlsCert: pki.server.certFile, tlsKey: pki.server.keyFile });
  const s_client = (port: number, own?: 'client' | 'rogueClient'): OpensslClient => {
    const c = opensslClient(port, { caFile: pki.caFile, ...(own ? { certFile: pki[own].certFile, keyFile: pki[own].keyFile } : {}) });
    clients.push(c);
    return c;
  };
  const nodeTls = async (port: number, own?: 'client' | 'rogueClient'): Promise<TlsPeer> => {
    const p = await tlsPeer(port, { ca: pki.ca, ...(own ? { cert: pki[own].cert, key: pki[own].key } : {}) });
    clients.push(p);
    return p;
  };
  const storedLines = (): string[] => {
    const store = lc!.store;
    const out: string[] = [];
    for (let seq = store.firstSeq; seq < store.nextSeq; seq++) out.push(store.line(seq).toString());
    return out;
  };

  describe('--tls-port (RFC 5425 ingest)', () => {
    it('openssl s_client sends octet-counted frames (and lines): every one stored, from its address', async () => {
      let info;
      ({ lc, info } = await startServer({ ...files(), tlsPort: 0 }));
      expect(info.tlsPort).to.be.a('number').and.not.equal(info.ingestPort);
      const c = s_client(info.tlsPort!);
      await waitFor(() => /CONNECTION ESTABLISHED/.test(c.stderr()), 10000, () => `the handshake; stderr: ${c.stderr()}`);
      const msgs = ['<134>1 2026-12-02T01:00:00Z host app - - - first frame', '<134>1 2026-12-02T01:00:01Z host app - - - second\nframe with a newline inside'];
      c.write(msgs.map(frame).join(''));
      expect(await c.end()).to.equal(0);
      await waitFor(() => lc!.stats().current === 2, 10000, () => `2 lines, have ${storedLines().join(' | ')}`);
      expect(storedLines()).to.deep.equal(msgs);
      expect(lc.store.peer(lc.store.nextSeq - 1)).to.equal('127.0.0.1');
      // A newline-framed client on the same port is stored too (what rsyslog sends by default).
      const d = s_client(info.tlsPort!);
      d.write('plain line one\nplain line two\n');
      expect(await d.end()).to.equal(0);
      await waitFor(() => lc!.stats().current === 4);
      expect(storedLines().slice(2)).to.deep.equal(['plain line one', 'plain line two']);
      expect(lc.stats().tlsHandshakes).to.equal(2);
    });

    it('a plain-text client on the TLS port stores nothing, is counted, and the server goes on', async () => {
      let info;
      ({ lc, info } = await startServer({ ...files(), tlsPort: 0 }));
      const plain = await connectTo(info.tlsPort!);
      plain.on('error', () => {});
      plain.write('this is not a TLS record\n'.repeat(20));
      await new Promise((r) => plain.once('close', r));
      await waitFor(() => lc!.stats().tlsHandshakeFailures === 1);
      expect(lc.stats().current).to.equal(0);
      const p = await nodeTls(info.tlsPort!);
      p.socket.end(frame('after the bad client'));
      await waitFor(() => lc!.stats().current === 1);
      expect(storedLines()).to.deep.equal(['after the bad client']);
    });

    it('with --tls-ca only clients with a certificate it verifies get in', async () => {
      let info;
      ({ lc, info } = await startServer({ ...files(), tlsCa: pki.caFile, tlsPort: 0 }));
      // No certificate: the handshake fails (TLS 1.3 reports it after the client's Finished).
      const none = s_client(info.tlsPort!);
      none.write(frame('no certificate'));
      await none.exited;
      const rogue = s_client(info.tlsPort!, 'rogueClient');
      rogue.write(frame('untrusted certificate'));
      await rogue.exited;
      await waitFor(() => lc!.stats().tlsHandshakeFailures === 2, 10000, () => `2 failed handshakes, stats ${JSON.stringify(lc!.stats())}`);
      const good = s_client(info.tlsPort!, 'client');
      good.write(frame('trusted certificate'));
      expect(await good.end()).to.equal(0);
      await waitFor(() => lc!.stats().current === 1);
      expect(storedLines()).to.deep.equal(['trusted certificate']);
      expect(lc.stats().tlsHandshakes).to.equal(1);
    });
  });

  describe('--query-tls', () => {
    it('node:tls and openssl s_client query over TLS; a plain-text client gets no answer', async () => {
      let info;
      ({ lc, info } = await startServer({ ...files(), queryTls: true }));
      await (await connectTo(info.ingestPort)).end('over plain ingest\n');
      await waitFor(() => lc!.stats().current === 1);
      const p = await nodeTls(info.queryPort);
      p.socket.write('RECENT 1\n');
      await waitFor(() => p.text().split('\n').length >= 3);
      const [head, row] = p.text().split('\n');
      expect(head).to.equal('FOUND: 1 matches');
      expect(stripStamp(row)).to.equal('over plain ingest');
      const c = s_client(info.queryPort);
      c.write('COUNT\n');
      await c.waitForOutput(/COUNT: 1\n/);
      await c.end();
      const plain = await connectTo(info.queryPort);
      const got: Buffer[] = [];
      plain.on('data', (d) => got.push(d));
      plain.on('error', () => {});
      plain.write('COUNT\n');
      await new Promise((r) => plain.once('close', r));
      expect(Buffer.concat(got).toString()).not.to.match(/COUNT/);
    });

    it('mutual TLS replaces AUTH: a verified client certificate queries, without one AUTH is needed (loopback not trusted)', async () => {
      let info;
      ({ lc, info } = await startServer({ ...files(), tlsCa: pki.caFile, queryTls: true, queryAuthLoopback: true, queryTokens: [TOKEN] }));
      const withCert = await nodeTls(info.queryPort, 'client');
      expect(withCert.socket.getPeerCertificate().subject.CN).to.equal('localhost');
      withCert.socket.write('COUNT\n');
      await waitFor(() => withCert.text() === 'COUNT: 0\n', 10000, () => `COUNT answer, got ${JSON.stringify(withCert.text())}`);
      const noCert = await nodeTls(info.queryPort);
      noCert.socket.write('COUNT\n');
      await noCert.closed;
      expect(noCert.text()).to.equal('ERROR: authentication required\n');
      const token = await nodeTls(info.queryPort);
      token.socket.write(`AUTH ${TOKEN}\nCOUNT\n`);
      await waitFor(() => token.text() === 'AUTH: OK\nCOUNT: 0\n', 10000, () => `AUTH then COUNT, got ${JSON.stringify(token.text())}`);
      // A certificate from a CA nobody trusts does not authenticate (the handshake goes on: AUTH could still follow).
      const rogue = await nodeTls(info.queryPort, 'rogueClient');
      rogue.socket.write('COUNT\n');
      await rogue.closed;
      expect(rogue.text()).to.equal('ERROR: authentication required\n');
      expect(lc.stats()).to.include({ authCertificates: 1, authRequired: 2 });
      // openssl s_client with the client certificate: the command line an operator would use.
      const c = s_client(info.queryPort, 'client');
      c.write('COUNT\n');
      await c.waitForOutput(/^COUNT: 0\n/);
      await c.end();
    });

    it('--query-cert-cn: only certificates with a listed common name authenticate', async () => {
      let info;
      ({ lc, info } = await startServer({ ...files(), tlsCa: pki.caFile, queryTls: true, queryAuthLoopback: true, queryCertCn: ['log-reader'] }));
      const p = await nodeTls(info.queryPort, 'client');
      p.socket.write('COUNT\n');
      await p.closed;
      // No token is configured: AUTH cannot help either, and the answer says so.
      expect(p.text()).to.equal('ERROR: authentication required\n');
      await lc.stop();
      ({ lc, info } = await startServer({ ...files(), tlsCa: pki.caFile, queryTls: true, queryAuthLoopback: true, queryCertCn: ['log-reader', 'test-client'] }));
      const q = await nodeTls(info.queryPort, 'client');
      q.socket.write('COUNT\n');
      await waitFor(() => q.text() === 'COUNT: 0\n');
      const r = await nodeTls(info.queryPort);
      r.socket.write(`AUTH ${TOKEN}\n`);
      await r.closed;
      expect(r.text()).to.equal('ERROR: authentication required (this server takes client certificates, not tokens)\n');
    });

    it('the HTTP port speaks HTTPS with the same certificate', async () => {
      let info;
      ({ lc, info } = await startServer({ ...files(), queryTls: true, httpPort: 0 }));
      const { status, body } = await new Promise<{ status: number | undefined; body: string }>((resolve, reject) => {
        const req = httpsGet({ host: '127.0.0.1', port: info.httpPort, path: '/health', servername: 'localhost', ca: pki.ca }, (res) => {
          let b = '';
          res.on('data', (d) => (b += d));
          res.on('end', () => resolve({ status: res.statusCode, body: b }));
        });
        req.on('error', reject);
      });
      expect(status).to.equal(200);
      expect(JSON.parse(body)).to.include({ status: 'ok' });
    });
  });

  it('commonName reads the CN of an RFC 2253 subject, escapes undone', () => {
    expect(commonName('CN=test-client,O=LogCaster Tests')).to.equal('test-client');
    expect(commonName('O=Example,CN=reader')).to.equal('reader');
    expect(commonName('CN=Doe\\, Jane,O=X')).to.equal('Doe, Jane');
    expect(commonName('CN=caf\\C3\\A9')).to.equal('caf\u00e9');
    expect(commonName('O=no name here')).to.equal(undefined);
  });
});

(why ? describe.skip : describe)(`access: TLS options of the logcaster command${why ? ` — skipped: ${why}` : ''}`, function () {
  this.timeout(30000);
  let pki: TestPki;
  let dir: string;
  let run: Running | undefined;
  before(() => {
    pki = testPki();
    dir = tmpDir('cli-tls');
  });
  after(() => rmDir(dir));
  afterEach(async () => {
    if (run) {
      run.child.kill('SIGTERM');
      await run.exited;
      run = undefined;
    }
  });
  const refuses = (args: string[], message: RegExp): void => {
    const r = runSync(['--data-dir', 'none', ...args]);
    expect(r.status, r.stderr).to.equal(2);
    expect(r.stderr).to.match(message);
    expect(r.stdout).to.equal('');
  };

  it('bad or missing certificate files: exit 2 with a message naming the option and the file', () => {
    const missing = path.join(dir, 'missing.pem');
    const text = path.join(dir, 'not-pem.txt');
    writeFileSync(text, 'hello\n');
    const server = ['--tls-cert', pki.server.certFile, '--tls-key', pki.server.keyFile];
    refuses(['--tls-port', '0'], /^logcaster: --tls-port needs --tls-cert <file> and --tls-key <file>\n/);
    refuses(['--tls-port', '0', '--tls-cert', missing, '--tls-key', pki.server.keyFile], new RegExp(`^logcaster: cannot read --tls-cert ${missing}: ENOENT\\n`));
    refuses(['--tls-port', '0', '--tls-cert', text, '--tls-key', pki.server.keyFile], new RegExp(`^logcaster: --tls-cert ${text} holds no PEM certificate\\n`));
    refuses(['--tls-port', '0', '--tls-cert', pki.server.certFile, '--tls-key', pki.server.certFile], /^logcaster: --tls-key .* holds no PEM private key\n/);
    refuses(['--tls-port', '0', '--tls-cert', pki.server.certFile, '--tls-key', pki.client.keyFile], /^logcaster: --tls-key .*client\.key is not the key of --tls-cert .*server\.pem\n/);
    refuses(['--query-tls', ...server, '--tls-ca', text], /^logcaster: --tls-ca .* holds no PEM certificate\n/);
    refuses(server, /^logcaster: --tls-cert, --tls-key and --tls-ca need a port to use them/);
    refuses(['--query-tls', ...server, '--query-cert-cn', 'reader'], /^logcaster: --query-cert-cn needs --query-tls and --tls-ca\n/);
  });

  it('logcaster send, query and stats speak TLS (--tls, --tls-ca, --tls-cert/--tls-key); an unverifiable server is refused (exit 3)', async () => {
    run = await startCli(['--data-dir', 'none', '--query-tls', '--tls-port', '0', '--tls-cert', pki.server.certFile, '--tls-key', pki.server.keyFile, '--tls-ca', pki.caFile, '--query-auth-loopback']);
    const tlsPort = /\btls=[^ ]+:(\d+)/.exec(run.line)![1];
    const own = ['--tls-ca', pki.caFile, '--tls-cert', pki.client.certFile, '--tls-key', pki.client.keyFile];
    const sent = await runCli(['send', '--port', tlsPort, ...own], 'sent by logcaster send over TLS\nand a second line\n');
    expect(sent.status, sent.stderr).to.equal(0);
    const found = await runCli(['query', '--query-port', String(run.queryPort), ...own, 'keyword=TLS']);
    expect(found.status, found.stderr).to.equal(0);
    expect(found.stdout.trim().split('\n').map(stripStamp)).to.deep.equal(['sent by logcaster send over TLS']);
    const stats = await runCli(['stats', '--json', '--query-port', String(run.queryPort), ...own]);
    expect(stats.status, stats.stderr).to.equal(0);
    // query and stats logged in by certificate (send went to the ingest side).
    expect(JSON.parse(stats.stdout)).to.include({ linesReceived: 2, authCertificates: 2 });
    // Without the CA, Node's root store does not know the test CA (the server sends it in its chain): refused.
    const untrusted = await runCli(['stats', '--tls', '--query-port', String(run.queryPort)]);
    expect(untrusted.status, untrusted.stderr).to.equal(3);
    expect(untrusted.stderr).to.match(/cannot connect to the query port at 127\.0\.0\.1:\d+: SELF_SIGNED_CERT_IN_CHAIN/);
    // Without a client certificate (loopback not trusted here, no token): not authenticated.
    const anonymous = await runCli(['stats', '--tls-ca', pki.caFile, '--query-port', String(run.queryPort)]);
    expect(anonymous.status).to.equal(2);
    expect(anonymous.stderr).to.match(/authentication required/);
  });

  it('a non-loopback --query-host starts with client certificates as the credential; the start line shows the TLS ports', async () => {
    refuses(['--query-host', '0.0.0.0', '--query-tls', '--tls-cert', pki.server.certFile, '--tls-key', pki.server.keyFile], /with no query token: .*--tls-ca/);
    const env = { ...process.env };
    delete env.LOGCASTER_QUERY_TOKEN;
    run = await startCli(
      ['--data-dir', 'none', '--query-host', '0.0.0.0', '--query-tls', '--tls-port', '0', '--tls-cert', pki.server.certFile, '--tls-key', pki.server.keyFile, '--tls-ca', pki.caFile],
      env,
    );
    expect(run.line).to.match(/ ingest=127\.0\.0\.1:\d+ query=tls:\/\/0\.0\.0\.0:\d+ http=https:\/\/0\.0\.0\.0:\d+ tls=127\.0\.0\.1:\d+ /);
    const tlsPort = Number(/ tls=[^ ]+:(\d+)/.exec(run.line)![1]);
    const c = opensslClient(tlsPort, { caFile: pki.caFile, certFile: pki.client.certFile, keyFile: pki.client.keyFile });
    try {
      c.write(frame('through the CLI'));
      expect(await c.end()).to.equal(0);
    } finally {
      c.kill();
    }
    const q = opensslClient(run.queryPort, { caFile: pki.caFile, certFile: pki.client.certFile, keyFile: pki.client.keyFile });
    try {
      // Asked until the line (sent before s_client's close_notify) is counted.
      const until = Date.now() + 10000;
      while (!/LinesReceived=1,/.test(q.stdout()) && Date.now() < until) {
        q.write('STATS\n');
        await delay(100);
      }
      const stats = q.stdout().trim().split('\n').pop();
      expect(stats).to.match(/LinesReceived=1,.*TlsHandshakes=2, TlsHandshakeFailures=0, AuthCertificates=1,/);
    } finally {
      q.kill();
    }
  });
});
