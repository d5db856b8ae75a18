// Scratch directories for tests that use real files.
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
