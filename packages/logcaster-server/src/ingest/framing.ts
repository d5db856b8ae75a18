// Per-connection framing of the ingest stream into log lines.
//
// Two framings, chosen per connection from its first bytes:
//  - newline-delimited (LF or CRLF) — the LogCaster protocol;
//  - RFC 6587 octet counting, "<len> <msg>" — what `logger --octet-count` and rsyslog
//    send. Chosen when the connection starts with a non-zero digit, up to 9 digits,
//    then a space. If a later frame header is malformed the connection falls back to
//    newline framing for the rest of its life (as rsyslog does).
//
// Lines are handed to the sink as (buffer, start, end) ranges of the buffer that
// arrived — the reactor's read buffer — without copying. Only a partial trailing
// line is copied, into a small per-connection carry buffer that grows up to
// maxLine (+2 bytes for a trailing CRLF). Bytes of an over-long line past maxLine are
// counted and discarded, never buffered. Empty lines are skipped.

/** Receives one line: bytes [start, end) of `buf`, valid only during the call.
 *  `truncated` > 0 means the line was longer than maxLine and that many bytes were
 *  dropped from its end (the kept part never ends inside a UTF-8 sequence). */
export type LineSink = (buf: Buffer, start: number, end: number, truncated: number) => void;

const LF = 10;
const CR = 13;
const SPACE = 32;
const MAX_HEADER_DIGITS = 9;

const MODE_UNKNOWN = 0;
const MODE_LF = 1;
const MODE_OCTET = 2;

export type FramingMode = 'unknown' | 'newline' | 'octet-counted';

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** How many of `len` bytes at buf[start..] to keep so that at most `max` bytes remain
 *  and the cut does not fall inside a UTF-8 multi-byte sequence. */
export function utf8Cut(buf: Uint8Array, start: number, len: number, max: number): number {
  if (len <= max) return len;
  let keep = max;
  // buf[start + keep] is the first dropped byte; if it is a continuation byte, the
  // character it belongs to started earlier: drop that character too.
  for (let back = 0; back < 3 && keep > 0 && (buf[start + keep] & 0xc0) === 0x80; back++) keep--;
  if ((buf[start + keep] & 0xc0) === 0x80) keep = max; // not valid UTF-8 anyway
  return keep;
}

export class LineFramer {
  private mode = MODE_UNKNOWN;
  private carry: Buffer | undefined;
  private carryLen = 0;
  /** Bytes of the current line/frame dropped past the carry limit. */
  private discarded = 0;
  /** The last two bytes appended to the current line/frame, kept or discarded (-1:
   *  none): a line ending that fell into the discarded part is not content. */
  private tail1 = -1;
  private tail2 = -1;
  // octet-counting state
  private inHeader = true;
  private header = 0;
  private headerDigits = 0;
  private need = 0;

  /** Non-empty lines handed to the sink. */
  lines = 0;
  truncatedLines = 0;

  constructor(
    private readonly maxLine: number,
    private readonly sink: LineSink,
  ) {
    if (!(maxLine >= 1)) throw new RangeError(`maxLine must be >= 1, got ${maxLine}`);
  }

  get framing(): FramingMode {
    return this.mode === MODE_LF ? 'newline' : this.mode === MODE_OCTET ? 'octet-counted' : 'unknown';
  }

  /** Bytes held in the carry buffer (partial line). */
  get pendingBytes(): number {
    return this.carryLen;
  }

  push(data: Buffer): void {
    if (data.length === 0) return;
    if (this.mode === MODE_LF) this.pushLf(data, 0);
    else if (this.mode === MODE_OCTET) this.pushOctet(data, 0);
    else this.detect(data);
  }

  /** End of stream: hand on a partial last line (or partial frame). */
  finish(): void {
    if (this.mode === MODE_UNKNOWN) {
      this.mode = MODE_LF;
    } else if (this.mode === MODE_OCTET) {
      if (this.inHeader) {
        if (this.headerDigits > 0) {
          // digits without their space: plain text
          this.appendCarry(Buffer.from(String(this.header)), 0, this.headerDigits);
        }
      } else {
        this.need = 0;
        this.inHeader = true;
      }
      this.emitCarry(true);
      return;
    }
    this.emitCarry(false);
  }

  // ---- detection ----
  private detect(data: Buffer): void {
    // The first bytes of the connection are kept in the carry until we know.
    const seen = this.carryLen;
    let i = 0;
    let decided = MODE_UNKNOWN;
    for (; i < data.length; i++) {
      const pos = seen + i;
      const c = data[i];
      if (pos === 0) {
        if (c < 49 || c > 57) {
          decided = MODE_LF;
          break;
        }
      } else if (c === SPACE) {
        decided = MODE_OCTET;
        break;
      } else if (!isDigit(c) || pos >= MAX_HEADER_DIGITS) {
        decided = MODE_LF;
        break;
      }
    }
    if (decided === MODE_UNKNOWN) {
      this.appendCarry(data, 0, data.length);
      return;
    }
    this.mode = decided;
    let prefix: Buffer | undefined;
    if (this.carryLen > 0) {
      prefix = Buffer.from(this.carry!.subarray(0, this.carryLen));
      this.carryLen = 0;
      this.tail1 = this.tail2 = -1;
    }
    if (decided === MODE_LF) {
      if (prefix) this.pushLf(prefix, 0);
      this.pushLf(data, 0);
    } else {
      if (prefix) this.pushOctet(prefix, 0);
      this.pushOctet(data, 0);
    }
  }

