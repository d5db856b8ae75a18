#!/usr/bin/env node
'use strict';
// LogCaster example: a static file server on @logcaster/http (HTTP/1.1 on the reactor).
//
//   node examples/http --backend epoll --port 8080 [--root examples/http/public]
//
// Shows: routes in one request handler, small files answered from memory (re-checked on
// disk at most once a second), large files streamed with backpressure (fs.read a chunk,
// write() until it returns false, go on in onDrain), HEAD, 403/404/405, and a JSON route.
// Parsing, keep-alive, pipelining, limits and timeouts are the package's.

const fs = require('fs');
const path = require('path');
const { createReactor } = require('@logcaster/core');
const { createHttpHandler } = require('@logcaster/http');

// Options by node's own util.parseArgs, each value typed like its default.
function parseArgs(argv, defaults) {
  const options = Object.fromEntries(['help', ...Object.keys(defaults)].map((k) => [k, { type: k === 'help' ? 'boolean' : 'string' }]));
  const { values } = require('node:util').parseArgs({ args: argv, options });
  return Object.fromEntries(Object.entries({ ...defaults, ...values }).map(([k, v]) => [k, typeof defaults[k] === 'number' ? Number(v) : v]));
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2), { backend: 'auto', host: '127.0.0.1', port: 8080, root: path.join(__dirname, 'public') });
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) throw new Error('--port must be 0..65535');
  if (!fs.statSync(opts.root, { throwIfNoEntry: false })?.isDirectory()) throw new Error(`--root ${opts.root} is not a directory`);
} catch (err) {
  console.error(`http: ${err.message}`);
  process.exit(2);
}
if (opts.help) {
  console.log('usage: node examples/http [--backend auto|select|poll|epoll|iouring] [--host 127.0.0.1] [--port 8080] [--root DIR]');
  process.exit(0);
}

const ROOT = fs.realpathSync(path.resolve(opts.root));
const CHUNK = 64 * 1024; // read size when streaming a file
const CACHE_MAX_FILE = 64 * 1024; // files up to this size are kept in memory
const CACHE_MAX_ENTRIES = 256;
const RECHECK_MS = 1000; // a cached file is compared with the disk at most this often
const TYPES = {
  '.html': 'text/html; charset=utf-8', '.htm': 'text/html; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8', '.json': 'application/json', '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.gif': 'image/gif',
  '.ico': 'image/x-icon', '.wasm': 'application/wasm', '.pdf': 'application/pdf',
};

const reactor = createReactor({ backend: opts.backend });
const started = Date.now();
const responses = {};

/** Resolve a request path to a file under ROOT, or a status code. */
function resolvePath(rawPath) {
  let p;
  try {
    p = decodeURIComponent(rawPath); // %2e%2e becomes .. here, so it is checked below
  } catch {
    return 400;
  }
  if (!p.startsWith('/') || p.includes('\0') || p.includes('\\')) return 400;
  const full = path.join(ROOT, path.posix.normalize(p));
  if (full !== ROOT && !full.startsWith(ROOT + path.sep)) return 403;
  return p.split('/').includes('..') ? 403 : full; // belt and braces
}

// ---- small files from memory ----
// requested path → { file, body, type, mtimeMs, size, lastModified, checkedAt }; a
// directory's entry is its index.html. Entries are re-checked
// with one fs.stat per second at most, so an edited file shows within a second while
// the hot path does no file-system work at all.
const cache = new Map();

function remember(key, file, body, stat) {
  if (cache.size >= CACHE_MAX_ENTRIES) cache.delete(cache.keys().next().value); // oldest first
  const entry = { file, body, type: TYPES[path.extname(file).toLowerCase()] || 'application/octet-stream', mtimeMs: stat.mtimeMs, size: stat.size, lastModified: stat.mtime.toUTCString(), checkedAt: Date.now(), checking: false };
  cache.set(key, entry);
  return entry;
}

function sendEntry(res, entry) {
  send(res, 200, entry.body, entry.type, { 'Last-Modified': entry.lastModified });
}

function recheck(key, entry) {
  entry.checking = true;
  fs.stat(entry.file, (err, st) => {
    entry.checking = false;
    entry.checkedAt = Date.now();
    if (err || !st.isFile() || st.mtimeMs !== entry.mtimeMs || st.size !== entry.size) cache.delete(key);
  });
}

