#!/usr/bin/env node
'use strict';
// Run by hand: wrk against examples/http and against a node:http server with the same
// routes (a /api/stats-style JSON answer; files streamed from disk, fs.stat per request,
// where the example answers small files from memory), alternating, 3 runs each; prints
// the median requests/s of both and their ratio.
//
//   node examples/http/bench.js [--backend auto] [--path /api/stats] [--threads 2]
//                               [--connections 50] [--duration 5] [--runs 3]
//
// Needs wrk (apt-get install -y wrk). Both servers run as separate child processes on
// 127.0.0.1 so they get the same treatment; wrk shares the machine with them.

const { spawn, execFileSync } = require('child_process');
const http = require('http');
const fs = require('fs');
const path = require('path');

// Server mode for the node:http side: `node bench.js --node-http-server ROOT`.
if (process.argv[2] === '--node-http-server') {
  const root = process.argv[3];
  const server = http.createServer((req, res) => {
    if (req.url === '/api/stats') {
      const body = JSON.stringify({ backend: 'node:http', uptimeSeconds: Math.round(process.uptime()) }) + '\n';
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
      return res.end(body);
    }
    const file = path.join(root, path.posix.normalize(decodeURIComponent(req.url.split('?')[0])));
    if (!file.startsWith(root + path.sep)) { res.writeHead(403); return res.end(); }
    fs.stat(file, (err, st) => {
      if (err || !st.isFile()) { res.writeHead(404, { 'Content-Length': 0 }); return res.end(); }
      res.writeHead(200, { 'Content-Type': file.endsWith('.html') ? 'text/html; charset=utf-8' : 'application/octet-stream', 'Content-Length': st.size });
      fs.createReadStream(file, { highWaterMark: 64 * 1024 }).pipe(res); // streamed, like the example
    });
  });
  server.keepAliveTimeout = 30000;
  server.listen(0, '127.0.0.1', () => console.log(`node:http listening on 127.0.0.1:${server.address().port}`));
  process.once('SIGTERM', () => process.exit(0));
  return;
}

// Options by node's own util.parseArgs, each value typed like its default.
function parseArgs(argv, defaults) {
  const options = Object.fromEntries(['help', ...Object.keys(defaults)].map((k) => [k, { type: k === 'help' ? 'boolean' : 'string' }]));
  const { values } = require('node:util').parseArgs({ args: argv, options });
  return Object.fromEntries(Object.entries({ ...defaults, ...values }).map(([k, v]) => [k, typeof defaults[k] === 'number' ? Number(v) : v]));
}
const opts = parseArgs(process.argv.slice(2), { backend: 'auto', path: '/api/stats', threads: 2, connections: 50, duration: 5, runs: 3 });

function start(args, re) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = re.exec(out);
      if (m) resolve({ child, port: Number(m[1]), line: out.split('\n')[0] });
    });
    child.on('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
  });
}

function wrk(port) {
  const out = execFileSync('wrk', [`-t${opts.threads}`, `-c${opts.connections}`, `-d${opts.duration}s`, `http://127.0.0.1:${port}${opts.path}`], { encoding: 'utf8' });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)[1]);
  const bad = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  const errs = /Socket errors: (.*)/.exec(out);
  if (bad || errs) console.log(`  warning: ${bad ? `${bad[1]} non-2xx` : ''} ${errs ? `socket errors ${errs[1]}` : ''}`);
  return rps;
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

(async () => {
  try { execFileSync('wrk', ['--version'], { stdio: 'ignore' }); } catch (e) { if (e.code === 'ENOENT') { console.error('wrk is not installed (apt-get install -y wrk)'); process.exit(2); } }
  const root = path.join(__dirname, 'public');
  const lc = await start([__dirname, '--backend', opts.backend, '--port', '0', '--root', root], /^http listening on [\d.]+:(\d+)/);
  const nh = await start([__filename, '--node-http-server', root], /^node:http listening on [\d.]+:(\d+)/);
  console.log(`${lc.line}\n${nh.line}\nwrk -t${opts.threads} -c${opts.connections} -d${opts.duration}s ${opts.path}, ${opts.runs} runs each, alternating`);
  const a = [];
  const b = [];
  for (let i = 0; i < opts.runs; i++) {
    a.push(wrk(lc.port));
    b.push(wrk(nh.port));
    console.log(`  run ${i + 1}: logcaster ${a[i].toFixed(0)} req/s, node:http ${b[i].toFixed(0)} req/s`);
  }
  const ma = median(a);
  const mb = median(b);
  console.log(`median: logcaster (${opts.backend}) ${ma.toFixed(0)} req/s, node:http ${mb.toFixed(0)} req/s, ratio ${(ma / mb).toFixed(2)}x`);
  for (const s of [lc, nh]) { s.child.removeAllListeners('exit'); s.child.kill('SIGTERM'); }
})().catch((err) => { console.error(err); process.exit(1); });
