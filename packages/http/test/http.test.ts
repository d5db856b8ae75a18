// @logcaster/http over real loopback sockets: raw bytes the way real clients send them
// (split, pipelined, half-closed, reset mid-answer) and curl.
import { expect } from 'chai';
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import * as path from 'node:path';

import { BACKEND_NAMES, createReactor, createReactorWith, tryBackend, type Reactor } from '@logcaster/core';
import { delay, parseHttpResponses, rawHttp, responsesComplete, rmDir, tmpDir, waitFor } from '@logcaster/testkit';

import { createHttpHandler, type HttpHandler, type HttpOptions, type HttpRequest, type HttpResponse, type RequestHandler } from '../src';

const HAVE_CURL = spawnSync('sh', ['-c', 'command -v curl']).status === 0;

function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('curl', args, { timeout: 20000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as NodeJS.ErrnoException).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** A test application: small in-memory routes, an echo of the body, streams and failures. */
const app: RequestHandler = (req: HttpRequest, res: HttpResponse) => {
  const path = req.path;
  if (path === '/health') return res.json(200, { status: 'ok' });
  if (path === '/echo') return res.send(200, req.body, 'application/octet-stream', { 'X-Method': req.method });
  if (path === '/query') return res.json(200, Object.fromEntries(req.query));
  if (path === '/headers') return res.json(200, { ...req.headers });
  if (path === '/later') {
    setTimeout(() => res.send(200, `later ${req.query.get('n')}\n`), Number(req.query.get('ms') ?? 20));
    return;
  }
  if (path === '/empty') return res.send(204);
  if (path === '/throw') throw new Error('handler failure (expected by the test)');
  if (path === '/reject') return Promise.reject(new Error('async handler failure (expected by the test)'));
  if (path === '/inject') return res.send(200, 'x', 'text/plain', { 'X-Evil': 'a\r\nSet-Cookie: b' });
  if (path === '/stream') {
    // `n` lines of `size` bytes, written with backpressure.
    const n = Number(req.query.get('n') ?? 10);
    const line = `${'x'.repeat(Number(req.query.get('size') ?? 10) - 1)}\n`;
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    let i = 0;
    // Like a real producer: stop at backpressure (onDrain continues) and yield to the
    // event loop now and then, since loopback sockets accept megabytes before pushing back.
    const pump = (): void => {
      for (let burst = 0; i < n; burst++) {
        if (burst === 256) {
          setImmediate(pump);
          return;
        }
        i++;
        streamLinesWritten++;
        if (!res.write(line)) return;
      }
      res.end();
    };
    res.onDrain = pump;
    res.onClose = () => (streamClosed += 1);
    pump();
    return;
  }
  if (path === '/fixed') {
    res.writeHead(200, { 'Content-Length': 10 });
    res.write('01234');
    setTimeout(() => res.end('56789'), 5);
    return;
  }
  if (path === '/short') {
    res.writeHead(200, { 'Content-Length': 10 });
    res.end('0123');
    return;
  }
  res.send(404, 'not found\n');
};
let streamClosed = 0;
let streamLinesWritten = 0;

interface Running {
  reactor: Reactor;
  http: HttpHandler;
  port: number;
  errors: Error[];
}

async function serve(options: HttpOptions = {}, make: () => Reactor = () => createReactor()): Promise<Running> {
  const errors: Error[] = [];
  const reactor = make();
  const http = createHttpHandler(app, { onError: (e) => errors.push(e), ...options });
  const l = reactor.listen({ port: 0 }, http);
  return { reactor, http, port: l.port, errors };
}

const GET = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: t\r\n${extra}\r\n`;

describe('@logcaster/http', function () {
  this.timeout(30000);
  let s: Running;
  before(async () => {
    s = await serve({ keepAliveTimeoutMs: 2000 });
  });
  after(async () => {
    await s.reactor.close();
  });

  describe('requests and responses', () => {
    it('answers a small in-memory route with Date, Content-Type and Content-Length', async () => {
      const r = await rawHttp(s.port, [GET('/health')], { until: responsesComplete(1) });
      const [res] = parseHttpResponses(r.data).responses;
      expect(res.status).to.equal(200);
      expect(res.headers['content-type']).to.equal('application/json');
      expect(JSON.parse(res.body.toString())).to.deep.equal({ status: 'ok' });
      expect(res.headers['content-length']).to.equal(String(res.body.length));
      expect(new Date(res.headers.date).getTime()).to.be.closeTo(Date.now(), 60000);
      expect(res.headers.connection).to.equal(undefined); // HTTP/1.1 keeps it by default
    });

    it('answers 1000 pipelined requests sent in one packet in order, on one connection', async () => {
      const reqs = Array.from({ length: 1000 }, (_, i) => (i % 10 === 9 ? GET(`/later?n=${i}&ms=1`) : GET(`/query?n=${i}`))).join('');
      const r = await rawHttp(s.port, [reqs], { until: responsesComplete(1000), timeoutMs: 20000 });
      const { responses, rest } = parseHttpResponses(r.data);
      expect(responses).to.have.length(1000);
      expect(rest.length).to.equal(0);
      responses.forEach((res, i) => {
        expect(res.status).to.equal(200);
        expect(res.body.toString()).to.equal(i % 10 === 9 ? `later ${i}\n` : `${JSON.stringify({ n: String(i) })}\n`);
      });
    });

    it('parses a head and a body split into 1-byte packets', async () => {
      const req = `POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world`;
      const r = await rawHttp(s.port, req.split(''), { gapMs: 1, until: responsesComplete(1) });
      const [res] = parseHttpResponses(r.data).responses;
      expect(res.status).to.equal(200);
      expect(res.body.toString()).to.equal('hello world');
      expect(res.headers['x-method']).to.equal('POST');
    });

    it('decodes a chunked request body (with extensions and trailers), pipelined with a GET', async () => {
      const body = '5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: yes\r\n\r\n';
      const req = `POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n${body}${GET('/health')}`;
      const r = await rawHttp(s.port, [req.slice(0, 70), req.slice(70)], { gapMs: 10, until: responsesComplete(2) });
      const [a, b] = parseHttpResponses(r.data).responses;
      expect(a.body.toString()).to.equal('hello world');
      expect(b.status).to.equal(200);
    });

    it('HEAD gets the head of GET without the body; 204 has no Content-Length', async () => {
      const r = await rawHttp(s.port, [`HEAD /health HTTP/1.1\r\nHost: t\r\n\r\n${GET('/empty')}${GET('/health')}`], {
        until: responsesComplete(3, (i) => i === 0),
      });
      const [head, empty, get] = parseHttpResponses(r.data, (i) => i === 0).responses;
      expect(head.headers['content-length']).to.equal(get.headers['content-length']);
      expect(empty.status).to.equal(204);
      expect(empty.headers['content-length']).to.equal(undefined);
      expect(get.body.toString()).to.equal('{"status":"ok"}\n');
    });

    it('streams a chunked response with backpressure to a client that reads slowly', async () => {
      const n = 400000;
      const size = 100; // 40 MB: more than loopback socket buffers hold
      const sock = connect({ host: '127.0.0.1', port: s.port });
      sock.pause(); // not reading yet: the producer must stop at the high-water mark
      await new Promise((r) => sock.once('connect', r));
      const before = streamLinesWritten;
      sock.write(GET(`/stream?n=${n}&size=${size}`));
      await delay(500);
      const written = streamLinesWritten - before;
      expect(written).to.be.above(0);
      expect(written).to.be.below(n / 2);
      const chunks: Buffer[] = [];
      sock.on('data', (d: Buffer) => chunks.push(d));
      sock.resume();
      let tail = Buffer.alloc(0);
      sock.on('data', (d: Buffer) => (tail = Buffer.concat([tail, d]).subarray(-16)));
      const ended = (): boolean => tail.toString('latin1').endsWith('\r\n0\r\n\r\n');
      await waitFor(ended, 20000, 'the whole stream');
      const [res] = parseHttpResponses(Buffer.concat(chunks)).responses;
      expect(res.headers['transfer-encoding']).to.equal('chunked');
      expect(res.body.length).to.equal(n * size);
      sock.destroy();
    });

    it('keeps a fixed Content-Length stream exact; ending short closes the connection instead of lying', async () => {
      const a = await rawHttp(s.port, [GET('/fixed')], { until: responsesComplete(1) });
      expect(parseHttpResponses(a.data).responses[0].body.toString()).to.equal('0123456789');
      const b = await rawHttp(s.port, [GET('/short')]);
      expect(b.closed).to.equal(true);
      expect(parseHttpResponses(b.data).responses).to.have.length(0);
    });

    it('HTTP/1.0: closes after the answer unless keep-alive was asked for; a stream ends with the connection', async () => {
      const a = await rawHttp(s.port, ['GET /health HTTP/1.0\r\n\r\n']);
      expect(a.closed).to.equal(true);
      expect(a.data.toString()).to.match(/^HTTP\/1\.1 200 OK\r\n[^]*Connection: close\r\n/);
      const b = await rawHttp(s.port, ['GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /health HTTP/1.0\r\n\r\n']);
      const rs = parseHttpResponses(b.data).responses;
      expect(rs.map((r) => r.headers.connection)).to.deep.equal(['keep-alive', 'close']);
      const c = await rawHttp(s.port, ['GET /stream?n=3&size=4 HTTP/1.0\r\n\r\n']);
      expect(c.closed).to.equal(true);
      expect(parseHttpResponses(c.data).responses[0].body.toString()).to.equal('xxx\nxxx\nxxx\n');
    });

    it('Connection: close answers and closes; what follows it is not read', async () => {
      const r = await rawHttp(s.port, [GET('/health', 'Connection: close\r\n') + GET('/health')]);
      expect(r.closed).to.equal(true);
      expect(parseHttpResponses(r.data).responses).to.have.length(1);
    });

    it('answers a thrown or rejected handler with 500 and keeps serving', async () => {
      const before = s.errors.length;
      for (const p of ['/throw', '/reject', '/inject']) {
        const r = await rawHttp(s.port, [GET(p)]);
        expect(r.data.toString()).to.match(/^HTTP\/1\.1 500 /);
        expect(r.data.toString()).to.not.contain('Set-Cookie');
      }
      expect(s.errors.length - before).to.equal(3);
      const ok = await rawHttp(s.port, [GET('/health')], { until: responsesComplete(1) });
      expect(parseHttpResponses(ok.data).responses[0].status).to.equal(200);
    });
  });

  describe('bad input gets a clear status, then the connection closes', () => {
    const cases: [string, string, number][] = [
      ['a malformed request line', 'NONSENSE\r\n\r\n', 400],
      ['a request target with a space', 'GET /a b HTTP/1.1\r\nHost: t\r\n\r\n', 400],
      ['HTTP/1.1 without Host', 'GET / HTTP/1.1\r\n\r\n', 400],
      ['two Host fields', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400],
      ['Content-Length with Transfer-Encoding', 'POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n', 400],
      ['conflicting Content-Lengths', 'POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd', 400],
      ['a malformed Content-Length', 'POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n', 400],
      ['obsolete line folding', 'GET / HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n  2\r\n\r\n', 400],
      ['a space before the colon', 'GET / HTTP/1.1\r\nHost : t\r\n\r\n', 400],
      ['a bare LF inside the head', 'GET / HTTP/1.1\r\nHost: t\nX: y\r\n\r\n', 400],
      ['a malformed chunk size', 'POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 400],
      ['an unknown transfer coding', 'POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n', 501],
      ['HTTP/2.0 in the request line', 'GET / HTTP/2.0\r\nHost: t\r\n\r\n', 505],
    ];
    for (const [what, bytes, status] of cases) {
      it(`${status} for ${what}`, async () => {
        const r = await rawHttp(s.port, [bytes]);
        expect(r.data.toString()).to.match(new RegExp(`^HTTP/1\\.1 ${status} `));
        expect(r.data.toString()).to.match(/Connection: close\r\n/);
        expect(r.closed).to.equal(true);
      });
    }

    it('431 for a head over the limit (complete or never terminated) and for too many fields', async () => {
      const small = await serve({ maxHeaderBytes: 1024, maxHeaders: 10 });
      try {
        const a = await rawHttp(small.port, [GET('/', `X-Big: ${'a'.repeat(2000)}\r\n`)]);
        expect(a.data.toString()).to.match(/^HTTP\/1\.1 431 /);
        const b = await rawHttp(small.port, [`GET / HTTP/1.1\r\nX-Big: ${'a'.repeat(5000)}`]);
        expect(b.data.toString()).to.match(/^HTTP\/1\.1 431 /);
        const many = Array.from({ length: 11 }, (_, i) => `X-${i}: v\r\n`).join('');
        const c = await rawHttp(small.port, [GET('/', many)]);
        expect(c.data.toString()).to.match(/^HTTP\/1\.1 431 /);
      } finally {
        await small.reactor.close();
      }
    });

    it('413 for a body over the limit, declared or chunked, and the client reads the answer despite the unread body', async () => {
      const small = await serve({ maxBodyBytes: 1000 });
      try {
        const big = 'b'.repeat(200000);
        const a = await rawHttp(small.port, [`POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: ${big.length}\r\n\r\n`, big], { gapMs: 20 });
        expect(a.data.toString()).to.match(/^HTTP\/1\.1 413 /);
        expect(a.reset).to.equal(false);
        const chunked = `POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n${'200\r\n' + 'c'.repeat(512) + '\r\n'}`.repeat(1);
        const b = await rawHttp(small.port, [chunked, `200\r\n${'c'.repeat(512)}\r\n`, `200\r\n${'c'.repeat(512)}\r\n`], { gapMs: 20 });
        expect(b.data.toString()).to.match(/^HTTP\/1\.1 413 /);
      } finally {
        await small.reactor.close();
      }
    });

    it('answers Expect: 100-continue (curl uploading 2 MB) and refuses an oversized one at once', async function () {
      if (!HAVE_CURL) this.skip();
      const big = await serve({ maxBodyBytes: 4 * 1024 * 1024 });
      const dir = tmpDir('http-upload');
      try {
        const small = path.join(dir, 'two-mb');
        const large = path.join(dir, 'six-mb');
        writeFileSync(small, 'z'.repeat(2 * 1024 * 1024));
        writeFileSync(large, 'z'.repeat(6 * 1024 * 1024));
        const r = await curl(['-sv', '-H', 'Expect: 100-continue', '--data-binary', `@${small}`, `http://127.0.0.1:${big.port}/echo`]);
        expect(r.stderr).to.match(/HTTP\/1\.1 100 Continue/);
        expect(r.stdout).to.equal(readFileSync(small, 'utf8'));
        const refused = await curl(['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'Expect: 100-continue', '--data-binary', `@${large}`, `http://127.0.0.1:${big.port}/echo`]);
        expect(refused.stdout).to.equal('413');
      } finally {
        await big.reactor.close();
        rmDir(dir);
      }
    });
  });

  describe('connections', () => {
    it('curl reuses one keep-alive connection for several URLs', async function () {
      if (!HAVE_CURL) this.skip();
      const base = `http://127.0.0.1:${s.port}`;
      const r = await curl(['-sv', `${base}/health`, `${base}/query?a=1`, `${base}/nope`]);
      expect(r.code).to.equal(0);
      expect((r.stderr.match(/Connected to 127\.0\.0\.1/g) ?? []).length).to.equal(1);
      expect(r.stdout).to.equal('{"status":"ok"}\n{"a":"1"}\nnot found\n');
    });

    it('half-close: requests sent with an immediate FIN are all answered (slow ones too), then the server closes', async () => {
      const reqs = GET('/later?n=1&ms=50') + GET('/health') + GET('/later?n=2&ms=10');
      const r = await rawHttp(s.port, [reqs], { end: true });
      expect(r.closed).to.equal(true);
      const { responses, rest } = parseHttpResponses(r.data);
      expect(responses.map((x) => x.body.toString())).to.deep.equal(['later 1\n', '{"status":"ok"}\n', 'later 2\n']);
      expect(rest.length).to.equal(0);
    });

    it('half-close after an incomplete request: the complete ones are answered, the partial one is dropped', async () => {
      const r = await rawHttp(s.port, [GET('/health') + 'GET /health HTTP/1.1\r\nHo'], { end: true });
      expect(r.closed).to.equal(true);
      expect(parseHttpResponses(r.data).responses).to.have.length(1);
    });

    it('closes an idle keep-alive connection after keepAliveTimeoutMs', async () => {
      const quick = await serve({ keepAliveTimeoutMs: 200 });
      try {
        const started = Date.now();
        const r = await rawHttp(quick.port, [GET('/health')]);
        expect(r.closed).to.equal(true);
        expect(parseHttpResponses(r.data).responses).to.have.length(1);
        // Never before the timeout (the sweep is 100 ms coarse: generous upper bound only in waitFor terms).
        expect(Date.now() - started).to.be.at.least(190);
      } finally {
        await quick.reactor.close();
      }
    });

    it('408 for a head trickled in too slowly (a byte every 100 ms), not before requestTimeoutMs', async () => {
      const quick = await serve({ requestTimeoutMs: 600, keepAliveTimeoutMs: 5000 });
      try {
        const started = Date.now();
        const trickle = 'GET /health HTTP/1.1\r\nHost: t\r\nX-Slow: ' + 'a'.repeat(200);
        const r = await rawHttp(quick.port, trickle.split(''), { gapMs: 100 });
        expect(r.data.toString()).to.match(/^HTTP\/1\.1 408 /);
        expect(Date.now() - started).to.be.at.least(590);
      } finally {
        await quick.reactor.close();
      }
    });

    it('closes a response nobody reads after responseTimeoutMs, and the handler hears onClose', async () => {
      const quick = await serve({ keepAliveTimeoutMs: 100, responseTimeoutMs: 300 });
      try {
        const closedBefore = streamClosed;
        const sock = connect({ host: '127.0.0.1', port: quick.port });
        sock.on('error', () => {});
        await new Promise((r) => sock.once('connect', r));
        sock.pause(); // never reads
        sock.write(GET('/stream?n=1000000&size=100'));
        await waitFor(() => streamClosed === closedBefore + 1, 10000, 'the stalled stream closed');
        expect(quick.http.counters.connections).to.equal(0);
        sock.destroy();
      } finally {
        await quick.reactor.close();
      }
    });

    it('answers 503 beyond maxConnections and serves again once one closes', async () => {
      const few = await serve({ maxConnections: 2 });
      try {
        const a = connect({ host: '127.0.0.1', port: few.port });
        const b = connect({ host: '127.0.0.1', port: few.port });
        await waitFor(() => few.http.counters.connections === 2, 5000, 'two connections');
        const c = await rawHttp(few.port, [GET('/health')]);
        expect(c.data.toString()).to.match(/^HTTP\/1\.1 503 /);
        a.destroy();
        await waitFor(() => few.http.counters.connections === 1, 5000, 'one closed');
        const d = await rawHttp(few.port, [GET('/health')], { until: responsesComplete(1) });
        expect(parseHttpResponses(d.data).responses[0].status).to.equal(200);
        b.destroy();
      } finally {
        await few.reactor.close();
      }
    });

    it('survives 200 clients that reset in the middle of large streamed answers', async () => {
      const socks = Array.from({ length: 200 }, () => {
        const sock = connect({ host: '127.0.0.1', port: s.port });
        sock.on('error', () => {});
        sock.on('data', () => sock.resetAndDestroy());
        sock.on('connect', () => sock.write(GET('/stream?n=100000&size=100')));
        return sock;
      });
      await waitFor(() => socks.every((x) => x.destroyed), 20000, 'every client reset');
      await waitFor(() => s.http.counters.connections === 0, 10000, () => `connections to drain (${s.http.counters.connections} left)`);
      const ok = await rawHttp(s.port, [GET('/health')], { until: responsesComplete(1) });
      expect(parseHttpResponses(ok.data).responses[0].status).to.equal(200);
    });
  });
});

