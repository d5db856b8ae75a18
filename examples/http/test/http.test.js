'use strict';
// Starts examples/http as a real child process and drives it with curl, raw sockets and wrk.
const { expect } = require('chai');
const { execFile, spawnSync } = require('child_process');
const net = require('net');
const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');

const EXAMPLE = path.join(__dirname, '..');
const { startExample, stop, rawHttp, parseHttpResponses, responsesComplete } = require('@logcaster/testkit');
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const HAVE_CURL = has('curl');
const HAVE_WRK = has('wrk');

async function startHttp(args) {
  const s = await startExample(EXAMPLE, args, /^http listening on ([\d.:a-f]+):(\d+) \(backend (\w+)\)/);
  return { child: s.child, port: Number(s.match[2]), backend: s.match[3] };
}

function run(cmd, args, timeout = 30000) {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout, maxBuffer: 64 * 1024 * 1024, encoding: 'buffer' }, (error, stdout, stderr) => {
      resolve({ code: error ? error.code : 0, stdout, stderr: stderr.toString() });
    });
  });
}

const raw = (port, pieces, until, timeoutMs = 5000) => rawHttp(port, pieces, { gapMs: pieces.length > 1 ? 15 : 0, until, timeoutMs });
const parseResponses = (buf, headOnly) => parseHttpResponses(buf, headOnly).responses;
const INDEX = fs.readFileSync(path.join(EXAMPLE, 'public', 'index.html'));

