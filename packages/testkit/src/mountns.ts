// File systems made for one test: a child process started in its own mount namespace
// (util-linux `unshare -m`, needs root) with a tmpfs mounted over a directory — read-only
// (EROFS), or small enough to fill (ENOSPC). Nothing outside the child sees the mount;
// the test reaches it through /proc/<child pid>/root.
import { spawnSync } from 'node:child_process';

let checked: string | null | undefined;

/** null when this machine can run a child in a mount namespace with a tmpfs, else why not. */
export function mountNamespaceUnavailable(): string | null {
  if (checked === undefined) {
    const r = spawnSync('unshare', ['-m', 'sh', '-c', 'mount -t tmpfs -o size=64k none /mnt && umount /mnt'], { encoding: 'utf8' });
    checked = r.error ? 'unshare is not installed (util-linux)' : r.status === 0 ? null : `cannot mount in a mount namespace here (needs root): ${(r.stderr ?? '').trim().split('\n')[0]}`;
  }
  return checked;
}

export interface TmpfsOptions {
  readOnly?: boolean;
  /** tmpfs size, e.g. '256k'. */
  size?: string;
  /** Made in the tmpfs before `argv` runs (mkdir -p). */
  mkdir?: string[];
}

/** The command and arguments that run `argv` with a fresh tmpfs mounted on `dir` (an
 *  existing directory) in a mount namespace of its own. */
export function withTmpfs(dir: string, opts: TmpfsOptions, argv: readonly string[]): { command: string; args: string[] } {
  const mountOpts = [`size=${opts.size ?? '1m'}`, ...(opts.readOnly ? ['ro'] : [])].join(',');
  const dirs = (opts.mkdir ?? []).map((d) => `mkdir -p '${d.replace(/'/g, "'\\''")}' && `).join('');
  const script = `mount -t tmpfs -o ${mountOpts} none "$1" && shift && ${dirs}exec "$@"`;
  return { command: 'unshare', args: ['-m', 'sh', '-c', script, 'sh', dir, ...argv] };
}
