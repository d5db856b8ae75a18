// Helpers for the journal tests (not a test file itself).
import * as fs from 'node:fs';

export function segFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => /^logcaster-\d{12}\.log$/.test(n)).sort();
}

export interface Entry { timeMs: number; peer: string; line: string; seq: number }
