// TLS uses the OpenSSL of the running Node: every loaded backend addon must leave the
// OpenSSL symbols undefined (resolved from the node binary at load time) and neither
// contain nor link a library of its own.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';

import { BACKEND_NAMES, packageName, tryBackend, type BackendName } from '@logcaster/core';

/** The addon builds of a backend package: build/Release (a source build) and prebuilds/
 *  (what npm ships), whichever exist now (the packaging test rebuilds them). */
function addonFiles(name: BackendName): string[] {
  const dir = path.dirname(require.resolve(`${packageName(name)}/package.json`));
  const out: string[] = [];
  const release = path.join(dir, 'build', 'Release');
  if (existsSync(release)) out.push(...readdirSync(release).filter((f) => f.endsWith('.node')).map((f) => path.join(release, f)));
  const prebuilds = path.join(dir, 'prebuilds');
  if (existsSync(prebuilds)) {
    for (const platform of readdirSync(prebuilds)) {
      const d = path.join(prebuilds, platform);
      out.push(...readdirSync(d).filter((f) => f.endsWith('.node')).map((f) => path.join(d, f)));
    }
  }
  return out;
}

function tool(cmd: string, args: string[]): string | undefined {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  } catch {
    return undefined;
  }
}

describe('TLS: the backends use the OpenSSL Node is linked with', () => {
  let nodeExports: string | undefined;
  for (const name of BACKEND_NAMES) {
    const { module } = tryBackend(name);
    const nmWorks = tool('nm', ['--version']) !== undefined;
    if (!module || !nmWorks) {
      it(`${name}: skipped — ${!module ? 'backend not loadable here' : 'nm (binutils) is not installed'}`, function () {
        this.skip();
      });
      continue;
    }
    it(`${name}: OpenSSL symbols undefined in the addon, no libssl/libcrypto needed`, () => {
      const files = addonFiles(name);
      expect(files, 'a built addon').not.to.deep.equal([]);
      for (const file of files) checkAddon(file);
    });
  }

  function checkAddon(file: string): void {
    const undefinedSyms = tool('nm', ['-D', '--undefined-only', file])!;
    const defined = tool('nm', ['-D', '--defined-only', file])!;
    for (const sym of ['SSL_new', 'SSL_CTX_new', 'SSL_read_ex', 'BIO_meth_new']) expect(undefinedSyms, `${file}: ${sym}`).to.match(new RegExp(`\\b${sym}\\b`));
    expect(defined.split('\n').filter((l) => /\b(SSL|EVP|X509|BIO|OPENSSL)_\w+$/.test(l))).to.deep.equal([]);
    const needed = tool('readelf', ['-d', file]) ?? '';
    expect(needed).not.to.match(/libssl|libcrypto/);
    // And the node binary does export them (how this Node build makes it work).
    nodeExports ??= tool('nm', ['-D', '--defined-only', process.execPath]) ?? '';
    expect(nodeExports).to.match(/ T SSL_new\b/);
  }
});
