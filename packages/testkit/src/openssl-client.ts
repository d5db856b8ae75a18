// `openssl s_client` as a real TLS peer: the command an operator checks a TLS port with.
// stdin stays open until end() (s_client closes the connection at stdin's EOF, before
// an answer arrives), so a test writes, waits for the answer, then ends.
import { spawn, type ChildProcess } from 'node:child_process';

import { waitFor } from './net';

export interface OpensslClientOptions {
  host?: string;
  /** SNI name sent and the name the certificate is checked against. Default 'localhost'. */
  servername?: string;
  /** CA to verify the server with; the handshake fails on a bad certificate. */
  caFile?: string;
  /** A client certificate to present. */
  certFile?: string;
  keyFile?: string;
}

export interface OpensslClient {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  write(data: string | Buffer): void;
  /** Resolves once stdout matches `re` (or rejects after `ms`, with what was seen). */
  waitForOutput(re: RegExp, ms?: number): Promise<void>;
  /** Ends stdin (s_client sends close_notify and exits); resolves with its exit code. */
  end(): Promise<number | null>;
  /** Resolves with the exit code once s_client exited. */
  exited: Promise<number | null>;
  /** SIGKILL if still running (for afterEach). */
  kill(): void;
}

export function opensslClient(port: number, o: OpensslClientOptions = {}): OpensslClient {
  const servername = o.servername ?? 'localhost';
  const args = ['s_client', '-connect', `${o.host ?? '127.0.0.1'}:${port}`, '-servername', servername, '-brief', '-no_ign_eof'];
  if (o.caFile) args.push('-CAfile', o.caFile, '-verify_return_error', '-verify_hostname', servername);
  if (o.certFile) args.push('-cert', o.certFile);
  if (o.keyFile) args.push('-key', o.keyFile);
  const child = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  child.stdin!.on('error', () => {});
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    write: (data) => child.stdin!.write(data),
    waitForOutput: (re, ms = 10000) => waitFor(() => re.test(out), ms, () => `openssl s_client output matching ${re}; stdout: ${out.slice(-300)}; stderr: ${err.slice(-300)}`),
    end: () => {
      child.stdin!.end();
      return exited;
    },
    exited,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}
