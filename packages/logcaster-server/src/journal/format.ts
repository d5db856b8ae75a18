/**
 * On-disk format of the LogCaster journal, version 2 (see packages/logcaster-server/JOURNAL.md).
 * The record layout is defined here and nowhere else. All integers little-endian.
 *
 * Segment file = 40-byte header, then records back to back.
 * Header:  0 magic "LCJOURNL" (8) | 8 version u16 (=2) | 10 header length u16 (=40)
 *          12 flags u32 (=0) | 16 segment number u64 | 24 first sequence u64
 *          32 reserved u32 (=0) | 36 CRC-32 of bytes 0..35
 *
 * Record = one block of lines (store/block.ts):
 *   0 marker u32 (bytes 1E 4C 43 42, "\x1eLCB")  4 CRC-32 of bytes 8..end
 *   8 body length u32 (bytes after offset 12)     12 first sequence u64
 *  20 line count u32    24 run count u32    28 peer count u32    32 data length u32
 *  36 flags u32 (bit 0: line ends follow)    40 min time f64    48 max time f64
 *  56 runs: run count × { data offset u32, lines u32, time f64, peer index u32 }
 *     peers: peer count × { length u16, UTF-8 bytes }
 *     line ends (flag bit 0): line count × u32, end offset of each line in the data
 *     data: the lines, each followed by '\n'
 */
import { crc32 } from './crc32';
import type { BlockView, Runs } from '../store/block';

export const FILE_MAGIC = Buffer.from('LCJOURNL', 'latin1');
export const FORMAT_VERSION = 2;
/** Version 1 stored one record per line; it is migrated at open (migrate.ts). */
export const LEGACY_VERSION = 1;
export const HEADER_SIZE = 40;
export const RECORD_MARKER = 0x42434c1e; // bytes 1E 4C 43 42 when written little-endian
export const RECORD_MARKER_BYTES = Buffer.from([0x1e, 0x4c, 0x43, 0x42]);
/** marker + crc + length */
export const RECORD_PREFIX = 12;
/** Bytes before the runs. */
export const RECORD_FIXED = 56;
export const RUN_SIZE = 20;
export const FLAG_LINE_ENDS = 1;
/** Upper bound on a record body; larger length fields are treated as damage. */
export const MAX_BODY = 1024 * 1024 * 1024;
export const MAX_PEER = 0xffff;

const TWO32 = 0x100000000;

export function writeU64(buf: Buffer, v: number, off: number): void {
  buf.writeUInt32LE(v % TWO32 >>> 0, off);
  buf.writeUInt32LE(Math.floor(v / TWO32) >>> 0, off + 4);
}

export function readU64(buf: Buffer, off: number): number {
  return buf.readUInt32LE(off) + buf.readUInt32LE(off + 4) * TWO32;
}

/**
 * The 48-byte header of a finished segment's sidecar files (its index `.idx` and its
 * token filters `.tf`): 0 magic (8) | 8 version u16 | 10 header length u16 (=48)
 * 12 word u32 | 16 segment number u64 | 24 segment size u64 (bytes described)
 * 32 entry count u32 | 36 word u32 | 40 word u32 | 44 CRC-32 of bytes 0..43.
 * The three words are the file kind's own (flags, filter size, hash count, digest).
 */
export const SIDECAR_HEADER = 48;

export interface SidecarHeader {
  segmentNo: number;
  segmentSize: number;
  count: number;
  /** The u32 words at 12, 36 and 40. */
  words: readonly [number, number, number];
}

export function writeSidecarHeader(buf: Buffer, magic: Buffer, version: number, h: SidecarHeader): void {
  magic.copy(buf, 0, 0, 8);
  buf.writeUInt16LE(version, 8);
  buf.writeUInt16LE(SIDECAR_HEADER, 10);
  buf.writeUInt32LE(h.words[0], 12);
  writeU64(buf, h.segmentNo, 16);
  writeU64(buf, h.segmentSize, 24);
  buf.writeUInt32LE(h.count, 32);
  buf.writeUInt32LE(h.words[1], 36);
  buf.writeUInt32LE(h.words[2], 40);
  buf.writeUInt32LE(crc32(buf, 0, 44), 44);
}

/** The header at the start of `buf`, or null unless it is intact and of this magic and version. */
export function readSidecarHeader(buf: Buffer, magic: Buffer, version: number): SidecarHeader | null {
  if (buf.length < SIDECAR_HEADER || buf.compare(magic, 0, 8, 0, 8) !== 0) return null;
  if (buf.readUInt16LE(8) !== version || buf.readUInt16LE(10) !== SIDECAR_HEADER) return null;
  if (crc32(buf, 0, 44) !== buf.readUInt32LE(44)) return null;
  return {
    segmentNo: readU64(buf, 16),
    segmentSize: readU64(buf, 24),
    count: buf.readUInt32LE(32),
    words: [buf.readUInt32LE(12), buf.readUInt32LE(36), buf.readUInt32LE(40)],
  };
}

