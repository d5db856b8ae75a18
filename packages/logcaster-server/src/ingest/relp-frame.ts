// RELP framing (the Reliable Event Logging Protocol of rsyslog, doc/relp.md of
// librelp): "TXNR SP COMMAND SP DATALEN [SP DATA] LF", TXNR and DATALEN up to 9
// digits, COMMAND 1-32 letters. Parsed incrementally from whatever the connection
// delivers; a frame's data is handed over as a view into the arriving bytes when it
// lies in one packet, else assembled in a carry buffer that never grows past
// `maxData` — bytes beyond it are counted and dropped, not buffered.

const LF = 10;
const SP = 32;
const MAX_DIGITS = 9;
const MAX_COMMAND = 32;

/** One frame: data bytes [start, end) of buf, valid only during the call; `dropped`
 *  bytes of data past maxData were discarded. */
export type RelpFrameSink = (txnr: number, command: string, buf: Buffer, start: number, end: number, dropped: number) => void;

const S_TXNR = 0;
const S_COMMAND = 1;
const S_LEN = 2;
const S_DATA_SP = 3; // after DATALEN: SP then data, or LF when DATALEN is 0
const S_DATA = 4;
const S_TRAILER = 5;
const S_FAILED = 6;

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function isAlpha(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

export class RelpParser {
  private state = S_TXNR;
  private txnr = 0;
  private digits = 0;
  private command = '';
  private len = 0;
  private need = 0; // data bytes still to come
  private carry: Buffer | undefined;
  private carryLen = 0;
  private dropped = 0;
  /** Why the stream is unusable, once it is (the connection must be closed). */
  error: string | undefined;

  constructor(
    private readonly maxData: number,
    private readonly sink: RelpFrameSink,
  ) {}

  /** Bytes of a frame received so far but not complete. */
  get partial(): boolean {
    return this.state !== S_TXNR || this.digits > 0;
  }

  push(buf: Buffer): void {
    let i = 0;
    const n = buf.length;
    while (i < n && this.state !== S_FAILED) {
      const c = buf[i];
      switch (this.state) {
        case S_TXNR:
          if (isDigit(c) && this.digits < MAX_DIGITS) {
            this.txnr = this.txnr * 10 + (c - 48);
            this.digits++;
          } else if (c === SP && this.digits > 0) {
            this.state = S_COMMAND;
            this.command = '';
          } else if ((c === LF || c === 13) && this.digits === 0) {
            // stray line ends between frames: tolerated
          } else {
            return this.fail('bad transaction number');
          }
          i++;
          break;
        case S_COMMAND:
          if (isAlpha(c) && this.command.length < MAX_COMMAND) {
            this.command += String.fromCharCode(c);
          } else if (c === SP && this.command.length > 0) {
            this.state = S_LEN;
            this.len = 0;
            this.digits = 0;
          } else {
            return this.fail('bad command');
          }
          i++;
          break;
        case S_LEN:
          if (isDigit(c) && this.digits < MAX_DIGITS) {
            this.len = this.len * 10 + (c - 48);
            this.digits++;
            i++;
          } else if (this.digits > 0 && (c === SP || c === LF)) {
            this.state = S_DATA_SP;
          } else {
            return this.fail('bad data length');
          }
          break;
        case S_DATA_SP:
          if (this.len === 0) {
            if (c === LF) {
              this.emit(buf, i, i);
              i++;
            } else if (c === SP) {
              i++; // "close 0 \n": tolerated
            } else {
              return this.fail('missing frame trailer');
            }
          } else if (c === SP) {
            this.state = S_DATA;
            this.need = this.len;
            this.carryLen = 0;
            this.dropped = 0;
            i++;
          } else {
            return this.fail('missing space before data');
          }
          break;
        case S_DATA: {
          const take = Math.min(this.need, n - i);
          if (this.carryLen === 0 && this.dropped === 0 && take === this.need) {
            // The whole data in this packet: a view, no copy (cut to maxData).
            const keep = Math.min(take, this.maxData);
            this.dropped = take - keep;
            this.need = 0;
            this.state = S_TRAILER;
            i += take;
            if (i < n) {
              if (buf[i] !== LF) return this.fail('missing frame trailer');
              this.emit(buf, i - take, i - take + keep);
              i++;
            } else {
              // trailer in the next packet: keep the data
              this.keep(buf, i - take, i - take + keep);
            }
          } else {
            this.keep(buf, i, i + take);
            this.need -= take;
            i += take;
            if (this.need === 0) this.state = S_TRAILER;
          }
          break;
        }
        case S_TRAILER:
          if (c !== LF) return this.fail('missing frame trailer');
          this.emit(this.carry ?? Buffer.alloc(0), 0, this.carryLen);
          i++;
          break;
      }
    }
  }

  private keep(buf: Buffer, start: number, end: number): void {
    const room = this.maxData - this.carryLen;
    const take = Math.min(room, end - start);
    if (take > 0) {
      if (!this.carry || this.carry.length < this.carryLen + take) {
        const bigger = Buffer.allocUnsafe(Math.min(this.maxData, Math.max(2 * (this.carryLen + take), 1024)));
        if (this.carry) this.carry.copy(bigger, 0, 0, this.carryLen);
        this.carry = bigger;
      }
      buf.copy(this.carry, this.carryLen, start, start + take);
      this.carryLen += take;
    }
    this.dropped += end - start - Math.max(take, 0);
  }

  private emit(buf: Buffer, start: number, end: number): void {
    const { txnr, command, dropped } = this;
    this.state = S_TXNR;
    this.txnr = 0;
    this.digits = 0;
    this.carryLen = 0;
    this.dropped = 0;
    if (this.carry && this.carry.length > 64 * 1024) this.carry = undefined; // a burst must not pin its size
    this.sink(txnr, command, buf, start, end, dropped);
  }

  private fail(reason: string): void {
    this.state = S_FAILED;
    this.error = reason;
  }
}