  // ---- newline framing ----
  private pushLf(data: Buffer, pos: number): void {
    const n = data.length;
    while (pos < n) {
      const nl = data.indexOf(LF, pos);
      if (nl === -1) {
        this.appendCarry(data, pos, n);
        return;
      }
      if (this.carryLen > 0 || this.discarded > 0) {
        this.appendCarry(data, pos, nl);
        this.emitCarry(false);
      } else {
        this.emit(data, pos, nl, 0, false);
      }
      pos = nl + 1;
    }
  }

  // ---- octet counting ----
  private pushOctet(data: Buffer, pos: number): void {
    const n = data.length;
    while (pos < n) {
      if (this.inHeader) {
        const c = data[pos];
        if (isDigit(c) && !(c === 48 && this.headerDigits === 0) && this.headerDigits < MAX_HEADER_DIGITS) {
          this.header = this.header * 10 + (c - 48);
          this.headerDigits++;
          pos++;
        } else if (c === SPACE && this.headerDigits > 0) {
          this.inHeader = false;
          this.need = this.header;
          this.header = 0;
          this.headerDigits = 0;
          pos++;
        } else if ((c === LF || c === CR) && this.headerDigits === 0) {
          pos++; // stray line ending between frames
        } else {
          // Not a frame header: the peer is sending plain lines after all.
          this.mode = MODE_LF;
          if (this.headerDigits > 0) {
            const digits = Buffer.from(String(this.header));
            this.appendCarry(digits, 0, digits.length);
          }
          this.header = 0;
          this.headerDigits = 0;
          this.pushLf(data, pos);
          return;
        }
        continue;
      }
      const avail = n - pos;
      if (this.carryLen === 0 && this.discarded === 0 && avail >= this.need) {
        const end = pos + this.need;
        this.need = 0;
        this.inHeader = true;
        this.emit(data, pos, end, 0, true);
        pos = end;
      } else {
        const take = avail < this.need ? avail : this.need;
        this.appendCarry(data, pos, pos + take);
        this.need -= take;
        pos += take;
        if (this.need === 0) {
          this.inHeader = true;
          this.emitCarry(true);
        }
      }
    }
  }

  // ---- carry buffer ----
  private appendCarry(src: Buffer, start: number, end: number): void {
    let len = end - start;
    if (len <= 0) return;
    this.tail2 = len >= 2 ? src[end - 2] : this.tail1;
    this.tail1 = src[end - 1];
    const limit = this.maxLine + 2;
    const room = limit - this.carryLen;
    if (len > room) {
      this.discarded += len - room;
      end = start + room;
      len = room;
      if (len <= 0) return;
    }
    const need = this.carryLen + len;
    let carry = this.carry;
    if (carry === undefined || carry.length < need) {
      let size = carry ? carry.length * 2 : 256;
      while (size < need) size *= 2;
      if (size > limit) size = limit;
      const grown = Buffer.allocUnsafe(size);
      if (carry && this.carryLen) carry.copy(grown, 0, 0, this.carryLen);
      this.carry = carry = grown;
    }
    src.copy(carry, this.carryLen, start, end);
    this.carryLen = need;
  }

  private emitCarry(octet: boolean): void {
    if (this.carryLen === 0 && this.discarded === 0) return;
    const carry = this.carry!;
    const dropped = this.discarded;
    let extra = dropped;
    const len = this.carryLen;
    if (extra > 0) {
      // The line ending is not content, as emit() strips it from a line that arrived
      // whole (a frame's LF and a CR before it; a line's CR before its LF). The carry
      // is full here, so the ending lies past anything kept.
      if (octet) extra -= this.tail1 === LF ? (this.tail2 === CR ? 2 : 1) : this.tail1 === CR ? 1 : 0;
      else if (this.tail1 === CR) extra--;
    }
    this.carryLen = 0;
    this.discarded = 0;
    this.tail1 = this.tail2 = -1;
    if (dropped === 0) {
      this.emit(carry, 0, len, 0, octet);
    } else {
      // Over-long: everything in the carry is content (the ending, if any, was
      // dropped past it and taken off `extra`, which may be -1: a CR kept, its LF not).
      this.emit(carry, 0, len, extra, octet, true);
    }
    // Do not let one long line pin a big buffer on an idle connection.
    if (carry.length > 16384) this.carry = undefined;
  }

  private emit(buf: Buffer, start: number, end: number, extra: number, octet: boolean, noStrip = false): void {
    if (!noStrip) {
      if (octet && end > start && buf[end - 1] === LF) end--;
      if (end > start && buf[end - 1] === CR) end--;
    }
    const len = end - start;
    if (len === 0 && extra === 0) return;
    this.lines++;
    if (len + extra > this.maxLine) {
      const keep = utf8Cut(buf, start, len, this.maxLine);
      this.truncatedLines++;
      this.sink(buf, start, start + keep, len - keep + extra);
    } else {
      this.sink(buf, start, end, 0);
    }
  }
}

/** The marker appended to a truncated line. */
export function truncationMarker(droppedBytes: number): Buffer {
  return Buffer.from(`…[truncated ${droppedBytes} bytes]`, 'utf8');
}
