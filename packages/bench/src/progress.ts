// A progress bar with an ETA on stderr (one line per step when stderr is not a terminal).
export class Progress {
  private done = 0;
  private doneWeight = 0;
  private readonly t0 = Date.now();
  private readonly tty = Boolean(process.stderr.isTTY);

  constructor(
    private readonly total: number,
    private readonly totalWeight: number,
  ) {}

  step(label: string, weight: number): void {
    this.done++;
    this.doneWeight += weight;
    const elapsed = (Date.now() - this.t0) / 1000;
    const rate = this.doneWeight > 0 ? elapsed / this.doneWeight : 0;
    const eta = Math.max(0, (this.totalWeight - this.doneWeight) * rate);
    const width = 28;
    const frac = this.totalWeight ? Math.min(1, this.doneWeight / this.totalWeight) : 1;
    const filled = Math.round(frac * width);
    const bar = '#'.repeat(filled) + '.'.repeat(width - filled);
    const line = `[${bar}] ${this.done}/${this.total} ${(frac * 100).toFixed(0)}% ETA ${fmt(eta)}  ${label}`;
    if (this.tty) process.stderr.write(`\r\x1b[K${line.slice(0, (process.stderr.columns || 120) - 1)}`);
    else process.stderr.write(`${line}\n`);
  }

  note(msg: string): void {
    if (this.tty) process.stderr.write(`\r\x1b[K${msg}\n`);
    else process.stderr.write(`${msg}\n`);
  }

  finish(): void {
    if (this.tty) process.stderr.write('\n');
  }
}

function fmt(s: number): string {
  const m = Math.floor(s / 60);
  const r = Math.round(s % 60);
  return m ? `${m}m${String(r).padStart(2, '0')}s` : `${r}s`;
}
