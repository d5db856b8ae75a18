#!/usr/bin/env node
// `npm run bench:store`: keeping lines and finding them again.
//   ingest   streamed numbered syslog lines into LogCaster (journal, memory only), rsyslog and
//            syslog-ng; every peer's output checked line by line
//   query    full-scan keyword and regex queries over realistic lines in memory vs grep / rg
//   history  a rare keyword over a long history mostly on disk vs grep over the journal's
//            files; ingest during full-history scans; the server's memory
// Markdown on stdout; JSON and SVG charts in packages/bench/results/store/.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { BENCH_DIR, buildC, type CBinaries } from '../build';
import { Progress } from '../progress';
import { loadavg, machine, median, procStatusKb, run, sleep, which } from '../util';
import { writeCorpus } from './corpus';
import { ingestOnce, type IngestRun } from './ingest';
import { LOGCASTER_BIN } from '../servers';
import { filesUnder, keepEverythingFlags, makePeers, PEER_IDS, startLogcaster, type PeerId, type PeerSpec } from './peers';
import { repeat, sendFile, statsValue, timeProgram, timeQuery, waitStat, type ToolTimes } from './queries';
import { renderStoreMarkdown, storeTargets, writeStoreCharts } from './report';
import type { HistoryPart, IngestSummary, Part, QueryCase, QueryPart, StoreConfig, StoreResults } from './types';

function parseNum(v: string): number {
  const m = /^([\d.]+)([kKmM]?)$/.exec(v);
  if (!m) throw new Error(`not a number: ${v}`);
  return Number(m[1]) * (m[2] === '' ? 1 : /k/i.test(m[2]) ? 1e3 : 1e6);
}

const USAGE = [
  'usage: node packages/bench/dist/src/store/cli.js [options]',
  '  --quick               tiny counts, 1 repeat, peers that need no download (a smoke run)',
  '  --parts a,b           ingest,query,history (default: all)',
  `  --peers a,b           ingest peers (default: ${PEER_IDS.join(',')})`,
  '  --repeats N           runs per ingest peer and per query; medians are reported (default 3)',
  '  --duration S          seconds each ingest run streams (default 3)',
  '  --conns N --size B    ingest connections and line size (default 100, 64)',
  '  --query-lines N       lines of the in-memory query corpus (default 4M)',
  '  --history-lines N     lines retained for the history part (default 10M)',
  '  --scan-ingest S       seconds of ingest with and without a full-history scan (default 3)',
  '  --backend NAME        LogCaster backend (default auto)',
  '  --out DIR             results directory (default packages/bench/results/store)',
].join('\n');

