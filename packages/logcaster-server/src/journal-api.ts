// The persistence journal as the server sees it (implemented in ./journal). Loaded at
// run time so the server also works, memory-only, where the journal is not built.

export type FsyncPolicy = 'never' | 'interval' | 'always';

export interface JournalOptions {
  dir: string;
  rotateSize: number;
  maxFiles: number;
  fsync: FsyncPolicy;
  fsyncIntervalMs?: number;
}

export interface JournalStats {
  persistedLines: number;
  persistedBytes: number;
  files: number;
  tornRecordsSkipped: number;
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
