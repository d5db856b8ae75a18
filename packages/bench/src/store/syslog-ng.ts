// Finds syslog-ng: the installed one, else the Debian package unpacked into
// packages/bench/build/syslog-ng/ with `apt-get download` + `dpkg -x`. It is never
// apt-installed: syslog-ng-core conflicts with rsyslog, which the other peer and the tests need.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { BENCH_DIR } from '../build';
import { which } from '../util';

export interface SyslogNg {
  bin: string;
  /** --module-path argument (the unpacked package's plugin directory), if not installed */
  modulePath?: string;
  env: NodeJS.ProcessEnv;
  version: string;
}

const ROOT = path.join(BENCH_DIR, 'build', 'syslog-ng');

function sh(cmd: string, args: string[], cwd?: string): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 120000 });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

function installed(pkg: string): boolean {
  const r = sh('dpkg-query', ['-W', '-f=${Status}', pkg]);
  return r.ok && /install ok installed/.test(r.out);
}

/** Package names of a .deb's Depends (first alternative of each). */
function depends(deb: string): string[] {
  const r = sh('dpkg-deb', ['-f', deb, 'Depends']);
  if (!r.ok) return [];
  return r.out
    .split(',')
    .map((d) => d.split('|')[0].trim().split(/[\s(:]/)[0])
    .filter(Boolean);
}

function unpacked(download: boolean): SyslogNg | string {
  const bin = path.join(ROOT, 'root', 'usr', 'sbin', 'syslog-ng');
  const modDir = path.join(ROOT, 'root', 'usr', 'lib', 'syslog-ng');
  if (!fs.existsSync(bin)) {
    if (!download) return 'syslog-ng is neither installed nor unpacked, and this run does not download it (a full run does)';
    if (!which('apt-get') || !which('dpkg')) return 'syslog-ng is not installed and apt-get/dpkg are not available to unpack it';
    const debs = path.join(ROOT, 'debs');
    fs.mkdirSync(debs, { recursive: true });
    const dl = sh('apt-get', ['download', 'syslog-ng-core'], debs);
    const core = fs.readdirSync(debs).find((f) => f.startsWith('syslog-ng-core_') && f.endsWith('.deb'));
    if (!core) return `apt-get download syslog-ng-core failed: ${dl.out.trim().split('\n').slice(-1)[0]}`;
    // libraries syslog-ng needs that this machine lacks are unpacked beside it
    const missing = depends(path.join(debs, core)).filter((p) => !installed(p) && !/^(lsb-base|sysvinit-utils)$/.test(p));
    for (const p of missing) {
      const r = sh('apt-get', ['download', p], debs);
      if (!r.ok) return `apt-get download ${p} (a dependency of syslog-ng-core) failed: ${r.out.trim().split('\n').slice(-1)[0]}`;
    }
    for (const f of fs.readdirSync(debs).filter((x) => x.endsWith('.deb'))) {
      const r = sh('dpkg', ['-x', path.join(debs, f), path.join(ROOT, 'root')]);
      if (!r.ok) return `dpkg -x ${f} failed: ${r.out.trim()}`;
    }
  }
  const versions = fs.existsSync(modDir) ? fs.readdirSync(modDir).filter((d) => /^\d/.test(d)) : [];
  const libs = ['usr/lib/x86_64-linux-gnu', 'lib/x86_64-linux-gnu', 'usr/lib/aarch64-linux-gnu', 'usr/lib/syslog-ng']
    .map((d) => path.join(ROOT, 'root', d))
    .filter((d) => fs.existsSync(d));
  const env = { ...process.env, LD_LIBRARY_PATH: [...libs, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') };
  const v = spawnSync(bin, ['--version'], { env, encoding: 'utf8' });
  if (v.status !== 0) return `the unpacked syslog-ng does not run: ${(v.stderr || String(v.error)).trim().split('\n')[0]}`;
  return { bin, modulePath: versions.length ? path.join(modDir, versions.sort().slice(-1)[0]) : undefined, env, version: v.stdout.split('\n')[0] };
}

/** syslog-ng ready to run, or why not (shown as the peer's skip). */
export function findSyslogNg(download: boolean): SyslogNg | string {
  const sys = which('syslog-ng');
  if (sys) {
    const v = spawnSync(sys, ['--version'], { encoding: 'utf8' });
    if (v.status === 0) return { bin: sys, env: process.env, version: v.stdout.split('\n')[0] };
  }
  return unpacked(download);
}
