// Streams query results as NDJSON with backpressure: rows are gathered into ~64 KiB
// writes; a write that returns false waits for onDrain; every 1 MiB the stream yields
// to the event loop so ingestion keeps flowing; a client that goes away stops it.
import type { HttpResponse } from '@logcaster/http';

import type { Snapshot } from '../store/log-store';
import { entryJson } from './entry-json';

const BATCH_CHARS = 64 * 1024;
const TURN_CHARS = 1024 * 1024;

export interface ResultPage {
  /** Matching entry indexes of the snapshot in time order, or undefined for all. */
  matches: Uint32Array | undefined;
  /** Newest first instead of oldest first. */
  newestFirst: boolean;
  /** Rows skipped (in the chosen order) before the first one sent. */
  offset: number;
  /** Rows sent at most. */
  limit: number;
}

export function streamNdjson(res: HttpResponse, snap: Snapshot, page: ResultPage, done: () => void): void {
  const total = page.matches ? page.matches.length : snap.count;
  const start = Math.min(page.offset, total);
  const end = Math.min(total, start + page.limit);
  let pos = start;
  let finished = false;
  const finish = (): void => {
    if (finished) return;
    finished = true;
    res.onDrain = undefined;
    done();
  };
  res.onClose = finish;
  const pump = (): void => {
    let turn = 0;
    while (pos < end && !res.closed) {
      let batch = '';
      while (pos < end && batch.length < BATCH_CHARS) {
        const k = page.newestFirst ? total - 1 - pos : pos;
        batch += `${entryJson(snap, page.matches ? page.matches[k] : k)}\n`;
        pos++;
      }
      turn += batch.length;
      if (!res.write(batch)) return; // onDrain continues
      if (turn >= TURN_CHARS && pos < end) {
        setImmediate(pump);
        return;
      }
    }
    if (!res.closed) res.end();
    finish();
  };
  res.onDrain = pump;
  pump();
}
