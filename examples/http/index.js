#!/usr/bin/env node
'use strict';
// LogCaster example: a small HTTP/1.1 static file server on the reactor.
//
//   node examples/http --backend epoll --port 8080 [--root examples/http/public]
//
// Shows: an incremental request parser (heads split across packets, several requests
// in one packet = pipelining), keep-alive, responses strictly in request order, files
// streamed with backpressure (fs.read a chunk, write() until it returns false, go on in
// onDrain), HEAD, Connection: close, 400/403/404/405/413, and a dynamic JSON route.

const fs = require('fs');
const path = require('path');
const { createReactor } = require('@logcaster/core');

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
const MAX_HEAD = 8 * 1024; // request line + headers; more is refused with 413
const MAX_PIPELINED = 32; // parsed requests waiting for their turn; more pauses reading
const CHUNK = 64 * 1024; // file read size
const CRLFCRLF = Buffer.from('\r\n\r\n');
const TYPES = {
  '.html': 'text/html; charset=utf-8', '.htm': 'text/html; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8', '.json': 'application/json', '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.gif': 'image/gif',
  '.ico': 'image/x-icon', '.wasm': 'application/wasm', '.pdf': 'application/pdf',
};
const STATUS = { 200: 'OK', 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 413: 'Content Too Large', 500: 'Internal Server Error' };

const reactor = createReactor({ backend: opts.backend });
const started = Date.now();
const counters = { requests: 0, responses: {} };

