// Markdown tables, the targets of issue 12 and SVG charts for the store benchmark.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { barChart, fmtNum } from '../svg';
import type { IngestSummary, QueryCase, StoreResults, Target } from './types';

const ratio = (a: number, b: number): number => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : NaN);

function clean(s: IngestSummary | undefined): boolean {
  return Boolean(s && s.runs > 0 && s.lost === 0 && s.duplicates === 0 && s.unexpected === 0 && !s.incomplete);
}

function target(name: string, measured: number, goal: string, met: (v: number) => boolean, unit = '×', why?: string): Target {
  return { name: why ? `${name} (${why})` : name, measured, goal, met: Number.isFinite(measured) ? met(measured) : null, unit };
}

export function storeTargets(r: StoreResults): Target[] {
  const t: Target[] = [];
  const by = (id: string): IngestSummary | undefined => r.ingest.find((s) => s.peer === id);
  const journal = by('logcaster-journal');
  const rate = (s: IngestSummary | undefined): number => (s && s.runs ? s.linesPerSec : NaN);
  if (r.config.parts.includes('ingest')) {
    t.push(target('LogCaster --fsync interval / memory only', ratio(rate(journal), rate(by('logcaster-memory'))), '>= 0.8×', (v) => v >= 0.8));
    const rsys = ['rsyslog-imtcp', 'rsyslog-imptcp'].map(by).filter((s): s is IngestSummary => Boolean(s && s.runs));
    const best = rsys.sort((a, b) => b.linesPerSec - a.linesPerSec)[0];
    for (const s of rsys) {
      t.push(target(`LogCaster --fsync interval / ${s.peer}`, ratio(rate(journal), s.linesPerSec), '>= 2×', (v) => v >= 2, '×', s === best ? 'the faster rsyslog' : undefined));
    }
    if (!rsys.length) t.push(target('LogCaster --fsync interval / tuned rsyslog', NaN, '>= 2×', () => false));
    t.push(target('LogCaster --fsync interval / syslog-ng', ratio(rate(journal), rate(by('syslog-ng'))), '>= 1.5×', (v) => v >= 1.5));
    for (const s of r.ingest) if (!clean(s) && s.runs) t.push(target(`${s.peer} kept every line`, s.lost + s.duplicates + s.unexpected, '0 lost, 0 duplicated', (v) => v === 0 && !s.incomplete, ' lines wrong'));
  }
  const q = r.query?.cases ?? [];
  const speed = (c: QueryCase | undefined, tool: 'grep' | 'rg'): number => ratio(c?.[tool]?.seconds ?? NaN, c?.logcaster?.seconds ?? NaN);
  if (r.config.parts.includes('query')) {
    const kw = q.find((c) => c.name.startsWith('keyword, absent'));
    const re = q.find((c) => c.name.startsWith('regex'));
    t.push(target('full-scan keyword: grep -F time / LogCaster time', kw?.error ? NaN : speed(kw, 'grep'), '>= 1× (as fast as grep -F)', (v) => v >= 1));
    t.push(target('regex: LogCaster time / grep -E time', re?.error ? NaN : ratio(re?.logcaster?.seconds ?? NaN, re?.grep?.seconds ?? NaN), '<= 1.5×', (v) => v <= 1.5));
  }
  const h = r.history;
  if (r.config.parts.includes('history')) {
    const rare = h?.rare;
    t.push(target(`rare keyword over ${fmtNum(h?.lines ?? NaN)} lines: LogCaster / grep -F over the journal's files`, rare?.error ? NaN : ratio(rare?.logcaster?.seconds ?? NaN, rare?.grep?.seconds ?? NaN), '<= 0.25×', (v) => v <= 0.25));
    t.push(target('ingest during full-history scans / without', ratio(h?.ingestDuringScan ?? NaN, h?.ingestAlone ?? NaN), '>= 0.7×', (v) => v >= 0.7));
    t.push(target(`server peak RSS with ${fmtNum(h?.lines ?? NaN)} lines retained`, h?.hwmMb ?? NaN, '<= 256 MB', (v) => v <= 256, ' MB'));
  }
  return t;
}

