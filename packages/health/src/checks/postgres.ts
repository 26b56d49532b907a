// PostgreSQL: a query bounded by a server-side statement timeout, with the pool's counters as data. Takes a
// pg Pool (or Client) structurally, so `pg` stays an optional peer.
import type { Check, ShutdownHook } from '../contracts.ts';
import { DEFAULT_CHECK_TIMEOUT_MS, invalid, numberOption, stringOption } from '../options.ts';

/** The part of a `pg.Pool` (or `pg.Client`) the check uses. */
export interface PostgresPoolLike {
  query(text: string): Promise<unknown>;
  readonly totalCount?: number;
  readonly idleCount?: number;
  readonly waitingCount?: number;
}

/** Options of {@link createPostgresCheck}. */
export interface PostgresCheckOptions {
  readonly pool: PostgresPoolLike;
  /** @default 'postgres' */
  readonly name?: string;
  /** SQL to run (no parameters). @default 'SELECT 1' */
  readonly query?: string;
  /** Client-side timeout and server-side `statement_timeout`. @default DEFAULT_CHECK_TIMEOUT_MS */
  readonly timeoutMs?: number;
  /** @default true */
  readonly critical?: boolean;
}

/**
 * Runs `query` (default `SELECT 1`) as `SET LOCAL statement_timeout = <timeoutMs>; <query>` in one round trip: the
 * two statements form one implicit transaction, so PostgreSQL itself cancels the query when the timeout passes
 * (the backend is freed, not left running after the probe gave up) and the setting never leaks into the pooled
 * connection. Data: `totalCount`, `idleCount`, `waitingCount` of the pool (waiting > 0 means exhausted).
 * Set the timeout here, not through the policy, so client and server agree.
 * @throws HealthError `GANTRY_HEALTH_INVALID_OPTION` without a pool-like object or with a bad timeout.
 * @example
 * health.addCheck(createPostgresCheck({ pool, timeoutMs: 500 }));
 */
export function createPostgresCheck(options: PostgresCheckOptions): Check {
  if (typeof options !== 'object' || options === null || typeof options.pool?.query !== 'function') {
    throw invalid('pool', 'a pg Pool or Client (an object with query())', options?.pool);
  }
  const { pool } = options;
  const name = stringOption('name', options.name) ?? 'postgres';
  const query = stringOption('query', options.query) ?? 'SELECT 1';
  const timeoutMs = Math.round(numberOption('timeoutMs', options.timeoutMs, DEFAULT_CHECK_TIMEOUT_MS, { min: 1 }));
  const text = `SET LOCAL statement_timeout = ${timeoutMs}; ${query}`;
  const counters = (): Record<string, number> => {
    const data: Record<string, number> = {};
    if (typeof pool.totalCount === 'number') data['totalCount'] = pool.totalCount;
    if (typeof pool.idleCount === 'number') data['idleCount'] = pool.idleCount;
    if (typeof pool.waitingCount === 'number') data['waitingCount'] = pool.waitingCount;
    return data;
  };
  return {
    name,
    critical: options.critical ?? true,
    timeoutMs,
    run: async (signal) => {
      const started = performance.now();
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => {
          const pool = counters();
          const busy =
            pool['waitingCount'] !== undefined && pool['waitingCount'] > 0
              ? `pool exhausted: ${pool['idleCount'] ?? '?'} idle of ${pool['totalCount'] ?? '?'}, ${pool['waitingCount']} waiting`
              : 'query still running; PostgreSQL cancels it (statement_timeout)';
          reject(new Error(busy));
        };
        signal.addEventListener('abort', onAbort, { once: true });
        pool.query(text).then(
          () => {
            signal.removeEventListener('abort', onAbort);
            resolve();
          },
          (error: unknown) => {
            signal.removeEventListener('abort', onAbort);
            reject(error instanceof Error ? error : new Error(String(error)));
          },
        );
      });
      return { status: 'UP', data: { ...counters(), latencyMs: Math.round(performance.now() - started) } };
    },
  };
}

/**
 * A shutdown hook that ends a pg pool (waits for checked-out clients to be released).
 * @example
 * health.addShutdownHook(createPoolEndHook(pool));
 */
export function createPoolEndHook(
  pool: { end(): Promise<void> },
  options: { readonly name?: string; readonly timeoutMs?: number } = {},
): ShutdownHook {
  if (typeof pool?.end !== 'function') throw invalid('pool', 'an object with end()', pool);
  const timeoutMs = numberOption('timeoutMs', options.timeoutMs, 0, { min: 1 });
  return {
    name: stringOption('name', options.name) ?? 'postgres-pool',
    ...(timeoutMs > 0 ? { timeoutMs } : {}),
    run: () => pool.end(),
  };
}
