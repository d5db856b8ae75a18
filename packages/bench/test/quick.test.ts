// Runs the benchmark as a child process in --quick mode, cut down further to every
// workload once on one server of each kind (the C reference, node:net, the reactor
// and LogCaster on auto's backend), and checks that the harness works end to end and
// that every server moved data. No timing thresholds: this machine's speed is not
// under test here. Every backend is benchmarked by `npm run bench` (docs/BENCHMARKS.md).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { expect } from 'chai';

import { loadBackend } from '@logcaster/core';

import type { BenchResults, Cell } from '../src/types';

const backend = loadBackend('auto').name;

describe('bench --quick', function () {
  this.timeout(240000);
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'logcaster-bench-test-'));
  let res: BenchResults;
  let stdout = '';

  before(function () {
    const cli = path.resolve(__dirname, '..', 'src', 'cli.js');
    const smoke = ['--duration', '0.2', '--warmup', '0.05', '--conns', '1', '--idle', '100', '--idle-conns', '50', '--c-models', 'epoll'];
    const only = ['--only', `c-epoll,node-net,reactor-${backend},logcaster-${backend}`];
    const r = spawnSync(process.execPath, [cli, '--quick', ...smoke, ...only, '--out', out], { encoding: 'utf8', timeout: 230000 });
    stdout = r.stdout;
    if (r.status !== 0) throw new Error(`bench --quick exited ${r.status ?? r.signal}: ${r.stderr.slice(-2000)}`);
    res = JSON.parse(fs.readFileSync(path.join(out, 'latest.json'), 'utf8')) as BenchResults;
  });

  after(() => fs.rmSync(out, { recursive: true, force: true }));

  const moved = (c: Cell): boolean => c.runs.some((r) => !r.error && r.load !== undefined && r.load.messages > 0);

  it('prints the markdown tables and describes the machine', () => {
    expect(stdout).to.contain('### Echo ping-pong');
    expect(stdout).to.contain('### Targets');
    expect(res.machine.cores).to.be.greaterThan(0);
    expect(res.machine.node).to.match(/^v\d+/);
    expect(res.machine.kernel).to.be.a('string').and.not.equal('');
  });

  it('moves data through the C reference servers and node:net', () => {
    for (const id of ['c-epoll', 'node-net']) {
      const cells = res.cells.filter((c) => c.server === id && c.workload === 'echo');
      expect(cells, id).to.not.be.empty;
      for (const c of cells) expect(moved(c), `${c.key}: ${c.runs.map((r) => r.error).join(' ')}`).to.equal(true);
    }
  });

  it(`moves data through the reactor (${backend}, auto's choice)`, () => {
    const cells = res.cells.filter((c) => c.server === `reactor-${backend}` && !c.skip);
    expect(cells.map((c) => c.workload), `reactor-${backend} cells`).to.include.members(['echo', 'sparse', 'idle-rss']);
    for (const c of cells.filter((x) => x.workload !== 'idle-rss')) expect(moved(c), `${c.key}: ${c.runs.map((r) => r.error).join(' ')}`).to.equal(true);
  });

  it("measures Node's event-loop delay beside the reactor and servers' CPU while idle", () => {
    const echo = res.cells.find((c) => c.server === `reactor-${backend}` && c.workload === 'echo');
    const loop = echo?.runs[0]?.loopDelayMs;
    expect(loop, 'loop delay of the reactor echo server').to.be.an('object');
    expect(loop!.p99).to.be.at.most(loop!.max);
    expect(echo!.summary?.loopP99).to.equal(loop!.p99);
    expect(stdout).to.contain("### Node's event loop beside the reactor");
    expect(stdout).to.match(new RegExp(`\\| server CPU while they idle \\([\\d.]+ s\\) \\| reactor-${backend} \\| [\\d.]+% of a core`));
  });

  it(`ingests through LogCaster (${backend}): acked, streamed with nothing lost, persisted`, () => {
    const lc = res.cells.filter((c) => c.server === `logcaster-${backend}` && !c.skip && c.workload !== 'idle-rss');
    expect(lc.map((c) => c.workload), 'LogCaster cells (the server is part of this workspace)').to.include.members(['ack', 'stream', 'persist']);
    for (const c of lc) expect(moved(c), `${c.key}: ${c.runs.map((r) => r.error).join(' ')}`).to.equal(true);
    for (const c of lc.filter((x) => x.workload === 'stream')) {
      expect(c.summary?.stored, `${c.key} stored lines`).to.be.greaterThan(0);
      expect(c.summary?.lost, `${c.key} lost lines`).to.equal(0);
    }
  });

  it('holds idle connections on every server and measures their memory', () => {
    const idle = res.cells.filter((c) => c.workload === 'idle-rss' && !c.skip);
    expect(idle.map((c) => c.server), 'idle-rss cells').to.include.members(['c-epoll', 'node-net', `reactor-${backend}`, `logcaster-${backend}`]);
    for (const c of idle) {
      expect(c.runs.every((r) => !r.error), `${c.key}: ${c.runs.map((r) => r.error).join(' ')}`).to.equal(true);
      expect(c.summary?.idleBytesPerConn, `${c.key} bytes per idle connection`).to.be.a('number').and.not.NaN;
    }
  });

  it('writes the raw JSON and the SVG charts', () => {
    const files = fs.readdirSync(out);
    expect(files.some((f) => /^bench-.*\.json$/.test(f))).to.equal(true);
    for (const f of ['throughput-echo.svg', 'sparse.svg', 'latency-echo-1.svg']) {
      expect(files, f).to.include(f);
      expect(fs.readFileSync(path.join(out, f), 'utf8')).to.match(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    }
  });
});
