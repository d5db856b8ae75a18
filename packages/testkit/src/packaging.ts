// "Prebuilt native package" as a user meets it: every backend of this workspace packed
// with its prebuild, installed into one empty project on a PATH with no compiler,
// make or python, then loaded there. Built once per test process and shared by the
// backends' packaging tests (each file still runs alone: the first one builds it).
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';

import { tryBackend, type BackendName } from '@logcaster/core';

import { itUnless } from './mocha';

const coreDir = dirname(require.resolve('@logcaster/core/package.json'));
const packagesDir = dirname(coreDir);
const platformDir = `${process.platform}-${process.arch}`;

/** The one backend whose prebuild is made by its own `npm run prebuild`
 *  (prebuildify: a full clean compile). io_uring, because its shipped binary must not
 *  need liburing. The others ship their `npm run build` addon as the prebuild: the
 *  same compile of the same binding.gyp (unstripped), which is all a prebuilt install
 *  depends on — and every package is checked to declare the same prebuild script. */
const PREBUILT_BY_SCRIPT = '@logcaster/backend-iouring';

/** What every backend package declares for packaging (README "Packaging"). */
export const PACKAGING_SCRIPTS = { install: 'node-gyp-build', prebuild: 'prebuildify --napi --strip' };

interface PackageJson {
  name: string;
  scripts?: Record<string, string>;
  files?: string[];
  os?: string[];
}

