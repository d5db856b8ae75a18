// The `logcaster` command as a child process: flags, start line, signals,
// persistence across restarts, and kill -9 with acks after fsync.
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';

import { checkOptions, OPTIONS, parseCli } from '../../src/cli/args';
import { createLogCaster, type FsyncPolicy, type LogCasterOptions } from '../../src';
import { parseSize } from '../../src/cli/size';
import { connectTo, delay, tmpDir } from '@logcaster/testkit';
import { runSync, startCliPerTest } from '../support/cli';
import { QueryClient, stripStamp } from '../support/helpers';

describe('logcaster CLI', function () {
  this.timeout(60000);
  const start = startCliPerTest();

  it('parses sizes with suffixes', () => {
    expect(parseSize('64k')).to.equal(65536);
    expect(parseSize('16M')).to.equal(16 * 1024 * 1024);
    expect(parseSize('1g')).to.equal(1024 ** 3);
    expect(parseSize('100')).to.equal(100);
    expect(parseSize('-1')).to.equal(undefined);
    expect(parseSize('12q')).to.equal(undefined);
    const r = parseCli(['--max-line', '64k', '--capacity', '200k', '--rotate-size=16M', '--fsync', 'always', '--ack', '--data-dir', 'none']);
    expect(r.ok).to.equal(true);
    if (r.ok) expect(r.value.server).to.include({ maxLine: 65536, capacity: 200000, rotateSize: 16 * 1024 * 1024, fsync: 'always', ack: true, dataDir: null });
  });

  it('parses retention sizes and durations', () => {
    const r = parseCli(['--retention-size', '2T', '--retention-time', '30d']);
    expect(r.ok).to.equal(true);
    if (r.ok) expect(r.value.server).to.include({ retentionSize: 2 * 1024 ** 4, retentionTime: 30 * 86400 });
    for (const [text, seconds] of [['3600', 3600], ['90m', 5400], ['12h', 43200], ['2w', 1209600], ['0', 0]] as const) {
      const p = parseCli(['--retention-time', text]);
      expect(p.ok && p.value.server.retentionTime, text).to.equal(seconds);
    }
    for (const text of ['1.5s', '5y', '-1h', 'h']) expect(parseCli(['--retention-time', text]).ok, text).to.equal(false);
  });

  it('exits 2 with a clear message on bad flags and values', () => {
    const bad = [
      ['--bogus'],
      ['--port', 'abc'],
      ['--port', '70000'],
      ['--backend', 'kqueue2'],
      ['--fsync', 'sometimes'],
      ['--max-line', '5x'],
      ['--max-line', '4'],
      ['--capacity', '0'],
      ['--capacity'],
      ['--idle-timeout', '-3'],
      ['--ack=yes'],
      ['stray'],
      // Out of range: Node clamps timers above 2^31-1 ms to 1 ms, typed arrays stop at 2^32.
      ['--idle-timeout', '5000000'],
      ['--regex-timeout', '3000000000'],
      ['--fsync-interval', '3000000000'],
      ['--capacity', '4295M'],
    ];
    for (const args of bad) {
      const r = runSync(args);
      expect(r.status, args.join(' ')).to.equal(2);
      expect(r.stderr, args.join(' ')).to.match(new RegExp(`^logcaster: .*${args[0].split('=')[0]}.*\n`));
      expect(r.stdout).to.equal('');
    }
  });

  it('range-checks every numeric option of the table: the bounds are accepted, one past them is refused', () => {
    const numeric = OPTIONS.filter((row) => row.min !== undefined || row.max !== undefined);
    expect(numeric.length).to.be.at.least(9);
    for (const row of numeric) {
      for (const ok of [row.min, row.max]) {
        if (ok === undefined) continue;
        const r = parseCli([row.flag, String(ok)]);
        expect(r.ok, `${row.flag} ${ok}`).to.equal(true);
        if (r.ok && row.key !== 'help' && row.key !== 'version') expect(r.value.server[row.key], `${row.flag} ${ok}`).to.equal(ok);
      }
      const outside = [row.max !== undefined ? row.max + 1 : undefined, row.min !== undefined && row.min > 0 ? row.min - 1 : undefined];
      for (const v of outside) {
        if (v === undefined) continue;
        const r = parseCli([row.flag, String(v)]);
        expect(r.ok, `${row.flag} ${v} must be refused`).to.equal(false);
        if (!r.ok) expect(r.error).to.match(new RegExp(`^invalid ${row.flag} '${v}' \\(must be `));
      }
    }
  });

  it('embedding: out-of-range and mistyped options throw a RangeError naming the option', () => {
    const cases: [LogCasterOptions, RegExp][] = [
      [{ idleTimeout: 5_000_000 }, /idleTimeout must be 0 s to 2147483 s/],
      [{ regexTimeoutMs: 3_000_000_000 }, /regexTimeoutMs must be/],
      [{ fsyncIntervalMs: 0 }, /fsyncIntervalMs must be/],
      [{ capacity: 4_295_000_000 }, /capacity must be/],
      [{ maxLine: 1.5 }, /maxLine expected/],
      [{ port: '9999' as unknown as number }, /port expected a number/],
      [{ fsync: 'sometimes' as FsyncPolicy }, /fsync expected one of/],
    ];
    for (const [opts, re] of cases) expect(() => createLogCaster(opts), JSON.stringify(opts)).to.throw(RangeError, re);
  });

  it('every default in the option table is itself valid and of its kind', () => {
    for (const row of OPTIONS) {
      if (row.default === undefined || row.key === 'help' || row.key === 'version') continue;
      expect(checkOptions({ [row.key]: row.default }), row.flag).to.equal(undefined);
    }
  });

  it('--help lists every option of the table with its range and default; --version prints the version', () => {
    const h = runSync(['--help']);
    expect(h.status).to.equal(0);
    for (const row of OPTIONS) {
      expect(h.stdout).to.include(row.flag);
      if (row.alias) expect(h.stdout).to.include(`${row.alias}, ${row.flag}`);
    }
    expect(h.stdout).to.match(/--max-line <size> +.*\n(.*\n)*? +.*16 to 256M; default 64k\)/);
    const v = runSync(['--version']);
    expect(v.status).to.equal(0);
    expect(v.stdout).to.match(/^logcaster \d+\.\d+\.\d+\n$/);
  });

  it('prints one start line; SIGTERM exits 0', async () => {
    const run = await start(['--data-dir', 'none']);
    expect(run.line).to.match(/^LogCaster \S+ backend=\w+ ingest=127\.0\.0\.1:\d+ query=127\.0\.0\.1:\d+ http=127\.0\.0\.1:\d+ data-dir=none \(memory only\)$/);
    run.child.kill('SIGTERM');
    expect((await run.exited).code).to.equal(0);
  });

  describe('persistence', function () {
    it('reloads stored lines after a restart', async () => {
      const dir = tmpDir();
      try {
        const a = await start(['--data-dir', dir]);
        expect(a.line).to.include(`data-dir=${dir}`);
        const s = await connectTo(a.ingestPort);
        s.end(Array.from({ length: 1000 }, (_, i) => `persist ${i}`).join('\n') + '\n');
        await new Promise((r) => s.once('close', r));
        await delay(100);
        a.child.kill('SIGINT');
        expect((await a.exited).code).to.equal(0);
        const b = await start(['--data-dir', dir]);
        expect(b.line).to.include('reloaded=1000');
        const q = await QueryClient.open(b.queryPort);
        expect(await q.ask('COUNT')).to.equal('COUNT: 1000');
        const r = await q.found('RECENT 2');
        expect(r.lines.map(stripStamp)).to.deep.equal(['persist 998', 'persist 999']);
        q.close();
        b.child.kill('SIGTERM');
        expect((await b.exited).code).to.equal(0);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it('SIGTERM while clients are sending: finishes received lines, flushes, exits 0, nothing lost', async () => {
      const dir = tmpDir();
      try {
        const a = await start(['--data-dir', dir, '--fsync', 'never', '--capacity', '300k']);
        const s = await connectTo(a.ingestPort);
        s.on('error', () => {});
        const N = 200_000;
        const lines: string[] = [];
        for (let i = 0; i < N; i++) lines.push(`term ${i}`);
        s.write(lines.join('\n') + '\n');
        await new Promise<void>((r) => (s.writableLength === 0 ? r() : s.once('drain', () => r())));
        a.child.kill('SIGTERM');
        expect((await a.exited).code).to.equal(0);
        s.destroy();
        const b = await start(['--data-dir', dir, '--capacity', '300k']);
        const q = await QueryClient.open(b.queryPort);
        expect(await q.ask('COUNT')).to.equal(`COUNT: ${N}`);
        expect((await q.found('RECENT 1')).lines.map(stripStamp)).to.deep.equal([`term ${N - 1}`]);
        q.close();
        b.child.kill('SIGTERM');
        expect((await b.exited).code).to.equal(0);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it('kill -9 under --ack --fsync always loses no acknowledged line', async () => {
      const dir = tmpDir();
      try {
        const a = await start(['--data-dir', dir, '--ack', '--fsync', 'always', '--capacity', '1M']);
        const CONNS = 8;
        const acked = new Array<number>(CONNS).fill(0);
        const socks = await Promise.all(Array.from({ length: CONNS }, () => connectTo(a.ingestPort)));
        let stop = false;
        socks.forEach((s, c) => {
          s.on('error', () => {});
          s.on('data', (d: Buffer) => {
            for (let i = 0; i < d.length; i++) if (d[i] === 10) acked[c]++;
          });
          let n = 0;
          const pump = (): void => {
            if (stop || n >= 100_000) return;
            const batch: string[] = [];
            for (let k = 0; k < 200; k++) batch.push(`k9 c=${c} n=${n++}`);
            if (s.write(batch.join('\n') + '\n')) setImmediate(pump);
            else s.once('drain', pump);
          };
          pump();
        });
        await delay(1200);
        const ackedAtKill = acked.slice();
        a.child.kill('SIGKILL');
        stop = true;
        await a.exited;
        for (const s of socks) s.destroy();
        // acks that arrived before the kill are what we must find (late ones are bonus)
        expect(ackedAtKill.reduce((x, y) => x + y, 0)).to.be.greaterThan(1000);
        const b = await start(['--data-dir', dir, '--capacity', '1M']);
        const q = await QueryClient.open(b.queryPort);
        const count = Number(/^COUNT: (\d+)$/.exec(await q.ask('COUNT'))![1]);
        const r = await q.found(`RECENT ${count}`, 60000);
        const next = new Array<number>(CONNS).fill(0);
        for (const [i, line] of r.lines.entries()) {
          const text = stripStamp(line);
          const m = /^k9 c=(\d+) n=(\d+)$/.exec(text);
          if (!m) {
            // Only the newest line may be torn (cut by the kill), and only as a prefix of
            // one; it was never acknowledged. Anything else is damage.
            expect(i, `malformed line ${i} of ${r.lines.length}: ${text}`).to.equal(r.lines.length - 1);
            expect(text, 'torn last line').to.match(/^k(9( (c(=(\d+( (n(=\d*)?)?)?)?)?)?)?)?$/);
            continue;
          }
          const c = Number(m[1]);
          const n = Number(m[2]);
          expect(n, `connection ${c} order`).to.equal(next[c]);
          next[c]++;
        }
        for (let c = 0; c < CONNS; c++) expect(next[c], `connection ${c}: stored ${next[c]} < acked ${ackedAtKill[c]}`).to.be.at.least(ackedAtKill[c]);
        q.close();
        b.child.kill('SIGTERM');
        expect((await b.exited).code).to.equal(0);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
