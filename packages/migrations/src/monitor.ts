// The app side of monitoring: reads the state tables (never writes), keeps a snapshot in memory and exposes it
// as a startup Check, the `/q/info` `schema` section the sidecar agent reads, and Prometheus gauges.
import type { Check, CheckResult, InfoContributor } from '@gantry/health';
import type pg from 'pg';
import type * as PromClient from 'prom-client';
import type { Gauge, Registry } from 'prom-client';
import { validateSchemaSupports, type SchemaSupports } from './app-version.ts';
import { readBackfills, type BackfillStatus } from './backfill.ts';
import { SILENT_LOGGER, errorMessage, type Logger } from './db.ts';
import { invalidOption } from './errors.ts';
import { loadMigrationFiles, type MigrationFile, type MigrationPhase } from './files.ts';
import { serialized } from './serialized.ts';
import { computeStatus } from './status.ts';
import { DEFAULT_HISTORY_SCHEMA, readHistory, storeExists, storeNames } from './store.ts';
import { compareVersions } from './version.ts';

/** Default refresh interval of the snapshot. */
export const DEFAULT_MONITOR_REFRESH_INTERVAL_MS = 15_000;
/** Default timeout of the startup check. */
export const DEFAULT_MONITOR_CHECK_TIMEOUT_MS = 2_000;

/** The `/q/info` `schema` section (the contract the sidecar agent reads). */
export interface SchemaInfo {
  /** Highest applied version, or null before the first migration. */
  readonly current: string | null;
  /** `backfill` while a backfill is unfinished, else the phase of the newest applied migration. */
  readonly phase: MigrationPhase | null;
  /** The schema versions this app version works with. */
  readonly supports: SchemaSupports;
  /** Migrations in the app's folder not applied yet. */
  readonly pending: number;
  /** Migrations whose last attempt failed: a rollback trigger for the agent. */
  readonly failed: readonly { readonly version: string; readonly description: string }[];
  /** Newest applied contract migration, or null. */
  readonly lastContract: string | null;
}

/** Options of {@link createSchemaMonitor}. */
export interface SchemaMonitorOptions {
  /** Anything with pg's `query` (a Pool). */
  readonly pool: Pick<pg.Pool, 'query'>;
  /** The migrations folder shipped with the app. */
  readonly directory: string;
  /** The schema versions this app version works with. */
  readonly schemaSupports: SchemaSupports;
  /** @default DEFAULT_HISTORY_SCHEMA */
  readonly schema?: string;
  /** 0 turns the timer off. @default DEFAULT_MONITOR_REFRESH_INTERVAL_MS */
  readonly refreshIntervalMs?: number;
  /** @default DEFAULT_MONITOR_CHECK_TIMEOUT_MS */
  readonly checkTimeoutMs?: number;
  /** Registry for the gauges; `false` for none. @default prom-client's global registry (when installed) */
  readonly registry?: Registry | false;
  readonly logger?: Logger;
}

/** A running monitor. */
export interface SchemaMonitor {
  /** Startup/readiness check `migrations`: DOWN on failed migrations, missing required ones, or a contract past `supports.max`. */
  readonly check: Check;
  /** `/q/info` contributor named `schema`. */
  readonly info: InfoContributor;
  /** The last snapshot (null before the first refresh). */
  snapshot(): SchemaInfo | null;
  /**
   * Reads the state tables now. Refreshes never overlap (the check, the timer and callers share one at a time), so
   * an older read can never overwrite a newer snapshot; a call during a refresh gets the next one.
   */
  refresh(): Promise<SchemaInfo>;
  /** First refresh, then one `refreshIntervalMs` after each refresh finished (unref'd). Idempotent. */
  start(): Promise<void>;
  /** Stops the timer and waits for a refresh in progress. Idempotent. */
  close(): Promise<void>;
}

interface Gauges {
  readonly pending: Gauge;
  readonly applied: Gauge;
  readonly failed: Gauge;
  readonly rowsDone: Gauge;
  readonly rowsRemaining: Gauge;
  readonly rate: Gauge;
}