function parseConfig(argv: string[]): StoreConfig {
  const quick = argv.includes('--quick');
  const c: StoreConfig = {
    quick,
    parts: ['ingest', 'query', 'history'],
    peers: [...PEER_IDS],
    repeats: quick ? 1 : 3,
    duration: quick ? 0.3 : 3,
    conns: quick ? 10 : 100,
    size: 64,
    queryLines: quick ? 20000 : 4e6,
    historyLines: quick ? 30000 : 10e6,
    scanIngestSeconds: quick ? 0.3 : 3,
    backend: 'auto',
    out: path.join(BENCH_DIR, 'results', 'store'),
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const take = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${k} needs a value`);
      return v;
    };
    switch (k) {
      case '--quick':
        break;
      case '--parts':
        c.parts = take().split(',') as Part[];
        break;
      case '--peers':
        c.peers = take().split(',');
        break;
      case '--repeats':
        c.repeats = Number(take());
        break;
      case '--duration':
        c.duration = Number(take());
        break;
      case '--conns':
        c.conns = Number(take());
        break;
      case '--size':
        c.size = Number(take());
        break;
      case '--query-lines':
        c.queryLines = parseNum(take());
        break;
      case '--history-lines':
        c.historyLines = parseNum(take());
        break;
      case '--scan-ingest':
        c.scanIngestSeconds = Number(take());
        break;
      case '--backend':
        c.backend = take();
        break;
      case '--out':
        c.out = path.resolve(take());
        break;
      case '--help':
      case '-h':
        process.stdout.write(`${USAGE}\n`);
        process.exit(0);
      // falls through (unreachable)
      default:
        throw new Error(`unknown option ${k} (try --help)`);
    }
  }
  for (const p of c.parts) if (!['ingest', 'query', 'history'].includes(p)) throw new Error(`unknown part ${p}`);
  for (const p of c.peers) if (!(PEER_IDS as string[]).includes(p)) throw new Error(`unknown peer ${p} (${PEER_IDS.join(', ')})`);
  return c;
}

function summarise(peer: string, runs: IngestRun[], errors: string[]): IngestSummary {
  const ok = runs.filter((r) => !r.error);
  const worst = (f: (r: IngestRun) => number): number => (ok.length ? Math.max(...ok.map(f)) : NaN);
  return {
    peer,
    runs: ok.length,
    failed: errors.length,
    error: errors[0],
    linesPerSec: median(ok.map((r) => r.linesPerSec)),
    cpuPerMLines: median(ok.map((r) => r.cpuPerMLines)),
    serverUtil: median(ok.map((r) => r.serverUtil)),
    clientUtil: median(ok.map((r) => r.clientUtil)),
    peakRssMb: median(ok.map((r) => r.peakRssMb)),
    lost: worst((r) => r.lost),
    duplicates: worst((r) => r.duplicates),
    unexpected: worst((r) => r.unexpected),
    outOfOrder: worst((r) => r.outOfOrder),
    incomplete: ok.some((r) => r.incomplete),
    checked: ok[0]?.checked ?? '',
    sent: median(ok.map((r) => r.sent)),
  };
}

async function ingestPart(cfg: StoreConfig, bins: CBinaries, peers: PeerSpec[], progress: Progress, res: StoreResults): Promise<void> {
  const runnable = peers.filter((p) => !p.skip);
  const errors = new Map<string, string[]>(runnable.map((p) => [p.id, []]));
  // repeats interleaved across peers, so a slow phase of the machine hits every peer alike
  for (let rep = 0; rep < cfg.repeats; rep++) {
    for (const p of runnable) {
      try {
        res.ingestRuns.push(await ingestOnce(bins, p, { conns: cfg.conns, size: cfg.size, duration: cfg.duration, stallMs: cfg.quick ? 3000 : 10000 }));
      } catch (e) {
        const msg = (e as Error).message;
        errors.get(p.id)!.push(msg);
        progress.note(`! ingest ${p.id}: ${msg}`);
      }
      progress.step(`ingest ${p.id} rep ${rep + 1}`, cfg.duration + 2);
    }
  }
  res.ingest = runnable.map((p) => summarise(p.id, res.ingestRuns.filter((r) => r.peer === p.id), errors.get(p.id)!));
}

/** Absent keyword, a common phrase and a regex: LogCaster (all lines in memory) vs grep and rg over the file. */
async function queryPart(cfg: StoreConfig, progress: Progress, res: StoreResults): Promise<void> {
  const file = path.join(BENCH_DIR, 'build', 'corpus', `query-${cfg.queryLines}.log`);
  const bytes = writeCorpus(file, { lines: cfg.queryLines, seed: 12 });
  const part: QueryPart = { lines: cfg.queryLines, bytes, cases: [], rssMb: NaN };
  res.query = part;
  const lc = await startLogcaster(cfg.backend, false, ['--capacity', String(Math.ceil(cfg.queryLines * 1.05)), ...REGEX_BUDGET]);
  try {
    await sendFile(lc.port, file);
    const total = await waitStat(lc.queryPort, 'Total', cfg.queryLines);
    if (total !== cfg.queryLines) throw new Error(`LogCaster stored ${total} of the corpus's ${cfg.queryLines} lines`);
    const cases: Array<{ name: string; command: string; grep: string[]; rg: string[] }> = [
      { name: 'keyword, absent', command: 'SEARCH zebrafish', grep: ['-cF', 'zebrafish'], rg: ['-c', '-F', 'zebrafish'] },
      { name: 'keyword, in ~7% of lines', command: 'SEARCH Failed password', grep: ['-cF', 'Failed password'], rg: ['-c', '-F', 'Failed password'] },
      { name: 'regex, ~1% of lines', command: 'REGEX " 50[23] 1[0-9]{5} "', grep: ['-cE', '" 50[23] 1[0-9]{5} "'], rg: ['-c', '" 50[23] 1[0-9]{5} "'] },
    ];
    for (const c of cases) {
      const qc: QueryCase = { name: c.name, command: c.command };
      try {
        qc.logcaster = await repeat(cfg.repeats, () => timeQuery(lc.queryPort, c.command));
        qc.grep = await repeat(cfg.repeats, () => timeProgram('grep', [...c.grep, file]));
        if (which('rg')) qc.rg = await repeat(cfg.repeats, () => timeProgram('rg', ['--no-filename', ...c.rg, file]));
        if (qc.logcaster.count !== qc.grep.count) qc.error = `LogCaster found ${qc.logcaster.count}, grep ${qc.grep.count}`;
      } catch (e) {
        qc.error = (e as Error).message;
      }
      if (qc.error) progress.note(`! query ${c.name}: ${qc.error}`);
      part.cases.push(qc);
      progress.step(`query ${c.name}`, 5);
    }
    part.rssMb = procStatusKb(lc.pid, 'VmRSS') / 1024;
    await lc.stop();
  } finally {
    await lc.stop().catch(() => undefined);
    lc.cleanup();
  }
}

