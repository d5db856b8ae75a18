// A failed fdatasync (EIO, injected into the real server by strace) is fail-stop: after it
// the page cache cannot be trusted, so persistence stops until restart. The server says so
// (STATS, stderr), tells ack clients and closes them instead of acknowledging what is not
// on disk, and keeps serving queries from memory.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';

import { expect } from 'chai';

import { connectTo, itUnless, rmDir, tmpDir, waitFor } from '@logcaster/testkit';

import { startCli, type Running, type Wrap } from '../support/cli';
import { QueryClient } from '../support/helpers';

/** null when strace can inject a syscall error here, else why not. */
function straceInjectUnavailable(): string | null {
  const r = spawnSync('strace', ['-qq', '-o', '/dev/null', '-e', 'inject=fdatasync:error=EIO', 'true']);
  if (r.error) return 'strace is not installed';
  return r.status === 0 ? null : `strace cannot inject errors here: ${String(r.stderr).trim()}`;
}

/** The server with every fdatasync of every thread failing with EIO. */
const failingFsync: Wrap = (argv) => ({
  command: 'strace',
  args: ['-f', '-qq', '-o', '/dev/null', '-e', 'trace=fdatasync', '-e', 'inject=fdatasync:error=EIO', '--', ...argv],
});

describe('journal: a failed fdatasync', function () {
  this.timeout(30000);
  let dir = '';
  let server: Running | undefined;
  beforeEach(() => (dir = tmpDir('fsync-eio')));
  afterEach(async () => {
    if (server !== undefined && server.child.exitCode === null) {
      // Killing strace would leave the traced server running: kill the server, then strace.
      const pid = server.child.pid;
      for (const traced of fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean)) process.kill(Number(traced), 'SIGKILL');
      server.child.kill('SIGKILL');
      await server.exited;
    }
    server = undefined;
    rmDir(dir);
  });

  itUnless(straceInjectUnavailable(), 'stops persistence for good: STATS says failed with EIO, ack clients get ERROR and are closed, queries still answer', async () => {
    server = await startCli(['--data-dir', dir, '--fsync', 'always', '--ack'], process.env, failingFsync);
    const s = await connectTo(server.ingestPort);
    let reply = '';
    let closed = false;
    s.on('data', (d: Buffer) => (reply += d.toString('latin1')));
    s.on('error', () => {});
    s.on('close', () => (closed = true));
    s.write('never acknowledged\n');
    await waitFor(() => closed, 20000, () => `the ack client was not closed; it got ${JSON.stringify(reply)}`);
    expect(reply).to.not.match(/^OK/m);
    expect(reply).to.match(/^ERROR: persistence failed: .*EIO.*; lines after the last OK are not on disk$/m);

    const q = await QueryClient.open(server.queryPort);
    try {
      const stats = await q.ask('STATS');
      expect(stats).to.match(/Persisting=failed \([^)]*EIO/);
      const { lines } = await q.found('QUERY keyword=acknowledged');
      expect(lines, 'the line is kept in memory and served').to.have.length(1);
    } finally {
      q.close();
    }
    expect(server.stderr()).to.match(/persistence failed/);
    expect(server.child.exitCode, 'the server keeps running').to.equal(null);
  });
});
