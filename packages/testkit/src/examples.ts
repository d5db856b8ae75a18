// Helpers for the examples' tests (not part of any example: each example folder stays
// copyable on its own). Examples run as real child processes.
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';

import { loadBackend, tryBackend } from '@logcaster/core';

/** The repository root: examples are started from there, as the README does. */
export const ROOT = path.resolve(__dirname, '..', '..', '..', '..');

/** null when the backend can run on this machine, else why not (not installed, unsupported...). */
export function backendUnavailable(name: string): string | null {
  if (name === 'auto') {
    try {
      loadBackend('auto');
      return null;
    } catch (err) {
      return (err as Error).message.split('\n')[0];
    }
  }
  const { attempt } = tryBackend(name as Parameters<typeof tryBackend>[0]);
  return attempt.status === 'loaded' ? null : `${attempt.status}: ${attempt.reason}`;
}

export interface StartedExample {
  child: ChildProcess;
  match: RegExpExecArray;
  output(): string;
}

/**
 * Start `node <dir> ...args` from the repository root; resolves once stdout matches
 * `ready` (the example's listening line). Its stderr is passed through, prefixed with
 * the example's folder name.
 */
export function startExample(dir: string, args: string[], ready: RegExp, timeoutMs = 10000): Promise<StartedExample> {
  const label = path.basename(dir);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [dir, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let started = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${label}: no listening line; stderr: ${err}`));
    }, timeoutMs);
    child.stderr!.on('data', (d: Buffer) => {
      err += d;
      process.stderr.write(`[${label} stderr] ${d}`);
    });
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      const m = ready.exec(out);
      if (m && !started) {
        started = true;
        clearTimeout(timer);
        resolve({ child, match: m, output: () => out });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (!started) reject(new Error(`${label} exited with ${code}: ${err}`));
    });
  });
}

/** SIGTERM; resolves with the exit code (or the signal that ended it). */
export function stop(child: ChildProcess): Promise<number | NodeJS.Signals | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
    child.once('exit', (code, signal) => resolve(code === null ? signal : code));
    child.kill('SIGTERM');
  });
}
