#!/usr/bin/env node
'use strict';
// Load generator for examples/embed: sends --lines log lines over --connections TCP
// connections to a LogCaster ingest port as fast as the sockets accept them (respecting
// socket backpressure), then closes them and prints one summary line.
//
//   node examples/embed/load.js --port 9999 --lines 100000 --connections 50

const net = require('net');

// Options by node's own util.parseArgs, each value typed like its default.
function parseArgs(argv, defaults) {
  const options = Object.fromEntries(['help', ...Object.keys(defaults)].map((k) => [k, { type: k === 'help' ? 'boolean' : 'string' }]));
  const { values } = require('node:util').parseArgs({ args: argv, options });
  return Object.fromEntries(Object.entries({ ...defaults, ...values }).map(([k, v]) => [k, typeof defaults[k] === 'number' ? Number(v) : v]));
}
const opts = parseArgs(process.argv.slice(2), { host: '127.0.0.1', port: 9999, lines: 100000, connections: 50 });

const t0 = Date.now();
let done = 0;
let failed = 0;
for (let c = 0; c < opts.connections; c++) {
  // Spread the lines evenly; connection c sends lines c, c + C, c + 2C, ...
  const count = Math.floor(opts.lines / opts.connections) + (c < opts.lines % opts.connections ? 1 : 0);
  const sock = net.connect({ host: opts.host, port: opts.port });
  let n = 0;
  const pump = () => {
    while (n < count) {
      let batch = '';
      for (let k = 0; k < 200 && n < count; k++, n++) batch += `load conn=${c} seq=${n} level=info msg="request handled" latency_ms=${n % 97}\n`;
      if (!sock.write(batch)) return sock.once('drain', pump);
    }
    sock.end();
  };
  sock.on('connect', pump);
  sock.on('error', (err) => { failed++; console.error(`connection ${c}: ${err.message}`); });
  sock.on('close', () => {
    if (++done === opts.connections) {
      console.log(`load: sent ${opts.lines} lines over ${opts.connections} connections in ${Date.now() - t0} ms (${failed} failed)`);
      process.exitCode = failed ? 1 : 0;
    }
  });
}
