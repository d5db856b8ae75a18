// Markdown tables, the targets check and the SVG charts from one results object.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { barChart, fmtNum, lineChart } from './svg';
import type { BenchResults, Cell, Workload } from './types';

function find(r: BenchResults, w: Workload, server: string, conns?: number, idle = 0): Cell | undefined {
  return r.cells.find((c) => c.workload === w && c.server === server && (conns === undefined || c.conns === conns) && c.idle === idle);
}

const ms = (us: number): string => (Number.isFinite(us) ? (us / 1000).toFixed(us < 10000 ? 3 : 1) : '–');
const num = (v: number | undefined, d = 2): string => (v !== undefined && Number.isFinite(v) ? v.toFixed(d) : '–');

function serversOf(r: BenchResults, w: Workload): string[] {
  const order = (id: string): number => {
    const fam = id.startsWith('c-') ? 0 : id === 'node-net' ? 1 : id.startsWith('reactor-') ? 2 : 3;
    const be = ['select', 'poll', 'epoll', 'kqueue', 'iouring'].findIndex((b) => id.endsWith(b));
    return fam * 10 + (be < 0 ? 9 : be);
  };
  return [...new Set(r.cells.filter((c) => c.workload === w).map((c) => c.server))].sort((a, b) => order(a) - order(b));
}

function cellText(c: Cell | undefined): string {
  if (!c) return '';
  if (c.skip) return 'n/a¹';
  if (!c.summary) return 'failed';
  return fmtNum(c.summary.msgsPerSec) + (c.summary.refused > 0 ? '²' : '');
}

function detailTable(r: BenchResults, w: Workload, label: (c: Cell) => string): string[] {
  const out: string[] = [];
  out.push(`| server | ${w === 'sparse' ? 'idle conns' : 'conns'} | msgs/s | p50 ms | p90 ms | p99 ms | p99.9 ms | server CPU s / M msgs | server util | client util | peak RSS MB | notes |`);
  out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const s of serversOf(r, w)) {
    for (const c of r.cells.filter((x) => x.workload === w && x.server === s)) {
      const m = c.summary;
      if (c.skip) {
        out.push(`| ${s} | ${label(c)} | n/a | | | | | | | | | ${c.skip} |`);
        continue;
      }
      if (!m) {
        out.push(`| ${s} | ${label(c)} | failed | | | | | | | | | ${c.runs.find((x) => x.error)?.error ?? ''} |`);
        continue;
      }
      const extra = w === 'stream' ? ` stored ${m.stored}, lost ${m.lost}` : '';
      out.push(
        `| ${s} | ${label(c)} | ${fmtNum(m.msgsPerSec)} | ${ms(m.p50)} | ${ms(m.p90)} | ${ms(m.p99)} | ${ms(m.p999)} | ${num(m.cpuPerM)} | ${num(m.serverUtil)} | ${num(m.clientUtil)} | ${num(m.hwmKb / 1024, 1)} | ${[c.note, extra].filter(Boolean).join(';')} |`,
      );
    }
  }
  return out;
}

interface Target {
  name: string;
  value: string;
  goal: string;
  met: boolean | undefined;
}

function ratio(a: number | undefined, b: number | undefined): number {
  return a !== undefined && b !== undefined && b > 0 ? a / b : NaN;
}

