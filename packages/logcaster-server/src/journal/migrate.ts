// Journal format version 1 (one record per line) and its migration to version 2.
//
// Version 1 records: 0 marker u32 (bytes 1E 4C 43 52) | 4 CRC-32 of bytes 8..end
//   8 body length u32 | 12 sequence u64 | 20 receive time f64 | 28 peer length u16
//   30 peer | 30+P line bytes. Body lengths above 64 MiB were treated as damage.
//
// A version-1 segment is rewritten as a version-2 segment of the same number: its intact
// records become blocks of lines (damaged ones are skipped and counted, as a replay
// would), the new file is written next to it, fsynced, and renamed over the old one.
// A migration cut short leaves each segment either old or new, never half of each; the
// next start finishes it.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { crc32 } from './crc32';
import { HEADER_SIZE, encodeHeader, encodeRecordHead, readU64, sealRecord } from './format';
import type { Runs } from '../store/block';

const V1_MARKER = 0x52434c1e;
const V1_MARKER_BYTES = Buffer.from([0x1e, 0x4c, 0x43, 0x52]);
const V1_MAX_BODY = 64 * 1024 * 1024;
/** A migrated block closes at this many bytes of lines. */
const BLOCK_BYTES = 1024 * 1024;
export const MIGRATING_SUFFIX = '.v2-migrating';

function v1Record(img: Buffer, pos: number): number {
  if (pos + 30 > img.length || img.readUInt32LE(pos) !== V1_MARKER) return -1;
  const body = img.readUInt32LE(pos + 8);
  if (body < 18 || body > V1_MAX_BODY || pos + 12 + body > img.length) return -1;
  if (18 + img.readUInt16LE(pos + 28) > body) return -1;
  if (crc32(img, pos + 8, pos + 12 + body) !== img.readUInt32LE(pos + 4)) return -1;
  return 12 + body;
}

interface V1Line {
  seq: number;
  time: number;
  peer: string;
  line: Buffer;
}

/** The intact records of a version-1 segment image, and the damaged regions skipped. */
function readV1(img: Buffer): { lines: V1Line[]; damaged: number } {
  const lines: V1Line[] = [];
  let damaged = 0;
  let pos = HEADER_SIZE;
  let last = 0;
  while (pos < img.length) {
    const len = v1Record(img, pos);
    if (len > 0 && readU64(img, pos + 12) > last) {
      const plen = img.readUInt16LE(pos + 28);
      last = readU64(img, pos + 12);
      lines.push({ seq: last, time: img.readDoubleLE(pos + 20), peer: img.toString('utf8', pos + 30, pos + 30 + plen), line: img.subarray(pos + 30 + plen, pos + len) });
      pos += len;
      continue;
    }
    damaged++;
    let next = img.indexOf(V1_MARKER_BYTES, pos + 1);
    while (next >= 0 && (v1Record(img, next) < 0 || readU64(img, next + 12) <= last)) next = img.indexOf(V1_MARKER_BYTES, next + 1);
    if (next < 0) break;
    pos = next;
  }
  return { lines, damaged };
}

/** Encodes consecutive-sequence lines as one version-2 record. */
function encodeBlock(lines: V1Line[]): Buffer[] {
  const peers: string[] = [];
  const peerIds = new Map<string, number>();
  const off: number[] = [];
  const count: number[] = [];
  const time: number[] = [];
  const peer: number[] = [];
  const ends: number[] = [];
  let hasNl = false;
  let bytes = 0;
  for (const l of lines) {
    let p = peerIds.get(l.peer);
    if (p === undefined) {
      p = peers.length;
      peers.push(l.peer);
      peerIds.set(l.peer, p);
    }
    if (off.length === 0 || time[time.length - 1] !== l.time || peer[peer.length - 1] !== p) {
      off.push(bytes);
      count.push(0);
      time.push(l.time);
      peer.push(p);
    }
    count[count.length - 1]++;
    if (l.line.includes(10)) hasNl = true;
    bytes += l.line.length;
    ends.push(bytes);
    bytes++;
  }
  const data = Buffer.allocUnsafe(bytes);
  let o = 0;
  for (const l of lines) {
    l.line.copy(data, o);
    o += l.line.length;
    data[o++] = 10;
  }
  const runs: Runs = { off: Uint32Array.from(off), lines: Uint32Array.from(count), time: Float64Array.from(time), peer: Uint32Array.from(peer) };
  const head = encodeRecordHead({
    firstSeq: lines[0].seq,
    count: lines.length,
    runs,
    peers,
    lineEnds: hasNl ? Uint32Array.from(ends) : undefined,
    dataLength: bytes,
    minTime: time.reduce((a, b) => Math.min(a, b), Infinity),
    maxTime: time.reduce((a, b) => Math.max(a, b), -Infinity),
  });
  sealRecord(head, data);
  return [head, data];
}

/** Rewrites the version-1 segment `file` (number `segNo`, header first sequence
 *  `firstSeq`) as version 2. Returns the damaged regions skipped. */
export function migrateSegment(file: string, segNo: number, firstSeq: number): number {
  const img = fs.readFileSync(file);
  const { lines, damaged } = readV1(img);
  const tmp = file + MIGRATING_SUFFIX;
  const fd = fs.openSync(tmp, 'w');
  try {
    const parts: Buffer[] = [encodeHeader(segNo, lines.length > 0 ? lines[0].seq : firstSeq)];
    let start = 0;
    let bytes = 0;
    for (let i = 0; i <= lines.length; i++) {
      // a block is consecutive sequence numbers of at most BLOCK_BYTES
      const brk = i === lines.length || (i > start && (lines[i].seq !== lines[i - 1].seq + 1 || bytes + lines[i].line.length + 1 > BLOCK_BYTES));
      if (brk && i > start) {
        parts.push(...encodeBlock(lines.slice(start, i)));
        start = i;
        bytes = 0;
      }
      if (i < lines.length) bytes += lines[i].line.length + 1;
    }
    for (const p of parts) fs.writeSync(fd, p);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  return damaged;
}

/** Leftovers of a migration cut short: the old segment is still there, start over. */
export function removeMigrationLeftovers(dir: string, names: readonly string[]): void {
  for (const n of names) if (n.endsWith(MIGRATING_SUFFIX)) fs.rmSync(path.join(dir, n), { force: true });
}
