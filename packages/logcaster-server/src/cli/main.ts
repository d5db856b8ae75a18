// The `logcaster` command.
import { isIPv6 } from 'node:net';

import { loadBackend, type BackendName } from '@logcaster/core';

import { accessLogger } from '../access/access-log';
import { cliTokenSources } from '../access/config';
import { DataDirLockedError } from '../data-dir';
import { LogCaster, type PersistenceEvent } from '../server';
import { parseCli, USAGE } from './args';
import { COMMANDS_HELP, isClientCommand, runClient } from './client';

/** glibc's initial value, kept fixed: blocks above it (store chunks, scan buffers,
 *  worker messages) are mmap()ed and go back to the system when freed. */
const MALLOC_MMAP_THRESHOLD = 128 * 1024;

// eslint-disable-next-line @typescript-eslint/no-require-imports
const VERSION: string = (require('../../../package.json') as { version: string }).version;

export async function main(argv: readonly string[]): Promise<number> {
  if (isClientCommand(argv[0])) return runClient(argv[0], argv.slice(1), { out: process.stdout, err: process.stderr, in: process.stdin, env: process.env }, interrupted());
  if (argv[0] === 'serve') argv = argv.slice(1);
  const parsed = parseCli(argv);
  if (!parsed.ok) {
    process.stderr.write(`logcaster: ${parsed.error}\nTry 'logcaster --help' for the list of options.\n`);
    return 2;
  }
  const cli = parsed.value;
  if (cli.help) {
    process.stdout.write(USAGE + COMMANDS_HELP);
    return 0;
  }
  if (cli.version) {
    process.stdout.write(`logcaster ${VERSION}\n`);
    return 0;
  }
  const opts = cli.server;
  let server: LogCaster;
  try {
    const warnings = cliTokenSources(opts, process.env);
    server = new LogCaster(opts);
    for (const w of [...warnings, ...server.warnings]) process.stderr.write(`logcaster: warning: ${w}\n`);
  } catch (e) {
    process.stderr.write(`logcaster: ${(e as Error).message}\n`);
    return 2;
  }
  server.on('error', (err: Error) => process.stderr.write(`logcaster: ${err.stack ?? err.message}\n`));
  server.on('persistence', (e: PersistenceEvent) => {
    const what = e.state === 'resumed' ? 'persistence resumed: the lines kept in memory are written' : e.state === 'stalled' ? 'disk full, lines are kept in memory and written once space returns' : 'persistence failed, lines are kept in memory only until restart';
    process.stderr.write(`logcaster: ${what}${e.error ? ` (${e.error.message})` : ''}; ${e.dropped} lines not persisted so far\n`);
  });
  server.on('access', accessLogger((line) => process.stderr.write(`logcaster: ${line}\n`)));
  fixMallocThreshold(opts.backend ?? 'auto');
  let info;
  try {
    info = await server.start();
  } catch (e) {
    process.stderr.write(`logcaster: cannot start: ${(e as Error).message}\n`);
    return e instanceof DataDirLockedError ? 2 : 1;
  }
  // A TLS query port says so in its address, as a URL would.
  const tls = info.queryTls ? 'tls://' : '';
  const https = info.queryTls ? 'https://' : '';
  const fsync = info.dataDir ? ` (fsync ${server.options.fsync})` : '';
  return new Promise<number>((resolve) => {
    let signalled = false;
    const onSignal = (sig: NodeJS.Signals): void => {
      if (signalled) {
        process.stderr.write(`logcaster: ${sig} again, exiting now\n`);
        process.exit(130);
      }
      signalled = true;
      process.stderr.write(`logcaster: ${sig}: finishing received lines, flushing, exiting\n`);
      server.stop().then(
        () => resolve(0),
        (err: Error) => {
          process.stderr.write(`logcaster: error during shutdown: ${err.message}\n`);
          resolve(1);
        },
      );
    };
    // Handlers first, then the start line: a supervisor that signals as soon as it
    // reads the line must reach them (it often did not, on a busy 2-core machine).
    // SIGHUP (the terminal went away) drains like SIGTERM: nothing here to reopen, and
    // Node's default for it is to exit at once, losing unterminated lines.
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.on('SIGHUP', onSignal);
    process.stdout.write(
      `LogCaster ${VERSION} backend=${info.backend} ingest=${hostPort(info.host, info.ingestPort)} query=${tls}${hostPort(info.queryHost, info.queryPort)} ` +
        `${info.httpPort !== undefined ? `http=${https}${hostPort(info.queryHost, info.httpPort)} ` : ''}` +
        `${info.tlsPort !== undefined ? `tls=${hostPort(info.host, info.tlsPort)} ` : ''}` +
        `${info.udpPort !== undefined ? `udp=${hostPort(info.host, info.udpPort)} ` : ''}${info.relpPort !== undefined ? `relp=${hostPort(info.host, info.relpPort)} ` : ''}` +
        `${info.unixSocket !== undefined ? `unix=${info.unixSocket} ` : ''}${info.unixStreamSocket !== undefined ? `unix-stream=${info.unixStreamSocket} ` : ''}` +
        `data-dir=${info.dataDir ?? 'none (memory only)'}${fsync}${info.reloaded ? ` reloaded=${info.reloaded}` : ''}\n`,
    );
  });
}

/** "127.0.0.1:9999", "[::1]:9999": an IPv6 address is bracketed. */
export function hostPort(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => process.exit(code));
}

/** Resolves on the first SIGINT or SIGTERM (a client command then ends cleanly). */
function interrupted(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}

/** The command owns its process, so it may tune the allocator for it (an embedding
 *  program decides for itself): without a fixed threshold, glibc raises it to the
 *  largest block freed, and the server's freed blocks of a few MiB stayed resident
 *  (docs/ARCHITECTURE.md, "Decisions and why"). */
function fixMallocThreshold(backend: BackendName | 'auto'): void {
  let loaded;
  try {
    loaded = loadBackend(backend);
  } catch {
    return; // start() reports why no backend loads
  }
  loaded.module.setMallocMmapThreshold(MALLOC_MMAP_THRESHOLD);
}
