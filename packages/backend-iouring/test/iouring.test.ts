// io_uring backend: the runtime probe and its forced-failure switch, the fallback
// of auto-selection to epoll, and the completion paths the shared conformance suite
// does not reach on purpose (provided-buffer ring running dry, bytes held while
// paused or while the read arena is full, SQPOLL). Idle CPU: core/test/node-integration.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

import { createReactorWith } from '@logcaster/core';
import type { BackendModule, Connection, Reactor } from '@logcaster/core';
import { delay, pattern, peer as client, waitFor } from '@logcaster/testkit';

const pkgDir = join(__dirname, '..', '..');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const backend = require(pkgDir) as BackendModule;
const support = backend.probe();

/** Run a script in a fresh node with extra environment; returns its JSON output. */
function runChild(script: string, env: Record<string, string>): unknown {
  const r = spawnSync(process.execPath, ['-e', script], {
    cwd: pkgDir,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 30000,
  });
  expect(r.status, `child failed: ${r.stderr}`).to.equal(0);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? 'null');
}

describe('backend-iouring: probe', () => {
  it('reports supported, or unsupported with a reason', () => {
    expect(backend.name).to.equal('iouring');
    expect(support).to.have.keys('supported', 'reason');
    if (support.supported) expect(support.reason).to.equal('');
    else expect(support.reason).to.be.a('string').and.not.equal('');
  });

  it('LOGCASTER_IOURING_FORCE_UNSUPPORTED makes probe() fail and auto-selection fall back to epoll', function () {
    this.timeout(30000);
    const reason = 'forced off for a test';
    const out = runChild(
      `
      const b = require('.');
      const core = require('@logcaster/core');
      let engineError = '';
      try { new b.Engine({}, () => {}, new Int32Array(4 + 4 * 1024), new Uint8Array(65536)); }
      catch (e) { engineError = e.message; }
      const loaded = core.loadBackend('auto');
      console.log(JSON.stringify({ probe: b.probe(), engineError, name: loaded.name, tried: loaded.tried }));
      `,
      { LOGCASTER_IOURING_FORCE_UNSUPPORTED: reason },
    ) as { probe: { supported: boolean; reason: string }; engineError: string; name: string; tried: { name: string; status: string; reason: string }[] };
    expect(out.probe).to.deep.equal({ supported: false, reason });
    expect(out.engineError).to.equal(`iouring: unsupported: ${reason}`);
    expect(out.name).to.equal('epoll');
    expect(out.tried[0]).to.deep.equal({ name: 'iouring', status: 'unsupported', reason });
    expect(out.tried[1]).to.include({ name: 'epoll', status: 'loaded' });
  });

  it('without the switch, auto-selection prefers iouring when the kernel allows it', function () {
    this.timeout(30000);
    const out = runChild(
      `const l = require('@logcaster/core').loadBackend('auto'); console.log(JSON.stringify({ name: l.name, tried: l.tried }));`,
      { LOGCASTER_IOURING_FORCE_UNSUPPORTED: '' },
    ) as { name: string; tried: { name: string; status: string; reason: string }[] };
    if (support.supported) {
      expect(out.name).to.equal('iouring');
    } else {
      expect(out.tried[0]).to.deep.equal({ name: 'iouring', status: 'unsupported', reason: support.reason });
      expect(out.name).to.not.equal('iouring');
    }
  });
});

