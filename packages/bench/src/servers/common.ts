// Shared bits of the benchmark servers: argument parsing and the readiness line the
// runner waits for ("READY <port> <query-port>").
import { readFileSync } from 'node:fs';

export interface ServerArgs {
  host: string;
  port: number;
  queryPort: number; // -1: no query port
  ack: boolean;
  backend: string;
  run: boolean; // reactor: dedicated-thread mode (reactor.run())
  loopDelay: boolean; // reactor, integrated: report Node's event-loop delay on exit
  /** TLS (the TLS benchmark): PEM files of the certificate and key; both or neither. */
  tlsCert?: string;
  tlsKey?: string;
}

export function parseArgs(argv: string[]): ServerArgs {
  const a: ServerArgs = { host: '127.0.0.1', port: 0, queryPort: -1, ack: false, backend: 'auto', run: false, loopDelay: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    if (k === '--host') (a.host = v), i++;
    else if (k === '--port') (a.port = Number(v)), i++;
    else if (k === '--query-port') (a.queryPort = Number(v)), i++;
    else if (k === '--backend') (a.backend = v), i++;
    else if (k === '--ack') a.ack = true;
    else if (k === '--run') a.run = true;
    else if (k === '--loop-delay') a.loopDelay = true;
    else if (k === '--tls-cert') (a.tlsCert = v), i++;
    else if (k === '--tls-key') (a.tlsKey = v), i++;
    else throw new Error(`unknown argument ${k}`);
  }
  if ((a.tlsCert === undefined) !== (a.tlsKey === undefined)) throw new Error('--tls-cert and --tls-key go together');
  return a;
}

/** The certificate and key as PEM text, when the server is to speak TLS. */
export function tlsFiles(a: ServerArgs): { cert: string; key: string } | undefined {
  return a.tlsCert !== undefined && a.tlsKey !== undefined ? { cert: readFileSync(a.tlsCert, 'latin1'), key: readFileSync(a.tlsKey, 'latin1') } : undefined;
}

export function ready(port: number, queryPort: number): void {
  // stdout is a pipe here: synchronous on Linux, so this is out before any blocking run().
  process.stdout.write(`READY ${port} ${queryPort}\n`);
}

export function exitOnSignals(cleanup?: () => void): void {
  const stop = (): void => {
    if (cleanup) cleanup();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
