// logcaster tail [-f] [-n N] [<params>]: the newest matching lines, and with -f the new
// ones as they arrive (the HTTP port's /api/query, then its /api/tail event stream,
// resumed right after the last line printed, so nothing is missed or printed twice).
import { get, type IncomingMessage } from 'node:http';

import { formatTimestamp } from '../../query/format';
import { ClientError, EXIT, flag, HTTP_TOKEN_ENV, parse, port, str, token, writeOut, type ClientIo } from './common';

export const TAIL_USAGE = `Usage: logcaster tail [-f] [-n 10] [--query-host 127.0.0.1] [--http-port 9997] [--http-token-file <file>] [--utc] [<params>...]
Prints the newest n lines matching the QUERY parameters (all lines without any), oldest
first, as "[YYYY-MM-DD HH:MM:SS] line"; -f then follows new matching lines until
interrupted. Uses the server's HTTP port; a token for a remote one comes from
--http-token-file or $${HTTP_TOKEN_ENV}.
Exit status: 0 lines printed (or -f interrupted), 1 none matched, 2 bad query or options, 3 unreachable or not authenticated.`;

interface Row {
  seq: number;
  time: string;
  line: string;
}

export async function tail(argv: readonly string[], io: ClientIo, stop: Promise<void>): Promise<number> {
  const a = parse(
    argv,
    {
      follow: { type: 'boolean', short: 'f' },
      lines: { type: 'string', short: 'n', default: '10' },
      'query-host': { type: 'string', default: '127.0.0.1' },
      'http-port': { type: 'string', default: '9997' },
      'http-token-file': { type: 'string' },
      utc: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    TAIL_USAGE,
  );
  if (flag(a, 'help')) {
    io.out.write(`${TAIL_USAGE}\n`);
    return EXIT.ok;
  }
  const n = str(a, 'lines')!;
  if (!/^\d{1,9}$/.test(n)) throw new ClientError(`-n must be a number of lines, got '${n}'`, EXIT.usage);
  const target: Target = {
    host: str(a, 'query-host')!,
    port: port('http-port', str(a, 'http-port')),
    token: token(str(a, 'http-token-file'), HTTP_TOKEN_ENV, io.env),
  };
  const q = a.positionals.join(' ').trim();
  const utc = flag(a, 'utc');
  const show = (r: Row): void | Promise<void> => writeOut(io.out, `[${formatTimestamp(Date.parse(r.time), utc)}] ${r.line.replace(/[\r\n]/g, ' ')}\n`);

  const res = await request(target, `/api/query?${new URLSearchParams({ q, order: 'newest', limit: n })}`);
  const rows = (await body(res))
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Row)
    .reverse();
  for (const r of rows) await show(r);
  if (!flag(a, 'follow')) return rows.length > 0 ? EXIT.ok : EXIT.none;

  // Follow from the newest line the query covered (printed or not).
  const after = res.headers['x-logcaster-seq'];
  const events = await request(target, `/api/tail?${new URLSearchParams({ q })}`, typeof after === 'string' ? { 'Last-Event-ID': after } : {});
  const ended = new Promise<number>((resolve) => {
    let buf = '';
    let chain: Promise<void> = Promise.resolve();
    events.setEncoding('utf8');
    events.on('data', (d: string) => {
      buf += d;
      let end: number;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const data = block
          .split('\n')
          .filter((l) => l.startsWith('data: '))
          .map((l) => l.slice(6))
          .join('');
        if (data === '' || !block.split('\n').every((l) => !l.startsWith('event: ') || l === 'event: message')) continue;
        const r = show(JSON.parse(data) as Row);
        if (r instanceof Promise) {
          events.pause();
          chain = chain.then(() => r).then(() => void events.resume());
        }
      }
    });
    events.on('end', () => {
      io.err.write('logcaster tail: the server ended the stream\n');
      resolve(EXIT.unreachable);
    });
    events.on('error', () => resolve(EXIT.unreachable));
  });
  return Promise.race([ended, stop.then(() => EXIT.ok)]).finally(() => events.destroy());
}

interface Target {
  host: string;
  port: number;
  token: string | undefined;
}

function request(t: Target, path: string, headers: Record<string, string> = {}): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = get({ host: t.host, port: t.port, path, headers: { ...headers, ...(t.token ? { Authorization: `Bearer ${t.token}` } : {}) } }, (res) => {
      if (res.statusCode === 200) return resolve(res);
      void body(res).then((text) => {
        let why = text.trim();
        try {
          why = (JSON.parse(text) as { error: string }).error;
        } catch {
          /* not JSON: keep the text */
        }
        reject(new ClientError(`HTTP port: ${why}`, res.statusCode === 400 || res.statusCode === 422 ? EXIT.usage : EXIT.unreachable));
      });
    });
    req.on('error', (e: NodeJS.ErrnoException) => reject(new ClientError(`cannot connect to the HTTP port at ${t.host}:${t.port}: ${e.code ?? e.message} (is the server running without --no-http?)`, EXIT.unreachable)));
  });
}

function body(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (d: string) => (text += d));
    res.on('end', () => resolve(text));
    res.on('error', reject);
  });
}
