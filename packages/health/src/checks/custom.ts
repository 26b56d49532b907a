// Small helpers to write a check or a hook from a function.
import type { Check, CheckResult, ShutdownHook } from '../contracts.ts';
import { functionOption, invalid, numberOption, stringOption } from '../options.ts';

/** Options of {@link createCheck}. */
export interface CreateCheckOptions {
  /** @default true */
  readonly critical?: boolean;
  readonly timeoutMs?: number;
}

/**
 * Makes a check from a function: `true` or nothing means UP, `false` DOWN, a `CheckResult` is used as is, a throw
 * is DOWN with the error's message as `reason`. The function gets the run's `AbortSignal`.
 * @throws HealthError `GANTRY_HEALTH_INVALID_OPTION` for a bad name or function.
 * @example
 * health.addCheck(createCheck('cache-warm', () => cache.size > 0));
 */
export function createCheck(
  name: string,
  fn: (signal: AbortSignal) => boolean | void | CheckResult | Promise<boolean | void | CheckResult>,
  options: CreateCheckOptions = {},
): Check {
  const checkName = stringOption('name', name);
  if (checkName === undefined) throw invalid('name', 'a non-empty string', name);
  functionOption('fn', fn);
  const timeoutMs = numberOption('timeoutMs', options.timeoutMs, 0, { min: 1 });
  return {
    name: checkName,
    critical: options.critical ?? true,
    ...(timeoutMs > 0 ? { timeoutMs } : {}),
    run: async (signal) => {
      const result = await fn(signal);
      if (result === undefined || result === true) return { status: 'UP' };
      if (result === false) return { status: 'DOWN' };
      return result;
    },
  };
}

/**
 * Makes a shutdown hook from a function; it gets an `AbortSignal` that aborts at the hook's timeout.
 * @throws HealthError `GANTRY_HEALTH_INVALID_OPTION` for a bad name or function.
 * @example
 * health.addShutdownHook(createShutdownHook('flush-queue', (signal) => queue.flush({ signal }), { timeoutMs: 3_000 }));
 */
export function createShutdownHook(
  name: string,
  fn: (signal: AbortSignal) => unknown,
  options: { readonly timeoutMs?: number } = {},
): ShutdownHook {
  const hookName = stringOption('name', name);
  if (hookName === undefined) throw invalid('name', 'a non-empty string', name);
  functionOption('fn', fn);
  const timeoutMs = numberOption('timeoutMs', options.timeoutMs, 0, { min: 1 });
  return {
    name: hookName,
    ...(timeoutMs > 0 ? { timeoutMs } : {}),
    run: async (signal) => {
      await fn(signal);
    },
  };
}
