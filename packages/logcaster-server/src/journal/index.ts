// The persistence journal: segment files of CRC-checked block records (format.ts), their
// indexes (segment-index.ts), the writer (journal.ts, writer-worker.ts) and readers
// (segment-reader.ts). JOURNAL.md documents the format and durability.
export { Journal, recordsOf } from './journal';
export type { FsyncPolicy, JournalDetailedStats, JournalOptions, JournalStall, JournalStats, Segment } from './journal';
export { crc32, crc32Table, hasNativeCrc32 } from './crc32';
export {
  FILE_MAGIC, FORMAT_VERSION, HEADER_SIZE, RECORD_MARKER, checkRecord, decodeAnyHeader, decodeHeader, parseRecord,
  segmentName,
} from './format';
export type { ParsedRecord, SegmentHeader } from './format';
export { SegmentIndex } from './segment-index';
export { readRange, scanSegment, scanSegmentFile } from './segment-reader';
export type { ScanOutcome } from './segment-reader';
