// The transports beside the TCP ingest port, over real sockets and real clients:
// --udp-port and --unix-socket with logger(1), datagram limits and kernel drops,
// --unix-stream-socket, and --relp-port (protocol, order of responses, and acks that
// survive a kill -9 under --fsync always). rsyslog forwarding to them: rsyslog.test.ts.
import { expect } from 'chai';
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { delay, rmDir, tmpDir, udpPeer, waitFor } from '@logcaster/testkit';

import { runSync, startCli } from '../support/cli';
import { QueryClient, startServer, stripStamp } from '../support/helpers';
import { RelpClient } from '../support/relp-client';

const hasLogger = spawnSync('logger', ['--version']).status === 0;
const noLogger = hasLogger ? '' : ' — skipped: logger(1) (util-linux/bsdutils) is not installed';

function logger(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => execFile('logger', args, (err) => (err ? reject(err) : resolve())));
}

async function found(port: number, query: string): Promise<string[]> {
  const q = await QueryClient.open(port);
  try {
    return (await q.found(query)).lines.map(stripStamp);
  } finally {
    q.close();
  }
}

describe('transports: UDP, Unix sockets, RELP', function () {
  this.timeout(30000);
  let dir: string;
  beforeEach(() => {
    dir = tmpDir('transports');
  });
  afterEach(() => rmDir(dir));

  it(`stores what logger -d (UDP) and logger -u (Unix datagram) send, queryable, with the sender as peer${noLogger}`, async function () {
    if (!hasLogger) this.skip();
    const sock = path.join(dir, 'log.sock');
    const { lc, info } = await startServer({ udpPort: 0, unixSocket: sock });
    try {
      expect(fs.statSync(sock).mode & 0o777, 'default socket mode').to.equal(0o666);
      const peers: string[] = [];
      lc.on('line', (l) => peers.push(l.peer));
      await logger(['-d', '-n', '127.0.0.1', '-P', String(info.udpPort), '--rfc5424', '-t', 'udptest', 'over udp one']);
      await logger(['-d', '-n', '127.0.0.1', '-P', String(info.udpPort), '--rfc3164', '-t', 'udptest', 'over udp two']);
      await logger(['-u', sock, '-t', 'unixtest', 'over the unix socket']);
      await waitFor(() => lc.stats().current === 3, 5000, 'three lines');
      const lines = await found(info.queryPort, 'QUERY keyword=over');
      expect(lines).to.have.length(3);
      expect(lines[0]).to.match(/^<13>1 \S+ \S+ udptest - - .*over udp one$/);
      expect(lines[1]).to.match(/^<13>\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ udptest: over udp two$/);
      expect(lines[2]).to.match(/unixtest: over the unix socket$/);
      expect(peers).to.deep.equal(['127.0.0.1', '127.0.0.1', 'localhost']);
      const s = lc.stats();
      expect(s).to.include({ udpReceived: 2, unixReceived: 1, udpDropped: 0, linesReceived: 3 });
      // The syslog header is parsed as for TCP lines.
      expect((await found(info.queryPort, 'QUERY keyword=udp')).length).to.equal(2);
      const q = await QueryClient.open(info.queryPort);
      expect(await q.ask('STATS')).to.match(/UdpReceived=2, UdpTruncated=0, UdpDropped=0, UnixReceived=1, UnixTruncated=0, UnixDropped=0/);
      q.close();
    } finally {
      await lc.stop();
    }
    expect(fs.existsSync(sock), 'socket file after stop').to.equal(false);
  });

  it('UDP: one datagram is one line, line ends dropped, longer than --max-line cut and marked, empty ones ignored', async () => {
    const { lc, info } = await startServer({ udpPort: 0, maxLine: 100 });
    const p = await udpPeer();
    try {
      await p.send('with crlf\r\n', info.udpPort!);
      await p.send('two\nlines in one datagram', info.udpPort!);
      await p.send(`${'x'.repeat(150)}`, info.udpPort!);
      await p.send('\r\n', info.udpPort!);
      await p.send('last', info.udpPort!);
      await waitFor(() => lc.stats().current === 4, 5000, 'four lines');
      const all = await found(info.queryPort, 'RECENT 10');
      expect(all).to.deep.equal(['with crlf', 'two lines in one datagram', `${'x'.repeat(100)}…[truncated 50 bytes]`, 'last']);
      expect(lc.stats()).to.include({ udpReceived: 4, udpTruncated: 1 });
    } finally {
      await p.close();
      await lc.stop();
    }
  });

  it('UDP: datagrams the kernel drops while the server is busy are counted (UdpDropped), the rest stored', async () => {
    const { lc, info } = await startServer({ udpPort: 0, udpRecvBuffer: 64 * 1024, capacity: 10_000 });
    try {
      const n = 3000;
      // spawnSync blocks this thread (the server's) while the child sends: the socket's
      // queue overflows.
      const r = spawnSync(process.execPath, ['-e', `
        const s = require('dgram').createSocket('udp4');
        const m = Buffer.alloc(600, 'd');
        let i = 0;
        const next = () => { if (i++ < ${n}) s.send(m, ${info.udpPort}, '127.0.0.1', next); else s.close(); };
        next();
      `]);
      expect(r.status).to.equal(0);
      await waitFor(() => lc.stats().udpReceived + lc.stats().udpDropped === n, 10000, () => `received ${lc.stats().udpReceived} + dropped ${lc.stats().udpDropped} = ${n}`);
      expect(lc.stats().udpDropped).to.be.greaterThan(0);
      expect(lc.stats().current).to.equal(lc.stats().udpReceived);
    } finally {
      await lc.stop();
    }
  });

  it('UDP takes datagrams only from senders --allow admits', async () => {
    const { lc, info } = await startServer({ udpPort: 0, allow: ['10.0.0.0/8'] });
    const p = await udpPeer();
    try {
      await p.send('from loopback', info.udpPort!);
      await waitFor(() => lc.stats().ingestDenied === 1, 5000, 'the refusal');
      expect(lc.stats().current).to.equal(0);
    } finally {
      await p.close();
      await lc.stop();
    }
  });

  it(`--unix-stream-socket speaks the ingest protocol; a stale socket file is replaced, a live one refused${noLogger}`, async function () {
    if (!hasLogger) this.skip();
    const sock = path.join(dir, 'stream.sock');
    // A server killed earlier left its socket file behind.
    spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(sock)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    expect(fs.existsSync(sock)).to.equal(true);
    const { lc, info } = await startServer({ unixStreamSocket: sock, unixSocketMode: 0o660 });
    try {
      expect(fs.statSync(sock).mode & 0o777).to.equal(0o660);
      await logger(['-u', sock, '-T', '--octet-count', '-t', 'streamtest', 'octet counted over a unix stream']);
      await waitFor(() => lc.stats().current === 1, 5000, 'the line');
      expect((await found(info.queryPort, 'QUERY keyword=octet'))[0]).to.match(/streamtest: octet counted over a unix stream$/);
      const other = await startServer({ unixStreamSocket: sock }).catch((e: Error) => e);
      expect(other).to.be.instanceOf(Error);
      expect((other as Error).message).to.match(/in use by a running process/);
    } finally {
      await lc.stop();
    }
  });

  it('the CLI checks the new options: ports, sizes and an octal mode', () => {
    for (const [args, msg] of [
      [['--udp-port', '70000'], /invalid --udp-port '70000' \(must be 0 to 65535\)/],
      [['--udp-recv-buffer', '1k'], /invalid --udp-recv-buffer '1k' \(must be 64k to 1G\)/],
      [['--unix-socket-mode', '999'], /invalid --unix-socket-mode '999' \(expected an octal file mode like 660\)/],
      [['--relp-port', 'x'], /invalid --relp-port 'x'/],
    ] as [string[], RegExp][]) {
      const r = runSync(args);
      expect(r.status, args.join(' ')).to.equal(2);
      expect(r.stderr).to.match(msg);
    }
  });

  it('RELP: open, syslog frames and close are answered in order; each message stored once', async () => {
    const { lc, info } = await startServer({ relpPort: 0 });
    try {
      const c = await RelpClient.connect(info.relpPort!);
      c.open();
      for (let i = 0; i < 100; i++) c.command('syslog', `<13>relp message ${i}`);
      c.command('bogus');
      c.command('close');
      await c.waitResponses(103);
      await waitFor(() => c.closed, 5000, 'the server closing after close');
      expect(c.responses.map((r) => r.txnr)).to.deep.equal(Array.from({ length: 103 }, (_, i) => i + 1));
      expect(c.responses[0].command).to.equal('rsp');
      expect(c.responses[0].data).to.match(/^200 OK\nrelp_version=0\nrelp_software=LogCaster,[^\n]+\ncommands=syslog$/);
      expect(c.responses.slice(1, 101).every((r) => r.command === 'rsp' && r.data === '200 OK')).to.equal(true);
      expect(c.responses[101].data).to.match(/^500 /);
      expect(c.responses[102].data).to.equal('200 OK');
      const lines = await found(info.queryPort, 'QUERY keyword=relp');
      expect(lines).to.deep.equal(Array.from({ length: 100 }, (_, i) => `<13>relp message ${i}`));
      expect(lc.stats()).to.include({ relpReceived: 100, linesReceived: 100 });
    } finally {
      await lc.stop();
    }
  });

  it('RELP: a frame split across packets, and one torn by bad framing: what came before stays, the connection is closed', async () => {
    const { lc, info } = await startServer({ relpPort: 0 });
    try {
      const c = await RelpClient.connect(info.relpPort!);
      c.open();
      const frame = '2 syslog 11 split frame\n';
      for (const ch of frame) {
        c.socket.write(ch);
        await delay(1);
      }
      await c.waitResponses(2);
      c.socket.write('3 syslog 5 toolong-data-without-trailer');
      await waitFor(() => c.closed, 5000, 'the server closing the connection');
      expect(c.responses.at(-1)).to.deep.include({ txnr: 0, command: 'serverclose' });
      expect(await found(info.queryPort, 'QUERY keyword=split')).to.deep.equal(['split frame']);
      // syslog before open is a protocol error too.
      const d = await RelpClient.connect(info.relpPort!);
      d.command('syslog', 'too early');
      await waitFor(() => d.closed, 5000, 'the server closing the early sender');
      expect(lc.stats().current).to.equal(1);
    } finally {
      await lc.stop();
    }
  });

  it('RELP --fsync always: every message acknowledged before a kill -9 is there after the restart', async () => {
    const dataDir = path.join(dir, 'data');
    const args = ['--relp-port', '0', '--fsync', 'always', '--data-dir', dataDir];
    const first = await startCli(args);
    const relpPort = Number(/relp=[^ ]+:(\d+)/.exec(first.line)![1]);
    const c = await RelpClient.connect(relpPort);
    c.open();
    const n = 3000;
    for (let i = 0; i < n; i++) c.command('syslog', `<13>durable ${i}`);
    await waitFor(() => c.responses.length > n / 3, 20000, 'a third of the acks');
    first.child.kill('SIGKILL');
    await first.exited;
    await waitFor(() => c.closed, 5000, 'the connection to go');
    // txnr k (>= 2) carried message k - 2.
    const acked = c.responses.filter((r) => r.txnr >= 2 && r.data === '200 OK').map((r) => r.txnr - 2);
    expect(acked.length).to.be.greaterThan(0);
    const second = await startCli(['--data-dir', dataDir, '--fsync', 'always']);
    try {
      const stored = new Set((await found(second.queryPort, 'QUERY keyword=durable')).map((l) => Number(l.split(' ')[1])));
      const missing = acked.filter((i) => !stored.has(i));
      expect(missing, 'acknowledged but not stored').to.deep.equal([]);
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  });
});