describe('backend-iouring: completion paths', function () {
  this.timeout(60000);
  let reactor: Reactor | undefined;

  before(function () {
    if (!support.supported) {
      // Visible in the report: this machine cannot run io_uring.
      this.test!.title += ` (skipped: ${support.reason})`;
      this.skip();
    }
  });
  afterEach(async () => {
    await reactor?.close();
    reactor = undefined;
  });

  // Both receive-buffer modes: incremental (Linux 6.12+, the default) and classic
  // (one whole buffer per completion, what older kernels get), forced by a switch.
  for (const mode of [{ name: 'incremental', classic: '', incremental: 1 }, { name: 'classic', classic: '1', incremental: 0 }]) {
    it(`recovers when the provided-buffer ring runs dry (ENOBUFS ends multishot recv), ${mode.name} buffers`, async function () {
      // 48 clients x 1 MiB arrive while the JS thread is blocked: far more than the
      // provided buffers hold, so multishot recvs end with ENOBUFS and must be
      // re-armed once buffers come back. Every byte must still arrive, in order.
      const saved = process.env.LOGCASTER_IOURING_CLASSIC_BUFFERS;
      process.env.LOGCASTER_IOURING_CLASSIC_BUFFERS = mode.classic;
      try {
        reactor = createReactorWith(backend, {});
      } finally {
        if (saved === undefined) delete process.env.LOGCASTER_IOURING_CLASSIC_BUFFERS;
        else process.env.LOGCASTER_IOURING_CLASSIC_BUFFERS = saved;
      }
      const pool = reactor.stats().driver;
      if (pool.recvBuffersIncremental !== mode.incremental) {
        expect(mode.incremental, 'only incremental mode may be refused (kernel before 6.12)').to.equal(1);
        this.test!.title += ' (skipped: this kernel has no incremental provided buffers)';
        this.skip();
      }
      const got = new Map<Connection, Buffer[]>();
      const l = reactor.listen({ port: 0 }, {
        onOpen: (c) => void got.set(c, []),
        onData: (c, d) => void got.get(c)!.push(Buffer.from(d)),
        onEnd: (c) => c.write(Buffer.concat(got.get(c)!)),
      });
      const clients = await Promise.all(Array.from({ length: 48 }, () => client(l.port)));
      const payloads = clients.map((_, i) => pattern(1 << 20, i + 1));
      expect(payloads.length << 20, 'input exceeds the pool').to.be.greaterThan(pool.recvBufferBytes);
      const blockUntil = Date.now() + 400;
      clients.forEach((c, i) => c.socket.end(payloads[i]));
      // Block our loop (the server's) while the clients' data lands in the kernel.
      setImmediate(() => {
        while (Date.now() < blockUntil) { /* busy: nothing is reaped meanwhile */ }
      });
      await waitFor(() => clients.every((c, i) => c.bytes() >= payloads[i].length), 30000, 'all echoes');
      clients.forEach((c, i) => expect(c.received().equals(payloads[i]), `client ${i}`).to.equal(true));
      expect(reactor.stats().driver.recvStarved, 'receives ended by ENOBUFS').to.be.greaterThan(0);
    });
  }

  it('keeps serving when more receives run dry at once than the SQ holds (re-arm storm)', async function () {
    // With LOGCASTER_IOURING_SMALL_RINGS=1 the SQ has 64 entries and the pool 64 buffers:
    // 300 connections whose messages land while the server's loop is blocked end far
    // more than 64 multishot receives with ENOBUFS at once — the 10,000-connection case
    // in miniature. Re-arming them while reaping once spun forever inside one turn.
    const { spawn } = await import('node:child_process');
    const script = `
      const { createReactorWith } = require('@logcaster/core');
      const r = createReactorWith(require('.'), {});
      const l = r.listen({ port: 0, host: '127.0.0.1' }, { onData(c, d) { c.write(d); } });
      process.stdin.on('data', (d) => {
        if (String(d).startsWith('block')) { const end = Date.now() + 300; while (Date.now() < end) {} }
        else process.stdout.write(JSON.stringify(r.stats().driver) + '\\n');
      });
      process.stdout.write(l.port + '\\n');
    `;
    const child = spawn(process.execPath, ['-e', script], {
      cwd: pkgDir,
      env: { ...process.env, LOGCASTER_IOURING_SMALL_RINGS: '1' },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    try {
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      await waitFor(() => out.includes('\n'), 10000, 'the server to listen');
      const port = Number(out.split('\n')[0]);
      const clients = await Promise.all(Array.from({ length: 300 }, () => client(port)));
      const msg = pattern(64, 5);
      for (let round = 1; round <= 5; round++) {
        // The server blocks its loop; every message of the round lands meanwhile.
        child.stdin!.write('block\n');
        await delay(50);
        clients.forEach((c) => c.socket.write(msg));
        await waitFor(() => clients.every((c) => c.bytes() >= round * 64), 15000, `echo round ${round} on 300 connections`);
      }
      out = '';
      child.stdin!.write('stats\n');
      await waitFor(() => out.includes('\n'), 5000, 'stats');
      const driver = JSON.parse(out) as Record<string, number>;
      expect(driver.recvBuffersIncremental, 'classic buffers').to.equal(0);
      expect(driver.recvStarved, 'receives ended by ENOBUFS').to.be.greaterThan(64);
      clients.forEach((c) => c.socket.destroy());
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('holds bytes that completed while paused and delivers them, in order, on resume', async () => {
    reactor = createReactorWith(backend, {});
    const chunks: Buffer[] = [];
    let conn: Connection | undefined;
    let pausedAt = -1;
    let paused = false;
    let dataWhilePaused = 0;
    const l = reactor.listen({ port: 0 }, {
      onOpen: (c) => void (conn = c),
      onData(c, d) {
        if (paused) dataWhilePaused++;
        chunks.push(Buffer.from(d));
        const total = chunks.reduce((n, b) => n + b.length, 0);
        if (pausedAt < 0 && total >= 100_000) {
          c.pause();
          paused = true;
          pausedAt = total;
        }
      },
    });
    const p = await client(l.port);
    const payload = pattern(4 << 20, 99);
    p.socket.write(payload);
    await waitFor(() => pausedAt >= 0, 5000, 'pause');
    await delay(200);
    const whilePaused = chunks.reduce((n, b) => n + b.length, 0);
    expect(dataWhilePaused, 'onData after pause()').to.equal(0);
    expect(whilePaused).to.equal(pausedAt);
    paused = false;
    conn!.resume();
    await waitFor(() => chunks.reduce((n, b) => n + b.length, 0) >= payload.length, 10000, 'rest after resume');
    expect(Buffer.concat(chunks).equals(payload)).to.equal(true);
    p.socket.destroy();
  });

  it('carries a read larger than what is left of the read arena over to the next batch', async () => {
    // A 16 KiB arena with 4 KiB kernel buffers and many clients: the arena fills
    // mid-harvest, the rest of a completion is held and delivered first next turn.
    reactor = createReactorWith(backend, { readBufferSize: 16 * 1024 });
    const l = reactor.listen({ port: 0 }, { onData: (c, d) => void c.write(d) });
    const clients = await Promise.all(Array.from({ length: 16 }, () => client(l.port)));
    const payloads = clients.map((_, i) => pattern(256 * 1024, 1000 + i));
    clients.forEach((c, i) => c.socket.write(payloads[i]));
    await waitFor(() => clients.every((c, i) => c.bytes() >= payloads[i].length), 20000, 'echoes');
    clients.forEach((c, i) => expect(c.received().equals(payloads[i]), `client ${i}`).to.equal(true));
    for (const c of clients) c.socket.destroy();
  });

  it('copies at most about one delivery per round into held bytes, however much the CQ holds', async () => {
    // 64 clients stream 2 MiB each into a server whose loop is blocked: the CQ fills
    // with completions of every connection. A connection takes one delivery per batch,
    // so the rest of its completions would be copied aside (held); the driver stops
    // reaping instead and leaves them, with their buffers, in the CQ.
    reactor = createReactorWith(backend, {});
    const got = new Map<Connection, number>();
    const l = reactor.listen({ port: 0 }, {
      onOpen: (c) => void got.set(c, 0),
      onData: (c, d) => void got.set(c, got.get(c)! + d.length),
    });
    const clients = await Promise.all(Array.from({ length: 64 }, () => client(l.port)));
    const size = 2 << 20;
    const blockUntil = Date.now() + 300;
    clients.forEach((c, i) => c.socket.write(pattern(size, 300 + i)));
    setImmediate(() => {
      while (Date.now() < blockUntil) { /* busy: completions pile up in the CQ */ }
    });
    await waitFor(() => got.size === clients.length && [...got.values()].every((n) => n >= size), 30000, 'every byte received');
    const driver = reactor.stats().driver;
    expect(driver.heldBytes, 'held bytes once all is delivered').to.equal(0);
    // A round stops reaping once it held 64 KiB; the completion that crossed that adds
    // at most one buffer (64 KiB) — and delivery drains at least as much per round.
    expect(driver.heldBytesPeak, 'peak of held bytes').to.be.greaterThan(0).and.at.most(512 * 1024);
    for (const c of clients) c.socket.destroy();
  });

  it('runs with sqpoll: true (kernel submission thread)', async function () {
    try {
      reactor = createReactorWith(backend, { sqpoll: true });
    } catch (e) {
      // SQPOLL may need CAP_SYS_NICE on some kernels / container policies.
      this.test!.title += ` (skipped: ${(e as Error).message})`;
      this.skip();
    }
    const l = reactor!.listen({ port: 0 }, { onData: (c, d) => void c.write(d) });
    const p = await client(l.port);
    const payload = pattern(1 << 20, 5);
    p.socket.write(payload);
    await waitFor(() => p.bytes() >= payload.length, 10000, 'echo');
    expect(p.received().equals(payload)).to.equal(true);
    p.socket.destroy();
  });
});