/** Ingest rate over `seconds` (STATS Total before and after), optionally while a client keeps
 *  scanning the whole history. */
async function ingestRate(cfg: StoreConfig, bins: CBinaries, port: number, queryPort: number, seconds: number, scan: string | undefined): Promise<{ rate: number; scans: number }> {
  let scanning = Boolean(scan);
  let scans = 0;
  let scanError: Error | undefined;
  const scanner = (async () => {
    while (scanning) {
      await timeQuery(queryPort, scan!);
      scans++;
    }
  })().catch((e: Error) => {
    scanError = e;
  });
  try {
    const before = await statsValue(queryPort, 'Total');
    const t0 = Date.now();
    const r = await run(bins.loadgen, ['--port', String(port), '--mode', 'stream', '--seq', '--conns', String(cfg.conns), '--size', String(cfg.size), '--duration', String(seconds), '--warmup', '0'], (seconds + 300) * 1000);
    if (r.code !== 0) throw new Error(`loadgen: ${r.stderr.trim()}`);
    const sent = (JSON.parse(r.stdout) as { lines_sent: number }).lines_sent;
    const after = await waitStat(queryPort, 'Total', before + sent);
    const rate = (after - before) / ((Date.now() - t0) / 1000);
    scanning = false;
    await scanner;
    if (scanError) throw new Error(`the scan beside ingest failed: ${scanError.message}`);
    return { rate, scans };
  } finally {
    scanning = false;
    await scanner;
  }
}

