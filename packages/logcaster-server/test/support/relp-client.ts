// A minimal RELP client for tests: open, numbered syslog commands, close, and the
// server's responses parsed back into frames (the real sender, rsyslog's omrelp, is
// in ingest/rsyslog.test.ts).
import type * as net from 'node:net';

import { connectTo, waitFor } from '@logcaster/testkit';

export interface RelpResponse {
  txnr: number;
  command: string;
  data: string;
}

export class RelpClient {
  readonly responses: RelpResponse[] = [];
  private buf = '';
  private txnr = 0;
  closed = false;
  private constructor(readonly socket: net.Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buf += d;
      for (;;) {
        const m = /^(\d+) ([a-z]+) (\d+)/.exec(this.buf);
        if (!m) break;
        const len = Number(m[3]);
        const start = m[0].length + (len > 0 ? 1 : 0);
        if (this.buf.length < start + len + 1) break;
        this.responses.push({ txnr: Number(m[1]), command: m[2], data: this.buf.slice(start, start + len) });
        this.buf = this.buf.slice(start + len + 1);
      }
    });
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => {});
  }

  static async connect(port: number): Promise<RelpClient> {
    return new RelpClient(await connectTo(port));
  }

  /** Write one command frame; returns its txnr. */
  command(command: string, data = ''): number {
    const txnr = ++this.txnr;
    const len = Buffer.byteLength(data, 'latin1');
    this.socket.write(len ? `${txnr} ${command} ${len} ${data}\n` : `${txnr} ${command} 0\n`, 'latin1');
    return txnr;
  }

  open(): number {
    return this.command('open', 'relp_version=0\nrelp_software=test\ncommands=syslog');
  }

  async waitResponses(n: number, ms = 5000): Promise<void> {
    await waitFor(() => this.responses.length >= n, ms, () => `${n} RELP responses (have ${this.responses.length})`);
  }
}
