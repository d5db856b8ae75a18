// Parsing of human-friendly sizes and durations given on the command line.

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};

/** "64k" → 65536, "16M" → 16777216, "1000" → 1000. Binary units (k = 1024).
 *  Returns undefined for anything else (negative, fractional bytes, unknown unit). */
export function parseSize(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  if (!m) return undefined;
  const unit = SIZE_UNITS[m[2].toLowerCase()];
  if (unit === undefined) return undefined;
  const value = Number(m[1]) * unit;
  if (!Number.isFinite(value) || !Number.isInteger(value)) return undefined;
  return value;
}

/** A plain non-negative integer count, with the same suffixes as sizes but decimal
 *  (1k = 1000): "--capacity 200k". */
export function parseCount(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*$/.exec(text);
  if (!m) return undefined;
  const mult = m[2] === '' ? 1 : m[2].toLowerCase() === 'k' ? 1000 : 1_000_000;
  const value = Number(m[1]) * mult;
  if (!Number.isFinite(value) || !Number.isInteger(value)) return undefined;
  return value;
}

/** The inverse of parseSize for display: 65536 → '64k', 16777216 → '16M', 1000 → '1000'. */
export function formatSize(bytes: number): string {
  for (const [unit, size] of [['T', 1024 ** 4], ['G', 1024 ** 3], ['M', 1024 ** 2], ['k', 1024]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return String(bytes);
}

const DURATION_UNITS: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86400, w: 7 * 86400 };

/** Whole seconds: "3600", "90m", "12h", "30d", "2w" (s m h d w). Undefined for anything
 *  else (fractions of a second, unknown units). */
export function parseDuration(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$/.exec(text);
  if (!m) return undefined;
  const value = Number(m[1]) * DURATION_UNITS[m[2]];
  if (!Number.isFinite(value) || !Number.isInteger(value)) return undefined;
  return value;
}

/** The inverse of parseDuration for display: 86400 → '1d', 5400 → '90m', 0 → '0'. */
export function formatDuration(seconds: number): string {
  for (const [unit, size] of [['w', 7 * 86400], ['d', 86400], ['h', 3600], ['m', 60]] as const) {
    if (seconds >= size && seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return seconds === 0 ? '0' : `${seconds}s`;
}
