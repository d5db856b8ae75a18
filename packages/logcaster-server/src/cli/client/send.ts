// logcaster send [--host] [--port] [--ack] [file|-]: lines from a file or stdin to the
// ingest port; waits until the server has closed (everything stored), or with --ack
// until every line is acknowledged.
import { createReadStream } from 'node:fs';

import { clientTls, ClientError, connectTo, EXIT, flag, parse, port, str, TLS_OPTIONS, TLS_USAGE, type ClientIo } from './common';

export const SEND_USAGE = `Usage: logcaster send [--host 127.0.0.1] [--port 9999] [--ack] [--tls [--tls-ca <file>] [--tls-cert <file> --tls-key <file>]] [file|-]
Sends the lines of file (or stdin, also with "-") to the ingest port, then waits until the
server has stored them. --ack: the server runs with --ack; count its OKs and exit 1 unless
every line was acknowledged. To a --tls-port: --port <it> and ${TLS_USAGE}`;

export async function send(argv: readonly string[], io: ClientIo): Promise<number> {
  const a = parse(argv, { host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string', default: '9999' }, ack: { type: 'boolean' }, help: { type: 'boolean', short: 'h' }, ...TLS_OPTIONS }, SEND_USAGE);
  if (flag(a, 'help')) {
    io.out.write(`${SEND_USAGE}\n`);
    return EXIT.ok;
  }
  if (a.positionals.length > 1) throw new ClientError(`send takes one file at most\n${SEND_USAGE}`, EXIT.usage);
  const file = a.positionals[0] ?? '-';
  const input: NodeJS.ReadableStream = file === '-' ? io.in : createReadStream(file);
  const opened = new Promise<void>((resolve, reject) => {
    if (file === '-') return resolve();
    input.once('open', () => resolve());
    input.once('error', (e: NodeJS.ErrnoException) => reject(new ClientError(`cannot read ${file}: ${e.code ?? e.message}`, EXIT.usage)));
  });
  await opened;
  const host = str(a, 'host')!;
  const s = await connectTo(host, port('port', str(a, 'port')), 'ingest port', clientTls(a));
  let lines = 0;
  let last = 10;
  let acks = 0;
  let refused = '';
  s.on('data', (d: Buffer) => {
    for (let i = d.indexOf(10); i >= 0; i = d.indexOf(10, i + 1)) acks++;
    if (acks === 0 && refused.length < 200) refused += d.toString('utf8');
  });
  const closed = new Promise<Error | undefined>((resolve) => {
    s.once('error', (e) => resolve(e));
    s.once('close', () => resolve(undefined));
  });
  await new Promise<void>((resolve, reject) => {
    input.on('data', (chunk: Buffer | string) => {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      for (let i = b.indexOf(10); i >= 0; i = b.indexOf(10, i + 1)) lines++;
      if (b.length > 0) last = b[b.length - 1];
      if (!s.write(b)) {
        input.pause();
        s.once('drain', () => input.resume());
      }
    });
    input.once('end', () => resolve());
    input.once('error', (e: NodeJS.ErrnoException) => reject(new ClientError(`reading ${file}: ${e.code ?? e.message}`, EXIT.usage)));
    s.once('close', () => reject(new ClientError(`the server closed the connection: ${refused.trim() || 'no reason given'}`, EXIT.unreachable)));
  });
  if (last !== 10) {
    s.write('\n'); // the last line had no newline: end it, so it is one line like the others
    lines++;
  }
  s.end(); // half-close: the server stores what arrived, then closes
  const err = await closed;
  if (err) throw new ClientError(`ingest connection lost: ${(err as NodeJS.ErrnoException).code ?? err.message}`, EXIT.unreachable);
  if (/^ERROR: /.test(refused)) throw new ClientError(`the server refused: ${refused.trim()}`, EXIT.unreachable);
  if (flag(a, 'ack') && acks < lines) {
    io.err.write(`logcaster send: ${acks} of ${lines} lines acknowledged${acks === 0 ? ' (is the server running with --ack?)' : ''}\n`);
    return EXIT.none;
  }
  return EXIT.ok;
}