async function historyPart(cfg: StoreConfig, bins: CBinaries, progress: Progress, res: StoreResults): Promise<void> {
  const needle = 'quokka7731';
  const file = path.join(BENCH_DIR, 'build', 'corpus', `history-${cfg.historyLines}.log`);
  const every = Math.max(1, Math.floor(cfg.historyLines / 10));
  const bytes = writeCorpus(file, { lines: cfg.historyLines, seed: 34, needle: { word: needle, every } });
  // the product's default window; a smoke run's history is smaller, so its window is too
  const capacity = String(Math.min(100000, Math.max(1000, Math.floor(cfg.historyLines / 10))));
  const h: HistoryPart = {
    lines: cfg.historyLines,
    bytes,
    capacity,
    journalBytes: NaN,
    journalFiles: 0,
    loadSeconds: NaN,
    filterSeconds: NaN,
    rssAfterLoadMb: NaN,
    rssAfterQueriesMb: NaN,
    hwmMb: NaN,
    ingestAlone: NaN,
    ingestDuringScan: NaN,
    ingestAloneRuns: [],
    ingestDuringScanRuns: [],
    scansDuringIngest: 0,
  };
  res.history = h;
  const keep = keepEverythingFlags((await run(process.execPath, [LOGCASTER_BIN, '--help'], 10000)).stdout);
  const lc = await startLogcaster(cfg.backend, true, ['--capacity', capacity, ...keep, ...REGEX_BUDGET]);
  try {
    const t0 = Date.now();
    await sendFile(lc.port, file);
    const persisted = await waitStat(lc.queryPort, 'Persisted', cfg.historyLines, 30000);
    h.loadSeconds = (Date.now() - t0) / 1000;
    if (persisted < cfg.historyLines) throw new Error(`the journal holds ${persisted} of ${cfg.historyLines} lines`);
    // Queries are timed once the token filters exist (a server's steady state): until
    // then a keyword query reads every segment still without one.
    const t1 = Date.now();
    while ((await statsValue(lc.queryPort, 'FiltersPending')) > 0) {
      if (Date.now() - t1 > 300000) throw new Error('token filters still pending after 300 s');
      await sleep(100);
    }
    h.filterSeconds = (Date.now() - t1) / 1000;
    // grep reads what LogCaster would: the segments (not the index and filter files)
    const journal = filesUnder(lc.dataDir!).filter((f) => /^logcaster-\d+\.log$/.test(path.basename(f)));
    h.journalFiles = journal.length;
    h.journalBytes = journal.reduce((a, f) => a + fs.statSync(f).size, 0);
    h.rssAfterLoadMb = procStatusKb(lc.pid, 'VmRSS') / 1024;
    progress.step('history loaded', 10);
    const rare: QueryCase = { name: `rare keyword (10 lines in ${cfg.historyLines})`, command: `SEARCH ${needle}` };
    try {
      rare.logcaster = await repeat(cfg.repeats, () => timeQuery(lc.queryPort, rare.command));
      rare.grep = await repeat(cfg.repeats, () => timeProgram('grep', ['-cF', needle, ...journal]));
      if (which('rg')) rare.rg = await repeat(cfg.repeats, () => timeProgram('rg', ['--no-filename', '-c', '-F', needle, ...journal]));
      if (rare.logcaster.count !== rare.grep.count) rare.error = `LogCaster found ${rare.logcaster.count}, grep over the journal ${rare.grep.count}`;
    } catch (e) {
      rare.error = (e as Error).message;
    }
    h.rare = rare;
    progress.step('history rare keyword', 5);
    const full: QueryCase = { name: 'keyword absent, whole history', command: 'SEARCH zebrafish' };
    try {
      full.logcaster = await repeat(cfg.repeats, () => timeQuery(lc.queryPort, full.command));
      full.grep = await repeat(cfg.repeats, () => timeProgram('grep', ['-cF', 'zebrafish', ...journal]));
    } catch (e) {
      full.error = (e as Error).message;
    }
    h.full = full;
    // a scan no token filter can skip (no literal to look up): the worst case beside ingest
    const scan = SCAN_ALL;
    for (let i = 0; i < cfg.repeats; i++) {
      h.ingestAloneRuns.push((await ingestRate(cfg, bins, lc.port, lc.queryPort, cfg.scanIngestSeconds, undefined)).rate);
      const during = await ingestRate(cfg, bins, lc.port, lc.queryPort, cfg.scanIngestSeconds, scan);
      h.ingestDuringScanRuns.push(during.rate);
      h.scansDuringIngest += during.scans;
      progress.step(`ingest with/without scans rep ${i + 1}`, 2 * cfg.scanIngestSeconds + 2);
    }
    h.ingestAlone = median(h.ingestAloneRuns);
    h.ingestDuringScan = median(h.ingestDuringScanRuns);
    h.rssAfterQueriesMb = procStatusKb(lc.pid, 'VmRSS') / 1024;
    h.hwmMb = procStatusKb(lc.pid, 'VmHWM') / 1024;
    await lc.stop();
  } catch (e) {
    h.error = (e as Error).message;
    progress.note(`! history: ${h.error}`);
  } finally {
    await lc.stop().catch(() => undefined);
    lc.cleanup();
  }
}

