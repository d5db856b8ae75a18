// The client fuzzer's clients: each one a seeded random behaviour on the ingest or the
// query port of a running LogCaster, returning what a checker needs (the lines it
// sent and whether they had to be stored, the acks or answers it received).
import { connect, type Socket } from 'node:net';

import { delay, HOST, randomSplit, runTinyWindowClient, tinyWindowUnavailable, type Rng } from '@logcaster/testkit';

import { checkAnswers, type Expected } from './answers';

/** The id at the start of every fuzzed line: `<tag>-<client>-<line>`. */
export const lineId = (tag: string, client: number, line: number): string => `${tag}-${client}-${line}`;

export interface IngestOutcome {
  client: number;
  /** Every line as the query port must show it (an octet frame's newlines as spaces). */
  lines: Buffer[];
  /** true: sent before a clean FIN, so stored exactly once; false: maybe (reset). */
  mustStore: boolean;
  behaviour: string;
}

export interface QueryOutcome {
  behaviour: string;
  answered: number;
}

export interface FuzzTarget {
  ingestPort: number;
  queryPort: number;
  tag: string;
  maxLine: number;
  /** How long a client may take before the fuzzer calls it stuck. */
  clientTimeoutMs: number;
}

/** Line content: printable ASCII, blanks, UTF-8, NUL and 0xFF; never CR or LF. */
function payload(rng: Rng, len: number): Buffer {
  const b = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) {
    const k = rng.int(24);
    b[i] = k < 20 ? rng.range(0x20, 0x7e) : k === 20 ? 0 : k === 21 ? 0xff : k === 22 ? 0xc3 : 0x09;
  }
  return b;
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: HOST, port, allowHalfOpen: true });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Writes `parts` in order, `gapMs()` apart (0: same tick), honouring backpressure
 *  only as Node does (queued in the socket). Stops early when `stop()` says so. */
async function writeParts(s: Socket, parts: Buffer[], gapMs: () => number, stop: (sent: number) => boolean = () => false): Promise<number> {
  let sent = 0;
  for (const p of parts) {
    if (s.destroyed || stop(sent)) break;
    s.write(p);
    sent += p.length;
    const g = gapMs();
    if (g > 0) await delay(g);
  }
  return sent;
}

/** Reads everything the connection receives, with optional stalls (reading paused);
 *  resolves when the server has closed it (or it was reset), with the bytes. */
function receiveAll(s: Socket, rng: Rng, stalls: boolean, timeoutMs: number, what: string): Promise<{ data: Buffer; error?: Error }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let error: Error | undefined;
    const guard = setTimeout(() => {
      s.destroy();
      reject(new Error(`${what}: not closed by the server within ${timeoutMs} ms (received ${Buffer.concat(chunks).length} bytes)`));
    }, timeoutMs);
    let stalled = 0;
    s.on('data', (d: Buffer) => {
      chunks.push(d);
      if (stalls && stalled < 5 && rng.chance(0.05)) {
        stalled++;
        s.pause();
        setTimeout(() => s.resume(), rng.range(20, 400));
      }
    });
    s.on('end', () => s.end()); // our side may still be open after a half-close
    s.on('error', (e) => (error = e));
    s.on('close', () => {
      clearTimeout(guard);
      resolve({ data: Buffer.concat(chunks), error });
    });
    if (stalls && rng.chance(0.5)) {
      // Do not read at all for a while: acks or answers back up to the server.
      s.pause();
      setTimeout(() => s.resume(), rng.range(50, 800));
    }
  });
}

/** An ingest client: lines in LF, CRLF or octet-counted framing, some huge, sent in one
 *  write or cut anywhere; then a clean FIN (every line must be stored and, with --ack,
 *  acknowledged) or a reset part-way (each line stored at most once). */
