import { describe, expect, it } from 'vitest';
import { backoffDelay, createManualClock, sleep } from './clock.ts';

describe('manual clock', () => {
  it('fires due timers in order, each at its own time, and never early', async () => {
    const clock = createManualClock({ start: 0, settleMs: 0 });
    const fired: [string, number][] = [];
    clock.setTimeout(() => fired.push(['b', clock.now()]), 200);
    clock.setTimeout(() => fired.push(['a', clock.now()]), 100);
    const dropped = clock.setTimeout(() => fired.push(['x', clock.now()]), 150);
    clock.clearTimeout(dropped);
    await clock.advance(150);
    expect(fired).toEqual([['a', 100]]);
    await clock.advance(100);
    expect(fired).toEqual([
      ['a', 100],
      ['b', 200],
    ]);
    expect(clock.now()).toBe(250);
    expect(clock.pending).toBe(0);
  });

  it('sleeps on the clock and aborts', async () => {
    const clock = createManualClock({ start: 0, settleMs: 0 });
    const done = sleep(clock, 1_000).then(() => clock.now());
    await clock.advance(1_000);
    expect(await done).toBe(1_000);
    const controller = new AbortController();
    const aborted = sleep(clock, 1_000, controller.signal);
    controller.abort(new Error('stop'));
    await expect(aborted).rejects.toThrow('stop');
    expect(clock.pending).toBe(0);
  });
});

describe('backoffDelay', () => {
  it('stays within full-jitter bounds and caps at the maximum', () => {
    for (let attempt = 0; attempt < 20; attempt += 1) {
      const delay = backoffDelay(attempt, 1_000, 60_000);
      expect(delay).toBeGreaterThanOrEqual(50);
      expect(delay).toBeLessThanOrEqual(Math.min(60_000, 1_000 * 2 ** attempt));
    }
  });
});
