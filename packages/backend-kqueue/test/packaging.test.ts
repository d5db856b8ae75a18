// Packed with its prebuild, installed into a fresh project with no compiler, make or
// python on PATH, the package must still load (the core's packaging helper does the
// pack/install/load; this file only points it at this package).
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const pkgDir = join(__dirname, '..', '..');
const helperPath = join(require.resolve('@logcaster/core/package.json'), '..', 'dist', 'test', 'support', 'packaging.js');

describe('@logcaster/backend-kqueue packaging', function () {
  this.timeout(300000);
  if (!existsSync(helperPath)) {
    it('skipped — the packaging helper (@logcaster/core dist/test/support/packaging.js) is not built', function () {
      this.skip();
    });
    return;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { testPrebuiltInstall } = require(helperPath) as { testPrebuiltInstall: (dir: string) => unknown };
  it('installs from its packed tarball with no compiler on PATH and loads', async () => {
    await testPrebuiltInstall(pkgDir);
  });
});
