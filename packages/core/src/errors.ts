// errno numbers from the engine become Node-style errors: err.code = 'ECONNRESET', ...
import { constants } from 'node:os';

const errnoNames = new Map<number, string>();
for (const [name, num] of Object.entries(constants.errno)) {
  if (!errnoNames.has(num)) errnoNames.set(num, name);
}

export function errnoCode(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

export interface ReactorError extends Error {
  code: string;
  errno?: number;
  syscall?: string;
}

export function reactorError(message: string, code: string, errno?: number, syscall?: string): ReactorError {
  const err = new Error(message) as ReactorError;
  err.code = code;
  if (errno !== undefined) err.errno = errno;
  if (syscall !== undefined) err.syscall = syscall;
  return err;
}

/** `read ECONNRESET (127.0.0.1:5000)` style error from an errno. */
export function errnoError(errno: number, syscall: string, where?: string): ReactorError {
  const code = errnoCode(errno);
  return reactorError(`${syscall} ${code}${where ? ` ${where}` : ''}`, code, errno, syscall);
}

/** An error thrown by the native engine (an Error with `errno`) as a Node-style error
 *  (`code`, `errno`, `syscall`); anything else unchanged. */
export function nativeError(e: unknown, syscall: string): unknown {
  const errno = (e as { errno?: number }).errno;
  return errno ? reactorError((e as Error).message, errnoCode(errno), errno, syscall) : e;
}
