// Drop-behind for the journal's writer thread: a finished segment leaves the page cache
// once `keepBytes` newer bytes were written after it, and again after the token filter
// builder read it back (dropFile).
//
// Why: each byte the journal writes lands in a new page-cache page. On virtual machines
// whose free memory goes back to the host, a new page costs a host fault, and buffered
// writes into a growing cache cost the writer about a core at 250 MB/s (perf: the
// kernel's copy into fresh pages). Dropped pages are reused by the next writes, which
// then cost a copy. The builder reads a segment seconds later, when a core is spare
// (engine.ts): holding the segment cached for it meant, under ingest that never let
// up, gigabytes of fresh cache on the writer's path (30 % more writer CPU per line,
// measured); its own read back from disk costs the spare core instead. Queries read
// older segments back through the page cache as any reader would and leave them there.
import * as fs from 'node:fs';

import type { BackendModule } from '@logcaster/core';

/** The two calls of the native engine this needs (every backend exports them). */
export type PageCacheAdvice = Pick<BackendModule, 'startWriteback' | 'dropFromPageCache'>;

/** Writeback is started per STEP bytes written, one step behind the end: the disk
 *  writes as the journal goes rather than all at the next fsync, and a drop finds the
 *  pages clean. */
const STEP = 8 * 1024 * 1024;

interface TrackedFile {
  readonly path: string;
  /** null once retired (the writer closes the fd): the drop opens the path again */
  fd: number | null;
  /** bytes the journal wrote before this file's first byte */
  readonly base: number;
  end: number;
  /** writeback asked for [0, queued) */
  queued: number;
}

export class DropBehind {
  /** oldest first */
  private readonly files = new Map<number, TrackedFile>();
  /** bytes written over all files (existing bytes of a reopened segment included) */
  private total = 0;

  constructor(
    private readonly advice: PageCacheAdvice,
    private readonly keepBytes: number,
  ) {}

  opened(segNo: number, fd: number, path: string, size: number): void {
    this.files.set(segNo, { path, fd, base: this.total, end: size, queued: size });
    this.total += size;
  }

  /** The file now holds `end` bytes. */
  wrote(segNo: number, end: number): void {
    const f = this.files.get(segNo);
    if (f === undefined || f.fd === null || end <= f.end) return;
    this.total += end - f.end;
    f.end = end;
    while (f.end - f.queued >= 2 * STEP) {
      this.advice.startWriteback(f.fd, f.queued, STEP);
      f.queued += STEP;
    }
    this.dropOld();
  }

  /** The segment is finished (the writer closes its fd). */
  retired(segNo: number): void {
    const f = this.files.get(segNo);
    if (f === undefined) return;
    f.fd = null;
    this.dropOld();
  }

  unlinked(paths: readonly string[]): void {
    for (const [no, f] of this.files) if (paths.includes(f.path)) this.files.delete(no);
  }

  private dropOld(): void {
    for (const [no, f] of this.files) {
      if (f.fd !== null || this.total - (f.base + f.end) < this.keepBytes) return; // active, or too new
      this.files.delete(no);
      this.dropFile(f.path, f.end);
    }
  }

  /** Drops file[0, length) from the page cache (a finished file, read back by someone). */
  dropFile(path: string, length: number): void {
    let fd: number;
    try {
      fd = fs.openSync(path, 'r');
    } catch {
      return; // deleted meanwhile: nothing left to drop
    }
    try {
      this.advice.dropFromPageCache(fd, 0, length);
    } finally {
      fs.closeSync(fd);
    }
  }
}
