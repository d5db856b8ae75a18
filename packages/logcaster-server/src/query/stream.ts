// Streams a QueryResult to a client in the query port's format ("[YYYY-MM-DD HH:MM:SS]
// <line>" per entry), pulling the next batch only while the connection takes more:
// write() returning false stops the stream until pump() is called again from onDrain.
// Long answers also yield to the event loop every megabyte, so other clients and
// ingestion keep being served.
import { PrefixCache } from './format';
import { QueryCancelledError, type EntryBatch, type QueryResult } from './result';

/** Where answers go: a reactor Connection fits. */
export interface AnswerSink {
  write(data: Buffer): boolean;
  readonly closed: boolean;
}

const NL = 10;
const CR = 13;
const SPACE = 32;
const OUT_BYTES = 64 * 1024;
const TURN_BYTES = 1024 * 1024;

/** Appends "[stamp] line\n" per entry to `out` (one entry is one output line: line
 *  breaks inside an entry become spaces). */
export function formatEntries(b: EntryBatch, prefix: PrefixCache, emit: (chunk: Buffer) => void): void {
  let out = Buffer.allocUnsafe(OUT_BYTES);
  let used = 0;
  for (let i = 0; i < b.length; i++) {
    const pre = prefix.get(b.time[i]);
    const s = b.start[i];
    const e = b.end[i];
    const need = pre.length + (e - s) + 1;
    if (used + need > out.length) {
      if (used > 0) emit(out.subarray(0, used));
      out = Buffer.allocUnsafe(Math.max(OUT_BYTES, need));
      used = 0;
    }
    pre.copy(out, used);
    used += pre.length;
    const lineAt = used;
    b.bytes.copy(out, used, s, e);
    used += e - s;
    for (let k = out.indexOf(NL, lineAt); k >= 0 && k < used; k = out.indexOf(NL, k + 1)) out[k] = SPACE;
    for (let k = out.indexOf(CR, lineAt); k >= 0 && k < used; k = out.indexOf(CR, k + 1)) out[k] = SPACE;
    out[used++] = NL;
  }
  if (used > 0) emit(out.subarray(0, used));
}

export class ResultStreamer {
  private readonly prefix: PrefixCache;
  private running = false;
  private blocked = false;
  private stopped = false;
  private finished = false;

  /** `done(err)` runs once: after the last entry was written and the sink drained, or
   *  with the error that ended the stream early (the stream does not write it). */
  constructor(
    private readonly result: QueryResult,
    private readonly sink: AnswerSink,
    utc: boolean,
    private readonly done: (err?: Error) => void,
  ) {
    this.prefix = new PrefixCache(utc);
  }

  /** Start, or continue after the sink drained. */
  pump(): void {
    this.blocked = false;
    if (this.finished && !this.stopped) {
      this.stopped = true;
      this.done();
      return;
    }
    if (!this.running && !this.stopped) void this.loop();
  }

  /** The client is gone: release the result. */
  stop(): void {
    this.stopped = true;
    this.result.close();
  }

  private async loop(): Promise<void> {
    this.running = true;
    let turnBytes = 0;
    try {
      while (!this.stopped && !this.blocked && !this.sink.closed) {
        if (turnBytes >= TURN_BYTES) {
          await new Promise<void>((r) => setImmediate(r));
          turnBytes = 0;
          continue;
        }
        const batch = await this.result.next();
        if (this.stopped || this.sink.closed) break;
        if (batch.length === 0) {
          this.finished = true;
          break;
        }
        formatEntries(batch, this.prefix, (chunk) => {
          turnBytes += chunk.length;
          if (!this.sink.write(chunk)) this.blocked = true;
        });
      }
    } catch (e) {
      this.running = false;
      if (this.stopped) return;
      this.stopped = true;
      this.result.close();
      if (!(e instanceof QueryCancelledError)) this.done(e as Error);
      return;
    }
    this.running = false;
    if (this.finished && !this.blocked && !this.stopped) {
      this.stopped = true;
      this.done();
    }
  }
}
