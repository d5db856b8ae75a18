// The TLS conformance cases (../src/tls-suite.ts) over every backend this machine can
// load; the others, and a machine without the openssl command, are listed as skipped.
import { BACKEND_NAMES, tryBackend, type BackendModule } from '@logcaster/core';
import { opensslUnavailable } from '@logcaster/testkit';

import { runTlsConformance } from '../src/tls-suite';

const noOpenssl = opensslUnavailable();
for (const name of BACKEND_NAMES) {
  const { attempt, module } = tryBackend(name);
  if (!module || noOpenssl) {
    describe(`conformance over TLS: ${name}`, () => {
      it(`skipped — ${noOpenssl ?? `${attempt.status}: ${attempt.reason}`}`, function () {
        this.skip();
      });
    });
    continue;
  }
  const load = (): BackendModule => module;
  runTlsConformance(name, load);
  if (name === 'epoll') runTlsConformance('epoll (edge-triggered)', load, { edgeTriggered: true });
}
