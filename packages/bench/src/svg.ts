// Hand-written SVG charts: line charts over categorical x values and grouped bar charts.
const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf', '#393b79', '#637939'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export function fmtNum(v: number): string {
  if (!Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toFixed(2)}M`;
  if (a >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  if (a >= 10) return `${Math.round(v)}`;
  return `${+v.toFixed(2)}`;
}

export interface Series {
  name: string;
  values: Array<number | null>;
}

export function lineChart(opts: { title: string; xTitle: string; yTitle: string; xLabels: string[]; series: Series[] }): string {
  const W = 760;
  const H = 420;
  const L = 70;
  const R = 190;
  const T = 40;
  const B = 50;
  const pw = W - L - R;
  const ph = H - T - B;
  const all = opts.series.flatMap((s) => s.values.filter((v): v is number => v !== null && Number.isFinite(v)));
  const ymax = niceMax(Math.max(0, ...all));
  const n = opts.xLabels.length;
  const x = (i: number): number => L + (n <= 1 ? pw / 2 : (i * pw) / (n - 1));
  const y = (v: number): number => T + ph - (v / ymax) * ph;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(opts.title)}</text>`);
  for (let k = 0; k <= 5; k++) {
    const v = (ymax * k) / 5;
    out.push(`<line x1="${L}" x2="${L + pw}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`);
    out.push(`<text x="${L - 6}" y="${y(v) + 4}" text-anchor="end">${fmtNum(v)}</text>`);
  }
  opts.xLabels.forEach((lab, i) => {
    out.push(`<line x1="${x(i)}" x2="${x(i)}" y1="${T + ph}" y2="${T + ph + 5}" stroke="#333"/>`);
    out.push(`<text x="${x(i)}" y="${T + ph + 18}" text-anchor="middle">${esc(lab)}</text>`);
  });
  out.push(`<line x1="${L}" x2="${L}" y1="${T}" y2="${T + ph}" stroke="#333"/>`);
  out.push(`<line x1="${L}" x2="${L + pw}" y1="${T + ph}" y2="${T + ph}" stroke="#333"/>`);
  out.push(`<text x="${L + pw / 2}" y="${H - 10}" text-anchor="middle">${esc(opts.xTitle)}</text>`);
  out.push(`<text transform="translate(16 ${T + ph / 2}) rotate(-90)" text-anchor="middle">${esc(opts.yTitle)}</text>`);
  opts.series.forEach((s, si) => {
    const col = PALETTE[si % PALETTE.length];
    const dash = si >= PALETTE.length ? ' stroke-dasharray="5 3"' : '';
    let d = '';
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === null || !Number.isFinite(v)) {
        pen = false;
        return;
      }
      d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)} ${y(v).toFixed(1)} `;
      pen = true;
    });
    if (d) out.push(`<path d="${d.trim()}" fill="none" stroke="${col}" stroke-width="2"${dash}/>`);
    s.values.forEach((v, i) => {
      if (v !== null && Number.isFinite(v)) out.push(`<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3" fill="${col}"><title>${esc(`${s.name}: ${fmtNum(v)}`)}</title></circle>`);
    });
    const ly = T + 10 + si * 18;
    out.push(`<line x1="${L + pw + 15}" x2="${L + pw + 35}" y1="${ly}" y2="${ly}" stroke="${col}" stroke-width="2"${dash}/>`);
    out.push(`<text x="${L + pw + 40}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** Grouped bars: one group per category (server), one bar per series (percentile). Log y axis. */
export function barChart(opts: { title: string; yTitle: string; groups: string[]; series: Series[] }): string {
  const W = Math.max(760, 120 + opts.groups.length * 70);
  const H = 440;
  const L = 70;
  const R = 120;
  const T = 40;
  const B = 90;
  const pw = W - L - R;
  const ph = H - T - B;
  const all = opts.series.flatMap((s) => s.values.filter((v): v is number => v !== null && Number.isFinite(v) && v > 0));
  const lo = Math.pow(10, Math.floor(Math.log10(Math.min(...all, 1))));
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...all, 10))));
  const y = (v: number): number => T + ph - ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * ph;
  const gw = pw / Math.max(1, opts.groups.length);
  const bw = (gw * 0.8) / Math.max(1, opts.series.length);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(opts.title)}</text>`);
  for (let e = Math.log10(lo); e <= Math.log10(hi) + 1e-9; e++) {
    const v = Math.pow(10, e);
    out.push(`<line x1="${L}" x2="${L + pw}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`);
    out.push(`<text x="${L - 6}" y="${y(v) + 4}" text-anchor="end">${fmtNum(v)}</text>`);
  }
  out.push(`<line x1="${L}" x2="${L}" y1="${T}" y2="${T + ph}" stroke="#333"/>`);
  out.push(`<line x1="${L}" x2="${L + pw}" y1="${T + ph}" y2="${T + ph}" stroke="#333"/>`);
  out.push(`<text transform="translate(16 ${T + ph / 2}) rotate(-90)" text-anchor="middle">${esc(opts.yTitle)}</text>`);
  opts.groups.forEach((g, gi) => {
    const gx = L + gi * gw + gw * 0.1;
    opts.series.forEach((s, si) => {
      const v = s.values[gi];
      if (v === null || !Number.isFinite(v) || v <= 0) return;
      const top = y(v);
      out.push(`<rect x="${(gx + si * bw).toFixed(1)}" y="${top.toFixed(1)}" width="${(bw - 1).toFixed(1)}" height="${(T + ph - top).toFixed(1)}" fill="${PALETTE[si % PALETTE.length]}"><title>${esc(`${g} ${s.name}: ${fmtNum(v)}`)}</title></rect>`);
    });
    const cx = L + gi * gw + gw / 2;
    out.push(`<text transform="translate(${cx.toFixed(1)} ${T + ph + 12}) rotate(35)" text-anchor="start">${esc(g)}</text>`);
  });
  opts.series.forEach((s, si) => {
    const ly = T + 10 + si * 18;
    out.push(`<rect x="${L + pw + 15}" y="${ly - 6}" width="14" height="12" fill="${PALETTE[si % PALETTE.length]}"/>`);
    out.push(`<text x="${L + pw + 35}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
