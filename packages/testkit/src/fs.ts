// Scratch directories for tests that use real files.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** A fresh empty directory under the system temp dir, named after `tag`. */
export function tmpDir(tag = 'test'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `logcaster-${tag}-`));
}

export function rmDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

export interface SmallFilesystem {
  /** An empty directory on a filesystem of the size asked for. */
  dir: string;
  /** Unmount and remove. */
  close(): void;
}

/** A real filesystem that fills up (a tmpfs of `bytes`), for disk-full tests. Returns
 *  the reason instead where this machine cannot mount one (not root, no mount). */
export function smallFilesystem(bytes: number): SmallFilesystem | string {
  const dir = tmpDir('small-fs');
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) {
    rmDir(dir);
    return `cannot mount a ${bytes}-byte tmpfs here: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`;
  }
  return {
    dir,
    close: () => {
      spawnSync('umount', [dir]);
      rmDir(dir);
    },
  };
}
