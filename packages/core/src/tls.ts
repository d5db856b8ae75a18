// TLS options as the engine takes them: PEM text, the client's default CAs, one native
// context per listener and one per distinct set of client options.
import { createHash } from 'node:crypto';
import { rootCertificates } from 'node:tls';

import { reactorError } from './errors';
import type { NativeEngine, NativeTlsInfo, NativeTlsOptions, TlsInfo, TlsOptions } from './types';

const DEFAULT_HANDSHAKE_TIMEOUT = 10_000;
const MAX_TIMER_MS = 2 ** 31 - 1;

function pem(v: string | Buffer | undefined): string {
  return v === undefined ? '' : Buffer.isBuffer(v) ? v.toString('latin1') : v;
}

function pems(v: TlsOptions['ca']): string {
  if (v === undefined) return '';
  return (Array.isArray(v) ? v : [v as string | Buffer]).map(pem).join('\n');
}

/** Checks and resolves `o` for the engine; throws ERR_INVALID_ARG_VALUE naming the option. */
export function nativeTlsOptions(o: TlsOptions, server: boolean): NativeTlsOptions {
  const bad = (what: string): never => {
    throw reactorError(`tls.${what}`, 'ERR_INVALID_ARG_VALUE');
  };
  if (server && (o.cert === undefined || o.key === undefined)) bad('cert and tls.key are required to listen with TLS');
  if (server && (o.servername !== undefined || o.session !== undefined)) bad('servername and tls.session are client options');
  if (!server && (o.requestCert !== undefined || o.SNI !== undefined)) bad('requestCert and tls.SNI are server options');
  const timeout = o.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT;
  if (!Number.isInteger(timeout) || timeout < 1 || timeout > MAX_TIMER_MS) bad(`handshakeTimeout must be 1..${MAX_TIMER_MS} ms, got ${timeout}`);
  const alpn = [...(o.ALPNProtocols ?? [])];
  for (const p of alpn) if (typeof p !== 'string' || p.length === 0 || Buffer.byteLength(p) > 255) bad(`ALPNProtocols: '${String(p)}' is not 1 to 255 bytes`);
  return {
    server,
    cert: pem(o.cert),
    key: pem(o.key),
    // A client verifies the server against Node's own root store unless told otherwise.
    ca: o.ca !== undefined ? pems(o.ca) : server ? '' : rootCertificates.join('\n'),
    requestCert: o.requestCert ?? false,
    rejectUnauthorized: o.rejectUnauthorized ?? true,
    alpn,
    sni: Object.entries(o.SNI ?? {}).map(([servername, c]) => ({ servername, cert: pem(c.cert), key: pem(c.key) })),
    handshakeTimeout: timeout,
  };
}

/** Creates a native context, turning OpenSSL's complaint into ERR_LOGCASTER_TLS. */
export function createContext(engine: NativeEngine, options: NativeTlsOptions): number {
  try {
    return engine.createTlsContext(options);
  } catch (e) {
    throw reactorError((e as Error).message, 'ERR_LOGCASTER_TLS');
  }
}

/** Client contexts, one per distinct set of options, for the reactor's lifetime:
 *  building one (loading a CA store) costs far more than a connection. */
export class ClientContexts {
  private readonly byKey = new Map<string, number>();
  private readonly byObject = new WeakMap<TlsOptions, number>();

  get(engine: NativeEngine, o: TlsOptions): number {
    const known = this.byObject.get(o);
    if (known !== undefined) return known;
    const n = nativeTlsOptions(o, false);
    const key = createHash('sha256')
      .update(JSON.stringify([n.cert, n.key, n.ca, n.rejectUnauthorized, n.alpn, n.handshakeTimeout]))
      .digest('hex');
    let id = this.byKey.get(key);
    if (id === undefined) {
      id = createContext(engine, n);
      this.byKey.set(key, id);
    }
    this.byObject.set(o, id);
    return id;
  }
}

export function tlsInfo(n: NativeTlsInfo): TlsInfo {
  const opt = (s: string): string | undefined => (s === '' ? undefined : s);
  return {
    protocol: n.protocol,
    cipher: n.cipher,
    alpnProtocol: opt(n.alpnProtocol),
    servername: opt(n.servername),
    peerSubject: opt(n.peerSubject),
    peerIssuer: opt(n.peerIssuer),
    peerFingerprint256: opt(n.peerFingerprint256),
    authorized: n.authorized,
    authorizationError: opt(n.authorizationError),
    resumed: n.resumed,
  };
}
