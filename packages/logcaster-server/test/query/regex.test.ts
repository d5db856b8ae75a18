// A long scan must not hold the server: a catastrophic regex runs in a worker with a
// budget, and every scan leaves ingestion and other queries served while it runs.
import { expect } from 'chai';

import { sendAndClose, waitFor } from '@logcaster/testkit';
import { QueryClient, startServer, stripStamp } from '../support/helpers';

describe('regex queries', function () {
  this.timeout(60000);

  it('times out `(a+)+$` over 10k long lines while ingestion keeps flowing; the next regex gets a fresh worker', async () => {
    const { lc, info } = await startServer({ capacity: 20_000, regexTimeoutMs: 800 });
    try {
      const evil = 'a'.repeat(40) + '!';
      // One such line alone would run for hours; 10k keep the next regex (which scans
      // them too, on the same 800 ms budget) cheap enough for a loaded machine.
      await sendAndClose(info.ingestPort, `${evil}\n`.repeat(10_000));
      await waitFor(() => lc.stats().current === 10_000, 10000);
      const q = await QueryClient.open(info.queryPort);
      const t0 = Date.now();
      let answered = false;
      q.send('QUERY regex=(a+)+$');
      const answer = q.line(20000).then((l) => {
        answered = true;
        return l;
      });
      // While the worker burns, ingest more lines: they are stored before the regex
      // gives up (the worker has a budget of 800 ms, this takes a few).
      await sendAndClose(info.ingestPort, 'during regex 1\nduring regex 2\n');
      await waitFor(() => lc.stats().current === 10_002, 10000, 'the lines sent during the regex');
      expect(answered, 'the regex had answered before the lines were stored').to.equal(false);
      expect(await answer).to.equal('ERROR: regex timed out after 800 ms');
      // Not before its budget ran out (timers may fire a little early by rounding).
      expect(Date.now() - t0, 'ms until the timeout answer').to.be.at.least(780);
      // The connection and a fresh worker keep working.
      const r = await q.found('REGEX ^during regex \\d$');
      expect(r.lines.map(stripStamp)).to.deep.equal(['during regex 1', 'during regex 2']);
      expect(await q.ask('COUNT')).to.equal('COUNT: 10002');
      q.close();
    } finally {
      await lc.stop();
    }
  });

  it('a long plain scan does not hold the server: ingestion and other queries are served while it runs', async () => {
    const total = 500_000;
    const { lc, info } = await startServer({ capacity: total + 10 });
    try {
      await sendAndClose(info.ingestPort, 'some ordinary log line number\n'.repeat(total));
      await waitFor(() => lc.stats().current === total, 20000);
      const scanning = await QueryClient.open(info.queryPort);
      const other = await QueryClient.open(info.queryPort);
      const order: string[] = [];
      scanning.send('SEARCH nomatch-anywhere');
      const found = scanning.line(20000).then((l) => {
        order.push('scan answered');
        return l;
      });
      // A scan that held the main thread would delay all of this until it ended.
      await sendAndClose(info.ingestPort, 'while scanning\n');
      await waitFor(() => lc.stats().current === total + 1, 20000, 'the line sent during the scan');
      const count = await other.ask('COUNT');
      order.push('COUNT answered');
      expect(await found).to.equal('FOUND: 0 matches');
      expect(count).to.equal(`COUNT: ${total + 1}`);
      expect(order).to.deep.equal(['COUNT answered', 'scan answered']);
      scanning.close();
      other.close();
    } finally {
      await lc.stop();
    }
  });
});
