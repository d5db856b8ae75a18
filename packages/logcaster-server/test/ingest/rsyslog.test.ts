// A real rsyslog forwards numbered lines to LogCaster — omfwd over UDP, omfwd over
// TCP with octet counting, omrelp — and every one is found (the method of rsyslog's
// own tests/chkseq.c), and omfwd over TLS (StreamDriver "ossl", RFC 5425) to --tls-port
// with certificates both ways. Last, omrelp keeps forwarding across a kill -9 of LogCaster
// under --fsync always: nothing is lost (duplicates are allowed: at least once).
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { opensslUnavailable, rmDir, rsyslogUnavailable, startRsyslog, testPki, tmpDir, waitFor, type Rsyslog } from '@logcaster/testkit';

import type { LogCaster } from '../../src';
import { startCli } from '../support/cli';
import { QueryClient, startServer } from '../support/helpers';

const MARK = 'rsyslog-forwarded';

/** A file of n numbered lines for imfile to read from the start. */
function numberedFile(dir: string, n: number): string {
  const file = path.join(dir, 'in.log');
  fs.writeFileSync(file, Array.from({ length: n }, (_, i) => `${MARK} ${i}\n`).join(''));
  return file;
}

function imfile(file: string): string {
  return `module(load="imfile")\ninput(type="imfile" file="${file}" tag="fwd" freshStartTail="off")`;
}

/** The numbers of every stored line carrying MARK (from the query port). */
async function storedNumbers(queryPort: number): Promise<number[]> {
  const q = await QueryClient.open(queryPort);
  try {
    const { lines } = await q.found(`QUERY keyword=${MARK}`);
    return lines.map((l) => Number(/rsyslog-forwarded (\d+)$/.exec(l)?.[1] ?? NaN));
  } finally {
    q.close();
  }
}

function missingOf(numbers: number[], n: number): number[] {
  const seen = new Set(numbers);
  return Array.from({ length: n }, (_, i) => i).filter((i) => !seen.has(i));
}

