// The journal's writer thread: everything that touches segment files after open —
// the CRC of each record's bytes, positional writes, fsync, segment creation and
// deletion — so the main thread's cost per ingest turn is one postMessage.
//
// It executes the main thread's operations in order (the main thread decides every
// record's place), reports progress, and, under `always`, runs one fsync per batch of
// writes that arrived while the previous one ran (group commit). A counter in shared
// memory counts finished write messages so the main thread can wait for it when the
// disk falls behind (see Journal.waitWriter).
//
// A full disk (ENOSPC, EDQUOT on a write) is not fatal: the operation is undone, it and
// every later one are kept in order, and they are tried again every `retryMs` until
// they fit (someone freed space, retention deleted a segment). Any other failure, and
// any failed fsync, is fail-stop: after a failed fsync the page cache cannot be trusted.
import * as fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

import { tryBackend } from '@logcaster/core';

import { sealRecord } from './format';
import { DropBehind } from './page-cache';
import { CTL_FAILED, CTL_STALLED, CTL_WRITTEN, WRITE_TABLE_STRIDE, type WriterData, type WriterEvent, type WriterOp } from './writer-protocol';

const IOV_MAX = 1024;

const data = workerData as WriterData;
const ctl = new Int32Array(data.ctl);
const fdsOpen = new Map<number, number>();
/** The store chunks the lines are written from, by the ids the main thread gave them. */
const chunks = new Map<number, SharedArrayBuffer>();
/** File of each open segment, to name it in errors. */
const paths = new Map<number, string>();
/** Finished segments owed an fsync by the next group commit ('always'). */
const retired: number[] = [];
let active = -1;
let dirFd = -1;
let dirDirty = false;
let writtenSeq = 0;
let syncedSeq = 0;
let msgs = 0;
let fsyncs = 0;
let failed = false;
/** Operations waiting for space, oldest first (the first one failed with ENOSPC). */
let stalled: WriterOp[] | null = null;
let retryTimer: NodeJS.Timeout | undefined;
/** Why the oldest kept operation did not fit, last time it was tried. */
let stallError: unknown = null;
let scheduled = false;
let syncing = false;
/** close() waiting for the fsync round in flight. */
const syncWaiters: (() => void)[] = [];
let timer: NodeJS.Timeout | undefined;
const dropBehind = startDropBehind(data.dropBehind);

/** The backend's native calls, if it loads here (it did on the main thread). */
function startDropBehind(opts: WriterData['dropBehind']): DropBehind | null {
  if (opts === undefined) return null;
  const { module } = tryBackend(opts.backend);
  return module === undefined ? null : new DropBehind(module, opts.keepBytes);
}

function post(e: WriterEvent): void {
  parentPort!.postMessage(e);
}

function fail(e: unknown): void {
  if (failed) return;
  failed = true;
  const err = e as NodeJS.ErrnoException;
  Atomics.store(ctl, CTL_FAILED, 1);
  Atomics.notify(ctl, CTL_WRITTEN);
  post({ ev: 'error', message: err.message, code: err.code, path: err.path });
}