async function createGauges(registry: Registry | undefined, logger: Logger): Promise<Gauges | undefined> {
  let prom: typeof PromClient;
  try {
    prom = await import('prom-client');
  } catch (error) {
    logger.debug(
      { event: 'migrations.metrics.disabled', error: errorMessage(error) },
      'prom-client not installed; no metrics',
    );
    return undefined;
  }
  const target = registry ?? prom.register;
  const gauge = (name: string, help: string, labelNames: string[] = []): Gauge => {
    const existing = target.getSingleMetric(name);
    if (existing !== undefined) return existing as Gauge;
    return new prom.Gauge({ name, help, labelNames, registers: [target] });
  };
  return {
    pending: gauge('gantry_migrations_pending_migrations', 'Migrations in the app folder not applied yet.'),
    applied: gauge('gantry_migrations_applied_migrations', 'Migrations applied successfully.'),
    failed: gauge('gantry_migrations_failed_migrations', 'Migrations whose last attempt failed.'),
    rowsDone: gauge('gantry_migrations_backfill_rows_done', 'Rows walked by unfinished backfills.', ['migration']),
    rowsRemaining: gauge('gantry_migrations_backfill_rows_remaining', 'Estimated rows left in unfinished backfills.', [
      'migration',
    ]),
    rate: gauge('gantry_migrations_backfill_rate_rows_per_second', 'Measured rate of unfinished backfills.', [
      'migration',
    ]),
  };
}

/**
 * Creates the schema monitor of an app: startup check, `/q/info` section and gauges from the state tables.
 * @throws MigrationError `GANTRY_MIGRATIONS_INVALID_OPTION` for malformed options.
 * @example
 * const monitor = createSchemaMonitor({ pool, directory: './migrations', schemaSupports: { min: '5', max: '7' } });
 * await monitor.start();
 * health.addCheck(monitor.check, { groups: ['startup'] });
 * health.addInfoContributor(monitor.info);
 */
