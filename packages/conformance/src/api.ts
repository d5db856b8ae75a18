// Conformance cases for the rest of the Reactor API (core/src/types.ts): timers,
// listeners and their options, what a Connection reports, the reactor options.
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

import type { Connection, DatagramSocket } from '@logcaster/core';
import { delay, itUnless, peer, runNodeBlocking, waitFor } from '@logcaster/testkit';

import { connectSendAndExit, echo, hasIpv6Loopback, type SuiteContext } from './context';

/** Why the kernel's listen-queue limit cannot be read here, or null. */
function listenQueueUnreadable(): string | null {
  if (process.platform !== 'linux') return `the listen queue limit is read with Linux's ss, not on ${process.platform}`;
  return spawnSync('ss', ['-V']).status === 0 ? null : 'ss (iproute2) is not installed';
}

/** The accept-queue limit of the listening socket on 127.0.0.1:port (ss: Send-Q). */
function listenQueueLimit(port: number): number {
  const line = execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' }).trim();
  const m = /^LISTEN\s+\d+\s+(\d+)\s/.exec(line);
  if (!m) throw new Error(`no listening socket on port ${port} in ss output: ${line}`);
  return Number(m[1]);
}

export function apiCases(ctx: SuiteContext): void {
  describe('timers', () => {
    it('setTimer fires once, repeats until cancelled, and a cancelled timer never fires', async () => {
      const r = ctx.reactor;
      const fired = { once: 0, repeat: 0, cancelled: 0 };
      r.setTimer(5, () => void fired.once++);
      const repeating = r.setTimer(5, () => {
        if (++fired.repeat === 3) repeating.cancel();
      }, { repeat: true });
      r.setTimer(5, () => void fired.cancelled++).cancel();
      await waitFor(() => fired.repeat >= 3, 10000, 'three repeats');
      // A later timer fences the ones above: had a cancel failed, that timer would
      // have fired (again) before this one.
      await new Promise<void>((resolve) => r.setTimer(50, resolve));
      expect(fired).to.deep.equal({ once: 1, repeat: 3, cancelled: 0 });
    });

    it('close() cancels pending timers; setTimer() after close() throws', async () => {
      const r = ctx.make();
      let fired = 0;
      r.setTimer(20, () => void fired++);
      r.setTimer(20, () => void fired++, { repeat: true });
      await r.close();
      await delay(100); // five times their delay
      expect(fired).to.equal(0);
      expect(() => r.setTimer(1, () => {})).to.throw(/reactor is closed/).with.property('code', 'ERR_LOGCASTER_CLOSED');
    });
  });

  describe('listeners', () => {
    it('Listener.close() stops accepting; the connections it accepted keep being served', async () => {
      const r = ctx.reactor;
      let opens = 0;
      const l = r.listen({ port: 0 }, { onOpen: () => void opens++, onData: (c, d) => void c.write(d) });
      const a = await peer(l.port);
      a.socket.write('one');
      await waitFor(() => a.text() === 'one', 5000, 'echo before close');
      l.close();
      l.close(); // harmless
      await waitFor(() => r.stats().listeners === 0, 5000, 'no listener in stats()');
      // Refused once the socket is closed (io_uring closes it when its accept is cancelled).
      let refused: NodeJS.ErrnoException | undefined;
      for (const end = Date.now() + 5000; !refused && Date.now() < end; ) {
        try {
          (await peer(l.port)).socket.destroy();
          await delay(20);
        } catch (err) {
          refused = err as NodeJS.ErrnoException;
        }
      }
      expect(refused?.code).to.equal('ECONNREFUSED');
      a.socket.write('two');
      await waitFor(() => a.text() === 'onetwo', 5000, 'echo after the listener closed');
      expect(opens, 'onOpen calls').to.equal(1);
      a.socket.destroy();
    });

    it("listens on 'localhost' as 127.0.0.1", async () => {
      const l = ctx.reactor.listen({ host: 'localhost', port: 0 }, echo);
      expect(l.host).to.equal('127.0.0.1');
      const p = await peer(l.port, '127.0.0.1');
      p.socket.end('local');
      await p.ended;
      expect(p.text()).to.equal('local');
    });

    itUnless(listenQueueUnreadable(), 'listens with the backlog asked for, and the system maximum by default', () => {
      // The kernel's own record of the listen queue (ss's Send-Q for a listening socket):
      // what it reports is what listen() was given, clamped to net.core.somaxconn.
      const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
      const backlogs = [1, 100, undefined].map((backlog) => {
        const l = ctx.reactor.listen({ port: 0, backlog }, {});
        try {
          return listenQueueLimit(l.port);
        } finally {
          l.close();
        }
      });
      expect(backlogs).to.deep.equal([1, Math.min(100, somaxconn), somaxconn]);
    });

    itUnless(hasIpv6Loopback() ? null : 'no IPv6 on this machine', 'ipv6Only: an IPv4-mapped address serves IPv4 clients, and is refused with ipv6Only', async () => {
      // IPV6_V6ONLY observed on loopback only: a v4-mapped address is a dual-stack
      // binding, which a v6-only socket cannot make.
      let remote: string | undefined;
      const l = ctx.reactor.listen({ host: '::ffff:127.0.0.1', port: 0 }, {
        onOpen: (c) => void (remote = c.remoteAddress),
        onData: (c, d) => void c.write(d),
      });
      const p = await peer(l.port, '127.0.0.1');
      p.socket.end('mapped');
      await p.ended;
      expect(p.text()).to.equal('mapped');
      expect(remote).to.match(/127\.0\.0\.1$/);
      expect(() => ctx.reactor.listen({ host: '::ffff:127.0.0.1', port: 0, ipv6Only: true }, {}))
        .to.throw()
        .with.property('code')
        .that.is.oneOf(['EINVAL', 'EADDRNOTAVAIL']);
    });
  });

  describe('connections', () => {
    it('close() delivers onClose to every live connection, inbound and outbound, then resolves', async () => {
      const r = ctx.make();
      const events: string[] = [];
      const l = r.listen({ port: 0 }, { onClose: () => void events.push('inbound') });
      const peers = await Promise.all([0, 1, 2].map(() => peer(l.port)));
      const target = ctx.reactor.listen({ port: 0 }, {});
      r.connect({ port: target.port }, { onClose: () => void events.push('outbound') });
      await waitFor(() => r.stats().connections === 4, 5000, 'four connections');
      await r.close();
      events.push('resolved');
      expect(events.sort()).to.deep.equal(['inbound', 'inbound', 'inbound', 'outbound', 'resolved']);
      await Promise.all(peers.map((p) => p.closed));
    });

    it('reports remote address and port of both kinds of connection, a unique id per live connection, and keeps context', async () => {
      const r = ctx.reactor;
      type Seen = { id: number; end: string; family: string | undefined };
      const opened: Seen[] = [];
      const closed: { opened: number; datas: number }[] = [];
      const l = r.listen({ port: 0 }, {
        onOpen(c) {
          opened.push({ id: c.id, end: `${c.remoteAddress}:${c.remotePort}`, family: c.remoteFamily });
          c.context = { opened: c.id, datas: 0 };
        },
        onData(c) {
          (c.context as { datas: number }).datas++;
          c.write('k');
        },
        onClose: (c) => void closed.push(c.context as { opened: number; datas: number }),
      });
      const peers = await Promise.all(Array.from({ length: 10 }, () => peer(l.port)));
      await waitFor(() => opened.length === 10, 5000, 'ten connections');
      const ids = opened.map((o) => o.id);
      expect(new Set(ids).size, 'distinct ids').to.equal(10);
      expect(ids.every((id) => Number.isInteger(id) && id > 0), `ids ${ids}`).to.equal(true);
      const peerEnds = peers.map((p) => `${p.socket.localAddress}:${p.socket.localPort}`);
      expect(opened.map((o) => o.end).sort()).to.deep.equal(peerEnds.sort());
      expect(opened.every((o) => o.family === 'IPv4')).to.equal(true);
      for (const p of peers) p.socket.write('x');
      await waitFor(() => peers.every((p) => p.text() === 'k'), 5000, 'answers');
      for (const p of peers) p.socket.destroy();
      await waitFor(() => closed.length === 10, 5000, 'ten closes');
      expect(closed.map((c) => c.datas)).to.deep.equal(new Array(10).fill(1));
      expect(closed.map((c) => c.opened).sort()).to.deep.equal(ids.sort());

      let outbound: Seen | undefined;
      r.connect({ host: '127.0.0.1', port: l.port }, {
        onOpen(c) {
          outbound = { id: c.id, end: `${c.remoteAddress}:${c.remotePort}`, family: c.remoteFamily };
          c.end();
        },
      });
      await waitFor(() => outbound !== undefined, 5000, 'outbound open');
      expect(outbound!.end).to.equal(`127.0.0.1:${l.port}`);
      expect(outbound!.family).to.equal('IPv4');
    });

    it('write() after end() throws ERR_LOGCASTER_ENDED; what was written before end() is delivered', async () => {
      let err: NodeJS.ErrnoException | undefined;
      let writable: boolean | undefined;
      const l = ctx.reactor.listen({ port: 0 }, {
        onData(c) {
          c.write('first ');
          c.end('last');
          writable = c.writable;
          try {
            c.write('too late');
          } catch (e) {
            err = e as NodeJS.ErrnoException;
          }
        },
      });
      const p = await peer(l.port);
      p.socket.write('go');
      await p.ended;
      expect(p.text()).to.equal('first last');
      expect(writable).to.equal(false);
      expect(err?.code).to.equal('ERR_LOGCASTER_ENDED');
      expect(err?.message).to.match(/write after end/);
    });

    it('setIdleTimeout(0) turns the timeout off; onTimeout fires again after each idle period', async () => {
      const timeouts = new Map<string, number>();
      const l = ctx.reactor.listen({ port: 0 }, {
        onData(c, d) {
          const name = d.toString();
          c.context = name;
          timeouts.set(name, 0);
          c.setIdleTimeout(100);
          if (name === 'off') c.setIdleTimeout(0);
        },
        onTimeout: (c) => void timeouts.set(c.context as string, timeouts.get(c.context as string)! + 1),
      });
      const off = await peer(l.port);
      off.socket.write('off');
      await waitFor(() => timeouts.has('off'), 5000, "the 'off' connection's data");
      const on = await peer(l.port);
      on.socket.write('on');
      // Set later than 'off' and still open: three of its timeouts mean the sweep passed
      // 'off' at least three times after its timeout would have elapsed.
      await waitFor(() => (timeouts.get('on') ?? 0) >= 3, 10000, () => `three timeouts (${timeouts.get('on')})`);
      expect(timeouts.get('off'), "timeouts of the connection set to 0").to.equal(0);
      on.socket.destroy();
      off.socket.destroy();
    });
  });

  describe('options', () => {
    it('highWaterMark sets where write() starts returning false', async () => {
      const chunk = Buffer.alloc(1024, 97);
      const queuedAtFirstFalse = async (highWaterMark: number | undefined): Promise<number> => {
        const r = ctx.make(highWaterMark === undefined ? {} : { highWaterMark });
        let queued = -1;
        const l = r.listen({ port: 0 }, {
          onOpen(c) {
            // The peer never reads: the kernel buffers fill first, then our queue.
            for (let sent = 0; sent < 256 << 20; sent += chunk.length) {
              if (!c.write(chunk)) {
                queued = c.bufferedAmount;
                return;
              }
            }
          },
        });
        const p = await peer(l.port);
        p.socket.pause();
        await waitFor(() => queued >= 0, 10000, 'write() to return false');
        p.socket.destroy();
        return queued;
      };
      const small = await queuedAtFirstFalse(4096);
      expect(small, 'queued at the first false, highWaterMark 4096').to.be.at.least(4096).and.below(4096 + chunk.length);
      const dflt = await queuedAtFirstFalse(undefined);
      expect(dflt, 'queued at the first false, default (64 KiB)').to.be.at.least(65536).and.below(65536 + chunk.length);
    });

    it('maxEventsPerBatch bounds the events handed over at once; the rest follow, none lost', async () => {
      // 150 clients connect, send and half-close while this thread is blocked: a turn
      // then has 150 OPENs (and 150 reads, 150 ENDs) at once.
      const clients = 150;
      const batchSizes = async (maxEventsPerBatch: number | undefined): Promise<{ largest: number; data: string }> => {
        const r = ctx.make(maxEventsPerBatch === undefined ? {} : { maxEventsPerBatch });
        const perBatch = new Map<number, number>();
        const count = (): void => {
          const batch = r.stats().dispatches;
          perBatch.set(batch, (perBatch.get(batch) ?? 0) + 1);
        };
        let data = '';
        let closes = 0;
        const l = r.listen({ port: 0 }, {
          onOpen: count,
          onData(_c, d) {
            count();
            data += d.toString();
          },
          onEnd: count,
          onClose() {
            count();
            closes++;
          },
        });
        runNodeBlocking(connectSendAndExit(clients, 'm'), [String(l.port)]);
        await waitFor(() => closes === clients, 10000, () => `${clients} closes (${closes})`);
        return { largest: Math.max(...perBatch.values()), data };
      };
      const limited = await batchSizes(64);
      expect(limited.data, 'every byte delivered').to.equal('m'.repeat(clients));
      expect(limited.largest, 'events in the largest batch, maxEventsPerBatch 64').to.be.at.most(64);
      const dflt = await batchSizes(undefined);
      expect(dflt.data).to.equal('m'.repeat(clients));
      expect(dflt.largest, 'events in the largest batch, default').to.be.greaterThan(64);
      expect(() => ctx.make({ maxEventsPerBatch: 63 })).to.throw(RangeError, /maxEventsPerBatch must be an integer of at least 64, got 63/);
    });

    it("onError receives a handler's exception with its connection; only that connection is closed", async () => {
      const errors: [unknown, Connection | DatagramSocket | undefined][] = [];
      const r = ctx.make({ onError: (err, conn) => void errors.push([err, conn]) });
      const closes = new Map<Connection, Error | undefined>();
      let thrower: Connection | undefined;
      const l = r.listen({ port: 0 }, {
        onData(c, d) {
          if (d.toString() === 'boom') {
            thrower = c;
            throw new Error('handler failed');
          }
          c.write(d);
        },
        onClose: (c, err) => void closes.set(c, err),
      });
      const good = await peer(l.port);
      const bad = await peer(l.port);
      bad.socket.write('boom');
      await bad.closed;
      await waitFor(() => errors.length === 1 && closes.size === 1, 5000, 'onError and onClose');
      expect((errors[0][0] as Error).message).to.equal('handler failed');
      expect(errors[0][1]).to.equal(thrower);
      expect(closes.get(thrower!)?.message).to.equal('handler failed');
      good.socket.write('still served');
      await waitFor(() => good.text() === 'still served', 5000, 'echo on the other connection');
      good.socket.destroy();
    });
  });
}
