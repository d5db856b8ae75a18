// Echo server on the LogCaster reactor, for one backend (--backend). Uses only the public
// API of @logcaster/core; --tls-cert/--tls-key: over TLS. Default: integrated with Node's event loop; --run: the
// dedicated-thread mode (reactor.run()), as a standalone server would. Integrated, with
// --loop-delay, it also measures Node's event-loop delay (what an application embedding
// the reactor would see) and reports it on exit: "LOOP_DELAY_MS <p50> <p99> <max>" on
// stderr. Not by default: the histogram's 10 ms timer would wake an idle server.
import { monitorEventLoopDelay } from 'node:perf_hooks';

import { exitOnSignals, parseArgs, ready, tlsFiles } from './common';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const core = require('@logcaster/core') as typeof import('@logcaster/core');

const args = parseArgs(process.argv.slice(2));
const reactor = core.createReactor({ backend: args.backend as import('@logcaster/core').BackendName | 'auto' });
const listener = reactor.listen(
  { host: args.host, port: args.port, tls: tlsFiles(args) },
  {
    onData(conn, data) {
      conn.write(data);
    },
    onClose() {
      /* nothing to release */
    },
  },
);
process.stderr.write(`reactor-echo: backend ${reactor.backend}${args.run ? ' (run mode)' : ''}${args.tlsCert ? ' (TLS)' : ''}\n`);
ready(listener.port, -1);
if (args.run) {
  reactor.run();
} else if (args.loopDelay) {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  exitOnSignals(() => {
    const ms = (ns: number): string => (ns / 1e6).toFixed(2);
    process.stderr.write(`LOOP_DELAY_MS ${ms(delay.percentile(50))} ${ms(delay.percentile(99))} ${ms(delay.max)}\n`);
  });
} else {
  exitOnSignals();
}
