// The token filter of an index group: a Bloom filter of every 3-byte sequence (trigram)
// of the group's record data. A keyword of three bytes or more can only occur in the
// group if all of its trigrams are in the filter, so a keyword query skips a group
// whose filter lacks one — without reading the group. Trigrams, not words: keywords
// are substrings ("rror" finds "error"), and a filter of whole words would have to let
// every such keyword through. Shorter keywords always pass.
//
// A filter never yields a false negative: every trigram of the data is added. False
// positives (a group read for nothing) are what the size trades: FILTER_BYTES bits,
// two probes per trigram; a 1 MiB group of varied log text holds ~50-150k distinct
// trigrams, so one absent trigram passes with a probability of about 5-20 %, and a
// keyword of n bytes has n-2 trigrams that must all pass.
//
// The filters of a finished segment live in `logcaster-NNN.tf` next to it (layout in
// JOURNAL.md, encoded and checked here); the newest segment, still growing, has none.
import { crc32 } from './crc32';
import { readSidecarHeader, SIDECAR_HEADER, writeSidecarHeader, writeU64 } from './format';

/** Bytes of one group's filter (2^19 bits). */
export const FILTER_BYTES = 64 * 1024;
const FILTER_MASK = FILTER_BYTES * 8 - 1;
const FILE_MAGIC = Buffer.from('LCTOKFLT', 'latin1');
const FILE_VERSION = 1;
export const FILTER_HEADER = SIDECAR_HEADER;
const HASHES = 2;

/** Adds every trigram of data[start, end) to `bits`. */
export function addTrigrams(bits: Uint8Array, data: Uint8Array, start = 0, end = data.length): void {
  if (end - start < 3) return;
  let tri = (data[start] << 8) | data[start + 1];
  for (let i = start + 2; i < end; i++) {
    tri = ((tri << 8) | data[i]) & 0xffffff;
    const h1 = Math.imul(tri, 0x9e3779b1) >>> 13;
    const h2 = Math.imul(tri ^ 0x5bd1e995, 0x85ebca77) >>> 13;
    bits[(h1 & FILTER_MASK) >>> 3] |= 1 << (h1 & 7);
    bits[(h2 & FILTER_MASK) >>> 3] |= 1 << (h2 & 7);
  }
}

/** Whether `keyword` may occur in data whose trigrams are in `bits`. */
export function mayContain(bits: Uint8Array, keyword: Uint8Array): boolean {
  if (keyword.length < 3) return true;
  let tri = (keyword[0] << 8) | keyword[1];
  for (let i = 2; i < keyword.length; i++) {
    tri = ((tri << 8) | keyword[i]) & 0xffffff;
    const h1 = Math.imul(tri, 0x9e3779b1) >>> 13;
    const h2 = Math.imul(tri ^ 0x5bd1e995, 0x85ebca77) >>> 13;
    if ((bits[(h1 & FILTER_MASK) >>> 3] & (1 << (h1 & 7))) === 0) return false;
    if ((bits[(h2 & FILTER_MASK) >>> 3] & (1 << (h2 & 7))) === 0) return false;
  }
  return true;
}

/** Where group g's filter starts in a filter file of `groups` groups. */
export function filterOffset(groups: number, g: number): number {
  return FILTER_HEADER + 4 * groups + g * FILTER_BYTES;
}

export interface GroupRange {
  off: number;
  len: number;
}

/** CRC-32 of the groups' file ranges (u64 offset, u64 length each): a filter file is
 *  used only for exactly the grouping it was built from. */
export function groupsDigest(groups: readonly GroupRange[]): number {
  const b = Buffer.alloc(16 * groups.length);
  groups.forEach((g, i) => {
    writeU64(b, g.off, 16 * i);
    writeU64(b, g.len, 16 * i + 8);
  });
  return crc32(b, 0, b.length);
}

/** A filter file for segment `segmentNo` of `segmentSize` bytes: the header, one CRC-32
 *  per filter, the filters. */
export function encodeFilterFile(segmentNo: number, segmentSize: number, groups: readonly GroupRange[], filters: readonly Uint8Array[]): Buffer {
  const n = filters.length;
  if (groups.length !== n) throw new RangeError('encodeFilterFile: one filter per group');
  const buf = Buffer.alloc(filterOffset(n, n));
  writeSidecarHeader(buf, FILE_MAGIC, FILE_VERSION, { segmentNo, segmentSize, count: n, words: [FILTER_BYTES, HASHES, groupsDigest(groups)] });
  filters.forEach((f, g) => {
    buf.set(f, filterOffset(n, g));
    buf.writeUInt32LE(crc32(f, 0, f.length), FILTER_HEADER + 4 * g);
  });
  return buf;
}

/** Whether `head` (the first FILTER_HEADER bytes of a filter file) is an intact header
 *  describing segment `segmentNo` of exactly `segmentSize` bytes in exactly `groups`. */
export function filterHeaderMatches(head: Buffer, segmentNo: number, segmentSize: number, groups: readonly GroupRange[]): boolean {
  const h = readSidecarHeader(head, FILE_MAGIC, FILE_VERSION);
  if (h === null || h.segmentNo !== segmentNo || h.segmentSize !== segmentSize || h.count !== groups.length) return false;
  const [filterBytes, hashes, digest] = h.words;
  return filterBytes === FILTER_BYTES && hashes === HASHES && digest === groupsDigest(groups);
}

/** Group g's filter read from a filter file's bytes [crc, filter) — null when its CRC
 *  does not match (then the group must be read: a damaged filter could hide a match). */
export function checkedFilter(crcField: Buffer, filter: Buffer): Buffer | null {
  return crc32(filter, 0, filter.length) === crcField.readUInt32LE(0) ? filter : null;
}
