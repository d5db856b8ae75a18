// Messages between the journal (main thread) and its writer thread (writer-worker.ts).
import type { FsyncPolicy } from './journal';

export interface WriteItem {
  head: Uint8Array;
  sab: SharedArrayBuffer;
  off: number;
  len: number;
}

export type WriterOp =
  | { op: 'open'; segNo: number; path: string; header: Uint8Array | null; size: number }
  | { op: 'write'; segNo: number; pos: number; items: WriteItem[]; lastSeq: number }
  | { op: 'retire'; segNo: number }
  | { op: 'unlink'; paths: string[] }
  | { op: 'writeFile'; path: string; data: Uint8Array }
  | { op: 'close' };

export type WriterEvent =
  | { ev: 'written'; seq: number; msgs: number; fsyncs: number }
  | { ev: 'durable'; seq: number; fsyncs: number }
  | { ev: 'error'; message: string; code: string | undefined }
  | { ev: 'closed'; fsyncs: number };

export interface WriterData {
  dir: string;
  policy: FsyncPolicy;
  intervalMs: number;
  /** Int32 [0]: write messages finished, [1]: 1 once failed. */
  ctl: SharedArrayBuffer;
}

/** Control slots shared with the main thread. */
export const CTL_WRITTEN = 0;
export const CTL_FAILED = 1;
