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

/** Bytes an unprivileged writer may still put on the filesystem of `dir`. */
export function freeBytes(dir: string): number {
  const s = fs.statfsSync(dir);
  return s.bavail * s.bsize;
}

/** Fill the filesystem of `dir` with one file (`<dir>/filler`, returned), leaving about
 *  `leave` bytes free (0: until ENOSPC). Removing the file gives the space back. */
export function fillFilesystem(dir: string, leave = 0): string {
  const file = path.join(dir, 'filler');
  const fd = fs.openSync(file, 'a');
  try {
    const chunk = Buffer.alloc(64 * 1024, 'x');
    for (let want = freeBytes(dir) - leave; want > 0; want -= chunk.length) {
      try {
        fs.writeSync(fd, chunk, 0, Math.min(chunk.length, want));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break;
        throw e;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return file;
}

/** Why page-cache residency cannot be observed here (fincore(1) reads it), or null. */
export function pageCacheUnobservable(): string | null {
  if (process.platform !== 'linux') return `page-cache advice is Linux-only here, not ${process.platform}`;
  if (spawnSync('fincore', ['--version']).error) return 'fincore(1) is not installed (Debian: util-linux-extra)';
  return null;
}

/** Bytes of `file` in the page cache, as fincore(1) counts them. */
export function cachedBytes(file: string): number {
  const r = spawnSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`fincore ${file}: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`);
  return Number(r.stdout.trim());
}
