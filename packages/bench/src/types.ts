// Shapes of the loadgen output and of the results file.
export type Workload = 'echo' | 'ack' | 'stream' | 'sparse' | 'idle-rss' | 'persist' | 'syscalls';

export interface LoadResult {
  mode: string;
  conns: number;
  idle: number;
  size: number;
  connected: number;
  connect_failed: number;
  closed_by_peer: number;
  errors: number;
  bad_replies: number;
  connect_seconds: number;
  seconds: number;
  messages: number;
  messages_total: number;
  msgs_per_sec: number;
  lines_sent?: number;
  drain_seconds?: number;
  /** stream --seq: connection i wrote the lines numbered 0 .. lines_per_conn[i]-1 */
  lines_per_conn?: number[];
  latency_us: { count: number; min: number; mean: number; p50: number; p90: number; p99: number; p999: number; max: number };
  client_cpu: { user: number; sys: number; utilization: number; saturated: boolean };
  server_cpu?: { user: number; sys: number; utilization: number };
  unanswered: number;
  rss_base_conns: number;
  server_rss_kb: { before: number; idle_held: number; end: number; hwm: number };
}

export interface RunRecord {
  load?: LoadResult;
  /** Reactor echo servers in Node's loop: that loop's delay over the server's life. */
  loopDelayMs?: { p50: number; p99: number; max: number };
  stored?: number;
  error?: string;
  warning?: string;
}

export interface Summary {
  runs: number;
  msgsPerSec: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  cpuPerM: number;
  serverUtil: number;
  clientUtil: number;
  hwmKb: number;
  refused: number;
  idleBytesPerConn?: number;
  /** Reactor echo servers: medians of the runs' event-loop delay p99 and max, ms. */
  loopP99?: number;
  loopMax?: number;
  stored?: number;
  lost?: number;
}

export interface Cell {
  key: string;
  workload: Workload;
  server: string;
  conns: number;
  idle: number;
  skip?: string;
  note?: string;
  runs: RunRecord[];
  summary?: Summary;
}

export interface SyscallRecord {
  server: string;
  mode: 'echo' | 'ack';
  conns: number;
  messages: number;
  calls: number;
  perMessage: number;
  top: Array<{ name: string; perMessage: number }>;
  error?: string;
}

export interface Config {
  quick: boolean;
  repeats: number;
  duration: number;
  warmup: number;
  size: number;
  conns: number[];
  ackConns: number[];
  active: number;
  idle: number[];
  idleConns: number;
  /** idle-rss: seconds the idle connections are held while the server's CPU is measured */
  idleCpuSeconds: number;
  streamConns: number;
  persistConns: number;
  syscallCount: number;
  syscalls: boolean;
  workloads: Workload[];
  only: string[];
  out: string;
  runMode: boolean;
  cModels: string[];
}

export interface Machine {
  cores: number;
  model: string;
  kernel: string;
  platform: string;
  node: string;
  memGiB: number;
  fdLimit: string;
  date: string;
  /** /proc/loadavg when the run started and when it ended (other work on the machine skews results). */
  loadavgStart?: string;
  loadavgEnd?: string;
}

export interface BenchResults {
  machine: Machine;
  config: Config;
  command: string;
  backends: Array<{ name: string; status: string; reason: string }>;
  notes: string[];
  compiler: string;
  cells: Cell[];
  syscalls: SyscallRecord[];
  syscallSkip?: string;
  elapsedSeconds: number;
}
