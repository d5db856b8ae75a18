import { expect } from 'chai';
import { join } from 'node:path';

import { testPrebuiltInstall } from '@logcaster/core/dist/test/support/packaging';

describe('@logcaster/backend-epoll packaging', function () {
  this.timeout(240000);
  it('installs from its packed tarball with no compiler on PATH and serves a connection', function () {
    const result = testPrebuiltInstall(join(__dirname, '..', '..'));
    expect(result.prebuilds.some((f) => f.endsWith('.node'))).to.equal(true);
    expect(result.loaded.name).to.equal('epoll');
    expect(result.loaded.supported, result.loaded.reason).to.equal(true);
    expect(result.echoed).to.equal('prebuilt');
  });
});
