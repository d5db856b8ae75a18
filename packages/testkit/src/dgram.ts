// Datagram peers for tests: a node:dgram UDP socket that records what it receives,
// and a Unix datagram peer in a python3 child process (node has no Unix datagrams).
import { spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';

import { waitFor } from './net';

export interface Datagram {
  data: Buffer;
  address: string;
  port: number;
}

export interface UdpPeer {
  socket: Socket;
  address: string;
  port: number;
  received: Datagram[];
  /** Resolves once the kernel took the datagram. */
  send(data: string | Buffer, port: number, host?: string): Promise<void>;
  /** Wait until `n` datagrams have arrived (fails after `ms`). */
  waitFor(n: number, ms?: number): Promise<void>;
  close(): Promise<void>;
}

/** A bound node:dgram socket (4 MiB receive buffer, so bursts are not dropped). */
export async function udpPeer(family: 'udp4' | 'udp6' = 'udp4'): Promise<UdpPeer> {
  const host = family === 'udp6' ? '::1' : '127.0.0.1';
  const socket = createSocket({ type: family, recvBufferSize: 4 << 20 });
  const received: Datagram[] = [];
  socket.on('message', (data, rinfo) => received.push({ data, address: rinfo.address, port: rinfo.port }));
  socket.on('error', () => {});
  await new Promise<void>((resolve) => socket.bind(0, host, resolve));
  const { address, port } = socket.address();
  return {
    socket,
    address,
    port,
    received,
    send: (data, to, toHost = host) =>
      new Promise<void>((resolve, reject) => socket.send(data, to, toHost, (err) => (err ? reject(err) : resolve()))),
    waitFor: (n, ms = 5000) => waitFor(() => received.length >= n, ms, () => `${n} datagrams (have ${received.length})`),
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

export interface UnixDgramExchange {
  /** Datagrams the peer received back, in order, as latin1 text. */
  replies: string[];
  /** The path the peer was bound to ('' when unnamed). */
  peerPath: string;
}

/**
 * A python3 child that (optionally bound to `bindPath`) sends `messages` to the Unix
 * datagram socket at `path`, then collects `expectReplies` datagrams (or stops after
 * `timeoutMs`). Resolves with what came back. Rejects when python3 is missing.
 */
export function unixDgramExchange(
  path: string,
  messages: string[],
  options: { bindPath?: string; expectReplies?: number; timeoutMs?: number } = {},
): Promise<UnixDgramExchange> {
  const script = `
import json, socket, sys
cfg = json.loads(sys.stdin.read())
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
if cfg['bind']: s.bind(cfg['bind'])
s.settimeout(cfg['timeout'])
for m in cfg['messages']: s.sendto(m.encode('latin1'), cfg['path'])
replies = []
try:
    while len(replies) < cfg['expect']: replies.append(s.recv(65536).decode('latin1'))
except socket.timeout:
    pass
print(json.dumps({'replies': replies}))
`;
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`python3 peer exited ${code}`));
      resolve({ replies: (JSON.parse(out) as { replies: string[] }).replies, peerPath: options.bindPath ?? '' });
    });
    child.stdin.end(
      JSON.stringify({
        path,
        messages,
        bind: options.bindPath ?? '',
        expect: options.expectReplies ?? 0,
        timeout: (options.timeoutMs ?? 5000) / 1000,
      }),
    );
  });
}
