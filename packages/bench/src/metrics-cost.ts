// By hand: what a Prometheus scrape of /metrics every second costs the streamed ingest
// of the real `logcaster`. Alternates runs without and with the scrape loop on the same
// backend, each a fresh server and the C load generator's streamed mode (as in
// `npm run bench`), and prints the medians of lines stored per second.
//
//   node packages/bench/dist/src/metrics-cost.js [--backend auto] [--runs 3] [--duration 5] [--conns 100]
import { readFileSync } from 'node:fs';
import { get } from 'node:http';
import { parseArgs } from 'node:util';

import { buildC } from './build';
import { LOGCASTER_BIN, startServer, storedLines, type ServerSpec } from './servers';
import type { LoadResult } from './types';
import { freePort, median, run, sleep } from './util';

const { values: opts } = parseArgs({
  options: {
    backend: { type: 'string', default: 'auto' },
    runs: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    conns: { type: 'string', default: '100' },
  },
});

function scrape(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let bytes = 0;
      res.on('data', (d: Buffer) => (bytes += d.length));
      res.on('end', () => (res.statusCode === 200 ? resolve(bytes) : reject(new Error(`/metrics answered ${res.statusCode}`))));
    }).on('error', reject);
  });
}

interface Result {
  linesPerSec: number;
  serverCpu: number;
  /** Server CPU seconds per million lines stored. */
  cpuPerMLines: number;
  scrapes: number;
}

async function once(loadgen: string, scrapeEveryMs: number | undefined): Promise<Result> {
  const httpPort = await freePort();
  const spec: ServerSpec = {
    id: `logcaster-${opts.backend}`,
    family: 'logcaster',
    roles: ['ingest'],
    command: (_role, port, qport) => ({
      cmd: process.execPath,
      args: [LOGCASTER_BIN, '--backend', opts.backend!, '--port', String(port), '--query-port', String(qport), '--http-port', String(httpPort), '--data-dir', 'none', '--max-clients', '20000'],
    }),
  };
  const srv = await startServer(spec, 'ingest', { ack: false });
  let scrapes = 0;
  let failure: Error | undefined;
  const timer = scrapeEveryMs === undefined ? undefined : setInterval(() => void scrape(httpPort).then(() => scrapes++, (e: Error) => (failure = e)), scrapeEveryMs);
  try {
    const duration = Number(opts.duration);
    const r = await run(loadgen, ['--port', String(srv.port), '--server-pid', String(srv.pid), '--size', '64', '--mode', 'stream', '--conns', opts.conns!, '--duration', String(duration), '--warmup', '0', '--connect-timeout', '30'], duration * 1000 + 120000);
    if (r.code !== 0) throw new Error(`loadgen exit ${r.code}: ${r.stderr}`);
    const load = JSON.parse(r.stdout) as LoadResult;
    clearInterval(timer);
    let stored = -1;
    for (let last = -2; stored !== last; await sleep(200)) {
      last = stored;
      stored = await storedLines(srv.queryPort);
      if (stored >= (load.lines_sent ?? 0)) break;
    }
    if (failure) throw failure;
    const serverCpu = load.server_cpu?.utilization ?? NaN;
    return { linesPerSec: stored / (load.seconds + (load.drain_seconds ?? 0)), serverCpu, cpuPerMLines: (serverCpu * load.seconds) / (stored / 1e6), scrapes };
  } finally {
    clearInterval(timer);
    await srv.stop();
  }
}

/** utime + stime of a process, seconds. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function cpuPerScrape(): Promise<number> {
  const httpPort = await freePort();
  const spec: ServerSpec = {
    id: 'logcaster-scrape',
    family: 'logcaster',
    roles: ['ingest'],
    command: (_role, port, qport) => ({ cmd: process.execPath, args: [LOGCASTER_BIN, '--port', String(port), '--query-port', String(qport), '--http-port', String(httpPort), '--data-dir', 'none'] }),
  };
  const srv = await startServer(spec, 'ingest', { ack: false });
  try {
    for (let i = 0; i < 50; i++) await scrape(httpPort); // warm up
    const before = cpuSeconds(srv.pid);
    const n = 500;
    for (let i = 0; i < n; i++) await scrape(httpPort);
    return (cpuSeconds(srv.pid) - before) / n;
  } finally {
    await srv.stop();
  }
}

async function main(): Promise<void> {
  const bins = buildC();
  const runs = Number(opts.runs);
  const plain: Result[] = [];
  const scraped: Result[] = [];
  console.log(`streamed ingest, ${opts.conns} connections × ${opts.duration} s, 64-byte lines, backend ${opts.backend}, ${runs} runs each, alternating`);
  for (let i = 0; i < runs; i++) {
    plain.push(await once(bins.loadgen, undefined));
    scraped.push(await once(bins.loadgen, 1000));
    const [a, b] = [plain[i], scraped[i]];
    const show = (r: Result): string => `${Math.round(r.linesPerSec)} lines/s, ${r.cpuPerMLines.toFixed(3)} server cpu-s per M lines`;
    console.log(`  run ${i + 1}: no scrape ${show(a)} | scrape every 1 s ${show(b)} (${b.scrapes} scrapes)`);
  }
  const a = median(plain.map((r) => r.linesPerSec));
  const b = median(scraped.map((r) => r.linesPerSec));
  const ca = median(plain.map((r) => r.cpuPerMLines));
  const cb = median(scraped.map((r) => r.cpuPerMLines));
  console.log(`median: no scrape ${Math.round(a)} lines/s, scraped ${Math.round(b)} lines/s (ratio ${(b / a).toFixed(3)}); cpu per M lines ${ca.toFixed(3)} vs ${cb.toFixed(3)} s (ratio ${(cb / ca).toFixed(3)})`);
  const per = await cpuPerScrape();
  console.log(`one scrape costs the server ${(per * 1e6).toFixed(0)} µs of CPU (500 back-to-back scrapes of an idle server): ${((per / 1) * 100).toFixed(3)}% of a core at one scrape a second`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
