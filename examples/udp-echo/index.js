#!/usr/bin/env node
'use strict';
// LogCaster example: a UDP echo server.
//
//   node examples/udp-echo --backend epoll --port 7002
//
// One datagram socket; every datagram goes back to its sender. The readiness backends
// receive up to 64 datagrams per recvmmsg and send the replies of one batch with one
// sendmmsg; io_uring receives with a multishot RECVMSG. When send() returns false (the
// socket's send queue is over its high-water mark) we stop reading (pause) until the
// queue has drained (onDrain -> resume): the kernel's receive buffer holds what arrives
// meanwhile, and what does not fit it is dropped by the kernel and counted
// (stats().dropped), which SIGUSR1 prints.

const { createReactor } = require('@logcaster/core');

// Options by node's own util.parseArgs, each value typed like its default.
function parseArgs(argv, defaults) {
  const options = Object.fromEntries(['help', ...Object.keys(defaults)].map((k) => [k, { type: k === 'help' ? 'boolean' : 'string' }]));
  const { values } = require('node:util').parseArgs({ args: argv, options });
  return Object.fromEntries(Object.entries({ ...defaults, ...values }).map(([k, v]) => [k, typeof defaults[k] === 'number' ? Number(v) : v]));
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2), { backend: 'auto', host: '127.0.0.1', port: 7002, 'recv-buffer': 4 << 20 });
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) throw new Error('--port must be 0..65535');
  if (!Number.isInteger(opts['recv-buffer']) || opts['recv-buffer'] < 0) throw new Error('--recv-buffer must be a byte count (0: the system default)');
} catch (err) {
  console.error(`udp-echo: ${err.message}`);
  process.exit(2);
}
if (opts.help) {
  console.log('usage: node examples/udp-echo [--backend auto|select|poll|epoll|iouring] [--host 127.0.0.1] [--port 7002] [--recv-buffer 4194304]');
  process.exit(0);
}

const reactor = createReactor({ backend: opts.backend });

const echoHandler = {
  onMessage(sock, data, remote) {
    // `data` is valid only during this call; send() copies it. Replies sent here leave
    // together after the batch.
    if (!sock.send(data, remote.port, remote.address)) sock.pause();
  },
  onDrain(sock) {
    sock.resume();
  },
  onError(sock, err) {
    // e.g. a reply the kernel refused (EMSGSIZE): the socket stays open.
    if (process.env.ECHO_VERBOSE) console.error(`udp-echo: ${err.message}`);
  },
};

const sock = reactor.bindUdp({ host: opts.host, port: opts.port, recvBufferSize: opts['recv-buffer'] || undefined }, echoHandler);

function printStats() {
  const s = sock.stats();
  console.log(`udp-echo stats: received=${s.received} sent=${s.sent} dropped=${s.dropped} truncated=${s.truncated} sendErrors=${s.sendErrors}`);
}

// Signal handlers before the announcement, so a signal sent as soon as the line is read
// already finds them.
function shutdown() {
  printStats();
  reactor.close().then(() => process.exit(0));
}
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);
process.on('SIGUSR1', printStats);

// First line on stdout is machine-readable: tests and scripts parse the real port from it.
console.log(`udp-echo listening on ${sock.address}:${sock.port} (backend ${reactor.backend})`);
