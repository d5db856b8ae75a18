// Conformance cases about the process around a reactor: what keeps it alive, what
// lets it exit, exceptions nobody catches, worker threads and the blocking run().
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';

import { cachedBytes, delay, itUnless, pageCacheUnobservable, peer, runNode, runNodeBlocking, startNode, waitFor } from '@logcaster/testkit';

import { childPrelude, connectSendAndExit, type SuiteContext } from './context';

/** Why glibc malloc's behaviour cannot be observed here, or null. */
function noGlibc(): string | null {
  if (process.platform !== 'linux') return `glibc malloc is a Linux C library, not on ${process.platform}`;
  const header = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header;
  if (!header?.glibcVersionRuntime) return 'node does not run on glibc here';
  // ASan, jemalloc, tcmalloc: their malloc replaces glibc's in the children too.
  const preload = process.env.LD_PRELOAD;
  return preload ? `another allocator is preloaded (LD_PRELOAD=${preload})` : null;
}

/** RSS growth (MiB) in a fresh process when 256 blocks of 1 MiB are freed between 16
 *  kept ones, after one 8 MiB block was freed (glibc then raises its threshold to 8
 *  MiB), with or without setMallocMmapThreshold(128 KiB) first. */
function rssAfterFrees(ctx: SuiteContext, fix: boolean): { applied: boolean | null; grownMb: number } {
  const script = `
    const backend = ${ctx.loadExpr};
    const applied = ${fix} ? backend.setMallocMmapThreshold(128 * 1024) : null;
    const rss = () => Number(/VmRSS:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
    // In a function: top-level bindings of an -e script outlive a collection.
    (() => {
      let big = Buffer.alloc(8 << 20, 1); big = null; gc();
      const before = rss();
      let blocks = Array.from({ length: 256 }, () => Buffer.alloc(1 << 20, 1));
      const kept = blocks.filter((_, i) => i % 16 === 0);
      blocks = null; gc(); gc();
      console.log(JSON.stringify({ applied, grownMb: rss() - before, kept: kept.length }));
    })();
  `;
  return JSON.parse(runNodeBlocking(script, [], 20000, ['--expose-gc'])) as { applied: boolean | null; grownMb: number };
}

/** A worker running `code` (after the suite's prelude); terminated after the test. */
function startWorker(ctx: SuiteContext, code: string, workers: Worker[]): { worker: Worker; messages: unknown[] } {
  const worker = new Worker(`const { parentPort } = require('worker_threads');\n${childPrelude(ctx)}\n${code}`, { eval: true });
  const messages: unknown[] = [];
  worker.on('message', (m) => messages.push(m));
  workers.push(worker);
  return { worker, messages };
}

