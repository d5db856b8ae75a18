import { expect } from 'chai';

import { LineFramer, utf8Cut } from '../../src/ingest/framing';

type Got = { text: string; truncated: number };

function frame(parts: (string | Buffer)[], maxLine = 1024): { lines: Got[]; f: LineFramer } {
  const lines: Got[] = [];
  const f = new LineFramer(maxLine, (buf, s, e, t) => lines.push({ text: buf.toString('latin1', s, e), truncated: t }));
  for (const p of parts) f.push(typeof p === 'string' ? Buffer.from(p, 'latin1') : p);
  f.finish();
  return { lines, f };
}

const texts = (g: Got[]): string[] => g.map((l) => l.text);

describe('LineFramer', () => {
  it('splits LF and CRLF lines, many per packet, and skips empty lines', () => {
    const { lines, f } = frame(['a\nbb\r\n\n\r\nccc\n']);
    expect(texts(lines)).to.deep.equal(['a', 'bb', 'ccc']);
    expect(f.framing).to.equal('newline');
  });

  it('reassembles a line split at every possible point', () => {
    const input = 'first line\r\nsecond\nthird one\n';
    for (let i = 1; i < input.length; i++) {
      for (let j = i; j < input.length; j++) {
        const { lines } = frame([input.slice(0, i), input.slice(i, j), input.slice(j)]);
        expect(texts(lines), `split ${i},${j}`).to.deep.equal(['first line', 'second', 'third one']);
      }
    }
  });

  it('hands on an unterminated last line at end of stream', () => {
    expect(texts(frame(['one\ntw', 'o']).lines)).to.deep.equal(['one', 'two']);
  });

  it('hands lines on as ranges of the arriving buffer (zero-copy)', () => {
    const data = Buffer.from('abc\ndef\n');
    const seen: Buffer[] = [];
    const f = new LineFramer(100, (buf) => seen.push(buf));
    f.push(data);
    expect(seen).to.have.length(2);
    expect(seen[0]).to.equal(data);
    expect(seen[1]).to.equal(data);
    expect(f.pendingBytes).to.equal(0);
  });

  it('truncates over-long lines, in one packet or across many, counting dropped bytes', () => {
    const long = 'x'.repeat(100);
    const { lines, f } = frame([`${long}\nok\n`], 10);
    expect(lines[0]).to.deep.equal({ text: 'x'.repeat(10), truncated: 90 });
    expect(lines[1]).to.deep.equal({ text: 'ok', truncated: 0 });
    expect(f.truncatedLines).to.equal(1);
    // across packets: the excess is counted, never buffered
    const parts = [];
    for (let i = 0; i < 1000; i++) parts.push('y'.repeat(1000));
    const big = frame([...parts, '\r\nafter\n'], 16);
    expect(big.lines[0]).to.deep.equal({ text: 'y'.repeat(16), truncated: 1_000_000 - 16 });
    expect(big.lines[1].text).to.equal('after');
    expect(big.f.pendingBytes).to.equal(0);
  });

  it('keeps a line of exactly max-line bytes, with LF or CRLF, split or not', () => {
    const line = 'z'.repeat(10);
    expect(frame([`${line}\r\n`], 10).lines[0]).to.deep.equal({ text: line, truncated: 0 });
    expect(frame([line.slice(0, 4), `${line.slice(4)}\r`, '\n'], 10).lines[0]).to.deep.equal({ text: line, truncated: 0 });
    expect(frame([line.slice(0, 4), `${line.slice(4)}z\r`, '\n'], 10).lines[0]).to.deep.equal({ text: line, truncated: 1 });
  });

  it('counts the same dropped bytes for an over-long line however it is split: its line ending is not content (found by the parser fuzzer)', () => {
    // [input, max-line, kept, dropped]: an octet frame's LF (and a CR before it) and a
    // line's CR before its LF are not content, whether they arrive with the line or
    // fall into the part dropped past max-line; a CR that is content stays counted.
    const cases: [string, string, number][] = [
      [`20 ${'x'.repeat(19)}\n`, 'x'.repeat(16), 3],
      [`21 ${'x'.repeat(19)}\r\n`, 'x'.repeat(16), 3],
      [`19 ${'x'.repeat(18)}\n`, 'x'.repeat(16), 2],
      [`${'x'.repeat(17)}\r\r\n`, 'x'.repeat(16), 2],
      [`${'x'.repeat(19)}\r\n`, 'x'.repeat(16), 3],
    ];
    for (const [input, kept, dropped] of cases) {
      for (let i = 0; i <= input.length; i++) {
        const parts = i === 0 ? [input] : [input.slice(0, i), input.slice(i)];
        expect(frame(parts, 16).lines, `${JSON.stringify(input)} split at ${i}`).to.deep.equal([{ text: kept, truncated: dropped }]);
      }
    }
  });

  it('never cuts inside a UTF-8 character', () => {
    const s = Buffer.from('aé€😀', 'utf8'); // 1 + 2 + 3 + 4 bytes
    expect(utf8Cut(s, 0, s.length, 2)).to.equal(1);
    expect(utf8Cut(s, 0, s.length, 3)).to.equal(3);
    expect(utf8Cut(s, 0, s.length, 5)).to.equal(3);
    expect(utf8Cut(s, 0, s.length, 8)).to.equal(6);
    expect(utf8Cut(s, 0, s.length, 10)).to.equal(10);
  });

  it('passes NUL bytes and invalid UTF-8 through untouched', () => {
    const raw = Buffer.from([0x61, 0x00, 0xff, 0xfe, 0xc3, 0x0a, 0x80, 0x80, 0x0a]);
    const { lines } = frame([raw]);
    expect(lines.map((l) => Buffer.from(l.text, 'latin1'))).to.deep.equal([raw.subarray(0, 5), raw.subarray(6, 8)]);
  });

  describe('RFC 6587 octet counting', () => {
    it('detects "<len> <msg>" frames and reads them, whatever the packet boundaries', () => {
      const msgs = ['<13>1 - host app - - - hello', 'second\nwith newline', 'x'];
      const input = msgs.map((m) => `${Buffer.byteLength(m)} ${m}`).join('');
      for (let i = 1; i < input.length; i++) {
        const { lines, f } = frame([input.slice(0, i), input.slice(i)]);
        expect(f.framing).to.equal('octet-counted');
        expect(texts(lines), `split at ${i}`).to.deep.equal(msgs);
      }
    });

    it('strips a trailing LF inside a frame and truncates long frames', () => {
      const { lines } = frame(['6 hello\n', '30 ', 'a'.repeat(30)], 16);
      expect(lines[0].text).to.equal('hello');
      expect(lines[1]).to.deep.equal({ text: 'a'.repeat(16), truncated: 14 });
    });

    it('falls back to newline framing after a malformed header', () => {
      const { lines, f } = frame(['5 hello12x more\nlast\n']);
      expect(f.framing).to.equal('newline');
      expect(texts(lines)).to.deep.equal(['hello', '12x more', 'last']);
    });

    it('treats lines that merely start with digits as newline-framed', () => {
      expect(texts(frame(['2024-01-01 ok\n']).lines)).to.deep.equal(['2024-01-01 ok']);
      expect(texts(frame(['0 zero\n']).lines)).to.deep.equal(['0 zero']);
      expect(texts(frame(['12', '34\n']).lines)).to.deep.equal(['1234']);
    });
  });
});
