// Runs the unchanged conformance suite over every backend this machine can load;
// the others are listed as skipped, with the reason.
import { BACKEND_NAMES, packageName, tryBackend, type BackendModule } from '@logcaster/core';

import { runConformance } from '../src/suite';

for (const name of BACKEND_NAMES) {
  const { attempt, module } = tryBackend(name);
  if (!module) {
    describe(`conformance: ${name}`, () => {
      it(`skipped — ${attempt.status}: ${attempt.reason}`, function () {
        this.skip();
      });
    });
    continue;
  }
  const load = (): BackendModule => module;
  const loadExpr = `require(${JSON.stringify(packageName(name))})`;
  runConformance(name, load, loadExpr);
  if (name === 'epoll') runConformance('epoll (edge-triggered)', load, loadExpr, { edgeTriggered: true });
}
