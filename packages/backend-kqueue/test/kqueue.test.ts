// The published kqueue package on this machine: on Linux it must install and load
// (a stub addon) and say clearly that kqueue is unsupported here, so automatic
// backend selection moves on; on macOS/BSD it must probe as supported.
import { expect } from 'chai';

import { loadBackend, tryBackend } from '@logcaster/core';

const bsd = ['darwin', 'freebsd', 'openbsd', 'netbsd'].includes(process.platform);

describe('@logcaster/backend-kqueue', () => {
  it('loads and exports the backend shape', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const m = require('@logcaster/backend-kqueue') as { name: string; probe(): { supported: boolean; reason: string }; Engine: unknown };
    expect(m.name).to.equal('kqueue');
    expect(m.Engine).to.be.a('function');
    const p = m.probe();
    expect(p.supported).to.equal(bsd);
    if (!bsd) expect(p.reason).to.equal(`unsupported on ${process.platform} (kqueue exists only on macOS and the BSDs)`);
  });

  it(bsd ? 'is chosen by the loader' : 'is reported unsupported by the loader, with the reason', () => {
    const { attempt } = tryBackend('kqueue');
    if (bsd) {
      expect(attempt.status).to.equal('loaded');
      return;
    }
    expect(attempt.status).to.equal('unsupported');
    expect(attempt.reason).to.match(/^unsupported on linux/);
    expect(() => loadBackend('kqueue')).to.throw(/kqueue: unsupported: unsupported on linux/);
  });
});
