// The conformance suite for datagram and Unix domain sockets: UDP over IPv4/IPv6, Unix
// datagram and stream sockets, run unchanged over every backend (see
// ../test/datagram.test.ts). Peers are real: node:dgram, node:net, a python3 Unix
// datagram client, child processes that die and leave their socket files behind.
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import * as path from 'node:path';

import { createReactorWith } from '@logcaster/core';
import type { BackendModule, DatagramSocket, Reactor, ReactorOptions, RemoteInfo } from '@logcaster/core';
import { delay, rmDir, tmpDir, udpPeer, unixDgramExchange, waitFor } from '@logcaster/testkit';

type TestReactor = Reactor & { readonly connectionCount: number };

function hasIpv6Loopback(): boolean {
  return Object.values(networkInterfaces()).some((list) => list?.some((i) => i.family === 'IPv6' && i.internal));
}

const hasPython = spawnSync('python3', ['-c', 'pass']).status === 0;

/** A node child that binds a Unix stream socket at `file` and dies by SIGKILL, leaving the file. */
function leaveStaleSocket(file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(file)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    child.on('exit', () => (fs.existsSync(file) ? resolve() : reject(new Error('the child left no socket file'))));
  });
}

function connectUnix(file: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(file);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Batch number (reactor dispatches so far) at each call: events with the same number came in one batch. */
function batchOf(r: Reactor): number {
  return r.stats().dispatches;
}

export function runDatagramConformance(label: string, load: () => BackendModule, options: ReactorOptions = {}): void {
  describe(`datagram conformance: ${label}`, function () {
    this.timeout(30000);
    let reactor: TestReactor;
    let dir: string;
    const make = (extra: ReactorOptions = {}): TestReactor => createReactorWith(load(), { ...options, ...extra });

    beforeEach(() => {
      reactor = make();
      dir = tmpDir('dgram');
    });
    afterEach(async () => {
      await reactor.close();
      rmDir(dir);
    });

    it('UDP/IPv4: every datagram arrives with its sender, and replies reach it', async () => {
      const senders: RemoteInfo[] = [];
      const sock = reactor.bindUdp({ port: 0 }, {
        onMessage(s, data, remote, truncated) {
          expect(truncated).to.equal(false);
          senders.push(remote);
          s.send(Buffer.concat([Buffer.from('re:'), data]), remote.port, remote.address);
        },
      });
      expect(sock.family).to.equal('IPv4');
      expect(sock.address).to.equal('127.0.0.1');
      expect(sock.port).to.be.greaterThan(0);
      const p = await udpPeer();
      const n = 300;
      for (let i = 0; i < n; i += 50) {
        for (let j = i; j < i + 50; j++) await p.send(`dgram ${j}`, sock.port);
        await p.waitFor(i + 50);
      }
      expect(p.received.map((d) => d.data.toString())).to.deep.equal(Array.from({ length: n }, (_, i) => `re:dgram ${i}`));
      expect(p.received.every((d) => d.port === sock.port && d.address === '127.0.0.1')).to.equal(true);
      expect(senders.every((r) => r.address === '127.0.0.1' && r.port === p.port && r.family === 'IPv4')).to.equal(true);
      expect(new Set(senders).size, 'one RemoteInfo object per sender').to.equal(1);
      expect(sock.stats()).to.include({ received: n, sent: n, truncated: 0, sendErrors: 0 });
      expect(reactor.stats().datagrams).to.include({ received: n, sent: n });
      await p.close();
    });

    it('UDP/IPv6 on ::1', async function () {
      if (!hasIpv6Loopback()) {
        this.test!.title += ' — skipped: no IPv6 loopback on this machine';
        this.skip();
      }
      let from: RemoteInfo | undefined;
      const sock = reactor.bindUdp({ host: '::1', port: 0 }, {
        onMessage(s, data, remote) {
          from = remote;
          s.send(data, remote.port, remote.address);
        },
      });
      expect(sock.family).to.equal('IPv6');
      const p = await udpPeer('udp6');
      await p.send('six', sock.port, '::1');
      await p.waitFor(1);
      expect(p.received[0].data.toString()).to.equal('six');
      expect(from).to.deep.equal({ address: '::1', port: p.port, family: 'IPv6' });
      await p.close();
    });

    it('datagrams that arrived together reach JS in a few batches, in order (recvmmsg / multishot recvmsg)', async () => {
      const got: number[] = [];
      const batches = new Set<number>();
      const sock = reactor.bindUdp({ port: 0, recvBufferSize: 4 << 20 }, {
        onMessage(_s, data) {
          got.push(Number(data.toString()));
          batches.add(batchOf(reactor));
        },
      });
      sock.pause();
      const p = await udpPeer();
      const n = 256;
      for (let i = 0; i < n; i++) await p.send(String(i), sock.port);
      await delay(50); // loopback delivery is immediate; this is slack, not a measurement
      sock.resume();
      await waitFor(() => got.length === n, 5000, () => `${n} datagrams (have ${got.length})`);
      expect(got).to.deep.equal(Array.from({ length: n }, (_, i) => i));
      expect(sock.stats().dropped, 'kernel drops').to.equal(0);
      // One receive call takes up to 64 datagrams; one per datagram would be 256 batches.
      expect(batches.size, 'batches for 256 datagrams').to.be.at.most(16);
      await p.close();
    });

    it('datagrams and stream bytes ready at the same time reach JS in the same batch', async () => {
      // A trigger datagram wakes the loop first; while this thread is kept busy, a
      // datagram and stream bytes arrive and wait together. Helper-thread backends
      // (select, poll) collect them in their next wait, the others in the same turn:
      // either way both are in one batch.
      const seen: Record<string, number> = {};
      const trigger = reactor.bindUdp({ port: 0 }, { onMessage: () => {} });
      const data = reactor.bindUdp({ port: 0 }, {
        onMessage: () => {
          seen.datagram = batchOf(reactor);
        },
      });
      const l = reactor.listen({ port: 0 }, {
        onData: () => {
          seen.stream = batchOf(reactor);
        },
      });
      const client = reactor.bindUdp({ port: 0 }, {});
      let tcp: import('@logcaster/core').Connection | undefined;
      const opened = new Promise<void>((resolve) => {
        tcp = reactor.connect({ port: l.port }, { onOpen: () => resolve() });
      });
      await opened;
      await delay(20);
      const spin = (ms: number): void => {
        const end = Date.now() + ms;
        while (Date.now() < end) {
          /* keep this thread busy: no turn runs meanwhile */
        }
      };
      await new Promise<void>((resolve) =>
        setTimeout(() => {
          client.send('wake', trigger.port);
          spin(30);
          client.send('datagram', data.port);
          tcp!.write('stream bytes');
          spin(30);
          resolve();
        }, 0),
      );
      await waitFor(() => seen.datagram !== undefined && seen.stream !== undefined, 5000, 'both deliveries');
      expect(seen.datagram, 'batch of the datagram vs batch of the stream bytes').to.equal(seen.stream);
    });

    it('pause() stops delivery at once (from a timer too), resume() delivers every datagram, in order', async () => {
      const got: number[] = [];
      let paused = false;
      let resumed = false;
      let early = 0;
      const sock = reactor.bindUdp({ port: 0, recvBufferSize: 4 << 20 }, {
        onMessage(s, data) {
          got.push(Number(data.toString()));
          if (paused && !resumed) early++;
          if (got.length === 1) {
            // Outside the batch, while datagrams keep coming in: what was already
            // received but not delivered must wait for resume().
            setImmediate(() => {
              s.pause();
              paused = true;
            });
          }
        },
      });
      // Another process sends, so datagrams keep arriving while the handler pauses.
      const n = 2000;
      const sender = spawn(process.execPath, ['-e', `
        const s = require('dgram').createSocket('udp4');
        let i = 0;
        const next = () => { if (i < ${n}) s.send(String(i++), ${sock.port}, '127.0.0.1', next); else s.close(); };
        next();
      `]);
      await waitFor(() => paused, 5000, 'the first datagram');
      await delay(50);
      expect(early, 'datagrams delivered while paused').to.equal(0);
      resumed = true;
      sock.resume();
      await waitFor(() => got.length === n, 5000, () => `${n} datagrams (have ${got.length})`);
      expect(got).to.deep.equal(Array.from({ length: n }, (_, i) => i));
      expect(sock.stats().dropped).to.equal(0);
      await new Promise((r) => (sender.exitCode !== null ? r(null) : sender.once('exit', r)));
    });

    it('sends made in one handler leave in order; send() reports backpressure and onDrain follows', async () => {
      const chunk = Buffer.alloc(8192, 'x');
      const results: boolean[] = [];
      let drains = 0;
      const sock = reactor.bindUdp({ port: 0 }, {
        onMessage(s, _d, remote) {
          for (let i = 0; i < 20; i++) {
            chunk.write(String(i).padStart(4, '0'));
            results.push(s.send(chunk, remote.port, remote.address));
          }
          expect(s.bufferedAmount, 'queued until the batch is over').to.equal(20 * 8192);
        },
        onDrain() {
          drains++;
        },
      });
      const p = await udpPeer();
      await p.send('go', sock.port);
      await p.waitFor(20);
      // 64 KiB high-water mark: the 8th 8 KiB datagram reaches it.
      expect(results.indexOf(false)).to.equal(7);
      await waitFor(() => drains === 1, 5000, 'onDrain');
      expect(p.received.map((d) => d.data.subarray(0, 4).toString())).to.deep.equal(Array.from({ length: 20 }, (_, i) => String(i).padStart(4, '0')));
      expect(sock.bufferedAmount).to.equal(0);
      expect(sock.stats().sent).to.equal(20);
      await p.close();
    });

    it('delivers a datagram longer than maxMessageSize cut and flagged truncated', async () => {
      const got: { len: number; truncated: boolean; head: string }[] = [];
      const sock = reactor.bindUdp({ port: 0, maxMessageSize: 100 }, {
        onMessage(_s, data, _r, truncated) {
          got.push({ len: data.length, truncated, head: data.subarray(0, 5).toString() });
        },
      });
      const p = await udpPeer();
      await p.send(Buffer.alloc(300, 'a'), sock.port);
      await p.send(Buffer.alloc(100, 'b'), sock.port);
      await waitFor(() => got.length === 2, 5000, 'two datagrams');
      expect(got).to.deep.equal([
        { len: 100, truncated: true, head: 'aaaaa' },
        { len: 100, truncated: false, head: 'bbbbb' },
      ]);
      expect(sock.stats()).to.include({ received: 2, truncated: 1 });
      await p.close();
    });

    it('counts the datagrams the kernel dropped (receive queue full) in stats()', async function () {
      if (process.platform !== 'linux') {
        this.test!.title += ` — skipped: drop counters (SO_RXQ_OVFL, SO_MEMINFO) are Linux-only, this is ${process.platform}`;
        this.skip();
      }
      let received = 0;
      const sock = reactor.bindUdp({ port: 0, recvBufferSize: 4096 }, {
        onMessage() {
          received++;
        },
      });
      sock.pause();
      const p = await udpPeer();
      const n = 400;
      for (let i = 0; i < n; i++) await p.send(Buffer.alloc(200, 'd'), sock.port);
      sock.resume();
      await waitFor(() => received + sock.stats().dropped === n, 5000, () => `received ${received} + dropped ${sock.stats().dropped} = ${n}`);
      expect(sock.stats().dropped).to.be.greaterThan(0);
      expect(reactor.stats().datagrams.dropped).to.equal(sock.stats().dropped);
      await p.close();
    });

    it('connected UDP: send() needs no address, only the peer is heard, ICMP unreachable goes to onError', async () => {
      const heard: string[] = [];
      const errors: string[] = [];
      const p = await udpPeer();
      const other = await udpPeer();
      const sock = reactor.bindUdp({ port: 0, connect: { host: '127.0.0.1', port: p.port } }, {
        onMessage(_s, data) {
          heard.push(data.toString());
        },
        onError(_s, err) {
          errors.push((err as NodeJS.ErrnoException).code ?? '?');
        },
      });
      sock.send('hello peer');
      await p.waitFor(1);
      expect(p.received[0].data.toString()).to.equal('hello peer');
      await other.send('not the peer', sock.port);
      await p.send('from the peer', sock.port);
      await waitFor(() => heard.length === 1, 5000, 'the peer\'s datagram');
      await delay(20);
      expect(heard).to.deep.equal(['from the peer']);
      // The peer goes away: the next send earns an ICMP port unreachable.
      await p.close();
      sock.send('anyone?');
      await waitFor(() => errors.length > 0, 5000, 'ECONNREFUSED reported');
      expect(errors[0]).to.equal('ECONNREFUSED');
      expect(sock.closed).to.equal(false);
      await other.close();
    });

    it('close(): onClose once, nothing delivered after it, the port can be bound again', async () => {
      let closes = 0;
      let after = 0;
      let closedIn: DatagramSocket | undefined;
      const sock = reactor.bindUdp({ port: 0 }, {
        onMessage(s) {
          if (closedIn) {
            after++;
            return;
          }
          closedIn = s;
          s.close();
        },
        onClose() {
          closes++;
        },
      });
      const port = sock.port;
      const p = await udpPeer();
      for (let i = 0; i < 10; i++) await p.send(`x${i}`, port);
      await waitFor(() => closes === 1, 5000, 'onClose');
      await delay(20);
      expect(after, 'messages after close').to.equal(0);
      expect(closes).to.equal(1);
      expect(() => sock.send('late', p.port)).to.throw(/after close/);
      const again = reactor.bindUdp({ port }, {});
      expect(again.port).to.equal(port);
      again.close();
      await p.close();
    });

    it('reusePort lets two sockets share a port; without it the second bind is refused', () => {
      const a = reactor.bindUdp({ port: 0, reusePort: true }, {});
      const b = reactor.bindUdp({ port: a.port, reusePort: true }, {});
      expect(b.port).to.equal(a.port);
      expect(() => reactor.bindUdp({ port: a.port }, {})).to.throw().with.property('code', 'EADDRINUSE');
    });

    it('an exception in onMessage is reported and the socket keeps serving', async () => {
      const errors: unknown[] = [];
      const r = make({ onError: (err) => errors.push(err) });
      try {
        let ok = 0;
        const sock = r.bindUdp({ port: 0 }, {
          onMessage(_s, data) {
            if (data.toString() === 'bad') throw new Error('handler failed');
            ok++;
          },
        });
        const p = await udpPeer();
        await p.send('bad', sock.port);
        await p.send('good', sock.port);
        await waitFor(() => ok === 1, 5000, 'the good datagram');
        expect(errors).to.have.length(1);
        expect(sock.closed).to.equal(false);
        await p.close();
      } finally {
        await r.close();
      }
    });

    it('Unix datagram: messages from a real client, replies to its path, file mode, file removed on close', async function () {
      if (!hasPython) {
        this.test!.title += ' — skipped: python3 (the Unix datagram client) is not installed';
        this.skip();
      }
      const file = path.join(dir, 'log.sock');
      const from: RemoteInfo[] = [];
      const sock = reactor.bindUnixDgram({ path: file, mode: 0o620 }, {
        onMessage(s, data, remote) {
          from.push(remote);
          if (remote.address) s.send(Buffer.concat([Buffer.from('re:'), data]), remote.address);
        },
      });
      expect(sock.family).to.equal('unix');
      expect(sock.address).to.equal(file);
      expect(fs.statSync(file).mode & 0o777).to.equal(0o620);
      const clientPath = path.join(dir, 'client.sock');
      const named = await unixDgramExchange(file, ['one', 'two', 'three'], { bindPath: clientPath, expectReplies: 3 });
      expect(named.replies).to.deep.equal(['re:one', 're:two', 're:three']);
      expect(from.every((r) => r.address === clientPath && r.family === 'unix' && r.port === 0)).to.equal(true);
      // An unnamed client (what logger -u is): its sender address is empty.
      await unixDgramExchange(file, ['anonymous']);
      await waitFor(() => from.length === 4, 5000, 'the unnamed client\'s datagram');
      expect(from[3]).to.deep.equal({ address: '', port: 0, family: 'unix' });
      sock.close();
      expect(fs.existsSync(file), 'socket file after close').to.equal(false);
    });

    it('Unix socket files: a stale one is replaced, a live one and a non-socket refused', async () => {
      const stale = path.join(dir, 'stale.sock');
      await leaveStaleSocket(stale);
      const got: string[] = [];
      const a = reactor.bindUnixDgram({ path: stale }, { onMessage: (_s, d) => got.push(d.toString()) });
      expect(() => reactor.bindUnixDgram({ path: stale }, {})).to.throw(/in use by a running process/).with.property('code', 'EADDRINUSE');
      expect(() => reactor.listen({ path: stale }, {})).to.throw(/in use/);
      const client = reactor.bindUnixDgram({}, {});
      client.send('to the replaced socket', stale);
      await waitFor(() => got.length === 1, 5000, 'a datagram on the replaced socket');
      const plain = path.join(dir, 'not-a-socket');
      fs.writeFileSync(plain, 'keep me');
      expect(() => reactor.bindUnixDgram({ path: plain }, {})).to.throw(/not a socket/);
      expect(() => reactor.listen({ path: plain }, {})).to.throw(/not a socket/);
      expect(fs.readFileSync(plain, 'utf8')).to.equal('keep me');
      a.close();
    });

    it('Unix stream sockets: listen({ path }) and connect({ path }) with the usual Handler', async () => {
      const file = path.join(dir, 'stream.sock');
      await leaveStaleSocket(file);
      let family: string | undefined;
      const l = reactor.listen({ path: file, mode: 0o600 }, {
        onOpen(conn) {
          family = conn.remoteFamily;
        },
        onData(conn, d) {
          conn.write(d);
        },
      });
      expect(l.path).to.equal(file);
      expect(fs.statSync(file).mode & 0o777).to.equal(0o600);
      const s = await connectUnix(file);
      const echoed: Buffer[] = [];
      s.on('data', (d: Buffer) => echoed.push(d));
      s.end('over a unix stream');
      await new Promise((r) => s.once('close', r));
      expect(Buffer.concat(echoed).toString()).to.equal('over a unix stream');
      expect(family).to.equal('unix');
      // And outbound: the reactor connects to a node:net server on a path.
      const serverPath = path.join(dir, 'node.sock');
      const server = createServer((c) => c.end('from node'));
      await new Promise<void>((r) => server.listen(serverPath, r));
      let reply = '';
      await new Promise<void>((resolve) => {
        reactor.connect({ path: serverPath }, {
          onData: (_c, d) => {
            reply += d.toString();
          },
          onClose: () => resolve(),
        });
      });
      expect(reply).to.equal('from node');
      await new Promise((r) => server.close(r));
      l.close();
      expect(fs.existsSync(file), 'socket file after close').to.equal(false);
    });

    it('abstract Unix names (Linux): datagram and stream, no file', async function () {
      if (process.platform !== 'linux') {
        this.test!.title += ` — skipped: abstract socket names exist only on Linux, this is ${process.platform}`;
        this.skip();
      }
      const name = `\0logcaster-test-${process.pid}-${Math.random().toString(36).slice(2)}`;
      const got: string[] = [];
      const sock = reactor.bindUnixDgram({ path: name }, { onMessage: (_s, d) => got.push(d.toString()) });
      const client = reactor.bindUnixDgram({ path: `${name}-client` }, {});
      client.send('abstract', name);
      await waitFor(() => got.length === 1, 5000, 'the datagram');
      expect(got).to.deep.equal(['abstract']);
      expect(() => reactor.bindUnixDgram({ path: name }, {})).to.throw().with.property('code', 'EADDRINUSE');
      const l = reactor.listen({ path: `${name}-stream` }, { onData: (c, d) => c.write(d) });
      if (hasPython) {
        // node:net pads abstract names to the whole sun_path, so it cannot reach one
        // bound at its exact length (as systemd, socat and python do): python is the client.
        const echoed = await new Promise<string>((resolve, reject) => {
          const child = spawn('python3', ['-c', `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(b'\\0' + sys.argv[1].encode('latin1'))
s.sendall(b'abstract stream')
s.shutdown(socket.SHUT_WR)
out = b''
while True:
    d = s.recv(65536)
    if not d: break
    out += d
sys.stdout.write(out.decode())
`, `${name.slice(1)}-stream`]);
          let out = '';
          child.stdout.on('data', (d: Buffer) => (out += d));
          child.on('error', reject);
          child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`python3 client exited ${code}`))));
        });
        expect(echoed).to.equal('abstract stream');
      }
      sock.close();
      l.close();
    });

    it('FD_SETSIZE: a datagram socket beyond select\'s ceiling is refused with a clear error, others serve it', async () => {
      // Push this process's descriptors past 1024, then bind.
      const held: number[] = [];
      try {
        while (held.length < 1100) held.push(fs.openSync('/dev/null', 'r'));
        if (load().name === 'select') {
          expect(() => reactor.bindUdp({ port: 0 }, {})).to.throw(/FD_SETSIZE/).with.property('code', 'ERANGE');
          return;
        }
        let got = '';
        const sock = reactor.bindUdp({ port: 0 }, { onMessage: (_s, d) => (got = d.toString()) });
        const p = await udpPeer();
        await p.send('high fd', sock.port);
        await waitFor(() => got === 'high fd', 5000, 'the datagram');
        await p.close();
      } finally {
        for (const fd of held) fs.closeSync(fd);
      }
    });
  });
}
