// The HTTP port: health, readiness, Prometheus metrics (parsed by a real exposition-format
// parser), the NDJSON query API, the SSE live tail, statistics, CLEAR, access rules.
import { expect } from 'chai';
import { rmSync } from 'node:fs';
import { get, request, type IncomingMessage } from 'node:http';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';

import { createNetNamespace, netnsUnavailable, rawHttp, parseHttpResponses, rmDir, sendAndClose, tmpDir, waitFor, type NetNamespace } from '@logcaster/testkit';

import { createLogCaster, type LogCaster, type LogCasterOptions, type StartInfo } from '../../src';
import { runSync, startCli } from '../support/cli';

interface Reply {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

function fetchText(port: number, path: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const ndjson = (body: string): { time: string; peer: string; severity?: string; line: string }[] =>
  body
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l));

/** Reads an SSE stream; `events` fills as they arrive. */
function tail(port: number, path: string, headers: Record<string, string> = {}): Promise<{ events: { id?: string; event?: string; data: string }[]; close(): void }> {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path, headers }, (res) => {
      const events: { id?: string; event?: string; data: string }[] = [];
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        buf += d;
        let end: number;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const ev: { id?: string; event?: string; data: string } = { data: '' };
          for (const line of block.split('\n')) {
            if (line.startsWith('id: ')) ev.id = line.slice(4);
            else if (line.startsWith('event: ')) ev.event = line.slice(7);
            else if (line.startsWith('data: ')) ev.data += line.slice(6);
          }
          if (ev.data !== '') events.push(ev);
        }
      });
      res.on('error', () => {});
      expect(res.headers['content-type']).to.match(/^text\/event-stream/);
      resolve({ events, close: () => req.destroy() });
    });
    req.on('error', reject);
  });
}

async function start(opts: LogCasterOptions = {}): Promise<{ lc: LogCaster; info: StartInfo }> {
  const lc = createLogCaster({ port: 0, queryPort: 0, httpPort: 0, ...opts });
  return { lc, info: await lc.start() };
}

const SYSLOG_ERR = '<11>Dec  1 10:00:00 web1 app[12]: disk error on sda';
const SYSLOG_INFO = '<14>Dec  1 10:00:01 web1 app[12]: all fine';

