// The ingest port over real sockets: limits, timeouts, odd bytes, acks, backpressure,
// octet counting (also with the real `logger`), 'line' events, graceful stop.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import type * as net from 'node:net';

import { BACKEND_NAMES, tryBackend } from '@logcaster/core';

import type { LogLine } from '../../src';
import { CAPACITY_MESSAGE } from '../../src/ingest/ingest-port';
import { connectTo, delay, sendAndClose, waitFor } from '@logcaster/testkit';
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
    const { lc, info } = await startServer({ idleTimeout: 0.4 });
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
      for (let i = 0; i < 10; i++) {
        busy.write(`tick ${i}\n`);
        await delay(100);
      }
      expect(idleClosedAt, 'idle connection closed').to.be.greaterThan(0);
      expect(idleClosedAt - t0).to.be.within(300, 1500);
      expect(busyClosed).to.equal(false);
      busy.destroy();
      expect(lc.stats().current).to.equal(10);
    } finally {
      await lc.stop();
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

  it('--ack answers OK per stored line, in order', async () => {
    const { lc, info } = await startServer({ ack: true });
    try {
      const lines = Array.from({ length: 5000 }, (_, i) => `ack line ${i}`);
      const reply = await sendAndClose(info.ingestPort, lines.join('\n') + '\n');
      expect(reply.toString()).to.equal('OK\n'.repeat(5000));
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
        // The server must stop reading from the hog well before everything is stored.
        await delay(1000);
        expect(lc.stats().current).to.be.below(total);
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

  it('works with the real `logger --tcp --octet-count`', async function () {
    const logger = '/usr/bin/logger';
    if (!fs.existsSync(logger)) {
      console.log('      (skipped: /usr/bin/logger not installed)');
      this.skip();
    }
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
    const { lc, info } = await startServer();
    try {
      let ticks = 0;
      const iv = setInterval(() => ticks++, 10);
      await sendAndClose(info.ingestPort, 'a\n'.repeat(100000));
      await delay(300);
      clearInterval(iv);
      expect(ticks).to.be.greaterThan(5);
      expect(lc.stats().current).to.equal(100000);
    } finally {
      await lc.stop();
    }
  });
});
