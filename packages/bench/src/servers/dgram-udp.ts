// UDP servers on node:dgram for the datagram benchmarks: --mode sink counts datagrams,
// --mode echo sends each back to its sender. Prints "READY <port> -1"; SIGUSR1 prints
// one JSON line {"received":N,"sent":S} (node:dgram cannot tell kernel drops).
import { createSocket } from 'node:dgram';

let mode = 'sink';
let recvBuffer = 8 << 20;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  if (argv[i] === '--mode') mode = argv[i + 1];
  else if (argv[i] === '--recv-buffer') recvBuffer = Number(argv[i + 1]);
  else throw new Error(`unknown argument ${argv[i]}`);
}

let received = 0;
let sent = 0;
const sock = createSocket({ type: 'udp4', recvBufferSize: recvBuffer });
if (mode === 'echo') {
  sock.on('message', (data, rinfo) => {
    received++;
    sock.send(data, rinfo.port, rinfo.address, (err) => {
      if (!err) sent++;
    });
  });
} else {
  sock.on('message', () => {
    received++;
  });
}
const report = (): void => void process.stdout.write(`${JSON.stringify({ received, sent })}\n`);
process.on('SIGUSR1', report);
process.on('SIGTERM', () => {
  report();
  process.exit(0);
});
sock.bind(0, '127.0.0.1', () => process.stdout.write(`READY ${sock.address().port} -1\n`));
