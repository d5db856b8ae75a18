// Runs the datagram benchmark as a child process in --quick mode, cut down to 64-byte
// ingest and echo on auto's backend, and checks that the harness works end to end: every
// receiver got datagrams, the receivers that count kernel drops (the C reference, the
// reactor, LogCaster) account for every datagram not stored, and the tables are printed. No rate or loss thresholds: this machine's speed is not under test
// here (docs/BENCHMARKS.md has the measured numbers).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { expect } from 'chai';

import { loadBackend } from '@logcaster/core';

interface IngestRun { receiver: string; sent: number; stored: number; lost: number; kernelDropped?: number; cpuPerM: number; error?: string }
interface EchoRun { server: string; flows: number; rate: number; error?: string }

const backend = loadBackend('auto').name;

describe('bench udp --quick', function () {
  this.timeout(180000);
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'logcaster-bench-udp-test-'));
  let stdout = '';
  let results: { ingest: IngestRun[]; echo: EchoRun[] };

  before(function () {
    const cli = path.resolve(__dirname, '..', 'src', 'udp.js');
    const r = spawnSync(process.execPath, [cli, '--quick', '--only', 'ingest,echo', '--sizes', '64', '--flows', '4', '--backends', backend, '--out', out], { encoding: 'utf8', timeout: 170000 });
    stdout = r.stdout;
    if (r.status !== 0) throw new Error(`udp bench exited ${r.status ?? r.signal}: ${r.stderr.slice(-2000)}`);
    const file = fs.readdirSync(out).find((f) => /^udp-.*\.json$/.test(f));
    results = (JSON.parse(fs.readFileSync(path.join(out, file!), 'utf8')) as { results: typeof results }).results;
  });

  after(() => fs.rmSync(out, { recursive: true, force: true }));

  it('prints the ingest and echo tables with the load average', () => {
    expect(stdout).to.contain('### UDP ingest, 64-byte datagrams');
    expect(stdout).to.contain('### UDP echo ping-pong, 64 B, 4 flow(s)');
    expect(stdout).to.match(/load average at start [\d.]+ [\d.]+ [\d.]+/);
  });

  it(`ingest: the C reference, node:dgram, the reactor and LogCaster (${backend}) stored datagrams; counted kernel drops = sent - stored`, () => {
    const ids = results.ingest.map((x) => x.receiver);
    expect(ids).to.include.members(['c-recvmmsg', 'node-dgram', `reactor-${backend}`, `logcaster-${backend}`]);
    for (const x of results.ingest) {
      expect(x.error, `${x.receiver}: ${x.error}`).to.equal(undefined);
      expect(x.sent, x.receiver).to.equal(20000);
      expect(x.stored, x.receiver).to.be.greaterThan(0);
      if (x.receiver !== 'node-dgram' && x.receiver !== 'rsyslog-imudp') expect(x.kernelDropped, `${x.receiver} kernel drops`).to.equal(x.sent - x.stored);
      expect(x.cpuPerM, x.receiver).to.be.a('number');
    }
  });

  it('echo: every server answered round trips on 1 and 4 flows', () => {
    for (const id of ['c-recvmmsg', 'node-dgram', `reactor-${backend}`]) {
      for (const flows of [1, 4]) {
        const x = results.echo.find((e) => e.server === id && e.flows === flows);
        expect(x, `${id} ${flows}`).to.not.equal(undefined);
        expect(x!.error, `${id}: ${x!.error}`).to.equal(undefined);
        expect(x!.rate, `${id} ${flows} flows`).to.be.greaterThan(0);
      }
    }
  });
});