/** Matches no line of the corpus and has no literal a block filter could rule out. */
const SCAN_ALL = 'REGEX [xz][yq][jk][0-9]{4}';
/** Full scans of millions of lines take longer than the default 2 s regex budget. */
const REGEX_BUDGET = ['--regex-timeout', '600000'];

function toolVersions(): Record<string, string> {
  const v: Record<string, string> = {};
  const first = (cmd: string, args: string[]): string | undefined => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    return r.status === 0 ? r.stdout.split('\n')[0].trim() : undefined;
  };
  for (const [name, args] of [['grep', ['--version']], ['rg', ['--version']]] as Array<[string, string[]]>) {
    const s = first(name, args);
    if (s) v[name] = s;
  }
  return v;
}

async function main(): Promise<void> {
  const cfg = parseConfig(process.argv.slice(2));
  const t0 = Date.now();
  const loadStart = loadavg();
  const bins = buildC((m) => process.stderr.write(`${m}\n`));
  // a smoke run downloads nothing: syslog-ng only when installed or unpacked already
  const chosen = cfg.parts.includes('ingest') ? makePeers(cfg.backend, cfg.peers as PeerId[], !cfg.quick) : [];
  const res: StoreResults = {
    machine: { ...machine(), loadavgStart: loadStart, loadavgEnd: '' },
    command: `node packages/bench/dist/src/store/cli.js ${process.argv.slice(2).join(' ')}`.trim(),
    config: cfg,
    tools: toolVersions(),
    peers: [],
    ingestRuns: [],
    ingest: [],
    targets: [],
    elapsedSeconds: 0,
  };
  const wantIngest = cfg.parts.includes('ingest');
  const runnablePeers = wantIngest ? chosen.filter((p) => !p.skip).length : 0;
  res.peers = chosen.map((p) => ({ id: p.id, config: p.config, version: p.version, skip: p.skip }));
  for (const p of res.peers) if (p.skip) process.stderr.write(`skip ${p.id}: ${p.skip}\n`);
  const progress = new Progress(
    runnablePeers * cfg.repeats + (cfg.parts.includes('query') ? 3 : 0) + (cfg.parts.includes('history') ? 2 + cfg.repeats : 0),
    runnablePeers * cfg.repeats * (cfg.duration + 2) + (cfg.parts.includes('query') ? 15 : 0) + (cfg.parts.includes('history') ? 15 + cfg.repeats * (2 * cfg.scanIngestSeconds + 2) : 0),
  );
  if (wantIngest) await ingestPart(cfg, bins, chosen, progress, res);
  if (cfg.parts.includes('query')) {
    try {
      await queryPart(cfg, progress, res);
    } catch (e) {
      res.query = { ...(res.query ?? { lines: cfg.queryLines, bytes: NaN, cases: [], rssMb: NaN }), error: (e as Error).message };
      progress.note(`! query: ${(e as Error).message}`);
    }
  }
  if (cfg.parts.includes('history')) await historyPart(cfg, bins, progress, res);
  progress.finish();
  res.machine.loadavgEnd = loadavg();
  res.elapsedSeconds = (Date.now() - t0) / 1000;
  res.targets = storeTargets(res);
  fs.mkdirSync(cfg.out, { recursive: true });
  const stamp = res.machine.date.replace(/[:.]/g, '-');
  fs.writeFileSync(path.join(cfg.out, `store-${stamp}.json`), JSON.stringify(res, null, 1));
  fs.writeFileSync(path.join(cfg.out, 'latest.json'), JSON.stringify(res, null, 1));
  const charts = writeStoreCharts(res, cfg.out);
  const md = renderStoreMarkdown(res, charts.map((c) => path.basename(c)));
  fs.writeFileSync(path.join(cfg.out, 'latest.md'), md);
  process.stdout.write(md);
  process.stderr.write(`\nresults: ${path.join(cfg.out, 'latest.json')}\ncharts: ${charts.join(', ')}\n`);
}

main().catch((e) => {
  process.stderr.write(`bench store: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
