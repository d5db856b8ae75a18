// Parsing of one request head (request line + header fields, RFC 9112 §2-§7) from the
// bytes before its blank line. Pure: bytes in, a RequestHead or the status to refuse with.

/** Header fields by lower-case name; repeated fields joined with ", ". No prototype,
 *  so a missing name is `undefined` whatever it is called. */
export type HeaderFields = Record<string, string | undefined>;

export interface RequestHead {
  method: string;
  /** The request target as sent (origin form "/path?query", or "*", or absolute form). */
  target: string;
  version: '1.0' | '1.1';
  headers: HeaderFields;
  /** What the client asked for: HTTP/1.1 unless "Connection: close", HTTP/1.0 only with
   *  "Connection: keep-alive". */
  keepAlive: boolean;
  /** Content-Length of the body, 0 without one; -1 for a chunked body. */
  bodyLength: number;
  /** "Expect: 100-continue": the client waits for an interim answer before the body. */
  expectContinue: boolean;
}

export interface HeadError {
  status: number;
  reason: string;
}

export interface HeadLimits {
  maxHeaders: number;
  maxBodyBytes: number;
}

// tchar (RFC 9110 §5.6.2)
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Bytes a head must not contain: NUL, and CR or LF other than as the CRLF pair.
const BAD_BYTES = /\0|\r(?!\n)|(?<!\r)\n/;
// Visible ASCII: a request target has no spaces or controls (RFC 9112 §3.2).
const TARGET = /^[\x21-\x7e]+$/;
const DIGITS = /^\d{1,15}$/;

const fail = (status: number, reason: string): HeadError => ({ status, reason });

/** Parse `buf[start, end)`, where `end` is the offset of the head's terminating CRLFCRLF. */
export function parseRequestHead(buf: Buffer, start: number, end: number, limits: HeadLimits): RequestHead | HeadError {
  const text = buf.toString('latin1', start, end);
  if (BAD_BYTES.test(text)) return fail(400, 'bare CR, LF or NUL in the request head');
  let eol = text.indexOf('\r\n');
  if (eol < 0) eol = text.length;
  const sp1 = text.indexOf(' ');
  const sp2 = sp1 < 0 ? -1 : text.indexOf(' ', sp1 + 1);
  if (sp1 <= 0 || sp2 < 0 || sp2 >= eol || text.lastIndexOf(' ', eol - 1) !== sp2) return fail(400, 'malformed request line');
  const method = text.slice(0, sp1);
  const target = text.slice(sp1 + 1, sp2);
  const proto = text.slice(sp2 + 1, eol);
  if (!TOKEN.test(method)) return fail(400, 'malformed method');
  if (!TARGET.test(target)) return fail(400, 'malformed request target');
  let version: '1.0' | '1.1';
  if (proto === 'HTTP/1.1') version = '1.1';
  else if (proto === 'HTTP/1.0') version = '1.0';
  else if (/^HTTP\/\d\.\d$/.test(proto)) return fail(505, `${proto} is not supported`);
  else return fail(400, 'malformed protocol version');

  const headers: HeaderFields = Object.create(null);
  let count = 0;
  let pos = eol + 2;
  while (pos < text.length) {
    let next = text.indexOf('\r\n', pos);
    if (next < 0) next = text.length;
    const colon = text.indexOf(':', pos);
    if (colon < 0 || colon >= next) {
      return fail(400, text.charCodeAt(pos) === 32 || text.charCodeAt(pos) === 9 ? 'obsolete line folding' : 'header line without a colon');
    }
    const name = text.slice(pos, colon);
    if (!TOKEN.test(name)) return fail(400, 'malformed header name');
    if (++count > limits.maxHeaders) return fail(431, `more than ${limits.maxHeaders} header fields`);
    const value = trimOws(text, colon + 1, next);
    const key = name.toLowerCase();
    const seen = headers[key];
    if (seen === undefined) headers[key] = value;
    else if (key === 'content-length' || key === 'host') {
      if (seen !== value || key === 'host') return fail(400, `repeated ${name}`);
    } else headers[key] = `${seen}, ${value}`;
    pos = next + 2;
  }

  if (version === '1.1' && headers.host === undefined) return fail(400, 'HTTP/1.1 request without Host');
  let bodyLength = 0;
  const te = headers['transfer-encoding'];
  const cl = headers['content-length'];
  if (te !== undefined) {
    // Both framings at once is how requests are smuggled past proxies: refuse.
    if (cl !== undefined) return fail(400, 'both Transfer-Encoding and Content-Length');
    if (version === '1.0') return fail(400, 'Transfer-Encoding in an HTTP/1.0 request');
    if (te.toLowerCase() !== 'chunked') return fail(501, `transfer coding '${te}' is not supported`);
    bodyLength = -1;
  } else if (cl !== undefined) {
    if (!DIGITS.test(cl)) return fail(400, 'malformed Content-Length');
    bodyLength = Number(cl);
    if (bodyLength > limits.maxBodyBytes) return fail(413, `body larger than ${limits.maxBodyBytes} bytes`);
  }
  const connection = headers.connection;
  const keepAlive = connection === undefined ? version === '1.1' : version === '1.1' ? !hasToken(connection, 'close') : hasToken(connection, 'keep-alive');
  const expect = headers.expect;
  return { method, target, version, headers, keepAlive, bodyLength, expectContinue: expect !== undefined && expect.toLowerCase() === '100-continue' };
}

/** Whether a comma-separated header value lists `token` (case-insensitive). */
export function hasToken(value: string, token: string): boolean {
  for (const part of value.split(',')) if (part.trim().toLowerCase() === token) return true;
  return false;
}

function trimOws(text: string, from: number, to: number): string {
  while (from < to && (text.charCodeAt(from) === 32 || text.charCodeAt(from) === 9)) from++;
  while (to > from && (text.charCodeAt(to - 1) === 32 || text.charCodeAt(to - 1) === 9)) to--;
  return text.slice(from, to);
}
