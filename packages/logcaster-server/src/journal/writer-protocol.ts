// Messages between the journal (main thread) and its writer thread (writer-worker.ts).
import type { BackendName } from '@logcaster/core';

import type { FsyncPolicy } from './journal';

/** A write message's `table`: per record, its head's length in `heads`, then the id of the
 *  chunk holding its data, the data's offset in that chunk and its length. */
export const WRITE_TABLE_STRIDE = 4;

export type WriterOp =
  | { op: 'open'; segNo: number; path: string; header: Uint8Array | null; size: number }
  | {
      op: 'write';
      segNo: number;
      pos: number;
      lastSeq: number;
      /** The records' heads back to back (CRC fields 0: the writer seals them). */
      heads: Uint8Array;
      table: Float64Array;
      /** Chunks the writer does not hold yet; `forget`: ids it may drop. */
      chunks: Array<{ id: number; sab: SharedArrayBuffer }>;
      forget: number[];
    }
  | { op: 'retire'; segNo: number }
  /** A finished segment was read back (its token filter built): it leaves the page
   *  cache again (drop-behind only). */
  | { op: 'drop'; path: string; length: number }
  | { op: 'unlink'; paths: string[] }
  | { op: 'writeFile'; path: string; data: Uint8Array }
  | { op: 'close' };

export type WriterEvent =
  | { ev: 'written'; seq: number; msgs: number; fsyncs: number }
  | { ev: 'durable'; seq: number; fsyncs: number }
  | { ev: 'error'; message: string; code: string | undefined; path: string | undefined }
  /** A write found the disk full (ENOSPC, EDQUOT): the writer keeps every later operation
   *  and retries until it fits; `seq` is the last line written before it. */
  | { ev: 'stalled'; message: string; code: string | undefined; path: string | undefined; seq: number }
  | { ev: 'resumed' }
  | { ev: 'closed'; fsyncs: number };

export interface WriterData {
  dir: string;
  policy: FsyncPolicy;
  intervalMs: number;
  /** How often a write stalled on a full disk is tried again. */
  retryMs: number;
  /** Page-cache drop-behind (JournalOptions.dropBehind). */
  dropBehind: { backend: BackendName; keepBytes: number } | undefined;
  /** Int32 [0]: write messages finished, [1]: 1 once failed, [2]: 1 while stalled. */
  ctl: SharedArrayBuffer;
}

/** Control slots shared with the main thread. */
export const CTL_WRITTEN = 0;
export const CTL_FAILED = 1;
export const CTL_STALLED = 2;
