// Connections turned away at onOpen (over --max-clients, --max-query-clients): they get
// one line, then go away whatever the peer does, so refused clients cannot pin
// descriptors.
import type { Connection } from '@logcaster/core';

/** How long a connection we ended (refused, or after QUIT) may linger: time for the
 *  peer to read the last line; after that it is destroyed, read or not. */
export const LINGER_MS = 2000;

/** The context of a refused connection. */
export class Refused {
  readonly at = Date.now();
}

/** Write `line` and half-close. The peer's FIN then closes the connection; what it
 *  sends meanwhile is dropped (see dropRefused), and one that neither closes nor stops
 *  talking is destroyed after LINGER_MS. */
export function refuse(conn: Connection, line: string): void {
  conn.context = new Refused();
  conn.end(line);
  conn.setIdleTimeout(LINGER_MS);
}

/** For onData and onTimeout: true when `conn` is a refused connection (the event is
 *  then handled: its bytes dropped, the connection destroyed once past the grace). */
export function dropRefused(conn: Connection, timedOut: boolean): boolean {
  const r = conn.context;
  if (!(r instanceof Refused)) return false;
  if (timedOut || Date.now() - r.at >= LINGER_MS) conn.destroy();
  return true;
}
