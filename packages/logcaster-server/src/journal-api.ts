// The persistence journal as the server sees it (implemented in ./journal). Loaded at
// run time so the server also works, memory-only, where the journal is not built.

export type FsyncPolicy = 'never' | 'interval' | 'always';

export interface JournalOptions {
  dir: string;
  /** rotate before a record would make the current segment exceed this many bytes */
  rotateSize: number;
  /** segment files kept, including the one being written (oldest deleted first) */
  maxFiles: number;
  fsync: FsyncPolicy;
  /** for 'interval' (default 1000) */
  fsyncIntervalMs?: number;
}

export interface JournalStats {
  /** records handed to the OS by this Journal since open */
  persistedLines: number;
  /** bytes (framing included) handed to the OS by this Journal since open */
  persistedBytes: number;
  /** segment files currently in the directory */
  files: number;
  /** damaged regions skipped or truncated (torn tails, bad CRCs) seen at open and in replay */
  tornRecordsSkipped: number;
  /** fdatasync/fsync calls issued on segment files */
  fsyncs: number;
}

export interface JournalLike {
  replay(max: number, onEntry: (timeMs: number, peer: string, line: Buffer) => void): { loaded: number; tornSkipped: number };
  append(timeMs: number, peer: string, line: Uint8Array): number;
  onDurable(cb: (seq: number) => void): void;
  flush(): void;
  close(): Promise<void>;
  readonly stats: JournalStats;
}

export interface JournalModule {
  Journal: { open(opts: JournalOptions): JournalLike };
}

/** The journal module, or undefined when it is not present in this build. */
export function loadJournalModule(): JournalModule | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require('./journal') as JournalModule;
    return typeof mod?.Journal?.open === 'function' ? mod : undefined;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'MODULE_NOT_FOUND' && /['"]\.\/journal['"]/.test(err.message)) return undefined;
    throw e;
  }
}
