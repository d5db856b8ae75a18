// The reactor inside Node: no busy-polling, and Node's own loop keeps turning while
// the reactor is busy. Measured in child processes so the test runner's own work
// does not count.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { get } from 'node:http';

import { BACKEND_NAMES, packageName, tryBackend } from '@logcaster/core';

const reactorPath = JSON.stringify(require.resolve('@logcaster/core'));

function runChild(script: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(t);
      if (code === 0) resolve(out);
      else reject(new Error(`child exited ${code}: ${out}`));
    });
  });
}

describe('reactor inside Node', function () {
  this.timeout(60000);
  const available = BACKEND_NAMES.filter((n) => tryBackend(n).module);
  const unavailable = BACKEND_NAMES.filter((n) => !tryBackend(n).module);

  it(`idles at < 1% of a core over 5 s with 50 idle connections, then answers at once (${available.join(', ')})`, async () => {
    // All backends at once, one child each: the machine is otherwise idle. The helper
    // thread (select, poll) or the ring (io_uring) must really sleep, and still wake
    // for the next byte.
    const results = await Promise.all(
      available.map((name) =>
        runChild(`
          const { createReactorWith } = require(${reactorPath});
          const r = createReactorWith(require(${JSON.stringify(packageName(name))}), {});
          const l = r.listen({ port: 0 }, { onData: (c, d) => void c.write(d) });
          const cs = Array.from({ length: 50 }, () => require('net').connect(l.port, '127.0.0.1'));
          setTimeout(() => {
            const before = process.cpuUsage();
            setTimeout(() => {
              const d = process.cpuUsage(before);
              const sent = Date.now();
              cs[7].on('data', () => {
                console.log(JSON.stringify({ name: ${JSON.stringify(name)}, ms: (d.user + d.system) / 1000, echoMs: Date.now() - sent }));
                for (const c of cs) c.destroy();
                r.close();
              });
              cs[7].write('ping');
            }, 5000);
          }, 500);
        `, 20000).then((out) => JSON.parse(out) as { name: string; ms: number; echoMs: number }),
      ),
    );
    for (const r of results) console.log(`      ${r.name}: ${r.ms.toFixed(1)} ms CPU in 5 s (${(r.ms / 50).toFixed(2)}% of a core), echo after idle in ${r.echoMs} ms`);
    for (const r of results) {
      expect(r.ms, `${r.name} used ${r.ms} ms in 5 s`).to.be.lessThan(50);
      expect(r.echoMs, `${r.name} echo after idle`).to.be.lessThan(1000);
    }
  });

  if (unavailable.length) {
    it(`skipped for ${unavailable.map((n) => `${n} (${tryBackend(n).attempt.reason})`).join('; ')}`, function () {
      this.skip();
    });
  }

  it('keeps timers and a node:http server answering while serving 1000 busy connections', async () => {
    // Server process: reactor echo (auto backend) + node:http + setInterval, with the
    // event-loop delay histogram. Load: 1000 ping-pong connections from another process.
    const server = spawn(process.execPath, ['-e', `
      const { createReactor } = require(${JSON.stringify(require.resolve('@logcaster/core'))});
      const { monitorEventLoopDelay } = require('perf_hooks');
      const r = createReactor({});
      const l = r.listen({ port: 0 }, { onData(c, d) { c.write(d); } });
      let ticks = 0;
      setInterval(() => ticks++, 10);
      const h = monitorEventLoopDelay({ resolution: 1 });
      const http = require('http').createServer((req, res) => res.end(JSON.stringify({ ticks, bytes: r.stats().bytesRead })));
      http.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ echo: l.port, http: http.address().port, backend: r.backend })));
      process.on('message', (m) => {
        if (m === 'start') { h.reset(); h.enable(); ticks = 0; }
        if (m === 'stop') { h.disable(); process.send({ p50: h.percentile(50) / 1e6, p99: h.percentile(99) / 1e6, max: h.max / 1e6, ticks }); }
      });
    `], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    let load: ReturnType<typeof spawn> | undefined;
    try {
      const ports = await new Promise<{ echo: number; http: number; backend: string }>((resolve) =>
        server.stdout!.once('data', (d: Buffer) => resolve(JSON.parse(d.toString()))),
      );
      load = spawn(process.execPath, ['-e', `
        const net = require('net');
        const msg = Buffer.alloc(64, 97);
        let n = 0;
        for (let i = 0; i < 1000; i++) {
          const s = net.connect(${ports.echo}, '127.0.0.1', () => s.write(msg));
          let got = 0;
          s.on('data', (d) => { got += d.length; while (got >= 64) { got -= 64; n++; s.write(msg); } });
          s.on('error', () => {});
        }
        setInterval(() => process.send(n), 500);
      `], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      let messages = 0;
      load.on('message', (m) => (messages = m as number));
      await new Promise((r) => setTimeout(r, 1500));
      server.send('start');
      const started = messages;
      const latencies: number[] = [];
      const until = Date.now() + 3000;
      while (Date.now() < until) {
        const t0 = process.hrtime.bigint();
        const body = await new Promise<string>((resolve, reject) => {
          get({ host: '127.0.0.1', port: ports.http, path: '/' }, (res) => {
            let b = '';
            res.on('data', (d) => (b += d));
            res.on('end', () => resolve(b));
          }).on('error', reject);
        });
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
        expect(JSON.parse(body)).to.have.property('ticks');
        await new Promise((r) => setTimeout(r, 20));
      }
      const delay = await new Promise<{ p50: number; p99: number; max: number; ticks: number }>((resolve) => {
        server.once('message', (m) => resolve(m as never));
        server.send('stop');
      });
      const served = messages - started;
      latencies.sort((a, b) => a - b);
      const httpP99 = latencies[Math.floor(latencies.length * 0.99)];
      console.log(`      backend ${ports.backend}: ${served} echo messages in ~3 s alongside; event-loop delay p50 ${delay.p50.toFixed(1)} ms, p99 ${delay.p99.toFixed(1)} ms, max ${delay.max.toFixed(1)} ms; setInterval(10 ms) fired ${delay.ticks}x; ${latencies.length} HTTP requests, p99 ${httpP99.toFixed(1)} ms`);
      expect(served, 'the reactor was busy').to.be.greaterThan(10000);
      expect(delay.ticks, 'setInterval kept firing').to.be.greaterThan(100);
      expect(latencies.length).to.be.greaterThan(50);
      // Generous bounds: shared 2-core machines are noisy; a blocked loop would be seconds.
      expect(delay.p99).to.be.lessThan(200);
      expect(httpP99).to.be.lessThan(500);
    } finally {
      load?.kill('SIGKILL');
      server.kill('SIGKILL');
    }
  });
});
