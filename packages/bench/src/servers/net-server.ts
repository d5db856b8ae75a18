// A node:net server, or a node:tls one given a certificate: the baselines' one switch.
import * as net from 'node:net';
import * as tls from 'node:tls';

export function createServerOf(pem: { cert: string; key: string } | undefined, onConnection: (sock: net.Socket) => void): net.Server {
  return pem ? tls.createServer({ ...pem, noDelay: true }, onConnection) : net.createServer({ noDelay: true }, onConnection);
}
