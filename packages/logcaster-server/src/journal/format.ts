/**
 * On-disk format of the LogCaster journal (see packages/logcaster-server/JOURNAL.md).
 *
 * Segment file = 40-byte header, then records back to back. All integers little-endian.
 *
 * Header:  0 magic "LCJOURNL" (8) | 8 version u16 (=1) | 10 header length u16 (=40)
 *          12 flags u32 (=0) | 16 segment number u64 | 24 first sequence u64
 *          32 reserved u32 (=0) | 36 CRC-32 of bytes 0..35
 * Record:  0 marker u32 (bytes 1E 4C 43 52, "\x1eLCR") | 4 CRC-32 of bytes 8..end
 *          8 body length u32 (bytes after offset 12) | 12 sequence u64 | 20 receive time ms f64
 *          28 peer length u16 | 30 peer (UTF-8) | 30+peerLen line bytes (to the end)
 */
import { crc32 } from './crc32';

export const FILE_MAGIC = Buffer.from('LCJOURNL', 'latin1');
export const FORMAT_VERSION = 1;
export const HEADER_SIZE = 40;
export const RECORD_MARKER = 0x52434c1e; // bytes 1E 4C 43 52 when written little-endian
export const RECORD_MARKER_BYTES = Buffer.from([0x1e, 0x4c, 0x43, 0x52]);
/** marker + crc + length */
export const RECORD_PREFIX = 12;
/** seq + time + peer length */
export const BODY_FIXED = 18;
export const MIN_RECORD = RECORD_PREFIX + BODY_FIXED;
/** Upper bound on a record body; larger length fields are treated as corruption. */
export const MAX_BODY = 64 * 1024 * 1024;
export const MAX_PEER = 0xffff;

const TWO32 = 0x100000000;

export function writeU64(buf: Buffer, v: number, off: number): void {
  buf.writeUInt32LE(v % TWO32 >>> 0, off);
  buf.writeUInt32LE(Math.floor(v / TWO32) >>> 0, off + 4);
}

export function readU64(buf: Buffer, off: number): number {
  return buf.readUInt32LE(off) + buf.readUInt32LE(off + 4) * TWO32;
}

export interface SegmentHeader {
  version: number;
  segmentNo: number;
  firstSeq: number;
}

export function encodeHeader(segmentNo: number, firstSeq: number): Buffer {
  const h = Buffer.alloc(HEADER_SIZE);
  FILE_MAGIC.copy(h, 0);
  h.writeUInt16LE(FORMAT_VERSION, 8);
  h.writeUInt16LE(HEADER_SIZE, 10);
  h.writeUInt32LE(0, 12);
  writeU64(h, segmentNo, 16);
  writeU64(h, firstSeq, 24);
  h.writeUInt32LE(0, 32);
  h.writeUInt32LE(crc32(h, 0, 36), 36);
  return h;
}

/** Returns the parsed header, or null when the bytes are not a valid version-1 header. */
export function decodeHeader(buf: Buffer): SegmentHeader | null {
  if (buf.length < HEADER_SIZE) return null;
  if (buf.compare(FILE_MAGIC, 0, 8, 0, 8) !== 0) return null;
  if (buf.readUInt16LE(8) !== FORMAT_VERSION || buf.readUInt16LE(10) !== HEADER_SIZE) return null;
  if (crc32(buf, 0, 36) !== buf.readUInt32LE(36)) return null;
  return { version: FORMAT_VERSION, segmentNo: readU64(buf, 16), firstSeq: readU64(buf, 24) };
}

/**
 * Validates the record starting at `pos`; returns its total length, or -1 when there is no
 * complete, intact record there (bad marker, impossible length, truncated, CRC mismatch).
 */
export function checkRecord(buf: Buffer, pos: number, end: number = buf.length): number {
  if (pos + MIN_RECORD > end) return -1;
  if (buf.readUInt32LE(pos) !== RECORD_MARKER) return -1;
  const bodyLen = buf.readUInt32LE(pos + 8);
  if (bodyLen < BODY_FIXED || bodyLen > MAX_BODY) return -1;
  const recEnd = pos + RECORD_PREFIX + bodyLen;
  if (recEnd > end) return -1;
  if (BODY_FIXED + buf.readUInt16LE(pos + 28) > bodyLen) return -1;
  if (crc32(buf, pos + 8, recEnd) !== buf.readUInt32LE(pos + 4)) return -1;
  return RECORD_PREFIX + bodyLen;
}

export function recordSeq(buf: Buffer, pos: number): number {
  return readU64(buf, pos + 12);
}

export interface ScanResult {
  /** intact records found */
  records: number;
  /** offset just past the last intact record (HEADER_SIZE if none) */
  goodEnd: number;
  /** damaged regions skipped (each a run of bytes up to the next intact record or the end) */
  corruptRegions: number;
  corruptBytes: number;
  /** true when the file ends in bytes that are not an intact record (a torn tail) */
  tornTail: boolean;
  firstSeq: number;
  lastSeq: number;
}

/**
 * Walks the records of a segment image from `start`. Damaged bytes are skipped by resyncing
 * on the next record marker that begins an intact record with a higher sequence number.
 * `onRecord(pos, len)` is called for each intact record in file order.
 */
export function scanSegment(
  buf: Buffer,
  start: number = HEADER_SIZE,
  onRecord?: (pos: number, len: number) => void,
): ScanResult {
  const res: ScanResult = {
    records: 0, goodEnd: start, corruptRegions: 0, corruptBytes: 0, tornTail: false,
    firstSeq: 0, lastSeq: 0,
  };
  const end = buf.length;
  let pos = start;
  while (pos < end) {
    const len = checkRecord(buf, pos, end);
    if (len > 0) {
      const seq = recordSeq(buf, pos);
      if (res.records === 0) res.firstSeq = seq;
      res.lastSeq = seq;
      res.records++;
      if (onRecord !== undefined) onRecord(pos, len);
      pos += len;
      res.goodEnd = pos;
      continue;
    }
    // Damaged: find the next intact record that continues the sequence.
    let next = buf.indexOf(RECORD_MARKER_BYTES, pos + 1);
    while (next !== -1 && (checkRecord(buf, next, end) < 0 || recordSeq(buf, next) <= res.lastSeq)) {
      next = buf.indexOf(RECORD_MARKER_BYTES, next + 1);
    }
    res.corruptRegions++;
    if (next === -1) {
      res.corruptBytes += end - pos;
      res.tornTail = true;
      break;
    }
    res.corruptBytes += next - pos;
    pos = next;
  }
  return res;
}

/** Size on disk of a record carrying `peerBytes` and `lineBytes`. */
export function recordSize(peerBytes: number, lineBytes: number): number {
  return RECORD_PREFIX + BODY_FIXED + peerBytes + lineBytes;
}

export const SEGMENT_RE = /^logcaster-(\d{12})\.log$/;

export function segmentName(no: number): string {
  return `logcaster-${String(no).padStart(12, '0')}.log`;
}
