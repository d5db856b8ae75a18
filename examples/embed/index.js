#!/usr/bin/env node
'use strict';
// LogCaster example: an existing node:http application that also runs a LogCaster
// server in the same process, and proves the two get along.
//
//   node examples/embed --backend epoll --http-port 8080 --ingest-port 9999 --query-port 9998
//   node examples/embed --load 100000        # also start the load generator (a child process)
//   curl http://127.0.0.1:8080/stats
//
// The reactor runs on Node's own event loop and never blocks it. To show that, the
// event-loop delay is measured with perf_hooks.monitorEventLoopDelay and published with
// the LogCaster statistics on GET /stats, and printed every --report seconds.

const http = require('http');
const path = require('path');
const { spawn } = require('child_process');
const { monitorEventLoopDelay } = require('perf_hooks');
const { createLogCaster } = require('@logcaster/server');

// Options by node's own util.parseArgs, each value typed like its default.
function parseArgs(argv, defaults) {
  const options = Object.fromEntries(['help', ...Object.keys(defaults)].map((k) => [k, { type: k === 'help' ? 'boolean' : 'string' }]));
  const { values } = require('node:util').parseArgs({ args: argv, options });
  return Object.fromEntries(Object.entries({ ...defaults, ...values }).map(([k, v]) => [k, typeof defaults[k] === 'number' ? Number(v) : v]));
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2), {
    backend: 'auto', host: '127.0.0.1', 'http-port': 8080, 'ingest-port': 9999, 'query-port': 9998,
    capacity: 200000, report: 5, load: 0, 'load-connections': 50, port: -1,
  });
  // --port is accepted as an alias of --http-port, like the other examples.
  if (opts.port !== -1) opts['http-port'] = opts.port;
  for (const k of ['http-port', 'ingest-port', 'query-port']) {
    if (!Number.isInteger(opts[k]) || opts[k] < 0 || opts[k] > 65535) throw new Error(`--${k} must be 0..65535`);
  }
} catch (err) {
  console.error(`embed: ${err.message}`);
  process.exit(2);
}
if (opts.help) {
  console.log('usage: node examples/embed [--backend auto] [--host 127.0.0.1] [--http-port|--port 8080] [--ingest-port 9999]\n' +
    '                           [--query-port 9998] [--capacity 200000] [--report 5] [--load N] [--load-connections 50]');
  process.exit(0);
}

// ---- event-loop delay: the number that shows whether anything blocks the loop ----
// Sampled every 1 ms; each sample is the time between two ticks of a 1 ms timer, so an
// idle loop reads about 1 ms and everything above that is time the loop was busy.
const loopDelay = monitorEventLoopDelay({ resolution: 1 });
loopDelay.enable();
const ms = (ns) => Math.round(ns / 1e4) / 100; // ns -> ms, 2 decimals
function delaySummary(h) {
  return { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max), mean: ms(h.mean), samples: h.count };
}

// ---- the LogCaster server, embedded ----
const logcaster = createLogCaster({
  backend: opts.backend,
  host: opts.host,
  port: opts['ingest-port'],
  queryPort: opts['query-port'],
  capacity: opts.capacity,
  dataDir: null, // memory only; pass a directory to keep a journal
});
let errorsSeen = 0;
logcaster.on('line', (entry) => { // costs nothing unless attached; here: count error lines
  if (/\blevel=error\b/.test(entry.text)) errorsSeen++;
});

// ---- the "existing" HTTP application ----
let httpRequests = 0;
const app = http.createServer((req, res) => {
  httpRequests++;
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/stats') {
    const body = {
      logcaster: logcaster.stats(),
      errorsSeen,
      eventLoopDelayMs: delaySummary(loopDelay),
      http: { requests: httpRequests },
      memory: { rss: process.memoryUsage().rss, heapUsed: process.memoryUsage().heapUsed },
    };
    if (url.searchParams.get('reset') === '1') loopDelay.reset();
    res.writeHead(200, { 'Content-Type': 'application/json' });
    return res.end(`${JSON.stringify(body)}\n`);
  }
  if (url.pathname === '/') {
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
    return res.end('hello from the existing app; see /stats\n');
  }
  res.writeHead(404, { 'Content-Type': 'text/plain' });
  res.end('not found\n');
});

let loadChild;
async function main() {
  const info = await logcaster.start();
  await new Promise((resolve, reject) => {
    app.once('error', reject);
    app.listen(opts['http-port'], opts.host, resolve);
  });
  const httpPort = app.address().port;
  // First line: machine-readable, for scripts and tests.
  console.log(`embed listening http=${opts.host}:${httpPort} ingest=${info.host}:${info.ingestPort} query=${info.host}:${info.queryPort} (backend ${info.backend})`);

  if (opts.report > 0) {
    setInterval(() => {
      const d = delaySummary(loopDelay);
      const s = logcaster.stats();
      console.log(`loop delay p50=${d.p50}ms p99=${d.p99}ms max=${d.max}ms; logcaster total=${s.total} clients=${s.clients}; http requests=${httpRequests}`);
    }, opts.report * 1000).unref();
  }
  if (opts.load > 0) {
    loadChild = spawn(process.execPath, [path.join(__dirname, 'load.js'), '--host', info.host, '--port', String(info.ingestPort),
      '--lines', String(opts.load), '--connections', String(opts['load-connections'])], { stdio: ['ignore', 'inherit', 'inherit'] });
    loadChild.on('exit', () => {
      const d = delaySummary(loopDelay);
      console.log(`after load: logcaster total=${logcaster.stats().total}; loop delay p50=${d.p50}ms p99=${d.p99}ms max=${d.max}ms`);
    });
  }
}

let stopping = false;
async function shutdown() {
  if (stopping) process.exit(1); // second signal: now
  stopping = true;
  if (loadChild && loadChild.exitCode === null) loadChild.kill('SIGTERM');
  app.close();
  app.closeAllConnections();
  await logcaster.stop(); // graceful: what arrived is stored
  process.exit(0);
}
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);

main().catch((err) => {
  console.error(`embed: ${err.message}`);
  process.exit(1);
});
