'use strict';
// Echo server for the backend benchmark: node echo-server.js <backend> <port>
// Prints "ready <pid>" once listening; runs until killed.
const { createReactorWith } = require('@logcaster/core');
const name = process.argv[2] || 'iouring';
const port = Number(process.argv[3] || 0);
// eslint-disable-next-line import/no-dynamic-require
const backend = require(`@logcaster/backend-${name}`);
const reactor = createReactorWith(backend, {});
const l = reactor.listen({ host: '127.0.0.1', port }, {
  onData(conn, data) {
    conn.write(data);
  },
});
process.stdout.write(`ready ${process.pid} ${l.port}\n`);
process.on('SIGTERM', () => reactor.close().then(() => process.exit(0)));
