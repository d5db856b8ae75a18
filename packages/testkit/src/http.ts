// HTTP/1.1 on raw sockets for tests: send exact bytes (split, pipelined, half-closed)
// and split what comes back into responses, Content-Length or chunked framed.
import { connect } from 'node:net';

import { HOST, delay } from './net';

export interface ParsedResponse {
  status: number;
  /** Lower-case names. */
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * Split a byte stream into complete responses. `headOnly(i)` says that response i has no
 * body whatever its headers say (the answer to HEAD). Stops at the first incomplete one;
 * `rest` is what follows the last complete response.
 */
export function parseHttpResponses(buf: Buffer, headOnly: (index: number) => boolean = () => false): { responses: ParsedResponse[]; rest: Buffer } {
  const responses: ParsedResponse[] = [];
  let off = 0;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', off);
    if (end < 0) break;
    const [statusLine, ...lines] = buf.toString('latin1', off, end).split('\r\n');
    const status = Number(statusLine.split(' ')[1]);
    const headers: Record<string, string> = {};
    for (const l of lines) {
      const c = l.indexOf(':');
      headers[l.slice(0, c).toLowerCase()] = l.slice(c + 1).trim();
    }
    let pos = end + 4;
    let body: Buffer;
    if (headOnly(responses.length) || status < 200 || status === 204 || status === 304) {
      body = Buffer.alloc(0);
    } else if (headers['transfer-encoding'] === 'chunked') {
      const parts: Buffer[] = [];
      let complete = false;
      for (;;) {
        const eol = buf.indexOf('\r\n', pos);
        if (eol < 0) break;
        const size = parseInt(buf.toString('latin1', pos, eol), 16);
        if (size === 0) {
          if (buf.length < eol + 4) break;
          pos = eol + 4;
          complete = true;
          break;
        }
        if (buf.length < eol + 2 + size + 2) break;
        parts.push(buf.subarray(eol + 2, eol + 2 + size));
        pos = eol + 2 + size + 2;
      }
      if (!complete) break;
      body = Buffer.concat(parts);
    } else if (headers['content-length'] !== undefined) {
      const len = Number(headers['content-length']);
      if (buf.length < pos + len) break;
      body = buf.subarray(pos, pos + len);
      pos += len;
    } else {
      // Close-delimited: the rest of the stream.
      body = buf.subarray(pos);
      pos = buf.length;
    }
    responses.push({ status, headers, body });
    off = pos;
  }
  return { responses, rest: buf.subarray(off) };
}

export interface RawExchange {
  data: Buffer;
  /** The server closed (FIN or reset) before `until` was satisfied. */
  closed: boolean;
  /** The connection ended with ECONNRESET. */
  reset: boolean;
}

export interface RawOptions {
  host?: string;
  /** Pause between pieces, ms (0: all written at once). */
  gapMs?: number;
  /** Half-close (FIN) right after the last piece, as `printf … | nc -q1` does. */
  end?: boolean;
  /** Stop reading and close once this returns true for what has arrived. */
  until?: (data: Buffer) => boolean;
  timeoutMs?: number;
}

/** Write `pieces` on one connection and collect the answer until the server closes. */
export function rawHttp(port: number, pieces: (string | Buffer)[], options: RawOptions = {}): Promise<RawExchange> {
  const { host = HOST, gapMs = 0, end = false, until, timeoutMs = 10000 } = options;
  return new Promise((resolve, reject) => {
    const sock = connect({ host, port, allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let reset = false;
    let settled = false;
    const finish = (closed: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), closed, reset });
      sock.destroy();
    };
    const timer = setTimeout(() => {
      settled = true;
      sock.destroy();
      reject(new Error(`rawHttp: no close within ${timeoutMs} ms; got ${Buffer.concat(chunks).toString('latin1').slice(0, 300)}`));
    }, timeoutMs);
    sock.on('connect', async () => {
      for (const p of pieces) {
        if (sock.destroyed) return;
        sock.write(p);
        if (gapMs > 0) await delay(gapMs);
      }
      if (end && !sock.destroyed) sock.end();
    });
    sock.on('data', (d: Buffer) => {
      chunks.push(d);
      if (until && until(Buffer.concat(chunks))) finish(false);
    });
    sock.on('end', () => finish(true));
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET') reset = true;
      finish(true);
    });
    sock.on('close', () => finish(true));
  });
}

/** `until` for rawHttp: n complete responses have arrived. */
export function responsesComplete(n: number, headOnly?: (index: number) => boolean): (data: Buffer) => boolean {
  return (data) => parseHttpResponses(data, headOnly).responses.length >= n;
}
