// Helpers for the journal tests (not a test file itself).
import * as fs from 'node:fs';

import { crc32 } from '../../src/journal';

export function segFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => /^logcaster-\d{12}\.log$/.test(n)).sort();
}

export interface Entry { timeMs: number; peer: string; line: string; seq: number }

/** Writes a segment in the version-1 format (one record per line, as LogCaster 0.1 did).
 *  Records whose index is in `damage` get a wrong CRC. */
export function writeV1Segment(file: string, segNo: number, firstSeq: number, lines: { seq: number; time: number; peer: string; line: Buffer }[], damage: number[] = []): void {
  const h = Buffer.alloc(40);
  h.write('LCJOURNL', 0, 'latin1');
  h.writeUInt16LE(1, 8);
  h.writeUInt16LE(40, 10);
  h.writeUInt32LE(segNo, 16);
  h.writeUInt32LE(firstSeq, 24);
  h.writeUInt32LE(crc32(h, 0, 36), 36);
  const parts: Buffer[] = [h];
  lines.forEach((l, k) => {
    const peer = Buffer.from(l.peer);
    const r = Buffer.alloc(30 + peer.length + l.line.length);
    r.writeUInt32LE(0x52434c1e, 0);
    r.writeUInt32LE(r.length - 12, 8);
    r.writeUInt32LE(l.seq, 12);
    r.writeDoubleLE(l.time, 20);
    r.writeUInt16LE(peer.length, 28);
    peer.copy(r, 30);
    l.line.copy(r, 30 + peer.length);
    r.writeUInt32LE((crc32(r, 8, r.length) ^ (damage.includes(k) ? 1 : 0)) >>> 0, 4);
    parts.push(r);
  });
  fs.writeFileSync(file, Buffer.concat(parts));
}
