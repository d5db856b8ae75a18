// Who may connect to which port, from the server's options: the allow lists and the
// query port's AUTH gate. Refuses a configuration that would open the query port to the
// network without a credential.
import { BlockList, isIP } from 'node:net';

import type { Connection } from '@logcaster/core';

import { AllowList } from './allow';
import { AuthGate } from './auth-gate';
import { QUERY_TOKEN_ENV, readTokenFile, tokenWarnings, TokenSet } from './tokens';

export interface AccessOptions {
  /** Address of the query port. */
  queryHost: string;
  /** Tokens a query client may AUTH with. */
  queryTokens?: readonly string[];
  /** A file of more tokens (see readTokenFile). */
  queryTokenFile?: string;
  /** Let non-loopback clients query without AUTH when no token is configured. */
  queryInsecure?: boolean;
  /** Require AUTH from loopback clients too. */
  queryAuthLoopback?: boolean;
  /** Networks the ingest port accepts connections from (CIDRs or addresses). */
  allow?: readonly string[];
  /** Networks the query port accepts connections from. */
  queryAllow?: readonly string[];
  /** Mutual TLS on the query port: whether a connection's client certificate
   *  authenticates it. Counts as a credential, like a token. */
  certificate?: (conn: Connection) => boolean;
}

export interface Access {
  gate: AuthGate;
  /** The query tokens (the HTTP port accepts them for reading too). */
  queryTokens: TokenSet | undefined;
  ingestAllow: AllowList | undefined;
  queryAllow: AllowList | undefined;
  /** Settings that work but weaken access control. */
  warnings: string[];
}

export class AccessConfigError extends Error {}

/** What the server reports as 'access' events. */
export type AccessEvent =
  | { kind: 'auth-failed'; address: string; failures: number }
  | { kind: 'refused'; port: 'ingest' | 'query'; address: string | undefined };

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** Whether a listen address only accepts connections from this machine. */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  const family = isIP(host);
  return family !== 0 && LOOPBACK.check(host, family === 4 ? 'ipv4' : 'ipv6');
}

export function resolveAccess(o: AccessOptions, onFailure: (address: string, failures: number) => void): Access {
  const warnings: string[] = [];
  const given = [...(o.queryTokens ?? [])];
  if (o.queryTokenFile !== undefined) {
    const file = readTokenFile(o.queryTokenFile);
    given.push(...file.tokens);
    warnings.push(...file.warnings);
  }
  const tokens = given.length > 0 ? TokenSet.of(given) : undefined;
  warnings.push(...tokenWarnings(given));
  const credential = tokens !== undefined || o.certificate !== undefined;
  if (!credential && !o.queryInsecure && !isLoopbackHost(o.queryHost)) {
    throw new AccessConfigError(
      `the query port would listen on ${o.queryHost}, reachable from other machines, with no query token: ` +
        `configure one (--query-token-file <file> or ${QUERY_TOKEN_ENV}; embedded: queryTokens) or client certificates ` +
        '(--query-tls with --tls-ca), or pass --query-insecure (queryInsecure) to let anyone who can connect read every log line',
    );
  }
  if (!credential && o.queryAuthLoopback) throw new AccessConfigError('--query-auth-loopback (queryAuthLoopback) needs a query token or client certificates (--query-tls with --tls-ca)');
  if (!credential && o.queryInsecure && !isLoopbackHost(o.queryHost)) {
    warnings.push(`--query-insecure: the query port on ${o.queryHost} serves anyone who can connect, without a token`);
  }
  const list = (cidrs: readonly string[] | undefined): AllowList | undefined => {
    if (cidrs === undefined || cidrs.length === 0) return undefined;
    if (!Array.isArray(cidrs)) throw new AccessConfigError('allow lists are arrays of addresses or CIDRs');
    return AllowList.parse(cidrs.join(','));
  };
  return {
    warnings,
    queryTokens: tokens,
    gate: new AuthGate({ tokens, authLoopback: o.queryAuthLoopback ?? false, insecure: o.queryInsecure ?? false, onFailure, certificate: o.certificate }),
    ingestAllow: list(o.allow),
    queryAllow: list(o.queryAllow),
  };
}

/** The CLI's token sources besides its options: adds $LOGCASTER_QUERY_TOKEN to `o`, and
 *  returns the warning a token given on the command line deserves. */
export function cliTokenSources(o: { queryTokens?: string[] }, env: NodeJS.ProcessEnv): string[] {
  const warnings = o.queryTokens?.length ? [`--query-token: a token on the command line is visible to every user of this machine (ps); use --query-token-file or ${QUERY_TOKEN_ENV}`] : [];
  const fromEnv = env[QUERY_TOKEN_ENV];
  if (fromEnv !== undefined && fromEnv !== '') {
    if (!TokenSet.isValid(fromEnv)) throw new AccessConfigError(`${QUERY_TOKEN_ENV}: a token must not contain spaces or control characters`);
    o.queryTokens = [...(o.queryTokens ?? []), fromEnv];
  }
  return warnings;
}
