/**
 * CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, init/xorout 0xFFFFFFFF) — the same
 * checksum as zlib/gzip/PNG. Check value: crc32("123456789") === 0xCBF43926.
 *
 * Node >= 20.15 ships a native `zlib.crc32`; it is used when present. The table-driven
 * TypeScript implementation below is the fallback and the reference the tests compare against.
 */
import * as zlib from 'zlib';

const TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** Table-driven CRC-32 of bytes[start, end), continuing from `value` (a CRC so far). */
export function crc32Table(bytes: Uint8Array, start = 0, end = bytes.length, value = 0): number {
  let c = (value ^ 0xffffffff) >>> 0;
  for (let i = start; i < end; i++) c = TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

type NativeCrc = (data: Uint8Array, value?: number) => number;
const nativeCrc: NativeCrc | undefined =
  typeof (zlib as unknown as { crc32?: unknown }).crc32 === 'function'
    ? ((zlib as unknown as { crc32: NativeCrc }).crc32)
    : undefined;

/** Below this many bytes the JS loop beats the cost of a subarray + native call. */
const NATIVE_MIN = 64;

/** CRC-32 of bytes[start, end), continuing from `value` (the CRC of what precedes);
 *  native when available and worthwhile. */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length, value = 0): number {
  if (nativeCrc !== undefined && end - start >= NATIVE_MIN) {
    return nativeCrc(bytes.subarray(start, end), value) >>> 0;
  }
  return crc32Table(bytes, start, end, value);
}

export const hasNativeCrc32 = nativeCrc !== undefined;
