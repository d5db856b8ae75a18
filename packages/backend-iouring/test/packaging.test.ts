// Packaging: a packed package must install and load with no compiler (the core's
// shared test), and the prebuilt addon talks to io_uring through raw syscalls, so it
// must not need liburing at run time.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

import { describePrebuiltInstall } from '@logcaster/testkit';

const pkgDir = join(__dirname, '..', '..');
describePrebuiltInstall(pkgDir, 'iouring');

describe('backend-iouring: prebuilt addon', () => {
  it('links no liburing (raw io_uring syscalls only)', () => {
    // Runs after the packaging test above, which produced the prebuild.
    const dir = join(pkgDir, 'prebuilds', `${process.platform}-${process.arch}`);
    const file = readdirSync(dir).find((n) => n.endsWith('.node'));
    expect(file, `a prebuild in ${dir}`).to.be.a('string');
    const deps = execFileSync('ldd', [join(dir, file!)], { encoding: 'utf8' });
    expect(deps).to.not.match(/liburing/);
    expect(deps).to.not.match(/not found/);
  });
});