/** The disk is full, not broken: what did not fit can be written once space returns. */
function isSpaceError(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** Name the file an fd-based call failed on (Node only names paths it was given). */
function withPath(e: unknown, file: string | undefined): unknown {
  const err = e as NodeJS.ErrnoException;
  if (err instanceof Error && err.path === undefined && file !== undefined) err.path = file;
  return err;
}

/** Run `op`; a full disk keeps it (and everything after it) for a later try. */
function run(op: WriterOp): void {
  if (failed) return countWrite(op);
  if (stalled !== null) {
    stalled.push(op);
    return;
  }
  try {
    handle(op);
  } catch (e) {
    if (!isSpaceError(e)) {
      fail(e);
      return countWrite(op);
    }
    stalled = [op];
    stallError = e;
    const err = e as NodeJS.ErrnoException;
    Atomics.store(ctl, CTL_STALLED, 1);
    Atomics.notify(ctl, CTL_WRITTEN);
    post({ ev: 'stalled', message: err.message, code: err.code, path: err.path, seq: writtenSeq });
    retryTimer = setTimeout(retry, data.retryMs);
    return;
  }
  countWrite(op);
}

/** A write message is finished (done, or given up by fail-stop): the main thread may go on. */
function countWrite(op: WriterOp): void {
  if (op.op !== 'write') return;
  msgs++;
  Atomics.add(ctl, CTL_WRITTEN, 1);
  Atomics.notify(ctl, CTL_WRITTEN);
}

/** Try the kept operations again, in order, as far as they fit. */
function retry(): void {
  retryTimer = undefined;
  const ops = stalled;
  if (ops === null) return;
  while (ops.length > 0 && !failed) {
    try {
      handle(ops[0]);
    } catch (e) {
      if (isSpaceError(e)) {
        stallError = e;
        retryTimer = setTimeout(retry, data.retryMs);
        return;
      }
      fail(e);
    }
    countWrite(ops.shift()!);
  }
  for (const op of ops) countWrite(op); // failed meanwhile: given up
  stalled = null;
  Atomics.store(ctl, CTL_STALLED, 0);
  if (!failed) post({ ev: 'resumed' });
  afterBatch();
}

function buf(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

function doWrite(op: Extract<WriterOp, { op: 'write' }>): void {
  const fd = fdsOpen.get(op.segNo);
  if (fd === undefined) throw new Error(`journal writer: segment ${op.segNo} is not open`);
  for (const id of op.forget) chunks.delete(id);
  for (const c of op.chunks) chunks.set(c.id, c.sab);
  const heads = buf(op.heads);
  const t = op.table;
  const iov: Buffer[] = [];
  for (let i = 0, hoff = 0; i < t.length; i += WRITE_TABLE_STRIDE) {
    const head = heads.subarray(hoff, hoff + t[i]);
    hoff += t[i];
    const sab = chunks.get(t[i + 1]);
    if (sab === undefined) throw new Error(`journal writer: chunk ${t[i + 1]} is not known`);
    const bytes = Buffer.from(sab, t[i + 2], t[i + 3]);
    sealRecord(head, bytes);
    iov.push(head, bytes);
  }
  let pos = op.pos;
  try {
    for (let i = 0; i < iov.length; i += IOV_MAX) {
      const part = iov.slice(i, i + IOV_MAX);
      let want = 0;
      for (const b of part) want += b.length;
      let done = fs.writevSync(fd, part, pos);
      // A short write (rare on files): finish it piece by piece.
      while (done < want) {
        let skip = done;
        for (const b of part) {
          if (skip >= b.length) {
            skip -= b.length;
            continue;
          }
          const n = fs.writeSync(fd, b, skip, b.length - skip, pos + done);
          done += n;
          break;
        }
      }
      pos += want;
    }
  } catch (e) {
    // Leave no torn record behind: cut the file back to where this write began.
    try {
      fs.ftruncateSync(fd, op.pos);
    } catch {
      /* the error below is what matters */
    }
    throw withPath(e, paths.get(op.segNo));
  }
  writtenSeq = op.lastSeq;
  dropBehind?.wrote(op.segNo, pos);
}

/** One fsync round: every finished segment still owed one, the active segment, the
 *  directory if it changed. It runs on this thread's libuv pool, so writes go on while
 *  the disk syncs (a sync of a second of data can take that long again). */
function startSync(): void {
  if (syncing || failed) return;
  const target = writtenSeq;
  const fds = retired.splice(0);
  const fd = fdsOpen.get(active);
  const dir = dirDirty && dirFd >= 0 && data.policy !== 'never';
  if (target <= syncedSeq && fds.length === 0 && !dir) return;
  dirDirty = false;
  syncing = true;
  const all = fd !== undefined ? [...fds, fd] : fds;
  let pending = all.length + (dir ? 1 : 0);
  let err: NodeJS.ErrnoException | null = null;
  const done = (e: NodeJS.ErrnoException | null): void => {
    if (e && err === null) err = e;
    if (--pending > 0) return;
    for (const f of fds) fs.close(f, () => {});
    syncing = false;
    if (err !== null) return fail(err);
    if (target > syncedSeq) syncedSeq = target;
    post({ ev: 'durable', seq: syncedSeq, fsyncs });
    const waiter = syncWaiters.shift();
    if (waiter) waiter();
    else if (retired.length > 0 || (data.policy === 'always' && writtenSeq > syncedSeq)) startSync();
  };
  if (pending === 0) return done(null);
  for (const f of all) {
    fsyncs++;
    fs.fdatasync(f, done);
  }
  if (dir) fs.fsync(dirFd, done);
}

/** After the batch of messages this turn delivered: report, and group-commit. */
function afterBatch(): void {
  scheduled = false;
  if (failed) return;
  post({ ev: 'written', seq: writtenSeq, msgs, fsyncs });
  if (data.policy === 'always' || retired.length > 0) startSync();
  if (data.policy === 'interval' && timer === undefined && (writtenSeq > syncedSeq || dirDirty)) {
    timer = setTimeout(() => {
      timer = undefined;
      startSync();
    }, data.intervalMs);
  }
}

function handle(op: WriterOp): void {
  switch (op.op) {
    case 'open': {
      const fd = fs.openSync(op.path, op.header ? 'wx' : 'r+');
      if (op.header) {
        try {
          fs.writeSync(fd, buf(op.header), 0, op.header.byteLength, 0);
        } catch (e) {
          // Undone, so that trying again (disk full) starts from nothing.
          fs.closeSync(fd);
          fs.rmSync(op.path, { force: true });
          throw withPath(e, op.path);
        }
        dirDirty = true; // made durable with the next fsync round
      }
      fdsOpen.set(op.segNo, fd);
      paths.set(op.segNo, op.path);
      active = op.segNo;
      dropBehind?.opened(op.segNo, fd, op.path, op.size);
      return;
    }
    case 'write':
      doWrite(op);
      return;
    case 'retire': {
      // A finished segment is synced (sync policies) and closed by the next fsync round,
      // started after this batch — not at the next interval, so a small rotate size does
      // not pile up open files.
      const fd = fdsOpen.get(op.segNo);
      fdsOpen.delete(op.segNo);
      paths.delete(op.segNo);
      dropBehind?.retired(op.segNo);
      if (fd === undefined) return;
      if (data.policy === 'never') fs.closeSync(fd);
      else retired.push(fd);
      return;
    }
    case 'drop':
      dropBehind?.dropFile(op.path, op.length);
      return;
    case 'unlink':
      dropBehind?.unlinked(op.paths);
      for (const p of op.paths) {
        try {
          fs.unlinkSync(p);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        }
      }
      dirDirty = true;
      return;
    case 'writeFile': {
      const tmp = `${op.path}.tmp`;
      try {
        fs.writeFileSync(tmp, buf(op.data));
      } catch (e) {
        fs.rmSync(tmp, { force: true });
        throw withPath(e, tmp);
      }
      fs.renameSync(tmp, op.path);
      dirDirty = true;
      return;
    }
    case 'close':
      return;
  }
}

function close(): void {
  if (syncing) {
    syncWaiters.push(close);
    return;
  }
  if (timer !== undefined) clearTimeout(timer);
  if (stalled !== null) {
    // One last try; what still does not fit is lost, and close() rejects with why.
    if (retryTimer !== undefined) clearTimeout(retryTimer);
    retry();
    if (stalled !== null) {
      if (retryTimer !== undefined) clearTimeout(retryTimer);
      const ops: WriterOp[] = stalled;
      stalled = null;
      fail(stallError);
      for (const op of ops) countWrite(op);
    } else if (syncing) {
      syncWaiters.push(close); // the round the written lines started
      return;
    }
  }
  if (!failed) {
    try {
      // the last round, on this thread: everything written is durable before 'closed'
      for (const f of retired) {
        fsyncs++;
        fs.fdatasyncSync(f);
      }
      const fd = fdsOpen.get(active);
      if (fd !== undefined) {
        fsyncs++;
        fs.fsyncSync(fd);
      }
      if (dirDirty && dirFd >= 0) fs.fsyncSync(dirFd);
      syncedSeq = writtenSeq;
    } catch (e) {
      fail(e);
    }
  }
  for (const f of retired.splice(0)) fs.closeSync(f);
  for (const fd of fdsOpen.values()) fs.closeSync(fd);
  fdsOpen.clear();
  if (dirFd >= 0) fs.closeSync(dirFd);
  if (!failed) post({ ev: 'written', seq: writtenSeq, msgs, fsyncs });
  post({ ev: 'closed', fsyncs });
  parentPort!.close();
}

try {
  dirFd = fs.openSync(data.dir, 'r');
} catch {
  dirFd = -1; // platforms without directory fds: no directory fsync
}

parentPort!.on('message', (op: WriterOp) => {
  if (op.op === 'close') return close();
  run(op);
  if (!scheduled) {
    scheduled = true;
    setImmediate(afterBatch);
  }
});
