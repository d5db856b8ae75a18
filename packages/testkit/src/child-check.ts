// A mocha root-hook plugin (loaded by the root .mocharc.json): no child process
// outlives the test that started it, and none started by a suite's hooks (a server
// shared by its tests) outlives that suite. Worker threads are held to their suite:
// a server shared by a suite's tests may start its workers during any of them.
// An offender is killed at once, so one failed test cannot leave a server running
// and hang the run, and the run fails at the end with the list of offenders.
import { ChildProcess } from 'node:child_process';
import workerThreads = require('node:worker_threads');
import type { Context, Hook, Suite, Test } from 'mocha';

type Owner = Test | Suite;

interface Tracked {
  what: string;
  owner: Owner | undefined;
  alive(): boolean;
  /** A kill or terminate was already asked for by the test. */
  ending(): boolean;
  exited: Promise<void>;
  end(): void;
}

/** Suite#getHooks exists (mocha's runner uses it) but is not in @types/mocha. */
interface SuiteHooks {
  getHooks(name: 'beforeAll'): Hook[];
}

const tracked = new Set<Tracked>();
const offenders: string[] = [];
const suites: Suite[] = [];
let currentTest: Test | undefined;
const GRACE_MS = 5000;

function track(entry: Omit<Tracked, 'owner'>, owner: Owner | undefined): void {
  const t: Tracked = { ...entry, owner };
  tracked.add(t);
  void t.exited.then(() => tracked.delete(t));
}

/** Every asynchronous child (spawn, fork, exec, execFile) starts in ChildProcess#spawn,
 *  which node has but does not document (so neither does @types/node). */
interface Spawning {
  spawn(options: unknown): unknown;
}
const proto = ChildProcess.prototype as ChildProcess & Spawning;
const spawnChild = proto.spawn;
proto.spawn = function (this: ChildProcess & Spawning, options: unknown) {
  const result = spawnChild.call(this, options);
  const child = this;
  if (child.pid !== undefined) {
    let gone = false;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    void exited.then(() => (gone = true));
    track({
      what: `child process ${child.pid}: ${child.spawnargs.join(' ').replace(/\s+/g, ' ').slice(0, 160)}`,
      alive: () => !gone && child.exitCode === null && child.signalCode === null,
      ending: () => child.killed,
      exited,
      end: () => void child.kill('SIGKILL'),
    }, currentTest ?? suites[suites.length - 1]);
  }
  return result;
};

const BaseWorker = workerThreads.Worker;
class TrackedWorker extends BaseWorker {
  constructor(...args: ConstructorParameters<typeof BaseWorker>) {
    super(...args);
    let gone = false;
    let terminating = false;
    const exited = new Promise<void>((resolve) => this.once('exit', () => resolve()));
    void exited.then(() => (gone = true));
    const terminate = this.terminate.bind(this);
    this.terminate = () => {
      terminating = true;
      return terminate();
    };
    track({
      what: `worker thread ${this.threadId}`,
      alive: () => !gone,
      ending: () => terminating,
      exited,
      end: () => void terminate(),
    }, suites[suites.length - 1]);
  }
}
workerThreads.Worker = TrackedWorker;

function within(p: Promise<void>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    void p.then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** Children of `owner` still running: those already being ended get a grace period;
 *  the others are offenders and are ended now. */
async function settle(match: (owner: Owner | undefined) => boolean, where: string): Promise<void> {
  for (const t of [...tracked]) {
    if (!match(t.owner) || !t.alive()) continue;
    if (t.ending() && (await within(t.exited, GRACE_MS))) continue;
    const offence = `${where} left ${t.what}`;
    offenders.push(offence);
    process.stderr.write(`child-process check: ${offence} (killed)\n`);
    t.end();
    if (!(await within(t.exited, GRACE_MS))) offenders.push(`${t.what} did not exit after being killed`);
  }
}

function instrument(suite: Suite): void {
  for (const s of suite.suites) {
    s.beforeAll('child-process check: this suite begins', () => void suites.push(s));
    // First, so that what the suite's own before hooks start is attributed to it.
    const hooks = (s as unknown as SuiteHooks).getHooks('beforeAll');
    hooks.unshift(hooks.pop()!);
    s.afterAll('child-process check: nothing this suite started is still running', async () => {
      suites.pop();
      await settle((o) => o === s, `suite "${s.fullTitle()}"`);
    });
    instrument(s);
  }
}

export const mochaHooks = {
  beforeAll(this: Context): void {
    instrument(this.test!.parent!);
  },
  beforeEach(this: Context): void {
    currentTest = this.currentTest;
  },
  async afterEach(this: Context): Promise<void> {
    const test = this.currentTest;
    currentTest = undefined;
    await settle((o) => o === test, `test "${test?.fullTitle()}"`);
  },
  async afterAll(): Promise<void> {
    await settle(() => true, 'the run');
    if (offenders.length) {
      throw new Error(`${offenders.length} child process(es) or worker(s) outlived the test or suite that started them:\n  ${offenders.join('\n  ')}`);
    }
  },
};