function f2(v: number, unit = ''): string {
  return Number.isFinite(v) ? `${v.toFixed(2)}${unit}` : '–';
}

function secs(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  return v < 0.01 ? `${(v * 1000).toFixed(2)} ms` : `${v.toFixed(3)} s`;
}

export function renderStoreMarkdown(r: StoreResults, charts: string[]): string {
  const m = r.machine;
  const c = r.config;
  const out: string[] = [];
  out.push(`## Store benchmark${c.quick ? ' (--quick smoke run: the numbers mean nothing)' : ''}`, '');
  out.push(
    `Machine: ${m.cores} × ${m.model}, ${m.memGiB} GiB, Linux ${m.kernel} (${m.platform}), Node ${m.node}. ${m.date}. ` +
      `Took ${Math.round(r.elapsedSeconds)} s; load average ${m.loadavgStart} at the start, ${m.loadavgEnd} at the end.`,
    '',
  );
  out.push(`Command: \`${r.command}\``, '');
  const tools = Object.entries(r.tools).map(([k, v]) => `${k}: ${v}`);
  const versions = r.peers.filter((p) => p.version).map((p) => `${p.id}: ${p.version}`);
  if (tools.length || versions.length) out.push(`Versions: ${[...tools, ...versions].join('; ')}`, '');

  if (c.parts.includes('ingest')) {
    out.push(`### Streamed ingest into storage (${c.conns} connections, ${c.size} B numbered syslog lines, ${c.duration} s, medians of ${c.repeats})`, '');
    out.push('| peer | lines/s | CPU s / M lines | server cores | client cores | peak RSS MB | lines sent | lost | duplicated | unexpected | reordered | output checked |');
    out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|');
    for (const p of r.peers) {
      const s = r.ingest.find((x) => x.peer === p.id);
      if (p.skip || !s) {
        out.push(`| ${p.id} | skipped: ${p.skip ?? 'not run'} | | | | | | | | | | |`);
        continue;
      }
      if (!s.runs) {
        out.push(`| ${p.id} | failed: ${s.error ?? '?'} | | | | | | | | | | |`);
        continue;
      }
      const fail = s.failed ? ` (${s.failed} run(s) failed: ${s.error})` : '';
      out.push(
        `| ${p.id} | ${fmtNum(s.linesPerSec)}${s.incomplete ? ' (incomplete)' : ''} | ${f2(s.cpuPerMLines)} | ${f2(s.serverUtil)} | ${f2(s.clientUtil)} | ${f2(s.peakRssMb, '')} | ${fmtNum(s.sent)} | ${s.lost} | ${s.duplicates} | ${s.unexpected} | ${s.outOfOrder} | ${s.checked}${fail} |`,
      );
    }
    out.push('');
    out.push('Configurations:', '');
    for (const p of r.peers) out.push(`- **${p.id}**: \`${p.config}\``);
    out.push('');
  }

  const qrow = (q: QueryCase, lines: number): string => {
    const x = ratio(q.logcaster?.seconds ?? NaN, q.grep?.seconds ?? NaN);
    return `| ${q.name} | \`${q.command}\` | ${secs(q.logcaster?.seconds)} | ${secs(q.grep?.seconds)} | ${secs(q.rg?.seconds)} | ${f2(x, '×')} | ${q.logcaster?.count ?? q.grep?.count ?? '–'} of ${fmtNum(lines)} |${q.error ? ` ${q.error}` : ''}`;
  };
  if (r.query) {
    const q = r.query;
    out.push(`### Queries over ${fmtNum(q.lines)} realistic lines (${fmtNum(q.bytes / 1e6)} MB) held in memory, medians of ${c.repeats}`, '');
    if (q.error) out.push(`Failed: ${q.error}`, '');
    out.push('| query | command | LogCaster | `grep` | `rg` | LogCaster / grep | matches | |');
    out.push('|---|---|---:|---:|---:|---:|---:|---|');
    for (const x of q.cases) out.push(qrow(x, q.lines));
    out.push('', `grep and rg read the same lines from a file in the page cache (\`LC_ALL=C\`, \`-c\`); LogCaster's time runs from sending the command to the last byte of its answer. Server RSS after the queries: ${f2(q.rssMb, ' MB')}.`, '');
  }
  if (r.history) {
    const h = r.history;
    out.push(`### History: ${fmtNum(h.lines)} lines (${fmtNum(h.bytes / 1e6)} MB) retained, \`--capacity ${h.capacity}\` in memory, the rest in the journal`, '');
    if (h.error) out.push(`Failed: ${h.error}`, '');
    out.push(
      `Loaded in ${f2(h.loadSeconds, ' s')} (${fmtNum(h.lines / h.loadSeconds)} lines/s); journal ${h.journalFiles} segment files, ${fmtNum(h.journalBytes / 1e6)} MB; ` +
        `every token filter built ${f2(h.filterSeconds, ' s')} after the last line was persisted (queries are timed from then on).`,
      '',
    );
    out.push('| query | command | LogCaster | `grep` over the journal\'s files | `rg` | LogCaster / grep | matches | |');
    out.push('|---|---|---:|---:|---:|---:|---:|---|');
    if (h.rare) out.push(qrow(h.rare, h.lines));
    if (h.full) out.push(qrow(h.full, h.lines));
    out.push('');
    out.push('| ingest | lines/s (median) | runs |', '|---|---:|---|');
    out.push(`| alone | ${fmtNum(h.ingestAlone)} | ${h.ingestAloneRuns.map(fmtNum).join(', ')} |`);
    out.push(`| during full-history scans (\`REGEX [xz][yq][jk][0-9]{4}\`, back to back; ${h.scansDuringIngest} scans) | ${fmtNum(h.ingestDuringScan)} | ${h.ingestDuringScanRuns.map(fmtNum).join(', ')} |`);
    out.push('', `Server RSS: ${f2(h.rssAfterLoadMb, ' MB')} after loading, ${f2(h.rssAfterQueriesMb, ' MB')} after the queries and ingest, peak ${f2(h.hwmMb, ' MB')}.`, '');
  }
  out.push('### Targets (issue 12)', '', '| target | measured | goal | |', '|---|---:|---:|---|');
  for (const t of r.targets) {
    const v = Number.isFinite(t.measured) ? (t.unit === '×' ? `${t.measured.toFixed(2)}×` : `${fmtNum(t.measured)}${t.unit}`) : 'not measured';
    out.push(`| ${t.name} | ${v} | ${t.goal} | ${t.met === null ? 'n/a' : t.met ? 'met' : '**missed**'} |`);
  }
  out.push('');
  if (charts.length) {
    out.push('Charts:', '');
    for (const ch of charts) out.push(`![${ch.replace(/\.svg$/, '')}](${ch})`);
    out.push('');
  }
  return out.join('\n');
}

