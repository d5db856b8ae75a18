// Worker thread that runs regex queries over a store snapshot (shared memory, no
// copy). Runs in its own isolate so a catastrophic pattern cannot stall ingestion;
// the main thread terminates it when the time budget runs out.
import { parentPort } from 'node:worker_threads';

import { IndexList, Matcher, scanRange, type QuerySpec } from './matcher';
import type { Snapshot } from '../store/log-store';

export interface WorkerJob {
  id: number;
  spec: QuerySpec;
  count: number;
  chunks: SharedArrayBuffer[];
  chunk: Uint32Array;
  off: Uint32Array;
  len: Uint32Array;
  time: Float64Array;
}

export type WorkerReply = { id: number; matches: Uint32Array } | { id: number; error: string };

parentPort?.on('message', (job: WorkerJob) => {
  try {
    const snap: Snapshot = {
      count: job.count,
      firstSeq: 0,
      chunks: job.chunks.map((sab) => Buffer.from(sab)),
      chunk: job.chunk,
      off: job.off,
      len: job.len,
      time: job.time,
      peer: new Uint32Array(0),
      peers: [],
    };
    const out = new IndexList();
    scanRange(snap, new Matcher(job.spec), 0, job.count, out);
    const matches = out.toArray().slice();
    const reply: WorkerReply = { id: job.id, matches };
    parentPort!.postMessage(reply, [matches.buffer]);
  } catch (e) {
    parentPort!.postMessage({ id: job.id, error: (e as Error).message } satisfies WorkerReply);
  }
});