export async function ingestClient(t: FuzzTarget, rng: Rng, client: number): Promise<IngestOutcome> {
  const framing = rng.weighted([['lf', 4], ['crlf', 2], ['octet', 2]] as const);
  const count = rng.weighted([[rng.range(1, 20), 4], [rng.range(100, 2000), 3], [rng.range(3000, 8000), 1]] as const);
  // A few huge lines (past --max-line, up to 3 MiB) at random places.
  const huge = new Set<number>();
  if (rng.chance(0.15)) for (let k = rng.range(1, 3); k > 0; k--) huge.add(rng.int(count));
  const lines: Buffer[] = [];
  const wire: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const id = Buffer.from(lineId(t.tag, client, i));
    let body: Buffer;
    if (huge.has(i)) {
      // Random where it is kept, cheap filler after (generating MiBs byte by byte would
      // stall every other client of this process).
      const long = rng.range(t.maxLine, 3 * 1024 * 1024);
      body = Buffer.concat([payload(rng, t.maxLine + 16), Buffer.alloc(long - t.maxLine, 'filler-')]);
    } else {
      body = payload(rng, rng.chance(0.05) ? rng.range(200, 2000) : rng.range(0, 120));
    }
    const long = body.length;
    // An octet frame may hold a newline; the query port shows it as a space. (A frame's
    // last LF is taken for a line ending and dropped: not generated here.)
    const nlAt = framing === 'octet' && body.length > 2 && rng.chance(0.1) ? rng.int(body.length - 1) : -1;
    if (nlAt >= 0) body[nlAt] = 10;
    const line = long > 0 ? Buffer.concat([id, Buffer.from(' '), body]) : id;
    if (framing === 'octet') wire.push(Buffer.from(`${line.length} `), line);
    else wire.push(line, Buffer.from(framing === 'crlf' ? '\r\n' : '\n'));
    const shown = Buffer.from(line);
    if (nlAt >= 0) shown[id.length + 1 + nlAt] = 0x20;
    lines.push(shown);
  }
  // An unterminated last line is stored at the FIN.
  if (framing !== 'octet' && rng.chance(0.2)) wire.pop();
  const data = Buffer.concat(wire);

  if (rng.chance(0.08) && tinyWindowUnavailable() === null) return tinyWindowIngest(t, rng, client, lines, data, framing);

  const reset = rng.chance(0.15);
  const behaviour = `ingest client ${client}: ${count} ${framing} lines${huge.size ? ` (${huge.size} huge)` : ''}${reset ? ', reset part-way' : ''}`;
  const s = await open(t.ingestPort);
  const parts = rng.chance(0.3) ? [data] : randomSplit(rng, data, rng.pick([4, 50, 500]));
  const gap = rng.pick([0, 0, 1, 3]);
  const received = receiveAll(s, rng, true, t.clientTimeoutMs, behaviour);
  const resetAt = reset ? rng.int(data.length + 1) : Infinity;
  await writeParts(s, parts, () => (gap && rng.chance(0.3) ? rng.range(0, gap) : 0), (sent) => sent >= resetAt);
  if (reset) {
    s.resetAndDestroy();
    await received;
    return { client, lines, mustStore: false, behaviour };
  }
  s.end();
  const r = await received;
  if (r.error) throw new Error(`${behaviour}: connection error ${r.error.message}`);
  checkAcks(r.data, lines.length, behaviour);
  return { client, lines, mustStore: true, behaviour };
}

async function tinyWindowIngest(t: FuzzTarget, rng: Rng, client: number, lines: Buffer[], data: Buffer, framing: string): Promise<IngestOutcome> {
  const behaviour = `ingest client ${client}: ${lines.length} ${framing} lines from a tiny-window client`;
  // Slow reads (a pause after each) only where the acks are few: the window is tiny either way.
  const chunk = rng.pick([3, 64, 512]);
  const pauseMs = lines.length * 3 < chunk * 200 ? 1 : 0;
  const acks = await runTinyWindowClient(t.ingestPort, data, { recvBuffer: rng.pick([4096, 8192]), chunk, pauseMs, timeoutMs: t.clientTimeoutMs }).catch((e: Error) => {
    throw new Error(`${behaviour}: ${e.message}`);
  });
  checkAcks(acks, lines.length, behaviour);
  return { client, lines, mustStore: true, behaviour };
}

function checkAcks(data: Buffer, lines: number, behaviour: string): void {
  const text = data.toString('latin1');
  if (text !== 'OK\n'.repeat(lines)) {
    const oks = text.split('OK\n').length - 1;
    throw new Error(`${behaviour}: ${oks} OKs for ${lines} lines (${data.length} bytes: '${text.replace(/OK\n/g, '').slice(0, 120)}' besides OKs)`);
  }
}

/** A command and the answer kind it must get. */
function command(t: FuzzTarget, rng: Rng, clients: number): [string, Expected] {
  const c = rng.int(Math.max(1, clients));
  return rng.weighted<[string, Expected]>([
    [['HELP', { kind: 'help' }], 2],
    [[rng.pick(['COUNT', 'count']), { kind: 'count' }], 4],
    [['STATS', { kind: 'stats' }], 2],
    [[`SEARCH ${lineId(t.tag, c, rng.int(20))} `, { kind: 'found' }], 2],
    [[`QUERY keyword=${lineId(t.tag, c, rng.int(3))} operator=OR keywords=nothere,${t.tag}-${c}-1`, { kind: 'found' }], 1],
    [[`REGEX ^${t.tag}-${c}-1\\d `, { kind: 'found' }], 1],
    [[`QUERY regex=/${t.tag.toUpperCase()}-${c}-2\\d? /i`, { kind: 'found' }], 1],
    [[`QUERY keyword=${t.tag} time_from=4000000000`, { kind: 'found', max: 0 }], 1],
    [['FILTER 0 1', { kind: 'found', max: 0 }], 1],
    [(() => { const n = rng.pick([0, 1, 10, 200]); return [`RECENT ${n}`, { kind: 'found', max: n }] as [string, Expected]; })(), 2],
    [['SEARCH h\u00c3\u00a9llo', { kind: 'found' }], 1],
    [[rng.pick(['BOGUS', 'RECENT x', 'RECENT -1', 'QUERY nope=1', 'QUERY', 'REGEX (', 'FILTER 5 1', 'SEARCH', 'QUERY keyword=a keyword=b']), { kind: 'error' }], 3],
    [[`~${rng.bytes(rng.range(0, 40)).toString('latin1').replace(/[\n]/g, '')}`, { kind: 'error' }], 1],
    [[rng.pick(['', ' ', '\t']), { kind: 'none' }], 1],
  ]);
}