describe('examples/http', function () {
  this.timeout(60000);
  let server;
  let tmp;
  let big;
  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'logcaster-http-'));
    big = crypto.randomBytes(5 * 1024 * 1024);
    fs.writeFileSync(path.join(tmp, 'big.bin'), big);
    fs.copyFileSync(path.join(EXAMPLE, 'public', 'index.html'), path.join(tmp, 'index.html'));
    fs.writeFileSync(path.join(tmp, 'style.css'), 'body { color: #333 }\n');
    fs.writeFileSync(path.join(tmp, 'secret.txt'), 'must not leak\n');
    fs.mkdirSync(path.join(tmp, 'www'));
    fs.writeFileSync(path.join(tmp, 'www', 'index.html'), '<p>inner</p>\n');
    fs.copyFileSync(path.join(tmp, 'big.bin'), path.join(tmp, 'www', 'big.bin'));
    server = await startHttp(['--port', '0', '--root', path.join(tmp, 'www')]);
  });
  after(async () => {
    if (server) expect(await stop(server.child)).to.equal(0);
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  const url = (p) => `http://127.0.0.1:${server.port}${p}`;

  describe('with curl', () => {
    before(function () { if (!HAVE_CURL) this.skip(); });
    if (!HAVE_CURL) it('curl tests (skipped: curl is not installed; apt-get install -y curl)', function () { this.skip(); });

    it('reuses one keep-alive connection for two URLs in one curl invocation', async () => {
      const r = await run('curl', ['-sv', url('/'), url('/api/stats')]);
      expect(r.code).to.equal(0);
      expect(r.stderr).to.match(/Re-?using existing connection/i);
      expect((r.stderr.match(/Connected to 127\.0\.0\.1/g) || []).length).to.equal(1);
      const body = r.stdout.toString();
      expect(body).to.contain('<p>inner</p>');
      const stats = JSON.parse(body.slice(body.indexOf('{')));
      expect(stats.backend).to.equal(server.backend);
      expect(stats.reactor.accepted).to.be.at.least(1);
    });

    it('answers 404 for a missing file and 405 for POST', async () => {
      const r = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', url('/no/such/file.txt')]);
      expect(r.stdout.toString()).to.equal('404');
      const p = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'POST', '-d', 'a=1', url('/')]);
      expect(p.stdout.toString()).to.equal('405');
    });

    for (const evil of ['/../secret.txt', '/%2e%2e/secret.txt', '/%2E%2E%2Fsecret.txt', '/..%2fsecret.txt', '/www/../../secret.txt', '/../../../../etc/passwd']) {
      it(`refuses path traversal ${evil} (--path-as-is)`, async () => {
        const r = await run('curl', ['-s', '--path-as-is', '-w', '\n%{http_code}', url(evil)]);
        const out = r.stdout.toString();
        expect(out).to.not.contain('must not leak');
        expect(out).to.not.match(/root:/);
        expect(Number(out.trim().split('\n').pop())).to.be.oneOf([400, 403, 404]);
      });
    }

    it('streams a 5 MB file byte-exact with the right Content-Length; HEAD sends no body', async () => {
      const dest = path.join(tmp, 'download.bin');
      const r = await run('curl', ['-s', '-D', '-', '-o', dest, url('/big.bin')]);
      expect(r.code).to.equal(0);
      expect(r.stdout.toString()).to.match(/Content-Length: 5242880\r\n/);
      expect(r.stdout.toString()).to.match(/Content-Type: application\/octet-stream\r\n/);
      expect(fs.readFileSync(dest).equals(big)).to.equal(true);
      const h = await run('curl', ['-s', '-I', url('/big.bin')]);
      expect(h.stdout.toString()).to.match(/^HTTP\/1\.1 200 OK\r\n/);
      expect(h.stdout.toString()).to.match(/Content-Length: 5242880\r\n/);
    });
  });

  describe('with raw sockets', () => {
    it('answers two pipelined requests sent in one packet, in order', async () => {
      const reqs = 'GET /index.html HTTP/1.1\r\nHost: x\r\n\r\nGET /api/stats HTTP/1.1\r\nHost: x\r\n\r\n';
      const { data } = await raw(server.port, [reqs], responsesComplete(2));
      const [a, b] = parseResponses(data);
      expect(a.status).to.equal(200);
      expect(a.body.toString()).to.equal('<p>inner</p>\n');
      expect(a.headers['content-type']).to.equal('text/html; charset=utf-8');
      expect(b.status).to.equal(200);
      expect(b.headers['content-type']).to.equal('application/json');
      expect(JSON.parse(b.body.toString())).to.have.property('reactor');
    });

    it('pipelines a large file between two small responses without mixing bytes', async () => {
      const reqs = 'GET /index.html HTTP/1.1\r\nHost: x\r\n\r\nGET /big.bin HTTP/1.1\r\nHost: x\r\n\r\nHEAD /big.bin HTTP/1.1\r\nHost: x\r\n\r\nGET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
      const { data, closed } = await raw(server.port, [reqs], null, 20000);
      expect(closed).to.equal(true);
      // The HEAD response carries Content-Length but no body: parse it by hand.
      const first = parseResponses(data).slice(0, 2);
      expect(first.map((r) => r.status)).to.deep.equal([200, 200]);
      expect(first[1].body.equals(big)).to.equal(true);
      const rest = data.subarray(data.indexOf(big) + big.length).toString('latin1');
      expect(rest).to.match(/^HTTP\/1\.1 200 OK\r\n[^]*Content-Length: 5242880\r\n[^]*\r\n\r\nHTTP\/1\.1 200 OK\r\n[^]*Connection: close\r\n\r\n<p>inner<\/p>\n$/);
    });

    it('parses a head split across many packets', async () => {
      const req = 'GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: split\r\nAccept: */*\r\n\r\n';
      const pieces = req.match(/.{1,7}/gs);
      const { data } = await raw(server.port, pieces, responsesComplete(1));
      const [r] = parseResponses(data);
      expect(r.status).to.equal(200);
      expect(r.body.toString()).to.equal('<p>inner</p>\n');
    });

    it('honours Connection: close and HTTP/1.0 defaults', async () => {
      const a = await raw(server.port, ['GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
      expect(a.closed).to.equal(true);
      expect(a.data.toString()).to.match(/\r\nConnection: close\r\n/);
      const b = await raw(server.port, ['GET / HTTP/1.0\r\n\r\n']);
      expect(b.closed).to.equal(true);
      expect(parseResponses(b.data)[0].status).to.equal(200);
    });

    it('400 for a malformed request line, 431 for an over-long head; both close', async () => {
      const a = await raw(server.port, ['NONSENSE\r\n\r\n']);
      expect(a.data.toString()).to.match(/^HTTP\/1\.1 400 /);
      expect(a.closed).to.equal(true);
      const b = await raw(server.port, [`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20000)}\r\n\r\n`]);
      expect(b.data.toString()).to.match(/^HTTP\/1\.1 431 /);
      expect(b.closed).to.equal(true);
      const c = await raw(server.port, [`GET / HTTP/1.1\r\nX-Big: ${'a'.repeat(20000)}`]); // never terminated
      expect(c.data.toString()).to.match(/^HTTP\/1\.1 431 /);
    });

    it('answers a small file from memory and sees it change on disk within a few seconds', async () => {
      const file = path.join(tmp, 'www', 'changing.txt');
      fs.writeFileSync(file, 'first version\n');
      const get = async () => parseResponses((await raw(server.port, ['GET /changing.txt HTTP/1.1\r\nHost: x\r\n\r\n'], responsesComplete(1))).data)[0];
      expect((await get()).body.toString()).to.equal('first version\n');
      expect((await get()).body.toString()).to.equal('first version\n'); // the cached copy
      fs.writeFileSync(file, 'second, longer version\n');
      const deadline = Date.now() + 10000; // re-checked once a second: generous bound for a busy machine
      let body = '';
      while (Date.now() < deadline && body !== 'second, longer version\n') {
        body = (await get()).body.toString();
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(body).to.equal('second, longer version\n');
      fs.unlinkSync(file);
    });

    it('remembers a missing file for a second only: created afterwards, it is served', async () => {
      const file = path.join(tmp, 'www', 'later.txt');
      const get = async () => parseResponses((await raw(server.port, ['GET /later.txt HTTP/1.1\r\nHost: x\r\n\r\n'], responsesComplete(1))).data)[0];
      expect((await get()).status).to.equal(404);
      expect((await get()).status).to.equal(404); // from memory
      fs.writeFileSync(file, 'here now\n');
      const deadline = Date.now() + 10000; // re-checked once a second: generous bound for a busy machine
      let r = await get();
      while (Date.now() < deadline && r.status !== 200) {
        await new Promise((ok) => setTimeout(ok, 100));
        r = await get();
      }
      expect([r.status, r.body.toString()]).to.deep.equal([200, 'here now\n']);
      fs.unlinkSync(file);
    });
  });

  describe('under load (wrk)', () => {
    if (!HAVE_WRK) {
      it('wrk smoke run (skipped: wrk is not installed; apt-get install -y wrk)', function () { this.skip(); });
      return;
    }
    it('serves a short wrk run with zero errors and zero non-2xx responses', async () => {
      const r = await run('wrk', ['-t1', '-c20', '-d2s', url('/index.html')], 20000);
      const out = r.stdout.toString();
      const rps = Number((/Requests\/sec:\s+([\d.]+)/.exec(out) || [])[1]);
      const total = Number((/(\d+) requests in/.exec(out) || [])[1]);
      console.log(`      wrk -t1 -c20 -d2s: ${total} requests, ${rps} req/s`);
      expect(r.code).to.equal(0);
      expect(total).to.be.greaterThan(0);
      expect(out).to.not.match(/Non-2xx or 3xx responses/);
      expect(out).to.not.match(/Socket errors/);
    });
  });
});
