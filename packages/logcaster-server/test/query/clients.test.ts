// The query port against what real clients do: half-close right after sending
// (`nc -N`, `printf … | nc -q1`, shutdown(SHUT_WR)), thousands of commands pipelined
// in one packet, never reading, text split inside a UTF-8 character, a command that
// never ends, more clients than allowed.
import { expect } from 'chai';

import { connectTo, delay, itOnEachBackend, ncUnavailable, openFds, runNc, sendAndClose, waitFor } from '@logcaster/testkit';
import type { LogCaster, StartInfo } from '../../src';
import { MAX_COMMAND } from '../../src/query/parse';
import { HELP_TEXT, tooManyClientsLine } from '../../src/query/query-port';
import { QueryClient, startServer, stripStamp } from '../support/helpers';

/** Store `lines` through the ingest port and wait until they are all there. */
async function ingest(lc: LogCaster, info: StartInfo, lines: string[] | Buffer): Promise<void> {
  const before = lc.stats().total;
  const data = Buffer.isBuffer(lines) ? lines : Buffer.from(lines.join('\n') + '\n');
  const n = Buffer.isBuffer(lines) ? data.toString('latin1').split('\n').filter((l) => l !== '').length : lines.length;
  await sendAndClose(info.ingestPort, data);
  await waitFor(() => lc.stats().total === before + n, 10000, 'ingested lines');
}

/** Split a reply into lines (the last LF ends the last line). */
function replyLines(reply: Buffer): string[] {
  const text = reply.toString('utf8');
  expect(text.endsWith('\n'), `reply ends with LF: ${JSON.stringify(text.slice(-80))}`).to.equal(true);
  return text.slice(0, -1).split('\n');
}

