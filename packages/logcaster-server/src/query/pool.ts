// The scan worker pool: every scan of a query runs here, split into jobs of about one
// block, so the main thread never scans and ingestion keeps its CPU.
//
// Fairness: the pool serves *owners* (one per client connection). The next free worker
// takes a job of the owner with the fewest jobs running, the longest-unserved one among
// equals — a client that queued a thousand jobs does not delay one that queued one.
//
// A job can still hold a worker for long: a catastrophic regex on one line. When a regex
// job has run for its quantum while another owner waits, the worker is terminated and
// the job goes back to the head of its owner's queue with twice the quantum, up to 8 (so
// a slow but finite job finishes once it is alone or its quantum is large enough); its
// owner's other jobs wait behind it. With 10 clients running `(a+)+$`, another client's
// REGEX waits about one quantum per job ahead of it instead of ten regex budgets.
// Every other job (keywords, time windows, token filters) costs time linear in the bytes
// of its units and runs to its end: killing it would throw that work away, and the
// replacement worker costs a new isolate (tens of MB while the old one is torn down).
//
// An owner may be limited to fewer running jobs than the pool has workers (the token
// filter builder runs one at a time), so that it never holds every worker.
//
// A regex query's *budget* is the wall time during which at least one of its jobs runs;
// when it runs out the running job's worker is terminated and the query fails with
// RegexTimeoutError.
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';

import { QueryCancelledError, RegexTimeoutError } from './result';
import type { ScanJob, ScanReply } from './scan-job';
import type { WorkerRequest, WorkerResponse } from './scan-worker';

export interface PoolOptions {
  /** Worker threads (default: the CPU count, at least 2, at most 8). */
  size?: number;
  /** Nice value the workers give their threads (default 10). */
  nice?: number;
  /** Running time after which a job yields its worker to a waiting owner (default 50 ms). */
  quantumMs?: number;
}

/** Time budget shared by the jobs of one query. */
export class Budget {
  private used = 0;
  private running = 0;
  private since = 0;
  failed: Error | undefined;
  constructor(readonly totalMs: number) {}
  remaining(now: number): number {
    return this.totalMs - this.used - (this.running > 0 ? now - this.since : 0);
  }
  started(now: number): void {
    if (this.running++ === 0) this.since = now;
  }
  stopped(now: number): void {
    if (--this.running === 0) this.used += now - this.since;
  }
}

export interface SubmitOptions {
  budget?: Budget;
  cancelled?: () => boolean;
  /** The most jobs of this owner that run at once (default: every worker). The first
   *  submit of an owner sets it. */
  maxRunning?: number;
}

interface Task {
  owner: object;
  job: ScanJob;
  budget: Budget | undefined;
  cancelled: () => boolean;
  quantum: number;
  resolve: (r: ScanReply) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker | undefined;
  task: Task | undefined;
  taskId: number;
  startedAt: number;
  timer: NodeJS.Timeout | undefined;
}

interface OwnerState {
  queue: Task[];
  running: number;
  maxRunning: number;
  lastServed: number;
}

const SCRIPT = path.join(__dirname, 'scan-worker.js');
/** A preempted job's quantum doubles up to this many base quanta: slow but finite jobs
 *  get through, and a waiting client is never held longer than that. */
const MAX_QUANTUM_GROWTH = 8;

/** Whether a job may run without bound (a regex can backtrack catastrophically). */
function preemptible(job: ScanJob): boolean {
  return job.kind !== 'filter' && job.spec.regex !== undefined;
}

export class ScanPool {
  readonly size: number;
  private readonly nice: number;
  private readonly quantumMs: number;
  private readonly slots: Slot[];
  private readonly owners = new Map<object, OwnerState>();
  private served = 0;
  private nextId = 1;
  private closed = false;
  /** Jobs stopped to let another owner run, and regex budgets that ran out. */
  preemptions = 0;
  timeouts = 0;

  constructor(options: PoolOptions = {}) {
    const cpus = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
    this.size = options.size ?? Math.min(8, Math.max(2, cpus));
    this.nice = options.nice ?? 10;
    this.quantumMs = options.quantumMs ?? 50;
    this.slots = Array.from({ length: this.size }, () => ({ worker: undefined, task: undefined, taskId: 0, startedAt: 0, timer: undefined }));
  }

