// One small in-memory response (GET /health → {"status":"ok"}), served by the
// implementation named on the command line, for wrk.ts. Prints "listening <port>".
//
//   node dist/bench/health-server.js logcaster [backend]
//   node dist/bench/health-server.js node
import * as http from 'node:http';

import { createReactor, type BackendName } from '@logcaster/core';

import { createHttpHandler } from '../src';

const BODY = `${JSON.stringify({ status: 'ok' })}\n`;
const impl = process.argv[2];

if (impl === 'logcaster') {
  const reactor = createReactor({ backend: (process.argv[3] ?? 'auto') as BackendName | 'auto' });
  const listener = reactor.listen(
    { port: 0 },
    createHttpHandler((req, res) => {
      if (req.path === '/health') res.send(200, BODY, 'application/json');
      else res.send(404, 'not found\n');
    }),
  );
  console.log(`listening ${listener.port} logcaster/${reactor.backend}`);
  process.once('SIGTERM', () => void reactor.close().then(() => process.exit(0)));
} else if (impl === 'node') {
  const server = http.createServer((req, res) => {
    if (req.url === '/health') {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(BODY) });
      res.end(BODY);
    } else {
      res.writeHead(404, { 'Content-Length': 0 });
      res.end();
    }
  });
  server.keepAliveTimeout = 5000;
  server.listen(0, '127.0.0.1', () => console.log(`listening ${(server.address() as { port: number }).port} node:http`));
  process.once('SIGTERM', () => process.exit(0));
} else {
  console.error('usage: health-server.js logcaster [backend] | node');
  process.exit(2);
}
