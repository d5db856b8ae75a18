// Small real-socket helpers for tests: node:net peers, waiting, fd counting.
import { readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll `cond` until true or fail after `ms`. */
export async function waitFor(cond: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await delay(5);
  }
}

export function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

export interface Peer {
  socket: Socket;
  received(): Buffer;
  /** bytes received so far (cheap: no concatenation) */
  bytes(): number;
  /** received() as UTF-8 text */
  text(): string;
  ended: Promise<void>;
  closed: Promise<boolean>;
}

/** A node:net client that records everything it receives. */
export function peer(port: number, host = '127.0.0.1', allowHalfOpen = false): Promise<Peer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let count = 0;
    const socket = connect({ port, host, allowHalfOpen });
    let onEnd!: () => void;
    const ended = new Promise<void>((r) => (onEnd = r));
    const closed = new Promise<boolean>((r) => socket.once('close', r));
    socket.on('data', (d) => {
      chunks.push(d);
      count += d.length;
    });
    socket.on('end', () => onEnd());
    socket.on('error', () => {});
    socket.once('connect', () =>
      resolve({
        socket,
        received: () => Buffer.concat(chunks),
        bytes: () => count,
        text: () => Buffer.concat(chunks).toString(),
        ended,
        closed,
      }),
    );
    socket.once('error', reject);
  });
}

export function pattern(size: number, seed = 7): Buffer {
  const b = Buffer.allocUnsafe(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}