export function writeStoreCharts(r: StoreResults, dir: string): string[] {
  const written: string[] = [];
  const put = (name: string, svg: string): void => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, svg);
    written.push(p);
  };
  const ran = r.ingest.filter((s) => s.runs > 0);
  if (ran.length) {
    put(
      'store-ingest.svg',
      barChart({
        title: `Streamed ingest into storage, ${r.config.conns} connections (lines/s, every line checked)`,
        yTitle: 'lines/s (log scale)',
        groups: ran.map((s) => s.peer),
        series: [{ name: 'lines/s', values: ran.map((s) => s.linesPerSec) }],
      }),
    );
  }
  const cases = [...(r.query?.cases ?? []), ...(r.history?.rare ? [r.history.rare] : []), ...(r.history?.full ? [r.history.full] : [])].filter((q) => q.logcaster || q.grep);
  if (cases.length) {
    put(
      'store-queries.svg',
      barChart({
        title: 'Query time: LogCaster vs grep and ripgrep on the same lines (s, lower is better)',
        yTitle: 'seconds (log scale)',
        groups: cases.map((q) => q.name),
        series: [
          { name: 'LogCaster', values: cases.map((q) => q.logcaster?.seconds ?? null) },
          { name: 'grep', values: cases.map((q) => q.grep?.seconds ?? null) },
          { name: 'rg', values: cases.map((q) => q.rg?.seconds ?? null) },
        ],
      }),
    );
  }
  return written;
}
