import { expect } from 'chai';

import { parseFacility, parseSeverity, parseSyslog } from '../../src/query/syslog';

describe('syslog header parsing', () => {
  it('parses RFC 5424', () => {
    const h = parseSyslog('<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 1234 ID47 [exampleSDID@32473 iut="3" x="a]b"] An application event');
    expect(h).to.include({ format: 'rfc5424', facility: 20, severity: 5, host: 'mymachine.example.com', app: 'evntslog', procId: '1234', msgId: 'ID47', message: 'An application event' });
    expect(h!.timestamp).to.equal(Date.parse('2003-10-11T22:14:15.003Z'));
  });

  it('parses RFC 5424 with nil values (as logger sends)', () => {
    const h = parseSyslog('<13>1 - - root - - - hello there');
    expect(h).to.include({ format: 'rfc5424', facility: 1, severity: 5, host: undefined, app: 'root', message: 'hello there' });
  });

  it('parses RFC 3164', () => {
    const now = new Date(2024, 5, 1);
    const h = parseSyslog('<34>Oct 11 22:14:15 mymachine su[99]: \'su root\' failed for lonvick', now);
    expect(h).to.include({ format: 'rfc3164', facility: 4, severity: 2, host: 'mymachine', app: 'su', procId: '99', message: "'su root' failed for lonvick" });
    expect(new Date(h!.timestamp!).getFullYear()).to.equal(2023); // October is in the future in June: last year
    const noHost = parseSyslog('<13>sshd: hello', now);
    expect(noHost).to.include({ app: 'sshd', host: undefined, message: 'hello' });
  });

  it('returns undefined for lines without a syslog header, and never throws', () => {
    expect(parseSyslog('plain text')).to.equal(undefined);
    expect(parseSyslog('<999>1 x')).to.equal(undefined);
    for (const junk of ['<', '<1>', '<1>1', '<1>1 ', '\u0000\uFFFD', '<13>Feb 30 99:99:99 h a: b']) expect(() => parseSyslog(junk)).not.to.throw();
  });

  it('maps severity and facility names', () => {
    expect(parseSeverity('warning')).to.equal(4);
    expect(parseSeverity('warn')).to.equal(4);
    expect(parseSeverity('3')).to.equal(3);
    expect(parseSeverity('loud')).to.equal(undefined);
    expect(parseFacility('local7')).to.equal(23);
    expect(parseFacility('auth')).to.equal(4);
    expect(parseFacility('24')).to.equal(undefined);
  });
});
