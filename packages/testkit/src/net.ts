// Real-socket helpers for tests: node:net peers, waiting, fd counting.
import { readdirSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

export const HOST = '127.0.0.1';

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolves after the current event-loop turn (I/O callbacks of this turn have run). */
export function nextTurn(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

/** A TCP port on 127.0.0.1 that was free a moment ago (for a peer that starts later). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, HOST, () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Poll `cond` until true or fail after `ms`; `what` names the condition in the error. */
export async function waitFor(cond: () => boolean, ms = 5000, what: string | (() => string) = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${typeof what === 'function' ? what() : what}`);
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

/** Starts recording what `socket` receives (from now on) as a Peer. */
export function recordPeer<S extends Socket>(socket: S): Peer & { socket: S } {
  const chunks: Buffer[] = [];
  let count = 0;
  let onEnd!: () => void;
  const ended = new Promise<void>((r) => (onEnd = r));
  const closed = new Promise<boolean>((r) => socket.once('close', r));
  socket.on('data', (d: Buffer) => {
    chunks.push(d);
    count += d.length;
  });
  socket.on('end', () => onEnd());
  return {
    socket,
    received: () => Buffer.concat(chunks),
    bytes: () => count,
    text: () => Buffer.concat(chunks).toString(),
    ended,
    closed,
  };
}

/** A node:net client that records everything it receives. */
export function peer(port: number, host = '127.0.0.1', allowHalfOpen = false): Promise<Peer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host, allowHalfOpen });
    const p = recordPeer(socket);
    socket.on('error', () => {});
    socket.once('connect', () => resolve(p));
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

/** A plain node:net connection, resolved once connected. */
export function connectTo(port: number, host = HOST): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Send bytes on a new connection (optionally in parts, `gapMs` apart), half-close,
 *  wait for the server to close. Returns what the server wrote back. */
export async function sendAndClose(port: number, data: string | Buffer | (string | Buffer)[], gapMs = 0, host = HOST): Promise<Buffer> {
  const s = await connectTo(port, host);
  const chunks: Buffer[] = [];
  s.on('data', (d: Buffer) => chunks.push(d));
  const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
  s.on('error', () => {});
  const parts = Array.isArray(data) ? data : [data];
  for (const p of parts) {
    s.write(p);
    if (gapMs) await delay(gapMs);
  }
  s.end();
  await closed;
  return Buffer.concat(chunks);
}
