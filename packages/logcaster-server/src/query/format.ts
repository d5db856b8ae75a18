// Output formatting of the query port.

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** "YYYY-MM-DD HH:MM:SS" in local time (like the original LogCaster's localtime())
 *  or in UTC. */
export function formatTimestamp(ms: number, utc = false): string {
  const d = new Date(ms);
  if (utc) {
    return `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())} ${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}`;
  }
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

/** Formats "[YYYY-MM-DD HH:MM:SS] " prefixes as bytes, caching the last second. */
export class PrefixCache {
  private second = NaN;
  private bytes: Buffer = Buffer.alloc(0);
  constructor(private readonly utc: boolean) {}
  get(ms: number): Buffer {
    const s = Math.floor(ms / 1000);
    if (s !== this.second) {
      this.second = s;
      this.bytes = Buffer.from(`[${formatTimestamp(s * 1000, this.utc)}] `, 'latin1');
    }
    return this.bytes;
  }
}
