'use strict';
// Starts examples/syslog-relay as a real child process between real node:dgram senders
// and a real TCP collector (a node:net server on 127.0.0.1), on every backend that loads.
const { expect } = require('chai');
const { spawnSync } = require('child_process');
const net = require('net');
const path = require('path');

const EXAMPLE = path.join(__dirname, '..');
const { ROOT, backendUnavailable, freePort, startExample, stop, udpPeer, waitFor } = require('@logcaster/testkit');

const READY = /^syslog-relay listening on udp ([\d.:a-f]+):(\d+), forwarding to tcp (\S+) \((\w+) framing, backend (\w+)\)\n/;

async function startRelay(args) {
  const s = await startExample(EXAMPLE, args, READY);
  return { child: s.child, output: s.output, port: Number(s.match[2]), framing: s.match[4], backend: s.match[5] };
}

/** Parse RFC 6587 octet-counted frames from the front of `buf`; returns [frames, rest]. */
function octetFrames(buf) {
  const frames = [];
  let at = 0;
  for (;;) {
    const sp = buf.indexOf(0x20, at);
    if (sp < 0) break;
    const len = Number(buf.toString('latin1', at, sp));
    if (!Number.isInteger(len) || len <= 0) throw new Error(`bad frame header at ${at}: ${JSON.stringify(buf.toString('latin1', at, sp + 1))}`);
    if (buf.length < sp + 1 + len) break;
    frames.push(buf.toString('utf8', sp + 1, sp + 1 + len));
    at = sp + 1 + len;
  }
  return [frames, buf.subarray(at)];
}

/** A TCP collector: records every octet-counted frame (or line) on every connection. */
async function collector(port = 0, framing = 'octet') {
  const frames = [];
  const sockets = new Set();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    let rest = Buffer.alloc(0);
    sock.on('data', (d) => {
      rest = Buffer.concat([rest, d]);
      if (framing === 'octet') {
        const [got, left] = octetFrames(rest);
        frames.push(...got);
        rest = left;
      } else {
        let nl;
        while ((nl = rest.indexOf(0x0a)) >= 0) {
          frames.push(rest.toString('utf8', 0, nl));
          rest = rest.subarray(nl + 1);
        }
      }
    });
    sock.on('error', () => {});
    sock.on('close', () => sockets.delete(sock));
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    frames,
    sockets,
    close: () => new Promise((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  };
}

/** The counters of the `n`-th stats line (asks for one with SIGUSR1). */
async function relayStats(relay, n) {
  relay.child.kill('SIGUSR1');
  const re = /^syslog-relay stats: (.*)$/gm;
  let lines = [];
  await waitFor(() => (lines = [...relay.output().matchAll(re)]).length >= n, 10000, 'the stats line');
  return Object.fromEntries(lines[n - 1][1].split(' ').map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v)]));
}

const BACKENDS = ['auto', 'epoll', 'iouring', 'poll', 'select'];