export function lifecycleCases(ctx: SuiteContext): void {
  const workers: Worker[] = [];
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.terminate()));
  });

  describe('the process around it', () => {
    /** A child whose only handles are the reactor's: it prints its port, then `body` runs. */
    const child = (body: string): ReturnType<typeof startNode> =>
      startNode(`
        ${childPrelude(ctx)}
        const r = createReactorWith(backend, {});
        const l = r.listen({ port: 0 }, { onData(c, d) { c.write(d); } });
        console.log('port ' + l.port);
        ${body}
      `);

    it('exits by itself once close() has run, or after unref()', async () => {
      const bodies = ['r.close();', 'r.unref();', 'r.unref(); r.setTimer(60000, () => {});'];
      const children = bodies.map(child);
      try {
        // Generous: exiting takes milliseconds; a held process would never exit.
        const exits = await Promise.all(children.map((c) => Promise.race([c.exited, new Promise<'held'>((r) => setTimeout(() => r('held'), 10000))])));
        exits.forEach((exit, i) => expect(exit, `${bodies[i]} → ${children[i].stderr()}`).to.deep.equal({ code: 0, signal: null }));
      } finally {
        await Promise.all(children.map((c) => c.kill()));
      }
    });

    it('keeps the process alive while open and referenced (also after unref() then ref())', async () => {
      const bodies = ['', 'r.unref(); r.ref();'];
      const children = bodies.map(child);
      try {
        await Promise.all(children.map(async (c, i) => {
          const what = bodies[i] || 'open';
          const port = Number((await c.waitForOutput(/port (\d+)/))[1]);
          // The script has ended; only the reactor holds the process. It must still be
          // there, and serving, well after an unheld process would have exited.
          await delay(300);
          expect(c.child.exitCode, `${what}: exited; ${c.stderr()}`).to.equal(null);
          const p = await peer(port);
          p.socket.end('still here');
          await p.ended;
          expect(p.text(), what).to.equal('still here');
          expect(c.child.exitCode, what).to.equal(null);
        }));
        // Ended by our SIGKILL, not by itself.
        for (const exit of await Promise.all(children.map((c) => c.kill()))) expect(exit).to.deep.equal({ code: null, signal: 'SIGKILL' });
      } finally {
        await Promise.all(children.map((c) => c.kill()));
      }
    });
  });

  describe('the allocator (setMallocMmapThreshold, for programs that own their process)', () => {
    itUnless(noGlibc(), 'freed blocks above the threshold go back to the system; without it they stay resident', () => {
      const without = rssAfterFrees(ctx, false);
      const fixed = rssAfterFrees(ctx, true);
      expect(fixed.applied).to.equal(true);
      // 16 MiB stay in use either way; the 240 MiB freed stay resident only without it.
      expect(without.grownMb, 'control: glibc keeps freed blocks below its raised threshold').to.be.greaterThan(160);
      expect(fixed.grownMb).to.be.below(64);
    });

    it('refuses a threshold glibc does not take, and a non-number', () => {
      const backend = ctx.load();
      expect(backend.setMallocMmapThreshold(64 * 1024 * 1024)).to.equal(false);
      expect(backend.setMallocMmapThreshold(-1)).to.equal(false);
      expect(() => (backend.setMallocMmapThreshold as (v: unknown) => boolean)('128k')).to.throw(TypeError, /setMallocMmapThreshold\(bytes\)/);
    });
  });

  describe('page-cache advice (startWriteback, dropFromPageCache, for files written once)', () => {
    itUnless(pageCacheUnobservable(), 'drops a written range from the page cache; data and the rest of the file stay', () => {
      const backend = ctx.load();
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'logcaster-pagecache-'));
      const file = path.join(dir, 'written');
      const MiB = 1024 * 1024;
      const data = Buffer.alloc(16 * MiB);
      for (let i = 0; i < data.length; i += 4096) data.writeUInt32LE(i, i);
      const fd = fs.openSync(file, 'w+');
      try {
        fs.writeSync(fd, data, 0, data.length, 0);
        expect(cachedBytes(file), 'control: a file just written is in the page cache').to.equal(16 * MiB);
        expect(backend.startWriteback(fd, 0, 16 * MiB)).to.equal(true);
        expect(backend.dropFromPageCache(fd, 0, 8 * MiB)).to.equal(true);
        expect(cachedBytes(file)).to.equal(8 * MiB);
        expect(fs.readFileSync(file).equals(data), 'the data read back from disk').to.equal(true);
      } finally {
        fs.closeSync(fd);
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it('refuses what is not (fd, offset, length); a bad fd is advice not taken', () => {
      const backend = ctx.load();
      expect(() => (backend.dropFromPageCache as (...v: unknown[]) => boolean)(0, -1, 1)).to.throw(TypeError, /dropFromPageCache\(fd, offset, length\)/);
      expect(() => (backend.startWriteback as (...v: unknown[]) => boolean)(0, 0)).to.throw(TypeError, /startWriteback\(fd, offset, length\)/);
      expect(() => (backend.startWriteback as (...v: unknown[]) => boolean)(0, 0.5, 1)).to.throw(TypeError);
      const notOpen = 999_999;
      expect(() => fs.fstatSync(notOpen), 'control: no such fd').to.throw();
      expect(backend.dropFromPageCache(notOpen, 0, 4096)).to.equal(false);
      expect(backend.startWriteback(notOpen, 0, 4096)).to.equal(false);
    });
  });

  describe('exceptions in handlers', () => {
    it('without onError: rethrown as an uncaught exception after the rest of the batch; that connection is closed', async () => {
      // Two clients send while the child is blocked, so both reads land in one batch:
      // both handlers run (both throw), then the first exception surfaces.
      const r = await runNode(`
        ${childPrelude(ctx)}
        const r = createReactorWith(backend, {});
        const seen = [];
        const l = r.listen({ port: 0 }, {
          onData(c, d) { seen.push('data ' + d); throw new Error('thrown for ' + d); },
          onClose(c, err) { seen.push('close ' + (err && err.message)); },
        });
        process.on('uncaughtException', (e) => {
          console.log(JSON.stringify({ error: e.message, seen }));
          process.exit(0);
        });
        const { spawnSync } = require('child_process');
        const clients = spawnSync(process.execPath, ['-e', ${JSON.stringify(connectSendAndExit(2, 'x'))}, String(l.port)]);
        if (clients.status !== 0) { console.error(String(clients.stderr)); process.exit(3); }
      `, 20000);
      expect(r.code, r.stderr).to.equal(0);
      const out = JSON.parse(r.stdout) as { error: string; seen: string[] };
      expect(out.error).to.equal('thrown for x');
      // Both reads delivered, and each throwing connection closed with its error,
      // before the exception was rethrown.
      expect(out.seen.sort()).to.deep.equal(['close thrown for x', 'close thrown for x', 'data x', 'data x']);
    });
  });

  describe('worker threads and run()', () => {
    it('runs one reactor per worker thread', async () => {
      const code = `
        const r = createReactorWith(backend, {});
        const l = r.listen({ port: 0 }, { onData(c, d) { c.write(d); } });
        parentPort.postMessage(l.port);
        parentPort.on('message', async () => { await r.close(); parentPort.postMessage('closed'); });
      `;
      const started = [startWorker(ctx, code, workers), startWorker(ctx, code, workers)];
      await waitFor(() => started.every((w) => w.messages.length === 1), 10000, 'both workers listening');
      const ports = started.map((w) => w.messages[0] as number);
      expect(ports[0]).to.not.equal(ports[1]);
      for (const port of ports) {
        const p = await peer(port);
        p.socket.end(`to ${port}`);
        await p.ended;
        expect(p.text()).to.equal(`to ${port}`);
      }
      for (const w of started) w.worker.postMessage('close');
      await waitFor(() => started.every((w) => w.messages[1] === 'closed'), 10000, 'both reactors closed');
    });

    it('serves in blocking run() mode inside a worker thread, idle sweep included', async () => {
      const { messages } = startWorker(ctx, `
        const r = createReactorWith(backend, {});
        let served = 0;
        const l = r.listen({ port: 0 }, {
          onOpen(c) { c.setIdleTimeout(150); },
          onData(c, d) { c.write(d); },
          onTimeout(c) { c.end('idle\\n'); },
          onClose() { served++; },
        });
        parentPort.postMessage(l.port);
        r.run(() => served === 2);
        parentPort.postMessage('returned ' + served);
        r.close();
      `, workers);
      await waitFor(() => messages.length === 1, 10000, 'worker port');
      const port = messages[0] as number;
      const a = await peer(port);
      a.socket.end('blocking');
      await a.ended;
      expect(a.text()).to.equal('blocking');
      // The idle sweep must run in run() mode too (libuv timers do not).
      const b = await peer(port);
      await b.ended;
      expect(b.text()).to.equal('idle\n');
      b.socket.end();
      await waitFor(() => messages.length === 2, 10000, 'run() to return');
      expect(messages[1]).to.equal('returned 2');
    });

    it('run() returns when a handler calls close(); every connection gets onClose', async () => {
      const { messages } = startWorker(ctx, `
        const r = createReactorWith(backend, {});
        const closes = [];
        const l = r.listen({ port: 0 }, {
          onData(c, d) { if (String(d) === 'quit') r.close(); else c.write(d); },
          onClose(c, err) { closes.push(err ? err.message : 'clean'); },
        });
        parentPort.postMessage(l.port);
        r.run();
        parentPort.postMessage({ returned: true, closes: closes.length });
      `, workers);
      await waitFor(() => messages.length === 1, 10000, 'worker port');
      const port = messages[0] as number;
      const bystander = await peer(port);
      bystander.socket.write('hi');
      await waitFor(() => bystander.text() === 'hi', 10000, 'echo in run() mode');
      const quitter = await peer(port);
      quitter.socket.write('quit');
      await waitFor(() => messages.length === 2, 10000, 'run() to return');
      expect(messages[1]).to.deep.equal({ returned: true, closes: 2 });
      await bystander.closed;
      await quitter.closed;
    });
  });
}
