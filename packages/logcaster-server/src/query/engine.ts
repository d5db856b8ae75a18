// Runs a QuerySpec over a store snapshot and yields the matching entry indexes.
// Queries without a regex scan on the main thread in slices, yielding to the event
// loop between slices so ingestion keeps flowing. Regex queries run in a worker
// thread with a time budget: a pattern that backtracks catastrophically is killed
// (terminate()) and reported, it never stalls the server.
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';

import { IndexList, Matcher, scanRange, type QuerySpec } from './matcher';
import type { WorkerJob, WorkerReply } from './regex-worker';
import type { Snapshot } from '../store/log-store';

export class RegexTimeoutError extends Error {
  constructor(readonly ms: number) {
    super(`regex timed out after ${ms} ms`);
  }
}

export class QueryCancelledError extends Error {
  constructor() {
    super('query cancelled');
  }
}

export interface QueryEngineOptions {
  /** Time budget of one regex query, ms. */
  regexTimeoutMs: number;
  /** Entries tested per main-thread slice before yielding. */
  sliceEntries?: number;
}

interface PendingJob {
  job: WorkerJob;
  resolve: (m: Uint32Array) => void;
  reject: (e: Error) => void;
  cancelled: () => boolean;
}

export class QueryEngine {
  private worker: Worker | undefined;
  private queue: PendingJob[] = [];
  private running: PendingJob | undefined;
  private timer: NodeJS.Timeout | undefined;
  private nextId = 1;
  private closed = false;
  /** Regex queries killed for exceeding the budget. */
  regexTimeouts = 0;
  private readonly slice: number;

  constructor(private readonly options: QueryEngineOptions) {
    this.slice = options.sliceEntries ?? 20000;
  }

  run(snap: Snapshot, spec: QuerySpec, cancelled: () => boolean = () => false): Promise<Uint32Array> {
    if (spec.regex) return this.runInWorker(snap, spec, cancelled);
    return this.runHere(snap, spec, cancelled);
  }

  private runHere(snap: Snapshot, spec: QuerySpec, cancelled: () => boolean): Promise<Uint32Array> {
    const matcher = new Matcher(spec);
    const out = new IndexList();
    return new Promise((resolve, reject) => {
      let i = 0;
      const step = (): void => {
        if (cancelled() || this.closed) {
          reject(new QueryCancelledError());
          return;
        }
        const end = Math.min(snap.count, i + this.slice);
        try {
          scanRange(snap, matcher, i, end, out);
        } catch (e) {
          reject(e as Error);
          return;
        }
        i = end;
        if (i >= snap.count) resolve(out.toArray());
        else setImmediate(step);
      };
      step();
    });
  }

  private runInWorker(snap: Snapshot, spec: QuerySpec, cancelled: () => boolean): Promise<Uint32Array> {
    if (this.closed) return Promise.reject(new QueryCancelledError());
    const job: WorkerJob = {
      id: this.nextId++,
      spec,
      count: snap.count,
      chunks: snap.chunks.map((c) => c.buffer as SharedArrayBuffer),
      chunk: snap.chunk,
      off: snap.off,
      len: snap.len,
      time: snap.time,
    };
    return new Promise((resolve, reject) => {
      this.queue.push({ job, resolve, reject, cancelled });
      this.pump();
    });
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(path.join(__dirname, 'regex-worker.js'));
    w.unref();
    w.on('message', (reply: WorkerReply) => this.onReply(reply));
    w.on('error', (err) => this.onWorkerGone(w, err));
    w.on('exit', () => this.onWorkerGone(w, new Error('regex worker exited')));
    this.worker = w;
    return w;
  }

  private pump(): void {
    while (!this.running && this.queue.length > 0) {
      const next = this.queue.shift()!;
      if (next.cancelled()) {
        next.reject(new QueryCancelledError());
        continue;
      }
      this.running = next;
      const w = this.ensureWorker();
      w.ref();
      w.postMessage(next.job);
      const budget = this.options.regexTimeoutMs;
      this.timer = setTimeout(() => {
        const job = this.running;
        if (!job) return;
        this.regexTimeouts++;
        this.running = undefined;
        this.timer = undefined;
        const dead = this.worker;
        this.worker = undefined;
        if (dead) void dead.terminate();
        job.reject(new RegexTimeoutError(budget));
        this.pump();
      }, budget);
    }
  }

  private onReply(reply: WorkerReply): void {
    const job = this.running;
    if (!job || job.job.id !== reply.id) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.running = undefined;
    this.worker?.unref();
    if ('error' in reply) job.reject(new Error(reply.error));
    else job.resolve(reply.matches);
    this.pump();
  }

  private onWorkerGone(w: Worker, err: Error): void {
    if (this.worker !== w) return; // already replaced (terminated on timeout)
    this.worker = undefined;
    const job = this.running;
    if (job) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.running = undefined;
      job.reject(err);
    }
    this.pump();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    for (const j of this.queue) j.reject(new QueryCancelledError());
    this.queue = [];
    if (this.running) this.running.reject(new QueryCancelledError());
    this.running = undefined;
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
  }
}