describe('query port: real client behaviour', function () {
  this.timeout(60000);

  itOnEachBackend('answers every command sent before the FIN, in order, then closes', async (backend) => {
    const { lc, info } = await startServer({ backend, capacity: 200_000 });
    try {
      const N = 60_000; // RECENT of all of them is ~4 MB: far over one write queue
      await ingest(lc, info, Array.from({ length: N }, (_, i) => `entry ${i} ${i % 7 === 0 ? 'seven' : 'plain'}`));
      const reply = await sendAndClose(info.queryPort, `COUNT\nQUERY keyword=seven\nREGEX ^entry 1234\\b\nRECENT ${N}\nCOUNT`);
      const lines = replyLines(reply);
      let i = 0;
      expect(lines[i++]).to.equal(`COUNT: ${N}`);
      const sevens = Math.ceil(N / 7);
      expect(lines[i++]).to.equal(`FOUND: ${sevens} matches`);
      for (let k = 0; k < sevens; k++) expect(stripStamp(lines[i++])).to.equal(`entry ${k * 7} seven`);
      expect(lines[i++]).to.equal('FOUND: 1 matches');
      expect(stripStamp(lines[i++])).to.equal('entry 1234 plain');
      expect(lines[i++]).to.equal(`FOUND: ${N} matches`);
      for (let k = 0; k < N; k++) expect(stripStamp(lines[i++])).to.match(new RegExp(`^entry ${k} `));
      expect(lines[i++]).to.equal(`COUNT: ${N}`); // the unterminated last command counts too
      expect(i).to.equal(lines.length);
    } finally {
      await lc.stop();
    }
  });

  itOnEachBackend('answers 5,000 commands pipelined in one packet, behind a scan', async (backend) => {
    const { lc, info } = await startServer({ backend });
    try {
      await ingest(lc, info, ['x marks the spot']);
      const reply = await sendAndClose(info.queryPort, 'SEARCH x\n' + 'COUNT\n'.repeat(5000));
      const lines = replyLines(reply);
      expect(lines.slice(0, 2).map((l, k) => (k === 1 ? stripStamp(l) : l))).to.deep.equal(['FOUND: 1 matches', 'x marks the spot']);
      expect(lines.length).to.equal(5002);
      expect(lines.slice(2).every((l) => l === 'COUNT: 1')).to.equal(true);
      expect(lc.stats().errors).to.equal(0);
    } finally {
      await lc.stop();
    }
  });

  itOnEachBackend('stops reading commands while a client does not read its answers (HELP too)', async (backend) => {
    const { lc, info } = await startServer({ backend });
    try {
      const N = 50_000; // 250 KB of commands, 50 MB of answers
      const s = await connectTo(info.queryPort);
      s.pause(); // never reads, for now
      s.write('HELP\n'.repeat(N));
      // The server answers until its queue and the kernel's buffers are full, then waits.
      let last = -1;
      await waitFor(
        () => {
          const now = lc.stats().queryCommands;
          const settled = now === last && now > 0;
          last = now;
          return settled;
        },
        20000,
        'the answered count to settle',
      );
      await delay(300);
      const answered = lc.stats().queryCommands;
      // Kernel socket buffers on loopback take a few MB; 64 KiB more may queue here.
      // Without backpressure all 50,000 HELPs (50 MB) would be queued at once.
      expect(answered, 'HELPs answered while the client does not read').to.be.below(N / 4);
      let ends = 0;
      let tail = '';
      s.on('data', (d: Buffer) => {
        const text = tail + d.toString('latin1');
        const parts = text.split('\n');
        tail = parts.pop()!;
        for (const p of parts) if (p === 'END') ends++;
      });
      s.resume();
      await waitFor(() => ends === N, 30000, () => `every HELP answered once read (got ${ends})`);
      s.destroy();
    } finally {
      await lc.stop();
    }
  });

  it('finds text split inside a UTF-8 character across two packets, and raw non-UTF-8 bytes', async () => {
    const { lc, info } = await startServer();
    try {
      await ingest(lc, info, Buffer.concat([Buffer.from('say héllo world\n'), Buffer.from('caf\xe9 latin1\n', 'latin1')]));
      const q = await QueryClient.open(info.queryPort);
      const cmd = Buffer.from('SEARCH héllo\n');
      const cut = cmd.indexOf(0xc3) + 1; // between the two bytes of é
      q.socket.write(cmd.subarray(0, cut));
      await delay(50);
      q.socket.write(cmd.subarray(cut));
      expect(await q.line()).to.equal('FOUND: 1 matches');
      expect(stripStamp(await q.line())).to.equal('say héllo world');
      q.socket.write(Buffer.from([...Buffer.from('SEARCH caf'), 0xe9, 0x0a])); // Latin-1 é
      expect(await q.line()).to.equal('FOUND: 1 matches');
      const raw = await q.lineBuf();
      expect(raw.subarray(raw.length - 11).equals(Buffer.from('caf\xe9 latin1', 'latin1')), raw.toString('latin1')).to.equal(true);
      expect((await q.found('QUERY keywords=héllo,caf operator=OR')).n).to.equal(2);
      expect((await q.found('REGEX h.llo')).n).to.equal(1); // regexes see UTF-8 text: é is one character
      q.close();
    } finally {
      await lc.stop();
    }
  });

  it('answers a command longer than the limit with an error, also when EOF ends it', async () => {
    const { lc, info } = await startServer();
    try {
      const huge = 'SEARCH ' + 'y'.repeat(10 * 1024 * 1024);
      const atEof = replyLines(await sendAndClose(info.queryPort, huge));
      expect(atEof).to.deep.equal([`ERROR: command longer than ${MAX_COMMAND} bytes`]);
      const inline = replyLines(await sendAndClose(info.queryPort, `COUNT\n${huge}\nCOUNT\n`));
      expect(inline).to.deep.equal(['COUNT: 0', `ERROR: command longer than ${MAX_COMMAND} bytes`, 'COUNT: 0']);
      const exact = replyLines(await sendAndClose(info.queryPort, `${'RECENT 1'.padEnd(MAX_COMMAND, ' ')}\r\nCOUNT\n`));
      expect(exact).to.deep.equal(['FOUND: 0 matches', 'COUNT: 0']);
    } finally {
      await lc.stop();
    }
  });

  it('--max-query-clients: one more gets a refusal line and is closed; a refused client that stays is let go', async () => {
    const { lc, info } = await startServer({ maxQueryClients: 2 });
    try {
      const a = await QueryClient.open(info.queryPort);
      const b = await QueryClient.open(info.queryPort);
      expect(await a.ask('COUNT')).to.equal('COUNT: 0');
      expect(await b.ask('COUNT')).to.equal('COUNT: 0');
      const refusedReply = await sendAndClose(info.queryPort, 'COUNT\n');
      expect(refusedReply.toString()).to.equal(tooManyClientsLine(2));
      // One that neither reads nor closes does not keep the server's descriptor: only
      // the client's own stays open in this process.
      const fds = openFds();
      const stayer = await connectTo(info.queryPort);
      stayer.on('error', () => {});
      await waitFor(() => lc.stats().queryRejected === 2, 5000, 'the refusal');
      await waitFor(() => openFds() === fds + 1, 8000, () => `the refused connection to be closed by the server (fds ${openFds()} vs ${fds} before)`);
      stayer.destroy();
      a.close();
      await waitFor(() => lc.stats().queryClients === 1, 5000, 'a to leave');
      expect(replyLines(await sendAndClose(info.queryPort, 'COUNT\n'))).to.deep.equal(['COUNT: 0']);
      b.close();
    } finally {
      await lc.stop();
    }
  });

  const nc = ncUnavailable();
  it(`answers \`printf … | nc -N\` and \`nc -q1\`${nc ? ` — skipped, ${nc}` : ''}`, async function () {
    if (nc) this.skip();
    const { lc, info } = await startServer();
    try {
      await ingest(lc, info, ['hello from a client']);
      for (const args of [['-N'], ['-q1']]) {
        const out = replyLines(await runNc(args, info.queryPort, 'QUERY keyword=hello\nCOUNT\nHELP\n'));
        expect(out[0], args.join(' ')).to.equal('FOUND: 1 matches');
        expect(stripStamp(out[1])).to.equal('hello from a client');
        expect(out[2]).to.equal('COUNT: 1');
        expect(out.slice(3).join('\n') + '\n').to.equal(HELP_TEXT);
      }
    } finally {
      await lc.stop();
    }
  });

  it('a client that resets in the middle of a long answer leaves the server serving', async () => {
    const { lc, info } = await startServer({ capacity: 100_000 });
    try {
      await ingest(lc, info, Array.from({ length: 100_000 }, (_, i) => `reset test line ${i}`));
      for (let k = 0; k < 5; k++) {
        const s = await connectTo(info.queryPort);
        s.on('error', () => {});
        s.write('RECENT 100000\nRECENT 100000\n');
        await new Promise<void>((r) => s.once('data', () => r()));
        s.resetAndDestroy();
      }
      const q = await QueryClient.open(info.queryPort);
      expect(await q.ask('COUNT')).to.equal('COUNT: 100000');
      await waitFor(() => lc.stats().queryClients === 1, 5000, 'reset clients to be gone');
      expect(lc.stats().errors).to.equal(0);
      q.close();
    } finally {
      await lc.stop();
    }
  });
});
