// The unit the store keeps, writes and scans: a *block* of consecutive lines.
//
// A block's bytes are its lines in sequence order, each followed by one '\n' — the
// layout of a log file, so a search can run over the whole block at once (indexOf,
// a regex over the block's text) and map a hit back to its line by the newlines
// around it. A line may itself contain '\n' (an RFC 6587 octet-counted frame); a block
// holding such a line carries `lineEnds`, the end offset of every line, instead.
//
// Receive time and peer are not kept per line but per *run*: consecutive lines that
// share both (every line of one received packet does). Runs are keyed by the byte
// offset of their first line, so the time of a hit is found from its offset alone.
//
// The same shape describes a block of the memory store (bytes in a shared chunk), a
// block read back from a journal segment and a block handed to a scan worker.

export const NL = 10;

export interface Runs {
  /** Byte offset (in the block's data) of each run's first line, increasing. */
  off: Uint32Array;
  /** Lines in each run. */
  lines: Uint32Array;
  /** Receive time of each run's lines, ms since the epoch. */
  time: Float64Array;
  /** Peer of each run's lines: an index into the block's `peers`. */
  peer: Uint32Array;
}

export interface BlockView {
  /** Lines [firstSeq, firstSeq + count), each followed by '\n'. */
  data: Buffer;
  firstSeq: number;
  count: number;
  runs: Runs;
  peers: readonly string[];
  /** Present when some line contains '\n': the end offset of each line (exclusive). */
  lineEnds?: Uint32Array;
}

/** Index of the run holding the line that starts at byte `pos`. Callers walk forward,
 *  so the search starts at `hint` (the previous answer) and steps or bisects from there. */
export function runAt(runs: Runs, pos: number, hint = 0): number {
  const off = runs.off;
  const n = off.length;
  let lo = hint < n && off[hint] <= pos ? hint : 0;
  if (lo + 1 < n && off[lo + 1] > pos) return lo;
  let hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (off[mid] <= pos) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** First line ordinal of each run (prefix sums of `runs.lines`). */
export function runOrdinals(runs: Runs): Float64Array {
  const out = new Float64Array(runs.lines.length);
  let n = 0;
  for (let i = 0; i < out.length; i++) {
    out[i] = n;
    n += runs.lines[i];
  }
  return out;
}

/** Start of the line holding byte `pos`. */
export function lineStartAt(b: BlockView, pos: number): number {
  if (b.lineEnds) {
    const o = ordinalAt(b.lineEnds, pos);
    return o === 0 ? 0 : b.lineEnds[o - 1] + 1;
  }
  return pos === 0 ? 0 : b.data.lastIndexOf(NL, pos - 1) + 1;
}

/** End (exclusive, the offset of its '\n') of the line that starts at `start`. */
export function lineEndFrom(b: BlockView, start: number): number {
  if (b.lineEnds) return b.lineEnds[ordinalAt(b.lineEnds, start)];
  return b.data.indexOf(NL, start);
}

/** Ordinal of the line holding byte `pos`, for blocks with `lineEnds`. */
export function ordinalAt(lineEnds: Uint32Array, pos: number): number {
  let lo = 0;
  let hi = lineEnds.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (lineEnds[mid] < pos) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Byte offset of the line with the given ordinal (0-based); data.length past the end. */
export function offsetOfLine(b: BlockView, ordinal: number): number {
  if (ordinal <= 0) return 0;
  if (ordinal >= b.count) return b.data.length;
  if (b.lineEnds) return b.lineEnds[ordinal - 1] + 1;
  const runs = b.runs;
  let r = 0;
  let before = 0;
  while (r + 1 < runs.off.length && before + runs.lines[r] <= ordinal) before += runs.lines[r++];
  let pos = runs.off[r];
  for (let k = before; k < ordinal; k++) pos = b.data.indexOf(NL, pos) + 1;
  return pos;
}
