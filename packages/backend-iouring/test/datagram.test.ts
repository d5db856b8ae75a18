// io_uring datagram paths the shared conformance suite cannot reach on purpose:
// datagrams whose multishot RECVMSG completes while the socket is paused are held
// and delivered, in order, after resume (with COOP_TASKRUN off completions post
// while JS runs, so pause() finds some already in the CQ), and a datagram ring that
// runs dry (16 buffers) ends the multishot, which is re-armed without losing any.
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

import { createReactorWith } from '@logcaster/core';
import type { BackendModule, Reactor } from '@logcaster/core';
import { delay, waitFor } from '@logcaster/testkit';

const pkgDir = join(__dirname, '..', '..');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const backend = require(pkgDir) as BackendModule;
const support = backend.probe();

/** A reactor created with io_uring tuning switches set (they are read at creation). */
function reactorWith(env: Record<string, string>): Reactor {
  const saved = Object.keys(env).map((k) => [k, process.env[k]] as const);
  Object.assign(process.env, env);
  try {
    return createReactorWith(backend, {});
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** Another process sending `n` numbered datagrams to port as fast as node:dgram can. */
function flood(port: number, n: number): ChildProcess {
  return spawn(process.execPath, ['-e', `
    const s = require('dgram').createSocket('udp4');
    let i = 0;
    const next = () => { if (i < ${n}) s.send(String(i++), ${port}, '127.0.0.1', next); else s.close(); };
    next();
  `]);
}

/** Numbers received are strictly increasing, and each gap is datagrams the kernel dropped. */
function checkSequence(got: number[], n: number, dropped: number): void {
  for (let i = 1; i < got.length; i++) expect(got[i], `datagram after ${got[i - 1]}`).to.be.greaterThan(got[i - 1]);
  expect(got.length + dropped, 'received + dropped').to.equal(n);
}

describe('backend-iouring: datagrams', function () {
  this.timeout(30000);
  before(function () {
    if (!support.supported) {
      this.test!.parent!.title += ` — skipped: ${support.reason}`;
      this.skip();
    }
  });

  it('holds datagrams that complete while paused and delivers them after resume, in order', async () => {
    const r = reactorWith({ LOGCASTER_IOURING_COOP: '0' });
    try {
      const got: number[] = [];
      let paused = false;
      let whilePaused = 0;
      const n = 20000;
      const sock = r.bindUdp({ port: 0, recvBufferSize: 4 << 20 }, {
        onMessage(s, d) {
          got.push(Number(d.toString()));
          if (paused) whilePaused++;
          if (got.length === 300) {
            setImmediate(() => {
              // The flood goes on; with COOP_TASKRUN off its completions pile up in
              // the CQ meanwhile, and pause() finds them there.
              const end = Date.now() + 10;
              while (Date.now() < end) {
                /* let completions post */
              }
              s.pause();
              paused = true;
              setTimeout(() => {
                paused = false;
                s.resume();
              }, 50);
            });
          }
        },
      });
      const sender = flood(sock.port, n);
      await waitFor(() => got.length + sock.stats().dropped === n, 20000, () => `received ${got.length} + dropped ${sock.stats().dropped} of ${n}`);
      expect(whilePaused, 'delivered while paused').to.equal(0);
      expect(r.stats().driver.datagramsHeld, 'datagrams held while paused').to.be.greaterThan(0);
      checkSequence(got, n, sock.stats().dropped);
      await new Promise((res) => (sender.exitCode !== null ? res(null) : sender.once('exit', res)));
    } finally {
      await r.close();
    }
  });

  it('re-arms a multishot RECVMSG the empty datagram ring ended (16 buffers), losing nothing', async () => {
    const r = reactorWith({ LOGCASTER_IOURING_SMALL_RINGS: '1' });
    try {
      const got: number[] = [];
      const n = 5000;
      const sock = r.bindUdp({ port: 0, recvBufferSize: 4 << 20 }, {
        onMessage(_s, d) {
          got.push(Number(d.toString()));
        },
      });
      const sender = flood(sock.port, n);
      await waitFor(() => got.length + sock.stats().dropped === n, 20000, () => `received ${got.length} + dropped ${sock.stats().dropped} of ${n}`);
      expect(r.stats().driver.recvStarved, 'receives ended by ENOBUFS').to.be.greaterThan(0);
      checkSequence(got, n, sock.stats().dropped);
      await delay(10);
      await new Promise((res) => (sender.exitCode !== null ? res(null) : sender.once('exit', res)));
    } finally {
      await r.close();
    }
  });
});
