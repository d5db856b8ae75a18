// Child process for the kill -9 test: appends numbered lines to a journal with fsync 'always'
// as fast as it can and prints every durable sequence number it is told about ("D <seq>").
// Usage: node crash-child.js <dir> <rotateSize>
import { Journal } from '../../src/journal';

const dir = process.argv[2];
const rotateSize = Number(process.argv[3] ?? 65536);
const j = Journal.open({ dir, rotateSize, maxFiles: 100000, fsync: 'always' });
j.onDurable((seq) => { process.stdout.write(`D ${seq}\n`); });
j.onError((e) => { process.stderr.write(`journal error: ${e.message}\n`); process.exit(3); });
process.stdout.write(`S ${j.lastSeq}\n`);

const pad = 'abcdefghijklmnopqrstuvwxyz0123456789';
function burst(): void {
  const n = 1 + Math.floor(Math.random() * 400);
  for (let k = 0; k < n; k++) {
    const next = j.lastSeq + 1;
    const seq = j.append(Date.now(), `10.1.2.3:${next % 65536}`, Buffer.from(`line-${next} ${pad.slice(0, next % 36)}`));
    if (seq !== next) { process.stderr.write(`sequence mismatch ${seq} != ${next}\n`); process.exit(4); }
  }
  setImmediate(burst);
}
burst();
