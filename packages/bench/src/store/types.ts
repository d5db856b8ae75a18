// Shapes of the store benchmark's results file (packages/bench/results/store/latest.json).
import type { Machine } from '../types';
import type { IngestRun } from './ingest';
import type { ToolTimes } from './queries';

export type Part = 'ingest' | 'query' | 'history';

export interface StoreConfig {
  quick: boolean;
  parts: Part[];
  peers: string[];
  repeats: number;
  duration: number;
  conns: number;
  size: number;
  queryLines: number;
  historyLines: number;
  /** seconds of ingest with and without a concurrent full-history scan */
  scanIngestSeconds: number;
  backend: string;
  out: string;
}

export interface PeerInfo {
  id: string;
  config: string;
  version?: string;
  skip?: string;
}

export interface IngestSummary {
  peer: string;
  runs: number;
  failed: number;
  error?: string;
  linesPerSec: number;
  cpuPerMLines: number;
  serverUtil: number;
  clientUtil: number;
  peakRssMb: number;
  /** worst over the runs */
  lost: number;
  duplicates: number;
  unexpected: number;
  outOfOrder: number;
  incomplete: boolean;
  checked: string;
  sent: number;
}

export interface QueryCase {
  name: string;
  command: string;
  logcaster?: ToolTimes;
  grep?: ToolTimes;
  rg?: ToolTimes;
  error?: string;
}

export interface QueryPart {
  lines: number;
  bytes: number;
  cases: QueryCase[];
  rssMb: number;
  error?: string;
}

export interface HistoryPart {
  lines: number;
  bytes: number;
  capacity: string;
  journalBytes: number;
  journalFiles: number;
  loadSeconds: number;
  /** From the last line persisted until every finished segment had its token filter. */
  filterSeconds: number;
  rare?: QueryCase;
  full?: QueryCase;
  rssAfterLoadMb: number;
  rssAfterQueriesMb: number;
  hwmMb: number;
  /** ingest lines/s without and with a concurrent full-history scan (medians) */
  ingestAlone: number;
  ingestDuringScan: number;
  ingestAloneRuns: number[];
  ingestDuringScanRuns: number[];
  scansDuringIngest: number;
  error?: string;
}

export interface Target {
  name: string;
  measured: number;
  goal: string;
  met: boolean | null;
  unit: string;
}

export interface StoreResults {
  machine: Machine & { loadavgStart: string; loadavgEnd: string };
  command: string;
  config: StoreConfig;
  tools: Record<string, string>;
  peers: PeerInfo[];
  ingestRuns: IngestRun[];
  ingest: IngestSummary[];
  query?: QueryPart;
  history?: HistoryPart;
  targets: Target[];
  elapsedSeconds: number;
}
