// The ingest port against what real clients and embedders do: half-close right after
// sending with --ack (also durable acks), more clients than allowed that then sit
// idle, lines that are discarded, and code of ours or of a 'line' listener that throws.
import { expect } from 'chai';

import { connectTo, delay, itOnEachBackend, ncUnavailable, openFds, rmDir, runNc, sendAndClose, tmpDir, waitFor } from '@logcaster/testkit';
import { CAPACITY_MESSAGE } from '../../src/ingest/ingest-port';
import { startServer } from '../support/helpers';

describe('ingest port: real client behaviour', function () {
  this.timeout(60000);

  itOnEachBackend('--ack --fsync always: every line of a client that half-closes is acked, then closed', async (backend) => {
    const dir = tmpDir('acks');
    const { lc, info } = await startServer({ backend, ack: true, fsync: 'always', dataDir: dir, capacity: 200_000 });
    try {
      const N = 50_000;
      const lines = Array.from({ length: N }, (_, i) => `durable ${i}`);
      // Several clients at once, so group commits interleave between them.
      const replies = await Promise.all([0, 1, 2, 3].map((c) => sendAndClose(info.ingestPort, lines.map((l) => `${l} c${c}`).join('\n') + '\n')));
      for (const r of replies) expect(r.toString(), 'acks').to.equal('OK\n'.repeat(N));
      expect(lc.stats().persisted).to.equal(4 * N);
      const three = await sendAndClose(info.ingestPort, 'one\ntwo\nthree'); // unterminated last line
      expect(three.toString()).to.equal('OK\n'.repeat(3));
    } finally {
      await lc.stop();
      rmDir(dir);
    }
  });

  itOnEachBackend('--ack without a journal: acks after the FIN too', async (backend) => {
    const { lc, info } = await startServer({ backend, ack: true });
    try {
      const reply = await sendAndClose(info.ingestPort, 'a\nb\nc');
      expect(reply.toString()).to.equal('OK\nOK\nOK\n');
      expect(lc.stats().total).to.equal(3);
    } finally {
      await lc.stop();
    }
  });

  const nc = ncUnavailable();
  it(`--ack --fsync always answers \`printf … | nc -N\`${nc ? ` — skipped, ${nc}` : ''}`, async function () {
    if (nc) this.skip();
    const dir = tmpDir('acks-nc');
    const { lc, info } = await startServer({ ack: true, fsync: 'always', dataDir: dir });
    try {
      expect((await runNc(['-N'], info.ingestPort, 'x\ny\nz\n')).toString()).to.equal('OK\nOK\nOK\n');
    } finally {
      await lc.stop();
      rmDir(dir);
    }
  });

  itOnEachBackend('connections over --max-clients get the capacity line and cannot pin descriptors', async (backend) => {
    const { lc, info } = await startServer({ backend, maxClients: 2 });
    try {
      const kept = await Promise.all([connectTo(info.ingestPort), connectTo(info.ingestPort)]);
      await waitFor(() => lc.stats().clients === 2, 5000, 'two clients');
      expect((await sendAndClose(info.ingestPort, 'refused\n')).toString()).to.equal(CAPACITY_MESSAGE);
      const fds = openFds();
      const IDLE = 200;
      // Idle: they neither read the line nor close.
      const idle = await Promise.all(Array.from({ length: IDLE }, () => connectTo(info.ingestPort)));
      for (const s of idle) s.on('error', () => {});
      await waitFor(() => lc.stats().rejected === IDLE + 1, 10000, 'the refusals');
      // The server's side of each is closed after a short linger; only the clients' remain.
      await waitFor(() => openFds() <= fds + IDLE, 10000, () => `refused connections closed by the server (fds ${openFds()}, expected ${fds + IDLE})`);
      expect(lc.stats().clients).to.equal(2);
      for (const s of [...idle, ...kept]) s.destroy();
    } finally {
      await lc.stop();
    }
  });

  it('keeps no bytes that do not become entries: an over-long line, a flood of bare newlines', async () => {
    const { lc, info } = await startServer({ maxLine: 1024 });
    try {
      const MB = 1024 * 1024;
      const rss0 = process.memoryUsage().rss;
      /** Send `block` `times` times on one connection, then `last`, and close. */
      const send = async (block: Buffer, times: number, last: string): Promise<void> => {
        const s = await connectTo(info.ingestPort);
        for (let i = 0; i < times; i++) if (!s.write(block)) await new Promise((r) => s.once('drain', r));
        s.end(last);
        await new Promise((r) => s.once('close', r));
      };
      // 128 MB in one line: its first 1k is kept (and marked), the rest is dropped.
      await send(Buffer.alloc(MB, 'z'), 128, '\n');
      await waitFor(() => lc.stats().total === 1, 10000, 'the truncated line');
      expect(lc.stats().truncated).to.equal(1);
      // 128 MB of bare newlines: no entry at all.
      await send(Buffer.alloc(MB, '\n'), 128, '');
      expect(lc.stats().total).to.equal(1);
      expect(lc.stats().bytesReceived).to.be.at.least(256 * MB);
      // The store holds one chunk (the entry's), not a copy of what arrived.
      expect(lc.store.arenaBytes, 'arena bytes').to.be.at.most(4 * MB);
      expect(lc.stats().storeBytes).to.be.below(2048);
      const grown = (process.memoryUsage().rss - rss0) / MB;
      expect(grown, 'RSS growth, MB').to.be.below(64);
    } finally {
      await lc.stop();
    }
  });

  itOnEachBackend("a throwing 'line' listener is reported and counted; the rest of the packet is stored", async (backend) => {
    const { lc, info } = await startServer({ backend });
    try {
      const errors: Error[] = [];
      lc.on('error', (e) => errors.push(e));
      lc.on('line', (e) => {
        if (e.text === 'boom') throw new Error('listener failed');
      });
      await delay(10); // the hook is attached on a microtask
      const reply = await sendAndClose(info.ingestPort, 'a1\na2\nboom\na3\na4\n');
      expect(reply.length).to.equal(0); // closed cleanly, not reset
      await waitFor(() => lc.stats().total === 5, 5000, 'all five lines');
      expect([0, 1, 2, 3, 4].map((i) => lc.store.line(i).toString())).to.deep.equal(['a1', 'a2', 'boom', 'a3', 'a4']);
      expect(errors.map((e) => e.message)).to.deep.equal(['listener failed']);
      expect(lc.statsLine()).to.include('Errors=1');
    } finally {
      await lc.stop();
    }
  });

  itOnEachBackend('an exception in the ingest handler closes that connection only, logged and counted', async (backend) => {
    const { lc, info } = await startServer({ backend });
    try {
      const errors: Error[] = [];
      lc.on('error', (e) => errors.push(e));
      // A fault injected into the store, for lines of one client only.
      const append = lc.store.append.bind(lc.store);
      lc.store.append = (src, start, end, ...rest) => {
        if (Buffer.from(src.subarray(start, end)).toString() === 'poison') throw new Error('injected store fault');
        return append(src, start, end, ...rest);
      };
      const healthy = await connectTo(info.ingestPort);
      healthy.write('before\n');
      await waitFor(() => lc.stats().total === 1, 5000, 'the healthy line');
      const poisoned = await connectTo(info.ingestPort);
      const closed = new Promise((r) => poisoned.once('close', r));
      poisoned.on('error', () => {});
      poisoned.write('poison\n');
      await closed;
      expect(errors.map((e) => e.message)).to.deep.equal(['injected store fault']);
      expect(lc.stats().errors).to.equal(1);
      healthy.end('after\n');
      await new Promise((r) => healthy.once('close', r));
      await waitFor(() => lc.stats().total === 2, 5000, 'the healthy client served on');
      expect(lc.store.line(1).toString()).to.equal('after');
    } finally {
      await lc.stop();
    }
  });
});
