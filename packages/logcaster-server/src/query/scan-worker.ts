// A scan worker thread: runs ScanJobs (scan-job.ts) over shared memory and replies.
// It lowers its own thread's CPU priority, so that on a busy machine a long scan takes
// the CPU ingestion leaves over instead of competing with it. A job that runs too long
// (a catastrophic regex) is stopped by the pool terminating the whole thread.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';

import { runJob, type ScanJob } from './scan-job';

export interface WorkerRequest {
  id: number;
  job: ScanJob;
}

export type WorkerResponse = { id: number; reply: ReturnType<typeof runJob> } | { id: number; error: string };

/** Linux: /proc/thread-self names this thread's id, which setpriority accepts. */
function lowerPriority(nice: number): void {
  try {
    const tid = Number(fs.readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) os.setPriority(tid, nice);
  } catch {
    /* not Linux: the worker keeps the process's priority */
  }
}

const nice = (workerData as { nice?: number } | undefined)?.nice ?? 0;
if (nice > 0) lowerPriority(nice);

parentPort?.on('message', (req: WorkerRequest) => {
  let res: WorkerResponse;
  try {
    res = { id: req.id, reply: runJob(req.job) };
  } catch (e) {
    parentPort!.postMessage({ id: req.id, error: (e as Error).message } satisfies WorkerResponse);
    return;
  }
  const transfer: ArrayBuffer[] = [];
  if (res.reply.kind === 'extract') {
    const b = res.reply.batch;
    for (const a of [b.bytes, b.start, b.end, b.time, b.peer]) {
      if (a.buffer instanceof ArrayBuffer && !transfer.includes(a.buffer)) transfer.push(a.buffer);
    }
  }
  parentPort!.postMessage(res, transfer);
});
