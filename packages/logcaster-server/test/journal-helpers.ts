// Shared helpers for the journal tests (not a test file itself).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export function tmpDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `lcj-${tag}-`));
}

export function rmDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

export function segFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => /^logcaster-\d{12}\.log$/.test(n)).sort();
}

export interface Entry { timeMs: number; peer: string; line: string; seq: number }

export function nextTurn(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
