#!/usr/bin/env node
'use strict';
// LogCaster example: a syslog relay, UDP in, TCP out.
//
//   node examples/syslog-relay --udp-port 5514 --target 127.0.0.1:9999
//
// Devices send RFC 5426 syslog over UDP; a collector (LogCaster, rsyslog, ...) is safer
// to feed over TCP. The relay takes one datagram = one message and forwards it on one
// TCP connection, framed with RFC 6587 octet counting (`<len> <msg>`, safe for messages
// that contain line ends) or as newline-terminated lines (--framing lf).
//
// Backpressure policy: the relay never queues more than one TCP high-water mark. When
// the collector is slower than the senders (write() returns false), or the connection
// is down, the relay stops reading UDP (pause). The kernel's receive buffer
// (--recv-buffer) then holds the burst; what does not fit is dropped by the kernel,
// never silently: the drops are counted (SO_RXQ_OVFL) and reported with the other
// counters every --report-interval seconds, on SIGUSR1 and at exit.

const { createReactor } = require('@logcaster/core');

function parseArgs(argv, defaults) {
  const options = Object.fromEntries(['help', ...Object.keys(defaults)].map((k) => [k, { type: k === 'help' ? 'boolean' : 'string' }]));
  const { values } = require('node:util').parseArgs({ args: argv, options });
  return Object.fromEntries(Object.entries({ ...defaults, ...values }).map(([k, v]) => [k, typeof defaults[k] === 'number' ? Number(v) : v]));
}

const USAGE =
  'usage: node examples/syslog-relay --target host:port [--udp-port 5514] [--host 127.0.0.1]\n' +
  '       [--framing octet|lf] [--recv-buffer 4194304] [--report-interval 10] [--backend auto|select|poll|epoll|iouring]';

let opts;
let target;
try {
  opts = parseArgs(process.argv.slice(2), { backend: 'auto', host: '127.0.0.1', 'udp-port': 5514, target: '', framing: 'octet', 'recv-buffer': 4 << 20, 'report-interval': 10 });
  if (opts.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const port = opts['udp-port'];
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error('--udp-port must be 0..65535');
  const m = /^(.+):(\d+)$/.exec(opts.target);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new Error('--target host:port is required (port 1..65535)');
  target = { host: m[1].replace(/^\[(.*)\]$/, '$1'), port: Number(m[2]) };
  if (opts.framing !== 'octet' && opts.framing !== 'lf') throw new Error('--framing must be octet or lf');
  if (!Number.isInteger(opts['recv-buffer']) || opts['recv-buffer'] < 0) throw new Error('--recv-buffer must be a byte count (0: the system default)');
  if (!(opts['report-interval'] >= 0)) throw new Error('--report-interval must be seconds >= 0 (0: only on SIGUSR1 and at exit)');
} catch (err) {
  console.error(`syslog-relay: ${err.message}\n${USAGE}`);
  process.exit(2);
}

const reactor = createReactor({ backend: opts.backend });
const counters = { received: 0, forwarded: 0, empty: 0, pauses: 0, connects: 0, disconnects: 0 };
let upstream; // the TCP connection while it is open
const held = []; // frames that came while no connection was open
let udp;
let stopping = false;
let retryMs = 100;

/** The message without the line ends and NULs senders append. */
function messageOf(data) {
  let end = data.length;
  while (end > 0 && (data[end - 1] === 0x0a || data[end - 1] === 0x0d || data[end - 1] === 0)) end--;
  return data.subarray(0, end);
}

function frame(msg) {
  if (opts.framing === 'octet') return Buffer.concat([Buffer.from(`${msg.length} `), msg]);
  // lf: a line end inside the message would split it in two lines; octet counting does not.
  return Buffer.concat([msg, Buffer.from('\n')]);
}

const udpHandler = {
  onMessage(sock, data) {
    counters.received++;
    const msg = messageOf(data);
    if (msg.length === 0) {
      counters.empty++;
      return;
    }
    // The rest of a batch still arrives after pause(): while no connection can take
    // it, it waits here (at most one batch: the socket is paused meanwhile).
    if (!upstream || !upstream.writable) {
      held.push(frame(msg));
      return;
    }
    counters.forwarded++;
    if (!upstream.write(frame(msg))) pauseUdp();
  },
};

function pauseUdp() {
  counters.pauses++;
  udp.pause();
}

const upstreamHandler = {
  onOpen(conn) {
    upstream = conn;
    counters.connects++;
    retryMs = 100;
    let room = true;
    for (const f of held.splice(0)) {
      counters.forwarded++;
      room = conn.write(f);
    }
    if (room) udp.resume();
    else counters.pauses++; // onDrain resumes
  },
  onDrain() {
    udp.resume(); // the collector caught up: read again
  },
  onData() {
    // A collector has nothing to say; ignore anything it sends.
  },
  onClose(conn, err) {
    const wasOpen = upstream === conn;
    upstream = undefined;
    if (wasOpen) {
      counters.disconnects++;
      udp.pause();
    }
    if (stopping) return;
    console.error(`syslog-relay: ${wasOpen ? 'lost' : 'cannot reach'} ${opts.target}${err ? `: ${err.message}` : ''}; retrying in ${retryMs} ms`);
    reactor.setTimer(retryMs, connectUpstream);
    retryMs = Math.min(retryMs * 2, 5000);
  },
};

function connectUpstream() {
  if (!stopping) reactor.connect(target, upstreamHandler);
}

function report() {
  const s = udp.stats();
  const fields = { ...counters, held: held.length, kernelDropped: s.dropped, truncated: s.truncated, queuedBytes: upstream ? upstream.bufferedAmount : 0, connected: upstream ? 1 : 0 };
  console.log(`syslog-relay stats: ${Object.entries(fields).map(([k, v]) => `${k}=${v}`).join(' ')}`);
}

try {
  udp = reactor.bindUdp({ host: opts.host, port: opts['udp-port'], recvBufferSize: opts['recv-buffer'] || undefined }, udpHandler);
} catch (err) {
  console.error(`syslog-relay: cannot bind UDP ${opts.host}:${opts['udp-port']}: ${err.message}`);
  process.exit(1);
}
udp.pause(); // nothing is read until the collector is connected
connectUpstream();

function shutdown() {
  if (stopping) return;
  stopping = true;
  report();
  udp.close(); // nothing more is read
  let closing = false;
  const done = () => {
    if (closing) return;
    closing = true;
    reactor.close().then(() => process.exit(0));
  };
  // What was handed to the connection leaves first: wait until the kernel took it all, for
  // at most 5 s (a collector that stopped reading).
  const conn = upstream;
  if (!conn || conn.bufferedAmount === 0) return void done();
  reactor.setTimer(20, () => { if (conn.closed || conn.bufferedAmount === 0) done(); }, { repeat: true });
  reactor.setTimer(5000, done);
}
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);
process.on('SIGUSR1', report);
if (opts['report-interval'] > 0) setInterval(report, opts['report-interval'] * 1000).unref();

console.log(`syslog-relay listening on udp ${udp.address}:${udp.port}, forwarding to tcp ${opts.target} (${opts.framing} framing, backend ${reactor.backend})`);
