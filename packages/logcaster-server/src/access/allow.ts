// --allow / --query-allow: the networks a port accepts connections from. A connection
// from elsewhere is destroyed in onOpen, before a byte of it is read, and counted; the
// port's own handler never sees it.
import { BlockList, isIP } from 'node:net';

import type { Connection, Handler } from '@logcaster/core';

export class AllowList {
  private readonly list = new BlockList();

  private constructor(readonly cidrs: readonly string[]) {
    for (const c of cidrs) {
      const { address, prefix, family } = parseCidr(c);
      this.list.addSubnet(address, prefix, family);
    }
  }

  /** "10.0.0.0/8,192.168.1.7,fd00::/8": CIDRs or single addresses, comma-separated. */
  static parse(text: string): AllowList {
    const parts = text.split(',').map((s) => s.trim());
    if (parts.some((p) => p === '')) throw new AllowListError(`empty entry in '${text}'`);
    return new AllowList(parts);
  }

  static isValid(text: string): boolean {
    try {
      AllowList.parse(text);
      return true;
    } catch {
      return false;
    }
  }

  /** IPv4-mapped IPv6 peers (a dual-stack listener) match IPv4 entries. */
  allows(address: string | undefined): boolean {
    if (address === undefined) return false;
    const family = isIP(address);
    if (family === 0) return false;
    return this.list.check(address, family === 4 ? 'ipv4' : 'ipv6');
  }
}

export class AllowListError extends Error {}

function parseCidr(text: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const family = isIP(address);
  if (family === 0) throw new AllowListError(`'${text}' is not an IP address or CIDR`);
  const max = family === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > max) throw new AllowListError(`'${text}': prefix length must be 0-${max}`);
    prefix = Number(p);
  }
  return { address, prefix, family: family === 4 ? 'ipv4' : 'ipv6' };
}

/** Marks, in conn.context, a connection the allow list refused. */
const REFUSED = Symbol('refused by the allow list');

/** `inner` behind the allow list: refused connections are destroyed at open and
 *  reported to `onRefused`; every other callback is forwarded unchanged. */
export function admitOnly(allow: AllowList, inner: Handler, onRefused: (address: string | undefined) => void): Handler {
  const refused = (conn: Connection): boolean => conn.context === REFUSED;
  return {
    allowHalfOpen: inner.allowHalfOpen,
    onOpen(conn) {
      if (!allow.allows(conn.remoteAddress)) {
        conn.context = REFUSED;
        conn.destroy();
        onRefused(conn.remoteAddress);
        return;
      }
      inner.onOpen?.(conn);
    },
    onData(conn, data) {
      if (!refused(conn)) inner.onData?.(conn, data);
    },
    onDrain(conn) {
      if (!refused(conn)) inner.onDrain?.(conn);
    },
    onEnd(conn) {
      if (!refused(conn)) inner.onEnd?.(conn);
    },
    onTimeout(conn) {
      if (!refused(conn)) inner.onTimeout?.(conn);
    },
    onClose(conn, err) {
      if (!refused(conn)) inner.onClose?.(conn, err);
    },
  };
}
