// Whether the machine has a core to spare, from its CPU times over the last interval.
// Background work (token filters) waits for one: on a machine whose cores ingestion
// fills, a filter build running beside it cost streamed ingest a fifth of its rate (store
// benchmark, 2 cores: 0.72-0.84× memory-only with builds, 0.89-0.90× without).
import * as os from 'node:os';

/** How long one measurement stands. */
const SAMPLE_MS = 250;

interface CpuTimes {
  idle: number;
  total: number;
  cores: number;
}

/** One read of /proc/stat (through os.cpus()), summed over the cores. */
function cpuTimes(): CpuTimes {
  const cpus = os.cpus();
  let idle = 0;
  let total = 0;
  for (const c of cpus) {
    const t = c.times;
    idle += t.idle;
    total += t.user + t.nice + t.sys + t.idle + t.irq;
  }
  return { idle, total, cores: cpus.length };
}

export class CpuHeadroom {
  private last = cpuTimes();
  private lastAt = Date.now();
  private spare = true;

  /** Whether the last interval left at least one core's worth of idle time, summed over cores. */
  spareCore(): boolean {
    const now = Date.now();
    if (now - this.lastAt < SAMPLE_MS) return this.spare;
    const t = cpuTimes();
    const total = t.total - this.last.total;
    // Whole-machine times are kept per core; idle / total of them, times cores, is the
    // number of cores that were idle on average.
    if (total > 0) this.spare = ((t.idle - this.last.idle) / total) * t.cores >= 1;
    this.last = t;
    this.lastAt = now;
    return this.spare;
  }
}
