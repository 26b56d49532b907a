// Time as an injectable dependency: the runner, staleness and the shutdown sequence read it, tests move it.

/** An opaque timer handle returned by {@link Clock.setTimeout}. */
export interface TimerHandle {
  unref?(): unknown;
}

/**
 * The source of time for checks and the shutdown sequence. The default reads the monotonic clock and uses
 * `setTimeout` with `unref()`ed timers; `@gantry/health/testing` has a manual clock for tests.
 * @example
 * const clock: Clock = { now: () => Date.now(), setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout };
 */
export interface Clock {
  /** Milliseconds since an arbitrary origin that never goes backwards. */
  now(): number;
  /** Calls `callback` once after `ms`; the timer must not keep the process alive. */
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** The real clock: `performance.now()` and unref'ed Node timers. */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => {
    const timer = setTimeout(callback, ms);
    timer.unref();
    return timer;
  },
  clearTimeout: (handle) => {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

/** Resolves after `ms` on `clock`, or at once when `signal` aborts. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true || ms <= 0) {
      resolve();
      return;
    }
    const onAbort = (): void => {
      clock.clearTimeout(handle);
      resolve();
    };
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