/** A query client: a random mix of valid and invalid commands (sometimes thousands in
 *  one write, sometimes one over-long command), written at once or cut anywhere; then
 *  a FIN right after sending (nc -N), a FIN later, a QUIT, or a reset part-way through
 *  the answers. Every command before the FIN or QUIT must be answered, in order. */
export async function queryClient(t: FuzzTarget, rng: Rng, index: number, clients: number): Promise<QueryOutcome> {
  const flood = rng.chance(0.1);
  const n = flood ? rng.range(1000, 5000) : rng.range(1, 20);
  const cmds: string[] = [];
  const expected: Expected[] = [];
  for (let i = 0; i < n; i++) {
    const [cmd, e] = flood && rng.chance(0.9) ? rng.pick<[string, Expected]>([['COUNT', { kind: 'count' }], ['HELP', { kind: 'help' }], ['NOPE', { kind: 'error' }]]) : command(t, rng, clients);
    cmds.push(cmd);
    expected.push(e);
  }
  if (rng.chance(0.03)) {
    const at = rng.int(cmds.length + 1);
    cmds.splice(at, 0, 'SEARCH ' + 'x'.repeat(rng.range(64 * 1024, 200 * 1024)));
    expected.splice(at, 0, { kind: 'tooLong' });
  }
  // Not for floods: megabytes of answers through a 4-8 KiB window leave no margin in the
  // time budget. One CI run on select received 2.3 of 5.4 MB in 120 s; the same seed
  // replayed in 1.6 s and the stall was not reproduced (kernel pacing near one segment,
  // as below 4 KiB, is the likely cause, not proven). A flood meets a reader that stalls
  // in receiveAll instead, which keeps backpressure on its commands covered.
  const tiny = tinyWindowUnavailable() === null && !flood ? 1 : 0;
  const ending = rng.weighted([['fin-now', 4], ['fin-later', 2], ['quit', 1], ['reset', 1], ['tiny', tiny]] as const);
  if (ending === 'quit') {
    cmds.push('QUIT', 'COUNT'); // the COUNT after QUIT is never answered
    expected.push({ kind: 'quit' }, { kind: 'count' });
  }
  const eol = rng.pick(['\n', '\r\n']);
  const data = Buffer.from(cmds.map((c) => c + eol).join(''), 'latin1');
  let behaviour = `query client ${index}: ${n} commands${flood ? ' (flood)' : ''}, ${ending}`;

  let received: Buffer;
  let complete = true;
  if (ending === 'tiny') {
    // Reads as fast as the tiny window lets them, without pauses: a pause per 7-byte read
    // caps the client at ~6 KB/s, and a few hundred KB of answers (RECENT 200, a keyword
    // in a thousand lines) then outlast any time budget. Slow readers are receiveAll's stalls.
    const chunk = rng.pick([7, 256]);
    const recvBuffer = rng.pick([4096, 8192]);
    const how = `${chunk}-byte reads, SO_RCVBUF ${recvBuffer}`;
    received = await runTinyWindowClient(t.queryPort, data, { recvBuffer, chunk, pauseMs: 0, timeoutMs: t.clientTimeoutMs }).catch((e: Error) => {
      throw new Error(`${behaviour} (${how}): ${e.message}`);
    });
    behaviour = `${behaviour} (${how}, ${received.length} bytes)`;
  } else {
    const s = await open(t.queryPort);
    const got = receiveAll(s, rng, true, t.clientTimeoutMs, behaviour);
    if (ending === 'reset') {
      const after = rng.range(1, 4000);
      let bytes = 0;
      s.on('data', (d: Buffer) => {
        bytes += d.length;
        if (bytes >= after && !s.destroyed) s.resetAndDestroy();
      });
      complete = false;
    }
    const parts = rng.chance(0.4) ? [data] : randomSplit(rng, data, rng.pick([3, 30, 300]));
    await writeParts(s, parts, () => (rng.chance(0.2) ? rng.range(0, 3) : 0));
    if (ending === 'fin-now') s.end();
    else if (ending === 'fin-later') setTimeout(() => s.end(), rng.range(0, 300));
    else if (ending === 'reset') setTimeout(() => s.destroyed || s.resetAndDestroy(), rng.range(0, 500));
    const r = await got;
    if (r.error && complete) throw new Error(`${behaviour}: connection error ${r.error.message}`);
    received = r.data;
  }
  const check = checkAnswers(received, expected, complete);
  if (check.problem) throw new Error(`${behaviour}: ${check.problem}`);
  return { behaviour, answered: check.answered };
}
