// Runs the datagram and Unix socket conformance cases over every backend this machine
// can load; the others are listed as skipped, with the reason.
import { BACKEND_NAMES, tryBackend, type BackendModule } from '@logcaster/core';

import { runDatagramConformance } from '../src/datagram';

for (const name of BACKEND_NAMES) {
  const { attempt, module } = tryBackend(name);
  if (!module) {
    describe(`datagram conformance: ${name}`, () => {
      it(`skipped — ${attempt.status}: ${attempt.reason}`, function () {
        this.skip();
      });
    });
    continue;
  }
  const load = (): BackendModule => module;
  runDatagramConformance(name, load);
  if (name === 'epoll') runDatagramConformance('epoll (edge-triggered)', load, { edgeTriggered: true });
}
