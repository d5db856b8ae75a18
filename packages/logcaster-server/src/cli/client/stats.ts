// logcaster stats [--json]: the STATS figures of the query port, one per line (or JSON).
import { ClientError, EXIT, flag, parse, QUERY_OPTIONS, queryPortLines, TLS_USAGE, type ClientIo } from './common';

export const STATS_USAGE = `Usage: logcaster stats [--json] [--query-host 127.0.0.1] [--query-port 9998] [--query-token-file <file>] [--tls ...]
Prints the server's STATS figures, one per line; --json prints them as one JSON object
(numbers as numbers, Uptime as uptimeSeconds). To a --query-tls port: ${TLS_USAGE} Exit status 3 when the server cannot be reached.`;

/** "STATS: Total=5, Backend=epoll, Uptime=12s" → [['Total', '5'], ...]. */
export function parseStatsLine(line: string): [string, string][] {
  const m = /^STATS: (.*)$/.exec(line);
  if (!m) throw new ClientError(line.replace(/^ERROR: /, '') || 'no STATS answer', EXIT.usage);
  return m[1].split(', ').map((kv) => {
    const eq = kv.indexOf('=');
    return [kv.slice(0, eq), kv.slice(eq + 1)];
  });
}

/** The JSON form: lowerCamel keys, numbers where the value is one. */
export function statsJson(fields: [string, string][]): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  for (const [k, v] of fields) {
    if (k === 'Uptime' && /^\d+s$/.test(v)) out.uptimeSeconds = Number(v.slice(0, -1));
    else out[k[0].toLowerCase() + k.slice(1)] = /^\d+$/.test(v) ? Number(v) : v;
  }
  return out;
}

export async function stats(argv: readonly string[], io: ClientIo): Promise<number> {
  const a = parse(argv, { ...QUERY_OPTIONS, json: { type: 'boolean' } }, STATS_USAGE);
  if (flag(a, 'help')) {
    io.out.write(`${STATS_USAGE}\n`);
    return EXIT.ok;
  }
  if (a.positionals.length > 0) throw new ClientError(`stats takes no arguments\n${STATS_USAGE}`, EXIT.usage);
  let answer: string | undefined;
  await queryPortLines(a, io, 'STATS', (line) => {
    answer ??= line;
  });
  const fields = parseStatsLine(answer ?? '');
  if (flag(a, 'json')) io.out.write(`${JSON.stringify(statsJson(fields))}\n`);
  else {
    const width = Math.max(...fields.map(([k]) => k.length));
    io.out.write(fields.map(([k, v]) => `${k.padEnd(width)}  ${v}\n`).join(''));
  }
  return EXIT.ok;
}
