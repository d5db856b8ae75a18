// What every group of conformance cases gets from runConformance (suite.ts).
import { networkInterfaces } from 'node:os';

import type { BackendModule, Handler, Reactor, ReactorOptions } from '@logcaster/core';

export type TestReactor = Reactor & { readonly connectionCount: number };

export interface SuiteContext {
  /** The backend's name as reported ('epoll', 'kqueue (via epoll shim)', ...). */
  readonly label: string;
  readonly load: () => BackendModule;
  /** A JS expression that loads the same backend module in a child process or worker. */
  readonly loadExpr: string;
  /** The reactor each test starts with (the suite's options); closed after the test. */
  readonly reactor: TestReactor;
  /** Another reactor with the suite's options plus `extra`; closed after the test. */
  make(extra?: ReactorOptions): TestReactor;
}

export const echo: Handler = {
  onData(conn, data) {
    conn.write(data);
  },
};

export function hasIpv6Loopback(): boolean {
  return Object.values(networkInterfaces()).some((list) => list?.some((i) => i.family === 'IPv6' && i.internal));
}

/** The start of a child script (process or worker) that has `createReactorWith` and
 *  `backend` (this suite's module) in scope. */
export function childPrelude(ctx: SuiteContext): string {
  return `
    const { createReactorWith } = require(${JSON.stringify(require.resolve('@logcaster/core'))});
    const backend = ${ctx.loadExpr};
  `;
}

/** A child script (for runNodeBlocking, port in argv[1]) that opens `count`
 *  connections to 127.0.0.1:port, sends `payload` on each and half-closes, then
 *  exits once every byte has left. */
export function connectSendAndExit(count: number, payload: string): string {
  return `
    const net = require('net');
    const port = Number(process.argv[1]);
    let finished = 0;
    for (let i = 0; i < ${count}; i++) {
      const s = net.connect(port, '127.0.0.1', () => s.end(${JSON.stringify(payload)}));
      s.on('error', (e) => { console.error(e.message); process.exit(1); });
      s.on('finish', () => { if (++finished === ${count}) process.exit(0); });
    }
  `;
}
