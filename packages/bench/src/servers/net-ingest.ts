// node:net ingest server: the baseline LogCaster's ingest is compared with (with
// --tls-cert/--tls-key the ingest port is node:tls, for the TLS benchmark).
// Newline-terminated lines are copied into one preallocated arena (a ring, no per-line
// objects); with --ack, "OK\n" is written per line, one write per chunk read.
// The query port answers COUNT and STATS like LogCaster.
import * as net from 'node:net';

import { exitOnSignals, parseArgs, ready, tlsFiles } from './common';
import { createServerOf } from './net-server';

const MAX_LINE = 65536;
const ARENA = Buffer.allocUnsafe(64 << 20);
let arenaPos = 0;
let total = 0;
let clients = 0;
const OKS = Buffer.from('OK\n'.repeat(8192));

function store(src: Buffer, start: number, end: number): void {
  if (end > start && src[end - 1] === 13) end--;
  const n = end - start;
  if (arenaPos + n > ARENA.length) arenaPos = 0;
  src.copy(ARENA, arenaPos, start, end);
  arenaPos += n;
  total++;
}

const args = parseArgs(process.argv.slice(2));
const server = createServerOf(tlsFiles(args), (sock) => {
  clients++;
  let part: Buffer | null = null;
  sock.on('data', (d: Buffer) => {
    let start = 0;
    let k = 0;
    for (;;) {
      const nl = d.indexOf(10, start);
      if (nl < 0) break;
      if (part) {
        const joined = Buffer.concat([part, d.subarray(start, nl)]);
        store(joined, 0, Math.min(joined.length, MAX_LINE));
        part = null;
      } else {
        store(d, start, Math.min(nl, start + MAX_LINE));
      }
      k++;
      start = nl + 1;
    }
    if (start < d.length) {
      const rest = Buffer.from(d.subarray(start));
      part = part ? Buffer.concat([part, rest]).subarray(0, MAX_LINE) : rest;
    }
    if (args.ack && k) {
      while (k > 0) {
        const m = Math.min(k, 8192);
        sock.write(OKS.subarray(0, m * 3));
        k -= m;
      }
    }
  });
  sock.on('error', () => sock.destroy());
  sock.on('close', () => clients--);
});

const query = net.createServer((sock) => {
  let buf = '';
  sock.on('data', (d) => {
    buf += d.toString('latin1');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const cmd = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (cmd === 'COUNT') sock.write(`COUNT: ${total}\n`);
      else if (cmd === 'STATS') sock.write(`STATS: Total=${total}, Dropped=0, Current=${total}, Clients=${clients}\n`);
      else sock.write('ERROR: unknown command\n');
    }
  });
  sock.on('error', () => sock.destroy());
});

server.listen({ host: args.host, port: args.port, backlog: 4096 }, () => {
  const port = (server.address() as net.AddressInfo).port;
  if (args.queryPort < 0) return ready(port, -1);
  query.listen({ host: args.host, port: args.queryPort }, () => {
    ready(port, (query.address() as net.AddressInfo).port);
  });
});
exitOnSignals();
