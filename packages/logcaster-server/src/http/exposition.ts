// The Prometheus text exposition format, version 0.0.4: HELP and TYPE lines, then one
// sample per line; label values escaped. Only what the server's metrics need.

export type Labels = Readonly<Record<string, string>>;
export type Sample = readonly [Labels, number];

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Cumulative buckets with fixed upper bounds, plus sum and count. */
export class Histogram {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }
  observe(v: number): void {
    this.sum += v;
    this.count++;
    for (let i = 0; i < this.bounds.length; i++) if (v <= this.bounds[i]) this.counts[i]++;
  }
}

export class Exposition {
  private text = '';

  counter(name: string, help: string, samples: number | readonly Sample[]): this {
    return this.family(name, 'counter', help, samples);
  }

  gauge(name: string, help: string, samples: number | readonly Sample[]): this {
    return this.family(name, 'gauge', help, samples);
  }

  /** One histogram family; `series` pairs each histogram with its labels. */
  histogram(name: string, help: string, series: readonly (readonly [Labels, Histogram])[]): this {
    this.text += `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} histogram\n`;
    for (const [labels, h] of series) {
      h.bounds.forEach((le, i) => (this.text += sample(`${name}_bucket`, { ...labels, le: String(le) }, h.counts[i])));
      this.text += sample(`${name}_bucket`, { ...labels, le: '+Inf' }, h.count);
      this.text += sample(`${name}_sum`, labels, h.sum);
      this.text += sample(`${name}_count`, labels, h.count);
    }
    return this;
  }

  toString(): string {
    return this.text;
  }

  private family(name: string, type: string, help: string, samples: number | readonly Sample[]): this {
    this.text += `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`;
    if (typeof samples === 'number') this.text += sample(name, {}, samples);
    else for (const [labels, v] of samples) this.text += sample(name, labels, v);
    return this;
  }
}

function sample(name: string, labels: Labels, value: number): string {
  const keys = Object.keys(labels);
  const l = keys.length === 0 ? '' : `{${keys.map((k) => `${k}="${escapeLabel(labels[k])}"`).join(',')}}`;
  return `${name}${l} ${formatValue(value)}\n`;
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}
