// The server's life on a real data directory: one owner at a time, nothing touched
// before the ports are bound, a stale lock taken over, directories that cannot be used,
// SIGHUP, the start line for IPv6.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

import { connectTo, delay, mountNamespaceUnavailable, rmDir, tmpDir, withTmpfs } from '@logcaster/testkit';
import { createLogCaster } from '../../src';
import { DataDirLockedError, LOCK_FILE } from '../../src/data-dir';
import { QueryClient, stripStamp } from '../support/helpers';
import { runSync, startCli, type Running } from '../support/cli';

/** Name and size of every file in `dir`, for "nothing changed" checks. */
function listing(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .sort()
    .map((f) => `${f} ${fs.statSync(path.join(dir, f)).size}`);
}

async function stop(run: Running): Promise<void> {
  if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGTERM');
  await run.exited;
}

describe('server lifecycle on a data directory', function () {
  this.timeout(60000);

  it('a second server on a running one\'s data dir exits 2 naming the owner, and touches none of its files', async () => {
    const dir = tmpDir('lock');
    const a = await startCli(['--data-dir', dir, '--rotate-size', '4k', '--max-files', '30']);
    try {
      const s = await connectTo(a.ingestPort);
      // In ten writes a turn apart: what arrives in one turn is one journal record, and a
      // record is never split across segments (one 113 KB write could make one segment).
      for (let k = 0; k < 10; k++) {
        s.write(Array.from({ length: 200 }, (_, i) => `owner line ${k * 200 + i} ${'x'.repeat(40)}\n`).join(''));
        await delay(30);
      }
      s.end();
      await new Promise((r) => s.once('close', r));
      const q = await QueryClient.open(a.queryPort);
      expect(await q.ask('COUNT')).to.equal('COUNT: 2000');
      q.close();
      // The journal's writer thread writes the segments out soon, not at once: wait until
      // they are there and stop changing (a fixed 1.5 s was too short on a loaded machine).
      let before = listing(dir);
      for (const end = Date.now() + 20000; Date.now() < end; ) {
        await delay(250);
        const now = listing(dir);
        const settled = now.join() === before.join() && now.filter((f) => /\.log /.test(f)).length >= 2;
        before = now;
        if (settled) break;
      }
      expect(before.filter((f) => /\.log /.test(f)).length, 'segments').to.be.at.least(2);
      // Would keep one segment, if it were allowed to open the journal.
      const b = runSync(['--port', '0', '--query-port', '0', '--http-port', '0', '--data-dir', dir, '--max-files', '1']);
      expect(b.status, b.stderr).to.equal(2);
      expect(b.stderr).to.include(`in use by another LogCaster (pid ${a.child.pid}`);
      // One that cannot even bind (the owner's port) must not get to the data dir.
      const c = runSync(['--port', String(a.ingestPort), '--query-port', '0', '--http-port', '0', '--data-dir', dir, '--max-files', '1']);
      expect(c.status, c.stderr).to.equal(1);
      expect(c.stderr).to.match(/EADDRINUSE|[Aa]ddress already in use/);
      expect(listing(dir)).to.deep.equal(before);
    } finally {
      await stop(a);
      rmDir(dir);
    }
  });

  it('takes over the lock of a process that is gone, and releases its own on exit', async () => {
    const dir = tmpDir('stale');
    try {
      const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
      fs.writeFileSync(path.join(dir, LOCK_FILE), `${dead.stdout} 1\n`);
      const run = await startCli(['--data-dir', dir]);
      expect(fs.readFileSync(path.join(dir, LOCK_FILE), 'utf8')).to.match(new RegExp(`^${run.child.pid} `));
      run.child.kill('SIGTERM');
      expect((await run.exited).code).to.equal(0);
      expect(fs.existsSync(path.join(dir, LOCK_FILE)), 'lock released').to.equal(false);
    } finally {
      rmDir(dir);
    }
  });

  it('embedded: a second LogCaster on the same data dir in this process is refused', async () => {
    const dir = tmpDir('lock-embedded');
    const a = createLogCaster({ port: 0, queryPort: 0, dataDir: dir });
    await a.start();
    try {
      const b = createLogCaster({ port: 0, queryPort: 0, dataDir: dir });
      let err: unknown;
      await b.start().catch((e) => (err = e));
      expect(err).to.be.instanceOf(DataDirLockedError);
      expect((err as Error).message).to.include(`pid ${process.pid}, this process`);
    } finally {
      await a.stop();
      rmDir(dir);
    }
    // Released: the directory can be used again.
    const c = createLogCaster({ port: 0, queryPort: 0, dataDir: dir });
    await c.start();
    await c.stop();
    rmDir(dir);
  });

  it('an unusable --data-dir gets a clear error at once (no spin): under /proc, a file', () => {
    const started = Date.now();
    const proc = runSync(['--port', '0', '--query-port', '0', '--http-port', '0', '--data-dir', '/proc/self/logcaster-x/y']);
    expect(proc.status, proc.stderr).to.equal(1);
    expect(proc.stderr).to.match(/^logcaster: cannot start: cannot create data dir \/proc\/self\/logcaster-x\/y: ENOENT/);
    const dir = tmpDir('notdir');
    try {
      fs.writeFileSync(path.join(dir, 'file'), 'x');
      const file = runSync(['--port', '0', '--query-port', '0', '--http-port', '0', '--data-dir', path.join(dir, 'file', 'sub')]);
      expect(file.status, file.stderr).to.equal(1);
      expect(file.stderr).to.match(/not a directory/);
    } finally {
      rmDir(dir);
    }
    expect(Date.now() - started, 'ms (each refusal is immediate; the bound is generous for a busy machine)').to.be.below(20000);
  });

  const ns = mountNamespaceUnavailable();
  it(`a read-only --data-dir is reported as EROFS${ns ? ` — skipped, ${ns}` : ''}`, function () {
    if (ns) this.skip();
    const mnt = tmpDir('rofs');
    try {
      const r = runSync(['--port', '0', '--query-port', '0', '--http-port', '0', '--data-dir', path.join(mnt, 'data')], process.env, (argv) => withTmpfs(mnt, { readOnly: true }, argv));
      expect(r.status, r.stderr).to.equal(1);
      expect(r.stderr).to.match(/cannot create data dir .*: EROFS/);
    } finally {
      rmDir(mnt);
    }
  });

  it('SIGHUP drains like SIGTERM: received lines (an unterminated last one too) are kept', async () => {
    const dir = tmpDir('hup');
    try {
      const a = await startCli(['--data-dir', dir, '--fsync', 'never']);
      const s = await connectTo(a.ingestPort);
      s.on('error', () => {});
      s.write('hup one\nhup two\nhup unterminated');
      await delay(300);
      a.child.kill('SIGHUP');
      const exit = await a.exited;
      expect(exit, a.stderr()).to.deep.equal({ code: 0, signal: null });
      expect(a.stderr()).to.include('SIGHUP: finishing received lines');
      s.destroy();
      const b = await startCli(['--data-dir', dir]);
      try {
        const q = await QueryClient.open(b.queryPort);
        expect((await q.found('RECENT 10')).lines.map(stripStamp)).to.deep.equal(['hup one', 'hup two', 'hup unterminated']);
        q.close();
      } finally {
        await stop(b);
      }
    } finally {
      rmDir(dir);
    }
  });

  const ipv6 = ((): boolean => {
    const probe = spawnSync(process.execPath, ['-e', "require('net').createServer().listen(0,'::1',function(){this.close()}).on('error',()=>process.exit(1))"]);
    return probe.status === 0;
  })();
  it(`the start line brackets an IPv6 address${ipv6 ? '' : ' — skipped, no IPv6 loopback here'}`, async function () {
    if (!ipv6) this.skip();
    const run = await startCli(['--host', '::1', '--query-host', '::1', '--data-dir', 'none']);
    try {
      expect(run.line).to.match(/ ingest=\[::1\]:\d+ query=\[::1\]:\d+ /);
      const s = net.connect({ host: '::1', port: run.ingestPort });
      await new Promise((r) => s.once('connect', r));
      s.destroy();
    } finally {
      await stop(run);
    }
  });
});
