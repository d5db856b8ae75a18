// One entry of a query result as a JSON object, the row format of /api/query (NDJSON)
// and /api/tail (SSE data): {"time","peer","severity"?,"line"}.
import type { EntryBatch } from '../query/result';
import { SEVERITIES } from '../query/syslog';

const PRI = /^<(\d{1,3})>/;

/** The syslog severity name when the line starts with a valid PRI, as the query filters see it. */
function severityOf(line: string): string | undefined {
  const m = PRI.exec(line);
  if (!m) return undefined;
  const prival = Number(m[1]);
  return prival > 191 ? undefined : SEVERITIES[prival & 7];
}

/** Entry `i` of `b` as one line of JSON (no newline). */
export function entryJson(b: EntryBatch, i: number): string {
  const line = b.bytes.toString('utf8', b.start[i], b.end[i]);
  const severity = severityOf(line);
  const head = `{"time":"${new Date(b.time[i]).toISOString()}","peer":${JSON.stringify(b.peers[b.peer[i]] ?? '')}`;
  return severity === undefined ? `${head},"line":${JSON.stringify(line)}}` : `${head},"severity":"${severity}","line":${JSON.stringify(line)}}`;
}