// ---- request parsing ----
// Returns { method, target, version, headers } or { error: status }.
function parseHead(text) {
  const lines = text.split('\r\n');
  const m = /^([A-Z]+) (\S+) HTTP\/(1\.[01])$/.exec(lines[0]);
  if (!m) return { error: 400 };
  const headers = {};
  for (let i = 1; i < lines.length; i++) {
    const c = lines[i].indexOf(':');
    if (c <= 0 || /\s/.test(lines[i][c - 1])) return { error: 400 };
    const name = lines[i].slice(0, c).toLowerCase();
    const value = lines[i].slice(c + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  return { method: m[1], target: m[2], version: m[3], headers };
}

function wantsKeepAlive(req) {
  const c = (req.headers.connection || '').toLowerCase();
  if (req.version === '1.0') return /\bkeep-alive\b/.test(c);
  return !/\bclose\b/.test(c);
}

// ---- responses ----
function head(status, headers, keepAlive) {
  counters.responses[status] = (counters.responses[status] || 0) + 1;
  let h = `HTTP/1.1 ${status} ${STATUS[status]}\r\nServer: logcaster-example\r\n`;
  for (const [k, v] of Object.entries(headers)) h += `${k}: ${v}\r\n`;
  return `${h}Connection: ${keepAlive ? 'keep-alive' : 'close'}\r\n\r\n`;
}

/** A complete small response; then the next request (or close). */
function respond(conn, req, status, body, type = 'text/plain; charset=utf-8', extra = {}) {
  const st = conn.context;
  const bytes = Buffer.from(body);
  const keepAlive = req.keepAlive; // false after 400/413: we cannot tell where the next request starts
  conn.write(head(status, { 'Content-Type': type, 'Content-Length': bytes.length, ...extra }, keepAlive));
  if (req.method !== 'HEAD' && bytes.length) conn.write(bytes);
  finish(conn, st, keepAlive);
}

function finish(conn, st, keepAlive) {
  st.busy = false;
  if (!keepAlive) {
    st.closing = true;
    st.queue.length = 0;
    if (!conn.closed) conn.end();
    return;
  }
  next(conn);
}

/** Resolve a request target to a file under ROOT, or a status code. */
function resolveTarget(target) {
  const q = target.indexOf('?');
  let p = q < 0 ? target : target.slice(0, q);
  if (!p.startsWith('/')) return 400;
  try {
    p = decodeURIComponent(p); // %2e%2e becomes .. here, so it is checked below
  } catch {
    return 400;
  }
  if (p.includes('\0') || p.includes('\\')) return 400;
  const full = path.join(ROOT, path.posix.normalize(p));
  if (full !== ROOT && !full.startsWith(ROOT + path.sep)) return 403;
  return p.split('/').includes('..') ? 403 : full; // belt and braces
}

function serveFile(conn, req, file) {
  const st = conn.context;
  fs.open(file, 'r', (err, fd) => {
    if (conn.closed) { if (!err) fs.close(fd, () => {}); return; }
    if (err) return respond(conn, req, err.code === 'ENOENT' || err.code === 'ENOTDIR' ? 404 : 403, 'not found\n');
    fs.fstat(fd, (err2, stat) => {
      if (err2 || !stat.isFile()) {
        fs.close(fd, () => {});
        if (!err2 && stat.isDirectory()) return serveFile(conn, req, path.join(file, 'index.html'));
        return respond(conn, req, 404, 'not found\n');
      }
      if (conn.closed) return fs.close(fd, () => {});
      const type = TYPES[path.extname(file).toLowerCase()] || 'application/octet-stream';
      conn.write(head(200, { 'Content-Type': type, 'Content-Length': stat.size, 'Last-Modified': stat.mtime.toUTCString() }, req.keepAlive));
      if (req.method === 'HEAD' || stat.size === 0) {
        fs.close(fd, () => {});
        return finish(conn, st, req.keepAlive);
      }
      st.stream = { fd, buf: Buffer.allocUnsafe(Math.min(CHUNK, stat.size)), pos: 0, size: stat.size, req, reading: false, waiting: false };
      pump(conn);
    });
  });
}

// Read a chunk, write it; repeat until write() returns false (then onDrain calls us
// again) or the file is done. Only one chunk buffer per response, whatever the size.
function pump(conn) {
  const st = conn.context;
  const s = st.stream;
  if (!s || s.reading) return;
  s.reading = true;
  s.waiting = false;
  fs.read(s.fd, s.buf, 0, Math.min(s.buf.length, s.size - s.pos), s.pos, (err, n) => {
    s.reading = false;
    if (conn.closed) return endStream(st);
    if (err || n === 0) { // file shrank or failed: the Content-Length promise is broken
      endStream(st);
      return conn.destroy(err || new Error('file truncated while sending'));
    }
    s.pos += n;
    const more = conn.write(n === s.buf.length ? s.buf : s.buf.subarray(0, n));
    if (s.pos >= s.size) {
      endStream(st);
      return finish(conn, st, s.req.keepAlive);
    }
    if (more) pump(conn);
    else s.waiting = true; // onDrain resumes
  });
}

function endStream(st) {
  if (!st.stream) return;
  fs.close(st.stream.fd, () => {});
  st.stream = undefined;
}

function stats() {
  return { backend: reactor.backend, uptimeSeconds: Math.round((Date.now() - started) / 1000), requests: counters.requests, responses: counters.responses, reactor: reactor.stats() };
}

function handle(conn, req) {
  counters.requests++;
  if (req.error) {
    req.keepAlive = false;
    return respond(conn, req, req.error, `${STATUS[req.error]}\n`);
  }
  req.keepAlive = wantsKeepAlive(req);
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    // We never read request bodies; if one follows, the connection cannot be reused.
    if (req.headers['content-length'] > 0 || req.headers['transfer-encoding']) req.keepAlive = false;
    return respond(conn, req, 405, 'method not allowed\n', undefined, { Allow: 'GET, HEAD' });
  }
  if (req.headers['content-length'] > 0 || req.headers['transfer-encoding']) {
    req.keepAlive = false;
    return respond(conn, req, 400, 'GET/HEAD with a body\n');
  }
  const pathname = req.target.split('?')[0];
  if (pathname === '/api/stats') return respond(conn, req, 200, `${JSON.stringify(stats())}\n`, 'application/json');
  const file = resolveTarget(req.target);
  if (typeof file === 'number') {
    if (file === 400) req.keepAlive = false;
    return respond(conn, req, file, `${STATUS[file]}\n`);
  }
  serveFile(conn, req, file);
}

/** Start the next queued request, one at a time, so responses go out in order. */
function next(conn) {
  const st = conn.context;
  if (conn.closed || st.busy || st.closing) return;
  const req = st.queue.shift();
  if (!req) return;
  if (conn.paused && st.queue.length < MAX_PIPELINED / 2) conn.resume();
  st.busy = true;
  handle(conn, req);
}

const httpHandler = {
  onOpen(conn) {
    conn.context = { buf: Buffer.alloc(0), queue: [], busy: false, closing: false, broken: false, stream: undefined };
    conn.setIdleTimeout(30000);
  },
  onData(conn, data) {
    const st = conn.context;
    if (st.closing || st.broken) return; // after a 400/413 nothing more is parsed
    // Copy: data is only valid during this call. Heads are small and bounded by MAX_HEAD.
    st.buf = st.buf.length ? Buffer.concat([st.buf, data]) : Buffer.from(data);
    for (;;) {
      const end = st.buf.indexOf(CRLFCRLF);
      const req = end > MAX_HEAD || (end < 0 && st.buf.length > MAX_HEAD) ? { error: 413 }
        : end < 0 ? undefined : parseHead(st.buf.toString('latin1', 0, end));
      if (!req) break; // head incomplete: wait for more bytes
      st.queue.push(req);
      if (req.error) { st.broken = true; st.buf = Buffer.alloc(0); break; }
      st.buf = st.buf.subarray(end + 4);
    }
    if (st.queue.length >= MAX_PIPELINED) conn.pause(); // a pipelining client must wait for us
    next(conn);
  },
  onDrain(conn) {
    const s = conn.context.stream;
    if (s && s.waiting) pump(conn);
  },
  onTimeout(conn) {
    conn.destroy();
  },
  onClose(conn) {
    const st = conn.context;
    if (st && st.stream && !st.stream.reading) endStream(st); // a read in flight closes it when it returns
  },
};

function shutdown() {
  reactor.close().then(() => process.exit(0));
}
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);

const listener = reactor.listen({ host: opts.host, port: opts.port }, httpHandler);
console.log(`http listening on ${listener.host}:${listener.port} (backend ${reactor.backend}) root ${ROOT}`);
