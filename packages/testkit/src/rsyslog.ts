// A real rsyslog (Debian's rsyslog, rsyslog-relp) for tests that forward through it:
// a private instance in the foreground with its own config, work directory and pid
// file, stopped with the test. Never touches the system's rsyslog.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** null when rsyslogd runs here and accepts the configuration `body` (validated with
 *  -N1, which loads its modules), else why not (for a skip). */
export function rsyslogUnavailable(dir: string, body: string): string | null {
  const probe = spawnSync('rsyslogd', ['-v'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return 'rsyslogd is not installed (Debian: apt-get install rsyslog rsyslog-relp)';
  const conf = path.join(dir, 'probe.conf');
  fs.writeFileSync(conf, `global(workDirectory="${dir}")\n${body}\n`);
  const check = spawnSync('rsyslogd', ['-N1', '-f', conf], { encoding: 'utf8' });
  if (check.status !== 0) {
    const why = `${check.stderr}${check.stdout}`.trim().split('\n').filter((l) => !/config validation run/.test(l)).join(' ');
    return `rsyslogd refuses the test's configuration (Debian: rsyslog-relp provides omrelp): ${why.slice(0, 200)}`;
  }
  return null;
}

export interface Rsyslog {
  child: ChildProcess;
  output(): string;
  /** SIGTERM, then SIGKILL after 5 s; resolves once it has exited. */
  stop(): Promise<void>;
}

/** rsyslogd -n with `body` as its configuration (after a global() naming `dir` as work
 *  directory). */
export function startRsyslog(dir: string, body: string): Rsyslog {
  const conf = path.join(dir, 'rsyslog.conf');
  fs.writeFileSync(conf, `global(workDirectory="${dir}")\n${body}\n`);
  const child = spawn('rsyslogd', ['-n', '-f', conf, '-i', path.join(dir, 'rsyslog.pid')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
    },
  };
}
