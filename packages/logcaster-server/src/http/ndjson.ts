// Streams a query result as NDJSON with backpressure: batches are pulled from the
// result only while the client takes more (write() returning false waits for onDrain),
// the stream yields to the event loop every 1 MiB so ingestion keeps flowing, and a
// client that goes away releases the result.
import type { HttpResponse } from '@logcaster/http';

import { QueryCancelledError, type EntryBatch, type QueryResult } from '../query/result';
import { entryJson } from './entry-json';

const TURN_CHARS = 1024 * 1024;

export interface Page {
  /** Entries of the result skipped before the first row sent (in the result's order). */
  skip: number;
  /** Rows sent at most. */
  limit: number;
  /** Send the page newest first (the rows are gathered, then reversed: limit stays small). */
  reverse: boolean;
}

export function streamNdjson(res: HttpResponse, result: QueryResult, page: Page, done: (err?: Error) => void): void {
  let skip = page.skip;
  let left = page.limit;
  const gathered: string[] = [];
  let pulling = false;
  let finished = false;
  const finish = (err?: Error): void => {
    if (finished) return;
    finished = true;
    result.close();
    res.onDrain = undefined;
    done(err);
  };
  res.onClose = () => finish();
  const take = (b: EntryBatch): string => {
    let text = '';
    let i = Math.min(skip, b.length);
    skip -= i;
    for (; i < b.length && left > 0; i++, left--) {
      if (page.reverse) gathered.push(entryJson(b, i));
      else text += `${entryJson(b, i)}\n`;
    }
    return text;
  };
  const pump = async (): Promise<void> => {
    if (pulling || finished) return;
    pulling = true;
    try {
      let turn = 0;
      while (left > 0 && !res.closed) {
        const b = await result.next();
        if (b.length === 0) break;
        const text = take(b);
        turn += text.length;
        if (text !== '' && !res.write(text)) return; // onDrain pulls on
        if (turn >= TURN_CHARS) {
          turn = 0;
          await new Promise((r) => setImmediate(r));
        }
      }
      if (!res.closed) res.end(page.reverse ? gathered.reverse().map((r) => `${r}\n`).join('') : undefined);
      finish();
    } catch (e) {
      // The head (200) is out: a broken stream can only be cut short.
      if (!(e instanceof QueryCancelledError) && !res.closed) res.end();
      finish(e instanceof QueryCancelledError ? undefined : (e as Error));
    } finally {
      pulling = false;
    }
  };
  res.onDrain = () => void pump();
  void pump();
}
