// Parser fuzzing: the ingest framing (LF, CRLF, RFC 6587 octet counting) and the query
// port's command input (CommandLines + parseCommand) over random, generated and mutated
// inputs. For every input: no exception escapes, and the result is the same whether the
// bytes arrive in one piece or cut at random places. Generated inputs also have an
// expected result, computed here from how they were made, which the parsers must give.
//
// Bounded in CI (FRAMING_INPUTS streams, COMMAND_INPUTS streams of 1-4 command lines:
// 1M input streams, each parsed whole and split, ~25 s of one core); LOGCASTER_FUZZ_LONG=<seconds>
// runs each fuzzer that long, LOGCASTER_FUZZ_SEED=<n> replays a run.
import { expect } from 'chai';

import { fuzzLongSeconds, fuzzSeed, mutate, randomSplit, Rng } from '@logcaster/testkit';

import { LineFramer } from '../../src/ingest/framing';
import { CommandLines, MAX_COMMAND, parseCommand, TOO_LONG, type Command } from '../../src/query/parse';

const FRAMING_INPUTS = 500_000;
const COMMAND_INPUTS = 500_000;

/** Runs `one(i)` `inputs` times, or for LOGCASTER_FUZZ_LONG seconds. */
function budget(inputs: number, one: (i: number) => void): number {
  const long = fuzzLongSeconds();
  const until = Date.now() + long * 1000;
  let i = 0;
  if (long > 0) {
    while (Date.now() < until) for (let k = 0; k < 10_000; k++) one(i++);
  } else {
    for (; i < inputs; i++) one(i);
  }
  return i;
}

/** `data` one byte at a time. */
const bytewise = (data: Buffer): Buffer[] => Array.from({ length: data.length }, (_, i) => data.subarray(i, i + 1));

const hex = (b: Buffer | Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

// ---------------------------------------------------------------- framing

/** What the framer handed on: one comparable string (each line's bytes and its
 *  truncated-byte count) and, when `keep`, the lines themselves. */
function frameAll(parts: Buffer[], maxLine: number, keep: boolean): { out: string; lines: Buffer[]; truncated: number[] } {
  let out = '';
  const lines: Buffer[] = [];
  const truncated: number[] = [];
  const f = new LineFramer(maxLine, (buf, s, e, t) => {
    out += `${buf.toString('latin1', s, e)}\u0000${t}\u0001`;
    if (keep) {
      lines.push(Buffer.from(buf.subarray(s, e)));
      truncated.push(t);
    }
  });
  for (const p of parts) f.push(p);
  f.finish();
  return { out, lines, truncated };
}

/** Single content bytes: mostly printable ASCII, some digits, blanks, NUL, 0xFF. */
const CONTENT_BYTES = Buffer.from([...Array(95)].map((_, i) => 0x20 + i).concat([0x30, 0x31, 0x32, 0x39, 0x09, 0x09, 0x00, 0xff]));
const UTF8_SEQUENCES = [Buffer.from('\u00e9'), Buffer.from('\u20ac'), Buffer.from('\u{1f600}')];

/** Line content: bytes of CONTENT_BYTES with a few whole UTF-8 sequences; never CR/LF. */
function content(rng: Rng, len: number): Buffer {
  const b = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) b[i] = CONTENT_BYTES[rng.u32() % CONTENT_BYTES.length];
  for (let k = len >> 4; k > 0; k--) {
    const seq = rng.pick(UTF8_SEQUENCES);
    const at = rng.int(len);
    seq.copy(b, at, 0, Math.min(seq.length, len - at));
  }
  return b;
}

interface Generated {
  input: Buffer;
  /** Content of each line as sent, before any truncation (undefined: no oracle). */
  expected?: Buffer[];
}

function lfInput(rng: Rng): Generated {
  const n = rng.range(0, 8);
  const chunks: Buffer[] = [];
  const expected: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    let c = content(rng, rng.chance(0.1) ? rng.range(0, 300) : rng.range(0, 40));
    // A stream whose first bytes are "<digits> " is octet counted: start with a letter.
    if (i === 0 && c.length > 0 && c[0] >= 0x31 && c[0] <= 0x39) c = Buffer.concat([Buffer.from('a'), c]);
    const last = i === n - 1;
    const ending = last && rng.chance(0.3) ? '' : rng.pick(['\n', '\r\n']);
    chunks.push(c, Buffer.from(ending));
    if (c.length > 0) expected.push(c);
    if (!last && rng.chance(0.1)) chunks.push(Buffer.from(rng.pick(['\n', '\r\n']))); // empty lines are skipped
  }
  return { input: Buffer.concat(chunks), expected };
}

