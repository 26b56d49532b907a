// The app side of the contract gate: every instance says which app version it runs and which schema versions it
// works with, through a heartbeat row and through its connections' application_name. `contract` refuses while a
// live instance cannot work with the schema the contract would leave behind.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { invalidOption } from './errors.ts';
import { SILENT_LOGGER, errorMessage, sqlState, type Logger } from './db.ts';
import { serialized } from './serialized.ts';
import { DEFAULT_HISTORY_SCHEMA, appVersionsDdl, storeNames } from './store.ts';
import { compareVersions, isVersion } from './version.ts';

/** The schema versions an app version works with. */
export interface SchemaSupports {
  /** The app needs every migration up to this version applied. */
  readonly min: string;
  /** The app breaks once a contract migration above this version is applied (expand migrations never break it). */
  readonly max: string;
}

/** Default interval between heartbeats. */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 10_000;
/** Heartbeats older than this no longer count as a live instance (3 missed beats). */
export const DEFAULT_HEARTBEAT_TTL_MS = 30_000;

/** Options of {@link registerAppVersion}. */
export interface RegisterAppVersionOptions {
  readonly service: string;
  /** The app's own version (informational; shown in refusals). */
  readonly version: string;
  readonly schemaSupports: SchemaSupports;
  /** Unique per process. @default `<hostname>-<pid>-<random>` */
  readonly instance?: string;
  /** @default DEFAULT_HEARTBEAT_INTERVAL_MS */
  readonly intervalMs?: number;
  /** Schema of the state tables. @default DEFAULT_HISTORY_SCHEMA */
  readonly schema?: string;
  readonly logger?: Logger;
}

/**
 * A running heartbeat; `stop()` removes the row so contract need not wait for it to expire. Beats never overlap:
 * the next one is scheduled `intervalMs` after the previous one finished.
 */
export interface AppVersionRegistration {
  readonly service: string;
  readonly instance: string;
  /** An `application_name` to give the app's pg pool, so the gate also sees its sessions. */
  readonly applicationName: string;
  /**
   * Writes one heartbeat now (after the one in progress, if any). Never throws: failures are logged and retried on
   * the next beat. `false` once stopped.
   */
  beat(): Promise<boolean>;
  /** Stops the heartbeat, waits for a beat in progress, then deletes the row. Idempotent. */
  stop(): Promise<void>;
}

function validateSupports(supports: unknown, name = 'schemaSupports'): SchemaSupports {
  const value = supports as Partial<SchemaSupports> | undefined;
  if (typeof value !== 'object' || value === null) invalidOption(name, 'an object { min, max }', supports);
  if (typeof value.min !== 'string' || !isVersion(value.min))
    invalidOption(`${name}.min`, 'a version such as "1.2"', value.min);
  if (typeof value.max !== 'string' || !isVersion(value.max))
    invalidOption(`${name}.max`, 'a version such as "1.4"', value.max);
  if (compareVersions(value.min, value.max) > 0)
    invalidOption(`${name}.max`, `a version ≥ min (${value.min})`, value.max);
  return Object.freeze({ min: value.min, max: value.max });
}

export { validateSupports as validateSchemaSupports };

const APPLICATION_NAME = /^gantry:(.+)@(\S+) schema (\d+(?:\.\d+)*)\.\.(\d+(?:\.\d+)*)$/;

/**
 * The `application_name` that tells the contract gate which schema versions a connection's app supports
 * (PostgreSQL keeps 63 bytes; long service names are shortened).
 * @throws MigrationError `GANTRY_MIGRATIONS_INVALID_OPTION` for malformed versions.
 * @example
 * new pg.Pool({ application_name: appApplicationName({ service: 'orders', version: '2.1.0', schemaSupports: { min: '5', max: '7' } }) });
 */
export function appApplicationName(options: {
  service: string;
  version: string;
  schemaSupports: SchemaSupports;
}): string {
  const supports = validateSupports(options.schemaSupports);
  const tail = `@${options.version} schema ${supports.min}..${supports.max}`;
  const room = Math.max(1, 63 - 'gantry:'.length - Buffer.byteLength(tail));
  return `gantry:${options.service.slice(0, room)}${tail}`;
}

/** Parses an application_name written by {@link appApplicationName}. */
export function parseApplicationName(
  name: string,
): { service: string; version: string; schemaSupports: SchemaSupports } | undefined {
  const match = APPLICATION_NAME.exec(name);
  if (match === null) return undefined;
  return { service: match[1]!, version: match[2]!, schemaSupports: { min: match[3]!, max: match[4]! } };
}

/**
 * Starts the heartbeat of this app instance: writes a row now and every `intervalMs` (timer unref'd). Creates the
 * heartbeat table when missing and the role may; otherwise logs and keeps trying.
 * @throws MigrationError `GANTRY_MIGRATIONS_INVALID_OPTION` for malformed options (never for database errors).
 * @example
 * const registration = await registerAppVersion(pool, {
 *   service: 'orders', version: '2.1.0', schemaSupports: { min: '5', max: '7' },
 * });
 * health.addShutdownHook({ name: 'schema-heartbeat', run: () => registration.stop() });
 */
