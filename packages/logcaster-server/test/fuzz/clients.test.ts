// Client-behaviour fuzzer: a real `logcaster --ack` child per backend, and rounds of
// concurrent seeded random clients on its ingest and query ports (see behaviours.ts:
// random splits, pipelining, half-close, resets mid-answer, stalls, tiny receive
// windows, valid and invalid commands, huge lines). Invariants:
//  - the server stays up, and isolates no exception (STATS Errors=0);
//  - every query command is answered, in order, also after the client's FIN;
//  - every ingest line sent before a clean FIN is acknowledged (OK per line) and stored
//    exactly once, as sent (found again over the query port by its unique id); a line
//    of a client that reset is stored at most once;
//  - RSS stays under RSS_BOUND; the server's sockets return to their baseline within
//    FD_SETTLE_MS once a round's clients are gone.
// CI runs ROUND_BUDGET_MS of rounds per backend; LOGCASTER_FUZZ_LONG=<seconds> runs
// that long per backend, LOGCASTER_FUZZ_SEED=<n> replays a run.
import { expect } from 'chai';

import { fuzzLongSeconds, fuzzSeed, itOnEachBackend, tinyWindowUnavailable, processFdTargets, processRss, processSockets, Rng, rmDir, sendAndClose, tmpDir, waitFor } from '@logcaster/testkit';

import { startCli, type Running } from '../support/cli';
import { checkAnswers } from './answers';
import { ingestClient, queryClient, type FuzzTarget, type IngestOutcome } from './behaviours';

const ROUND_BUDGET_MS = 9000;
const MAX_LINE = 8192;
/** The server's resident memory may not pass this. It stores at most EPOCH_LINES lines
 *  (~50 MB) and its index for --capacity 2M is 64 MB; it starts at ~65 MB and peaked at
 *  ~130 MB in CI runs. 384 MiB leaves room for V8 while catching growth per client or
 *  per byte received (a huge line kept, answers buffered for a client that does not
 *  read: 3 MiB lines and 5,000-command floods are sent all the time). */
const RSS_BOUND = 384 * 1024 * 1024;
const FD_SETTLE_MS = 10_000;
/** Lines after which a long run checks what is stored and CLEARs it. */
const EPOCH_LINES = 300_000;
const CLIENT_TIMEOUT_MS = 120_000;
/** "[YYYY-MM-DD HH:MM:SS] " before each result line. */
const STAMP = 22;
const TRUNCATED = /\u00e2\u0080\u00a6\[truncated (\d+) bytes\]$/; // "…[truncated N bytes]" read as Latin-1

/** Every line whose id starts with `tag`, as stored (raw bytes after the stamp), by id. */
async function storedLines(queryPort: number, tag: string): Promise<Map<string, Buffer[]>> {
  const answer = await sendAndClose(queryPort, `SEARCH ${tag}-\n`);
  const check = checkAnswers(answer, [{ kind: 'found' }], true);
  if (check.problem) throw new Error(`the final SEARCH: ${check.problem}`);
  const byId = new Map<string, Buffer[]>();
  let from = answer.indexOf(10) + 1;
  while (from < answer.length) {
    const nl = answer.indexOf(10, from);
    const line = answer.subarray(from + STAMP, nl);
    from = nl + 1;
    let sp = line.indexOf(32);
    if (sp < 0) sp = line.length;
    const id = line.toString('latin1', 0, sp);
    const list = byId.get(id);
    if (list) list.push(line);
    else byId.set(id, [line]);
  }
  return byId;
}

/** What the store must hold: each line of a clean client once, as sent (or its first
 *  MAX_LINE bytes and the truncation marker); a reset client's lines at most once. */
