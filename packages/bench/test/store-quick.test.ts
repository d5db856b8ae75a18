// The store benchmark's smoke run (`store/cli.js --quick`, cut down further) and its line
// checker. It checks that the harness works end to end — every peer's output read back and
// checked by sequence number, LogCaster's query counts equal to grep's — never how fast
// anything is. The full run is by hand (docs/BENCHMARKS.md).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { expect } from 'chai';

import { buildC } from '../src/build';
import { runSeqcheck } from '../src/store/ingest';
import type { StoreResults } from '../src/store/types';
import { which } from '../src/util';

const haveRsyslog = Boolean(which('rsyslogd') ?? (fs.existsSync('/usr/sbin/rsyslogd') ? '/usr/sbin/rsyslogd' : undefined));

describe('store bench: seqcheck', function () {
  this.timeout(30000);
  const bins = buildC();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'logcaster-seqcheck-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const line = (c: number, s: number): string => `<134>Dec  2 01:02:03 web01 app[4001]: c=${String(c).padStart(4, '0')} s=${String(s).padStart(10, '0')} login\n`;

  it('counts lost, duplicated, unexpected and reordered lines, in any framing', async () => {
    // connection 0 sent 0..4, connection 1 sent 0..2
    const body = [line(0, 0), line(0, 1), line(0, 3), line(0, 3), line(0, 2), line(1, 0), line(1, 7), line(2, 0)].join('');
    // binary bytes between lines (as in a journal segment) and a token split across the 4 MiB read boundary
    const file = path.join(dir, 'out.bin');
    fs.writeFileSync(file, Buffer.concat([Buffer.alloc((1 << 22) - 30, 0xfe), Buffer.from(body), Buffer.from([0, 1, 2])]));
    const r = await runSeqcheck(bins, [5, 3], [file]);
    expect(r).to.include({ sent: 8, found: 8, distinct: 5, duplicates: 1, lost: 3, unexpected: 2, out_of_order: 1 });
  });

  it('reads stdin and finds nothing wrong in a complete output', async () => {
    const { Readable } = await import('node:stream');
    const r = await runSeqcheck(bins, [2, 1], Readable.from([`[2026-12-02 01:02:03] ${line(0, 0)}${line(1, 0)}${line(0, 1)}`]));
    expect(r).to.include({ found: 3, distinct: 3, duplicates: 0, lost: 0, unexpected: 0, out_of_order: 0 });
  });
});

describe('store bench --quick', function () {
  this.timeout(120000);
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'logcaster-storebench-test-'));
  let res: StoreResults;
  let stdout = '';
  const peers = ['logcaster-journal', 'logcaster-memory', ...(haveRsyslog ? ['rsyslog-imtcp'] : [])];

  before(function () {
    const cli = path.resolve(__dirname, '..', 'src', 'store', 'cli.js');
    const args = ['--quick', '--peers', peers.join(','), '--duration', '0.2', '--query-lines', '10k', '--history-lines', '10k', '--scan-ingest', '0.2', '--out', out];
    const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 110000 });
    stdout = r.stdout;
    if (r.status !== 0) throw new Error(`store bench --quick exited ${r.status ?? r.signal}: ${r.stderr.slice(-2000)}`);
    res = JSON.parse(fs.readFileSync(path.join(out, 'latest.json'), 'utf8')) as StoreResults;
  });

  after(() => fs.rmSync(out, { recursive: true, force: true }));

  it('streams numbered lines into LogCaster, with and without a journal, and finds every one', () => {
    for (const id of ['logcaster-journal', 'logcaster-memory']) {
      const s = res.ingest.find((x) => x.peer === id);
      expect(s, id).to.be.an('object');
      expect(s!.runs, `${id}: ${s!.error}`).to.equal(1);
      expect(s!.sent, `${id} lines sent`).to.be.greaterThan(0);
      expect(s!).to.include({ lost: 0, duplicates: 0, unexpected: 0, incomplete: false });
    }
    const run = res.ingestRuns.find((r) => r.peer === 'logcaster-journal')!;
    expect(run.stored, 'lines found in the journal files').to.equal(run.sent);
    expect(run.checked).to.match(/^every line/);
  });

  it(haveRsyslog ? 'checks rsyslog\'s output file line by line' : 'rsyslog: SKIPPED (rsyslogd is not installed)', function () {
    if (!haveRsyslog) this.skip();
    const run = res.ingestRuns.find((r) => r.peer === 'rsyslog-imtcp');
    expect(run, 'rsyslog run').to.be.an('object');
    expect(run!.sent).to.be.greaterThan(0);
    expect(run!.stored, 'lines in rsyslog\'s file').to.equal(run!.sent);
  });

  it('answers each query with the count grep finds in the same lines', () => {
    expect(res.query?.error).to.equal(undefined);
    expect(res.query!.cases).to.have.length(3);
    for (const c of res.query!.cases) {
      expect(c.error, c.name).to.equal(undefined);
      expect(c.logcaster!.count, c.name).to.equal(c.grep!.count);
    }
    expect(res.query!.cases.find((c) => c.name.startsWith('keyword, absent'))!.grep!.count).to.equal(0);
    expect(res.query!.cases.find((c) => c.name.startsWith('regex'))!.grep!.count).to.be.greaterThan(0);
  });

  it('keeps a history mostly on disk and finds the rare keyword in it', () => {
    const h = res.history!;
    expect(h.error).to.equal(undefined);
    expect(Number(h.capacity)).to.be.lessThan(h.lines);
    expect(h.journalBytes).to.be.greaterThan(h.bytes * 0.9);
    expect(h.rare!.grep!.count, 'grep over the journal files').to.equal(10);
    expect(h.ingestAlone).to.be.greaterThan(0);
    expect(h.ingestDuringScan).to.be.greaterThan(0);
  });

  it('prints the tables and the targets, and writes the charts', () => {
    expect(stdout).to.contain('### Streamed ingest into storage');
    expect(stdout).to.contain('### Targets (issue 12)');
    for (const f of ['store-ingest.svg', 'store-queries.svg']) {
      expect(fs.readFileSync(path.join(out, f), 'utf8')).to.match(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    }
  });
});
