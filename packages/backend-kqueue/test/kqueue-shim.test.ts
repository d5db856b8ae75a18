// The REAL kqueue backend source (src/kqueue_poller.cc), compiled on Linux against
// the test-only kqueue-on-epoll shim (test/shim), run through the unchanged
// conformance suite. Reported as "kqueue (via epoll shim)": it checks our use of the
// kqueue API, not a kernel's kqueue (that runs in .github/workflows/kqueue.yml).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { runConformance, runDatagramConformance } from '@logcaster/conformance';
import type { BackendModule } from '@logcaster/core';

const pkgDir = join(__dirname, '..', '..');
const shimDir = join(pkgDir, 'test', 'shim');
const addon = join(shimDir, 'build', 'Release', 'logcaster_kqueue_shim.node');

/** Newest modification time of the sources the shim addon is compiled from. */
function newestSource(): number {
  const dirs = [join(pkgDir, 'src'), shimDir, join(pkgDir, '..', 'core', 'native')];
  let newest = 0;
  for (const dir of dirs) {
    for (const f of readdirSync(dir)) {
      if (/\.(cc|h|gypi?)$/.test(f)) newest = Math.max(newest, statSync(join(dir, f)).mtimeMs);
    }
  }
  return newest;
}

/** Build the shim addon if it is missing or older than its sources; returns why it cannot be used, or ''. */
function ensureShimBuilt(): string {
  if (process.platform !== 'linux') return `the epoll shim is for Linux; ${process.platform} has real kqueue`;
  if (existsSync(addon) && statSync(addon).mtimeMs >= newestSource()) return '';
  const r = spawnSync('npx', ['node-gyp', 'rebuild', '--directory', shimDir], {
    cwd: pkgDir,
    encoding: 'utf8',
    timeout: 300000,
  });
  if (r.status !== 0 || !existsSync(addon)) {
    const tail = `${r.stderr ?? ''}${r.error ? String(r.error) : ''}`.trim().split('\n').slice(-3).join(' | ');
    return `could not build the shim addon (needs a C++ toolchain): ${tail}`;
  }
  return '';
}

const why = ensureShimBuilt();
if (why) {
  describe('conformance: kqueue (via epoll shim)', () => {
    it(`skipped — ${why}`, function () {
      this.skip();
    });
  });
} else {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const load = (): BackendModule => require(addon) as BackendModule;
  const loadExpr = `require(${JSON.stringify(addon)})`;
  describe('kqueue (via epoll shim): module', () => {
    it('is the kqueue backend and probes as supported over the shim', () => {
      const m = load();
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { expect } = require('chai') as typeof import('chai');
      expect(m.name).to.equal('kqueue');
      expect(m.probe()).to.deep.equal({ supported: true, reason: '' });
    });
  });
  runConformance('kqueue (via epoll shim)', load, loadExpr);
  runConformance('kqueue (via epoll shim, EV_CLEAR)', load, loadExpr, { edgeTriggered: true });
  runDatagramConformance('kqueue (via epoll shim)', load);
  runDatagramConformance('kqueue (via epoll shim, EV_CLEAR)', load, { edgeTriggered: true });
}
