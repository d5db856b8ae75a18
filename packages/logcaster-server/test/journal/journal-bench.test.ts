// Throughput micro-benchmark of the journal append path. Prints numbers; asserts only correctness.
import { expect } from 'chai';
import { FsyncPolicy, Journal } from '../../src/journal';
import { nextTurn, rmDir, tmpDir } from '@logcaster/testkit';

const LINES = Number(process.env.LOGCASTER_JOURNAL_BENCH_LINES ?? 1_000_000);
const BATCH = 5000; // lines per event-loop turn, like a busy ingest loop

async function bench(policy: FsyncPolicy): Promise<string> {
  const dir = tmpDir(`bench-${policy}`);
  try {
    const j = Journal.open({ dir, rotateSize: 64 << 20, maxFiles: 100, fsync: policy, fsyncIntervalMs: 200 });
    let durable = 0;
    j.onDurable((s) => { durable = s; });
    // ~100-byte syslog-like lines, varied so CRC and copies do real work
    const lines: Buffer[] = [];
    for (let i = 0; i < 64; i++) {
      lines.push(Buffer.from(`<34>Oct 11 22:14:15 host${i} app[${1000 + i}]: request ${i} served in ${i * 3} ms status=200 path=/api/v1/items`));
    }
    const bytes = lines.reduce((a, b) => a + b.length, 0) / lines.length;
    let maxTurn = 0;
    const t0 = process.hrtime.bigint();
    for (let sent = 0; sent < LINES;) {
      const ts = process.hrtime.bigint();
      const now = Date.now();
      for (let k = 0; k < BATCH && sent < LINES; k++, sent++) j.append(now, '192.168.10.20:51515', lines[sent & 63]);
      await nextTurn(); // the journal's write for this turn happens here
      const turn = Number(process.hrtime.bigint() - ts) / 1e6;
      if (turn > maxTurn) maxTurn = turn;
    }
    while (durable < LINES) await new Promise((r) => setTimeout(r, 1));
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const st = j.stats;
    await j.close();
    expect(st.persistedLines).to.equal(LINES);
    const rate = LINES / secs;
    return `${policy.padEnd(8)} ${Math.round(rate).toLocaleString('en-US').padStart(11)} lines/s ` +
      `${((rate * bytes) / 1e6).toFixed(0).padStart(4)} MB/s of line data, ${st.fsyncs} fsyncs, ` +
      `longest turn (${BATCH} appends + write) ${maxTurn.toFixed(1)} ms`;
  } finally {
    rmDir(dir);
  }
}

describe('journal: throughput (report only)', function () {
  this.timeout(50000);
  it(`appends ${LINES} lines of ~100 bytes, ${BATCH} per event-loop turn`, async () => {
    for (const p of ['never', 'interval', 'always'] as FsyncPolicy[]) console.log(`      ${await bench(p)}`);
  });
});