  submit(owner: object, job: ScanJob, opts: SubmitOptions = {}): Promise<ScanReply> {
    if (this.closed) return Promise.reject(new QueryCancelledError());
    return new Promise((resolve, reject) => {
      let st = this.owners.get(owner);
      if (st === undefined) {
        st = { queue: [], running: 0, maxRunning: opts.maxRunning ?? Infinity, lastServed: -1 };
        this.owners.set(owner, st);
      }
      st.queue.push({ owner, job, budget: opts.budget, cancelled: opts.cancelled ?? (() => false), quantum: this.quantumMs, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (slot.task !== undefined) continue;
      const task = this.pick();
      if (task === undefined) return;
      this.start(slot, task);
    }
  }

  /** The next job: of the owner with the fewest running jobs, least recently served. */
  private pick(): Task | undefined {
    for (;;) {
      let best: OwnerState | undefined;
      for (const st of this.owners.values()) {
        if (st.queue.length === 0 || st.running >= st.maxRunning) continue;
        if (best === undefined || st.running < best.running || (st.running === best.running && st.lastServed < best.lastServed)) best = st;
      }
      if (best === undefined) return undefined;
      const task = best.queue.shift()!;
      const dropped = task.cancelled() ? new QueryCancelledError() : task.budget?.failed;
      if (dropped !== undefined) {
        task.reject(dropped);
        this.forget(task.owner, best);
        continue;
      }
      best.lastServed = this.served++;
      return task;
    }
  }

  private forget(owner: object, st: OwnerState): void {
    if (st.queue.length === 0 && st.running === 0) this.owners.delete(owner);
  }

  private othersWaiting(owner: object): boolean {
    for (const [o, st] of this.owners) if (o !== owner && st.queue.length > 0 && st.running < st.maxRunning) return true;
    return false;
  }

  private worker(slot: Slot): Worker {
    if (slot.worker !== undefined) return slot.worker;
    const w = new Worker(SCRIPT, { workerData: { nice: this.nice }, resourceLimits: { maxYoungGenerationSizeMb: 8 } });
    w.unref();
    w.on('message', (res: WorkerResponse) => this.onMessage(slot, w, res));
    w.on('error', (err) => this.onGone(slot, w, err));
    w.on('exit', () => this.onGone(slot, w, new Error('scan worker exited')));
    slot.worker = w;
    return w;
  }

  private start(slot: Slot, task: Task): void {
    this.owners.get(task.owner)!.running++;
    const now = Date.now();
    slot.task = task;
    slot.taskId = this.nextId++;
    slot.startedAt = now;
    task.budget?.started(now);
    const w = this.worker(slot);
    w.ref();
    w.postMessage({ id: slot.taskId, job: task.job } satisfies WorkerRequest);
    this.arm(slot, now);
  }

  private arm(slot: Slot, now: number): void {
    const task = slot.task!;
    let wait = Math.max(1, slot.startedAt + task.quantum - now);
    if (task.budget) wait = Math.min(wait, Math.max(1, task.budget.remaining(now)));
    slot.timer = setTimeout(() => this.onTimer(slot), wait);
    slot.timer.unref();
  }

  private onTimer(slot: Slot): void {
    slot.timer = undefined;
    const task = slot.task;
    if (task === undefined) return;
    const now = Date.now();
    if (task.budget && task.budget.remaining(now) <= 0) {
      this.timeouts++;
      const err = new RegexTimeoutError(task.budget.totalMs);
      task.budget.failed = err;
      this.stop(slot, now);
      task.reject(err);
      this.dispatch();
      return;
    }
    if (preemptible(task.job) && now - slot.startedAt >= task.quantum && this.othersWaiting(task.owner)) {
      this.preemptions++;
      this.stop(slot, now);
      task.quantum = Math.min(task.quantum * 2, this.quantumMs * MAX_QUANTUM_GROWTH);
      const st = this.owners.get(task.owner) ?? { queue: [], running: 0, maxRunning: Infinity, lastServed: this.served };
      this.owners.set(task.owner, st);
      st.queue.unshift(task);
      this.dispatch();
      return;
    }
    this.arm(slot, now);
  }

  /** Take the running task off the slot and kill its worker. */
  private stop(slot: Slot, now: number): void {
    const task = slot.task!;
    this.release(slot, task, now);
    const w = slot.worker;
    slot.worker = undefined;
    if (w) void w.terminate();
  }

  private release(slot: Slot, task: Task, now: number): void {
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = undefined;
    slot.task = undefined;
    task.budget?.stopped(now);
    const st = this.owners.get(task.owner);
    if (st) {
      st.running--;
      this.forget(task.owner, st);
    }
    slot.worker?.unref();
  }

  private onMessage(slot: Slot, w: Worker, res: WorkerResponse): void {
    if (slot.worker !== w || slot.task === undefined || res.id !== slot.taskId) return;
    const task = slot.task;
    this.release(slot, task, Date.now());
    if ('error' in res) task.reject(new Error(res.error));
    else task.resolve(res.reply);
    this.dispatch();
  }

  private onGone(slot: Slot, w: Worker, err: Error): void {
    if (slot.worker !== w) return; // already replaced (terminated on purpose)
    slot.worker = undefined;
    const task = slot.task;
    if (task) {
      this.release(slot, task, Date.now());
      task.reject(err);
    }
    this.dispatch();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const st of this.owners.values()) for (const t of st.queue.splice(0)) t.reject(new QueryCancelledError());
    const workers: Worker[] = [];
    for (const slot of this.slots) {
      const task = slot.task;
      if (task) {
        this.release(slot, task, Date.now());
        task.reject(new QueryCancelledError());
      }
      if (slot.worker) workers.push(slot.worker);
      slot.worker = undefined;
    }
    this.owners.clear();
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
