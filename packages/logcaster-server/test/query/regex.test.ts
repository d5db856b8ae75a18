// A catastrophic regex must not stall ingestion: it runs in a worker with a budget.
import { expect } from 'chai';

import { delay, sendAndClose, waitFor } from '@logcaster/testkit';
import { QueryClient, startServer, stripStamp } from '../support/helpers';

describe('regex queries', function () {
  this.timeout(30000);

  it('times out `(a+)+$` over 100k long lines while ingestion keeps flowing', async () => {
    const { lc, info } = await startServer({ capacity: 200_000, regexTimeoutMs: 800 });
    try {
      const evil = 'a'.repeat(40) + '!';
      await sendAndClose(info.ingestPort, `${evil}\n`.repeat(100_000));
      await waitFor(() => lc.stats().current === 100_000, 10000);
      const q = await QueryClient.open(info.queryPort);
      const t0 = Date.now();
      q.send('QUERY regex=(a+)+$');
      // While the worker burns, ingest more lines and watch them land.
      await delay(100);
      await sendAndClose(info.ingestPort, 'during regex 1\nduring regex 2\n');
      const storedAt = Date.now();
      expect(lc.stats().current).to.equal(100_002);
      expect(storedAt - t0).to.be.below(700);
      const answer = await q.line();
      const elapsed = Date.now() - t0;
      expect(answer).to.equal('ERROR: regex timed out after 800 ms');
      expect(elapsed).to.be.within(700, 5000);
      // The connection and a fresh worker keep working.
      const r = await q.found('REGEX ^during regex \\d$');
      expect(r.lines.map(stripStamp)).to.deep.equal(['during regex 1', 'during regex 2']);
      expect(await q.ask('COUNT')).to.equal('COUNT: 100002');
      q.close();
    } finally {
      await lc.stop();
    }
  });

  it('long non-regex scans are sliced so ingestion is not starved', async () => {
    const { lc, info } = await startServer({ capacity: 400_000 });
    try {
      await sendAndClose(info.ingestPort, 'some ordinary log line number\n'.repeat(300_000));
      await waitFor(() => lc.stats().current === 300_000, 10000);
      const q = await QueryClient.open(info.queryPort);
      let ticks = 0;
      const iv = setInterval(() => ticks++, 5);
      const r = await q.found('SEARCH nomatch-anywhere');
      clearInterval(iv);
      expect(r.n).to.equal(0);
      expect(ticks).to.be.greaterThan(0);
      q.close();
    } finally {
      await lc.stop();
    }
  });
});
