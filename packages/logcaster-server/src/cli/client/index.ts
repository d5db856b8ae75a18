// The client commands of `logcaster`: send, query, tail, stats.
import { ClientError, EXIT, type ClientIo } from './common';
import { query, QUERY_USAGE } from './query';
import { send, SEND_USAGE } from './send';
import { stats, STATS_USAGE } from './stats';
import { tail, TAIL_USAGE } from './tail';

export const CLIENT_COMMANDS = ['send', 'query', 'tail', 'stats'] as const;

export const COMMANDS_HELP = `
Commands (logcaster <command> --help for each):
  logcaster [serve] [options]     run the server (the options above)
  logcaster send [file|-]         send lines to the ingest port
  logcaster query <params>        QUERY the query port; exit 0 matched, 1 nothing
  logcaster tail [-f] [<params>]  the newest lines, -f follows new ones (HTTP port)
  logcaster stats [--json]        the STATS figures
Exit status of the commands: 0 ok, 1 nothing found, 2 bad options or query, 3 server unreachable or not authenticated.
`;

export const CLIENT_USAGE = { send: SEND_USAGE, query: QUERY_USAGE, tail: TAIL_USAGE, stats: STATS_USAGE };

/** Run a client command; returns its exit status. `stop` resolves on SIGINT/SIGTERM. */
export async function runClient(command: (typeof CLIENT_COMMANDS)[number], argv: readonly string[], io: ClientIo, stop: Promise<void>): Promise<number> {
  try {
    switch (command) {
      case 'send':
        return await send(argv, io);
      case 'query':
        return await query(argv, io);
      case 'tail':
        return await tail(argv, io, stop);
      case 'stats':
        return await stats(argv, io);
    }
  } catch (e) {
    if (!(e instanceof ClientError)) throw e;
    io.err.write(`logcaster ${command}: ${e.message}\n`);
    return e.code;
  }
  return EXIT.usage;
}

export function isClientCommand(word: string | undefined): word is (typeof CLIENT_COMMANDS)[number] {
  return (CLIENT_COMMANDS as readonly string[]).includes(word ?? '');
}
