// The data directory: created with the real reason when it cannot be, and owned by one
// server at a time (a lock file naming the owner's pid).
//
// Two servers on one directory destroyed each other's journal (each applied its own
// --max-files to the other's segments). The lock is a file, `logcaster.lock`, holding
// "<pid> <start time>": written completely under a temporary name, then linked into
// place, so it exists whole or not at all. A lock whose process is gone (kill -9, a
// crash) is stale and taken over; the start time (from /proc, where there is one) tells
// a recycled pid from the owner. On a full disk, where even those few bytes find no
// block, the lock is a symbolic link whose target is that text (kept in the inode, as
// Emacs does for its lock files), so a server still starts and serves what is stored.
import * as fs from 'node:fs';
import * as path from 'node:path';

export const LOCK_FILE = 'logcaster.lock';

/** Lock files this process holds: for a lock naming our own pid, this (not the start
 *  time) says whether it is another server of this process or a stale one. */
const heldHere = new Set<string>();

/** The data directory cannot be used (it cannot be created, is not a directory...). */
export class DataDirError extends Error {
  constructor(
    readonly dir: string,
    override readonly cause: NodeJS.ErrnoException | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'DataDirError';
  }
}

/** Another live process owns the data directory. */
export class DataDirLockedError extends Error {
  readonly code = 'ELOCKED';
  constructor(
    readonly dir: string,
    readonly pid: number,
  ) {
    super(`data dir ${dir} is in use by another LogCaster (pid ${pid}${pid === process.pid ? ', this process' : ''}); stop it first or choose another --data-dir`);
    this.name = 'DataDirLockedError';
  }
}

function errno(e: unknown): NodeJS.ErrnoException | undefined {
  return e instanceof Error && 'code' in e ? (e as NodeJS.ErrnoException) : undefined;
}

/** Create `dir` and its missing parents one level at a time: fs.mkdirSync(recursive)
 *  loops forever under /proc and reports ENOENT for a read-only file system. */
export function ensureDir(dir: string): void {
  const missing: string[] = [];
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    let st: fs.Stats;
    try {
      st = fs.statSync(d);
    } catch (e) {
      if (errno(e)?.code !== 'ENOENT' || path.dirname(d) === d) throw new DataDirError(dir, errno(e), `cannot use data dir ${dir}: ${(e as Error).message}`);
      missing.push(d);
      continue;
    }
    if (!st.isDirectory()) throw new DataDirError(dir, undefined, `cannot use data dir ${dir}: ${d} is not a directory`);
    break;
  }
  for (let i = missing.length - 1; i >= 0; i--) {
    try {
      fs.mkdirSync(missing[i]);
    } catch (e) {
      if (errno(e)?.code === 'EEXIST') continue; // made meanwhile
      throw new DataDirError(dir, errno(e), `cannot create data dir ${dir}: ${(e as Error).message}`);
    }
  }
}

/** Start time of `pid` in clock ticks since boot (field 22 of /proc/<pid>/stat), or
 *  undefined where /proc does not say. */
function startTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function alive(pid: number, start: string | undefined): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if (errno(e)?.code !== 'EPERM') return false; // ESRCH: gone
  }
  const now = startTime(pid);
  return start === undefined || now === undefined || now === start;
}

interface Owner {
  pid: number;
  start: string | undefined;
  text: string;
}

function readOwner(file: string): Owner | undefined {
  let text: string;
  try {
    text = fs.readlinkSync(file, 'utf8'); // the lock taken on a full disk
  } catch (e) {
    if (errno(e)?.code === 'ENOENT') return undefined;
    if (errno(e)?.code !== 'EINVAL') throw e;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e2) {
      if (errno(e2)?.code === 'ENOENT') return undefined;
      throw e2;
    }
  }
  const [pid, start] = text.trim().split(/\s+/);
  return { pid: Number(pid), start: start === '' ? undefined : start, text };
}

export class DataDirLock {
  private released = false;

  private constructor(
    readonly dir: string,
    private readonly file: string,
    private readonly content: string,
  ) {}

  /** Create the directory if needed and take its lock. Throws DataDirLockedError when a
   *  live process holds it, DataDirError when the directory cannot be used. */
  static acquire(dir: string): DataDirLock {
    ensureDir(dir);
    const file = path.join(dir, LOCK_FILE);
    let content = `${process.pid} ${startTime(process.pid) ?? ''}\n`;
    const tmp = path.join(dir, `${LOCK_FILE}.${process.pid}.tmp`);
    let asLink = false;
    try {
      fs.writeFileSync(tmp, content, { mode: 0o644 });
    } catch (e) {
      const code = errno(e)?.code;
      if (code !== 'ENOSPC' && code !== 'EDQUOT') throw new DataDirError(dir, errno(e), `cannot write in data dir ${dir}: ${(e as Error).message}`);
      fs.rmSync(tmp, { force: true });
      asLink = true;
      content = content.trim();
    }
    try {
      for (let attempt = 0; attempt < 5; attempt++) {
        try {
          if (asLink) fs.symlinkSync(content, file);
          else fs.linkSync(tmp, file);
          heldHere.add(file);
          return new DataDirLock(dir, file, content);
        } catch (e) {
          if (errno(e)?.code !== 'EEXIST') throw new DataDirError(dir, errno(e), `cannot lock data dir ${dir}: ${(e as Error).message}`);
        }
        const owner = readOwner(file);
        if (owner === undefined) continue; // released meanwhile
        const live = owner.pid === process.pid ? heldHere.has(file) : Number.isInteger(owner.pid) && owner.pid > 0 && alive(owner.pid, owner.start);
        if (live) throw new DataDirLockedError(dir, owner.pid);
        DataDirLock.removeStale(file, owner);
      }
      throw new DataDirError(dir, undefined, `cannot lock data dir ${dir}: the lock keeps changing hands`);
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }

  /** Remove a stale lock — only if it is still the one judged stale (another starting
   *  server may have replaced it meanwhile). */
  private static removeStale(file: string, stale: Owner): void {
    const aside = `${file}.stale.${process.pid}`;
    try {
      fs.renameSync(file, aside);
    } catch (e) {
      if (errno(e)?.code === 'ENOENT') return;
      throw e;
    }
    const moved = readOwner(aside);
    if (moved !== undefined && moved.text !== stale.text) {
      // Not the stale one: put it back unless someone has taken the name again.
      try {
        fs.linkSync(aside, file);
      } catch {
        /* a newer lock is in place; that one decides */
      }
    }
    fs.rmSync(aside, { force: true });
  }

  /** Give the directory up (only our own lock is removed). */
  release(): void {
    if (this.released) return;
    this.released = true;
    heldHere.delete(this.file);
    if (readOwner(this.file)?.text === this.content) fs.rmSync(this.file, { force: true });
  }
}
