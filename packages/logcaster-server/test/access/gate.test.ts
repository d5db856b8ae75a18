// The access pieces on their own: tokens, allow lists, the per-address key, and the AUTH
// gate in front of a small handler on a real reactor over real sockets.
import { expect } from 'chai';
import { chmodSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

import { createReactor, type Connection, type Handler, type Reactor } from '@logcaster/core';
import { connectTo, delay, rmDir, tmpDir, waitFor } from '@logcaster/testkit';

import { admitOnly, AllowList, AllowListError } from '../../src/access/allow';
import { addressKey, AuthGate, requireAuth, type AuthGateOptions } from '../../src/access/auth-gate';
import { isLoopbackHost } from '../../src/access/config';
import { readTokenFile, TokenError, TokenSet } from '../../src/access/tokens';

describe('access: tokens', () => {
  let dir: string;
  before(() => (dir = tmpDir('tokens')));
  after(() => rmDir(dir));

  it('matches only the configured tokens, whatever their length', () => {
    const set = TokenSet.of(['0123456789abcdef0123', 'second-token-xyz']);
    expect(set.matches('0123456789abcdef0123')).to.equal(true);
    expect(set.matches('second-token-xyz')).to.equal(true);
    expect(set.matches('0123456789abcdef012')).to.equal(false);
    expect(set.matches('0123456789abcdef01234')).to.equal(false);
    expect(set.matches('')).to.equal(false);
  });

  it('refuses empty tokens and tokens with spaces or control characters', () => {
    expect(() => TokenSet.of([''])).to.throw(TokenError, /empty/);
    expect(() => TokenSet.of(['a b'])).to.throw(TokenError, /spaces/);
    expect(() => TokenSet.of(['a\u0001b'])).to.throw(TokenError, /control/);
  });

  it('reads one token per line, skipping comments, and warns about a file others can read', () => {
    const file = path.join(dir, 'tokens');
    writeFileSync(file, '# query tokens\n\nfirst-token-0123456\r\n  second-token-abcdef  \n');
    chmodSync(file, 0o600);
    expect(readTokenFile(file)).to.deep.equal({ tokens: ['first-token-0123456', 'second-token-abcdef'], warnings: [] });
    chmodSync(file, 0o644);
    expect(readTokenFile(file).warnings.join()).to.match(/readable by other users \(mode 644\)/);
  });

  it('names the file and line of a bad token, and a file without tokens', () => {
    const bad = path.join(dir, 'bad');
    writeFileSync(bad, 'good-token\nbad token\n');
    expect(() => readTokenFile(bad)).to.throw(TokenError, /bad:2: a token must not contain spaces/);
    const empty = path.join(dir, 'empty');
    writeFileSync(empty, '# nothing\n\n');
    expect(() => readTokenFile(empty)).to.throw(TokenError, /holds no token/);
    expect(() => readTokenFile(path.join(dir, 'missing'))).to.throw(TokenError, /cannot read token file .*ENOENT/);
  });
});

describe('access: allow lists and addresses', () => {
  it('matches CIDRs and single addresses, IPv4-mapped peers included', () => {
    const a = AllowList.parse('10.0.0.0/8, 192.168.1.7,fd00::/8');
    expect(a.allows('10.200.3.4')).to.equal(true);
    expect(a.allows('::ffff:10.1.1.1')).to.equal(true);
    expect(a.allows('192.168.1.7')).to.equal(true);
    expect(a.allows('192.168.1.8')).to.equal(false);
    expect(a.allows('fd12::1')).to.equal(true);
    expect(a.allows('fe80::1')).to.equal(false);
    expect(a.allows('127.0.0.1')).to.equal(false);
    expect(a.allows(undefined)).to.equal(false);
  });

  it('keeps the wrapped handler\'s half-open choice', () => {
    const list = AllowList.parse('10.0.0.0/8');
    expect(admitOnly(list, { allowHalfOpen: true }, () => {}).allowHalfOpen).to.equal(true);
    expect(admitOnly(list, {}, () => {}).allowHalfOpen).to.equal(undefined);
  });

  it('refuses what is not a CIDR', () => {
    expect(() => AllowList.parse('10.0.0.0/33')).to.throw(AllowListError, /prefix length must be 0-32/);
    expect(() => AllowList.parse('fd00::/129')).to.throw(AllowListError, /0-128/);
    expect(() => AllowList.parse('example.com')).to.throw(AllowListError, /not an IP address/);
    expect(() => AllowList.parse('10.0.0.1,,10.0.0.2')).to.throw(AllowListError, /empty entry/);
    expect(() => AllowList.parse('10.0.0.0/x')).to.throw(AllowListError, /prefix/);
  });

  it('counts failures per IPv4 address and per IPv6 /64', () => {
    expect(addressKey('10.1.2.3')).to.equal('10.1.2.3');
    expect(addressKey('::ffff:10.1.2.3')).to.equal('10.1.2.3');
    expect(addressKey('2001:db8:1:2:aaaa::1')).to.equal('2001:db8:1:2::/64');
    expect(addressKey('2001:db8:1:2:bbbb:cccc:dddd:eeee')).to.equal('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).to.equal('2001:db8:0:0::/64');
    expect(addressKey('fe80::1%eth0')).to.equal('fe80:0:0:0::/64');
    expect(addressKey('::1')).to.equal('0:0:0:0::/64');
  });

  it('knows which listen addresses are loopback', () => {
    for (const h of ['127.0.0.1', '127.9.9.9', '::1', '0:0:0:0:0:0:0:1', 'localhost', '::ffff:127.0.0.1']) expect(isLoopbackHost(h), h).to.equal(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.168.0.1', 'fe80::1']) expect(isLoopbackHost(h), h).to.equal(false);
  });
});

/** An inner handler that records what reaches it and answers "seen <line>" per line.
 *  It does not keep connections half-open: after its onEnd our side ends. */
class Recorder implements Handler {
  data = '';
  ended = 0;
  opened = 0;
  closed = 0;
  onOpen(): void {
    this.opened++;
  }
  onData(conn: Connection, data: Buffer): void {
    const before = this.data.length;
    this.data += data.toString();
    const lines = this.data.slice(this.data.lastIndexOf('\n', before - 1) + 1).split('\n').slice(0, -1);
    for (const line of lines) conn.write(`seen ${line}\n`);
  }
  onEnd(): void {
    this.ended++;
  }
  onClose(): void {
    this.closed++;
  }
}

/** Connects, sends `parts` (one write each, `gapMs` apart), half-closes unless told not to,
 *  and returns everything received until the server closes, with the time of each chunk. */
async function talk(port: number, parts: string[], opts: { gapMs?: number; halfClose?: boolean } = {}): Promise<{ text: string; closedAt: number; firstAt: number }> {
  const s = await connectTo(port);
  let text = '';
  let firstAt = 0;
  s.on('data', (d: Buffer) => {
    if (!firstAt) firstAt = Date.now();
    text += d.toString();
  });
  s.on('error', () => {});
  const closed = new Promise<number>((r) => s.once('close', () => r(Date.now())));
  for (const p of parts) {
    s.write(p);
    if (opts.gapMs) await delay(opts.gapMs);
  }
  if (opts.halfClose !== false) s.end();
  const closedAt = await closed;
  return { text, closedAt, firstAt };
}

describe('access: the AUTH gate in front of a handler', function () {
  this.timeout(30000);
  const TOKEN = 'gate-test-token-0123456789';
  let reactor: Reactor;
  let inner: Recorder;
  let gate: AuthGate;
  let port: number;
  let failures: [string, number][];

  const start = (opts: Partial<AuthGateOptions>): void => {
    failures = [];
    gate = new AuthGate({ tokens: TokenSet.of([TOKEN]), authLoopback: true, insecure: false, onFailure: (a, n) => failures.push([a, n]), ...opts });
    inner = new Recorder();
    port = reactor.listen({ host: '127.0.0.1', port: 0 }, requireAuth(inner, gate)).port;
  };

  beforeEach(() => {
    reactor = createReactor({ backend: 'auto' });
  });
  afterEach(async () => {
    await reactor.close();
  });

  it('closes a client whose first line is not AUTH; the handler sees none of its bytes', async () => {
    start({});
    const r = await talk(port, ['COUNT\nRECENT 5\n'], { halfClose: false });
    expect(r.text).to.equal('ERROR: authentication required\n');
    expect(inner.data).to.equal('');
    expect(gate.counters.refused).to.equal(1);
    expect(inner.opened).to.equal(1);
    await waitFor(() => inner.closed === 1, 5000, 'the handler to see the close');
  });

  it('accepts AUTH split over many packets, and passes on pipelined commands unchanged', async () => {
    start({});
    const r = await talk(port, ['AU', 'TH ', TOKEN.slice(0, 5), `${TOKEN.slice(5)}\r\nfirst\nsec`, 'ond\n'], { gapMs: 20 });
    expect(r.text).to.equal('AUTH: OK\nseen first\nseen second\n');
    expect(inner.data).to.equal('first\nsecond\n');
    expect(inner.ended).to.equal(1);
    expect(gate.counters.successes).to.equal(1);
  });

  it('treats an unterminated last line before FIN as the AUTH line', async () => {
    start({});
    const r = await talk(port, [`auth ${TOKEN}`]);
    expect(r.text).to.equal('AUTH: OK\n');
    expect(inner.ended).to.equal(1);
  });

  it('answers a wrong token "authentication failed", closes, counts and reports it', async () => {
    start({});
    const r = await talk(port, ['AUTH not-the-token\nfirst\n'], { halfClose: false });
    expect(r.text).to.equal('ERROR: authentication failed\n');
    expect(inner.data).to.equal('');
    expect(gate.counters.failures).to.equal(1);
    expect(failures).to.deep.equal([['127.0.0.1', 1]]);
  });

  it('refuses a first line longer than an AUTH line can be', async () => {
    start({});
    const r = await talk(port, ['AUTH ' + 'x'.repeat(5000)], { halfClose: false });
    expect(r.text).to.equal('ERROR: authentication required\n');
  });

  it('closes a client that sends no complete first line in time', async () => {
    start({ firstLineTimeoutMs: 150 });
    const r = await talk(port, ['AUTH ' + TOKEN.slice(0, 4)], { halfClose: false });
    expect(r.text).to.equal('ERROR: authentication required (no AUTH line received in time)\n');
  });

  it('slows down further attempts from an address that failed, across concurrent connections', async () => {
    // Lower bounds only: the penalty says "not before"; a busy machine can only add delay.
    start({ penaltyBaseMs: 100, penaltyMaxMs: 10_000 });
    // Every bound is "not before", from t0 taken before the first attempt: each answer is
    // scheduled after the previous one plus the penalty, so a busy machine only adds delay.
    const t0 = Date.now();
    const first = await talk(port, ['AUTH wrong-1\n'], { halfClose: false });
    expect(first.text).to.equal('ERROR: authentication failed\n');
    // Three at once: answered no sooner than 100, 100+200 and 100+200+400 ms after the first.
    const results = await Promise.all([2, 3, 4].map((i) => talk(port, [`AUTH wrong-${i}\n`], { halfClose: false })));
    const answered = results.map((r) => r.firstAt - t0).sort((a, b) => a - b);
    expect(results.every((r) => r.text === 'ERROR: authentication failed\n')).to.equal(true);
    expect(answered[0]).to.be.at.least(95);
    expect(answered[1]).to.be.at.least(295);
    expect(answered[2]).to.be.at.least(695);
    expect(gate.failuresOf('127.0.0.1')).to.equal(4);
    expect(failures.map((f) => f[1])).to.deep.equal([1, 2, 3, 4]);
    // The right token from that address is held back too (800 ms after the fourth), then clears the record.
    const ok = await talk(port, [`AUTH ${TOKEN}\nhello\n`]);
    expect(ok.text).to.equal('AUTH: OK\nseen hello\n');
    expect(ok.firstAt - t0).to.be.at.least(1495);
    expect(gate.failuresOf('127.0.0.1')).to.equal(0);
  });

  it('lets a client that needs no AUTH through untouched, and still checks an AUTH it sends', async () => {
    start({ authLoopback: false });
    const plain = await talk(port, ['A', 'UTHOR\nnext\n'], { gapMs: 20 });
    expect(plain.text).to.equal('seen AUTHOR\nseen next\n');
    expect(inner.data).to.equal('AUTHOR\nnext\n');
    const good = await talk(port, [`AUTH ${TOKEN}\nx\n`]);
    expect(good.text).to.equal('AUTH: OK\nseen x\n');
    const bad = await talk(port, ['AUTH nope\nx\n']);
    expect(bad.text).to.equal('ERROR: authentication failed\n');
  });

  it('tells a client that sends AUTH to a server without tokens, and goes on', async () => {
    start({ tokens: undefined, authLoopback: false, insecure: false });
    const r = await talk(port, ['AUTH something\nx\n']);
    expect(r.text).to.equal('ERROR: no query token is configured on this server\nseen x\n');
  });
});
