'use strict';
// Starts examples/chat as a real child process and drives it with real sockets on 127.0.0.1.
const { expect } = require('chai');
const net = require('net');
const path = require('path');

const EXAMPLE = path.join(__dirname, '..');
const { backendUnavailable, startExample, stop } = require('@logcaster/testkit');

const READY = /^chat listening on ([\d.:a-f]+):(\d+) \(backend (\w+)\)\n/;
async function startChat(args) {
  const s = await startExample(EXAMPLE, args, READY);
  return { child: s.child, port: Number(s.match[2]), backend: s.match[3], output: s.output };
}

/** A line-oriented test client: collects every line, lets tests wait for one. */
class Client {
  static connect(port) {
    return new Promise((resolve, reject) => {
      const c = new Client(net.connect({ host: '127.0.0.1', port }));
      c.sock.once('connect', () => resolve(c));
      c.sock.once('error', reject);
    });
  }
  constructor(sock) {
    this.sock = sock;
    this.lines = [];
    this.carry = '';
    this.closed = false;
    this.waiters = [];
    sock.setEncoding('utf8');
    sock.on('data', (d) => {
      const parts = (this.carry + d).split('\n');
      this.carry = parts.pop();
      for (const l of parts) this.lines.push(l);
      this.check();
    });
    sock.on('error', () => {});
    sock.on('close', () => { this.closed = true; this.check(); });
  }
  check() {
    this.waiters = this.waiters.filter((w) => !w());
  }
  /** Resolve with the first line (from index `from`) matching re. */
  waitLine(re, timeoutMs = 5000, from = 0) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${re}; got (last 5, cut):\n${this.lines.slice(-5).map((l) => l.slice(0, 80)).join("\n")}`)), timeoutMs);
      let i = from; // scan each line once, however many lines arrive
      const w = () => {
        for (; i < this.lines.length; i++) {
          if (re.test(this.lines[i])) { clearTimeout(timer); resolve(this.lines[i]); return true; }
        }
        return false;
      };
      if (!w()) this.waiters.push(w);
    });
  }
  waitClose(timeoutMs = 5000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out waiting for close')), timeoutMs);
      const w = () => { if (this.closed) { clearTimeout(timer); resolve(); return true; } return false; };
      if (!w()) this.waiters.push(w);
    });
  }
  send(line) { this.sock.write(`${line}\n`); }
  async nick(name) {
    const from = this.lines.length;
    this.send(`/nick ${name}`);
    await this.waitLine(new RegExp(`^\\* you are now ${name}$`), 5000, from);
  }
  close() { this.sock.destroy(); }
}

async function stats(port) {
  const c = await Client.connect(port);
  c.send('/stats');
  const line = await c.waitLine(/^\* stats /);
  c.close();
  const out = {};
  for (const m of line.matchAll(/(\w+)=(\d+)/g)) out[m[1]] = Number(m[2]);
  return out;
}

describe('examples/chat', function () {
  this.timeout(60000);
  let server;
  const clients = [];
  async function client(nick) {
    const c = await Client.connect(server.port);
    clients.push(c);
    await c.waitLine(/^\* welcome guest\d+/);
    if (nick) await c.nick(nick);
    return c;
  }
  afterEach(() => { while (clients.length) clients.pop().close(); });

  describe('rooms, nicknames and commands', () => {
    before(async () => { server = await startChat(['--port', '0', '--max-line', '100']); });
    after(async () => { expect(await stop(server.child)).to.equal(0); });

    it('broadcasts to the others in the room, not to the sender, not to other rooms', async () => {
      const alice = await client('alice');
      const bob = await client('bob');
      const carol = await client('carol');
      await alice.waitLine(/^\* guest\d+ is now known as carol$/);
      carol.send('/join kitchen');
      await carol.waitLine(/^\* you joined #kitchen \(1 here\)$/);
      await alice.waitLine(/^\* carol left #lobby$/);
      alice.send('hello room');
      expect(await bob.waitLine(/^<alice> /)).to.equal('<alice> hello room');
      carol.send('anyone in the kitchen?');
      bob.send('/who');
      expect(await bob.waitLine(/^\* #lobby: /)).to.equal('* #lobby: alice bob');
      expect(alice.lines.filter((l) => l.startsWith('<alice>'))).to.deep.equal([]);
      expect(alice.lines.concat(bob.lines).filter((l) => l.includes('kitchen?'))).to.deep.equal([]);
    });

    it('/msg reaches one nick in any room; unknown nicks and taken nicks are refused', async () => {
      const dave = await client('dave');
      const erin = await client('erin');
      erin.send('/join garden');
      await erin.waitLine(/^\* you joined #garden/);
      dave.send('/msg erin psst, over here');
      expect(await erin.waitLine(/^\*dave\* /)).to.equal('*dave* psst, over here');
      dave.send('/msg nobody hi');
      await dave.waitLine(/^\* no such nick: nobody$/);
      dave.send('/nick erin');
      await dave.waitLine(/^\* nick erin is taken$/);
      dave.send('/frobnicate');
      await dave.waitLine(/^\* unknown command \/frobnicate/);
    });

    it('/nick renames, announced to the room', async () => {
      const frank = await client('frank');
      const gina = await client('gina');
      frank.send('/nick frankie');
      expect(await gina.waitLine(/is now known as/)).to.equal('* frank is now known as frankie');
      frank.send('hi');
      expect(await gina.waitLine(/^<frankie> /)).to.equal('<frankie> hi');
    });

    it('/quit says bye, closes, and tells the room', async () => {
      const hal = await client('hal');
      const ivy = await client('ivy');
      hal.send('/quit gotta go');
      await hal.waitLine(/^\* bye$/);
      await hal.waitClose();
      expect(await ivy.waitLine(/^\* hal quit/)).to.equal('* hal quit: gotta go');
    });

    it('drops over-long lines (also split across packets) and keeps the connection usable; accepts CRLF', async () => {
      const jo = await client('jo');
      const kim = await client('kim');
      jo.sock.write('y'.repeat(60));
      await new Promise((r) => setTimeout(r, 50));
      jo.sock.write(`${'y'.repeat(60)}\n`);
      await jo.waitLine(/^\* line too long \(max 100 bytes\), dropped$/);
      jo.sock.write(`${'z'.repeat(300)}\n`);
      jo.sock.write(`${'w'.repeat(100)}\r\n`); // exactly the limit, CRLF
      expect(await kim.waitLine(/^<jo> w/)).to.equal(`<jo> ${'w'.repeat(100)}`);
      expect(kim.lines.filter((l) => /[yz]{10}/.test(l))).to.deep.equal([]);
      const s = await stats(server.port);
      expect(s.longLines).to.equal(2);
    });
  });

  for (const backend of ['epoll', 'iouring']) describe(`a client that stops reading (--backend ${backend})`, () => {
    // The readers live in this test process, sharing its event loop with mocha and the
    // talkers: the flood is paced by them (below), and 4 MiB of --max-queue is slack.
    // --slow-timeout is out of the way: here the non-reader must go by its drops.
    const MAX_QUEUE = 4 * 1024 * 1024;
    const MAX_LINE = 1024;
    const unsupported = backendUnavailable(backend);
    if (unsupported) {
      it(`does not stall the room (skipped: ${backend} ${unsupported})`, function () { this.skip(); });
      return;
    }
    before(async () => { server = await startChat(['--backend', backend, '--port', '0', '--max-drops', '500', '--max-queue', String(MAX_QUEUE), '--max-line', String(MAX_LINE), '--slow-timeout', '600000']); });
    after(async () => { expect(await stop(server.child)).to.equal(0); });

    it('does not stall the room; its queue stays bounded; it is disconnected after its drops', async () => {
      // The slow one joins and never reads a byte again.
      const slow = await client('slow');
      slow.sock.pause();
      const listener = await client('listener');
      const talkers = [await client('t1'), await client('t2')];
      await talkers[1].waitLine(/^\* t2 joined|^\* you are now t2$/);

      // Each talker sends PER_TALKER lines of ~900 bytes: ~18 MB broadcast in total, far
      // beyond what the kernel buffers of the non-reading client can absorb (~4 MB).
      // Sent in rounds of 256 KiB per talker, each round once the readers have it all:
      // the readers in this (busy, shared) process then never fall a whole --max-queue
      // behind however slow the machine, while the non-reader falls further behind
      // with every round.
      const PER_TALKER = 10000;
      const filler = 'm'.repeat(880);
      const rounds = [];
      for (let n = 0, batch = ''; n < PER_TALKER; n++) {
        batch += `${n} ${filler}\n`;
        if (batch.length > 256 * 1024 || n === PER_TALKER - 1) {
          rounds.push({ last: n, bytes: Buffer.from(batch) });
          batch = '';
        }
      }
      const t0 = Date.now();
      const scanned = [0, 0, 0]; // lines already looked at, per wait below
      const waitRound = async (i, who, from, last) => {
        await who.waitLine(new RegExp(`^<${from}> ${last} `), 30000, scanned[i]);
        scanned[i] = who.lines.length - 1;
      };
      for (const round of rounds) {
        for (const t of talkers) t.sock.write(round.bytes);
        await waitRound(0, listener, 't1', round.last);
        await waitRound(1, listener, 't2', round.last);
        await waitRound(2, talkers[0], 't2', round.last);
      }
      for (const [i, t] of talkers.entries()) t.sock.write(`done t${i + 1}\n`);
      // Everyone who reads gets everything, in order.
      await listener.waitLine(/^<t1> done t1$/, 30000);
      await listener.waitLine(/^<t2> done t2$/, 30000);
      const elapsed = Date.now() - t0;
      const fromT1 = listener.lines.filter((l) => l.startsWith('<t1> ')).length;
      const fromT2 = listener.lines.filter((l) => l.startsWith('<t2> ')).length;
      expect(fromT1).to.equal(PER_TALKER + 1);
      expect(fromT2).to.equal(PER_TALKER + 1);
      expect(listener.lines.filter((l) => /messages dropped/.test(l) && /^\* you/.test(l))).to.deep.equal([]);
      await talkers[0].waitLine(/^<t2> done t2$/, 30000);
      expect(talkers[0].lines.filter((l) => l.startsWith('<t2> ')).length).to.equal(PER_TALKER + 1);

      // The slow client was cut off, and the room was told.
      const notice = await listener.waitLine(/^\* slow was disconnected: not reading/, 5000);
      const s = await stats(server.port);
      console.log(`      ${2 * PER_TALKER} messages to 3 readers + 1 non-reader in ${elapsed} ms; ${notice.slice(2)};` +
        ` server peakBuffered=${s.peakBuffered} B, dropped=${s.dropped}, rss=${(s.rss / 1048576).toFixed(1)} MiB`);
      expect(s.slowDisconnects).to.equal(1);
      expect(s.dropped).to.be.greaterThan(500);
      // No client's queue ever grew past --max-queue plus one message.
      expect(s.peakBuffered).to.be.at.most(MAX_QUEUE + MAX_LINE + 64);
      expect(s.clients).to.equal(4); // listener, t1, t2 and the client asking for /stats
    });
  });

  describe('a client that stays slow (--slow-timeout)', () => {
    // Pinned to epoll for the io_uring issue described above: there, the flood is queued
    // instead of filling the kernel buffers first, so once the room is quiet the queue
    // does drain into them and the client is (rightly) no longer slow.
    before(async () => { server = await startChat(['--backend', 'epoll', '--port', '0', '--max-drops', '1000000', '--slow-timeout', '1500']); });
    after(async () => { expect(await stop(server.child)).to.equal(0); });

    it('is cut off once slow past --slow-timeout, even when the room goes quiet', async () => {
      const s0 = await stats(server.port);
      const lazy = await client('lazy');
      lazy.sock.pause();
      const talker = await client('talker');
      // ~8 MB to lazy: past the kernel buffers, so it is marked slow; then the room goes
      // quiet and only the sweep can notice it never drains.
      const line = 'q'.repeat(1000);
      let batch = '';
      for (let n = 0; n < 8000; n++) batch += `${line}\n`;
      talker.sock.write(`${batch}last\n`);
      await talker.waitLine(/^\* lazy was disconnected: not reading \(slow for \d+ ms/, 20000);
      const s1 = await stats(server.port);
      expect(s1.slowDisconnects).to.equal(s0.slowDisconnects + 1);
      expect(s1.peakBuffered).to.be.at.most(1024 * 1024 + 1100); // default --max-queue + one line
    });
  });
});