export function targets(r: BenchResults): Target[] {
  const t: Target[] = [];
  const rate = (w: Workload, s: string, n?: number, idle = 0): number | undefined => find(r, w, s, n, idle)?.summary?.msgsPerSec;
  const add = (name: string, v: number, goal: number, op: '>=' | '<=', unit = '×'): void => {
    t.push({
      name,
      value: Number.isFinite(v) ? `${v.toFixed(2)}${unit}` : 'not measured',
      goal: `${op} ${goal}${unit}`,
      met: Number.isFinite(v) ? (op === '>=' ? v >= goal : v <= goal) : undefined,
    });
  };
  const busy = r.config.conns.includes(1000) ? 1000 : Math.max(...r.config.conns);
  const reactors = serversOf(r, 'echo').filter((s) => s.startsWith('reactor-'));
  add(`reactor-epoll / node:net echo @${busy}`, ratio(rate('echo', 'reactor-epoll', busy), rate('echo', 'node-net', busy)), 1.3, '>=');
  add(`reactor-epoll / C epoll echo @${busy}`, ratio(rate('echo', 'reactor-epoll', busy), rate('echo', 'c-epoll', busy)), 0.8, '>=');
  add(`reactor-iouring / reactor-epoll echo @${busy}`, ratio(rate('echo', 'reactor-iouring', busy), rate('echo', 'reactor-epoll', busy)), 1.1, '>=');
  for (const b of ['poll', 'select']) {
    add(`reactor-${b} / reactor-epoll echo @${busy}`, ratio(rate('echo', `reactor-${b}`, busy), rate('echo', 'reactor-epoll', busy)), 0.5, '>=');
  }
  const p99 = (s: string): number | undefined => find(r, 'echo', s, 1)?.summary?.p99;
  for (const s of reactors) {
    add(`${s} p99 @1 conn / node:net p99`, ratio(p99(s), p99('node-net')), 1.0, '<=');
    add(`${s} p99 @1 conn / C epoll p99`, ratio(p99(s), p99('c-epoll')), 1.2, '<=');
  }
  const idleKb = (s: string): number => (find(r, 'idle-rss', s)?.summary?.idleBytesPerConn ?? NaN) / 1024;
  for (const s of serversOf(r, 'idle-rss')) {
    if (s.startsWith('reactor-') || s.startsWith('logcaster-')) add(`${s} RSS per idle conn @${r.config.idleConns}`, idleKb(s), 2, '<=', ' KB');
  }
  const ackN = r.config.ackConns.includes(1000) ? 1000 : Math.max(...r.config.ackConns);
  for (const s of serversOf(r, 'ack').filter((x) => x.startsWith('logcaster-'))) {
    add(`${s} --ack / node:net ingest @${ackN}`, ratio(rate('ack', s, ackN), rate('ack', 'node-net', ackN)), 1.3, '>=');
  }
  for (const s of serversOf(r, 'stream').filter((x) => x.startsWith('logcaster-'))) {
    add(`${s} streamed / node:net streamed`, ratio(rate('stream', s), rate('stream', 'node-net')), 1.5, '>=');
  }
  for (const s of serversOf(r, 'persist')) {
    const pc = r.config.persistConns;
    add(`${s} --fsync interval / memory-only @${pc}`, ratio(rate('persist', s, pc), rate('ack', s, pc)), 0.7, '>=');
  }
  return t;
}

