// loadBackend(): in a project whose backends fail in every way there is, the error of
// 'auto' lists each one with why it was not taken (README "Backends and how one is
// chosen"). The core package is copied in, so only the fake backends can be found.
import { expect } from 'chai';
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { rmDir, runNode, tmpDir } from '@logcaster/testkit';

const coreDir = dirname(require.resolve('@logcaster/core/package.json'));

/** Fake backend packages: name -> index.js (a missing name is not installed). */
const FAKES: Record<string, string> = {
  iouring: `require('./build/Release/missing.node');`,
  epoll: `module.exports = { name: 'epoll', probe: () => ({ supported: false, reason: 'epoll_create1: EMFILE' }), Engine: function () {} };`,
  kqueue: `module.exports = { name: 'kqueue', probe() { throw new Error('probe exploded'); }, Engine: function () {} };`,
  poll: `throw new Error('/opt/app/poll.node: undefined symbol: _ZN9logcaster6EngineC1Ev');`,
};

describe('loadBackend', function () {
  this.timeout(30000);
  let project: string;

  before(() => {
    project = tmpDir('loader');
    const scope = join(project, 'node_modules', '@logcaster');
    cpSync(join(coreDir, 'dist'), join(scope, 'core', 'dist'), { recursive: true });
    cpSync(join(coreDir, 'package.json'), join(scope, 'core', 'package.json'));
    for (const [name, index] of Object.entries(FAKES)) {
      const dir = join(scope, `backend-${name}`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `@logcaster/backend-${name}`, version: '0.0.0', main: 'index.js' }));
      writeFileSync(join(dir, 'index.js'), index);
    }
  });
  after(() => rmDir(project));

  /** What loadBackend(arg) throws in that project. */
  const failure = async (arg: string): Promise<{ message: string; code: string; tried: { name: string; status: string; reason: string }[] }> => {
    const r = await runNode(`
      try { require('@logcaster/core').loadBackend(${JSON.stringify(arg)}); console.log('null'); }
      catch (e) { console.log(JSON.stringify({ message: e.message, code: e.code, tried: e.tried })); }
    `, 20000, { cwd: project });
    expect(r.code, r.stderr).to.equal(0);
    return JSON.parse(r.stdout) as never;
  };

  it("'auto' fails listing every backend in preference order, each with its status and the real reason", async () => {
    const e = await failure('auto');
    expect(e.code).to.equal('ERR_LOGCASTER_NO_BACKEND');
    const lines = e.message.split('\n');
    expect(lines[0]).to.equal('no LogCaster backend could be loaded:');
    // One line per backend. A module missing inside an installed package is a load
    // failure, not "not installed"; `tried` keeps node's whole message.
    expect(e.tried[0].reason).to.match(/^Cannot find module '\.\/build\/Release\/missing\.node'\nRequire stack:/);
    expect(lines.slice(1)).to.deep.equal([
      "  iouring: failed to load: Cannot find module './build/Release/missing.node'",
      '  epoll: unsupported: epoll_create1: EMFILE',
      '  kqueue: failed to load: probe() threw: probe exploded',
      '  poll: failed to load: /opt/app/poll.node: undefined symbol: _ZN9logcaster6EngineC1Ev',
      '  select: not installed: @logcaster/backend-select is not installed',
    ]);
    expect(e.tried.map((t) => `${t.name} ${t.status}`)).to.deep.equal([
      'iouring failed to load',
      'epoll unsupported',
      'kqueue failed to load',
      'poll failed to load',
      'select not installed',
    ]);
  });

  it('a named backend fails with its own reason; an unknown name lists the valid ones', async () => {
    const epoll = await failure('epoll');
    expect(epoll.message).to.equal("backend 'epoll' is not available:\n  epoll: unsupported: epoll_create1: EMFILE");
    const unknown = await failure('turbo');
    expect(unknown.message).to.equal("unknown backend 'turbo' (expected one of: auto, select, poll, epoll, kqueue, iouring)");
    expect(unknown.code).to.equal('ERR_LOGCASTER_NO_BACKEND');
  });
});
