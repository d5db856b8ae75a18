// The oracle of the client fuzzer's query side: what kind of answer each command it
// sends must get, and a checker that walks what a connection received against that
// list, in order. Written from the protocol in the README, not from the server's code.

/** The answer a command must get. `none`: an empty line, no answer. `found`: FOUND n
 *  then n result lines (at most `max`); `tooLong`: the over-long command error. */
export type Expected =
  | { kind: 'help' | 'count' | 'stats' | 'error' | 'tooLong' | 'none' | 'quit' }
  | { kind: 'found'; max?: number };

const HELP_FIRST = 'LogCaster query commands (one per line):';
const RESULT_LINE = /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] /;
const FOUND = /^FOUND: (\d+) matches$/;

export interface AnswerCheck {
  /** Commands fully answered. */
  answered: number;
  /** What is wrong, or undefined. */
  problem?: string;
}

/**
 * Checks `received` against `expected`, in order. `complete`: the server closed the
 * connection normally, so every command up to the first QUIT must be answered and
 * nothing else may follow; otherwise (the client reset it) the answers received must
 * be a correct prefix, the last one possibly cut.
 */
export function checkAnswers(received: Buffer, expected: readonly Expected[], complete: boolean): AnswerCheck {
  const text = received.toString('latin1');
  const lines = text.split('\n');
  const partialTail = lines.pop()!; // '' when the data ends with LF
  if (complete && partialTail !== '') return { answered: 0, problem: `the answers end inside a line: '${partialTail.slice(0, 80)}'` };
  let at = 0;
  let answered = 0;
  const cut = (): AnswerCheck => (complete ? { answered, problem: `answer ${answered + 1} (${expected[answered]?.kind}) is missing or incomplete (${lines.length} lines received)` } : { answered });
  for (const e of expected) {
    if (e.kind === 'none') {
      answered++;
      continue;
    }
    if (e.kind === 'quit') {
      answered++;
      break; // nothing after QUIT is answered
    }
    if (at >= lines.length) return cut();
    const first = lines[at++];
    const wrong = (what: string): AnswerCheck => ({ answered, problem: `answer ${answered + 1}: expected ${what}, got '${first.slice(0, 120)}'` });
    switch (e.kind) {
      case 'help':
        if (first !== HELP_FIRST) return wrong('HELP');
        while (at < lines.length && lines[at] !== 'END') at++;
        if (at >= lines.length) return cut();
        at++;
        break;
      case 'count':
        if (!/^COUNT: \d+$/.test(first)) return wrong('COUNT: <n>');
        break;
      case 'stats':
        if (!/^STATS: Total=\d+, Dropped=\d+, Current=\d+, Clients=\d+/.test(first)) return wrong('STATS: Total=…');
        break;
      case 'error':
        if (!first.startsWith('ERROR: ') || first.startsWith('ERROR: query failed')) return wrong('ERROR: <a usage or syntax message>');
        break;
      case 'tooLong':
        if (!/^ERROR: command longer than \d+ bytes$/.test(first)) return wrong('ERROR: command longer than …');
        break;
      case 'found': {
        const m = FOUND.exec(first);
        if (!m) return wrong('FOUND: <n> matches');
        const n = Number(m[1]);
        if (e.max !== undefined && n > e.max) return wrong(`at most ${e.max} matches`);
        for (let i = 0; i < n; i++) {
          if (at >= lines.length) return cut();
          if (!RESULT_LINE.test(lines[at])) return { answered, problem: `answer ${answered + 1}: result line ${i + 1} of ${n} is '${lines[at].slice(0, 120)}'` };
          at++;
        }
        break;
      }
    }
    answered++;
  }
  if (complete && at < lines.length) return { answered, problem: `${lines.length - at} lines after the last answer: '${lines[at].slice(0, 120)}'` };
  return { answered };
}
