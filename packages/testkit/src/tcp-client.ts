// `node tcp-client.js <host> <port> [--no-half-close]`: what `printf … | nc -N host port`
// does, for machines without nc and for running inside a network namespace: sends stdin,
// half-closes (unless told not to), writes everything received to stdout, exits when the
// server closes. Exit status 0, or 1 with the error on stderr.
import { connect } from 'node:net';

if (require.main === module) {
  const [host, port, flag] = process.argv.slice(2);
  const socket = connect({ host, port: Number(port) });
  socket.on('connect', () => {
    process.stdin.pipe(socket, { end: flag !== '--no-half-close' });
  });
  socket.pipe(process.stdout);
  socket.on('error', (e) => {
    process.stderr.write(`${e.message}\n`);
    process.exitCode = 1;
  });
  socket.on('close', () => process.stdin.destroy());
}

/** Path of this script, to run it as a child process. */
export const TCP_CLIENT_SCRIPT = __filename;
