// A TCP client with a tiny receive window, which node:net cannot make (it has no
// SO_RCVBUF for TCP): python3 sets SO_RCVBUF before connecting, so the kernel
// advertises a window of a few KiB and the server's writes meet a full peer at once.
// It sends its stdin on one thread (then half-closes, like `nc -N`) while the main
// thread reads `chunk` bytes at a time with a pause between reads; what it received is
// written to its stdout.
import { spawn, spawnSync } from 'node:child_process';

import { stdoutOf } from './process';

const SCRIPT = `
import socket, sys, threading, time
host, port, rcvbuf, chunk, pause_ms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
data = sys.stdin.buffer.read()
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
s.connect((host, port))
def send():
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
    except OSError:
        pass
t = threading.Thread(target=send, daemon=True)
t.start()
out = sys.stdout.buffer
while True:
    try:
        b = s.recv(chunk)
    except OSError:
        break
    if not b:
        break
    out.write(b)
    if pause_ms > 0:
        time.sleep(pause_ms / 1000)
out.flush()
`;

let checked: string | null | undefined;

/** null when python3 can run the tiny-window client, else why not. */
export function tinyWindowUnavailable(): string | null {
  if (checked === undefined) {
    const r = spawnSync('python3', ['-c', 'import socket, threading'], { encoding: 'utf8' });
    checked = r.error ? 'python3 is not installed' : r.status === 0 ? null : `python3 cannot import socket/threading: ${r.stderr}`;
  }
  return checked;
}

export interface TinyWindowOptions {
  /** SO_RCVBUF asked for (Linux doubles it). Keep it at 4096 or more: below that the
   *  window is smaller than one segment, and Linux then sends each small write only when
   *  its persist timer fires (~0.2 s): 55 KB written in 17-byte to 41 KB pieces took 20 s
   *  to reach a 2048-byte buffer from a plain node:net server, 0.1 s to reach a 4096 one.
   *  That measures the kernel, not the server. */
  recvBuffer?: number;
  /** Bytes per recv(). */
  chunk?: number;
  /** ms between reads. */
  pauseMs?: number;
  timeoutMs?: number;
}

/** Sends `input` to 127.0.0.1:`port` from a tiny-window client, half-closes, reads
 *  slowly until the server closes; resolves with everything received. */
export function runTinyWindowClient(port: number, input: Buffer, o: TinyWindowOptions = {}): Promise<Buffer> {
  const args = ['-c', SCRIPT, '127.0.0.1', String(port), String(o.recvBuffer ?? 4096), String(o.chunk ?? 512), String(o.pauseMs ?? 1)];
  const child = spawn('python3', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  return stdoutOf(child, 'tiny-window client', input, o.timeoutMs ?? 60000);
}