function checkStored(byId: Map<string, Buffer[]>, outcomes: IngestOutcome[], tag: string, seed: number): { stored: number; truncated: number } {
  let stored = 0;
  let truncated = 0;
  const known = new Set<string>();
  for (const o of outcomes) {
    // A reset cuts a client's last line: the part received is stored when the
    // connection closes (as an unterminated last line is), so it may be a prefix.
    let lastStored = -1;
    for (let i = 0; i < o.lines.length; i++) if (byId.has(`${tag}-${o.client}-${i}`)) lastStored = i;
    for (let i = 0; i < o.lines.length; i++) {
      const id = `${tag}-${o.client}-${i}`;
      known.add(id);
      let got = byId.get(id) ?? [];
      const where = `seed ${seed}, ${o.behaviour}, line ${i}`;
      if (!o.mustStore && got.length === 2) {
        // The cut last line of a reset client may end inside its id, where it reads as
        // an earlier line's id ("…-1-6" of "…-1-63 …"): that one is the cut, not a copy.
        const isCut = (e: Buffer): boolean => o.lines.some((l, j) => j > i && l.length > e.length && l.subarray(0, e.length).equals(e));
        const cut = got.findIndex(isCut);
        if (cut >= 0) got = got.filter((_, k) => k !== cut);
      }
      if (got.length > 1) throw new Error(`${where}: stored ${got.length} times`);
      if (o.mustStore && got.length === 0) throw new Error(`${where}: sent before a clean FIN and acknowledged, but not stored`);
      if (got.length === 0) continue;
      stored++;
      const line = got[0];
      const cut = !o.mustStore && i === lastStored && line.length < o.lines[i].length && !TRUNCATED.test(line.toString('latin1'));
      const want = cut ? o.lines[i].subarray(0, line.length) : o.lines[i];
      if (want.length <= MAX_LINE) {
        if (!line.equals(want)) throw new Error(`${where}: stored '${line.toString('latin1').slice(0, 100)}' (${line.length} B), sent '${want.toString('latin1').slice(0, 100)}' (${want.length} B)`);
        continue;
      }
      const m = TRUNCATED.exec(line.toString('latin1'));
      const keptLen = line.length - (m ? Buffer.byteLength(m[0], 'latin1') : 0);
      const dropped = Number(m?.[1]);
      const droppedRight = o.mustStore || i !== lastStored ? dropped === want.length - keptLen : dropped <= want.length - keptLen;
      if (!m || keptLen > MAX_LINE || keptLen < MAX_LINE - 3 || !line.subarray(0, keptLen).equals(want.subarray(0, keptLen)) || !droppedRight) {
        throw new Error(`${where}: a ${want.length}-byte line came back as ${line.length} bytes ending '${line.toString('latin1').slice(-60)}'`);
      }
      truncated++;
    }
  }
  // A reset may cut a line inside its id: such a stored id must be the start of an id
  // of a client that reset, one per such client.
  const cutIds = new Set<number>();
  for (const id of byId.keys()) {
    if (known.has(id)) continue;
    const o = outcomes.find((c) => !c.mustStore && !cutIds.has(c.client) && c.lines.some((l) => l.toString('latin1', 0, id.length + 12).startsWith(id)));
    if (!o || byId.get(id)!.length > 1) throw new Error(`seed ${seed}: a line with id ${id} was stored but never sent`);
    cutIds.add(o.client);
  }
  return { stored, truncated };
}

async function stats(queryPort: number): Promise<string> {
  const answer = (await sendAndClose(queryPort, 'STATS\n')).toString('latin1');
  if (!answer.startsWith('STATS: ')) throw new Error(`STATS answered '${answer.slice(0, 200)}'`);
  return answer.trim();
}

