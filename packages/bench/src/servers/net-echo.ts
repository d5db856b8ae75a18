// node:net echo server: the baseline the reactor's echo is compared with; with
// --tls-cert/--tls-key a node:tls server, the TLS benchmark's baseline.
import type * as net from 'node:net';

import { exitOnSignals, parseArgs, ready, tlsFiles } from './common';
import { createServerOf } from './net-server';

const args = parseArgs(process.argv.slice(2));
const server = createServerOf(tlsFiles(args), (sock) => {
  sock.on('data', (d) => {
    sock.write(d);
  });
  sock.on('error', () => sock.destroy());
});
server.listen({ host: args.host, port: args.port, backlog: 4096 }, () => {
  const addr = server.address() as net.AddressInfo;
  ready(addr.port, -1);
});
exitOnSignals();
