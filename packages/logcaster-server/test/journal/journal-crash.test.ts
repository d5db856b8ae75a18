import { expect } from 'chai';
import { spawn } from 'child_process';
import * as path from 'path';
import { Journal } from '../../src/journal';
import { delay, rmDir, tmpDir } from '@logcaster/testkit';
import { segFiles } from './helpers';

const CHILD = path.join(__dirname, 'fixtures', 'crash-child.js');

interface RunResult { startSeq: number; maxAcked: number; acks: number }

/** Starts the child, kills it with SIGKILL at a random moment after its first acks. */
function runAndKill(dir: string, rotateSize: number, killAfterMs: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dir, String(rotateSize)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let startSeq = -1;
    let maxAcked = 0;
    let acks = 0;
    let timer: NodeJS.Timeout | null = null;
    const guard = setTimeout(() => child.kill('SIGKILL'), 15000);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => { err += d; });
    child.stdout.on('data', (d: string) => {
      out += d;
      let nl: number;
      while ((nl = out.indexOf('\n')) >= 0) {
        const msg = out.slice(0, nl);
        out = out.slice(nl + 1);
        if (msg.startsWith('S ')) startSeq = Number(msg.slice(2));
        else if (msg.startsWith('D ')) {
          const s = Number(msg.slice(2));
          if (!(s > maxAcked)) { reject(new Error(`non-increasing ack ${s} after ${maxAcked}`)); return; }
          maxAcked = s;
          acks++;
          if (timer === null) timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
        }
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(guard);
      if (timer) clearTimeout(timer);
      if (signal !== 'SIGKILL') reject(new Error(`child exited ${code} ${signal}: ${err}`));
      else resolve({ startSeq, maxAcked, acks });
    });
  });
}

describe('journal: kill -9 crash recovery (real child process)', function () {
  this.timeout(45000);
  let dir: string;
  beforeEach(() => { dir = tmpDir('crash'); });
  afterEach(() => rmDir(dir));

  it('every acknowledged sequence survives SIGKILL at a random moment, across repeated crashes', async () => {
    let everAcked = 0;
    const rounds = 5;
    for (let round = 0; round < rounds; round++) {
      const rotateSize = [4096, 65536, 1 << 20][round % 3];
      const killAfter = 20 + Math.floor(Math.random() * 400);
      const r = await runAndKill(dir, rotateSize, killAfter);
      expect(r.acks, 'child acknowledged something').to.be.greaterThan(0);
      expect(r.startSeq, 'child resumed after the last stored record').to.be.at.least(everAcked);
      everAcked = Math.max(everAcked, r.maxAcked);

      const j = Journal.open({ dir, rotateSize, maxFiles: 100000, fsync: 'never' });
      let expected = 1;
      let bad = 0;
      const res = j.replay(Infinity, (_t, peer, line, seq) => {
        // contiguous 1..N, content matches the sequence
        if (seq !== expected || !line.toString('latin1').startsWith(`line-${seq} `) || peer !== `10.1.2.3:${seq % 65536}`) bad++;
        expected = seq + 1;
      });
      const stored = expected - 1;
      console.log(`      round ${round + 1}: killed after ${killAfter} ms; acked up to ${r.maxAcked} (${r.acks} acks), ` +
        `stored ${stored}, files ${segFiles(dir).length}, torn skipped ${res.tornSkipped}`);
      expect(bad, 'records out of order or with wrong content').to.equal(0);
      expect(res.loaded).to.equal(stored);
      expect(stored, 'an acknowledged record is missing').to.be.at.least(everAcked);
      // appends continue cleanly after the repair
      expect(j.append(Date.now(), `10.1.2.3:${(stored + 1) % 65536}`, Buffer.from(`line-${stored + 1} `))).to.equal(stored + 1);
      await j.close();
      everAcked = stored + 1;
      await delay(5);
    }
  });
});
