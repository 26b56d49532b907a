// Small pieces shared by the runner, the backfill engine and the app-side helpers: identifier quoting, the
// injectable clock, backoff with jitter, SQLSTATE helpers and the silent default logger.
import { createHash } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';

/** The pino-shaped logger every Gantry package accepts. */
export interface Logger {
  debug(object: Record<string, unknown>, message?: string): void;
  info(object: Record<string, unknown>, message?: string): void;
  warn(object: Record<string, unknown>, message?: string): void;
  error(object: Record<string, unknown>, message?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

/** A logger that drops everything (the default). */
export const SILENT_LOGGER: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => SILENT_LOGGER,
};

/** Time source and sleeper, injectable so tests can move time. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Resolves after `ms`, or rejects with the signal's reason when it aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The real clock. */
export const SYSTEM_CLOCK: Clock = {
  now: () => Date.now(),
  sleep: async (ms, signal) => {
    await delay(ms, undefined, signal === undefined ? { ref: false } : { signal, ref: false });
  },
};

/** Double-quotes an identifier (`"my""table"`). */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Single-quotes a SQL string literal, or NULL. */
export function quoteLiteral(value: string | number | boolean | null | undefined): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new RangeError(`Cannot quote ${value}`);
    return String(value);
  }
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  return `'${value.replace(/'/g, "''")}'`;
}

/** The SQLSTATE of a pg error, if any. */
export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** lock_not_available: `lock_timeout` expired. */
export const LOCK_NOT_AVAILABLE = '55P03';

/** Whether an error is worth retrying after a pause: lock timeout, deadlock, serialization failure. */
export function isTransientLockError(error: unknown): boolean {
  const state = sqlState(error);
  return state === LOCK_NOT_AVAILABLE || state === '40P01' || state === '40001';
}

/**
 * Delay before retry `attempt` (1-based): exponential from `baseMs`, capped at `maxMs`, with "equal jitter" (half
 * fixed, half random) so concurrent migrators spread out but never retry at once.
 */
export function backoffDelay(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const exponential = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exponential / 2 + (random() * exponential) / 2);
}

/** The advisory-lock key for a history schema: a stable signed 64-bit integer, as a decimal string. */
export function advisoryLockKey(schema: string): string {
  const digest = createHash('sha256').update(`gantry-migrations:${schema}`).digest();
  return digest.readBigInt64BE(0).toString();
}

/** A short, log-safe message for an error (no stack, no query text). */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    const state = sqlState(error);
    return state === undefined ? error.message : `${error.message} (SQLSTATE ${state})`;
  }
  return String(error);
}