export interface SegmentHeader {
  version: number;
  segmentNo: number;
  firstSeq: number;
}

export function encodeHeader(segmentNo: number, firstSeq: number, version = FORMAT_VERSION): Buffer {
  const h = Buffer.alloc(HEADER_SIZE);
  FILE_MAGIC.copy(h, 0);
  h.writeUInt16LE(version, 8);
  h.writeUInt16LE(HEADER_SIZE, 10);
  h.writeUInt32LE(0, 12);
  writeU64(h, segmentNo, 16);
  writeU64(h, firstSeq, 24);
  h.writeUInt32LE(0, 32);
  h.writeUInt32LE(crc32(h, 0, 36), 36);
  return h;
}

/** The header of any version (check `version`), or null when the bytes are not an
 *  intact LogCaster segment header. */
export function decodeAnyHeader(buf: Buffer): SegmentHeader | null {
  if (buf.length < HEADER_SIZE) return null;
  if (buf.compare(FILE_MAGIC, 0, 8, 0, 8) !== 0) return null;
  if (buf.readUInt16LE(10) !== HEADER_SIZE) return null;
  if (crc32(buf, 0, 36) !== buf.readUInt32LE(36)) return null;
  return { version: buf.readUInt16LE(8), segmentNo: readU64(buf, 16), firstSeq: readU64(buf, 24) };
}

/** The header when it is an intact version-2 header, else null. */
export function decodeHeader(buf: Buffer): SegmentHeader | null {
  const h = decodeAnyHeader(buf);
  return h !== null && h.version === FORMAT_VERSION ? h : null;
}

/** What a record describes besides its data bytes. Runs' peers index `peers`. */
export interface RecordMeta {
  firstSeq: number;
  count: number;
  runs: Runs;
  peers: readonly string[];
  lineEnds: Uint32Array | undefined;
  dataLength: number;
  minTime: number;
  maxTime: number;
}

/** Bytes 0 .. start of data of a record, its CRC field left 0 (sealRecord fills it). */
export function encodeRecordHead(m: RecordMeta): Buffer {
  const runs = m.runs;
  const nRuns = runs.off.length;
  const peerBytes = m.peers.map((p) => {
    const b = Buffer.from(p, 'utf8');
    return b.length > MAX_PEER ? b.subarray(0, MAX_PEER) : b;
  });
  let size = RECORD_FIXED + nRuns * RUN_SIZE;
  for (const p of peerBytes) size += 2 + p.length;
  if (m.lineEnds) size += 4 * m.count;
  const body = size - RECORD_PREFIX + m.dataLength;
  if (body > MAX_BODY) throw new RangeError(`journal record of ${body} bytes exceeds the ${MAX_BODY}-byte limit`);
  const h = Buffer.allocUnsafe(size);
  h.writeUInt32LE(RECORD_MARKER, 0);
  h.writeUInt32LE(0, 4);
  h.writeUInt32LE(body, 8);
  writeU64(h, m.firstSeq, 12);
  h.writeUInt32LE(m.count, 20);
  h.writeUInt32LE(nRuns, 24);
  h.writeUInt32LE(peerBytes.length, 28);
  h.writeUInt32LE(m.dataLength, 32);
  h.writeUInt32LE(m.lineEnds ? FLAG_LINE_ENDS : 0, 36);
  h.writeDoubleLE(m.minTime, 40);
  h.writeDoubleLE(m.maxTime, 48);
  let o = RECORD_FIXED;
  for (let i = 0; i < nRuns; i++) {
    h.writeUInt32LE(runs.off[i], o);
    h.writeUInt32LE(runs.lines[i], o + 4);
    h.writeDoubleLE(runs.time[i], o + 8);
    h.writeUInt32LE(runs.peer[i], o + 16);
    o += RUN_SIZE;
  }
  for (const p of peerBytes) {
    h.writeUInt16LE(p.length, o);
    p.copy(h, o + 2);
    o += 2 + p.length;
  }
  if (m.lineEnds) {
    for (let i = 0; i < m.count; i++) h.writeUInt32LE(m.lineEnds[i], o + 4 * i);
  }
  return h;
}

/** Fill in the CRC of a record made of `head` followed by `data`. */
export function sealRecord(head: Buffer, data: Uint8Array): void {
  const c = crc32Continue(crc32(head, 8, head.length), data);
  head.writeUInt32LE(c, 4);
}

function crc32Continue(crc: number, data: Uint8Array): number {
  return data.length === 0 ? crc : crc32(data, 0, data.length, crc);
}

export interface ParsedRecord {
  /** Total bytes of the record. */
  length: number;
  block: BlockView;
  minTime: number;
  maxTime: number;
}

/** Length of the record at `pos` going by its marker and lengths (its CRC unchecked),
 *  or -1. */