function octetInput(rng: Rng): Generated {
  const n = rng.range(1, 6);
  const chunks: Buffer[] = [];
  const expected: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    // A frame may hold newlines; the first frame is not empty (a "0 " header is not one).
    const parts = [content(rng, rng.chance(0.1) ? rng.range(1, 300) : rng.range(1, 40))];
    if (rng.chance(0.3)) parts.push(Buffer.from('\n'), content(rng, rng.range(1, 10)));
    const msg = Buffer.concat(parts);
    chunks.push(Buffer.from(`${msg.length} `), msg);
    expected.push(msg);
    if (rng.chance(0.2)) chunks.push(Buffer.from(rng.pick(['\n', '\r\n']))); // stray line endings between frames
  }
  return { input: Buffer.concat(chunks), expected };
}

function framingInput(rng: Rng): Generated {
  switch (rng.int(6)) {
    case 0:
    case 1:
      return lfInput(rng);
    case 2:
      return octetInput(rng);
    case 3:
      return { input: mutate(rng, lfInput(rng).input) };
    case 4:
      return { input: mutate(rng, octetInput(rng).input) };
    default:
      return { input: rng.bytes(rng.range(0, 80)) };
  }
}

/** The generated lines must come out as sent: the same bytes, or — when longer than
 *  maxLine — a prefix of at most maxLine bytes (cut back by at most 3 to stay out of a
 *  UTF-8 sequence) with the rest counted. */
function checkOracle(expected: Buffer[], got: { lines: Buffer[]; truncated: number[] }, maxLine: number, where: () => string): void {
  if (got.lines.length !== expected.length) throw new Error(`${where()}: ${got.lines.length} lines, expected ${expected.length}`);
  for (let i = 0; i < expected.length; i++) {
    const want = expected[i];
    const line = got.lines[i];
    const t = got.truncated[i];
    if (want.length <= maxLine) {
      if (t !== 0 || !line.equals(want)) throw new Error(`${where()}: line ${i} is ${hex(line)} (truncated ${t}), expected ${hex(want)}`);
    } else if (!(line.length <= maxLine && line.length >= maxLine - 3 && want.subarray(0, line.length).equals(line) && t === want.length - line.length)) {
      throw new Error(`${where()}: over-long line ${i} kept ${hex(line)} with ${t} dropped, from ${hex(want)} (maxLine ${maxLine})`);
    }
  }
}

// ---------------------------------------------------------------- commands

type Kind = Command['kind'] | 'too long';

/** A command as a comparable string (keywords as hex). */
function serialize(c: Command): string {
  switch (c.kind) {
    case 'search': {
      const q = c.spec;
      return `search ${q.keywords.map(hex).join(',')} ${q.operator} ${q.regex ? `/${q.regex.source}/${q.regex.flags}` : '-'} ${q.timeFromMs} ${q.timeToMs} ${q.severity} ${q.facility} ${q.host} ${q.app}`;
    }
    case 'recent':
      return `recent ${c.n}`;
    case 'clear':
      return `clear ${c.token}`;
    case 'error':
      return `error ${c.message}`;
    default:
      return c.kind;
  }
}

/** Every command the input holds, parsed, as pushed in `parts` (drained after each push,
 *  as the query port does): one comparable string, the kinds in order, and the most
 *  bytes CommandLines held after a drain. */
function commandsOf(parts: Buffer[]): { out: string; kinds: Kind[]; held: number } {
  const lines = new CommandLines();
  let out = '';
  const kinds: Kind[] = [];
  let held = 0;
  const drain = (): void => {
    for (let l = lines.next(); l !== undefined; l = lines.next()) {
      if (l === TOO_LONG) {
        out += 'too long\n';
        kinds.push('too long');
      } else {
        const c = parseCommand(l);
        out += `${serialize(c)}\n`;
        kinds.push(c.kind);
      }
    }
    held = Math.max(held, lines.buffered);
  };
  for (const p of parts) {
    lines.push(p);
    drain();
  }
  lines.finish();
  drain();
  return { out, kinds, held };
}

interface CommandCase {
  line: string;
  /** The kind parseCommand must give it, when the generator knows. */
  kind?: Kind;
}

