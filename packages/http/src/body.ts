// Request bodies: a fixed Content-Length copied into one buffer of that size, or the
// chunked coding (RFC 9112 §7.1) decoded incrementally. Both take bytes as they arrive
// (views that die with the call: what is kept is copied) and say how many they used.

import type { HeadError } from './request-head';

export interface BodyReader {
  /** Consume from `buf[off, end)`; returns the offset after the last byte used. */
  push(buf: Buffer, off: number, end: number): number;
  readonly done: boolean;
  /** Set when the body is malformed or too large; the connection cannot continue. */
  readonly error: HeadError | undefined;
  /** The whole body, once done. */
  body(): Buffer;
}

export class FixedBody implements BodyReader {
  private readonly buf: Buffer;
  private got = 0;
  readonly error = undefined;
  constructor(length: number) {
    this.buf = Buffer.allocUnsafe(length);
  }
  get done(): boolean {
    return this.got === this.buf.length;
  }
  push(buf: Buffer, off: number, end: number): number {
    const n = Math.min(end - off, this.buf.length - this.got);
    buf.copy(this.buf, this.got, off, off + n);
    this.got += n;
    return off + n;
  }
  body(): Buffer {
    return this.buf;
  }
}

const enum State {
  Size,
  Data,
  DataEnd,
  Trailer,
  Done,
}

const MAX_LINE = 1024; // a chunk-size line with extensions, or one trailer field
const HEX = /^[0-9a-fA-F]{1,8}$/;

export class ChunkedBody implements BodyReader {
  private state = State.Size;
  private line = '';
  private remaining = 0;
  private total = 0;
  private trailerBytes = 0;
  private readonly parts: Buffer[] = [];
  error: HeadError | undefined;

  constructor(
    private readonly maxBodyBytes: number,
    private readonly maxTrailerBytes: number,
  ) {}

  get done(): boolean {
    return this.state === State.Done;
  }

  push(buf: Buffer, off: number, end: number): number {
    while (off < end && this.state !== State.Done && !this.error) {
      if (this.state === State.Data) {
        const n = Math.min(end - off, this.remaining);
        this.parts.push(Buffer.from(buf.subarray(off, off + n)));
        off += n;
        this.remaining -= n;
        if (this.remaining === 0) this.state = State.DataEnd;
        continue;
      }
      // The other states read CRLF-terminated lines.
      const lf = buf.indexOf(10, off);
      const stop = lf < 0 || lf >= end ? end : lf;
      if (this.line.length + (stop - off) > MAX_LINE) {
        this.error = { status: 400, reason: 'chunked body: line too long' };
        break;
      }
      this.line += buf.toString('latin1', off, stop);
      off = stop;
      if (stop === end) break; // line continues in the next packet
      off++; // the LF
      if (!this.line.endsWith('\r')) {
        this.error = { status: 400, reason: 'chunked body: line not terminated by CRLF' };
        break;
      }
      const line = this.line.slice(0, -1);
      this.line = '';
      this.onLine(line);
    }
    return off;
  }

  private onLine(line: string): void {
    switch (this.state) {
      case State.Size: {
        const semi = line.indexOf(';');
        const digits = (semi < 0 ? line : line.slice(0, semi)).trimEnd();
        if (!HEX.test(digits)) {
          this.error = { status: 400, reason: 'chunked body: malformed chunk size' };
          return;
        }
        const size = parseInt(digits, 16);
        this.total += size;
        if (this.total > this.maxBodyBytes) {
          this.error = { status: 413, reason: `body larger than ${this.maxBodyBytes} bytes` };
          return;
        }
        this.remaining = size;
        this.state = size === 0 ? State.Trailer : State.Data;
        return;
      }
      case State.DataEnd:
        if (line !== '') this.error = { status: 400, reason: 'chunked body: chunk data longer than its size' };
        else this.state = State.Size;
        return;
      case State.Trailer:
        // Trailer fields are read and dropped: nothing here uses them.
        if (line === '') this.state = State.Done;
        else if ((this.trailerBytes += line.length) > this.maxTrailerBytes) this.error = { status: 431, reason: 'trailer fields too large' };
        return;
      default:
        return;
    }
  }

  body(): Buffer {
    return this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts);
  }
}
