'use strict';
// Starts examples/udp-echo as a real child process on every backend that loads here and
// drives it with real node:dgram sockets on 127.0.0.1 and ::1.
const { expect } = require('chai');
const { spawnSync } = require('child_process');
const crypto = require('crypto');
const path = require('path');

const EXAMPLE = path.join(__dirname, '..');
const { ROOT, backendUnavailable, startExample, stop, udpPeer, waitFor } = require('@logcaster/testkit');

const READY = /^udp-echo listening on ([\d.:a-f]+):(\d+) \(backend (\w+)\)\n/;

async function startEcho(args) {
  const s = await startExample(EXAMPLE, args, READY);
  return { child: s.child, output: s.output, host: s.match[1], port: Number(s.match[2]), backend: s.match[3] };
}

/** The counters of the stats line the example prints on SIGUSR1 (the `n`-th such line). */
async function statsLine(server, n) {
  server.child.kill('SIGUSR1');
  const re = /^udp-echo stats: (.*)$/gm;
  let lines = [];
  await waitFor(() => (lines = [...server.output().matchAll(re)]).length >= n, 10000, 'the stats line');
  return Object.fromEntries(lines[n - 1][1].split(' ').map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v)]));
}

const BACKENDS = ['auto', 'epoll', 'iouring', 'poll', 'select'];

describe('examples/udp-echo', function () {
  this.timeout(30000);

  for (const backend of BACKENDS) {
    const reason = backendUnavailable(backend);
    if (reason) {
      it(`udp-echo on ${backend} (skipped: backend cannot be loaded here: ${reason})`, function () { this.skip(); });
      continue;
    }
    describe(`--backend ${backend}`, () => {
      let server;
      let peer;
      before(async () => { server = await startEcho(['--backend', backend, '--port', '0']); });
      afterEach(async () => { if (peer) await peer.close(); peer = undefined; });
      after(async () => { if (server) await stop(server.child); });

      it('prints a parseable first line with the real port and backend', () => {
        expect(server.port).to.be.greaterThan(0);
        if (backend !== 'auto') expect(server.backend).to.equal(backend);
      });

      it('sends 300 distinct datagrams back to their sender, each byte for byte', async () => {
        peer = await udpPeer();
        const sent = Array.from({ length: 300 }, (_, i) => Buffer.from(`datagram ${i} ${'y'.repeat(i % 97)}`));
        // In flights of 50 so that neither side's receive buffer can overflow on a loaded machine.
        for (let i = 0; i < sent.length; i += 50) {
          await Promise.all(sent.slice(i, i + 50).map((d) => peer.send(d, server.port)));
          await peer.waitFor(Math.min(i + 50, sent.length), 10000);
        }
        const got = peer.received.map((d) => d.data.toString()).sort();
        expect(got).to.deep.equal(sent.map(String).sort());
        expect(peer.received.every((d) => d.port === server.port)).to.equal(true);
      });

      it('echoes a 60000-byte datagram whole', async () => {
        peer = await udpPeer();
        const big = crypto.randomBytes(60000);
        await peer.send(big, server.port);
        await peer.waitFor(1);
        expect(peer.received[0].data.equals(big)).to.equal(true);
      });

      it('counts what it received and sent (SIGUSR1), then exits 0 on SIGTERM', async () => {
        const s = await statsLine(server, 1);
        expect(s.received).to.equal(301);
        expect(s.sent).to.equal(301);
        expect(s.sendErrors).to.equal(0);
        const code = await stop(server.child);
        server = undefined;
        expect(code).to.equal(0);
      });
    });
  }

  it('serves IPv6 (--host ::1)', async function () {
    const s = await startEcho(['--host', '::1', '--port', '0']);
    const peer = await udpPeer('udp6');
    try {
      expect(s.host).to.equal('::1');
      await peer.send('over v6', s.port, '::1');
      await peer.waitFor(1);
      expect(peer.received[0].data.toString()).to.equal('over v6');
      expect(peer.received[0].address).to.equal('::1');
    } finally {
      await peer.close();
      await stop(s.child);
    }
  });

  it('rejects a bad --port with status 2', () => {
    const r = spawnSync(process.execPath, [EXAMPLE, '--port', 'nope'], { cwd: ROOT, encoding: 'utf8', timeout: 10000 });
    expect(r.status).to.equal(2);
    expect(r.stderr).to.match(/--port/);
  });
});
