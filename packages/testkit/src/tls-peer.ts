// A node:tls client that records everything it receives: peer() of net.ts over TLS.
import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls';

import { recordPeer, type Peer } from './net';

export interface TlsPeer extends Peer {
  socket: TLSSocket;
}

/** Connects to 127.0.0.1:port (unless `options.host` says otherwise, or `options.socket`
 *  is a connected socket to run TLS over) and resolves once the handshake is done;
 *  rejects when it fails. */
export function tlsPeer(port: number, options: ConnectionOptions & { allowHalfOpen?: boolean } = {}): Promise<TlsPeer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ...options });
    const p = recordPeer(socket);
    socket.once('error', reject);
    socket.once('secureConnect', () => {
      socket.removeListener('error', reject);
      socket.on('error', () => {});
      resolve(p);
    });
  });
}
