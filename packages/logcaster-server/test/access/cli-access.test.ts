// The access options of the `logcaster` command: the start-up refusal, token sources and
// their warnings, the start line, the access log on stderr.
import { expect } from 'chai';
import { chmodSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

import { rmDir, tmpDir, waitFor } from '@logcaster/testkit';

import { parseCli } from '../../src/cli/args';
import { runSync, startCliPerTest } from '../support/cli';
import { QueryClient } from '../support/helpers';

const TOKEN = 'cli-access-token-5be0d2a8f1';

describe('access: logcaster CLI', function () {
  this.timeout(30000);
  let dir: string;
  const start = startCliPerTest();
  before(() => (dir = tmpDir('cli-access')));
  after(() => rmDir(dir));
  const env = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => {
    const e = { ...process.env, ...extra };
    if (!('LOGCASTER_QUERY_TOKEN' in extra)) delete e.LOGCASTER_QUERY_TOKEN;
    return e;
  };

  it('refuses to start (exit 2) with a non-loopback --query-host and no token', () => {
    for (const host of ['0.0.0.0', '::']) {
      const r = runSync(['--data-dir', 'none', '--query-host', host], env());
      expect(r.status, host).to.equal(2);
      expect(r.stderr).to.match(/^logcaster: the query port would listen on .* with no query token: .*--query-token-file.*LOGCASTER_QUERY_TOKEN.*--query-insecure/);
      expect(r.stdout).to.equal('');
    }
  });

  it('exits 2 on bad access options', () => {
    const cases: [string[], RegExp][] = [
      [['--allow', '10.0.0.0/33'], /invalid --allow '10.0.0.0\/33' \(expected addresses or CIDRs/],
      [['--query-allow', 'example.com'], /invalid --query-allow/],
      [['--query-token', 'has space'], /invalid --query-token/],
      [['--query-token-file', path.join('/nonexistent', 'tokens')], /cannot read token file .*ENOENT/],
      [['--query-auth-loopback'], /needs a query token/],
      [['--query-host', 'example.com'], /invalid --query-host/],
    ];
    for (const [args, re] of cases) {
      const r = runSync(['--data-dir', 'none', ...args], env());
      expect(r.status, args.join(' ')).to.equal(2);
      expect(r.stderr, args.join(' ')).to.match(re);
    }
    expect(runSync(['--data-dir', 'none', '--query-host', '0.0.0.0'], env({ LOGCASTER_QUERY_TOKEN: 'two words' })).stderr).to.match(/LOGCASTER_QUERY_TOKEN: a token must not contain spaces/);
  });

  it('parses the allow lists into arrays', () => {
    const r = parseCli(['--allow', '10.0.0.0/8, 192.168.1.7', '--query-allow=::1', '--query-token', TOKEN]);
    expect(r.ok).to.equal(true);
    if (r.ok) expect(r.value.server).to.deep.include({ allow: ['10.0.0.0/8', '192.168.1.7'], queryAllow: ['::1'], queryTokens: [TOKEN] });
  });

  it('--query-insecure starts, warns, and the start line shows each address', async () => {
    const run = await start(['--data-dir', 'none', '--host', '127.0.0.1', '--query-host', '0.0.0.0', '--query-insecure'], env());
    expect(run.line).to.match(/ ingest=127\.0\.0\.1:\d+ query=0\.0\.0\.0:\d+ /);
    expect(run.stderr()).to.match(/warning: --query-insecure: the query port on 0\.0\.0\.0 serves anyone who can connect/);
  });

  it('a token on the command line works and is warned about', async () => {
    const run = await start(['--data-dir', 'none', '--query-token', TOKEN, '--query-auth-loopback'], env());
    expect(run.stderr()).to.match(/warning: --query-token: a token on the command line is visible to every user/);
    const q = await QueryClient.open(run.queryPort);
    expect(await q.ask(`AUTH ${TOKEN}`)).to.equal('AUTH: OK');
    expect(await q.ask('COUNT')).to.equal('COUNT: 0');
    q.close();
  });

  it('takes tokens from $LOGCASTER_QUERY_TOKEN and --query-token-file, warns about a readable file, logs failures', async () => {
    const file = path.join(dir, 'tokens');
    writeFileSync(file, `# operators\nfile-token-9c3e71b04d2a\n`);
    chmodSync(file, 0o644);
    const run = await start(['--data-dir', 'none', '--query-host', '0.0.0.0', '--query-token-file', file, '--query-auth-loopback'], env({ LOGCASTER_QUERY_TOKEN: TOKEN }));
    expect(run.line).to.match(/ query=0\.0\.0\.0:\d+ /);
    expect(run.stderr()).to.match(/warning: token file .* is readable by other users \(mode 644\)/);
    expect(run.stderr()).not.to.match(/command line/);
    for (const token of [TOKEN, 'file-token-9c3e71b04d2a']) {
      const q = await QueryClient.open(run.queryPort);
      expect(await q.ask(`AUTH ${token}`)).to.equal('AUTH: OK');
      q.close();
    }
    const bad = await QueryClient.open(run.queryPort);
    expect(await bad.ask('AUTH not-a-token')).to.equal('ERROR: authentication failed');
    await waitFor(() => /query AUTH failed from 127\.0\.0\.1 \(1 recent failure from there/.test(run.stderr()), 5000, 'the failure on stderr');
    bad.close();
  });
});
