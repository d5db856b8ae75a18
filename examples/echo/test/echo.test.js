'use strict';
// Starts examples/echo as a real child process on every backend that loads here and
// drives it with real sockets on 127.0.0.1.
const { expect } = require('chai');
const { spawnSync } = require('child_process');
const net = require('net');
const path = require('path');
const crypto = require('crypto');

const EXAMPLE = path.join(__dirname, '..');
const { ROOT, backendUnavailable, startExample, stop } = require('@logcaster/testkit');

/** Start the example; resolves with { child, host, port, backend } once it printed its first line. */
async function startEcho(args) {
  const s = await startExample(EXAMPLE, args, /^echo listening on ([\d.:a-f]+):(\d+) \(backend (\w+)\)\n/);
  return { child: s.child, host: s.match[1], port: Number(s.match[2]), backend: s.match[3] };
}

/** Send `payload` on a fresh connection and collect exactly payload.length echoed bytes. */
function roundTrip(port, payload) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let got = 0;
    const sock = net.connect({ host: '127.0.0.1', port }, () => sock.end(payload));
    sock.setTimeout(15000, () => sock.destroy(new Error('timed out waiting for echo')));
    sock.on('data', (d) => { chunks.push(d); got += d.length; });
    sock.on('error', reject);
    sock.on('close', () => resolve(Buffer.concat(chunks, got)));
  });
}

const BACKENDS = ['auto', 'epoll', 'iouring', 'poll', 'select'];

describe('examples/echo', function () {
  this.timeout(30000);

  for (const backend of BACKENDS) {
    const reason = backendUnavailable(backend);
    if (reason) {
      it(`echo on ${backend} (skipped: backend cannot be loaded here: ${reason})`, function () { this.skip(); });
      continue;
    }
    describe(`--backend ${backend}`, () => {
      let server;
      before(async () => { server = await startEcho(['--backend', backend, '--port', '0']); });
      after(async () => { if (server) await stop(server.child); });

      it('prints a parseable first line with the real port and backend', () => {
        expect(server.port).to.be.greaterThan(0);
        if (backend !== 'auto') expect(server.backend).to.equal(backend);
      });

      it('echoes 50 concurrent clients, each its own bytes', async () => {
        const payloads = Array.from({ length: 50 }, (_, i) => Buffer.from(`client ${i} ${'x'.repeat(i * 37)}\n`));
        const echoes = await Promise.all(payloads.map((p) => roundTrip(server.port, p)));
        echoes.forEach((e, i) => expect(e.equals(payloads[i]), `client ${i}`).to.equal(true));
      });

      it('echoes 4 MiB byte-exact through backpressure', async () => {
        const big = crypto.randomBytes(4 * 1024 * 1024);
        const echo = await roundTrip(server.port, big);
        expect(echo.length).to.equal(big.length);
        expect(echo.equals(big)).to.equal(true);
      });

      it('exits 0 on SIGTERM', async () => {
        const code = await stop(server.child);
        server = undefined;
        expect(code).to.equal(0);
      });
    });
  }

  it('exits 0 on SIGINT', async () => {
    const s = await startEcho(['--port', '0']);
    try {
      const code = await new Promise((resolve) => { s.child.once('exit', (c, sig) => resolve(c === null ? sig : c)); s.child.kill('SIGINT'); });
      expect(code).to.equal(0);
    } finally {
      s.child.kill('SIGKILL'); // no-op once it has exited
    }
  });

  it('rejects a bad --port with status 2', () => {
    const r = spawnSync(process.execPath, [EXAMPLE, '--port', 'nope'], { cwd: ROOT, encoding: 'utf8', timeout: 10000 });
    expect(r.status).to.equal(2);
    expect(r.stderr).to.match(/--port/);
  });
});
