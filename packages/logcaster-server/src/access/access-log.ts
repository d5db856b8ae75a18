// The CLI's log of access events on stderr: failed AUTH attempts and connections
// refused by an allow list. A flood (a scanner, a brute force from many addresses) gets
// one line per kind per second, and the lines it did not get are counted in the next.
import type { AccessEvent } from './config';

const WINDOW_MS = 1000;

export function accessLogger(write: (line: string) => void): (e: AccessEvent) => void {
  const kinds = new Map<string, { lastAt: number; suppressed: number; timer: NodeJS.Timeout | undefined }>();
  const flush = (key: string): void => {
    const k = kinds.get(key)!;
    k.timer = undefined;
    if (k.suppressed === 0) return;
    write(`${k.suppressed} more ${key} in the last second`);
    k.suppressed = 0;
    k.lastAt = Date.now();
  };
  return (e) => {
    const key = e.kind === 'auth-failed' ? 'failed query AUTH attempts' : `${e.port} connections refused by the allow list`;
    let k = kinds.get(key);
    if (!k) kinds.set(key, (k = { lastAt: 0, suppressed: 0, timer: undefined }));
    const now = Date.now();
    if (now - k.lastAt < WINDOW_MS) {
      k.suppressed++;
      if (!k.timer) k.timer = setTimeout(() => flush(key), WINDOW_MS - (now - k.lastAt)).unref();
      return;
    }
    k.lastAt = now;
    write(
      e.kind === 'auth-failed'
        ? `query AUTH failed from ${e.address} (${e.failures} recent failure${e.failures === 1 ? '' : 's'} from there; further attempts are slowed down)`
        : `${e.port} connection from ${e.address ?? 'an unknown address'} refused: not in --${e.port === 'ingest' ? 'allow' : 'query-allow'}`,
    );
  };
}
