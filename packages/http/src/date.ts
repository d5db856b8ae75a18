// The Date header (RFC 9110 §6.6.1: an origin server with a clock sends it), formatted
// at most once per second rather than per response.

let second = -1;
let field = '';

/** "Date: Tue, 15 Nov 1994 08:12:31 GMT\r\n" for the current second. */
export function dateField(): string {
  const now = Math.floor(Date.now() / 1000);
  if (now !== second) {
    second = now;
    field = `Date: ${new Date(now * 1000).toUTCString()}\r\n`;
  }
  return field;
}
