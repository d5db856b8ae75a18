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

/** The build tools node-gyp needs that are not on PATH. */
function missingToolchain(): string[] {
  return ['make', 'g++', 'python3'].filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
}

/** Build the shim addon if it is missing or older than its sources. Returns why it is
 *  not run here (not Linux, no toolchain), or a build failure (which fails the test:
 *  a compile error in the real kqueue_poller.cc must not pass as a skip). */
function ensureShimBuilt(): { skip?: string; failure?: string } {
  if (process.platform !== 'linux') return { skip: `the epoll shim is for Linux; ${process.platform} has real kqueue` };
  if (existsSync(addon) && statSync(addon).mtimeMs >= newestSource()) return {};
  const missing = missingToolchain();
  if (missing.length) return { skip: `needs a C++ toolchain to build the shim; missing: ${missing.join(', ')}` };
  const r = spawnSync(process.execPath, [require.resolve('node-gyp/bin/node-gyp.js'), 'rebuild', '--directory', shimDir, '--jobs', 'max'], {
    cwd: pkgDir,
    encoding: 'utf8',
    timeout: 300000,
  });
  if (r.status !== 0 || !existsSync(addon)) {
    const errors = `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n').filter((l) => /error|Error/.test(l)).slice(0, 20).join('\n');
    return { failure: `node-gyp rebuild of the shim failed (${r.status ?? r.signal}${r.error ? `, ${String(r.error)}` : ''}):\n${errors}` };
  }
  return {};
}

const built = ensureShimBuilt();
if (built.skip) {
  describe('conformance: kqueue (via epoll shim)', () => {
    it(`skipped — ${built.skip}`, function () {
      this.skip();
    });
  });
} else if (built.failure) {
  const failure = built.failure;
  describe('conformance: kqueue (via epoll shim)', () => {
    it('builds the kqueue backend against the epoll shim', () => {
      throw new Error(failure);
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