export function recordLength(buf: Buffer, pos: number, end: number = buf.length): number {
  if (pos + RECORD_FIXED > end) return -1;
  if (buf.readUInt32LE(pos) !== RECORD_MARKER) return -1;
  const body = buf.readUInt32LE(pos + 8);
  if (body < RECORD_FIXED - RECORD_PREFIX || body > MAX_BODY) return -1;
  if (pos + RECORD_PREFIX + body > end) return -1;
  return RECORD_PREFIX + body;
}

/** Whether the CRC of the record of `length` bytes at `pos` matches. */
export function recordCrcOk(buf: Buffer, pos: number, length: number): boolean {
  return crc32(buf, pos + 8, pos + length) === buf.readUInt32LE(pos + 4);
}

/** Length of the intact record at `pos` (marker, consistent lengths, CRC), or -1. */
export function checkRecord(buf: Buffer, pos: number, end: number = buf.length): number {
  const length = recordLength(buf, pos, end);
  return length >= 0 && recordCrcOk(buf, pos, length) ? length : -1;
}

/** The record at `pos`, checked (CRC included); null when it is not intact or its
 *  inner lengths do not add up. `data` is a view of `buf`. */
export function parseRecord(buf: Buffer, pos: number, end: number = buf.length): ParsedRecord | null {
  const length = checkRecord(buf, pos, end);
  if (length < 0) return null;
  return decodeRecord(buf, pos, length);
}

/** Decodes a record whose CRC was checked (or is trusted); null if malformed. */
export function decodeRecord(buf: Buffer, pos: number, length: number): ParsedRecord | null {
  const recEnd = pos + length;
  const count = buf.readUInt32LE(pos + 20);
  const nRuns = buf.readUInt32LE(pos + 24);
  const nPeers = buf.readUInt32LE(pos + 28);
  const dataLength = buf.readUInt32LE(pos + 32);
  const flags = buf.readUInt32LE(pos + 36);
  let o = pos + RECORD_FIXED;
  if (o + nRuns * RUN_SIZE > recEnd || (nRuns === 0) !== (count === 0)) return null;
  const runs: Runs = { off: new Uint32Array(nRuns), lines: new Uint32Array(nRuns), time: new Float64Array(nRuns), peer: new Uint32Array(nRuns) };
  let lines = 0;
  for (let i = 0; i < nRuns; i++) {
    runs.off[i] = buf.readUInt32LE(o);
    runs.lines[i] = buf.readUInt32LE(o + 4);
    runs.time[i] = buf.readDoubleLE(o + 8);
    runs.peer[i] = buf.readUInt32LE(o + 16);
    if (runs.peer[i] >= nPeers || runs.off[i] > dataLength || (i > 0 && runs.off[i] < runs.off[i - 1])) return null;
    lines += runs.lines[i];
    o += RUN_SIZE;
  }
  if (lines !== count) return null;
  const peers: string[] = [];
  for (let i = 0; i < nPeers; i++) {
    if (o + 2 > recEnd) return null;
    const n = buf.readUInt16LE(o);
    if (o + 2 + n > recEnd) return null;
    peers.push(buf.toString('utf8', o + 2, o + 2 + n));
    o += 2 + n;
  }
  let lineEnds: Uint32Array | undefined;
  if (flags & FLAG_LINE_ENDS) {
    if (o + 4 * count > recEnd) return null;
    lineEnds = new Uint32Array(count);
    for (let i = 0; i < count; i++) lineEnds[i] = buf.readUInt32LE(o + 4 * i);
    o += 4 * count;
  }
  if (o + dataLength !== recEnd) return null;
  if (dataLength > 0 && buf[recEnd - 1] !== 10) return null;
  return {
    length,
    block: { data: buf.subarray(o, recEnd), firstSeq: readU64(buf, pos + 12), count, runs, peers, lineEnds },
    minTime: buf.readDoubleLE(pos + 40),
    maxTime: buf.readDoubleLE(pos + 48),
  };
}

/** First sequence number of the record at `pos` (no checks). */
export function recordFirstSeq(buf: Buffer, pos: number): number {
  return readU64(buf, pos + 12);
}

/** Last sequence number of the record at `pos` (no checks). */
export function recordLastSeq(buf: Buffer, pos: number): number {
  return readU64(buf, pos + 12) + buf.readUInt32LE(pos + 20) - 1;
}

/** Segment file names: 12 digits, more once numbers outgrow them (ordered by number). */
export const SEGMENT_RE = /^logcaster-(\d{12,})\.log$/;

export function segmentName(no: number): string {
  return `logcaster-${String(no).padStart(12, '0')}.log`;
}

export function indexName(no: number): string {
  return `logcaster-${String(no).padStart(12, '0')}.idx`;
}

/** The token filter file of a finished segment (token-filter.ts). */
export function filterName(no: number): string {
  return `logcaster-${String(no).padStart(12, '0')}.tf`;
}