export function renderMarkdown(r: BenchResults, charts: string[]): string {
  const m = r.machine;
  const out: string[] = [];
  out.push(`## LogCaster benchmark — ${m.date}`);
  out.push('');
  out.push(`Machine: ${m.cores} × ${m.model}, ${m.memGiB} GiB, Linux ${m.kernel} (${m.platform}), Node ${m.node}, open files ${m.fdLimit}. ` +
    `Client and server share these cores. Message size ${r.config.size} B, ${r.config.repeats} repeat(s) per cell (medians), ` +
    `${r.config.duration} s measured after ${r.config.warmup} s warm-up. Took ${Math.round(r.elapsedSeconds)} s; load average ${m.loadavgStart ?? '?'} at the start, ${m.loadavgEnd ?? '?'} at the end.`);
  out.push('');
  out.push(`Command: \`${r.command}\``);
  out.push('');
  out.push('Backends: ' + (r.backends.length ? r.backends.map((b) => `${b.name} ${b.status === 'loaded' ? 'loaded' : `**${b.status}** (${b.reason})`}`).join('; ') : 'none'));
  for (const n of r.notes) out.push(`\n> ${n}`);
  out.push('');

  const matrix = (w: Workload, title: string, conns: number[]): void => {
    const servers = serversOf(r, w);
    if (!servers.length) return;
    out.push(`### ${title} (msgs/s, median)`);
    out.push('');
    out.push(`| server | ${conns.map((n) => `${n} conn${n === 1 ? '' : 's'}`).join(' | ')} |`);
    out.push(`|---|${conns.map(() => '---:').join('|')}|`);
    for (const s of servers) out.push(`| ${s} | ${conns.map((n) => cellText(find(r, w, s, n))).join(' | ')} |`);
    out.push('');
  };
  matrix('echo', `Echo ping-pong, ${r.config.size} B`, r.config.conns);
  matrix('ack', `Ack ingest (line → OK), ${r.config.size} B lines`, r.config.ackConns);
  const sparse = serversOf(r, 'sparse');
  if (sparse.length) {
    out.push(`### Sparse activity: ${r.config.active} active ping-pong connections + idle ones (msgs/s, median)`);
    out.push('');
    out.push(`| server | ${r.config.idle.map((k) => `${k} idle`).join(' | ')} |`);
    out.push(`|---|${r.config.idle.map(() => '---:').join('|')}|`);
    for (const s of sparse) out.push(`| ${s} | ${r.config.idle.map((k) => cellText(find(r, 'sparse', s, r.config.active, k))).join(' | ')} |`);
    out.push('');
  }
  const loopServers = serversOf(r, 'echo').filter((s) => r.cells.some((c) => c.workload === 'echo' && c.server === s && c.summary?.loopP99 !== undefined));
  if (loopServers.length) {
    out.push("### Node's event loop beside the reactor: delay p99 / max in ms during echo (median)");
    out.push('');
    out.push('What an application sharing the process would wait, at worst, for its timers and I/O (`monitorEventLoopDelay`, 10 ms resolution).');
    out.push('');
    out.push(`| server | ${r.config.conns.map((n) => `${n} conn${n === 1 ? '' : 's'}`).join(' | ')} |`);
    out.push(`|---|${r.config.conns.map(() => '---:').join('|')}|`);
    for (const s of loopServers) {
      const at = (n: number): string => {
        const c = find(r, 'echo', s, n)?.summary;
        return c?.loopP99 !== undefined ? `${num(c.loopP99, 1)} / ${num(c.loopMax, 1)}` : '–';
      };
      out.push(`| ${s} | ${r.config.conns.map(at).join(' | ')} |`);
    }
    out.push('');
  }
  const single: string[] = [];
  for (const s of serversOf(r, 'stream')) {
    const c = find(r, 'stream', s);
    single.push(`| streamed ingest, ${r.config.streamConns} conns | ${s} | ${c?.summary ? fmtNum(c.summary.msgsPerSec) + ' lines/s' : c?.skip ?? 'failed'} | ${c?.summary ? `stored ${c.summary.stored}, lost ${c.summary.lost}` : ''} |`);
  }
  for (const s of serversOf(r, 'persist')) {
    const c = find(r, 'persist', s);
    single.push(`| --ack --fsync interval, ${r.config.persistConns} conns | ${s} | ${c?.summary ? fmtNum(c.summary.msgsPerSec) + ' msgs/s' : 'failed'} | ${c?.note ?? ''} |`);
  }
  for (const s of serversOf(r, 'idle-rss')) {
    const c = find(r, 'idle-rss', s);
    const v = c?.summary?.idleBytesPerConn;
    single.push(`| RSS per idle connection (${r.config.idleConns} held) | ${s} | ${v !== undefined && Number.isFinite(v) ? `${(v / 1024).toFixed(2)} KB` : c?.skip ?? 'failed'} | ${c?.note ?? ''} |`);
    const util = c?.summary?.serverUtil;
    if (util !== undefined && Number.isFinite(util)) {
      single.push(`| server CPU while they idle (${r.config.idleCpuSeconds} s) | ${s} | ${(util * 100).toFixed(2)}% of a core | |`);
    }
  }
  if (single.length) {
    out.push('### Streamed ingest, persistence, idle memory');
    out.push('');
    out.push('| workload | server | result | notes |');
    out.push('|---|---|---:|---|');
    out.push(...single);
    out.push('');
  }
  if (r.syscalls.length || r.syscallSkip) {
    out.push(`### Syscalls per message (strace -c -f, ${r.config.syscallCount} messages over 100 connections, server side)`);
    out.push('');
    if (r.syscallSkip) out.push(`Skipped: ${r.syscallSkip}.`);
    else {
      out.push('| server | workload | syscalls / msg | top calls per msg |');
      out.push('|---|---|---:|---|');
      for (const s of r.syscalls) {
        out.push(`| ${s.server} | ${s.mode} | ${s.error ? 'failed' : s.perMessage.toFixed(2)} | ${s.error ?? s.top.map((x) => `${x.name} ${x.perMessage.toFixed(2)}`).join(', ')} |`);
      }
    }
    out.push('');
  }
  const t = targets(r);
  if (t.length) {
    out.push('### Targets');
    out.push('');
    out.push('| target | measured | goal | |');
    out.push('|---|---:|---:|---|');
    for (const x of t) out.push(`| ${x.name} | ${x.value} | ${x.goal} | ${x.met === undefined ? 'n/a' : x.met ? 'met' : '**missed**'} |`);
    out.push('');
  }
  out.push('### Details');
  out.push('');
  for (const [w, title] of [
    ['echo', 'Echo ping-pong'],
    ['ack', 'Ack ingest'],
    ['stream', 'Streamed ingest (lines stored / s)'],
    ['sparse', 'Sparse activity'],
    ['persist', 'Ack ingest with --fsync interval'],
  ] as Array<[Workload, string]>) {
    if (!serversOf(r, w).length) continue;
    out.push(`#### ${title}`);
    out.push('');
    out.push(...detailTable(r, w, (c) => String(w === 'sparse' ? c.idle : c.conns)));
    out.push('');
  }
  out.push('¹ n/a: the backend cannot hold that many descriptors (select: fd >= FD_SETSIZE = 1024). ² some connections were refused or closed by the server (see details).');
  out.push('"client util" is the load generator\'s CPU over the window in cores; near 1.0 it is saturated and the figure is a lower bound of the server\'s capacity.');
  if (charts.length) {
    out.push('');
    out.push(`Charts: ${charts.join(', ')}`);
  }
  out.push('');
  return out.join('\n');
}

