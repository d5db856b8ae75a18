// Server test helpers: a LogCaster on free ports, and a line-reading query-port client.
// Generic socket helpers (connectTo, sendAndClose, delay, waitFor) are in @logcaster/testkit.
import type * as net from 'node:net';

import { connectTo } from '@logcaster/testkit';

import { createLogCaster, type LogCaster, type LogCasterOptions, type StartInfo } from '../../src';

/** A LogCaster on free ports (memory-only unless `opts` says otherwise), started. */
export async function startServer(opts: LogCasterOptions = {}): Promise<{ lc: LogCaster; info: StartInfo }> {
  const lc = createLogCaster({ port: 0, queryPort: 0, ...opts });
  const info = await lc.start();
  return { lc, info };
}

/** A query-port client that reads answers line by line. */
export class QueryClient {
  private buf = Buffer.alloc(0);
  private lines: Buffer[] = [];
  private waiters: (() => void)[] = [];
  closed = false;
  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
      let nl: number;
      while ((nl = this.buf.indexOf(10)) >= 0) {
        this.lines.push(this.buf.subarray(0, nl));
        this.buf = this.buf.subarray(nl + 1);
      }
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {});
  }
  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
  static async open(port: number): Promise<QueryClient> {
    return new QueryClient(await connectTo(port));
  }
  send(cmd: string): void {
    this.socket.write(cmd + '\n');
  }
  async lineBuf(timeoutMs = 10000): Promise<Buffer> {
    const end = Date.now() + timeoutMs;
    while (this.lines.length === 0) {
      if (this.closed) throw new Error('query connection closed');
      const left = end - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a query answer line');
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return this.lines.shift()!;
  }
  async line(timeoutMs = 10000): Promise<string> {
    return (await this.lineBuf(timeoutMs)).toString('utf8');
  }
  /** Send a command and read a one-line answer. */
  async ask(cmd: string): Promise<string> {
    this.send(cmd);
    return this.line();
  }
  /** Send a command answered with FOUND n, read n lines. */
  async found(cmd: string, timeoutMs = 20000): Promise<{ n: number; lines: string[] }> {
    this.send(cmd);
    const head = await this.line(timeoutMs);
    const m = /^FOUND: (\d+) matches$/.exec(head);
    if (!m) throw new Error(`expected FOUND, got: ${head}`);
    const n = Number(m[1]);
    const lines: string[] = [];
    for (let i = 0; i < n; i++) lines.push(await this.line(timeoutMs));
    return { n, lines };
  }
  close(): void {
    this.socket.destroy();
  }
}

/** "[YYYY-MM-DD HH:MM:SS] text" → text */
export function stripStamp(line: string): string {
  const m = /^\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\] (.*)$/s.exec(line);
  if (!m) throw new Error(`not a result line: ${line}`);
  return m[1];
}

/** Runs one FOUND-answered command on a connection of its own and hands each result
 *  line's text (stamp stripped) to `onLine` as it arrives, without keeping the lines:
 *  answers of millions of lines cost no memory. Resolves with the FOUND count and the
 *  lines received once the server closes (after the answer: the command is followed
 *  by a FIN). */
export async function streamQuery(port: number, cmd: string, onLine: (text: string) => void): Promise<{ found: number; received: number }> {
  const socket = await connectTo(port);
  return new Promise((resolve, reject) => {
    let rest = '';
    let found = -1;
    let received = 0;
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      const text = rest + d;
      let start = 0;
      for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
        const line = text.slice(start, nl);
        start = nl + 1;
        if (found < 0) {
          const m = /^FOUND: (\d+) matches$/.exec(line);
          if (!m) {
            socket.destroy();
            reject(new Error(`expected FOUND, got: ${line}`));
            return;
          }
          found = Number(m[1]);
        } else {
          received++;
          onLine(stripStamp(line));
        }
      }
      rest = text.slice(start);
    });
    socket.on('error', reject);
    socket.on('close', () => (found < 0 ? reject(new Error(`connection closed before FOUND (${rest})`)) : resolve({ found, received })));
    socket.end(cmd + '\n');
  });
}
