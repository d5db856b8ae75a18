// Lines per second over the last minutes, for the web console's chart: one sample a
// second of a growing counter, kept in a ring. Its timer is unref'd.

export interface RateSeries {
  intervalSeconds: number;
  /** Samples the ring holds when full. */
  capacity: number;
  /** Lines per interval, oldest first. */
  values: number[];
}

export class RateHistory {
  private readonly ring: Float64Array;
  private filled = 0;
  private at = 0;
  private last: number;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly read: () => number,
    readonly capacity = 300,
    readonly intervalMs = 1000,
  ) {
    this.ring = new Float64Array(capacity);
    this.last = read();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  private sample(): void {
    const now = this.read();
    // A counter that went back (CLEAR does not, but a restarted source would) counts as 0.
    this.ring[this.at] = Math.max(0, now - this.last);
    this.last = now;
    this.at = (this.at + 1) % this.capacity;
    if (this.filled < this.capacity) this.filled++;
  }

  series(): RateSeries {
    const values: number[] = [];
    for (let i = this.filled; i > 0; i--) values.push(this.ring[(this.at - i + this.capacity) % this.capacity] / (this.intervalMs / 1000));
    return { intervalSeconds: this.intervalMs / 1000, capacity: this.capacity, values };
  }

  close(): void {
    clearInterval(this.timer);
  }
}