// ---- files from disk ----
// Paths found missing are remembered the same way (one second), so a client asking again
// and again for a file that is not there costs no file-system work either.
const missing = new Map();

function serveFile(req, res, file, key = file) {
  const entry = cache.get(key);
  if (entry) {
    if (Date.now() - entry.checkedAt >= RECHECK_MS && !entry.checking) recheck(key, entry);
    return sendEntry(res, entry);
  }
  const gone = missing.get(key);
  if (gone !== undefined && Date.now() - gone < RECHECK_MS) return send(res, 404, 'not found\n');
  fs.open(file, 'r', (err, fd) => {
    if (res.closed) { if (!err) fs.close(fd, () => {}); return; }
    if (err && (err.code === 'ENOENT' || err.code === 'ENOTDIR')) {
      if (missing.size >= CACHE_MAX_ENTRIES) missing.delete(missing.keys().next().value);
      missing.set(key, Date.now());
      return send(res, 404, 'not found\n');
    }
    if (err) return send(res, 403, 'forbidden\n');
    missing.delete(key);
    fs.fstat(fd, (err2, stat) => {
      if (err2 || !stat.isFile()) {
        fs.close(fd, () => {});
        if (!err2 && stat.isDirectory()) return serveFile(req, res, path.join(file, 'index.html'), key);
        return send(res, 404, 'not found\n');
      }
      if (stat.size <= CACHE_MAX_FILE) return readSmall(res, key, file, fd, stat);
      stream(req, res, file, fd, stat);
    });
  });
}

function readSmall(res, key, file, fd, stat) {
  const body = Buffer.allocUnsafe(stat.size);
  fs.read(fd, body, 0, stat.size, 0, (err, n) => {
    fs.close(fd, () => {});
    if (res.closed) return;
    if (err || n !== stat.size) return send(res, 500, 'file changed while reading\n');
    sendEntry(res, remember(key, file, body, stat));
  });
}

// Read a chunk, write it; repeat until write() returns false (then onDrain calls us
// again) or the file is done. One chunk buffer per response, whatever the size.
function stream(req, res, file, fd, stat) {
  res.writeHead(200, { 'Content-Type': TYPES[path.extname(file).toLowerCase()] || 'application/octet-stream', 'Content-Length': stat.size, 'Last-Modified': stat.mtime.toUTCString() });
  count(200);
  if (req.method === 'HEAD') {
    fs.close(fd, () => {});
    return res.end();
  }
  const buf = Buffer.allocUnsafe(CHUNK);
  let pos = 0;
  let reading = false;
  const done = () => fs.close(fd, () => {});
  const pump = () => {
    if (reading) return;
    reading = true;
    fs.read(fd, buf, 0, Math.min(CHUNK, stat.size - pos), pos, (err, n) => {
      reading = false;
      if (res.closed) return done();
      if (err || n === 0) { // the file shrank: end() reports the broken Content-Length by closing
        done();
        return res.end();
      }
      pos += n;
      const more = res.write(n === CHUNK ? buf : buf.subarray(0, n));
      if (pos >= stat.size) {
        done();
        return res.end();
      }
      if (more) pump();
    });
  };
  res.onDrain = pump;
  res.onClose = () => { if (!reading) done(); };
  pump();
}

function count(status) {
  responses[status] = (responses[status] || 0) + 1;
}

function send(res, status, body, type, headers) {
  count(status);
  res.send(status, body, type, headers);
}

const http = createHttpHandler((req, res) => {
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed\n', undefined, { Allow: 'GET, HEAD' });
  const pathname = req.path;
  if (pathname === '/api/stats') {
    count(200);
    return res.json(200, { backend: reactor.backend, uptimeSeconds: Math.round((Date.now() - started) / 1000), http: http.counters, responses, reactor: reactor.stats() });
  }
  const file = resolvePath(pathname);
  if (typeof file === 'number') return send(res, file, `${file === 403 ? 'forbidden' : 'bad request'}\n`);
  serveFile(req, res, file);
});

function shutdown() {
  reactor.close().then(() => process.exit(0));
}
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);

const listener = reactor.listen({ host: opts.host, port: opts.port }, http);
console.log(`http listening on ${listener.host}:${listener.port} (backend ${reactor.backend}) root ${ROOT}`);
