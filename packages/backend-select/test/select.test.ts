// select-specific behaviour the shared conformance suite does not cover: the
// FD_SETSIZE limit (refused per connection, with a clear error, while the others
// keep being served).
import { expect } from 'chai';
import { closeSync, openSync } from 'node:fs';

import { createReactor, type Connection, type Reactor } from '@logcaster/core';
import { peer, skipBecause, waitFor, type Peer } from '@logcaster/testkit';

describe('select backend', function () {
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

  it('refuses a connection whose descriptor is >= FD_SETSIZE with a clear error; others keep echoing', async function () {
    const r = (reactor = createReactor({ backend: 'select' }));
    expect(r.backend).to.equal('select');
    const closeErr = new Map<Connection, Error | undefined>();
    const refused: Connection[] = [];
    const l = r.listen({ port: 0 }, {
      onOpen(c) {
        if (c.openError) {
          refused.push(c);
          c.write(`ERROR: ${c.openError.message}\n`);
        }
      },
      onData: (c, d) => void c.write(d),
      onClose: (c, err) => void closeErr.set(c, err),
    });

    // A connection accepted while descriptors are still low.
    const a = await peer(l.port);
    clients.push(a);
    a.socket.write('before\n');
    await waitFor(() => a.text() === 'before\n', 5000, 'echo before');

    // Push the descriptor table past FD_SETSIZE: the next accepted socket lands above 1023.
    try {
      for (;;) {
        const fd = openSync('/dev/null', 'r');
        filler.push(fd);
        if (fd >= 1030) break;
      }
    } catch (err) {
      skipBecause(this, `cannot open descriptors past FD_SETSIZE here: ${(err as Error).message}`);
    }

    const b = await peer(l.port);
    clients.push(b);
    await b.closed;
    expect(refused).to.have.length(1);
    expect(b.text()).to.match(/^ERROR: select backend cannot watch this connection: descriptor is beyond FD_SETSIZE \(1024\)\n$/);
    await waitFor(() => closeErr.has(refused[0]!), 5000, 'onClose of the refused connection');
    expect(closeErr.get(refused[0]!)?.message).to.match(/FD_SETSIZE/);

    // The existing connection is untouched and still served.
    a.socket.write('after\n');
    await waitFor(() => a.text() === 'before\nafter\n', 5000, 'echo after');
    expect(a.socket.destroyed).to.equal(false);
    expect(r.stats().connections).to.equal(1);

    // Once descriptors are free again, new connections are watched normally.
    for (const fd of filler.splice(0)) closeSync(fd);
    const c = await peer(l.port);
    clients.push(c);
    c.socket.write('again\n');
    await waitFor(() => c.text() === 'again\n', 5000, 'echo on a low descriptor again');
    expect(refused).to.have.length(1);
  });

  it('picks up a registration made while the helper thread is blocked', async () => {
    // An outbound connect registers a new descriptor while select() sleeps with the
    // old sets: the wake pipe must make it re-snapshot, or the connect never completes.
    const r = (reactor = createReactor({ backend: 'select' }));
    const l = r.listen({ port: 0 }, { onData: (c, d) => void c.write(d) });
    await new Promise((res) => setTimeout(res, 100)); // let the helper thread block
    let got = '';
    r.connect({ host: '127.0.0.1', port: l.port }, {
      onOpen: (c) => void c.write('hello'),
      onData: (_c, d) => void (got += d.toString()),
    });
    // Nothing else wakes the helper thread (no timers are armed): without the wake
    // pipe this never completes; the bound is only how long a loaded machine may take.
    await waitFor(() => got === 'hello', 10000, 'round trip on a connection registered mid-wait');
  });
});
