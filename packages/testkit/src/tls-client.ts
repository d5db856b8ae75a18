// `node tls-client.js <host> <port> <ca file> <cert file|-> <key file|-> <lines>`: a
// node:tls client for running inside a network namespace. Verifies the server
// (servername localhost) against the CA, presents the client certificate if given,
// sends stdin without ending its side (a TLS half-close would race the answer), writes
// what it receives to stdout and exits once `lines` lines arrived or the server closed.
// Exit status 0, or 1 with the error on stderr.
import { readFileSync } from 'node:fs';
import { connect } from 'node:tls';

if (require.main === module) {
  const [host, port, caFile, certFile, keyFile, lines] = process.argv.slice(2);
  const own = certFile !== '-' ? { cert: readFileSync(certFile), key: readFileSync(keyFile) } : {};
  const socket = connect({ host, port: Number(port), servername: 'localhost', ca: readFileSync(caFile), ...own });
  let seen = 0;
  socket.on('secureConnect', () => process.stdin.pipe(socket, { end: false }));
  socket.on('data', (d: Buffer) => {
    process.stdout.write(d);
    for (const b of d) if (b === 10) seen++;
    if (seen >= Number(lines)) socket.destroy();
  });
  socket.on('error', (e) => {
    process.stderr.write(`${e.message}\n`);
    process.exitCode = 1;
  });
  socket.on('close', () => process.stdin.destroy());
}

/** Path of this script, to run it as a child process. */
export const TLS_CLIENT_SCRIPT = __filename;
