// poll-specific behaviour the shared conformance suite does not cover: no
// FD_SETSIZE limit, O(1) swap-with-last removal keeping the fd -> index map right
// under churn.
import { expect } from 'chai';
import { closeSync, openSync } from 'node:fs';

import { createReactor, type Reactor } from '@logcaster/core';
import { peer, skipBecause, waitFor, type Peer } from '@logcaster/testkit';

describe('poll backend', function () {
  this.timeout(30000);
  let reactor: Reactor | undefined;
  const filler: number[] = [];
  const clients: Peer[] = [];

  afterEach(async () => {
    for (const c of clients.splice(0)) c.socket.destroy();
    for (const fd of filler.splice(0)) closeSync(fd);
    await reactor?.close();
    reactor = undefined;
  });

  it('serves descriptors above 1024 (no FD_SETSIZE limit)', async function () {
    const r = (reactor = createReactor({ backend: 'poll' }));
    expect(r.backend).to.equal('poll');
    const l = r.listen({ port: 0 }, { onData: (c, d) => void c.write(d) });
    try {
      for (;;) {
        const fd = openSync('/dev/null', 'r');
        filler.push(fd);
        if (fd >= 1100) break;
      }
    } catch (err) {
      skipBecause(this, `cannot open descriptors past 1100 here: ${(err as Error).message}`);
    }
    for (let i = 0; i < 20; i++) clients.push(await peer(l.port));
    clients.forEach((c, i) => c.socket.write(`high ${i}`));
    await waitFor(() => clients.every((c, i) => c.text() === `high ${i}`), 5000, 'echoes on high descriptors');
  });

  it('keeps the right connections watched while others come and go in any order', async () => {
    const r = (reactor = createReactor({ backend: 'poll' }));
    const l = r.listen({ port: 0 }, { onData: (c, d) => void c.write(d) });
    const live: Peer[] = [];
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    // Churn: removals from the middle move the last pollfd entry into the hole.
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 40; i++) live.push(await peer(l.port));
      for (let i = 0; i < 25; i++) {
        const [gone] = live.splice(rand(live.length), 1);
        gone!.socket.destroy();
        await gone!.closed;
      }
    }
    clients.push(...live);
    await waitFor(() => r.stats().connections === live.length, 5000, `${live.length} live connections`);
    live.forEach((c, i) => c.socket.write(`still ${i}`));
    await waitFor(() => live.every((c, i) => c.text() === `still ${i}`), 5000, 'echo on every survivor');
  });
});
