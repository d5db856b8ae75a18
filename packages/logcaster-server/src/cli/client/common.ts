// What the client commands (send, query, tail, stats) share: exit codes, option parsing,
// tokens, TLS, and a query-port exchange read line by line.
import { readFileSync } from 'node:fs';
import { connect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { parseArgs } from 'node:util';

/** Exit codes of the client commands, for scripts. */
export const EXIT = {
  ok: 0,
  /** query/tail: nothing matched; send --ack: not every line was acknowledged. */
  none: 1,
  /** Bad options, or the server refused the request (a bad query). */
  usage: 2,
  /** Cannot connect, connection lost, or authentication failed. */
  unreachable: 3,
} as const;

export class ClientError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

export interface ClientIo {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
  in: NodeJS.ReadableStream;
  env: NodeJS.ProcessEnv;
}

export const QUERY_TOKEN_ENV = 'LOGCASTER_QUERY_TOKEN';
export const HTTP_TOKEN_ENV = 'LOGCASTER_HTTP_TOKEN';


/** TLS to a --query-tls query port or a --tls-port (send): the server is verified
 *  against --tls-ca (default: Node's root CAs); --tls-cert/--tls-key for mutual TLS. */
export const TLS_OPTIONS: OptionSpec = {
  tls: { type: 'boolean' },
  'tls-ca': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
};

export const TLS_USAGE = '--tls speaks TLS (implied by --tls-ca/--tls-cert): the server is verified against --tls-ca <file> (default: the system\'s CAs); --tls-cert <file> --tls-key <file> present a client certificate.';

/** Options every command that talks to the query port takes. */
export const QUERY_OPTIONS: OptionSpec = {
  'query-host': { type: 'string', default: '127.0.0.1' },
  'query-port': { type: 'string', default: '9998' },
  'query-token-file': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  ...TLS_OPTIONS,
};

export interface ClientTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/** The TLS options given, read; undefined for plain TCP. */
export function clientTls(a: ParsedArgs): ClientTls | undefined {
  const [ca, cert, key] = ['tls-ca', 'tls-cert', 'tls-key'].map((n) => str(a, n));
  if (!flag(a, 'tls') && ca === undefined && cert === undefined && key === undefined) return undefined;
  if ((cert === undefined) !== (key === undefined)) throw new ClientError('--tls-cert and --tls-key go together', EXIT.usage);
  const read = (option: string, file: string | undefined): Buffer | undefined => {
    if (file === undefined) return undefined;
    try {
      return readFileSync(file);
    } catch (e) {
      throw new ClientError(`cannot read --${option} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, EXIT.usage);
    }
  };
  const out: ClientTls = {};
  const caPem = read('tls-ca', ca);
  const certPem = read('tls-cert', cert);
  const keyPem = read('tls-key', key);
  if (caPem) out.ca = caPem;
  if (certPem) out.cert = certPem;
  if (keyPem) out.key = keyPem;
  return out;
}

export type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string; default?: string | boolean }>;

export interface ParsedArgs {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/** util.parseArgs, with its errors turned into usage errors. */
export function parse(argv: readonly string[], options: OptionSpec, usage: string): ParsedArgs {
  try {
    const r = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
    return { values: r.values, positionals: r.positionals };
  } catch (e) {
    throw new ClientError(`${(e as Error).message}\n${usage}`, EXIT.usage);
  }
}

export function str(a: ParsedArgs, name: string): string | undefined {
  const v = a.values[name];
  return typeof v === 'string' ? v : undefined;
}

export function flag(a: ParsedArgs, name: string): boolean {
  return a.values[name] === true;
}

export function port(name: string, text: string | undefined): number {
  if (text === undefined || !/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 65535) throw new ClientError(`--${name} must be a port number (1-65535), got '${text}'`, EXIT.usage);
  return Number(text);
}

/** The first token of a token file (one per line, '#' comments), else the variable. */
export function token(file: string | undefined, envName: string, env: NodeJS.ProcessEnv): string | undefined {
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new ClientError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, EXIT.usage);
    }
    const first = text.split('\n').map((l) => l.trim()).find((l) => l !== '' && !l.startsWith('#'));
    if (first === undefined) throw new ClientError(`${file} holds no token`, EXIT.usage);
    return first;
  }
  const v = env[envName];
  return v === undefined || v === '' ? undefined : v;
}

export function connectTo(host: string, port: number, what: string, tls?: ClientTls): Promise<Socket> {
  return new Promise((resolve, reject) => {
    // A name is sent as SNI and checked against the certificate; an IP is checked as an IP.
    const s = tls ? tlsConnect({ host, port, servername: isIP(host) ? undefined : host, ...tls }) : connect({ host, port });
    s.once(tls ? 'secureConnect' : 'connect', () => {
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (e: NodeJS.ErrnoException) => reject(new ClientError(`cannot connect to the ${what} at ${host}:${port}: ${e.code ?? e.message}`, EXIT.unreachable)));
  });
}

/**
 * One conversation with the query port: AUTH first when a token is given, then
 * `command`, then QUIT (so the server closes after answering, whatever it does with a
 * half-close). `onLine` gets each answer line (without its LF) as it arrives and may
 * return a promise to hold further reading (stdout backpressure).
 */
export async function queryPort(host: string, portNo: number, authToken: string | undefined, command: string, onLine: (line: string) => void | Promise<void>, tls?: ClientTls): Promise<void> {
  const s = await connectTo(host, portNo, 'query port', tls);
  const lines = [...(authToken !== undefined ? [`AUTH ${authToken}`] : []), command, 'QUIT'];
  s.write(`${lines.join('\n')}\n`);
  let authPending = authToken !== undefined;
  let carry = '';
  await new Promise<void>((resolve, reject) => {
    let failed: ClientError | undefined;
    let chain: Promise<void> = Promise.resolve();
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      const text = carry + d;
      const parts = text.split('\n');
      carry = parts.pop()!;
      for (const line of parts) {
        if (authPending) {
          authPending = false;
          if (line.startsWith('AUTH: OK')) continue;
          failed = new ClientError(`query port: ${line}`, EXIT.unreachable);
          s.destroy();
          return;
        }
        const r = onLine(line);
        if (r instanceof Promise) {
          s.pause();
          chain = chain.then(() => r).then(() => void s.resume());
        }
      }
    });
    s.on('error', (e: NodeJS.ErrnoException) => (failed ??= new ClientError(`query port connection lost: ${e.code ?? e.message}`, EXIT.unreachable)));
    s.on('close', () => void chain.then(() => (failed ? reject(failed) : resolve())));
  });
  if (carry !== '') await onLine(carry);
}

/** Write to a stream; resolves once it accepts more (backpressure of stdout). */
export function writeOut(out: NodeJS.WritableStream, text: string): void | Promise<void> {
  if (out.write(text)) return;
  return new Promise((resolve) => out.once('drain', () => resolve()));
}

/** queryPort() with the command's --query-host, --query-port and token. */
export function queryPortLines(a: ParsedArgs, io: ClientIo, command: string, onLine: (line: string) => void | Promise<void>): Promise<void> {
  return queryPort(str(a, 'query-host')!, port('query-port', str(a, 'query-port')), token(str(a, 'query-token-file'), QUERY_TOKEN_ENV, io.env), command, onLine, clientTls(a));
}
