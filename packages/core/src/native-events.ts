// Mirrors core/native/engine.h, conn.h and sockets.h: the batch layout the engine
// writes for JS (test/native-events.test.ts checks that both sides agree).
export const EVENT_HEADER = 4; // int32s before the first record; [0] = record count
export const EVENT_INTS = 4; // kind, id, a, b

export const EV_OPEN = 1; // id, listener id (-1 outbound), watch errno
export const EV_DATA = 2; // id, arena offset, length
export const EV_DRAIN = 3;
export const EV_END = 4;
export const EV_CLOSE = 5; // id, errno, phase
export const EV_TIMEOUT = 6;
export const EV_LISTEN_ERROR = 7; // listener id, errno
export const EV_MESSAGE = 8; // datagram socket id, arena offset of the record, payload length
export const EV_SOCKET_ERROR = 9; // datagram socket id, errno, phase (the socket stays open)

// A datagram's record in the arena: flags, family, port (u16 LE), address length n
// (u16 LE), n address bytes, then the payload.
export const DATAGRAM_HEADER = 6;
export const DATAGRAM_TRUNCATED = 1; // flags bit
export const FAMILY_UNIX = 1;
export const FAMILY_IPV4 = 4;
export const FAMILY_IPV6 = 6;

export const PHASE_CONNECT = 1;
export const PHASE_READ = 2;
export const PHASE_WRITE = 3;
export const PHASE_WATCH = 4;
export const PHASE_TLS = 5; // handshake failed or timed out, bad record, alert: engine.tlsError(id) says why

export const SLOT_MASK = (1 << 20) - 1;