export async function registerAppVersion(
  pool: Pick<pg.Pool, 'query'>,
  options: RegisterAppVersionOptions,
): Promise<AppVersionRegistration> {
  if (typeof options.service !== 'string' || options.service === '')
    invalidOption('service', 'a non-empty string', options.service);
  if (typeof options.version !== 'string' || options.version === '')
    invalidOption('version', 'a non-empty string', options.version);
  const supports = validateSupports(options.schemaSupports);
  const intervalMs = options.intervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
  if (!Number.isFinite(intervalMs) || intervalMs < 10) invalidOption('intervalMs', 'a finite number ≥ 10', intervalMs);
  const instance = options.instance ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const names = storeNames(options.schema ?? DEFAULT_HISTORY_SCHEMA);
  const logger = (options.logger ?? SILENT_LOGGER).child({ service: options.service });
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  const upsert = `INSERT INTO ${names.appVersions} (service, instance, version, schema_min, schema_max)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (service, instance) DO UPDATE
      SET version = EXCLUDED.version, schema_min = EXCLUDED.schema_min, schema_max = EXCLUDED.schema_max, last_seen = now()`;
  const values = [options.service, instance, options.version, supports.min, supports.max];

  const beatOnce = async (): Promise<boolean> => {
    // A beat queued behind the one stop() waited for must not write the row again.
    if (stopped) return false;
    try {
      await pool.query(upsert, values);
      return true;
    } catch (error) {
      if (sqlState(error) === '42P01' || sqlState(error) === '3F000') {
        try {
          await pool.query(appVersionsDdl(names));
          await pool.query(upsert, values);
          return true;
        } catch (creationError) {
          logger.warn(
            { event: 'migrations.heartbeat.failed', error: errorMessage(creationError) },
            'heartbeat table missing and not creatable',
          );
          return false;
        }
      }
      logger.warn({ event: 'migrations.heartbeat.failed', error: errorMessage(error) }, 'schema heartbeat failed');
      return false;
    }
  };
  const beats = serialized(beatOnce);
  const beat = async (): Promise<boolean> => (stopped ? false : beats.run());
  // Chained, not setInterval: a beat slower than the interval must not overlap the next one.
  const schedule = (): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      void beat().finally(schedule);
    }, intervalMs);
    timer.unref();
  };

  await beat();
  schedule();

  return {
    service: options.service,
    instance,
    applicationName: appApplicationName({
      service: options.service,
      version: options.version,
      schemaSupports: supports,
    }),
    beat,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      clearTimeout(timer);
      timer = undefined;
      // Every beat in progress or queued, not only the latest: a slow one would re-insert the row after the DELETE.
      await beats.idle();
      try {
        await pool.query(`DELETE FROM ${names.appVersions} WHERE service = $1 AND instance = $2`, [
          options.service,
          instance,
        ]);
      } catch (error) {
        logger.warn(
          { event: 'migrations.heartbeat.remove_failed', error: errorMessage(error) },
          'could not remove heartbeat',
        );
      }
    },
  };
}

/** A live app instance or session the contract gate knows about. */
export interface LiveClient {
  readonly source: 'heartbeat' | 'connection';
  readonly service: string;
  readonly version: string;
  /** Heartbeat instance id, or `pid <n>` for a connection. */
  readonly instance: string;
  readonly schemaSupports: SchemaSupports;
  /** Seconds since the last heartbeat or since the session's last state change. */
  readonly ageSeconds: number;
}

/** Reads live instances: fresh heartbeats plus sessions whose application_name carries a schema range. */
export async function readLiveClients(client: pg.ClientBase, schema: string, ttlMs: number): Promise<LiveClient[]> {
  const names = storeNames(schema);
  const live: LiveClient[] = [];
  const exists = await client.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [names.appVersions]);
  if (exists.rows[0]?.ok === true) {
    const beats = await client.query<{
      service: string;
      instance: string;
      version: string;
      schema_min: string;
      schema_max: string;
      age: number;
    }>(
      `SELECT service, instance, version, schema_min, schema_max, extract(epoch FROM now() - last_seen)::float8 AS age
         FROM ${names.appVersions} WHERE last_seen > now() - make_interval(secs => $1::float8 / 1000)`,
      [ttlMs],
    );
    for (const row of beats.rows) {
      live.push({
        source: 'heartbeat',
        service: row.service,
        version: row.version,
        instance: row.instance,
        schemaSupports: { min: row.schema_min, max: row.schema_max },
        ageSeconds: row.age,
      });
    }
  }
  const sessions = await client.query<{ pid: number; application_name: string; age: number }>(
    `SELECT pid, application_name, extract(epoch FROM now() - coalesce(state_change, backend_start))::float8 AS age
       FROM pg_stat_activity WHERE application_name LIKE 'gantry:%' AND pid <> pg_backend_pid() AND datname = current_database()`,
  );
  for (const row of sessions.rows) {
    const parsed = parseApplicationName(row.application_name);
    if (parsed === undefined || !isVersion(parsed.schemaSupports.min) || !isVersion(parsed.schemaSupports.max))
      continue;
    live.push({ source: 'connection', ...parsed, instance: `pid ${row.pid}`, ageSeconds: row.age });
  }
  return live;
}

/** The live clients a contract migration at `version` would break (their `schemaSupports.max` is below it). */
export function blockingClients(clients: readonly LiveClient[], version: string): LiveClient[] {
  return clients.filter((client) => compareVersions(client.schemaSupports.max, version) < 0);
}
