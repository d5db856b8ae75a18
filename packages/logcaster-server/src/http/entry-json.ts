// One stored entry as a JSON object, the row format of /api/query (NDJSON) and
// /api/tail (SSE data): {"seq","time","peer","severity"?,"line"}.
import { snapshotLine, type Snapshot } from '../store/log-store';
import { SEVERITIES } from '../query/syslog';

const PRI = /^<(\d{1,3})>/;

/** The syslog severity name when the line starts with a valid PRI, like the query filters see it. */
function severityOf(line: string): string | undefined {
  const m = PRI.exec(line);
  if (!m) return undefined;
  const prival = Number(m[1]);
  return prival > 191 ? undefined : SEVERITIES[prival & 7];
}

/** Entry `i` of `snap` as one line of JSON (no newline). */
export function entryJson(snap: Snapshot, i: number): string {
  const line = snapshotLine(snap, i).toString('utf8');
  const severity = severityOf(line);
  const time = new Date(snap.time[i]).toISOString();
  const peer = snap.peers[snap.peer[i]] ?? '';
  return severity === undefined
    ? `{"seq":${snap.firstSeq + i},"time":"${time}","peer":${JSON.stringify(peer)},"line":${JSON.stringify(line)}}`
    : `{"seq":${snap.firstSeq + i},"time":"${time}","peer":${JSON.stringify(peer)},"severity":"${severity}","line":${JSON.stringify(line)}}`;
}