describe('rsyslog forwarding to LogCaster', function () {
  this.timeout(60000);
  let dir: string;
  let rs: Rsyslog | undefined;
  let lc: LogCaster | undefined;
  const why = (body: string): string | null => {
    const probeDir = tmpDir('rsyslog-probe');
    try {
      return rsyslogUnavailable(probeDir, `${imfile(numberedFile(probeDir, 1))}\n${body}`);
    } finally {
      rmDir(probeDir);
    }
  };
  const noFwd = why('action(type="omfwd" target="127.0.0.1" port="9" protocol="udp")');
  const noRelp = why('module(load="omrelp")\naction(type="omrelp" target="127.0.0.1" port="9")');

  beforeEach(() => {
    dir = tmpDir('rsyslog');
  });
  afterEach(async () => {
    await rs?.stop();
    await lc?.stop();
    rs = undefined;
    lc = undefined;
    rmDir(dir);
  });

  const forwards = (title: string, skip: string | null, n: number, start: (lc: { udpPort?: number; ingestPort: number; relpPort?: number }) => string): void => {
    it(`${title}${skip ? ` — skipped: ${skip}` : ''}`, async function () {
      if (skip) this.skip();
      const s = await startServer({ udpPort: 0, relpPort: 0, capacity: n * 2 });
      lc = s.lc;
      rs = startRsyslog(dir, `${imfile(numberedFile(dir, n))}\n${start(s.info)}`);
      await waitFor(() => s.lc.stats().current >= n, 30000, () => `${n} lines (have ${s.lc.stats().current}); rsyslog: ${rs!.output().slice(-300)}`);
      const numbers = await storedNumbers(s.info.queryPort);
      expect(missingOf(numbers, n), 'numbers not stored').to.deep.equal([]);
      expect(numbers.length, 'each line once').to.equal(n);
    });
  };

  forwards('omfwd over UDP: every numbered line stored', noFwd, 2000, (i) => `action(type="omfwd" target="127.0.0.1" port="${i.udpPort}" protocol="udp")`);
  forwards('omfwd over TCP with octet counting: every numbered line stored', noFwd, 2000, (i) => `action(type="omfwd" target="127.0.0.1" port="${i.ingestPort}" protocol="tcp" TCP_Framing="octet-counted")`);
  forwards('omrelp: every numbered line stored', noRelp, 2000, (i) => `module(load="omrelp")\naction(type="omrelp" target="127.0.0.1" port="${i.relpPort}")`);

  const noOssl = ((): string | null => {
    const noOpenssl = opensslUnavailable();
    if (noOpenssl) return noOpenssl;
    // -N1 does not load netstream drivers: look for rsyslog-openssl's module itself.
    const dirs = ['/usr/lib/rsyslog', '/usr/lib64/rsyslog', ...(fs.existsSync('/usr/lib') ? fs.readdirSync('/usr/lib').map((d) => `/usr/lib/${d}/rsyslog`) : [])];
    if (!dirs.some((d) => fs.existsSync(path.join(d, 'lmnsd_ossl.so')))) return "rsyslog's OpenSSL driver lmnsd_ossl.so is not installed (Debian: apt-get install rsyslog-openssl)";
    return why('action(type="omfwd" target="127.0.0.1" port="9" protocol="tcp" StreamDriver="ossl" StreamDriverMode="1" StreamDriverAuthMode="x509/name" StreamDriverPermittedPeers="localhost")');
  })();

  it(`omfwd over TLS (StreamDriver ossl, octet-counted, certificates both ways) to --tls-port: every numbered line stored${noOssl ? ` — skipped: ${noOssl}` : ''}`, async function () {
    if (noOssl) this.skip();
    const n = 2000;
    const pki = testPki();
    const s = await startServer({ tlsPort: 0, tlsCert: pki.server.certFile, tlsKey: pki.server.keyFile, tlsCa: pki.caFile, capacity: n * 2 });
    lc = s.lc;
    rs = startRsyslog(
      dir,
      `${imfile(numberedFile(dir, n))}\n` +
        `action(type="omfwd" target="127.0.0.1" port="${s.info.tlsPort}" protocol="tcp" TCP_Framing="octet-counted" ` +
        'StreamDriver="ossl" StreamDriverMode="1" StreamDriverAuthMode="x509/name" StreamDriverPermittedPeers="localhost" ' +
        `StreamDriver.CAFile="${pki.caFile}" StreamDriver.CertFile="${pki.client.certFile}" StreamDriver.KeyFile="${pki.client.keyFile}")`,
    );
    await waitFor(() => s.lc.stats().current >= n, 30000, () => `${n} lines (have ${s.lc.stats().current}); rsyslog: ${rs!.output().slice(-300)}`);
    const numbers = await storedNumbers(s.info.queryPort);
    expect(missingOf(numbers, n), 'numbers not stored').to.deep.equal([]);
    expect(numbers.length, 'each line once').to.equal(n);
    // Over TLS: the port takes only clients whose certificate --tls-ca verified.
    expect(s.lc.stats()).to.include({ tlsHandshakeFailures: 0 });
    expect(s.lc.stats().tlsHandshakes).to.be.greaterThan(0);
  });

  it(`omrelp across a kill -9 of LogCaster (--fsync always): no line lost${noRelp ? ` — skipped: ${noRelp}` : ''}`, async function () {
    if (noRelp) this.skip();
    const n = 20000;
    const dataDir = path.join(dir, 'data');
    const args = ['--fsync', 'always', '--data-dir', dataDir, '--capacity', String(n * 2)];
    const first = await startCli(['--relp-port', '0', ...args]);
    const relpPort = Number(/relp=[^ ]+:(\d+)/.exec(first.line)![1]);
    const statsOf = async (queryPort: number): Promise<number> => {
      const q = await QueryClient.open(queryPort);
      try {
        return Number(/RelpReceived=(\d+)/.exec(await q.ask('STATS'))![1]);
      } finally {
        q.close();
      }
    };
    // An action queue that retries for ever: what was not acknowledged is resent.
    rs = startRsyslog(
      dir,
      `${imfile(numberedFile(dir, n))}\nmodule(load="omrelp")\n` +
        `action(type="omrelp" target="127.0.0.1" port="${relpPort}" action.resumeRetryCount="-1" action.resumeInterval="1" ` +
        `queue.type="LinkedList" queue.size="100000")`,
    );
    // Some, not all, have arrived: kill -9.
    const until = Date.now() + 30000;
    let before = 0;
    while ((before = await statsOf(first.queryPort)) < 2000) {
      if (Date.now() > until) throw new Error(`only ${before} lines arrived; rsyslog: ${rs.output().slice(-300)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    first.child.kill('SIGKILL');
    await first.exited;
    // Same port again (rsyslog reconnects there), same data dir.
    const second = await startCli(['--relp-port', String(relpPort), ...args]);
    try {
      let numbers: number[] = [];
      const deadline = Date.now() + 40000;
      while (Date.now() < deadline) {
        numbers = await storedNumbers(second.queryPort);
        if (missingOf(numbers, n).length === 0) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(missingOf(numbers, n).slice(0, 20), 'numbers lost across the kill -9').to.deep.equal([]);
      // The kill really cut the stream: the restarted server received the rest.
      expect(await statsOf(second.queryPort), 'lines received after the restart').to.be.greaterThan(0);
    } finally {
      await rs.stop();
      second.child.kill('SIGTERM');
      await second.exited;
    }
  });
});
