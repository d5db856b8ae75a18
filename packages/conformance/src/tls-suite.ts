// The conformance suite over TLS: the behaviours of suite.ts that TLS changes or could
// break — data both ways, ordering, half-close (close_notify), closes and resets,
// backpressure, pause/resume, idle timeouts, outbound connections, many connections —
// and what only TLS has: certificate checks both ways, ALPN, SNI, session resumption,
// handshake failures and timeouts, no renegotiation. Peers are node:tls. Cases of
// suite.ts that do not touch the TLS layer (descriptor exhaustion, workers, run(),
// process exit, IPv6, 10k connect/close memory) are not repeated here.
import { expect } from 'chai';
import { connect as netConnect } from 'node:net';
import { createServer, type TLSSocket } from 'node:tls';

import { createReactorWith } from '@logcaster/core';
import type { BackendModule, Connection, Handler, Reactor, ReactorOptions, TlsInfo } from '@logcaster/core';
import { delay, pattern, testPki, tlsPeer, waitFor, type TestPki } from '@logcaster/testkit';

type TestReactor = Reactor & { readonly connectionCount: number };

const echo: Handler = {
  onData(conn, data) {
    conn.write(data);
  },
};

export function runTlsConformance(label: string, load: () => BackendModule, options: ReactorOptions = {}): void {
  describe(`conformance over TLS: ${label}`, function () {
    this.timeout(60000);
    let pki: TestPki;
    let reactor: TestReactor;
    const make = (extra: ReactorOptions = {}): TestReactor => createReactorWith(load(), { ...options, ...extra });
    const serverTls = (): { cert: string; key: string } => ({ cert: pki.server.cert, key: pki.server.key });
    const trust = (): { ca: string } => ({ ca: pki.ca });

    before(() => (pki = testPki()));
    beforeEach(() => {
      reactor = make();
    });
    afterEach(async () => {
      await reactor.close();
    });

    it('echoes 1 MB in both directions; the handler sees plaintext and the TLS details', async () => {
      let info: TlsInfo | undefined;
      const l = reactor.listen({ port: 0, tls: serverTls() }, {
        onOpen(conn) {
          info = conn.tls;
        },
        onData: echo.onData,
      });
      const p = await tlsPeer(l.port, trust());
      const payload = pattern(1 << 20);
      p.socket.end(payload);
      await p.ended;
      expect(p.received().equals(payload)).to.equal(true);
      expect(info).to.include({ protocol: 'TLSv1.3', servername: 'localhost', authorized: false, resumed: false, peerSubject: undefined });
      expect(info!.cipher).to.match(/^TLS_/);
      const s = reactor.stats();
      expect(s.tlsHandshakes).to.equal(1);
      expect(s.bytesRead).to.be.greaterThan(payload.length); // ciphertext: records cost bytes
    });

    it('delivers many small writes in order, both directions (TLS 1.2 too)', async () => {
      for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
        const count = 5000;
        let serverGot = '';
        const l = reactor.listen({ port: 0, tls: serverTls() }, {
          onOpen(conn) {
            for (let i = 0; i < count; i++) conn.write(`${i}\n`);
          },
          onData(_c, d) {
            serverGot += d.toString('latin1');
          },
        });
        const p = await tlsPeer(l.port, { ...trust(), maxVersion });
        expect(p.socket.getProtocol()).to.equal(maxVersion);
        for (let i = 0; i < count; i++) p.socket.write(`${i},`);
        const expected = Array.from({ length: count }, (_, i) => `${i}\n`).join('');
        await waitFor(() => p.bytes() >= expected.length, 20000, 'server writes');
        expect(p.text()).to.equal(expected);
        const sent = Array.from({ length: count }, (_, i) => `${i},`).join('');
        await waitFor(() => serverGot.length >= sent.length, 20000, 'client writes');
        expect(serverGot).to.equal(sent);
        p.socket.destroy();
        l.close();
      }
    });

    it('reports the peer\'s close_notify with onEnd; our end() sends ours, then the FIN', async () => {
      const order: string[] = [];
      const l = reactor.listen({ port: 0, tls: serverTls() }, {
        allowHalfOpen: true,
        onData(_c, d) {
          order.push(`data:${d.toString()}`);
        },
        onEnd(conn) {
          order.push('end');
          conn.write('bye'); // half-open: still writable after the peer's close_notify
          conn.end();
        },
        onClose(_c, err) {
          order.push(`close:${err ? err.message : 'clean'}`);
        },
      });
      const p = await tlsPeer(l.port, { ...trust(), allowHalfOpen: true });
      p.socket.end('hi');
      await p.ended; // node:tls reports 'end' for our close_notify
      expect(p.text()).to.equal('bye');
      await waitFor(() => order.includes('close:clean'), 5000, 'onClose');
      expect(order).to.deep.equal(['data:hi', 'end', 'close:clean']);
    });

    it('ends our side after onEnd unless half-open is allowed, and delivers a late end() from a timer', async () => {
      let closed = 0;
      const auto = reactor.listen({ port: 0, tls: serverTls() }, { onClose: () => void closed++ });
      const p = await tlsPeer(auto.port, { ...trust(), allowHalfOpen: true });
      p.socket.end('x');
      await p.ended;
      await waitFor(() => closed === 1, 5000, 'onClose');
      const late = reactor.listen({ port: 0, tls: serverTls() }, {
        allowHalfOpen: true,
        onEnd(conn) {
          setTimeout(() => conn.end('late bye'), 20);
        },
        onClose: () => void closed++,
      });
      const q = await tlsPeer(late.port, { ...trust(), allowHalfOpen: true });
      q.socket.end('hi');
      await q.ended;
      expect(q.text()).to.equal('late bye');
      await waitFor(() => closed === 2, 5000, 'onClose after a late end()');
    });

    it('closes from our side: the peer sees a clean end, onClose fires once', async () => {
      let closes = 0;
      const l = reactor.listen({ port: 0, tls: serverTls() }, {
        onOpen(conn) {
          conn.end('goodbye');
        },
        onClose: () => void closes++,
      });
      const p = await tlsPeer(l.port, trust());
      let error: Error | undefined;
      p.socket.on('error', (e) => (error = e));
      await p.ended;
      expect(p.text()).to.equal('goodbye');
      await p.closed;
      await waitFor(() => closes === 1, 5000, 'onClose');
      expect(error).to.equal(undefined);
    });

    it('a peer reset gives onClose once, with an error', async () => {
      const errors: (Error | undefined)[] = [];
      const l = reactor.listen({ port: 0, tls: serverTls() }, { onClose: (_c, e) => void errors.push(e) });
      // A TLS socket cannot reset itself: reset the TCP socket it runs over.
      const raw = netConnect(l.port, '127.0.0.1');
      await new Promise((r) => raw.once('connect', r));
      const p = await tlsPeer(l.port, { ...trust(), socket: raw });
      p.socket.write('some data');
      await delay(50);
      raw.resetAndDestroy();
      await waitFor(() => errors.length === 1, 5000, 'onClose');
      await delay(50);
      expect(errors.length).to.equal(1);
      expect((errors[0] as NodeJS.ErrnoException | undefined)?.code).to.equal('ECONNRESET');
    });

    it('applies backpressure on the encrypted queue: write() false, onDrain once the peer reads', async () => {
      let drained = 0;
      let sawFalse = false;
      let written = 0;
      const chunk = Buffer.alloc(16 * 1024, 120);
      const l = reactor.listen({ port: 0, tls: serverTls() }, {
        onOpen(conn) {
          while (conn.write(chunk)) written += chunk.length;
          written += chunk.length;
          sawFalse = true;
          expect(conn.bufferedAmount).to.be.at.least(64 * 1024);
        },
        onDrain: () => void drained++,
      });
      const p = await tlsPeer(l.port, trust());
      p.socket.pause();
      await waitFor(() => sawFalse, 5000, 'write() to return false');
      await delay(100);
      expect(drained).to.equal(0);
      p.socket.resume();
      await waitFor(() => drained === 1 && p.bytes() === written, 10000, () => `drain (${drained}) and ${written} bytes (${p.bytes()})`);
      p.socket.destroy();
    });

    it('pauses and resumes reading, losing nothing that was already decrypted or received', async () => {
      const total = 600 * 1024;
      let got = 0;
      let paused: Connection | undefined;
      const l = reactor.listen({ port: 0, tls: serverTls() }, {
        onData(conn, d) {
          got += d.length;
          if (!paused && got > 100 * 1024) {
            paused = conn;
            conn.pause();
          }
        },
      });
      const p = await tlsPeer(l.port, trust());
      p.socket.write(pattern(total));
      await waitFor(() => paused !== undefined, 5000, 'pause');
      const atPause = got;
      await delay(200);
      expect(got, 'no data while paused').to.equal(atPause);
      paused!.resume();
      await waitFor(() => got === total, 10000, () => `all ${total} bytes (${got})`);
      p.socket.destroy();
    });

    it('fires the idle timeout on a TLS connection', async () => {
      let timeouts = 0;
      const l = reactor.listen({ port: 0, tls: serverTls() }, {
        onOpen(conn) {
          conn.setIdleTimeout(150);
        },
        onTimeout(conn) {
          timeouts++;
          conn.destroy();
        },
      });
      const p = await tlsPeer(l.port, trust());
      await p.closed;
      expect(timeouts).to.equal(1);
    });

    it('connects outbound to a node:tls server, verifies it, writes before the handshake is done', async () => {
      const server = createServer({ ...serverTls(), ALPNProtocols: ['logcaster'] }, (s) => {
        s.on('data', (d) => s.write(d));
        s.on('end', () => s.end());
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      const port = (server.address() as { port: number }).port;
      try {
        let got = '';
        let info: TlsInfo | undefined;
        let closeErr: Error | undefined = new Error('not closed');
        const conn = reactor.connect({ host: 'localhost', port, tls: { ...trust(), ALPNProtocols: ['logcaster'] } }, {
          onOpen(c) {
            info = c.tls;
          },
          onData(c, d) {
            got += d.toString();
            if (got === 'early late') c.end();
          },
          onClose(_c, e) {
            closeErr = e;
          },
        });
        conn.write('early'); // before the handshake: held as plaintext, sent after it
        setTimeout(() => !conn.closed && conn.write(' late'), 30);
        await waitFor(() => closeErr === undefined, 10000, 'clean close');
        expect(got).to.equal('early late');
        expect(info).to.include({ authorized: true, peerSubject: 'CN=localhost', alpnProtocol: 'logcaster', servername: 'localhost' });
        expect(info!.peerFingerprint256).to.match(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
      } finally {
        server.close();
      }
    });

    it('refuses a server whose certificate does not verify or does not name it, with a clear error', async () => {
      const server = createServer(serverTls(), (s) => s.end());
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      const port = (server.address() as { port: number }).port;
      try {
        const attempt = (host: string, tls: object): Promise<{ opened: boolean; err: Error | undefined }> =>
          new Promise((resolve) => {
            let opened = false;
            reactor.connect({ host, port, tls }, {
              onOpen: () => void (opened = true),
              onClose: (_c, err) => resolve({ opened, err }),
            });
          });
        const untrusted = await attempt('localhost', { ca: pki.rogueClient.cert });
        expect(untrusted.opened).to.equal(false);
        expect(untrusted.err).to.include({ code: 'ERR_LOGCASTER_TLS' });
        expect(untrusted.err!.message).to.match(/certificate verify failed/);
        const wrongName = await attempt('127.0.0.1', { ...trust(), servername: 'not-localhost.test' });
        expect(wrongName.opened).to.equal(false);
        expect(wrongName.err!.message).to.match(/certificate verify failed.*hostname mismatch/);
        // The certificate names IP 127.0.0.1; unchecked, anything goes.
        for (const ok of [await attempt('127.0.0.1', trust()), await attempt('localhost', { rejectUnauthorized: false })]) {
          expect(ok.opened).to.equal(true);
          expect(ok.err).to.equal(undefined);
        }
      } finally {
        server.close();
      }
    });

    it('a client that fails the handshake never reaches the handler, and is counted', async () => {
      let opened = 0;
      let closed = 0;
      const l = reactor.listen({ port: 0, tls: serverTls() }, { onOpen: () => void opened++, onClose: () => void closed++ });
      const failed = await tlsPeer(l.port, { ca: pki.rogueClient.cert }).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(failed?.message).to.match(/self.signed|unable to verify|unable to get local issuer/i);
      // Plain text to a TLS port: not a ClientHello.
      const raw = netConnect(l.port, '127.0.0.1');
      raw.on('error', () => {});
      raw.write('GET / HTTP/1.0\r\n\r\n');
      await new Promise((r) => raw.once('close', r));
      await waitFor(() => reactor.stats().tlsHandshakeFailures === 2, 5000, 'two failed handshakes');
      expect(reactor.stats().connections).to.equal(0);
      expect([opened, closed]).to.deep.equal([0, 0]);
    });

    it('closes a connection that does not finish its handshake in time', async () => {
      const l = reactor.listen({ port: 0, tls: { ...serverTls(), handshakeTimeout: 200 } }, {});
      const raw = netConnect(l.port, '127.0.0.1');
      raw.on('error', () => {});
      const t0 = Date.now();
      await new Promise((r) => raw.once('close', r));
      expect(Date.now() - t0).to.be.at.least(150); // a lower bound only: a busy machine adds
      expect(reactor.stats()).to.include({ tlsHandshakeFailures: 1, connections: 0 });
    });

    it('picks the ALPN protocol by server preference and the certificate by SNI', async () => {
      const seen: (TlsInfo | undefined)[] = [];
      const l = reactor.listen({
        port: 0,
        tls: { ...serverTls(), ALPNProtocols: ['logcaster', 'http/1.1'], SNI: { 'other.test': { cert: pki.other.cert, key: pki.other.key }, '*.wild.test': { cert: pki.other.cert, key: pki.other.key } } },
      }, { onOpen: (c) => void seen.push(c.tls) });
      const a = await tlsPeer(l.port, { ...trust(), ALPNProtocols: ['http/1.1', 'logcaster'] });
      expect(a.socket.alpnProtocol).to.equal('logcaster');
      expect(a.socket.getPeerCertificate().subject.CN).to.equal('localhost');
      const b = await tlsPeer(l.port, { ...trust(), servername: 'other.test', ALPNProtocols: ['h2'] });
      expect(b.socket.alpnProtocol).to.equal(false); // no common protocol: no ALPN, no failure
      expect(b.socket.getPeerCertificate().subject.CN).to.equal('other.test');
      const c = await tlsPeer(l.port, { ...trust(), servername: 'a.wild.test' });
      expect(c.socket.getPeerCertificate().subject.CN).to.equal('other.test');
      await waitFor(() => seen.length === 3, 5000, 'three opens');
      expect(seen.map((i) => [i?.servername, i?.alpnProtocol])).to.deep.equal([['localhost', 'logcaster'], ['other.test', undefined], ['a.wild.test', undefined]]);
      for (const p of [a, b, c]) p.socket.destroy();
    });

    it('resumes a session (reactor to reactor), TLS 1.3 tickets and TLS 1.2', async () => {
      const serverSide: boolean[] = [];
      const l = reactor.listen({ port: 0, tls: serverTls() }, {
        onOpen: (c) => void serverSide.push(c.tls!.resumed),
        onData: echo.onData,
      });
      const once = (tls: object): Promise<{ resumed: boolean; session: Buffer | undefined }> =>
        new Promise((resolve) => {
          let resumed = false;
          let session: Buffer | undefined;
          reactor.connect({ host: 'localhost', port: l.port, tls }, {
            onOpen(c) {
              resumed = c.tls!.resumed;
              c.write('x');
            },
            onData(c) {
              session = c.tlsSession(); // TLS 1.3: the ticket came after the handshake
              c.end();
            },
            onClose: () => resolve({ resumed, session }),
          });
        });
      const first = await once(trust());
      expect(first.resumed).to.equal(false);
      expect(first.session).to.be.instanceOf(Buffer);
      const second = await once({ ...trust(), session: first.session });
      expect(second.resumed).to.equal(true);
      expect(serverSide).to.deep.equal([false, true]);
      // TLS 1.2 (a node:tls client: the reactor's client offers 1.3).
      const p1 = await tlsPeer(l.port, { ...trust(), maxVersion: 'TLSv1.2' });
      const session12 = p1.socket.getSession();
      p1.socket.destroy();
      const p2 = await tlsPeer(l.port, { ...trust(), maxVersion: 'TLSv1.2', session: session12 });
      expect(p2.socket.isSessionReused()).to.equal(true);
      p2.socket.destroy();
    });

    it('verifies client certificates against the CA and shows the subject to the handler', async () => {
      const required = reactor.listen({ port: 0, tls: { ...serverTls(), ...trust(), requestCert: true } }, {
        onOpen(conn) {
          conn.end(`hello ${conn.tls!.peerSubject} ${conn.tls!.authorized}`);
        },
      });
      const ok = await tlsPeer(required.port, { ...trust(), cert: pki.client.cert, key: pki.client.key });
      await ok.ended;
      expect(ok.text()).to.equal('hello CN=test-client,O=LogCaster Tests true');
      for (const creds of [{}, { cert: pki.rogueClient.cert, key: pki.rogueClient.key }]) {
        // TLS 1.3: the server's verdict on a client certificate comes after the client's
        // handshake finished: the refusal arrives as an alert, then the close.
        const p = await tlsPeer(required.port, { ...trust(), ...creds }).catch((e: Error) => e);
        if (p instanceof Error) continue;
        const err = await new Promise<Error | undefined>((r) => {
          p.socket.once('error', r);
          p.socket.once('close', () => r(undefined));
        });
        expect(err?.message ?? '').to.match(/alert|certificate/i);
        expect(p.text()).to.equal('');
      }
      expect(reactor.stats().tlsHandshakeFailures).to.equal(2);
      const optional = reactor.listen({ port: 0, tls: { ...serverTls(), ...trust(), requestCert: true, rejectUnauthorized: false } }, {
        onOpen(conn) {
          conn.end(`${conn.tls!.authorized} ${conn.tls!.authorizationError}`);
        },
      });
      const anon = await tlsPeer(optional.port, trust());
      await anon.ended;
      expect(anon.text()).to.equal('false no peer certificate');
      const rogue = await tlsPeer(optional.port, { ...trust(), cert: pki.rogueClient.cert, key: pki.rogueClient.key });
      await rogue.ended;
      expect(rogue.text()).to.match(/^false (unable to get local issuer certificate|unable to verify the first certificate)$/);
    });

    it('refuses renegotiation', async () => {
      const l = reactor.listen({ port: 0, tls: serverTls() }, echo);
      const p = await tlsPeer(l.port, { ...trust(), maxVersion: 'TLSv1.2' });
      const result = await new Promise<Error | null>((resolve) => {
        (p.socket as TLSSocket).renegotiate({}, (err) => resolve(err ?? null));
        p.socket.once('close', () => resolve(new Error('closed')));
      });
      expect(result).to.be.instanceOf(Error);
      p.socket.destroy();
    });

    it('serves 200 concurrent TLS connections', async () => {
      const N = 200;
      const l = reactor.listen({ port: 0, tls: serverTls() }, echo);
      const peers = await Promise.all(Array.from({ length: N }, () => tlsPeer(l.port, trust())));
      peers.forEach((p, i) => p.socket.write(`conn ${i}\n`));
      await waitFor(() => peers.every((p, i) => p.text() === `conn ${i}\n`), 20000, 'every echo');
      expect(reactor.connectionCount).to.equal(N);
      for (const p of peers) p.socket.end();
      await Promise.all(peers.map((p) => p.closed));
      await waitFor(() => reactor.connectionCount === 0, 5000, 'every close');
      expect(reactor.stats().tlsHandshakes).to.equal(N);
    });
  });
}
