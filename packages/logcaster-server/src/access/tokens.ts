// Query tokens: where they come from and how a candidate is checked.
//
// A candidate is compared against every configured token through an HMAC with a key
// drawn at start: the digests have a fixed length, so timingSafeEqual runs in the same
// time whatever the candidate's length or how many leading bytes it gets right, and every
// token is compared (no early exit) so the time does not tell which one matched.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';

/** The environment variable read for a query token when no file is given. */
export const QUERY_TOKEN_ENV = 'LOGCASTER_QUERY_TOKEN';

/** Shorter tokens are accepted, with a warning: they can be guessed. */
export const MIN_RECOMMENDED_TOKEN = 16;

export class TokenSet {
  private readonly key = randomBytes(32);
  private readonly digests: Buffer[];

  private constructor(tokens: readonly string[]) {
    this.digests = tokens.map((t) => this.digest(t));
  }

  /** Validates each token: non-empty, printable, no whitespace (AUTH takes one word). */
  static of(tokens: readonly string[]): TokenSet {
    if (tokens.length === 0) throw new TokenError('no token given');
    for (const t of tokens) {
      const problem = tokenProblem(t);
      if (problem) throw new TokenError(problem);
    }
    return new TokenSet(tokens);
  }

  static isValid(token: string): boolean {
    return tokenProblem(token) === undefined;
  }

  get size(): number {
    return this.digests.length;
  }

  matches(candidate: string): boolean {
    const d = this.digest(candidate);
    let ok = false;
    for (const known of this.digests) ok = timingSafeEqual(known, d) || ok;
    return ok;
  }

  private digest(text: string): Buffer {
    return createHmac('sha256', this.key).update(text, 'utf8').digest();
  }
}

export class TokenError extends Error {}

function tokenProblem(t: string): string | undefined {
  if (t === '') return 'a token must not be empty';
  // eslint-disable-next-line no-control-regex
  if (/[\s\u0000-\u001f\u007f]/.test(t)) return 'a token must not contain spaces or control characters';
  return undefined;
}

/** Tokens of a file: one per line; blank lines and lines starting with '#' are skipped. */
export function readTokenFile(file: string): { tokens: string[]; warnings: string[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new TokenError(`cannot read token file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const tokens: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) return;
    const problem = tokenProblem(line);
    if (problem) throw new TokenError(`${file}:${i + 1}: ${problem}`);
    tokens.push(line);
  });
  if (tokens.length === 0) throw new TokenError(`token file ${file} holds no token`);
  const warnings: string[] = [];
  const mode = statSync(file).mode;
  if ((mode & 0o077) !== 0) warnings.push(`token file ${file} is readable by other users (mode ${(mode & 0o777).toString(8)}); chmod 600 it`);
  return { tokens, warnings };
}

/** Warnings about tokens that are accepted but weak. */
export function tokenWarnings(tokens: readonly string[]): string[] {
  const short = tokens.filter((t) => t.length < MIN_RECOMMENDED_TOKEN).length;
  return short > 0 ? [`${short} query token(s) shorter than ${MIN_RECOMMENDED_TOKEN} characters: use a long random token (openssl rand -hex 32)`] : [];
}
