// logcaster query '<params>': QUERY on the query port; the matching lines on stdout.
// Exit 0 when something matched, 1 when nothing did, 2 for a query the server refused.
import { ClientError, EXIT, flag, parse, QUERY_OPTIONS, QUERY_TOKEN_ENV, queryPortLines, TLS_USAGE, writeOut, type ClientIo } from './common';

export const QUERY_USAGE = `Usage: logcaster query [--query-host 127.0.0.1] [--query-port 9998] [--query-token-file <file>] [--tls ...] [--count] <params>...
Runs "QUERY <params>" (keyword=, keywords=, operator=, regex=, time_from=, time_to=,
severity=, facility=, host=, app=; see HELP) and prints the matching lines, oldest first.
--count prints only how many matched. A token for a remote query port comes from
--query-token-file or $${QUERY_TOKEN_ENV}. To a --query-tls port: ${TLS_USAGE}
Exit status: 0 some line matched, 1 none did, 2 bad query or options, 3 unreachable or not authenticated.`;

export async function query(argv: readonly string[], io: ClientIo): Promise<number> {
  const a = parse(argv, { ...QUERY_OPTIONS, count: { type: 'boolean' } }, QUERY_USAGE);
  if (flag(a, 'help')) {
    io.out.write(`${QUERY_USAGE}\n`);
    return EXIT.ok;
  }
  const params = a.positionals.join(' ').trim();
  if (params === '') throw new ClientError(`query needs parameters, e.g. logcaster query keyword=error\n${QUERY_USAGE}`, EXIT.usage);
  const countOnly = flag(a, 'count');
  let found = -1;
  let error = '';
  await queryPortLines(a, io, `QUERY ${params}`, (line) => {
    if (found < 0) {
      const m = /^FOUND: (\d+) matches$/.exec(line);
      if (m) found = Number(m[1]);
      else error ||= line;
      return;
    }
    if (!countOnly) return writeOut(io.out, `${line}\n`);
  });
  if (found < 0) throw new ClientError(error.replace(/^ERROR: /, '') || 'no answer from the query port', EXIT.usage);
  if (countOnly) io.out.write(`${found}\n`);
  return found > 0 ? EXIT.ok : EXIT.none;
}
