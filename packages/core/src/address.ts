// Socket addresses as the engine hands them over (family codes, raw address bytes in
// a datagram's record) turned into what JS shows: 'IPv4' / 'IPv6' / 'unix' and text.
import { FAMILY_IPV6, FAMILY_UNIX } from './native-events';
import type { AddressFamily } from './types';

export function familyName(code: number): AddressFamily {
  return code === FAMILY_UNIX ? 'unix' : code === FAMILY_IPV6 ? 'IPv6' : 'IPv4';
}

export function ipv4Text(b: Uint8Array, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

/** RFC 5952 text: lower-case hex, the longest run (>= 2) of zero groups as '::', and
 *  IPv4-mapped addresses as ::ffff:a.b.c.d (as node:dgram reports them). */
export function ipv6Text(b: Uint8Array, at: number): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((b[at + 2 * i] << 8) | b[at + 2 * i + 1]);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) return `::ffff:${ipv4Text(b, at + 12)}`;
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}