// Pipelining, streaming and half-close depend on the reactor's write queue and FIN
// handling: run them over every backend this machine has.
for (const name of BACKEND_NAMES) {
  const { attempt, module } = tryBackend(name);
  describe(`@logcaster/http on ${name}`, function () {
    this.timeout(30000);
    if (!module) {
      it(`skipped — ${attempt.status}: ${attempt.reason}`, function () {
        this.skip();
      });
      return;
    }
    let s: Running;
    before(async () => {
      s = await serve({}, () => createReactorWith(module));
    });
    after(async () => {
      await s.reactor.close();
    });
    it('pipelined requests with a streamed answer in the middle, sent with an immediate FIN', async () => {
      const reqs = GET('/health') + GET('/stream?n=5000&size=200') + GET('/later?n=3&ms=5') + GET('/echo', 'Content-Length: 2\r\n') + 'hi';
      const r = await rawHttp(s.port, [reqs], { end: true });
      expect(r.closed).to.equal(true);
      const bodies = parseHttpResponses(r.data).responses.map((x) => x.body);
      expect(bodies).to.have.length(4);
      expect(bodies[1].length).to.equal(5000 * 200);
      expect(bodies.map((b, i) => (i === 1 ? 'stream' : b.toString()))).to.deep.equal(['{"status":"ok"}\n', 'stream', 'later 3\n', 'hi']);
    });
  });
}
