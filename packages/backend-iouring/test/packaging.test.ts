// Packaging: the prebuilt addon (npm run prebuild -> prebuilds/linux-x64/) talks to
// io_uring through raw syscalls, so it must not need liburing at run time, and a
// packed package must install and load with no compiler (the core's shared helper).
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const pkgDir = join(__dirname, '..', '..');
const prebuildDir = join(pkgDir, 'prebuilds', `${process.platform}-${process.arch}`);
const helperPath = join(pkgDir, '..', 'core', 'dist', 'test', 'support', 'packaging.js');

function prebuilt(): string | undefined {
  if (!existsSync(prebuildDir)) return undefined;
  const f = readdirSync(prebuildDir).find((n) => n.endsWith('.node'));
  return f ? join(prebuildDir, f) : undefined;
}

describe('backend-iouring: packaging', function () {
  this.timeout(300000);

  it('the prebuilt addon links no liburing (raw io_uring syscalls only)', function () {
    const file = prebuilt();
    if (!file) {
      this.test!.title += ` (skipped: no prebuild in ${prebuildDir}; run npm run prebuild)`;
      this.skip();
    }
    const deps = execFileSync('ldd', [file!], { encoding: 'utf8' });
    expect(deps).to.not.match(/liburing/);
    expect(deps).to.not.match(/not found/);
  });

  it('installs from a packed tarball and loads with no compiler on PATH', async function () {
    if (!existsSync(helperPath)) {
      this.test!.title += ' (skipped: packaging helper @logcaster/core dist/test/support/packaging.js not built)';
      this.skip();
    }
    if (!prebuilt()) {
      this.test!.title += ' (skipped: no prebuild; run npm run prebuild first)';
      this.skip();
    }
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const helper = require(helperPath) as { testPrebuiltInstall(dir: string): unknown };
    await helper.testPrebuiltInstall(pkgDir);
  });
});