/** Keywords as the Latin-1 strings of their UTF-8 bytes (what a line's bytes decode to). */
const WORDS = ['error', 'hello', 'héllo', 'caf\u00e9', 'a', 'xy', '=', 'time_from=', '/', '\u20ac'].map((w) => Buffer.from(w, 'utf8').toString('latin1'));
const blank = (rng: Rng): string => rng.pick([' ', '  ', '\t', ' \t ']);
const cased = (rng: Rng, w: string): string => (rng.chance(0.5) ? w : rng.chance(0.5) ? w.toLowerCase() : w[0] + w.slice(1).toLowerCase());

function commandCase(rng: Rng): CommandCase {
  const b = blank(rng);
  const w = rng.pick(WORDS);
  switch (rng.int(16)) {
    case 0:
      return { line: cased(rng, rng.pick(['HELP', 'COUNT', 'STATS'])), kind: undefined };
    case 1:
      return { line: `${cased(rng, 'RECENT')}${b}${rng.int(100000)}`, kind: 'recent' };
    case 2:
      return { line: `${cased(rng, 'RECENT')}${b}${rng.pick(['-1', 'x', '1.5', ''])}`, kind: 'error' };
    case 3:
      return { line: `${cased(rng, 'SEARCH')}${b}${w}`, kind: 'search' };
    case 4: {
      const from = rng.int(2e9);
      return { line: `FILTER${b}${from}${b}${from + rng.int(1000)}`, kind: 'search' };
    }
    case 5:
      return { line: `FILTER${b}${rng.pick(['5 1', 'a b', '1', '1 2 3'])}`, kind: 'error' };
    case 6:
      return { line: `REGEX${b}${rng.pick(['^a', '(a+)+$', '/x/i', 'caf\u00e9', '\\d{2,}'])}`, kind: 'search' };
    case 7:
      return { line: `REGEX${b}${rng.pick(['(', '[', '/x/q', '*'])}`, kind: 'error' };
    case 8:
      return { line: `QUERY${b}keyword=${w || 'k'}${rng.chance(0.5) ? ` operator=${rng.pick(['AND', 'or'])}` : ''}`, kind: 'search' };
    case 9:
      return { line: `QUERY${b}keywords=a,b${b}time_from=${rng.int(1e9)}${rng.chance(0.5) ? ' severity=err facility=local0' : ''}`, kind: 'search' };
    case 10:
      return { line: `QUERY${b}${rng.pick(['nope=1', '', 'keyword=a keyword=b', 'operator=XOR', 'keyword=', 'severity=loud', 'time_from=9 time_to=1'])}`, kind: 'error' };
    case 11:
      return { line: rng.pick(['', ' ', '\t', b]), kind: 'none' };
    case 12:
      return { line: cased(rng, rng.pick(['QUIT', 'EXIT'])), kind: 'quit' };
    case 13:
      return { line: `~${rng.bytes(rng.range(0, 30)).toString('latin1').replace(/\n/g, '')}`, kind: 'error' };
    case 14:
      return { line: mutate(rng, Buffer.from(commandCase(rng).line, 'latin1')).toString('latin1') };
    default:
      return { line: rng.bytes(rng.range(0, 40)).toString('latin1') };
  }
}

const ONE_LINE_KINDS: Record<string, Command['kind']> = { HELP: 'help', COUNT: 'count', STATS: 'stats' };

/** A stream of command lines (LF or CRLF), rarely with an over-long one; the kinds the
 *  generator knows, in order (null where it does not). */
function commandStream(rng: Rng): { input: Buffer; kinds: (Kind | null)[] | null } {
  const n = rng.range(1, 4);
  const parts: Buffer[] = [];
  let kinds: (Kind | null)[] | null = [];
  for (let i = 0; i < n; i++) {
    if (rng.chance(0.0004)) {
      parts.push(Buffer.alloc(MAX_COMMAND + rng.range(1, 3000), 'x'), Buffer.from('\n'));
      kinds?.push('too long');
      continue;
    }
    const c = commandCase(rng);
    const raw = Buffer.from(c.line, 'latin1');
    if (raw.includes(10)) kinds = null; // a mutated line became several
    const eol = i === n - 1 && rng.chance(0.2) ? '' : rng.pick(['\n', '\r\n']);
    parts.push(raw, Buffer.from(eol));
    // What the parser gets: the line without its LF and one CR before it.
    const got = (c.line + eol).replace(/\n$/, '').replace(/\r$/, '');
    kinds?.push(c.kind ?? ONE_LINE_KINDS[got.toUpperCase()] ?? (/^[ \t]*$/.test(got) ? 'none' : null));
  }
  return { input: Buffer.concat(parts), kinds };
}