describe('examples/syslog-relay', function () {
  this.timeout(60000);
  let relay;
  let sink;
  let peer;
  afterEach(async () => {
    if (relay) await stop(relay.child);
    if (peer) await peer.close();
    if (sink) await sink.close();
    relay = peer = sink = undefined;
  });

  for (const backend of BACKENDS) {
    const reason = backendUnavailable(backend);
    const title = `--backend ${backend}: 500 numbered datagrams arrive over TCP, octet-counted, each once and in order`;
    it(reason ? `${title} (skipped: backend cannot be loaded here: ${reason})` : title, async function () {
      if (reason) this.skip();
      sink = await collector();
      relay = await startRelay(['--backend', backend, '--udp-port', '0', '--target', `127.0.0.1:${sink.port}`]);
      if (backend !== 'auto') expect(relay.backend).to.equal(backend);
      peer = await udpPeer();
      const sent = Array.from({ length: 500 }, (_, i) => `<13>1 2026-12-02T00:00:00Z host app - - - relayed ${i}`);
      // Before the relay has connected, datagrams wait in its receive buffer; send in flights.
      for (let i = 0; i < sent.length; i += 100) {
        await Promise.all(sent.slice(i, i + 100).map((m) => peer.send(`${m}\n`, relay.port)));
        await waitFor(() => sink.frames.length >= i + 100, 10000, () => `${i + 100} frames (have ${sink.frames.length})`);
      }
      expect(sink.frames).to.deep.equal(sent);
    });
  }

  it('octet counting carries a message with line ends whole; --framing lf sends lines', async () => {
    sink = await collector();
    relay = await startRelay(['--udp-port', '0', '--target', `127.0.0.1:${sink.port}`]);
    peer = await udpPeer();
    await peer.send('first line\nsecond line\r\n', relay.port);
    await waitFor(() => sink.frames.length === 1, 10000, 'the frame');
    expect(sink.frames).to.deep.equal(['first line\nsecond line']);
    await stop(relay.child);
    await sink.close();

    sink = await collector(0, 'lf');
    relay = await startRelay(['--udp-port', '0', '--target', `127.0.0.1:${sink.port}`, '--framing', 'lf']);
    expect(relay.framing).to.equal('lf');
    await peer.send('one\n', relay.port);
    await peer.send('two', relay.port);
    await waitFor(() => sink.frames.length === 2, 10000, 'the lines');
    expect(sink.frames).to.deep.equal(['one', 'two']);
  });

  it('a collector that does not read: the relay stops reading, the kernel drops are counted, and forwarded + dropped = sent', async () => {
    sink = await collector();
    // A small receive buffer so that a modest flood overflows it once the relay stops reading.
    relay = await startRelay(['--udp-port', '0', '--target', `127.0.0.1:${sink.port}`, '--recv-buffer', String(64 * 1024), '--report-interval', '0']);
    await waitFor(() => sink.sockets.size === 1, 10000, 'the relay to connect');
    const [conn] = sink.sockets;
    conn.pause(); // the collector stops reading
    peer = await udpPeer();
    const m = Buffer.alloc(400, 'm');
    let sent = 0;
    const flight = async (k) => {
      await Promise.all(Array.from({ length: k }, () => peer.send(m, relay.port)));
      sent += k;
    };
    // Until the TCP buffers are full and write() has said so: the relay stops reading.
    let reports = 0;
    for (const until = Date.now() + 30000; ;) {
      await flight(500);
      if ((await relayStats(relay, ++reports)).pauses > 0) break;
      if (Date.now() > until) throw new Error(`the relay never stopped reading (${sent} sent)`);
    }
    await flight(3000); // 1.2 MB while it does not read: more than its receive buffer holds
    conn.resume();
    // Every datagram is either forwarded whole or counted as dropped by the kernel.
    let s;
    for (const until = Date.now() + 30000; ;) {
      s = await relayStats(relay, ++reports);
      if (s.received + s.kernelDropped === sent && sink.frames.length === s.forwarded) break;
      if (Date.now() > until) throw new Error(`received ${s.received} + dropped ${s.kernelDropped} != ${sent} sent, or the collector has ${sink.frames.length} of ${s.forwarded} forwarded`);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(s.kernelDropped, 'kernel drops counted').to.be.greaterThan(0);
    expect(s.forwarded).to.equal(s.received);
    expect(sink.frames.every((x) => x === 'm'.repeat(400))).to.equal(true);
  });

  it('waits for a collector that is not up yet and reconnects after it went away; nothing read meanwhile is lost', async () => {
    const port = await freePort();
    relay = await startRelay(['--udp-port', '0', '--target', `127.0.0.1:${port}`]);
    peer = await udpPeer();
    for (let i = 0; i < 20; i++) await peer.send(`early ${i}`, relay.port);
    sink = await collector(port);
    await waitFor(() => sink.frames.length === 20, 20000, () => `the 20 early messages (have ${sink.frames.length})`);
    expect(sink.frames).to.deep.equal(Array.from({ length: 20 }, (_, i) => `early ${i}`));
    // The collector drops the connection; the relay connects again.
    for (const s of sink.sockets) s.destroy();
    await waitFor(() => sink.sockets.size === 1, 20000, 'the reconnect');
    for (let i = 0; i < 20; i++) await peer.send(`late ${i}`, relay.port);
    await waitFor(() => sink.frames.length === 40, 20000, () => `the 20 late messages (have ${sink.frames.length})`);
    expect(sink.frames.slice(20)).to.deep.equal(Array.from({ length: 20 }, (_, i) => `late ${i}`));
    const s = await relayStats(relay, 1);
    expect(s.connects).to.equal(2);
    expect(s.disconnects).to.equal(1);
  });

  it('SIGTERM: what the relay queued for a stalled collector still reaches it, then exit 0', async () => {
    sink = await collector();
    relay = await startRelay(['--udp-port', '0', '--target', `127.0.0.1:${sink.port}`, '--report-interval', '0']);
    await waitFor(() => sink.sockets.size === 1, 10000, 'the relay to connect');
    const [conn] = sink.sockets;
    conn.pause();
    peer = await udpPeer();
    const m = Buffer.alloc(1000, 'q');
    // Until the relay holds bytes the kernel would not take (its queue is over the mark).
    let s;
    for (let k = 1, until = Date.now() + 30000; ; k++) {
      await Promise.all(Array.from({ length: 200 }, () => peer.send(m, relay.port)));
      s = await relayStats(relay, k);
      if (s.pauses > 0 && s.queuedBytes > 0) break;
      if (Date.now() > until) throw new Error(`the relay never queued bytes: ${JSON.stringify(s)}`);
    }
    const exited = new Promise((resolve) => relay.child.once('exit', (code) => resolve(code)));
    relay.child.kill('SIGTERM');
    setTimeout(() => conn.resume(), 300); // the collector reads again while the relay drains
    expect(await exited).to.equal(0);
    const last = [...relay.output().matchAll(/^syslog-relay stats: (.*)$/gm)].pop()[1];
    const forwarded = Number(/forwarded=(\d+)/.exec(last)[1]);
    await waitFor(() => sink.frames.length === forwarded, 10000, () => `${forwarded} frames (have ${sink.frames.length})`);
    relay = undefined;
  });

  it('rejects a missing --target and a bad --framing with status 2', () => {
    for (const [args, what] of [[['--udp-port', '0'], /--target/], [['--target', '127.0.0.1:1', '--framing', 'xml'], /--framing/]]) {
      const r = spawnSync(process.execPath, [EXAMPLE, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 10000 });
      expect(r.status).to.equal(2);
      expect(r.stderr).to.match(what);
    }
  });
});
