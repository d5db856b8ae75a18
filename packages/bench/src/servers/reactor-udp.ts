// UDP servers on the LogCaster reactor (public API of @logcaster/core) for the datagram
// benchmarks, one backend (--backend): --mode sink counts datagrams, --mode echo sends
// each back to its sender (the sends of a batch leave in one sendmmsg), pausing while
// the send queue is over its high-water mark. Prints "READY <port> -1"; SIGUSR1 prints
// the socket's stats() as one JSON line.
import { exitOnSignals } from './common';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const core = require('@logcaster/core') as typeof import('@logcaster/core');

let mode = 'sink';
let backend = 'auto';
let recvBuffer = 8 << 20;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  if (argv[i] === '--mode') mode = argv[i + 1];
  else if (argv[i] === '--backend') backend = argv[i + 1];
  else if (argv[i] === '--recv-buffer') recvBuffer = Number(argv[i + 1]);
  else throw new Error(`unknown argument ${argv[i]}`);
}

const reactor = core.createReactor({ backend: backend as import('@logcaster/core').BackendName | 'auto' });
const handler: import('@logcaster/core').DatagramHandler =
  mode === 'echo'
    ? {
        onMessage(sock, data, remote) {
          if (!sock.send(data, remote.port, remote.address)) sock.pause();
        },
        onDrain(sock) {
          sock.resume();
        },
      }
    : { onMessage() {} };
const sock = reactor.bindUdp({ host: '127.0.0.1', port: 0, recvBufferSize: recvBuffer }, handler);
process.on('SIGUSR1', () => void process.stdout.write(`${JSON.stringify(sock.stats())}\n`));
exitOnSignals();
process.stderr.write(`reactor-udp: ${mode} on backend ${reactor.backend}\n`);
process.stdout.write(`READY ${sock.port} -1\n`);