describe('fuzz: client behaviours against a logcaster child, on every backend', function () {
  const long = fuzzLongSeconds();
  const budgetMs = long > 0 ? long * 1000 : ROUND_BUDGET_MS;
  this.timeout(budgetMs + 5 * CLIENT_TIMEOUT_MS);

  let run: Running | undefined;
  let dir: string | undefined;
  let sampler: NodeJS.Timeout | undefined;
  afterEach(async () => {
    if (sampler) clearInterval(sampler);
    sampler = undefined;
    if (run && run.child.exitCode === null && run.child.signalCode === null) {
      run.child.kill('SIGKILL');
      await run.exited;
    }
    run = undefined;
    if (dir) rmDir(dir);
    dir = undefined;
  });

  itOnEachBackend('concurrent random clients: answers in order, acked lines stored once, bounded RSS, fds back to baseline', async (backend) => {
    const seed = fuzzSeed(`${backend} client fuzz`);
    const rng = new Rng(seed);
    const fsync = rng.pick(['interval', 'always']);
    dir = tmpDir('fuzz');
    run = await startCli(['--backend', backend, '--ack', '--data-dir', dir, '--fsync', fsync, '--capacity', '2M', '--max-line', String(MAX_LINE), '--max-query-clients', '500', '--regex-timeout', '120000']);
    const server = run;
    const pid = server.child.pid!;
    let exited = false;
    void server.exited.then(() => (exited = true));
    // An epoch's lines carry its tag; a long run checks and CLEARs the store every
    // EPOCH_LINES lines so that it can run for hours in bounded memory.
    let epoch = 0;
    const tagOf = (e: number): string => `fz${seed.toString(36)}e${e}`;
    const target: FuzzTarget = { ingestPort: server.ingestPort, queryPort: server.queryPort, tag: tagOf(0), maxLine: MAX_LINE, clientTimeoutMs: CLIENT_TIMEOUT_MS };

    // Baseline once the journal's segment is open and one of each client has come and gone.
    expect((await sendAndClose(server.ingestPort, 'warm-up\n')).toString()).to.equal('OK\n');
    await stats(server.queryPort);
    // Sockets, not every fd: the scan pool's worker threads (each with its own pipes
    // and epoll fd) start on demand and are replaced when preempted.
    const baseSockets = processSockets(pid);
    const baseTargets = processFdTargets(pid);
    const baseRss = processRss(pid);
    let maxRss = baseRss;
    sampler = setInterval(() => {
      try {
        maxRss = Math.max(maxRss, processRss(pid));
      } catch {
        /* exited: the round's check reports it */
      }
    }, 50);

    let outcomes: IngestOutcome[] = [];
    let sent = 0;
    let stored = 0;
    let truncated = 0;
    const checkEpoch = async (): Promise<void> => {
      const r = checkStored(await storedLines(server.queryPort, target.tag), outcomes, target.tag, seed);
      stored += r.stored;
      truncated += r.truncated;
      sent += outcomes.reduce((n, o) => n + o.lines.length, 0);
    };
    let clients = 0;
    let queryClients = 0;
    let answered = 0;
    let rounds = 0;
    const started = Date.now();
    while (Date.now() - started < budgetMs) {
      const k = rng.range(5, 24);
      const tasks: Promise<unknown>[] = [];
      for (let j = 0; j < k; j++) {
        const t0 = Date.now();
        const took = (what: string): void => {
          if (process.env.LOGCASTER_FUZZ_VERBOSE) console.log(`        ${Date.now() - t0} ms: ${what}`);
        };
        if (rng.chance(0.55)) {
          tasks.push(
            ingestClient(target, rng.fork(), clients++).then((o) => {
              outcomes.push(o);
              took(o.behaviour);
            }),
          );
        } else {
          tasks.push(
            queryClient(target, rng.fork(), queryClients++, clients).then((q) => {
              answered += q.answered;
              took(q.behaviour);
            }),
          );
        }
      }
      const settled = await Promise.allSettled(tasks);
      const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failed) throw new Error(`seed ${seed}, round ${rounds + 1}: ${(failed.reason as Error).message}`);
      if (exited) throw new Error(`seed ${seed}: the server exited during round ${rounds + 1}: ${server.stderr().slice(-2000)}`);
      rounds++;
      if (process.env.LOGCASTER_FUZZ_VERBOSE) console.log(`      round ${rounds}: ${k} clients, ${Date.now() - started} ms`);
      await waitFor(() => processSockets(pid) <= baseSockets, FD_SETTLE_MS, () => `seed ${seed}, round ${rounds}: the server's sockets to return to the baseline ${baseSockets} (open fds: ${processFdTargets(pid).join(' ')}; at the baseline: ${baseTargets.join(' ')})`);
      if (maxRss > RSS_BOUND) throw new Error(`seed ${seed}, round ${rounds}: RSS ${(maxRss / 2 ** 20).toFixed(0)} MiB over the bound ${RSS_BOUND / 2 ** 20} MiB`);
      if (outcomes.reduce((n, o) => n + o.lines.length, 0) > EPOCH_LINES) {
        await checkEpoch();
        const cleared = (await sendAndClose(server.queryPort, 'CLEAR\n')).toString();
        if (!/^CLEARED: \d+\n$/.test(cleared)) throw new Error(`seed ${seed}: CLEAR answered '${cleared}'`);
        outcomes = [];
        target.tag = tagOf(++epoch);
      }
    }

    await checkEpoch();
    const line = await stats(server.queryPort);
    console.log(
      `      ${rounds} rounds${epoch ? ` in ${epoch + 1} epochs` : ''}, ${clients} ingest clients (${sent} lines, ${stored} stored, ${truncated} truncated), ` +
        `${queryClients} query clients (${answered} commands answered), fsync ${fsync}; ` +
        `${tinyWindowUnavailable() ? `tiny-window clients skipped (${tinyWindowUnavailable()}); ` : ''}RSS ${(baseRss / 2 ** 20).toFixed(0)} → max ${(maxRss / 2 ** 20).toFixed(0)} MiB, sockets ${baseSockets}`,
    );
    expect(line, 'exceptions the server isolated').to.match(/ Errors=0,/);
    expect(stored, 'lines stored').to.be.greaterThan(0);
    expect(maxRss).to.be.below(RSS_BOUND);

    clearInterval(sampler);
    server.child.kill('SIGTERM');
    expect(await server.exited, 'graceful stop after the fuzzing').to.deep.equal({ code: 0, signal: null });
  });
});
