// The server's TLS settings, from files: the certificate and key the TLS ports present,
// and the CA that client certificates are verified against (mutual TLS). Read and checked
// at construction, so a missing file, a key that does not belong to the certificate or a
// file without PEM in it stops the server before it binds anything, naming the option.
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';

import type { TlsInfo, TlsOptions } from '@logcaster/core';

export interface TlsFileOptions {
  /** PEM certificate (and its chain) of the TLS ports. */
  tlsCert?: string;
  /** Its PEM private key. */
  tlsKey?: string;
  /** PEM CA certificate(s) client certificates are verified against. */
  tlsCa?: string;
  /** RFC 5425 ingest port. */
  tlsPort?: number;
  /** TLS on the query port (and the HTTP port). */
  queryTls?: boolean;
  /** Common names of client certificates that may query without AUTH. */
  queryCertCn?: readonly string[];
}

export class TlsConfigError extends Error {}

/** The server's TLS material, as PEM text. */
export interface ServerTls {
  cert: string;
  key: string;
  /** Set: TLS ports ask for a client certificate verified against it. */
  ca: string | undefined;
  /** undefined: every verified client certificate may query; else only these CNs. */
  queryCertCn: ReadonlySet<string> | undefined;
}

function readPem(option: string, file: string, marker: RegExp, what: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'latin1');
  } catch (e) {
    throw new TlsConfigError(`cannot read ${option} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (!marker.test(text)) throw new TlsConfigError(`${option} ${file} holds no PEM ${what}`);
  return text;
}

/** The TLS material the options name, or undefined when no TLS is configured. */
export function readServerTls(o: TlsFileOptions): ServerTls | undefined {
  const wanted = o.tlsPort !== undefined || o.queryTls === true;
  const given = o.tlsCert !== undefined || o.tlsKey !== undefined || o.tlsCa !== undefined;
  if (!wanted) {
    if (given) throw new TlsConfigError('--tls-cert, --tls-key and --tls-ca need a port to use them: --tls-port and/or --query-tls');
    if (o.queryCertCn?.length) throw new TlsConfigError('--query-cert-cn needs --query-tls and --tls-ca');
    return undefined;
  }
  const needs = o.tlsPort !== undefined ? '--tls-port' : '--query-tls';
  if (o.tlsCert === undefined || o.tlsKey === undefined) throw new TlsConfigError(`${needs} needs --tls-cert <file> and --tls-key <file>`);
  if (o.queryCertCn?.length && (o.queryTls !== true || o.tlsCa === undefined)) throw new TlsConfigError('--query-cert-cn needs --query-tls and --tls-ca');
  const cert = readPem('--tls-cert', o.tlsCert, /-----BEGIN CERTIFICATE-----/, 'certificate');
  const key = readPem('--tls-key', o.tlsKey, /-----BEGIN [A-Z ]*PRIVATE KEY-----/, 'private key');
  const ca = o.tlsCa === undefined ? undefined : readPem('--tls-ca', o.tlsCa, /-----BEGIN CERTIFICATE-----/, 'certificate');
  try {
    createSecureContext({ cert, key, ca });
  } catch (e) {
    const msg = (e as Error).message;
    if (/key values mismatch/i.test(msg)) throw new TlsConfigError(`--tls-key ${o.tlsKey} is not the key of --tls-cert ${o.tlsCert}`);
    throw new TlsConfigError(`--tls-cert ${o.tlsCert} / --tls-key ${o.tlsKey}${ca ? ` / --tls-ca ${o.tlsCa}` : ''}: ${msg}`);
  }
  return { cert, key, ca, queryCertCn: o.queryCertCn?.length ? new Set(o.queryCertCn) : undefined };
}

/** The RFC 5425 ingest listener: with a CA, a verified client certificate is required
 *  (the handshake fails without one), as rsyslog's x509/certvalid mode. */
export function ingestTlsOptions(t: ServerTls): TlsOptions {
  return t.ca === undefined ? { cert: t.cert, key: t.key } : { cert: t.cert, key: t.key, ca: t.ca, requestCert: true, rejectUnauthorized: true };
}

/** The query and HTTP listeners: a client certificate is asked for but optional (a
 *  client without one authenticates with a token); the AUTH gate decides. */
export function queryTlsOptions(t: ServerTls): TlsOptions {
  return t.ca === undefined ? { cert: t.cert, key: t.key } : { cert: t.cert, key: t.key, ca: t.ca, requestCert: true, rejectUnauthorized: false };
}

/** Whether a connection's client certificate authenticates it on the query port. */
export function certificateAuthenticates(t: ServerTls, info: TlsInfo | undefined): boolean {
  if (t.ca === undefined || info === undefined || !info.authorized || info.peerSubject === undefined) return false;
  if (t.queryCertCn === undefined) return true;
  const cn = commonName(info.peerSubject);
  return cn !== undefined && t.queryCertCn.has(cn);
}

/** The CN of an RFC 2253 subject ("CN=reader,O=Example"), escapes undone; the most
 *  specific (first) one when there are several. */
export function commonName(subject: string): string | undefined {
  let i = 0;
  while (i < subject.length) {
    let attr = '';
    while (i < subject.length && subject[i] !== '=') attr += subject[i++];
    i++; // '='
    let value = '';
    while (i < subject.length && subject[i] !== ',' && subject[i] !== '+') {
      if (subject[i] === '\\' && i + 1 < subject.length) {
        const hex = /^[0-9a-fA-F]{2}/.exec(subject.slice(i + 1, i + 3));
        value += hex ? String.fromCharCode(parseInt(hex[0], 16)) : subject[i + 1];
        i += hex ? 3 : 2;
      } else value += subject[i++];
    }
    i++; // ',' or '+'
    // Non-ASCII arrives as \XX escapes of its UTF-8 bytes (XN_FLAG_RFC2253 has ESC_MSB).
    if (attr.trim().toUpperCase() === 'CN') return Buffer.from(value, 'latin1').toString('utf8');
  }
  return undefined;
}
