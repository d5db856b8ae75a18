// The ingest port over real sockets: limits, timeouts, odd bytes, acks, backpressure,
// octet counting (also with the real `logger`), 'line' events, graceful stop.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import type * as net from 'node:net';

import { BACKEND_NAMES, tryBackend } from '@logcaster/core';

import type { LogLine } from '../../src';
import { CAPACITY_MESSAGE } from '../../src/ingest/ingest-port';
import { connectTo, delay, itUnless, pattern, rmDir, sendAndClose, tmpDir, waitFor } from '@logcaster/testkit';
import { QueryClient, startServer, stripStamp } from '../support/helpers';

describe('ingest port', function () {
  this.timeout(30000);

  it('refuses clients beyond --max-clients with the capacity message, serves the others', async () => {
    const { lc, info } = await startServer({ maxClients: 2 });
    try {
      const a = await connectTo(info.ingestPort);
      const b = await connectTo(info.ingestPort);
      await waitFor(() => lc.stats().clients === 2);
      const reply = await sendAndClose(info.ingestPort, 'refused line\n');
      expect(reply.toString()).to.equal(CAPACITY_MESSAGE);
      a.write('from a\n');
      b.end('from b\n');
      await waitFor(() => lc.stats().current === 2);
      expect(lc.stats().rejected).to.equal(1);
      a.destroy();
      await waitFor(() => lc.stats().clients === 0);
      const again = await sendAndClose(info.ingestPort, 'now fine\n');
      expect(again.length).to.equal(0);
      await waitFor(() => lc.stats().current === 3);
    } finally {
      await lc.stop();
    }
  });

  it('closes connections idle for --idle-timeout, not busy ones', async () => {
    // A 1 s timeout; the busy client writes every 100 ms (ten times more often than
    // needed, so a loaded machine's late timers cannot make it look idle).
    const { lc, info } = await startServer({ idleTimeout: 1 });
    try {
      const idle = await connectTo(info.ingestPort);
      const busy = await connectTo(info.ingestPort);
      let idleClosedAt = 0;
      let busyClosed = false;
      const t0 = Date.now();
      idle.on('close', () => (idleClosedAt = Date.now()));
      busy.on('close', () => (busyClosed = true));
      idle.on('error', () => {});
      busy.on('error', () => {});
      let ticks = 0;
      for (; ticks < 200 && (!idleClosedAt || Date.now() - t0 < 1500); ticks++) {
        busy.write(`tick ${ticks}\n`);
        await delay(100);
      }
      expect(idleClosedAt, 'idle connection closed').to.be.greaterThan(0);
      // Never before its timeout (the sweep may round down by its 100 ms tick).
      expect(idleClosedAt - t0, 'ms until the idle connection was closed').to.be.at.least(900);
      expect(busyClosed, 'busy connection closed').to.equal(false);
      busy.destroy();
      await waitFor(() => lc.stats().current === ticks, 5000, 'every tick stored');
    } finally {
      await lc.stop();
    }
  });

  it('keeps a line over 64 MiB whole (--max-line 100M), in answers and after a restart', async function () {
    this.timeout(120000);
    const dir = tmpDir('bigline');
    const big = pattern(80 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = 0x61 + (big[i] % 26); // 80 MiB of a-z, no newline
    const readBack = async (port: number): Promise<Buffer[]> => {
      const reply = await sendAndClose(port, 'RECENT 3\n');
      const lines: Buffer[] = [];
      for (let at = 0; at < reply.length; ) {
        const nl = reply.indexOf(10, at);
        lines.push(reply.subarray(at, nl));
        at = nl + 1;
      }
      expect(lines[0].toString()).to.equal('FOUND: 3 matches');
      expect(lines.length).to.equal(4);
      return lines.slice(1);
    };
    const check = (lines: Buffer[]): void => {
      expect(lines[0].toString()).to.match(/\] before$/);
      const stamp = lines[1].indexOf('] ') + 2;
      expect(lines[1].length - stamp, 'bytes of the big line').to.equal(big.length);
      expect(lines[1].subarray(stamp).equals(big), 'the big line, byte for byte, no marker').to.equal(true);
      expect(lines[2].toString()).to.match(/\] after$/);
    };
    try {
      let server = await startServer({ maxLine: 100 * 1024 * 1024, dataDir: dir });
      try {
        await sendAndClose(server.info.ingestPort, [Buffer.from('before\n'), big, Buffer.from('\nafter\n')]);
        await waitFor(() => server.lc.stats().total === 3, 30000, 'three lines stored');
        expect(server.lc.stats().truncated).to.equal(0);
        check(await readBack(server.info.queryPort));
      } finally {
        await server.lc.stop();
      }
      server = await startServer({ maxLine: 100 * 1024 * 1024, dataDir: dir });
      try {
        expect(server.info.reloaded).to.equal(3);
        check(await readBack(server.info.queryPort));
      } finally {
        await server.lc.stop();
      }
    } finally {
      rmDir(dir);
    }
  });

  it('truncates oversize lines with a marker and stores NUL and invalid UTF-8 bytes as they came', async () => {
    const { lc, info } = await startServer({ maxLine: 32 });
    try {
      const weird = Buffer.from([0x41, 0x00, 0x42, 0xff, 0xc3, 0x28, 0xed, 0xa0, 0x80, 0x43]);
      const long = 'L'.repeat(100_000);
      await sendAndClose(info.ingestPort, [Buffer.concat([weird, Buffer.from('\n')]), `${long}\n`, 'é'.repeat(40) + '\r\n', 'short\n']);
      await waitFor(() => lc.stats().current === 4);
      const s = lc.store;
      expect(s.line(0)).to.deep.equal(weird);
      expect(s.line(1).toString()).to.equal(`${'L'.repeat(32)}…[truncated ${100_000 - 32} bytes]`);
      expect(s.line(2).toString()).to.equal(`${'é'.repeat(16)}…[truncated 48 bytes]`);
      expect(s.line(3).toString()).to.equal('short');
      expect(lc.stats().truncated).to.equal(2);
      // the query port returns the raw bytes
      const q = await QueryClient.open(info.queryPort);
      q.send('RECENT 4');
      expect(await q.line()).to.equal('FOUND: 4 matches');
      const first = await q.lineBuf();
      expect(first.subarray(first.length - weird.length)).to.deep.equal(weird);
      expect(stripStamp(await q.line())).to.match(/…\[truncated 99968 bytes\]$/);
      q.close();
    } finally {
      await lc.stop();
    }
  });

  it('--ack answers OK per stored line, in order: the n-th OK means the first n lines are stored', async () => {
    const { lc, info } = await startServer({ ack: true });
    try {
      const lines = Array.from({ length: 5000 }, (_, i) => `ack line ${i}`);
      const s = await connectTo(info.ingestPort);
      let acks = 0;
      const early: string[] = [];
      s.on('data', (d: Buffer) => {
        expect(d.toString()).to.match(/^(OK\n)+$/);
        acks += d.length / 3;
        // The acks are identical; what tells them apart is what was stored when each came.
        if (lc.stats().current < acks || lc.store.line(acks - 1).toString() !== lines[acks - 1]) early.push(`ack ${acks}`);
      });
      const closed = new Promise((resolve) => s.once('close', resolve));
      s.end(lines.join('\n') + '\n');
      await closed;
      expect(acks).to.equal(5000);
      expect(early, 'acks that came before their line was stored').to.deep.equal([]);
      expect(lc.stats().current).to.equal(5000);
    } finally {
      await lc.stop();
    }
  });

  for (const name of BACKEND_NAMES) {
    const t = tryBackend(name);
    it(`${name}: pauses a client that never reads its acks, without stalling others${t.module ? '' : ` — skipped: ${t.attempt.reason.split('\n')[0]}`}`, async function () {
      if (!t.module) this.skip();
      const { lc, info } = await startServer({ backend: name, ack: true, capacity: 3_000_000 });
      try {
        const hog = await connectTo(info.ingestPort);
        hog.pause(); // never reads: its acks pile up in the kernel, then in our queue
        const total = 2_000_000; // 4 MB of lines → 6 MB of acks
        hog.write(Buffer.from('x\n'.repeat(total)));
        // The server must stop reading from the hog: the stored count stops growing,
        // well short of everything (unpaused, all 2M lines are in within a second or two).
        let stored = -1;
        for (const end = Date.now() + 15000; stored !== lc.stats().current && Date.now() < end; ) {
          stored = lc.stats().current;
          await delay(500);
        }
        expect(lc.stats().current, 'stored count once it stopped growing').to.equal(stored).and.below(total);
        // Others are served meanwhile.
        const reply = await sendAndClose(info.ingestPort, 'other client\n');
        expect(reply.toString()).to.equal('OK\n');
        // Once the hog reads, everything flows.
        let ackBytes = 0;
        hog.on('data', (d: Buffer) => (ackBytes += d.length));
        hog.resume();
        await waitFor(() => ackBytes === total * 3, 15000, () => `all acks (got ${ackBytes / 3}, stored ${lc.stats().current})`);
        expect(lc.stats().current).to.equal(total + 1);
        hog.destroy();
      } finally {
        await lc.stop();
      }
    });
  }

  it('reads RFC 6587 octet-counted frames', async () => {
    const { lc, info } = await startServer();
    try {
      const msgs = ['<13>1 - h app - - - first', 'second with\nnewline', '<14>Jan  1 00:00:00 h t: third'];
      const wire = msgs.map((m) => `${Buffer.byteLength(m)} ${m}`).join('');
      await sendAndClose(info.ingestPort, [wire.slice(0, 7), wire.slice(7, 40), wire.slice(40)], 20);
      await waitFor(() => lc.stats().current === 3);
      expect([0, 1, 2].map((i) => lc.store.line(i).toString())).to.deep.equal(msgs);
      const q = await QueryClient.open(info.queryPort);
      // an embedded newline never breaks the one-line-per-match answer
      expect((await q.found('SEARCH second')).lines.map(stripStamp)).to.deep.equal(['second with newline']);
      q.close();
    } finally {
      await lc.stop();
    }
  });

  const logger = '/usr/bin/logger';
  itUnless(fs.existsSync(logger) ? null : `${logger} is not installed (Debian: bsdutils)`, 'works with the real `logger --tcp --octet-count`', async () => {
    const { lc, info } = await startServer();
    try {
      const run = (args: string[]): Promise<void> =>
        new Promise((resolve, reject) =>
          execFile(logger, args, { timeout: 10000 }, (err, _o, stderr) => (err ? reject(new Error(`${err.message} ${stderr}`)) : resolve())),
        );
      await run(['--tcp', '--octet-count', '-n', '127.0.0.1', '-P', String(info.ingestPort), '-t', 'lctest', 'hello from logger']);
      await run(['--tcp', '--octet-count', '--rfc3164', '-n', '127.0.0.1', '-P', String(info.ingestPort), '-t', 'lctest', '-p', 'local3.warning', 'second message']);
      await waitFor(() => lc.stats().current === 2);
      const q = await QueryClient.open(info.queryPort);
      const r = await q.found('QUERY app=lctest');
      expect(r.n).to.equal(2);
      expect(stripStamp(r.lines[0])).to.match(/^<\d+>1 .* lctest .*hello from logger$/);
      expect(stripStamp(r.lines[1])).to.match(/^<156>.*lctest.*: second message$/);
      expect((await q.found('QUERY facility=local3 severity=warning')).n).to.equal(1);
      q.close();
    } finally {
      await lc.stop();
    }
  });

  it('takes a plain first line of <digits><space>... for octet counting, as documented; later lines are newline-framed', async () => {
    const { lc, info } = await startServer();
    try {
      // "5 apples..." reads as a 5-byte frame ("apple"); the rest has no valid header,
      // so the connection falls back to newline framing.
      await sendAndClose(info.ingestPort, '5 apples and pears\nnext line\n');
      await waitFor(() => lc.stats().current === 3, 5000, 'three lines');
      expect([0, 1, 2].map((i) => lc.store.line(i).toString())).to.deep.equal(['apple', 's and pears', 'next line']);
      // A connection whose first line does not start like that is never affected.
      await sendAndClose(info.ingestPort, 'first\n5 apples and pears\n');
      await waitFor(() => lc.stats().current === 5, 5000, 'two more lines');
      expect([3, 4].map((i) => lc.store.line(i).toString())).to.deep.equal(['first', '5 apples and pears']);
    } finally {
      await lc.stop();
    }
  });

  it("emits 'line' events only while a listener is attached", async () => {
    const { lc, info } = await startServer();
    try {
      const got: LogLine[] = [];
      const onLine = (e: LogLine): void => {
        got.push(e);
      };
      lc.on('line', onLine);
      await delay(1);
      await sendAndClose(info.ingestPort, '<13>1 - h myapp - - - one\ntwo\n');
      await waitFor(() => got.length === 2);
      expect(got[0].text).to.equal('<13>1 - h myapp - - - one');
      expect(got[0].syslog?.app).to.equal('myapp');
      expect(got[1].syslog).to.equal(undefined);
      expect(got[1].peer).to.equal('127.0.0.1');
      expect(Math.abs(got[1].timeMs - Date.now())).to.be.below(5000);
      lc.off('line', onLine);
      await sendAndClose(info.ingestPort, 'three\n');
      await waitFor(() => lc.stats().current === 3);
      expect(got).to.have.length(2);
    } finally {
      await lc.stop();
    }
  });

  it('stop() keeps reading what clients already sent, stores it, then closes', async () => {
    const { lc, info } = await startServer({ capacity: 500_000 });
    const socks: net.Socket[] = [];
    for (let c = 0; c < 10; c++) socks.push(await connectTo(info.ingestPort));
    for (const s of socks) s.on('error', () => {});
    const per = 20000;
    socks.forEach((s, c) => {
      const lines: string[] = [];
      for (let i = 0; i < per; i++) lines.push(`c${c} ${i}`);
      s.write(lines.join('\n') + '\n');
    });
    await delay(20);
    await lc.stop();
    expect(lc.stats().current).to.equal(10 * per);
    for (const s of socks) s.destroy();
  });

  it('runs inside a busy Node process without blocking its event loop', async () => {
    // 1M lines (2 MB) on one connection. Node's loop must turn while they are ingested:
    // a check on every loop iteration sees the store part-filled. Had the server held
    // the loop until everything was in, every check would see 0 or all of them.
    const { lc, info } = await startServer({ capacity: 1_000_000 });
    try {
      const total = 1_000_000;
      const seen = new Set<number>();
      let watching = true;
      const watch = (): void => {
        seen.add(lc.stats().current);
        if (watching) setImmediate(watch);
      };
      watch();
      await sendAndClose(info.ingestPort, 'a\n'.repeat(total));
      await waitFor(() => lc.stats().current === total, 20000, 'every line stored');
      watching = false;
      const partial = [...seen].filter((n) => n > 0 && n < total);
      expect(partial.length, 'loop iterations that saw the store part-filled').to.be.greaterThan(1);
    } finally {
      await lc.stop();
    }
  });
});
