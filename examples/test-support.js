'use strict';
// Helpers shared by the examples' tests (not part of any example: each example
// folder stays copyable on its own). Examples run as real child processes.
const { spawn } = require('child_process');
const path = require('path');

const ROOT = path.join(__dirname, '..');

/** null when the backend can run on this machine, else why not (not installed, unsupported...). */
function backendUnavailable(name) {
  const { loadBackend, tryBackend } = require('@logcaster/core');
  if (name === 'auto') {
    try {
      loadBackend('auto');
      return null;
    } catch (err) {
      return err.message.split('\n')[0];
    }
  }
  const { attempt } = tryBackend(name);
  return attempt.status === 'loaded' ? null : `${attempt.status}: ${attempt.reason}`;
}

/**
 * Start `node <dir> ...args` from the repository root; resolves { child, match, output() }
 * once stdout matches `ready` (the example's listening line). Its stderr is passed through,
 * prefixed with the example's folder name.
 */
function startExample(dir, args, ready, timeoutMs = 10000) {
  const label = path.basename(dir);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [dir, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let started = false;
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${label}: no listening line; stderr: ${err}`)); }, timeoutMs);
    child.stderr.on('data', (d) => { err += d; process.stderr.write(`[${label} stderr] ${d}`); });
    child.stdout.on('data', (d) => {
      out += d;
      const m = ready.exec(out);
      if (m && !started) {
        started = true;
        clearTimeout(timer);
        resolve({ child, match: m, output: () => out });
      }
    });
    child.on('exit', (code) => { clearTimeout(timer); if (!started) reject(new Error(`${label} exited with ${code}: ${err}`)); });
  });
}

/** SIGTERM; resolves with the exit code (or the signal that ended it). */
function stop(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
    child.once('exit', (code, signal) => resolve(code === null ? signal : code));
    child.kill('SIGTERM');
  });
}

module.exports = { ROOT, backendUnavailable, startExample, stop };
