// Packaging: a packed package must install and load with no compiler (the shared
// test), and the prebuilt addon talks to io_uring through raw syscalls, so what ships
// must not need liburing at run time.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

import { describePrebuiltInstall, testPrebuiltInstall } from '@logcaster/testkit';

const pkgDir = join(__dirname, '..', '..');
describePrebuiltInstall(pkgDir, 'iouring');

describe('backend-iouring: prebuilt addon', function () {
  this.timeout(300000);
  it('links no liburing (raw io_uring syscalls only)', () => {
    // The addon the installed package loads: its own prebuild (npm run prebuild).
    const { loaded } = testPrebuiltInstall(pkgDir);
    expect(loaded.addon, 'the loaded addon').to.match(/prebuilds\/[^/]+\/[^/]+\.node$/);
    const deps = execFileSync('ldd', [loaded.addon], { encoding: 'utf8' });
    expect(deps).to.not.match(/liburing/);
    expect(deps).to.not.match(/not found/);
  });
});