export function writeCharts(r: BenchResults, dir: string): string[] {
  const files: string[] = [];
  const write = (name: string, svg: string): void => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, svg);
    files.push(p);
  };
  const perConns = (w: Workload, title: string, conns: number[], file: string): void => {
    const servers = serversOf(r, w);
    if (!servers.length) return;
    write(
      file,
      lineChart({
        title,
        xTitle: 'connections',
        yTitle: 'messages / s (median)',
        xLabels: conns.map(String),
        series: servers.map((s) => ({ name: s, values: conns.map((n) => find(r, w, s, n)?.summary?.msgsPerSec ?? null) })),
      }),
    );
  };
  perConns('echo', `Echo ping-pong throughput, ${r.config.size} B`, r.config.conns, 'throughput-echo.svg');
  perConns('ack', `Ack ingest throughput, ${r.config.size} B lines`, r.config.ackConns, 'throughput-ack.svg');
  for (const n of [1, r.config.conns.includes(1000) ? 1000 : r.config.conns[r.config.conns.length - 1]]) {
    const servers = serversOf(r, 'echo').filter((s) => find(r, 'echo', s, n)?.summary);
    if (!servers.length) continue;
    const pick = (k: 'p50' | 'p90' | 'p99' | 'p999'): Array<number | null> => servers.map((s) => (find(r, 'echo', s, n)?.summary?.[k] ?? NaN) / 1000);
    write(
      `latency-echo-${n}.svg`,
      barChart({
        title: `Echo latency percentiles, ${n} connection${n === 1 ? '' : 's'} (ms, log scale)`,
        yTitle: 'milliseconds',
        groups: servers,
        series: [
          { name: 'p50', values: pick('p50') },
          { name: 'p90', values: pick('p90') },
          { name: 'p99', values: pick('p99') },
          { name: 'p99.9', values: pick('p999') },
        ],
      }),
    );
  }
  const sparse = serversOf(r, 'sparse');
  if (sparse.length) {
    write(
      'sparse.svg',
      lineChart({
        title: `Sparse activity: ${r.config.active} active connections + idle ones`,
        xTitle: 'idle connections',
        yTitle: 'messages / s of the active ones',
        xLabels: r.config.idle.map(String),
        series: sparse.map((s) => ({ name: s, values: r.config.idle.map((k) => find(r, 'sparse', s, r.config.active, k)?.summary?.msgsPerSec ?? null) })),
      }),
    );
  }
  return files;
}
