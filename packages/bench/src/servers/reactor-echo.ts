// Echo server on the LogCaster reactor, for one backend (--backend). Uses only the public
// API of @logcaster/core. Default: integrated with Node's event loop; --run: the
// dedicated-thread mode (reactor.run()), as a standalone server would.
import { exitOnSignals, parseArgs, ready } from './common';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const core = require('@logcaster/core') as typeof import('@logcaster/core');

const args = parseArgs(process.argv.slice(2));
const reactor = core.createReactor({ backend: args.backend as import('@logcaster/core').BackendName | 'auto' });
const listener = reactor.listen(
  { host: args.host, port: args.port },
  {
    onData(conn, data) {
      conn.write(data);
    },
    onClose() {
      /* nothing to release */
    },
  },
);
process.stderr.write(`reactor-echo: backend ${reactor.backend}${args.run ? ' (run mode)' : ''}\n`);
ready(listener.port, -1);
if (args.run) {
  reactor.run();
} else {
  exitOnSignals();
}
