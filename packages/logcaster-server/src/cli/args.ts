// Command-line parsing for `logcaster`. Pure: returns options or an error message.
import type { BackendName } from '@logcaster/core';

import type { FsyncPolicy } from '../journal';
import type { LogCasterOptions } from '../server';
import { parseCount, parseSize } from './size';

export const DEFAULT_DATA_DIR = './logcaster-data';

export const USAGE = `Usage: logcaster [options]

LogCaster: collects log lines over TCP (ingest port) and answers queries (query port).

Options:
  --backend <name>       I/O backend: auto, select, poll, epoll, kqueue, iouring (default auto:
                         the best one installed and supported here)
  --host <ip>            address both ports listen on (default 127.0.0.1)
  --port <n>             ingest port (default 9999; 0 picks a free port)
  --query-port <n>       query port (default 9998; 0 picks a free port)
  --capacity <n>         log entries kept in memory; the oldest are dropped and counted
                         (default 100000; accepts 200k, 1M)
  --max-line <size>      longest line kept, in bytes; longer lines are truncated and end with
                         "…[truncated N bytes]" (default 64k; accepts 512, 64k, 1M)
  --max-clients <n>      concurrent ingest clients; more get
                         "ERROR: Server at capacity. Try again later." (default 1000)
  --idle-timeout <sec>   close ingest connections idle this long (default 0 = never)
  --data-dir <dir>       journal directory, reloaded on restart (default ${DEFAULT_DATA_DIR});
                         "none" keeps everything in memory only
  --no-persist           same as --data-dir none
  --rotate-size <size>   journal segment size before rotating (default 16M)
  --max-files <n>        journal segments kept; the oldest are deleted (default 8)
  --fsync <policy>       never | interval | always (default interval: every --fsync-interval)
  --fsync-interval <ms>  fsync period for --fsync interval (default 1000)
  --ack                  answer "OK" per stored line, in order; with --fsync always only once
                         the line is on disk (group commit)
  --admin-token <tok>    lets non-loopback query clients run "CLEAR <tok>"
  --regex-timeout <ms>   time budget of one regex query (default 2000)
  --utc                  print query timestamps in UTC (default: local time, like the original)
  -h, --help             show this help
  -v, --version          print the version
`;

export interface CliOptions {
  help: boolean;
  version: boolean;
  server: LogCasterOptions & { dataDir: string | null };
}

export type CliParse = { ok: true; value: CliOptions } | { ok: false; error: string };

const BACKENDS = ['auto', 'select', 'poll', 'epoll', 'kqueue', 'iouring'];
const FSYNC = ['never', 'interval', 'always'];

export function parseCli(argv: readonly string[]): CliParse {
  const out: CliOptions = { help: false, version: false, server: { dataDir: DEFAULT_DATA_DIR } };
  const s = out.server;
  let i = 0;
  const fail = (error: string): CliParse => ({ ok: false, error });
  while (i < argv.length) {
    let arg = argv[i++];
    let inline: string | undefined;
    if (arg.startsWith('--') && arg.includes('=')) {
      inline = arg.slice(arg.indexOf('=') + 1);
      arg = arg.slice(0, arg.indexOf('='));
    }
    const flagOnly = (): string | undefined => (inline !== undefined ? `option ${arg} takes no value` : undefined);
    const value = (): string | undefined => {
      if (inline !== undefined) return inline;
      if (i >= argv.length || (argv[i].startsWith('--') && argv[i].length > 2)) return undefined;
      return argv[i++];
    };
    const need = (): string => {
      const v = value();
      if (v === undefined) throw new CliError(`option ${arg} needs a value`);
      return v;
    };
    try {
      switch (arg) {
        case '-h':
        case '--help':
          if (flagOnly()) return fail(flagOnly()!);
          out.help = true;
          break;
        case '-v':
        case '--version':
          if (flagOnly()) return fail(flagOnly()!);
          out.version = true;
          break;
        case '--backend': {
          const v = need();
          if (!BACKENDS.includes(v)) return fail(`invalid --backend '${v}' (expected one of: ${BACKENDS.join(', ')})`);
          s.backend = v as BackendName | 'auto';
          break;
        }
        case '--host': {
          const v = need();
          if (v.trim() === '') return fail('--host must not be empty');
          s.host = v;
          break;
        }
        case '--port':
          s.port = port(arg, need());
          break;
        case '--query-port':
          s.queryPort = port(arg, need());
          break;
        case '--capacity':
          s.capacity = positive(arg, parseCount(need()), 'a positive count like 100000 or 200k');
          break;
        case '--max-line': {
          const v = positive(arg, parseSize(need()), 'a size like 4096, 64k or 1M');
          if (v < 16) return fail(`${arg} must be at least 16 bytes`);
          if (v > 256 * 1024 * 1024) return fail(`${arg} must be at most 256M`);
          s.maxLine = v;
          break;
        }
        case '--max-clients':
          s.maxClients = positive(arg, parseCount(need()), 'a positive count');
          break;
        case '--idle-timeout': {
          const raw = need();
          if (!/^\d+(\.\d+)?$/.test(raw)) return fail(`invalid ${arg} '${raw}' (expected seconds, e.g. 300)`);
          s.idleTimeout = Number(raw);
          break;
        }
        case '--data-dir': {
          const v = need();
          if (v === '') return fail('--data-dir must not be empty (use "none" for memory only)');
          s.dataDir = v === 'none' ? null : v;
          break;
        }
        case '--no-persist':
          if (flagOnly()) return fail(flagOnly()!);
          s.dataDir = null;
          break;
        case '--rotate-size': {
          const v = positive(arg, parseSize(need()), 'a size like 16M');
          if (v < 4096) return fail(`${arg} must be at least 4k`);
          s.rotateSize = v;
          break;
        }
        case '--max-files':
          s.maxFiles = positive(arg, parseCount(need()), 'a positive count');
          break;
        case '--fsync': {
          const v = need();
          if (!FSYNC.includes(v)) return fail(`invalid --fsync '${v}' (expected one of: ${FSYNC.join(', ')})`);
          s.fsync = v as FsyncPolicy;
          break;
        }
        case '--fsync-interval':
          s.fsyncIntervalMs = positive(arg, parseCount(need()), 'milliseconds');
          break;
        case '--ack':
          if (flagOnly()) return fail(flagOnly()!);
          s.ack = true;
          break;
        case '--admin-token': {
          const v = need();
          if (v === '' || /\s/.test(v)) return fail('--admin-token must be non-empty and contain no spaces');
          s.adminToken = v;
          break;
        }
        case '--regex-timeout':
          s.regexTimeoutMs = positive(arg, parseCount(need()), 'milliseconds');
          break;
        case '--utc':
          if (flagOnly()) return fail(flagOnly()!);
          s.utc = true;
          break;
        default:
          return fail(arg.startsWith('-') ? `unknown option '${arg}'` : `unexpected argument '${arg}'`);
      }
    } catch (e) {
      if (e instanceof CliError) return fail(e.message);
      throw e;
    }
  }
  return { ok: true, value: out };
}

class CliError extends Error {}

function port(flag: string, text: string): number {
  if (!/^\d+$/.test(text) || Number(text) > 65535) throw new CliError(`invalid ${flag} '${text}' (expected 0-65535)`);
  return Number(text);
}

function positive(flag: string, v: number | undefined, what: string): number {
  if (v === undefined || v < 1) throw new CliError(`invalid ${flag} value (expected ${what})`);
  return v;
}
