// The persistence journal: segment files of CRC-checked records (format.ts), the
// writer and replayer (journal.ts). JOURNAL.md documents the format and durability.
export { Journal } from './journal';
export type { FsyncPolicy, JournalDetailedStats, JournalOptions, JournalStats } from './journal';
export { crc32, crc32Table, hasNativeCrc32 } from './crc32';
export {
  FILE_MAGIC, FORMAT_VERSION, HEADER_SIZE, RECORD_MARKER, checkRecord, decodeHeader, recordSize,
  scanSegment, segmentName,
} from './format';
export type { ScanResult, SegmentHeader } from './format';
