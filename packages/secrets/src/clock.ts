// Time as a dependency: the library schedules through a Clock so tests can move time instead of waiting.

/** An opaque timer handle returned by {@link Clock.setTimeout}. */
export interface ClockTimer {
  readonly id: unknown;
}

/**
 * The time source and scheduler used by every long-running part of the package.
 * @example
 * const clock = createManualClock(); // from '@gantry/secrets/testing'
 * const vault = createVault({ endpoint, auth, clock });
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Runs `callback` once after `ms`; the timer must not keep the process alive. */
  setTimeout(callback: () => void, ms: number): ClockTimer;
  clearTimeout(timer: ClockTimer): void;
}

/** The real clock: `Date.now()` and `unref()`ed Node timers. */
export const SYSTEM_CLOCK: Clock = Object.freeze({
  now: () => Date.now(),
  setTimeout: (callback: () => void, ms: number): ClockTimer => {
    const id = setTimeout(callback, Math.max(0, ms));
    id.unref();
    return { id };
  },
  clearTimeout: (timer: ClockTimer): void => {
    clearTimeout(timer.id as NodeJS.Timeout);
  },
});

/** A clock whose time only moves when told to; see {@link createManualClock}. */
export interface ManualClock extends Clock {
  /**
   * Moves time forward by `ms`, firing due timers in order (each at its own due time) and letting the promise
   * jobs and I/O callbacks they start run between timers.
   */
  advance(ms: number): Promise<void>;
  /** Number of timers waiting to fire. */
  readonly pending: number;
}

interface ManualTimer {
  readonly id: number;
  readonly due: number;
  readonly callback: () => void;
}

/**
 * A manual clock for tests. `advance()` fires due timers one by one, waiting `settleMs` of real time after each so
 * that the requests they start can complete before time moves on.
 * @default start `Date.now()` at creation, settleMs 15
 * @example
 * const clock = createManualClock();
 * await clock.advance(60_000); // timers due in the next minute fire now
 */
export function createManualClock(options: { readonly start?: number; readonly settleMs?: number } = {}): ManualClock {
  let now = options.start ?? Date.now();
  const settleMs = options.settleMs ?? 15;
  let nextId = 1;
  let timers: ManualTimer[] = [];
  // Between timers, give the work a fired timer started (often loopback I/O) a moment of real time to finish, so
  // that time does not jump past a request still in flight.
  const settle = (): Promise<void> =>
    new Promise((resolve) => {
      setTimeout(resolve, settleMs);
    });
  return {
    now: () => now,
    setTimeout(callback, ms) {
      const timer = { id: nextId++, due: now + Math.max(0, ms), callback };
      timers.push(timer);
      return { id: timer.id };
    },
    clearTimeout(timer) {
      timers = timers.filter((item) => item.id !== timer.id);
    },
    async advance(ms) {
      const target = now + Math.max(0, ms);
      for (;;) {
        const due = timers.filter((timer) => timer.due <= target).sort((a, b) => a.due - b.due || a.id - b.id)[0];
        if (due === undefined) break;
        timers = timers.filter((timer) => timer !== due);
        now = Math.max(now, due.due);
        due.callback();
        await settle();
      }
      now = target;
      await settle();
    },
    get pending() {
      return timers.length;
    },
  };
}

/** Resolves after `ms` on `clock`, or rejects with the signal's reason when `signal` aborts first. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = (): void => {
      clock.clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Like {@link sleep}, for waits a caller is awaiting (start-up retries): the clock's timers are unref'd, so a
 * process that only awaits `start()` would otherwise exit with the promise unsettled (exit code 13) instead of
 * retrying. A ref'd timer holds the event loop for the duration of the wait.
 */
export async function sleepKeepingAlive(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  const hold = setInterval(() => undefined, 2 ** 31 - 1);
  try {
    await sleep(clock, ms, signal);
  } finally {
    clearInterval(hold);
  }
}

/** A uniformly random number in `[min, max)`. */
export function uniform(min: number, max: number): number {
  return min + Math.random() * (max - min);
}

/** Full-jitter exponential backoff: a random delay in `[0, min(max, initial·2^attempt)]`, at least 50 ms. */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.max(50, Math.random() * ceiling);
}
