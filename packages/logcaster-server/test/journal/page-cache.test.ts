// --journal-cache: a finished segment leaves the page cache once the newest bytes written
// after it exceed the budget, and again after its token filter was built from it;
// queries read it back.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import { cachedBytes, itUnless, pageCacheUnobservable, rmDir, sendAndClose, tmpDir, waitFor } from '@logcaster/testkit';

import type { LogCaster, LogCasterOptions } from '../../src';
import { QueryClient, startServer } from '../support/helpers';

const MiB = 1024 * 1024;
const LINES = 240_000;

function lines(from: number, to: number): Buffer {
  const parts: string[] = [];
  for (let i = from; i < to; i++) parts.push(`L${String(i).padStart(8, '0')} GET /api/v1/users/${(i * 2654435761) % 1000003} 200 took=${i % 997}ms`);
  return Buffer.from(parts.join('\n') + '\n');
}

describe('the journal in the page cache (--journal-cache)', function () {
  this.timeout(120_000);
  const dirs: string[] = [];
  const servers: LogCaster[] = [];
  afterEach(async () => {
    for (const lc of servers.splice(0)) await lc.stop();
    for (const d of dirs.splice(0)) rmDir(d);
  });

  /** Streams LINES lines (~15 MB) into a server with 1 MiB segments; returns the bytes
   *  of each finished segment still cached, oldest first, once every filter is built. */
  async function run(opts: LogCasterOptions): Promise<{ lc: LogCaster; query: number; dir: string; cached: () => number[] }> {
    const dir = tmpDir('page-cache');
    dirs.push(dir);
    const { lc, info } = await startServer({ dataDir: dir, capacity: 1_000, rotateSize: 1 * MiB, fsync: 'interval', ...opts });
    servers.push(lc);
    for (let a = 0; a < LINES; a += 20_000) await sendAndClose(info.ingestPort, lines(a, a + 20_000));
    await waitFor(() => lc.stats().total >= LINES, 60_000, () => `stored ${lc.stats().total} of ${LINES}`);
    await waitFor(() => lc.stats().filtersPending === 0, 60_000, () => `${lc.stats().filtersPending} segments without a token filter`);
    const finished = (): string[] => fs.readdirSync(dir).filter((f) => f.endsWith('.log')).sort().slice(0, -1);
    return { lc, query: info.queryPort, dir, cached: () => finished().map((f) => cachedBytes(path.join(dir, f))) };
  }

  itUnless(pageCacheUnobservable(), 'older segments leave the cache once filtered; without a budget they stay; every line still answers', async () => {
    const kept = await run({ journalCache: 2 * MiB });
    // The newest ~2 MiB of finished segments may stay; every older one goes, also once
    // the filter builder read it back and the writer thread heard of it.
    await waitFor(() => kept.cached().slice(0, -3).every((b) => b === 0), 20_000, () => `cached bytes per segment: ${kept.cached().join(' ')}`);
    const segments = kept.cached().length;
    expect(segments, 'segments finished').to.be.greaterThan(8);

    const control = await run({ journalCache: 0 });
    const stayed = control.cached().slice(0, -3);
    expect(stayed.every((b) => b > 0), `control: the kernel keeps what was written (cached bytes: ${stayed.join(' ')})`).to.equal(true);

    // Dropped from the cache, not from the journal: queries read the segments back.
    const q = await QueryClient.open(kept.query);
    expect(await q.ask('COUNT')).to.equal(`COUNT: ${LINES}`);
    const found = await q.found('SEARCH L00000123 ');
    expect(found.lines).to.have.length(1);
    expect(found.lines[0]).to.include('L00000123 GET /api/v1/users/');
    const all = await q.found('SEARCH took=');
    expect(all.lines).to.have.length(LINES);
    q.close();
  });
});
