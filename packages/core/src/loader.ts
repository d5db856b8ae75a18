// Finds a backend package: by name, or the best one this machine supports.
import type { BackendModule, BackendName } from './types';

/** 'auto' tries backends in this order: completion I/O first, then O(1) readiness
 *  (epoll on Linux, kqueue on the BSDs), then the portable O(n) ones. */
export const BACKEND_PREFERENCE: readonly BackendName[] = ['iouring', 'epoll', 'kqueue', 'poll', 'select'];
export const BACKEND_NAMES: readonly BackendName[] = ['select', 'poll', 'epoll', 'kqueue', 'iouring'];

export type BackendStatus = 'loaded' | 'not installed' | 'unsupported' | 'failed to load';

export interface BackendAttempt {
  name: BackendName;
  status: BackendStatus;
  /** Human-readable detail: the probe's reason or the real load (dlopen) error. */
  reason: string;
}

export interface LoadedBackend {
  name: BackendName;
  module: BackendModule;
  /** Every backend looked at, in order, with why it was or was not taken. */
  tried: BackendAttempt[];
}

export class BackendUnavailableError extends Error {
  readonly code = 'ERR_LOGCASTER_NO_BACKEND';
  constructor(message: string, readonly tried: BackendAttempt[]) {
    super(message);
  }
}

export function packageName(name: BackendName): string {
  return `@logcaster/backend-${name}`;
}

function isNotInstalled(err: unknown, pkg: string): boolean {
  const e = err as NodeJS.ErrnoException;
  // Only "this package is missing", not a missing file inside an installed package.
  return e?.code === 'MODULE_NOT_FOUND' && typeof e.message === 'string' && e.message.includes(`'${pkg}'`);
}

/** Try one backend without throwing. */
export function tryBackend(name: BackendName): { attempt: BackendAttempt; module?: BackendModule } {
  const pkg = packageName(name);
  let mod: BackendModule;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    mod = require(pkg) as BackendModule;
  } catch (err) {
    if (isNotInstalled(err, pkg)) return { attempt: { name, status: 'not installed', reason: `${pkg} is not installed` } };
    const msg = err instanceof Error ? err.message : String(err);
    return { attempt: { name, status: 'failed to load', reason: msg } };
  }
  let probe;
  try {
    probe = mod.probe();
  } catch (err) {
    return { attempt: { name, status: 'failed to load', reason: `probe() threw: ${(err as Error).message}` } };
  }
  if (!probe.supported) return { attempt: { name, status: 'unsupported', reason: probe.reason } };
  return { attempt: { name, status: 'loaded', reason: 'supported' }, module: mod };
}

/** One line per backend: the first line of each reason (a missing file inside a package
 *  comes with node's require stack; `tried` keeps the whole text). */
function describe(tried: BackendAttempt[]): string {
  return tried.map((t) => `  ${t.name}: ${t.status}${t.status === 'loaded' ? '' : `: ${t.reason.split('\n')[0]}`}`).join('\n');
}

/**
 * Load a backend by name, or 'auto': the first of BACKEND_PREFERENCE that is installed
 * and supported here. Throws BackendUnavailableError listing every attempt and why.
 */
export function loadBackend(name: BackendName | 'auto' = 'auto'): LoadedBackend {
  const order: readonly BackendName[] = name === 'auto' ? BACKEND_PREFERENCE : [name];
  if (name !== 'auto' && !BACKEND_NAMES.includes(name)) {
    throw new BackendUnavailableError(`unknown backend '${name}' (expected one of: auto, ${BACKEND_NAMES.join(', ')})`, []);
  }
  const tried: BackendAttempt[] = [];
  for (const candidate of order) {
    const { attempt, module } = tryBackend(candidate);
    tried.push(attempt);
    if (module) return { name: candidate, module, tried };
  }
  const what = name === 'auto' ? 'no LogCaster backend could be loaded' : `backend '${name}' is not available`;
  throw new BackendUnavailableError(`${what}:\n${describe(tried)}`, tried);
}

/** One line saying which backend was chosen and why the preferred ones were not. */
export function describeChoice(loaded: LoadedBackend): string {
  const skipped = loaded.tried.filter((t) => t.status !== 'loaded').map((t) => `${t.name} ${t.status}: ${t.reason}`);
  return skipped.length ? `${loaded.name} (skipped ${skipped.join('; ')})` : loaded.name;
}
