// The "no line lost" check on every backend that loads here: 100 connections send
// 2000 numbered lines each (200k in all); every number must be stored exactly once,
// in per-connection order. Counted and verified through the query port.
import { expect } from 'chai';
import type * as net from 'node:net';

import { BACKEND_NAMES, tryBackend } from '@logcaster/core';

import { connectTo, waitFor } from '@logcaster/testkit';
import { QueryClient, startServer, stripStamp } from '../support/helpers';

const CONNS = 100;
const PER_CONN = 2000;
const TOTAL = CONNS * PER_CONN;

describe('200k-line sequence check per backend', function () {
  this.timeout(60000);
  for (const name of BACKEND_NAMES) {
    const t = tryBackend(name);
    const title = t.module ? `${name}: every line stored exactly once, in order` : `${name}: skipped — ${t.attempt.status}: ${t.attempt.reason.split('\n')[0]}`;
    it(title, async function () {
      if (!t.module) this.skip();
      const { lc, info } = await startServer({ backend: name, capacity: TOTAL });
      try {
        expect(info.backend).to.equal(name);
        const socks: net.Socket[] = await Promise.all(Array.from({ length: CONNS }, () => connectTo(info.ingestPort)));
        const done = socks.map(
          (s, c) =>
            new Promise<void>((resolve, reject) => {
              s.on('close', () => resolve());
              s.on('error', reject);
              // in several writes so lines straddle packets
              let i = 0;
              const step = (): void => {
                const lines: string[] = [];
                const end = Math.min(PER_CONN, i + 257);
                for (; i < end; i++) lines.push(`seq c=${c} n=${i} ${'p'.repeat((c * 7 + i) % 50)}`);
                const more = s.write(lines.join('\n') + '\n');
                if (i >= PER_CONN) s.end();
                else if (more) setImmediate(step);
                else s.once('drain', step);
              };
              step();
            }),
        );
        await Promise.all(done);
        await waitFor(() => lc.stats().current >= TOTAL, 20000, 'all lines stored');
        const q = await QueryClient.open(info.queryPort);
        expect(await q.ask('COUNT')).to.equal(`COUNT: ${TOTAL}`);
        const stats = await q.ask('STATS');
        expect(stats).to.match(new RegExp(`^STATS: Total=${TOTAL}, Dropped=0, Current=${TOTAL}, `));
        expect(stats).to.include(`Backend=${name}`);
        q.send(`RECENT ${TOTAL}`);
        expect(await q.line()).to.equal(`FOUND: ${TOTAL} matches`);
        const next = new Int32Array(CONNS);
        for (let k = 0; k < TOTAL; k++) {
          const text = stripStamp(await q.line(20000));
          const m = /^seq c=(\d+) n=(\d+) p*$/.exec(text);
          if (!m) throw new Error(`corrupt line: ${text}`);
          const c = Number(m[1]);
          const n = Number(m[2]);
          if (n !== next[c]) throw new Error(`connection ${c}: expected n=${next[c]}, got n=${n}`);
          next[c]++;
        }
        expect(Array.from(next).every((n) => n === PER_CONN)).to.equal(true);
        q.close();
      } finally {
        await lc.stop();
      }
    });
  }
});
