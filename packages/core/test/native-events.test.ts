// The batch layout is declared twice, in C++ (native/engine.h, conn.h, sockets.h) and in
// TypeScript (src/native-events.ts): every constant one side declares must exist on
// the other with the same value, or the reactor would misread the engine's events.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import * as layout from '../src/native-events';

const nativeDir = join(__dirname, '..', '..', 'native');

/** kEvListenError -> EV_LISTEN_ERROR, kPhaseRead -> PHASE_READ, kEventHeader -> EVENT_HEADER. */
function tsName(prefix: string, cxx: string): string {
  const rest = cxx.replace(/^k/, '').slice(prefix.length);
  const snake = rest.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
  return { Ev: 'EV_', Phase: 'PHASE_', Event: 'EVENT_', Datagram: 'DATAGRAM_', Family: 'FAMILY_' }[prefix] + snake;
}

/** Every `kEvX = n`, `kPhaseX = n`, `kEventX = n`, `kDatagramX = n` and `kFamilyX = n`
 *  in the native headers. */
function nativeConstants(): Map<string, number> {
  const found = new Map<string, number>();
  for (const file of ['engine.h', 'conn.h', 'sockets.h']) {
    const text = readFileSync(join(nativeDir, file), 'utf8');
    for (const m of text.matchAll(/\bk(Ev|Phase|Event|Datagram|Family)([A-Z]\w*)\s*=\s*(\d+)/g)) {
      found.set(tsName(m[1], `k${m[1]}${m[2]}`), Number(m[3]));
    }
    const bits = /constexpr uint32_t kSlotBits = (\d+);/.exec(text);
    if (bits) found.set('SLOT_MASK', (1 << Number(bits[1])) - 1);
  }
  return found;
}

describe('native event layout', () => {
  const native = nativeConstants();
  const ts = new Map(Object.entries(layout).filter(([, v]) => typeof v === 'number') as [string, number][]);

  it('the headers declare the event kinds, close phases, record layouts, families and slot bits', () => {
    expect(native.get('EV_OPEN')).to.equal(1);
    expect(native.has('EV_MESSAGE') && native.has('DATAGRAM_HEADER') && native.has('FAMILY_IPV6')).to.equal(true);
    expect(native.has('EVENT_HEADER') && native.has('EVENT_INTS') && native.has('SLOT_MASK')).to.equal(true);
    expect(native.has('PHASE_CONNECT')).to.equal(true);
  });

  it('native-events.ts has every native constant with the same value', () => {
    for (const [name, value] of native) {
      if (name === 'PHASE_NONE') continue; // 0: "no phase" needs no name in JS
      expect(ts.get(name), name).to.equal(value);
    }
  });

  it('every constant in native-events.ts exists natively with the same value', () => {
    for (const [name, value] of ts) expect(native.get(name), name).to.equal(value);
  });
});
