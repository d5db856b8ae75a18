// The client commands (logcaster send | query | tail | stats) as child processes, the way
// scripts run them: stdin, files, exit codes, tokens, and tail -f following new lines.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';

import { rmDir, tmpDir, waitFor } from '@logcaster/testkit';

import { createLogCaster, type LogCaster, type LogCasterOptions, type StartInfo } from '../../src';
import { BIN, runCli } from '../support/cli';

async function start(opts: LogCasterOptions = {}): Promise<{ lc: LogCaster; info: StartInfo }> {
  const lc = createLogCaster({ port: 0, queryPort: 0, httpPort: 0, ...opts });
  return { lc, info: await lc.start() };
}

const STAMP = /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] /;

describe('cli: client commands', function () {
  this.timeout(30000);
  let lc: LogCaster;
  let info: StartInfo;
  let dir: string;
  let q: string[];
  before(async () => {
    dir = tmpDir('cli-client');
    ({ lc, info } = await start());
    q = ['--query-port', String(info.queryPort)];
  });
  after(async () => {
    await lc.stop();
    rmDir(dir);
  });

  it('send: stdin and a file (its last line without a newline) reach the store; exit 0', async () => {
    const a = await runCli(['send', '--port', String(info.ingestPort)], 'first error line\nsecond line\n');
    expect(a.status).to.equal(0);
    const file = path.join(dir, 'lines.txt');
    writeFileSync(file, 'third error line\nfourth line without newline');
    const b = await runCli(['send', '--port', String(info.ingestPort), file]);
    expect(b.status).to.equal(0);
    expect(lc.stats().current).to.equal(4); // stored before send exits: it waits for the server's close
  });

  it('query: matching lines on stdout, exit 0; none: exit 1; a bad query: exit 2 and the reason', async () => {
    const hit = await runCli(['query', ...q, 'keyword=error']);
    expect(hit.status).to.equal(0);
    const lines = hit.stdout.trim().split('\n');
    expect(lines.map((l) => l.replace(STAMP, ''))).to.deep.equal(['first error line', 'third error line']);
    expect(lines.every((l) => STAMP.test(l))).to.equal(true);
    const count = await runCli(['query', ...q, '--count', 'keywords=error,without', 'operator=OR']);
    expect(count.stdout).to.equal('3\n');
    const none = await runCli(['query', ...q, 'keyword=absent']);
    expect([none.status, none.stdout]).to.deep.equal([1, '']);
    const bad = await runCli(['query', ...q, 'nonsense=1']);
    expect(bad.status).to.equal(2);
    expect(bad.stderr).to.match(/unknown parameter 'nonsense=1'/);
  });

  it('stats: the STATS figures, and --json for scripts', async () => {
    const human = await runCli(['stats', ...q]);
    expect(human.status).to.equal(0);
    expect(human.stdout).to.match(/^Total\s+4$/m);
    const json = JSON.parse((await runCli(['stats', ...q, '--json'])).stdout);
    expect(json).to.include({ total: 4, current: 4, backend: lc.backend });
    expect(json.uptimeSeconds).to.be.a('number');
  });

  it('tail -n: the newest lines, oldest first; with a filter', async () => {
    const t = await runCli(['tail', '--http-port', String(info.httpPort), '-n', '2']);
    expect(t.status).to.equal(0);
    expect(t.stdout.trim().split('\n').map((l) => l.replace(STAMP, ''))).to.deep.equal(['third error line', 'fourth line without newline']);
    const f = await runCli(['tail', '--http-port', String(info.httpPort), '-n', '5', 'keyword=second']);
    expect(f.stdout.replace(STAMP, '')).to.equal('second line\n');
  });

  it('tail -f: follows new matching lines until interrupted, then exits 0', async () => {
    const child = spawn(process.execPath, [BIN, 'tail', '-f', '-n', '1', '--http-port', String(info.httpPort), 'keyword=follow'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.once('close', r));
    try {
      // Lines sent before its backlog query would be part of the backlog: wait for its event stream.
      let subscribers = 0;
      await waitFor(
        () => {
          void fetch(`http://127.0.0.1:${info.httpPort}/api/stats`).then(async (r) => (subscribers = ((await r.json()) as { tailSubscribers: number }).tailSubscribers));
          return subscribers === 1;
        },
        10000,
        'the tail event stream',
      );
      expect((await runCli(['send', '--port', String(info.ingestPort)], 'follow me\nnot me\nfollow me too\n')).status).to.equal(0);
      await waitFor(() => out.split('\n').length >= 3, 10000, () => `two followed lines, got ${JSON.stringify(out)}`);
      expect(out.trim().split('\n').map((l) => l.replace(STAMP, ''))).to.deep.equal(['follow me', 'follow me too']);
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).to.equal(0);
  });

  it('exit 3 when the server cannot be reached; exit 2 for bad options', async () => {
    const down = await runCli(['query', '--query-port', '1', 'keyword=x']);
    expect(down.status).to.equal(3);
    expect(down.stderr).to.match(/cannot connect to the query port at 127\.0\.0\.1:1: ECONNREFUSED/);
    expect((await runCli(['send', '--port', '1'], 'x\n')).status).to.equal(3);
    expect((await runCli(['tail', '--http-port', '1'])).status).to.equal(3);
    const bad = await runCli(['stats', '--bogus']);
    expect(bad.status).to.equal(2);
    expect(bad.stderr).to.match(/Usage: logcaster stats/);
  });

  it('send --ack: exit 0 when every line is acknowledged, 1 when the server does not ack', async () => {
    const acking = await start({ ack: true });
    try {
      const ok = await runCli(['send', '--ack', '--port', String(acking.info.ingestPort)], 'a\nb\nc\n');
      expect(ok.status).to.equal(0);
    } finally {
      await acking.lc.stop();
    }
    const no = await runCli(['send', '--ack', '--port', String(info.ingestPort)], 'd\n');
    expect(no.status).to.equal(1);
    expect(no.stderr).to.match(/0 of 1 lines acknowledged \(is the server running with --ack\?\)/);
  });

  it('query and stats authenticate with $LOGCASTER_QUERY_TOKEN; a wrong token exits 3', async () => {
    const token = 'client-test-token-6b1f0c2e';
    const locked = await start({ queryTokens: [token], queryAuthLoopback: true });
    try {
      const port = ['--query-port', String(locked.info.queryPort)];
      const ok = await runCli(['stats', ...port, '--json'], '', { ...process.env, LOGCASTER_QUERY_TOKEN: token });
      expect(ok.status).to.equal(0);
      expect(JSON.parse(ok.stdout).total).to.equal(0);
      const file = path.join(dir, 'token');
      writeFileSync(file, `# the query token\n${token}\n`, { mode: 0o600 });
      expect((await runCli(['query', ...port, '--query-token-file', file, 'keyword=x'])).status).to.equal(1);
      const wrong = await runCli(['stats', ...port], '', { ...process.env, LOGCASTER_QUERY_TOKEN: 'not-the-token' });
      expect(wrong.status).to.equal(3);
      expect(wrong.stderr).to.match(/authentication failed/);
    } finally {
      await locked.lc.stop();
    }
  });

  it('logcaster alone or `logcaster serve` still starts the server; --help lists the commands', async () => {
    const help = await runCli(['--help']);
    expect(help.stdout).to.match(/^Usage: logcaster \[options\]/);
    expect(help.stdout).to.match(/logcaster send \[file\|-\]/);
    const serve = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--query-port', '0', '--http-port', '0', '--data-dir', 'none'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let line = '';
    serve.stdout.on('data', (d) => (line += d));
    const exited = new Promise<number | null>((r) => serve.once('close', r));
    await waitFor(() => line.includes('\n'), 10000, 'the start line');
    expect(line).to.match(/^LogCaster \S+ backend=\w+ ingest=127\.0\.0\.1:\d+ query=127\.0\.0\.1:\d+ http=127\.0\.0\.1:\d+ /);
    serve.kill('SIGTERM');
    expect(await exited).to.equal(0);
  });
});