export function createSchemaMonitor(options: SchemaMonitorOptions): SchemaMonitor {
  if (typeof options?.pool?.query !== 'function')
    invalidOption('pool', 'a pg Pool (anything with query())', options?.pool);
  if (typeof options.directory !== 'string' || options.directory === '')
    invalidOption('directory', 'the migrations folder', options.directory);
  const supports = validateSchemaSupports(options.schemaSupports);
  const refreshIntervalMs = options.refreshIntervalMs ?? DEFAULT_MONITOR_REFRESH_INTERVAL_MS;
  if (!Number.isFinite(refreshIntervalMs) || refreshIntervalMs < 0)
    invalidOption('refreshIntervalMs', 'a finite number ≥ 0', refreshIntervalMs);
  const checkTimeoutMs = options.checkTimeoutMs ?? DEFAULT_MONITOR_CHECK_TIMEOUT_MS;
  if (!Number.isFinite(checkTimeoutMs) || checkTimeoutMs <= 0)
    invalidOption('checkTimeoutMs', 'a finite number > 0', checkTimeoutMs);
  const schema = options.schema ?? DEFAULT_HISTORY_SCHEMA;
  const names = storeNames(schema);
  const logger = (options.logger ?? SILENT_LOGGER).child({ component: 'migrations.monitor' });
  const pool = options.pool;
  const client = { query: pool.query.bind(pool) } as unknown as pg.ClientBase;

  let files: MigrationFile[] | undefined;
  let latest: SchemaInfo | null = null;
  let applied = 0;
  let backfills: readonly BackfillStatus[] = [];
  let gauges: Promise<Gauges | undefined> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let started = false;

  const refreshOnce = async (): Promise<SchemaInfo> => {
    files ??= loadMigrationFiles(options.directory);
    const exists = await storeExists(client, schema);
    const history = exists ? await readHistory(client, names) : [];
    backfills = exists ? await readBackfills(client, names) : [];
    const status = computeStatus(files, history, backfills);
    applied = status.migrations.filter(
      (migration) => migration.state === 'applied' || migration.state === 'checksum-mismatch',
    ).length;
    latest = Object.freeze({
      current: status.current,
      phase: status.phase,
      supports,
      pending: status.pending,
      failed: status.failed,
      lastContract: status.lastContract,
    });
    if (options.registry !== false) {
      gauges ??= createGauges(options.registry, logger);
      const metrics = await gauges;
      if (metrics !== undefined) {
        metrics.pending.set(latest.pending);
        metrics.applied.set(applied);
        metrics.failed.set(latest.failed.length);
        metrics.rowsDone.reset();
        metrics.rowsRemaining.reset();
        metrics.rate.reset();
        for (const backfill of backfills) {
          if (backfill.state === 'done') continue;
          const labels = { migration: backfill.version };
          metrics.rowsDone.set(labels, backfill.rowsDone);
          metrics.rowsRemaining.set(labels, Math.max(0, (backfill.rowsTotal ?? 0) - backfill.rowsDone));
          metrics.rate.set(labels, backfill.rowsPerSecond ?? 0);
        }
      }
    }
    return latest;
  };
  const refreshes = serialized(refreshOnce);
  const refresh = (): Promise<SchemaInfo> => refreshes.run();

  const evaluate = (info: SchemaInfo): CheckResult => {
    const requiredPending = (files ?? []).filter(
      (file) =>
        compareVersions(file.version, supports.min) <= 0 &&
        (info.current === null || compareVersions(file.version, info.current) > 0),
    ).length;
    const tooOld = info.current === null || compareVersions(info.current, supports.min) < 0;
    const contractedPast = info.lastContract !== null && compareVersions(info.lastContract, supports.max) > 0;
    const down = info.failed.length > 0 || requiredPending > 0 || tooOld || contractedPast;
    const data: Record<string, string | number | boolean> = {
      current: info.current ?? 'none',
      pending: info.pending,
      failed: info.failed.length,
      supports: `${supports.min}..${supports.max}`,
    };
    if (info.phase !== null) data['phase'] = info.phase;
    if (info.failed.length > 0) data['failedVersions'] = info.failed.map((item) => item.version).join(',');
    if (tooOld) data['reason'] = `schema ${info.current ?? 'empty'} is older than required ${supports.min}`;
    if (contractedPast)
      data['reason'] = `schema contracted to ${info.lastContract ?? ''}, beyond supported ${supports.max}`;
    if (info.failed.length > 0) data['reason'] = 'a migration failed';
    return { status: down ? 'DOWN' : 'UP', data };
  };

  const check: Check = {
    name: 'migrations',
    critical: true,
    timeoutMs: checkTimeoutMs,
    run: async (signal) => {
      const aborted = new Promise<never>((_, reject) => {
        const onAbort = (): void => reject(signal.reason instanceof Error ? signal.reason : new Error('check aborted'));
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      });
      aborted.catch(() => undefined);
      const info = await Promise.race([refresh(), aborted]);
      return evaluate(info);
    },
  };

  const info: InfoContributor = {
    name: 'schema',
    contribute: (): Readonly<Record<string, unknown>> => ({
      ...(latest ?? { current: null, phase: null, supports, pending: 0, failed: [], lastContract: null }),
    }),
  };

  return {
    check,
    info,
    snapshot: () => latest,
    refresh,
    start: async () => {
      if (started) return;
      started = true;
      const refreshLogged = (): Promise<unknown> =>
        refresh().catch((error: unknown) => {
          logger.warn(
            { event: 'migrations.monitor.refresh_failed', error: errorMessage(error) },
            'schema refresh failed',
          );
        });
      // Chained, not setInterval: a refresh slower than the interval must not pile up behind itself.
      const schedule = (): void => {
        if (!started || refreshIntervalMs <= 0) return;
        timer = setTimeout(() => {
          void refreshLogged().finally(schedule);
        }, refreshIntervalMs);
        timer.unref();
      };
      await refreshLogged();
      schedule();
    },
    close: async () => {
      started = false;
      clearTimeout(timer);
      timer = undefined;
      await refreshes.idle();
    },
  };
}
