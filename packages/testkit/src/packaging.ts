// "Prebuilt native package" as a user meets it: pack a backend with its prebuild,
// install the tarball into an empty project on a machine whose PATH has no
// compiler, make or python, and load it.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const coreDir = dirname(require.resolve('@logcaster/core/package.json'));

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync(cmd, args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
}

function pack(dir: string, into: string): string {
  const out = run('npm', ['pack', '--pack-destination', into, '--json'], dir);
  return join(into, (JSON.parse(out) as { filename: string }[])[0].filename);
}

/** A PATH holding only node, npm and sh: no cc, g++, make or python. */
function bareToolPath(root: string): string {
  const bin = join(root, 'bin');
  mkdirSync(bin);
  symlinkSync(process.execPath, join(bin, 'node'));
  symlinkSync('/bin/sh', join(bin, 'sh')); // npm runs install scripts with sh -c
  // npm's own entry point: from `npm test` (npm_execpath), else where `npm` on PATH leads.
  const npmCli = process.env.npm_execpath?.endsWith('.js')
    ? process.env.npm_execpath
    : realpathSync(run('/bin/sh', ['-c', 'command -v npm'], root).trim());
  writeFileSync(join(bin, 'npm'), `#!/bin/sh\nexec "${join(bin, 'node')}" "${npmCli}" "$@"\n`, { mode: 0o755 });
  return bin;
}

export interface PrebuiltInstallResult {
  prebuilds: string[];
  loaded: { name: string; supported: boolean; reason: string };
  echoed?: string;
}

/**
 * Build the package's prebuild (npm run prebuild), pack it and @logcaster/core, install
 * both into a fresh project with no toolchain on PATH, then load the backend there and,
 * when it is supported on this machine, echo a message through a reactor on it.
 */
export function testPrebuiltInstall(packageDir: string): PrebuiltInstallResult {
  run('npm', ['run', 'prebuild'], packageDir);
  const prebuilds = readdirSync(join(packageDir, 'prebuilds', `${process.platform}-${process.arch}`));
  const root = mkdtempSync(join(tmpdir(), 'logcaster-pack-'));
  try {
    const tarballs = join(root, 'tarballs');
    mkdirSync(tarballs);
    const coreTgz = pack(coreDir, tarballs);
    const backendTgz = pack(packageDir, tarballs);
    const project = join(root, 'project');
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'user-project', version: '1.0.0', private: true }));
    const bin = bareToolPath(root);
    const env: NodeJS.ProcessEnv = { HOME: process.env.HOME, PATH: bin, npm_config_update_notifier: 'false' };
    for (const tool of ['cc', 'gcc', 'g++', 'make', 'python3', 'python']) {
      let found = true;
      try {
        run('/bin/sh', ['-c', `command -v ${tool}`], project, env);
      } catch {
        found = false;
      }
      if (found) throw new Error(`${tool} is still reachable on the bare PATH`);
    }
    run(join(bin, 'npm'), ['install', '--no-audit', '--no-fund', '--prefer-offline', coreTgz, backendTgz], project, env);
    const pkgName = (require(join(packageDir, 'package.json')) as { name: string }).name;
    const script = `
      const b = require(${JSON.stringify(pkgName)});
      const p = b.probe();
      const out = { name: b.name, supported: p.supported, reason: p.reason };
      if (!p.supported) { console.log(JSON.stringify(out)); return; }
      const { createReactor } = require('@logcaster/core');
      const r = createReactor({ backend: b.name });
      const l = r.listen({ port: 0 }, { onData(c, d) { c.write(d); } });
      const s = require('net').connect(l.port, '127.0.0.1', () => s.end('prebuilt'));
      let got = '';
      s.on('data', (d) => (got += d));
      s.on('close', async () => { out.echoed = got; await r.close(); console.log(JSON.stringify(out)); });
    `;
    const output = run(join(bin, 'node'), ['-e', `(async () => {${script}})()`], project, env);
    const result = JSON.parse(output.trim().split('\n').pop()!) as PrebuiltInstallResult['loaded'] & { echoed?: string };
    return { prebuilds, loaded: { name: result.name, supported: result.supported, reason: result.reason }, echoed: result.echoed };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** The packaging test every backend package runs (see testPrebuiltInstall). */
export function describePrebuiltInstall(packageDir: string, backendName: string): void {
  describe(`@logcaster/backend-${backendName} packaging`, function () {
    this.timeout(300000);
    it('installs from its packed tarball with no compiler on PATH, loads, and serves when supported', function () {
      // Imported lazily so mocha's require of this file stays cheap.
      const { expect } = require('chai') as typeof import('chai');
      const result = testPrebuiltInstall(packageDir);
      expect(result.prebuilds.some((f) => f.endsWith('.node')), 'npm run prebuild produced an addon').to.equal(true);
      expect(result.loaded.name).to.equal(backendName);
      if (result.loaded.supported) {
        expect(result.echoed).to.equal('prebuilt');
      } else {
        console.log(`      (${backendName} unsupported here: ${result.loaded.reason}; loading was the test)`);
        expect(result.loaded.reason).to.not.equal('');
      }
    });
  });
}
