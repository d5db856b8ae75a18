// Clients as people really run them, for server tests: one test per backend, and the
// real `nc` (OpenBSD netcat) that half-closes right after sending.
import { spawn, spawnSync } from 'node:child_process';

import { BACKEND_NAMES, tryBackend, type BackendName } from '@logcaster/core';

import { stdoutOf } from './process';

/** Why `name` cannot run here, or null when it can. */
function unavailable(name: BackendName): string | null {
  const t = tryBackend(name);
  return t.module ? null : `${t.attempt.status}: ${t.attempt.reason.split('\n')[0]}`;
}

/** One mocha test per backend: run where the backend loads here, otherwise a skip
 *  whose title says why. */
export function itOnEachBackend(title: string, fn: (backend: BackendName) => Promise<void>): void {
  for (const name of BACKEND_NAMES) {
    const why = unavailable(name);
    it(why ? `${name}: ${title} — skipped, ${why}` : `${name}: ${title}`, async function () {
      if (why) this.skip();
      await fn(name);
    });
  }
}

let ncChecked: string | null | undefined;

/** null when OpenBSD netcat (with -N and -q) is installed, else why not. */
export function ncUnavailable(): string | null {
  if (ncChecked === undefined) {
    const r = spawnSync('nc', ['-h'], { encoding: 'utf8' });
    const help = `${r.stdout ?? ''}${r.stderr ?? ''}`;
    ncChecked = r.error ? 'nc is not installed (Debian package netcat-openbsd)' : /OpenBSD netcat/.test(help) ? null : 'nc is not OpenBSD netcat (Debian package netcat-openbsd)';
  }
  return ncChecked;
}

/** Run `nc <args> 127.0.0.1 <port>` with `input` on its stdin, as `printf … | nc -N`
 *  does; resolves with what it printed once it exits. */
export function runNc(args: string[], port: number, input: string | Buffer, timeoutMs = 20000): Promise<Buffer> {
  const child = spawn('nc', [...args, '127.0.0.1', String(port)], { stdio: ['pipe', 'pipe', 'pipe'] });
  return stdoutOf(child, `nc ${args.join(' ')}`, input, timeoutMs);
}