describe('fuzz: parsers (framing and commands), whole input vs random splits', function () {
  this.timeout(Math.max(120_000, fuzzLongSeconds() * 1000 + 60_000));

  it(`framing: ${FRAMING_INPUTS} random, generated and mutated inputs (LF, CRLF, octet counting) give the same lines however split, and generated lines come out as sent`, () => {
    const seed = fuzzSeed('framing fuzz');
    const rng = new Rng(seed);
    let lines = 0;
    let truncated = 0;
    let octet = 0;
    const inputs = budget(FRAMING_INPUTS, (i) => {
      const g = framingInput(rng);
      const maxLine = rng.chance(0.5) ? rng.range(16, 64) : 64 * 1024;
      const where = (): string => `seed ${seed} input #${i} (${hex(g.input)}, maxLine ${maxLine})`;
      let whole;
      let split;
      let parts: Buffer[] = [];
      try {
        whole = frameAll([g.input], maxLine, true);
        parts = rng.chance(0.02) ? bytewise(g.input) : randomSplit(rng, g.input, 8);
        split = frameAll(parts, maxLine, false);
      } catch (e) {
        throw new Error(`${where()}: the framer threw ${(e as Error).stack}`);
      }
      if (whole.out !== split.out) {
        throw new Error(`${where()}: split at ${parts.map((p) => p.length).join('+')} gave ${JSON.stringify(split.out)}, whole gave ${JSON.stringify(whole.out)}`);
      }
      if (g.expected) checkOracle(g.expected, whole, maxLine, where);
      if (g.input.length > 0 && g.input[0] >= 0x31 && g.input[0] <= 0x39 && g.expected) octet++;
      lines += whole.lines.length;
      for (const t of whole.truncated) if (t > 0) truncated++;
    });
    console.log(`      ${inputs} inputs, ${lines} lines (${truncated} truncated), ${octet} generated octet-counted streams`);
    // The generator must reach what it is meant to: truncation and octet counting.
    expect(truncated, 'truncated lines seen').to.be.greaterThan(inputs / 100);
    expect(octet, 'octet-counted streams').to.be.greaterThan(inputs / 10);
  });

  it(`commands: ${COMMAND_INPUTS} streams of random, generated and mutated command lines parse the same however split, never throw, and hold at most one partial line`, () => {
    const seed = fuzzSeed('command fuzz');
    const rng = new Rng(seed);
    const seen = new Map<string, number>();
    let commands = 0;
    const inputs = budget(COMMAND_INPUTS, (i) => {
      const s = commandStream(rng);
      const where = (): string => `seed ${seed} input #${i} (${s.input.length > 2000 ? `${s.input.length} bytes` : hex(s.input)})`;
      let whole;
      let split;
      let parts: Buffer[] = [];
      try {
        whole = commandsOf([s.input]);
        parts = rng.chance(0.02) && s.input.length < 2000 ? bytewise(s.input) : randomSplit(rng, s.input, 8);
        split = commandsOf(parts);
      } catch (e) {
        throw new Error(`${where()}: command parsing threw ${(e as Error).stack}`);
      }
      if (whole.out !== split.out) {
        throw new Error(`${where()}: split at ${parts.map((p) => p.length).join('+')} gave ${JSON.stringify(split.out)}, whole gave ${JSON.stringify(whole.out)}`);
      }
      // Memory: once the complete lines are taken, at most one partial line (+ a CR).
      if (split.held > MAX_COMMAND + 1) throw new Error(`${where()}: CommandLines held ${split.held} bytes after draining`);
      if (s.kinds) {
        const expected = s.kinds.filter((k) => k !== 'none');
        const got = whole.kinds.filter((k) => k !== 'none');
        if (got.length !== expected.length || expected.some((k, j) => k !== null && k !== got[j])) {
          throw new Error(`${where()}: kinds ${JSON.stringify(got)}, generated ${JSON.stringify(expected)}`);
        }
      }
      for (const k of whole.kinds) seen.set(k, (seen.get(k) ?? 0) + 1);
      commands += whole.kinds.length;
    });
    console.log(`      ${inputs} inputs, ${commands} command lines: ${[...seen].map(([k, n]) => `${k} ${n}`).join(', ')}`);
    for (const k of ['help', 'count', 'stats', 'quit', 'recent', 'search', 'error', 'none', 'too long']) expect(seen.get(k) ?? 0, `${k} commands generated`).to.be.greaterThan(0);
  });
});
