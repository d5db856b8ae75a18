// node:net echo server: the baseline the reactor's echo is compared with.
import * as net from 'node:net';

import { exitOnSignals, parseArgs, ready } from './common';

const args = parseArgs(process.argv.slice(2));
const server = net.createServer({ noDelay: true }, (sock) => {
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
