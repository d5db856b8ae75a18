// The suite-wide check that no child process or worker outlives its test
// (src/child-check.ts), run by a real mocha over fixture files.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const mocha = require.resolve('mocha/bin/mocha.js');
const hooks = join(__dirname, '..', 'src', 'child-check.js');

function runMocha(fixture: string): { status: number | null; output: string } {
  const r = spawnSync(process.execPath, [mocha, '--no-config', '--reporter', 'spec', '--require', hooks, join(__dirname, 'fixtures', fixture)], {
    encoding: 'utf8',
    timeout: 30000,
  });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe('testkit: child-process check', function () {
  this.timeout(40000);

  it('fails the run naming each test and suite that left a child or worker running, kills them, and lets mocha exit', () => {
    const { status, output } = runMocha('leaky.fixture.js');
    // The run ended (no hang on the leaked children) and failed.
    expect(status, output).to.equal(1);
    expect(output).to.match(/4 passing/);
    expect(output).to.match(/3 child process\(es\) or worker\(s\) outlived the test or suite that started them/);
    expect(output).to.match(/test "leaky leaves a child running" left child process \d+: .*node -e setInterval/);
    expect(output).to.match(/suite "leaky a suite whose before hook starts a server it never stops" left child process \d+/);
    expect(output).to.match(/suite "leaky" left worker thread \d+/);
    expect(output).to.not.match(/"leaky kills its child without waiting for it" left/);
  });

  it('passes a run whose children are ended by their tests and suites', () => {
    const { status, output } = runMocha('tidy.fixture.js');
    expect(status, output).to.equal(0);
    expect(output).to.match(/2 passing/);
    expect(output).to.not.match(/outlived/);
  });
});