/** Why npm would not install the package on this platform (its "os" field), or null. */
function platformExcluded(pkg: PackageJson): string | null {
  return pkg.os && !pkg.os.includes(process.platform) ? `${pkg.name} declares os ${pkg.os.join(', ')}; this is ${process.platform}` : null;
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync(cmd, args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
}

function pack(dir: string, into: string): string {
  const out = run('npm', ['pack', '--pack-destination', into, '--json'], dir);
  return join(into, (JSON.parse(out) as { filename: string }[])[0].filename);
}

function readPackage(dir: string): PackageJson {
  return require(join(dir, 'package.json')) as PackageJson;
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

/** Put the package's prebuild in prebuilds/<platform>-<arch>/; returns its file names. */
function makePrebuild(dir: string, pkg: PackageJson): string[] {
  const out = join(dir, 'prebuilds', platformDir);
  if (pkg.name === PREBUILT_BY_SCRIPT) {
    run('npm', ['run', 'prebuild'], dir);
  } else {
    const release = join(dir, 'build', 'Release');
    const addons = existsSync(release) ? readdirSync(release).filter((f) => f.endsWith('.node')) : [];
    if (addons.length !== 1) throw new Error(`${pkg.name}: expected one addon in ${release} (run npm run build), found ${addons.length}`);
    rmSync(out, { recursive: true, force: true });
    mkdirSync(out, { recursive: true });
    copyFileSync(join(release, addons[0]), join(out, `${pkg.name.replace('/', '+')}.node`));
  }
  return readdirSync(out);
}

interface SharedInstall {
  /** The user's project: node_modules/@logcaster/{core,backend-*} from tarballs. */
  project: string;
  env: NodeJS.ProcessEnv;
  node: string;
  prebuilds: Map<string, string[]>;
}

let shared: SharedInstall | Error | undefined;

function sharedInstall(): SharedInstall {
  if (shared instanceof Error) throw shared;
  if (shared) return shared;
  try {
    shared = buildSharedInstall();
  } catch (err) {
    shared = err as Error; // one failure, reported by every test that needs it
    throw err;
  }
  return shared;
}

function buildSharedInstall(): SharedInstall {
  const root = mkdtempSync(join(tmpdir(), 'logcaster-pack-'));
  process.once('exit', () => rmSync(root, { recursive: true, force: true }));
  const tarballs = join(root, 'tarballs');
  mkdirSync(tarballs);
  const prebuilds = new Map<string, string[]>();
  const packed = [pack(coreDir, tarballs)];
  for (const dir of readdirSync(packagesDir).filter((d) => d.startsWith('backend-')).map((d) => join(packagesDir, d))) {
    const pkg = readPackage(dir);
    if (platformExcluded(pkg)) continue;
    prebuilds.set(pkg.name, makePrebuild(dir, pkg));
    packed.push(pack(dir, tarballs));
  }
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
  run(join(bin, 'npm'), ['install', '--no-audit', '--no-fund', '--prefer-offline', ...packed], project, env);
  return { project, env, node: join(bin, 'node'), prebuilds };
}

export interface PrebuiltInstallResult {
  /** Files in the package's prebuilds/<platform>-<arch>/ before packing. */
  prebuilds: string[];
  /** The package as installed in the user's project. */
  installedDir: string;
  loaded: { name: string; supported: boolean; reason: string; addon: string };
  /** What an echo through a reactor on it returned (only when supported). */
  echoed?: string;
}

/** Load the packed, installed backend in the user's project (building that project on
 *  first use) and, when it is supported, echo a message through a reactor on it. */
export function testPrebuiltInstall(packageDir: string): PrebuiltInstallResult {
  const { project, env, node, prebuilds } = sharedInstall();
  const pkgName = readPackage(packageDir).name;
  const script = `
    const b = require(${JSON.stringify(pkgName)});
    const p = b.probe();
    const addon = Object.keys(require.cache).find((f) => f.endsWith('.node')) || '';
    const out = { name: b.name, supported: p.supported, reason: p.reason, addon };
    if (!p.supported) { console.log(JSON.stringify(out)); return; }
    const { createReactor } = require('@logcaster/core');
    const r = createReactor({ backend: b.name });
    const l = r.listen({ port: 0 }, { onData(c, d) { c.write(d); } });
    const s = require('net').connect(l.port, '127.0.0.1', () => s.end('prebuilt'));
    let got = '';
    s.on('data', (d) => (got += d));
    s.on('close', async () => { out.echoed = got; await r.close(); console.log(JSON.stringify(out)); });
  `;
  const output = run(node, ['-e', `(async () => {${script}})()`], project, env);
  const result = JSON.parse(output.trim().split('\n').pop()!) as PrebuiltInstallResult['loaded'] & { echoed?: string };
  const { echoed, ...loaded } = result;
  return { prebuilds: prebuilds.get(pkgName) ?? [], installedDir: join(project, 'node_modules', pkgName), loaded, echoed };
}

/** The packaging tests every backend package runs (see testPrebuiltInstall). */
export function describePrebuiltInstall(packageDir: string, backendName: BackendName): void {
  describe(`@logcaster/backend-${backendName} packaging`, function () {
    this.timeout(300000);
    // Imported lazily so mocha's require of this file stays cheap.
    const { expect } = require('chai') as typeof import('chai');
    const { attempt } = tryBackend(backendName);
    const excluded = platformExcluded(readPackage(packageDir));
    let result: PrebuiltInstallResult;
    before(() => {
      if (!excluded) result = testPrebuiltInstall(packageDir);
    });

    it('declares the install and prebuild scripts, and ships its prebuilds and sources', () => {
      const pkg = readPackage(packageDir);
      expect(pkg.scripts).to.include(PACKAGING_SCRIPTS);
      expect(pkg.files).to.include.members(['index.js', 'binding.gyp', 'src/', 'prebuilds/']);
    });

    itUnless(excluded, 'installs from its packed tarball with no compiler on PATH and loads its prebuild', () => {
      expect(result.prebuilds.some((f) => f.endsWith('.node')), 'a prebuild to pack').to.equal(true);
      expect(result.loaded.name).to.equal(backendName);
      // node-gyp-build took the shipped prebuild (there is no compiler to build one).
      expect(result.loaded.addon).to.equal(join(result.installedDir, 'prebuilds', platformDir, basename(result.loaded.addon)));
      // Installed where it can also run, or reporting why it cannot: as the loader does here.
      expect(result.loaded.supported).to.equal(attempt.status === 'loaded');
      if (!result.loaded.supported) expect(result.loaded.reason).to.equal(attempt.reason);
    });

    const cannotServe = excluded ?? (attempt.status === 'loaded' ? null : `${backendName} ${attempt.status} here: ${attempt.reason}`);
    itUnless(cannotServe, 'serves from the installed package', () => {
      expect(result.echoed).to.equal('prebuilt');
    });
  });
}
