#!/usr/bin/env node
'use strict';
// LogCaster example: the simplest multiplexed echo server.
//
//   node examples/echo --backend epoll --port 7000
//
// One reactor, one listener, one handler object shared by every connection.
// Everything a connection sends is written straight back. When the peer does not
// read its echoes fast enough, write() returns false: we stop reading from that peer
// (pause) until its queue has drained (onDrain -> resume). That is the whole of
// backpressure, and it keeps the server's memory bounded whatever clients do.

const { createReactor } = require('@logcaster/core');

// Options by node's own util.parseArgs, each value typed like its default.
function parseArgs(argv, defaults) {
  const options = Object.fromEntries(['help', ...Object.keys(defaults)].map((k) => [k, { type: k === 'help' ? 'boolean' : 'string' }]));
  const { values } = require('node:util').parseArgs({ args: argv, options });
  return Object.fromEntries(Object.entries({ ...defaults, ...values }).map(([k, v]) => [k, typeof defaults[k] === 'number' ? Number(v) : v]));
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2), { backend: 'auto', host: '127.0.0.1', port: 7000 });
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) throw new Error('--port must be 0..65535');
} catch (err) {
  console.error(`echo: ${err.message}`);
  process.exit(2);
}
if (opts.help) {
  console.log('usage: node examples/echo [--backend auto|select|poll|epoll|iouring] [--host 127.0.0.1] [--port 7000]');
  process.exit(0);
}

const reactor = createReactor({ backend: opts.backend });

const echoHandler = {
  onData(conn, data) {
    // `data` is only valid during this call; write() copies what it cannot send now.
    if (!conn.write(data)) conn.pause(); // peer is not reading: stop reading from it
  },
  onDrain(conn) {
    conn.resume(); // its queue emptied: read again
  },
  onClose(conn, err) {
    if (err && process.env.ECHO_VERBOSE) console.error(`connection ${conn.id} closed: ${err.message}`);
  },
};

// Install the signal handlers before announcing the port, so a signal sent as soon as
// the line is read already finds them.
function shutdown() {
  reactor.close().then(() => process.exit(0));
}
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);

const listener = reactor.listen({ host: opts.host, port: opts.port }, echoHandler);
// First line on stdout is machine-readable: tests and scripts parse the real port from it.
console.log(`echo listening on ${listener.host}:${listener.port} (backend ${reactor.backend})`);
