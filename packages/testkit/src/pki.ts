// Certificates for TLS tests, made with the `openssl` command line (as an operator
// would), once per process in a scratch directory: a CA, a server certificate for
// localhost / 127.0.0.1 / ::1, a second server certificate for SNI, a client
// certificate, and a client certificate from a CA nobody trusts.
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

import { tmpDir } from './fs';

export interface KeyPair {
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
}

export interface TestPki {
  dir: string;
  /** The CA every certificate below except `rogueClient` is signed by. */
  ca: string;
  caFile: string;
  /** CN=localhost; DNS:localhost, IP:127.0.0.1, IP:::1. */
  server: KeyPair;
  /** CN=other.test; DNS:other.test, DNS:*.wild.test (for SNI). */
  other: KeyPair;
  /** CN=test-client, O=LogCaster Tests (client authentication). */
  client: KeyPair;
  /** CN=rogue-client, from a CA nobody trusts. */
  rogueClient: KeyPair;
}

let made: TestPki | undefined;
let probed: string | undefined | null = null;

function openssl(args: readonly string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** undefined when the openssl command is there; otherwise why not (for a skip title). */
export function opensslUnavailable(): string | undefined {
  if (probed !== null) return probed;
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    probed = undefined;
  } catch (e) {
    probed = `the openssl command is not available (${(e as Error).message.split('\n')[0]})`;
  }
  return probed;
}

/** The test certificates (made on first use, removed when the process exits). */
export function testPki(): TestPki {
  if (made) return made;
  const dir = tmpDir('pki');
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const days = ['-days', '2'];
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const ca = (name: string, cn: string): void =>
    openssl(['req', '-x509', ...ec, '-keyout', `${name}.key`, '-out', `${name}.pem`, ...days, '-subj', `/CN=${cn}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  const leaf = (name: string, subj: string, ext: string, caName: string): KeyPair => {
    openssl(['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subj], dir);
    writeFileSync(path.join(dir, `${name}.ext`), ext);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${caName}.pem`, '-CAkey', `${caName}.key`, '-CAcreateserial', '-out', `${name}.pem`, ...days, '-extfile', `${name}.ext`], dir);
    const certFile = path.join(dir, `${name}.pem`);
    const keyFile = path.join(dir, `${name}.key`);
    return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), certFile, keyFile };
  };
  ca('ca', 'LogCaster Test CA');
  ca('rogue-ca', 'Rogue CA');
  const serverExt = 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=';
  made = {
    dir,
    ca: readFileSync(path.join(dir, 'ca.pem'), 'utf8'),
    caFile: path.join(dir, 'ca.pem'),
    server: leaf('server', '/CN=localhost', `${serverExt}DNS:localhost,IP:127.0.0.1,IP:::1\n`, 'ca'),
    other: leaf('other', '/CN=other.test', `${serverExt}DNS:other.test,DNS:*.wild.test\n`, 'ca'),
    client: leaf('client', '/O=LogCaster Tests/CN=test-client', 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n', 'ca'),
    rogueClient: leaf('rogue-client', '/CN=rogue-client', 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n', 'rogue-ca'),
  };
  return made;
}
