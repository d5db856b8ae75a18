// Mocha helpers: skips that say why in the reported title, and gc that cannot
// silently do nothing.

/** `it(title, fn)`, or — when `skipReason` is set — a pending test whose reported title
 *  carries the reason: "<title> (skipped: <reason>)". */
export function itUnless(skipReason: string | null | undefined, title: string, fn: (this: Mocha.Context) => Promise<void> | void): Mocha.Test {
  if (skipReason) {
    return it(`${title} (skipped: ${skipReason})`, function () {
      this.skip();
    });
  }
  return it(title, fn);
}

/** Skip the running test with the reason appended to its reported title. */
export function skipBecause(ctx: Mocha.Context, reason: string): never {
  ctx.test!.title += ` (skipped: ${reason})`;
  ctx.skip();
}

/** A full garbage collection; throws when node runs without --expose-gc (the root
 *  .mocharc.json passes it), so a memory test cannot pass by measuring nothing. */
export function forceGc(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('global.gc is missing: run node (mocha) with --expose-gc');
  gc();
}
