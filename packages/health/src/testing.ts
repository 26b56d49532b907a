// Test doubles: a clock you move by hand.
import type { Clock, TimerHandle } from './clock.ts';

/** A {@link Clock} that only moves when told. */
export interface ManualClock extends Clock {
  /** Moves time forward by `ms`, firing due timers in order and letting promises settle between them. */
  advance(ms: number): Promise<void>;
  /** Timers not yet fired. */
  readonly pendingTimers: number;
}

interface Timer extends TimerHandle {
  readonly at: number;
  readonly seq: number;
  readonly callback: () => void;
  cancelled: boolean;
}

const flush = async (): Promise<void> => {
  for (let index = 0; index < 10; index += 1) await new Promise<void>((resolve) => setImmediate(resolve));
};

/**
 * Creates a manual clock starting at `start` ms.
 * @example
 * const clock = createManualClock();
 * const health = createHealth({ clock });
 * await clock.advance(5_000);
 */
export function createManualClock(start = 0): ManualClock {
  let now = start;
  let seq = 0;
  const timers: Timer[] = [];
  return {
    now: () => now,
    setTimeout(callback, ms) {
      const timer: Timer = { at: now + Math.max(0, ms), seq: seq++, callback, cancelled: false, unref: () => timer };
      timers.push(timer);
      return timer;
    },
    clearTimeout(handle) {
      (handle as Timer).cancelled = true;
    },
    get pendingTimers() {
      return timers.filter((timer) => !timer.cancelled).length;
    },
    async advance(ms) {
      const target = now + ms;
      await flush();
      for (;;) {
        const due = timers
          .filter((timer) => !timer.cancelled && timer.at <= target)
          .sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
        if (due === undefined) break;
        timers.splice(timers.indexOf(due), 1);
        now = Math.max(now, due.at);
        due.callback();
        await flush();
      }
      now = target;
      await flush();
    },
  };
}