describe('server: HTTP port', function () {
  this.timeout(30000);

  describe('the logcaster CLI', () => {
    it('starts the HTTP port with --http-port and prints it; --no-http has none', async () => {
      const r = await startCli(['--data-dir', 'none']);
      try {
        expect(r.line).to.match(/ http=127\.0\.0\.1:\d+ /);
        const health = await fetchText(r.httpPort, '/health');
        expect(JSON.parse(health.body)).to.include({ status: 'ok' });
      } finally {
        r.child.kill('SIGTERM');
        expect((await r.exited).code).to.equal(0);
      }
      const off = await startCli(['--data-dir', 'none', '--no-http']);
      off.child.kill('SIGTERM');
      await off.exited;
      expect(off.line).to.not.match(/http=/);
    });

    it('refuses an out-of-range --http-port with exit status 2', () => {
      const r = runSync(['--http-port', '70000']);
      expect(r.status).to.equal(2);
      expect(r.stderr).to.match(/--http-port/);
    });
  });

  describe('endpoints', () => {
    let lc: LogCaster;
    let info: StartInfo;
    let dir: string;
    let port: number;
    before(async () => {
      dir = tmpDir('http-port');
      ({ lc, info } = await start({ dataDir: dir, regexTimeoutMs: 300 }));
      port = info.httpPort!;
      await sendAndClose(info.ingestPort, `${SYSLOG_ERR}\nhello world\n${SYSLOG_INFO}\n`);
      await waitFor(() => lc.stats().current === 3);
    });
    after(async () => {
      await lc.stop();
      rmDir(dir);
    });

    it('GET /health and GET /ready answer JSON', async () => {
      const h = await fetchText(port, '/health');
      expect(h.status).to.equal(200);
      expect(h.headers['content-type']).to.equal('application/json');
      expect(JSON.parse(h.body).status).to.equal('ok');
      const r = await fetchText(port, '/ready');
      expect(r.status).to.equal(200);
      expect(JSON.parse(r.body)).to.deep.equal({ ready: true, checks: { listening: true, journal: true } });
    });

    it('GET /api/query streams NDJSON: filters, the count header, newest first with offset and limit', async () => {
      const all = await fetchText(port, '/api/query');
      expect(all.headers['content-type']).to.equal('application/x-ndjson');
      expect(all.headers['x-logcaster-found']).to.equal('3');
      expect(ndjson(all.body).map((e) => e.line)).to.deep.equal([SYSLOG_ERR, 'hello world', SYSLOG_INFO]);
      const kw = ndjson((await fetchText(port, `/api/query?q=${encodeURIComponent('keyword=error')}`)).body);
      expect(kw).to.have.length(1);
      expect(kw[0]).to.include({ peer: '127.0.0.1', severity: 'err', line: SYSLOG_ERR });
      expect(Date.parse(kw[0].time)).to.be.closeTo(Date.now(), 60000);
      const sev = ndjson((await fetchText(port, `/api/query?q=${encodeURIComponent('severity=warning host=web1')}`)).body);
      expect(sev.map((e) => e.line)).to.deep.equal([SYSLOG_ERR]);
      const re = ndjson((await fetchText(port, `/api/query?q=${encodeURIComponent('regex=/HELLO|fine/i')}`)).body);
      expect(re.map((e) => e.line)).to.deep.equal(['hello world', SYSLOG_INFO]);
      const page = await fetchText(port, '/api/query?order=newest&offset=1&limit=1');
      expect(page.headers['x-logcaster-found']).to.equal('3');
      expect(ndjson(page.body).map((e) => e.line)).to.deep.equal(['hello world']);
    });

    it('GET /api/query answers a bad query with 400 and a runaway regex with 422, as JSON', async () => {
      const bad = await fetchText(port, '/api/query?q=bogus%3D1');
      expect(bad.status).to.equal(400);
      expect(JSON.parse(bad.body).error).to.match(/unknown parameter/);
      expect((await fetchText(port, '/api/query?limit=-1')).status).to.equal(400);
      await sendAndClose(info.ingestPort, `${'a'.repeat(40)}!\n`);
      const slow = await fetchText(port, `/api/query?q=${encodeURIComponent('regex=^(a+)+$')}`);
      expect(slow.status).to.equal(422);
      expect(JSON.parse(slow.body).error).to.match(/timed out after 300 ms/);
    });

    it('GET /api/tail sends new matching lines as events within 1 s, and resumes after Last-Event-ID', async () => {
      const t = await tail(port, `/api/tail?q=${encodeURIComponent('keyword=ALERT')}`);
      try {
        const sent = Date.now();
        await sendAndClose(info.ingestPort, 'ALERT one\nnot this\nALERT two\n');
        await waitFor(() => t.events.length === 2, 5000, 'two tail events');
        expect(Date.now() - sent).to.be.below(1000 + 500); // 1 s target, plus the sender's own round trip
        expect(t.events.map((e) => JSON.parse(e.data).line)).to.deep.equal(['ALERT one', 'ALERT two']);
        const lastId = t.events[1].id!; // the last event of a delivery carries the id
        t.close();
        await sendAndClose(info.ingestPort, 'ALERT three (sent while nobody listened)\n');
        const again = await tail(port, `/api/tail?q=${encodeURIComponent('keyword=ALERT')}`, { 'Last-Event-ID': lastId });
        await waitFor(() => again.events.length === 1, 5000, 'the missed event');
        expect(JSON.parse(again.events[0].data).line).to.equal('ALERT three (sent while nobody listened)');
        again.close();
      } finally {
        t.close();
      }
    });

    it('GET /api/stats answers the STATS figures as JSON, with the lines-per-second series', async () => {
      const s = JSON.parse((await fetchText(port, '/api/stats')).body);
      const direct = lc.stats();
      expect(s.total).to.equal(direct.total);
      expect(s.current).to.equal(direct.current);
      expect(s.backend).to.equal(direct.backend);
      expect(s.rate).to.include({ intervalSeconds: 1, capacity: 300 });
      expect(s.rate.values).to.be.an('array');
    });

    it('GET /metrics is Prometheus text 0.0.4 that a real parser reads, with the counters it promises', async () => {
      await fetchText(port, '/api/query?q=keyword%3Dx'); // one HTTP query for the histogram
      const m = await fetchText(port, '/metrics');
      expect(m.headers['content-type']).to.equal('text/plain; version=0.0.4; charset=utf-8');
      const families = parsePrometheusTextFormat(m.body);
      const byName = new Map(families.map((f) => [f.name, f]));
      for (const f of families) {
        expect(f.name).to.match(/^[a-z_][a-z0-9_]*$/);
        expect(f.help).to.be.a('string').and.not.equal('');
        if (f.type === 'COUNTER') expect(f.name).to.match(/_total$/);
      }
      const value = (name: string, labels: Record<string, string> = {}): number => {
        const f = byName.get(name);
        expect(f, name).to.not.equal(undefined);
        const metric = f!.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
        expect(metric, `${name} ${JSON.stringify(labels)}`).to.not.equal(undefined);
        return Number(metric!.value);
      };
      const s = lc.stats();
      expect(value('logcaster_received_lines_total', { transport: 'tcp' })).to.equal(s.linesReceived);
      expect(value('logcaster_received_bytes_total', { transport: 'tcp' })).to.equal(s.bytesReceived);
      expect(value('logcaster_stored_lines_total')).to.equal(s.total);
      expect(value('logcaster_dropped_lines_total')).to.equal(s.dropped);
      expect(value('logcaster_truncated_lines_total')).to.equal(0);
      expect(value('logcaster_persisted_lines_total')).to.be.at.most(s.total);
      expect(value('logcaster_persist_failed_lines_total')).to.equal(0);
      expect(value('logcaster_journal_segments')).to.be.at.least(1);
      expect(value('logcaster_journal_segments')).to.equal(s.journalFiles);
      expect(value('logcaster_journal_bytes')).to.equal(s.journalBytes);
      expect(value('logcaster_retained_lines')).to.equal(s.current);
      expect(value('logcaster_history_groups_skipped_total')).to.equal(s.historyGroupsSkipped);
      expect(value('logcaster_journal_filters_pending')).to.equal(s.filtersPending);
      expect(value('logcaster_history_filter_failures_total')).to.equal(s.filterFailures);
      expect(value('logcaster_history_filter_waits_total')).to.equal(s.filterWaits);
      expect(value('logcaster_store_allocated_bytes')).to.be.at.least(s.storeBytes);
      expect(value('logcaster_journal_written_bytes_total')).to.be.above(0);
      expect(value('logcaster_connections', { port: 'http' })).to.be.at.least(1);
      expect(value('logcaster_connections_accepted_total', { port: 'ingest' })).to.equal(s.connections);
      expect(value('logcaster_connections_rejected_total', { port: 'ingest', reason: 'capacity' })).to.equal(0);
      expect(value('logcaster_queries_total', { command: 'QUERY', via: 'http' })).to.be.at.least(1);
      expect(value('process_resident_memory_bytes')).to.be.above(1e6);
      expect(value('logcaster_event_loop_delay_seconds', { stat: 'p99' })).to.be.at.least(0);
      const hist = byName.get('logcaster_query_duration_seconds')!;
      expect(hist.type).to.equal('HISTOGRAM');
      const [series] = hist.metrics;
      // Sorted by bound: integer-like keys ("1", "5") come first in a JS object.
      const buckets = Object.entries(series.buckets!).sort(([a], [b]) => Number(a.replace('+Inf', 'Infinity')) - Number(b.replace('+Inf', 'Infinity')));
      expect(buckets[buckets.length - 1][0]).to.equal('+Inf');
      const counts = buckets.map(([, v]) => Number(v));
      for (let i = 1; i < counts.length; i++) expect(counts[i]).to.be.at.least(counts[i - 1]);
      expect(Number(series.count)).to.equal(counts[counts.length - 1]);
      expect(Number(series.count)).to.be.at.least(1);
      expect(Number(series.sum)).to.be.above(0);
    });

    it('counts query-port commands by name in logcaster_queries_total', async () => {
      await sendAndClose(info.queryPort, 'COUNT\nNOPE\nQUERY keyword=hello\n');
      const families = parsePrometheusTextFormat((await fetchText(port, '/metrics')).body);
      const q = families.find((f) => f.name === 'logcaster_queries_total')!;
      const n = (command: string): number => Number(q.metrics.find((m) => m.labels?.command === command && m.labels?.via === 'query_port')?.value ?? 0);
      expect([n('COUNT'), n('QUERY'), n('ERROR')]).to.deep.equal([1, 1, 1]);
    });

    it('refuses a Host that is not an address or a local name (DNS rebinding) with 421', async () => {
      const r = await fetchText(port, '/api/query', { headers: { Host: 'attacker.example:80' } });
      expect(r.status).to.equal(421);
      expect((await fetchText(port, '/api/stats', { headers: { Host: 'localhost' } })).status).to.equal(200);
    });

    it('CLEAR over HTTP needs an --http-token, even from loopback', async () => {
      const r = await fetchText(port, '/api/clear', { method: 'POST' });
      expect(r.status).to.equal(403);
      expect(lc.stats().current).to.be.above(0);
      expect((await fetchText(port, '/api/clear')).status).to.equal(405);
    });

    it('answers what was asked before the client half-closed (printf … | nc -q1)', async () => {
      const r = await rawHttp(port, ['GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /api/query?limit=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'], { end: true });
      expect(r.closed).to.equal(true);
      const [health, query] = parseHttpResponses(r.data).responses;
      expect(health.status).to.equal(200);
      expect(ndjson(query.body.toString())).to.have.length(1);
    });

    it('GET /ready turns 503 when the data directory disappears', async () => {
      rmSync(dir, { recursive: true, force: true });
      const r = await fetchText(port, '/ready');
      expect(r.status).to.equal(503);
      expect(JSON.parse(r.body).checks.journal).to.match(/not writable: ENOENT/);
    });
  });

  it('streams a 200,000-line answer to a slow reader while ingest goes on', async () => {
    const { lc, info } = await start({ capacity: 300_000 });
    try {
      const block = Array.from({ length: 200_000 }, (_, i) => `line ${i} ${'x'.repeat(60)}`).join('\n') + '\n';
      await sendAndClose(info.ingestPort, block);
      await waitFor(() => lc.stats().current === 200_000, 20000, 'the lines stored');
      const body: string[] = [];
      let bytes = 0;
      await new Promise<void>((resolve, reject) => {
        const req = get({ host: '127.0.0.1', port: info.httpPort, path: '/api/query' }, (res) => {
          res.setEncoding('utf8');
          res.pause(); // a slow reader: the server must wait for it, not queue 20 MB
          setTimeout(async () => {
            try {
              await sendAndClose(info.ingestPort, 'sent during the stream\n');
              await waitFor(() => lc.stats().current === 200_001, 5000, 'ingest during the stream');
              res.on('data', (d: string) => {
                body.push(d);
                bytes += d.length;
              });
              res.on('end', resolve);
              res.resume();
            } catch (e) {
              reject(e);
            }
          }, 300);
        });
        req.on('error', reject);
      });
      const rows = ndjson(body.join(''));
      expect(rows).to.have.length(200_000); // the snapshot taken when the query began
      expect(rows[199_999].line).to.equal(`line 199999 ${'x'.repeat(60)}`);
      expect(bytes).to.be.above(200_000 * 60);
    } finally {
      await lc.stop();
    }
  });

  describe('access', () => {
    it('warns that a non-loopback HTTP port with no token at all (--query-insecure) serves only loopback', () => {
      const open = createLogCaster({ port: 0, queryPort: 0, httpPort: 0, queryHost: '0.0.0.0', queryInsecure: true });
      expect(open.warnings.join('\n')).to.match(/HTTP port on 0\.0\.0\.0 has no token: it answers only loopback clients/);
      const tokened = createLogCaster({ port: 0, queryPort: 0, httpPort: 0, queryHost: '0.0.0.0', queryTokens: ['query-token-0123456789'] });
      expect(tokened.warnings.join('\n')).to.not.match(/HTTP port/);
    });

    it('behind --query-allow, a query sent with an immediate FIN is still answered', async () => {
      const { lc, info } = await start({ queryAllow: ['127.0.0.0/8'] });
      try {
        const r = await rawHttp(info.httpPort!, ['GET /api/query HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'], { end: true });
        expect(r.closed).to.equal(true);
        expect(parseHttpResponses(r.data).responses.map((x) => x.status)).to.deep.equal([200]);
      } finally {
        await lc.stop();
      }
    });

    it('CLEAR over HTTP with a token: refused without it, even from loopback; done with it', async () => {
      const token = 'http-token-for-clear-5f1e2d';
      const { lc, info } = await start({ httpTokens: [token] });
      try {
        await sendAndClose(info.ingestPort, 'a\nb\n');
        await waitFor(() => lc.stats().current === 2);
        const port = info.httpPort!;
        expect((await fetchText(port, '/api/clear', { method: 'POST' })).status).to.equal(401);
        expect((await fetchText(port, '/api/clear', { method: 'POST', headers: { Authorization: 'Bearer wrong-token' } })).status).to.equal(401);
        const ok = await fetchText(port, '/api/clear', { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
        expect(JSON.parse(ok.body)).to.deep.equal({ cleared: 2 });
        expect(lc.stats().current).to.equal(0);
      } finally {
        await lc.stop();
      }
    });

    const why = netnsUnavailable();
    (why ? describe.skip : describe)(`from another address (network namespace)${why ? ` — skipped: ${why}` : ''}`, () => {
      let ns: NetNamespace;
      before(() => (ns = createNetNamespace()));
      after(() => ns?.close());

      it('a client not on loopback needs the bearer token, except for /health and /ready', async () => {
        const token = 'remote-http-token-9a8b7c6d5e';
        const { lc, info } = await start({ queryHost: '0.0.0.0', queryTokens: ['remote-query-token-0011223344'], httpTokens: [token] });
        try {
          const curl = async (path: string, auth?: string): Promise<string> => {
            const args = ['-s', '-o', '/dev/null', '-w', '%{http_code}', ...(auth ? ['-H', `Authorization: Bearer ${auth}`] : []), `http://${ns.hostAddress}:${info.httpPort}${path}`];
            return (await ns.run('curl', args)).stdout.toString();
          };
          expect(await curl('/health')).to.equal('200');
          expect(await curl('/ready')).to.equal('200');
          expect(await curl('/api/query')).to.equal('401');
          expect(await curl('/metrics')).to.equal('401');
          expect(await curl('/api/query', 'not-the-token')).to.equal('401');
          expect(await curl('/api/query', token)).to.equal('200');
          expect(await curl('/metrics', token)).to.equal('200');
          expect(await curl('/api/stats', 'remote-query-token-0011223344')).to.equal('200'); // query tokens read too
          expect(await curl('/')).to.equal('200'); // the console page itself; it asks for the token
        } finally {
          await lc.stop();
        }
      });
    });
  });
});
