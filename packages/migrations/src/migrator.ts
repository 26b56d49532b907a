// The runner: advisory lock, history, one transaction per migration (or statement by statement for what cannot
// run in one), lock_timeout with bounded retries, backfill steps, the contract gate and the read-only reports
// (info, validate, plan, compat). Every command takes its own connection and releases it.
import { userInfo, hostname } from 'node:os';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { blockingClients, readLiveClients, DEFAULT_HEARTBEAT_TTL_MS, type LiveClient } from './app-version.ts';
import {
  defineBackfill,
  readBackfills,
  runBackfill,
  verifyBackfill,
  type BackfillDefinition,
  type BackfillProgress,
  type BackfillStatus,
} from './backfill.ts';
import {
  SILENT_LOGGER,
  SYSTEM_CLOCK,
  advisoryLockKey,
  backoffDelay,
  errorMessage,
  isTransientLockError,
  quoteLiteral,
  sqlState,
  type Clock,
  type Logger,
} from './db.ts';
import { MigrationError, invalidOption, isMigrationError } from './errors.ts';
import { loadMigrationFiles, type MigrationFile, type MigrationPhase } from './files.ts';
import { lintMigrationFiles, lintSql, type FileLintResult, type LintFinding } from './lint.ts';
import { lockImpact, type LockImpact, type LockLevel, type SqlStatement } from './sql.ts';
import { computeStatus, isPendingState, type MigrationStatus, type SchemaStatus } from './status.ts';
import {
  DEFAULT_HISTORY_SCHEMA,
  audit,
  ensureStore,
  readHistory,
  storeExists,
  storeNames,
  type HistoryRow,
} from './store.ts';
import { compareVersions, isVersion, normalizeVersion, parseVersion } from './version.ts';

/** `lock_timeout` of every DDL session: how long a statement may queue for its lock before giving up. */
export const DEFAULT_LOCK_TIMEOUT_MS = 500;
/** `statement_timeout` of transactional migrations. */
export const DEFAULT_STATEMENT_TIMEOUT_MS = 60_000;
/** `statement_timeout` of CONCURRENTLY statements (0 = none; index builds take as long as they take). */
export const DEFAULT_CONCURRENT_STATEMENT_TIMEOUT_MS = 0;
/** Retries after a lock timeout before the migration fails. */
export const DEFAULT_LOCK_RETRIES = 5;
/** First retry delay; doubles each retry, with jitter. */
export const DEFAULT_RETRY_BASE_DELAY_MS = 250;
/** Cap of the retry delay. */
export const DEFAULT_RETRY_MAX_DELAY_MS = 10_000;
/** How long a second migrator waits for the advisory lock before giving up. */
export const DEFAULT_ADVISORY_LOCK_WAIT_MS = 30_000;
/** `statement_timeout` of one backfill batch. */
export const DEFAULT_BACKFILL_STATEMENT_TIMEOUT_MS = 30_000;
/** Rows per second assumed for estimates before any backfill was measured. */
export const DEFAULT_ESTIMATED_BACKFILL_ROWS_PER_SECOND = 50_000;
/** Rows per second assumed for a table rewrite in estimates. */
export const DEFAULT_ESTIMATED_REWRITE_ROWS_PER_SECOND = 200_000;
/** Estimated seconds above which `compat` and `plan` call a step long-running. */
export const LONG_RUNNING_SECONDS = 60;

/** Consecutive transactional expand migrations sent in one round trip (each in its own transaction). */
const GROUP_SIZE = 50;

/** What `migrate` does with lint findings of pending files. */
export type LintEnforcement = 'enforce' | 'report' | 'off';

/** Options of {@link createMigrator}. */
export interface MigratorOptions {
  /** Folder of `V<version>__<description>.sql|.ts` files. */
  readonly directory: string;
  /** PostgreSQL URL. One of `connectionString`, `connection` and `pool` is required. */
  readonly connectionString?: string;
  /** pg client configuration. */
  readonly connection?: pg.ClientConfig;
  /** A pool to borrow one connection from per command (session-level advisory lock: no transaction pooler). */
  readonly pool?: pg.Pool;
  /** Schema of the state tables. @default DEFAULT_HISTORY_SCHEMA */
  readonly schema?: string;
  /** @default DEFAULT_LOCK_TIMEOUT_MS */
  readonly lockTimeoutMs?: number;
  /** @default DEFAULT_STATEMENT_TIMEOUT_MS */
  readonly statementTimeoutMs?: number;
  /** @default DEFAULT_CONCURRENT_STATEMENT_TIMEOUT_MS */
  readonly concurrentStatementTimeoutMs?: number;
  /** @default DEFAULT_BACKFILL_STATEMENT_TIMEOUT_MS */
  readonly backfillStatementTimeoutMs?: number;
  /** @default DEFAULT_LOCK_RETRIES */
  readonly lockRetries?: number;
  /** @default DEFAULT_RETRY_BASE_DELAY_MS */
  readonly retryBaseDelayMs?: number;
  /** @default DEFAULT_RETRY_MAX_DELAY_MS */
  readonly retryMaxDelayMs?: number;
  /** @default DEFAULT_ADVISORY_LOCK_WAIT_MS */
  readonly advisoryLockWaitMs?: number;
  /** Heartbeats older than this do not hold back contract. @default DEFAULT_HEARTBEAT_TTL_MS */
  readonly heartbeatTtlMs?: number;
  /** Apply pending migrations older than the newest applied one. @default false */
  readonly allowOutOfOrder?: boolean;
  /** @default 'enforce' (lint errors in pending files stop `migrate`) */
  readonly lint?: LintEnforcement;
  /** Recorded as `installed_by` and in the audit log. @default `<os user>@<hostname>` */
  readonly actor?: string;
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** Called after every backfill batch. */
  readonly onProgress?: (progress: BackfillProgress) => void;
}

/** The validated, frozen configuration. */
export interface MigratorConfig {
  readonly directory: string;
  readonly schema: string;
  readonly lockTimeoutMs: number;
  readonly statementTimeoutMs: number;
  readonly concurrentStatementTimeoutMs: number;
  readonly backfillStatementTimeoutMs: number;
  readonly lockRetries: number;
  readonly retryBaseDelayMs: number;
  readonly retryMaxDelayMs: number;
  readonly advisoryLockWaitMs: number;
  readonly heartbeatTtlMs: number;
  readonly allowOutOfOrder: boolean;
  readonly lint: LintEnforcement;
  readonly actor: string;
}

/** One applied step of `migrate`. */
export interface AppliedMigration {
  readonly version: string;
  readonly description: string;
  readonly phase: MigrationPhase;
  readonly durationMs: number;
  readonly transactional: boolean;
  /** Attempts it took (lock-timeout retries + 1). */
  readonly attempts: number;
  /** Rows a backfill step walked. */
  readonly rows?: number;
  readonly forcedReason?: string;
}

/** Result of `migrate`, `contract` and `backfill run`. */
export interface MigrateReport {
  readonly applied: readonly AppliedMigration[];
  /** Where a phase-limited run stopped: the next pending migration of another phase. */
  readonly stoppedAt: { readonly version: string; readonly phase: MigrationPhase } | null;
  readonly current: string | null;
  readonly warnings: readonly LintFinding[];
}

/** One problem `validate` found. */
export interface ValidationProblem {
  readonly version: string;
  readonly script: string | null;
  readonly state: MigrationStatus['state'];
  readonly message: string;
}

/** Result of `validate`. */
export interface ValidateReport {
  readonly ok: boolean;
  readonly problems: readonly ValidationProblem[];
}

/** A statement in `plan`. */
export interface PlannedStatement {
  readonly line: number;
  readonly sql: string;
  readonly lock: LockLevel;
  readonly blocks: LockImpact;
  readonly tables: readonly { readonly name: string; readonly estimatedRows: number | null }[];
  readonly rewrite: boolean;
  readonly transactional: boolean;
  readonly estimatedSeconds: number | null;
}

/** A migration in `plan`. */
export interface PlannedMigration {
  readonly version: string;
  readonly description: string;
  readonly phase: MigrationPhase;
  readonly script: string;
  readonly transactional: boolean;
  readonly statements: readonly PlannedStatement[];
  readonly findings: readonly LintFinding[];
  readonly backfill?: {
    readonly table: string;
    readonly estimatedRows: number | null;
    readonly estimatedSeconds: number | null;
  };
  /** For contract migrations: the live clients that would make `contract` refuse right now. */
  readonly blockingClients?: readonly LiveClient[];
}

/** Result of `plan`. */
export interface PlanReport {
  readonly current: string | null;
  readonly migrations: readonly PlannedMigration[];
  readonly stoppedAt: { readonly version: string; readonly phase: MigrationPhase } | null;
}

/** A warning of `compat`. */
export interface CompatWarning {
  readonly code:
    'major-version-jump' | 'destructive-migration' | 'long-running' | 'backfill' | 'lint-error' | 'no-migrations';
  readonly version: string | null;
  readonly message: string;
}

/** Result of `compat`. */
export interface CompatReport {
  readonly from: string;
  readonly to: string;
  readonly migrations: readonly {
    readonly version: string;
    readonly description: string;
    readonly phase: MigrationPhase;
  }[];
  readonly warnings: readonly CompatWarning[];
  /** Sum of the estimates, or null when no estimate was possible. */
  readonly estimatedSeconds: number | null;
  /** False when a lint error or a destructive change without a contract phase is in the path. */
  readonly ok: boolean;
}

/** Result of `baseline`. */
export interface BaselineReport {
  readonly version: string;
  readonly description: string;
}

/** Result of `repair`. */
export interface RepairReport {
  readonly removedFailed: readonly string[];
  readonly realignedChecksums: readonly {
    readonly version: string;
    readonly from: string | null;
    readonly to: string;
  }[];
  readonly resetBackfills: readonly string[];
}

/** The migration runner. Every method opens its own connection and closes it. */
export interface Migrator {
  readonly config: MigratorConfig;
  /** Applied, pending, failed, out of order and tampered migrations, and backfill states. */
  info(): Promise<SchemaStatus & { readonly backfills: readonly BackfillStatus[] }>;
  /** Checksums, missing files, failed and out-of-order migrations. */
  validate(): Promise<ValidateReport>;
  /** Applies pending migrations in order, up to `target`, or only while they are of `phase`. */
  migrate(options?: MigrateOptions): Promise<MigrateReport>;
  /** Applies pending contract migrations (stops at the first of another phase) behind the gate. */
  contract(options?: Omit<MigrateOptions, 'phase'>): Promise<MigrateReport>;
  /** Runs pending backfill steps (stops at the first migration of another phase). */
  backfillRun(options?: Omit<MigrateOptions, 'phase' | 'force'>): Promise<MigrateReport>;
  /** Like {@link backfillRun} but only when a started backfill is waiting to be resumed. */
  backfillResume(options?: Omit<MigrateOptions, 'phase' | 'force'>): Promise<MigrateReport>;
  /** Stored state of every backfill. */
  backfillStatus(): Promise<readonly BackfillStatus[]>;
  /** Dry run: each pending statement with its lock level, tables and estimates. */
  plan(options?: Pick<MigrateOptions, 'target' | 'phase'>): Promise<PlanReport>;
  /** Lints every SQL file. */
  lint(): Promise<readonly FileLintResult[]>;
  /** Marks an existing database as being at `version` (empty history only). */
  baseline(options: {
    readonly version: string;
    readonly description?: string;
    readonly reason?: string;
  }): Promise<BaselineReport>;
  /** Removes failed entries, realigns checksums with the files, resets failed backfills; audited. */
  repair(options: { readonly reason: string }): Promise<RepairReport>;
  /** Upgrade-path check between two schema versions. */
  compat(options: { readonly from: string; readonly to: string }): Promise<CompatReport>;
  /** App instances and sessions the contract gate currently sees. */
  liveClients(): Promise<readonly LiveClient[]>;
}

/** Options of {@link Migrator.migrate}. */
export interface MigrateOptions {
  /** Apply up to and including this version. */
  readonly target?: string;
  /** Apply only while pending migrations are of this phase. */
  readonly phase?: MigrationPhase;
  /** Override the contract gate (not backfill verification). Needs `reason`; recorded in history and audit. */
  readonly force?: boolean;
  readonly reason?: string;
  /** Stops between batches/migrations. */
  readonly signal?: AbortSignal;
}

const nonNegativeNumber = (value: unknown, name: string, fallback: number): number => {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
    invalidOption(name, 'a finite number ≥ 0', value);
  return value;
};
const integerOption = (value: unknown, name: string, fallback: number): number => {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) invalidOption(name, 'an integer ≥ 0', value);
  return value;
};

/** Validates options into the frozen configuration (no I/O). */
export function resolveMigratorConfig(options: MigratorOptions): MigratorConfig {
  if (typeof options !== 'object' || options === null) invalidOption('options', 'an object', options);
  if (typeof options.directory !== 'string' || options.directory === '') {
    invalidOption('directory', 'the path of the migrations folder', options.directory);
  }
  const sources = [options.connectionString, options.connection, options.pool].filter((value) => value !== undefined);
  if (sources.length !== 1) {
    invalidOption(
      'connectionString',
      'exactly one of `connectionString`, `connection` and `pool`',
      `${sources.length} given`,
    );
  }
  if (
    options.connectionString !== undefined &&
    (typeof options.connectionString !== 'string' || options.connectionString === '')
  ) {
    invalidOption('connectionString', 'a postgres:// URL', options.connectionString);
  }
  const schema = options.schema ?? DEFAULT_HISTORY_SCHEMA;
  if (typeof schema !== 'string' || !/^[A-Za-z_][A-Za-z0-9_$]{0,62}$/.test(schema)) {
    invalidOption('schema', 'a plain identifier of at most 63 characters', schema);
  }
  const lint = options.lint ?? 'enforce';
  if (!['enforce', 'report', 'off'].includes(lint)) invalidOption('lint', '"enforce", "report" or "off"', lint);
  if (options.actor !== undefined && (typeof options.actor !== 'string' || options.actor === '')) {
    invalidOption('actor', 'a non-empty string', options.actor);
  }
  let defaultActor: string;
  try {
    defaultActor = `${userInfo().username}@${hostname()}`;
  } catch {
    defaultActor = `uid ${process.getuid?.() ?? '?'}@${hostname()}`;
  }
  return Object.freeze({
    directory: options.directory,
    schema,
    lockTimeoutMs: nonNegativeNumber(options.lockTimeoutMs, 'lockTimeoutMs', DEFAULT_LOCK_TIMEOUT_MS),
    statementTimeoutMs: nonNegativeNumber(
      options.statementTimeoutMs,
      'statementTimeoutMs',
      DEFAULT_STATEMENT_TIMEOUT_MS,
    ),
    concurrentStatementTimeoutMs: nonNegativeNumber(
      options.concurrentStatementTimeoutMs,
      'concurrentStatementTimeoutMs',
      DEFAULT_CONCURRENT_STATEMENT_TIMEOUT_MS,
    ),
    backfillStatementTimeoutMs: nonNegativeNumber(
      options.backfillStatementTimeoutMs,
      'backfillStatementTimeoutMs',
      DEFAULT_BACKFILL_STATEMENT_TIMEOUT_MS,
    ),
    lockRetries: integerOption(options.lockRetries, 'lockRetries', DEFAULT_LOCK_RETRIES),
    retryBaseDelayMs: nonNegativeNumber(options.retryBaseDelayMs, 'retryBaseDelayMs', DEFAULT_RETRY_BASE_DELAY_MS),
    retryMaxDelayMs: nonNegativeNumber(options.retryMaxDelayMs, 'retryMaxDelayMs', DEFAULT_RETRY_MAX_DELAY_MS),
    advisoryLockWaitMs: nonNegativeNumber(
      options.advisoryLockWaitMs,
      'advisoryLockWaitMs',
      DEFAULT_ADVISORY_LOCK_WAIT_MS,
    ),
    heartbeatTtlMs: nonNegativeNumber(options.heartbeatTtlMs, 'heartbeatTtlMs', DEFAULT_HEARTBEAT_TTL_MS),
    allowOutOfOrder: options.allowOutOfOrder === true,
    lint,
    actor: options.actor ?? defaultActor,
  });
}

/**
 * Loads a backfill step's definition (its default export, or an export named `backfill`).
 * @throws MigrationError `GANTRY_MIGRATIONS_INVALID_FILE` when the module does not export one.
 */
export async function loadBackfillDefinition(file: MigrationFile): Promise<BackfillDefinition> {
  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(file.path).href)) as Record<string, unknown>;
  } catch (error) {
    throw new MigrationError(
      'GANTRY_MIGRATIONS_INVALID_FILE',
      `Cannot load backfill step "${file.script}": ${errorMessage(error)}`,
      {
        cause: error,
        version: file.version,
      },
    );
  }
  const candidate = module['default'] ?? module['backfill'];
  if (typeof candidate !== 'object' || candidate === null) {
    throw new MigrationError(
      'GANTRY_MIGRATIONS_INVALID_FILE',
      `Backfill step "${file.script}" must export default defineBackfill({...})`,
      { version: file.version },
    );
  }
  try {
    return defineBackfill(candidate as BackfillDefinition);
  } catch (error) {
    throw new MigrationError(
      'GANTRY_MIGRATIONS_INVALID_FILE',
      `Backfill step "${file.script}": ${errorMessage(error)}`,
      {
        cause: error,
        version: file.version,
      },
    );
  }
}

/** A session that holds, or could hold, the advisory lock. */
interface Session {
  readonly client: pg.ClientBase;
  release(): Promise<void>;
}

/**
 * Creates a migrator. Validates options; connects only when a command runs.
 * @throws MigrationError `GANTRY_MIGRATIONS_INVALID_OPTION` for bad options.
 * @example
 * const migrator = createMigrator({ directory: './migrations', connectionString: process.env.DATABASE_URL });
 * await migrator.migrate({ phase: 'expand' });
 */
export function createMigrator(options: MigratorOptions): Migrator {
  const config = resolveMigratorConfig(options);
  const logger = (options.logger ?? SILENT_LOGGER).child({ component: 'migrations' });
  const clock = options.clock ?? SYSTEM_CLOCK;
  const names = storeNames(config.schema);
  const lockKey = advisoryLockKey(config.schema);

  const open = async (): Promise<Session> => {
    if (options.pool !== undefined) {
      const client = await options.pool.connect();
      await client.query(`SET application_name = 'gantry-migrate'`);
      return {
        client,
        release: async () => {
          await client.query('SELECT pg_advisory_unlock_all(); RESET ALL').catch(() => undefined);
          client.release();
        },
      };
    }
    const client = new pg.Client({
      ...(options.connection ?? {}),
      ...(options.connectionString === undefined ? {} : { connectionString: options.connectionString }),
      application_name: 'gantry-migrate',
    });
    client.on('error', (error) =>
      logger.warn({ event: 'migrations.connection.error', error: errorMessage(error) }, 'connection error'),
    );
    await client.connect();
    return { client, release: () => client.end().catch(() => undefined) };
  };

  const acquireLock = async (client: pg.ClientBase): Promise<void> => {
    const deadline = clock.now() + config.advisoryLockWaitMs;
    let announced = false;
    for (;;) {
      const result = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS ok', [lockKey]);
      if (result.rows[0]?.ok === true) return;
      if (!announced) {
        announced = true;
        logger.info(
          { event: 'migrations.lock.waiting', waitMs: config.advisoryLockWaitMs },
          'waiting for another migrator',
        );
      }
      const left = deadline - clock.now();
      if (left <= 0) break;
      await clock.sleep(Math.min(200, left));
    }
    const key = BigInt(lockKey);
    const unsigned = BigInt.asUintN(64, key);
    const holder = await client.query<{ pid: number; application_name: string; seconds: number; state: string }>(
      `SELECT a.pid, a.application_name, a.state, extract(epoch FROM now() - a.backend_start)::int AS seconds
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid AND l.objsubid = 1`,
      [(unsigned >> 32n).toString(), (unsigned & 0xffffffffn).toString()],
    );
    const who = holder.rows[0];
    throw new MigrationError(
      'GANTRY_MIGRATIONS_LOCK_NOT_ACQUIRED',
      `Another migrator holds the migration lock${who === undefined ? '' : ` (pid ${who.pid}, ${who.application_name || 'no application_name'}, connected ${who.seconds} s ago)`}; gave up after ${config.advisoryLockWaitMs} ms`,
      { details: who === undefined ? {} : { pid: who.pid, applicationName: who.application_name } },
    );
  };

  /** Runs `work` on a fresh session, optionally under the advisory lock with the state tables ensured. */
  const withSession = async <T>(locked: boolean, work: (client: pg.ClientBase) => Promise<T>): Promise<T> => {
    const session = await open();
    try {
      if (locked) {
        await acquireLock(session.client);
        await ensureStore(session.client, names);
      }
      return await work(session.client);
    } finally {
      if (locked) await session.client.query('SELECT pg_advisory_unlock($1::bigint)', [lockKey]).catch(() => undefined);
      await session.release();
    }
  };

  const readState = async (
    client: pg.ClientBase,
  ): Promise<{ files: MigrationFile[]; status: SchemaStatus; backfills: BackfillStatus[]; history: HistoryRow[] }> => {
    const files = loadMigrationFiles(config.directory);
    const exists = await storeExists(client, config.schema);
    const history = exists ? await readHistory(client, names) : [];
    const backfills = exists ? await readBackfills(client, names) : [];
    return { files, status: computeStatus(files, history, backfills), backfills, history };
  };

  const problemsOf = (status: SchemaStatus): ValidationProblem[] => {
    const problems: ValidationProblem[] = [];
    for (const migration of status.migrations) {
      const base = { version: migration.version, script: migration.script, state: migration.state };
      if (migration.state === 'checksum-mismatch') {
        problems.push({
          ...base,
          message: `${migration.script ?? migration.version} changed after it was applied (applied ${migration.appliedChecksum ?? '?'}, file ${migration.checksum ?? '?'})`,
        });
      } else if (migration.state === 'missing') {
        problems.push({ ...base, message: `Version ${migration.version} is applied but its file is gone` });
      } else if (migration.state === 'failed') {
        problems.push({
          ...base,
          message: `Version ${migration.version} failed: ${migration.error ?? 'unknown error'}`,
        });
      } else if (migration.state === 'out-of-order' && !config.allowOutOfOrder) {
        problems.push({
          ...base,
          message: `Version ${migration.version} is pending but older than the newest applied version ${status.current ?? ''} (allowOutOfOrder is off)`,
        });
      }
    }
    return problems;
  };

  const historyInsert = (
    file: MigrationFile,
    fields: {
      success: boolean;
      transactional: boolean;
      statementsApplied: number;
      executionMs: string;
      error?: string | null;
      forcedReason?: string | null;
    },
  ): string =>
    `INSERT INTO ${names.history} (version, description, phase, script, checksum, transactional, statements_applied, installed_by, execution_ms, success, error, forced_reason)
     VALUES (${quoteLiteral(file.version)}, ${quoteLiteral(file.description)}, ${quoteLiteral(file.phase)}, ${quoteLiteral(file.script)}, ${quoteLiteral(file.checksum)},
             ${fields.transactional}, ${fields.statementsApplied}, ${quoteLiteral(config.actor)}, ${fields.executionMs}, ${fields.success},
             ${quoteLiteral(fields.error ?? null)}, ${quoteLiteral(fields.forcedReason ?? null)})`;

  const recordFailure = async (
    client: pg.ClientBase,
    file: MigrationFile,
    error: unknown,
    transactional: boolean,
    applied: number,
    ms: number,
  ): Promise<void> => {
    await client
      .query(
        historyInsert(file, {
          success: false,
          transactional,
          statementsApplied: applied,
          executionMs: String(Math.round(ms)),
          error: errorMessage(error),
        }),
      )
      .catch((recordError: unknown) =>
        logger.error(
          { event: 'migrations.history.write_failed', error: errorMessage(recordError) },
          'could not record failure',
        ),
      );
  };

  /** Sessions holding locks on `tables` (for the lock-timeout message; never their query text). */
  const findBlockers = async (client: pg.ClientBase, tables: readonly string[]): Promise<string[]> => {
    if (tables.length === 0) return [];
    const result = await client
      .query<{ pid: number; state: string; application_name: string; mode: string; seconds: number | null }>(
        `SELECT DISTINCT a.pid, a.state, a.application_name, l.mode, extract(epoch FROM now() - a.xact_start)::int AS seconds
           FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.granted AND l.relation = ANY(SELECT to_regclass(t)::oid FROM unnest($1::text[]) AS t) AND a.pid <> pg_backend_pid()`,
        [tables],
      )
      .catch(() => ({ rows: [] }));
    return result.rows.map(
      (row) =>
        `pid ${row.pid} (${row.application_name || 'no application_name'}, ${row.state}, ${row.mode}, transaction open ${row.seconds ?? '?'} s)`,
    );
  };

  const runTransactional = async (
    client: pg.ClientBase,
    file: MigrationFile,
    statements: readonly SqlStatement[],
    forcedReason: string | null,
  ): Promise<{ attempts: number; durationMs: number }> => {
    const tables = [...new Set(statements.flatMap((statement) => statement.tables))];
    const prefix = `BEGIN;\nSET LOCAL lock_timeout = ${Math.round(config.lockTimeoutMs)};\nSET LOCAL statement_timeout = ${Math.round(config.statementTimeoutMs)};\n`;
    const text = `${prefix}${file.source}\n;\n${historyInsert(file, {
      success: true,
      transactional: true,
      statementsApplied: statements.length,
      executionMs: '(extract(epoch FROM clock_timestamp() - now()) * 1000)::int',
      forcedReason,
    })};\nCOMMIT;`;
    for (let attempt = 1; ; attempt += 1) {
      const started = performance.now();
      try {
        await client.query(text);
        return { attempts: attempt, durationMs: performance.now() - started };
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        const elapsed = performance.now() - started;
        if (isTransientLockError(error) && attempt <= config.lockRetries) {
          const wait = backoffDelay(attempt, config.retryBaseDelayMs, config.retryMaxDelayMs);
          logger.warn(
            {
              event: 'migrations.lock.retry',
              version: file.version,
              attempt,
              waitMs: wait,
              error: errorMessage(error),
            },
            'lock timeout, retrying',
          );
          await clock.sleep(wait);
          continue;
        }
        await recordFailure(client, file, error, true, 0, elapsed);
        throw await failure(client, file, error, tables, attempt);
      }
    }
  };

  const runGroup = async (
    client: pg.ClientBase,
    group: readonly MigrationFile[],
    statementCount: (version: string) => number,
  ): Promise<AppliedMigration[]> => {
    const text = group
      .map(
        (file) =>
          `BEGIN;\nSET LOCAL lock_timeout = ${Math.round(config.lockTimeoutMs)};\nSET LOCAL statement_timeout = ${Math.round(config.statementTimeoutMs)};\n${file.source}\n;\n${historyInsert(
            file,
            {
              success: true,
              transactional: true,
              statementsApplied: statementCount(file.version),
              executionMs: '(extract(epoch FROM clock_timestamp() - now()) * 1000)::int',
            },
          )};\nCOMMIT;`,
      )
      .join('\n');
    try {
      await client.query(text);
    } catch {
      await client.query('ROLLBACK').catch(() => undefined);
    }
    const rows = await client.query<{ version: string; execution_ms: number }>(
      `SELECT version, execution_ms FROM ${names.history} WHERE success AND version = ANY($1::text[])`,
      [group.map((file) => file.version)],
    );
    const timing = new Map(rows.rows.map((row) => [row.version, row.execution_ms]));
    const done: AppliedMigration[] = [];
    for (const file of group) {
      const executionMs = timing.get(file.version);
      if (executionMs === undefined) break;
      done.push({
        version: file.version,
        description: file.description,
        phase: file.phase,
        durationMs: executionMs,
        transactional: true,
        attempts: 1,
      });
    }
    return done;
  };

  const failure = async (
    client: pg.ClientBase,
    file: MigrationFile,
    error: unknown,
    tables: readonly string[],
    attempts: number,
  ): Promise<MigrationError> => {
    if (isTransientLockError(error)) {
      const blockers = await findBlockers(client, tables);
      return new MigrationError(
        'GANTRY_MIGRATIONS_LOCK_TIMEOUT',
        `${file.script}: could not get its locks within lock_timeout ${config.lockTimeoutMs} ms after ${attempts} attempts; nothing was changed and traffic was never blocked for longer than one lock_timeout.${blockers.length > 0 ? ` Holding locks on ${tables.join(', ')}: ${blockers.join('; ')}` : ''}`,
        { cause: error, version: file.version, details: { attempts, blockers, tables } },
      );
    }
    const position = Number((error as { position?: unknown }).position);
    const where = Number.isFinite(position) ? ` near character ${position}` : '';
    return new MigrationError(
      'GANTRY_MIGRATIONS_MIGRATION_FAILED',
      `${file.script} failed${where}: ${errorMessage(error)}`,
      {
        cause: error,
        version: file.version,
        details: { sqlState: sqlState(error) ?? null },
      },
    );
  };

  const dropInvalidIndex = async (client: pg.ClientBase, statement: SqlStatement): Promise<void> => {
    if (statement.kind !== 'IndexStmt' || statement.node['concurrent'] !== true) return;
    const name = statement.node['idxname'];
    if (typeof name !== 'string') return;
    const schemaName = (statement.node['relation'] as { schemaname?: string } | undefined)?.schemaname;
    const qualified =
      schemaName === undefined
        ? `"${name.replace(/"/g, '""')}"`
        : `"${schemaName.replace(/"/g, '""')}"."${name.replace(/"/g, '""')}"`;
    const invalid = await client.query<{ invalid: boolean }>(
      `SELECT NOT i.indisvalid AS invalid FROM pg_index i WHERE i.indexrelid = to_regclass($1)`,
      [qualified],
    );
    if (invalid.rows[0]?.invalid === true) {
      logger.warn(
        { event: 'migrations.index.invalid_dropped', index: qualified },
        'dropping invalid index left by an earlier attempt',
      );
      await client.query(`DROP INDEX CONCURRENTLY IF EXISTS ${qualified}`);
    }
  };

  const runStatementByStatement = async (
    client: pg.ClientBase,
    file: MigrationFile,
    statements: readonly SqlStatement[],
    resumeFrom: number,
    forcedReason: string | null,
  ): Promise<{ attempts: number; durationMs: number }> => {
    const started = performance.now();
    const inserted = await client.query<{ installed_rank: string }>(
      `${historyInsert(file, { success: false, transactional: false, statementsApplied: resumeFrom, executionMs: '0', error: 'in progress', forcedReason })} RETURNING installed_rank`,
    );
    const rank = inserted.rows[0]!.installed_rank;
    let attempts = 1;
    try {
      for (let index = resumeFrom; index < statements.length; index += 1) {
        const statement = statements[index]!;
        const timeout = statement.transactional ? config.statementTimeoutMs : config.concurrentStatementTimeoutMs;
        for (let attempt = 1; ; attempt += 1) {
          try {
            await dropInvalidIndex(client, statement);
            await client.query(
              `SET lock_timeout = ${Math.round(config.lockTimeoutMs)}; SET statement_timeout = ${Math.round(timeout)}`,
            );
            await client.query(statement.text);
            break;
          } catch (error) {
            if (isTransientLockError(error) && attempt <= config.lockRetries) {
              attempts += 1;
              const wait = backoffDelay(attempt, config.retryBaseDelayMs, config.retryMaxDelayMs);
              logger.warn(
                { event: 'migrations.lock.retry', version: file.version, statement: index, attempt, waitMs: wait },
                'lock timeout, retrying',
              );
              await clock.sleep(wait);
              continue;
            }
            throw Object.assign(new Error('statement failed'), { original: error, index, attempt });
          }
        }
        await client.query(`UPDATE ${names.history} SET statements_applied = $2 WHERE installed_rank = $1`, [
          rank,
          index + 1,
        ]);
      }
      const durationMs = performance.now() - started;
      await client.query(
        `UPDATE ${names.history} SET success = true, error = NULL, execution_ms = $2, installed_on = now() WHERE installed_rank = $1`,
        [rank, Math.round(durationMs)],
      );
      return { attempts, durationMs };
    } catch (wrapped) {
      const { original, index, attempt } = wrapped as { original: unknown; index: number; attempt: number };
      await client
        .query(`UPDATE ${names.history} SET error = $2, execution_ms = $3 WHERE installed_rank = $1`, [
          rank,
          `statement ${index + 1}: ${errorMessage(original)}`,
          Math.round(performance.now() - started),
        ])
        .catch(() => undefined);
      throw await failure(client, file, original, statements[index]?.tables ?? [], attempt);
    } finally {
      await client.query('RESET lock_timeout; RESET statement_timeout').catch(() => undefined);
    }
  };

  const checkGate = async (
    client: pg.ClientBase,
    file: MigrationFile,
    migrateOptions: MigrateOptions,
  ): Promise<string | null> => {
    const live = await readLiveClients(client, config.schema, config.heartbeatTtlMs);
    const blocking = blockingClients(live, file.version);
    if (blocking.length === 0) return null;
    const list = blocking
      .map(
        (item) =>
          `${item.service}@${item.version} (${item.instance}, supports schema ≤ ${item.schemaSupports.max}, seen ${Math.round(item.ageSeconds)} s ago via ${item.source})`,
      )
      .join('; ');
    if (migrateOptions.force !== true) {
      throw new MigrationError(
        'GANTRY_MIGRATIONS_CONTRACT_REFUSED',
        `Contract ${file.version} refused: ${blocking.length} live client(s) still need the old schema: ${list}. Wait for them to go, or --force with --reason.`,
        { version: file.version, details: { blocking } },
      );
    }
    const reason = migrateOptions.reason?.trim() ?? '';
    if (reason === '') {
      throw new MigrationError('GANTRY_MIGRATIONS_REASON_REQUIRED', '--force needs --reason "<why it is safe>"', {
        version: file.version,
      });
    }
    await audit(client, names, {
      actor: config.actor,
      action: 'force-contract',
      version: file.version,
      reason,
      details: { blocking },
    });
    logger.warn(
      { event: 'migrations.contract.forced', version: file.version, reason, blocking: blocking.length },
      'contract forced past live clients',
    );
    return reason;
  };

  const verifyBackfillsBefore = async (
    client: pg.ClientBase,
    files: readonly MigrationFile[],
    status: SchemaStatus,
    contract: MigrationFile,
  ): Promise<void> => {
    const lastContract = status.lastContract;
    const steps = files.filter(
      (file) =>
        file.kind === 'backfill' &&
        compareVersions(file.version, contract.version) < 0 &&
        (lastContract === null || compareVersions(file.version, lastContract) > 0),
    );
    for (const step of steps) {
      const definition = await loadBackfillDefinition(step);
      const mismatches = await verifyBackfill(client, definition);
      await client.query(`UPDATE ${names.backfill} SET mismatches = $2, verified_at = now() WHERE version = $1`, [
        step.version,
        mismatches,
      ]);
      if (mismatches > 0) {
        throw new MigrationError(
          'GANTRY_MIGRATIONS_CONTRACT_REFUSED',
          `Contract ${contract.version} refused: backfill ${step.version} verify finds ${mismatches} mismatching rows (writes not dual-written?)`,
          { version: contract.version, details: { backfill: step.version, mismatches } },
        );
      }
    }
  };

  const selectPending = (
    status: SchemaStatus,
    files: readonly MigrationFile[],
    migrateOptions: Pick<MigrateOptions, 'target' | 'phase'>,
  ): { selected: MigrationFile[]; stoppedAt: MigrateReport['stoppedAt'] } => {
    const target = migrateOptions.target === undefined ? undefined : normalizeVersion(migrateOptions.target);
    if (target !== undefined && !files.some((file) => compareVersions(file.version, target) === 0)) {
      throw new MigrationError('GANTRY_MIGRATIONS_TARGET_NOT_FOUND', `No migration file has version ${target}`);
    }
    const stateOf = new Map(status.migrations.map((migration) => [migration.version, migration.state]));
    const selected: MigrationFile[] = [];
    let stoppedAt: MigrateReport['stoppedAt'] = null;
    for (const file of files) {
      const state = stateOf.get(file.version);
      if (state === undefined) continue;
      // Failed migrations are retried: a transactional one left nothing behind, a statement-by-statement one
      // resumes after its last applied statement, a backfill from its cursor.
      const runnable = isPendingState(state) || state === 'failed';
      if (!runnable) continue;
      if (target !== undefined && compareVersions(file.version, target) > 0) break;
      if (migrateOptions.phase !== undefined && file.phase !== migrateOptions.phase) {
        stoppedAt = { version: file.version, phase: file.phase };
        break;
      }
      selected.push(file);
    }
    return { selected, stoppedAt };
  };

  const migrate = async (migrateOptions: MigrateOptions = {}): Promise<MigrateReport> =>
    withSession(true, async (client) => {
      const { files, status, history: historyRows } = await readState(client);
      const problems = problemsOf(status).filter((problem) => problem.state !== 'failed');
      if (problems.length > 0) {
        throw new MigrationError(
          'GANTRY_MIGRATIONS_VALIDATION_FAILED',
          `Refusing to migrate: ${problems.map((problem) => problem.message).join('; ')}`,
          { details: { problems } },
        );
      }
      const { selected, stoppedAt } = selectPending(status, files, migrateOptions);
      const lintResults =
        config.lint === 'off' || selected.length === 0
          ? []
          : await lintMigrationFiles(files, { only: new Set(selected.map((file) => file.version)) });
      const lintByVersion = new Map(lintResults.map((result) => [result.version, result]));
      const warnings: LintFinding[] = [];
      if (config.lint !== 'off') {
        const errors: LintFinding[] = [];
        for (const file of selected) {
          const result = lintByVersion.get(file.version);
          for (const finding of result?.findings ?? [])
            (finding.severity === 'error' ? errors : warnings).push(finding);
        }
        if (errors.length > 0 && config.lint === 'enforce') {
          throw new MigrationError(
            'GANTRY_MIGRATIONS_LINT_FAILED',
            `Refusing to migrate: ${errors.length} lint error(s): ${errors
              .slice(0, 5)
              .map((finding) => `${finding.file ?? ''}:${finding.line} ${finding.rule}`)
              .join(', ')}${errors.length > 5 ? ', …' : ''}`,
            { details: { findings: errors } },
          );
        }
      }
      const applied: AppliedMigration[] = [];
      const history = historyRows;
      let current = status;
      const groupable = (file: MigrationFile | undefined): file is MigrationFile =>
        file !== undefined &&
        file.kind === 'sql' &&
        file.phase === 'expand' &&
        lintByVersion.get(file.version)?.transactional === true &&
        (lintByVersion.get(file.version)?.statements.length ?? 0) > 0;
      for (let position = 0; position < selected.length; position += 1) {
        const file = selected[position]!;
        if (migrateOptions.signal?.aborted === true) break;
        // Consecutive transactional expand migrations go to the server in one round trip, each still in its
        // own transaction; after a failure the rest run one by one (with retries and failure recording).
        if (groupable(file) && groupable(selected[position + 1])) {
          const group: MigrationFile[] = [];
          for (let next = position; next < selected.length && group.length < GROUP_SIZE; next += 1) {
            const candidate = selected[next];
            if (!groupable(candidate)) break;
            group.push(candidate);
          }
          const done = await runGroup(client, group, (version) => lintByVersion.get(version)?.statements.length ?? 0);
          applied.push(...done);
          for (const step of done) {
            logger.info(
              {
                event: 'migrations.migration.applied',
                version: step.version,
                phase: step.phase,
                durationMs: Math.round(step.durationMs),
              },
              `applied ${step.version}`,
            );
          }
          if (done.length > 0) {
            position += done.length - 1;
            continue;
          }
        }
        let forcedReason: string | null = null;
        const started = performance.now();
        if (file.phase === 'contract') {
          forcedReason = await checkGate(client, file, migrateOptions);
          await verifyBackfillsBefore(client, files, current, file);
        }
        if (file.kind === 'backfill') {
          const definition = await loadBackfillDefinition(file);
          let result: BackfillStatus;
          try {
            result = await runBackfill({
              client,
              names,
              version: file.version,
              definition,
              lockTimeoutMs: config.lockTimeoutMs,
              statementTimeoutMs: config.backfillStatementTimeoutMs,
              retryBaseDelayMs: config.retryBaseDelayMs,
              retryMaxDelayMs: config.retryMaxDelayMs,
              logger,
              clock,
              ...(migrateOptions.signal === undefined ? {} : { signal: migrateOptions.signal }),
              ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
            });
          } catch (error) {
            await client.query('RESET lock_timeout; RESET statement_timeout').catch(() => undefined);
            if (!(isMigrationError(error) && error.code === 'GANTRY_MIGRATIONS_ABORTED')) {
              await recordFailure(client, file, error, false, 0, performance.now() - started);
            }
            throw error;
          }
          await client.query('RESET lock_timeout; RESET statement_timeout');
          const durationMs = performance.now() - started;
          await client.query(
            historyInsert(file, {
              success: true,
              transactional: false,
              statementsApplied: 0,
              executionMs: String(Math.round(durationMs)),
            }),
          );
          applied.push({
            version: file.version,
            description: file.description,
            phase: file.phase,
            durationMs,
            transactional: false,
            attempts: 1,
            rows: result.rowsDone,
          });
        } else {
          const lint =
            lintByVersion.get(file.version) ??
            (await lintSql(file.source, { phase: file.phase, noTransaction: file.noTransaction }));
          const statements = lint.statements;
          let outcome: { attempts: number; durationMs: number };
          if (lint.transactional) {
            outcome = await runTransactional(client, file, statements, forcedReason);
          } else {
            const previous = [...history].reverse().find((row) => row.version === file.version);
            const resumeFrom =
              previous !== undefined &&
              !previous.success &&
              !previous.transactional &&
              previous.checksum === file.checksum
                ? previous.statementsApplied
                : 0;
            outcome = await runStatementByStatement(client, file, statements, resumeFrom, forcedReason);
          }
          applied.push({
            version: file.version,
            description: file.description,
            phase: file.phase,
            durationMs: outcome.durationMs,
            transactional: lint.transactional,
            attempts: outcome.attempts,
            ...(forcedReason === null ? {} : { forcedReason }),
          });
        }
        logger.info(
          {
            event: 'migrations.migration.applied',
            version: file.version,
            phase: file.phase,
            durationMs: Math.round(performance.now() - started),
          },
          `applied ${file.script}`,
        );
        if (file.phase === 'contract') {
          current = computeStatus(files, await readHistory(client, names), await readBackfills(client, names));
        }
      }
      const after = computeStatus(files, await readHistory(client, names), await readBackfills(client, names));
      return { applied, stoppedAt, current: after.current, warnings };
    });

  const estimateRows = async (client: pg.ClientBase, table: string): Promise<number | null> => {
    const result = await client
      .query<{ rows: string | null }>(
        `SELECT CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint END AS rows FROM pg_class c WHERE c.oid = to_regclass($1)`,
        [table],
      )
      .catch(() => ({ rows: [] as { rows: string | null }[] }));
    const value = result.rows[0]?.rows;
    return value === undefined || value === null ? null : Number(value);
  };

  const measuredRate = (backfills: readonly BackfillStatus[]): number => {
    const rates = backfills.map((backfill) => backfill.rowsPerSecond ?? 0).filter((rate) => rate > 0);
    return rates.length === 0
      ? DEFAULT_ESTIMATED_BACKFILL_ROWS_PER_SECOND
      : rates.reduce((sum, rate) => sum + rate, 0) / rates.length;
  };

  const planFiles = async (
    client: pg.ClientBase,
    files: readonly MigrationFile[],
    backfills: readonly BackfillStatus[],
    withGate: boolean,
  ): Promise<PlannedMigration[]> => {
    const planned: PlannedMigration[] = [];
    const rate = measuredRate(backfills);
    const lintResults = await lintMigrationFiles(files);
    const live = withGate ? await readLiveClients(client, config.schema, config.heartbeatTtlMs).catch(() => []) : [];
    for (const file of files) {
      const gate =
        file.phase === 'contract' && withGate ? { blockingClients: blockingClients(live, file.version) } : {};
      if (file.kind === 'backfill') {
        const definition = await loadBackfillDefinition(file);
        const rows = await estimateRows(client, definition.table);
        planned.push({
          version: file.version,
          description: file.description,
          phase: file.phase,
          script: file.script,
          transactional: false,
          statements: [],
          findings: [],
          backfill: {
            table: definition.table,
            estimatedRows: rows,
            estimatedSeconds: rows === null ? null : rows / rate,
          },
          ...gate,
        });
        continue;
      }
      const lint = lintResults.find((result) => result.version === file.version);
      const statements: PlannedStatement[] = [];
      for (const statement of lint?.statements ?? []) {
        const tables = await Promise.all(
          statement.tables.map(async (name) => ({ name, estimatedRows: await estimateRows(client, name) })),
        );
        const rows = tables.reduce((sum, table) => sum + (table.estimatedRows ?? 0), 0);
        statements.push({
          line: statement.line,
          sql: statement.text.length > 300 ? `${statement.text.slice(0, 297)}...` : statement.text,
          lock: statement.lock,
          blocks: lockImpact(statement.lock),
          tables,
          rewrite: statement.rewrite,
          transactional: statement.transactional,
          estimatedSeconds: statement.rewrite ? rows / DEFAULT_ESTIMATED_REWRITE_ROWS_PER_SECOND : null,
        });
      }
      planned.push({
        version: file.version,
        description: file.description,
        phase: file.phase,
        script: file.script,
        transactional: lint?.transactional ?? true,
        statements,
        findings: lint?.findings ?? [],
        ...gate,
      });
    }
    return planned;
  };

  const backfillRun = (runOptions: Omit<MigrateOptions, 'phase' | 'force'> = {}): Promise<MigrateReport> =>
    migrate({ ...runOptions, phase: 'backfill' });

  return {
    config,
    info: () =>
      withSession(false, async (client) => {
        const { status, backfills } = await readState(client);
        return { ...status, backfills };
      }),
    validate: () =>
      withSession(false, async (client) => {
        const problems = problemsOf((await readState(client)).status);
        return { ok: problems.length === 0, problems };
      }),
    migrate,
    contract: (contractOptions = {}) => migrate({ ...contractOptions, phase: 'contract' }),
    backfillRun,
    backfillResume: async (runOptions = {}) => {
      const started = await withSession(false, async (client) => {
        const { status } = await readState(client);
        return status.migrations.filter(
          (migration) =>
            migration.state === 'backfilling' || (migration.phase === 'backfill' && migration.state === 'failed'),
        );
      });
      if (started.length === 0) {
        throw new MigrationError(
          'GANTRY_MIGRATIONS_BACKFILL_NOT_FOUND',
          'No started backfill to resume; use `backfill run` to start one',
        );
      }
      return backfillRun(runOptions);
    },
    backfillStatus: () =>
      withSession(false, async (client) =>
        (await storeExists(client, config.schema)) ? readBackfills(client, names) : [],
      ),
    plan: (planOptions = {}) =>
      withSession(false, async (client) => {
        const { files, status, backfills } = await readState(client);
        const { selected, stoppedAt } = selectPending(status, files, planOptions);
        return { current: status.current, migrations: await planFiles(client, selected, backfills, true), stoppedAt };
      }),
    lint: async () => lintMigrationFiles(loadMigrationFiles(config.directory)),
    baseline: async (baselineOptions) =>
      withSession(true, async (client) => {
        if (typeof baselineOptions?.version !== 'string' || !isVersion(baselineOptions.version)) {
          invalidOption('version', 'a version such as "1.4"', baselineOptions?.version);
        }
        const version = normalizeVersion(baselineOptions.version);
        const history = await readHistory(client, names);
        if (history.some((row) => row.success)) {
          throw new MigrationError(
            'GANTRY_MIGRATIONS_BASELINE_REFUSED',
            `Cannot baseline: the history already has ${history.filter((row) => row.success).length} applied migration(s)`,
          );
        }
        const description = baselineOptions.description ?? '<< baseline >>';
        await client.query(
          `INSERT INTO ${names.history} (version, description, phase, script, checksum, transactional, installed_by, success)
           VALUES ($1, $2, 'baseline', '<< baseline >>', NULL, true, $3, true)`,
          [version, description, config.actor],
        );
        await audit(client, names, {
          actor: config.actor,
          action: 'baseline',
          version,
          reason: baselineOptions.reason ?? 'baseline',
        });
        return { version, description };
      }),
    repair: async (repairOptions) => {
      const reason = repairOptions?.reason?.trim() ?? '';
      if (reason === '')
        throw new MigrationError(
          'GANTRY_MIGRATIONS_REASON_REQUIRED',
          'repair needs a reason; it is recorded in the audit log',
        );
      return withSession(true, async (client) => {
        const { files, status, backfills } = await readState(client);
        const removedFailed: string[] = [];
        const realignedChecksums: { version: string; from: string | null; to: string }[] = [];
        const resetBackfills: string[] = [];
        for (const migration of status.migrations) {
          if (migration.state === 'failed') {
            await client.query(`DELETE FROM ${names.history} WHERE version = $1 AND NOT success`, [migration.version]);
            removedFailed.push(migration.version);
          } else if (migration.state === 'checksum-mismatch') {
            const file = files.find((candidate) => candidate.version === migration.version)!;
            await client.query(
              `UPDATE ${names.history} SET checksum = $2, description = $3, script = $4 WHERE version = $1 AND success`,
              [migration.version, file.checksum, file.description, file.script],
            );
            realignedChecksums.push({ version: migration.version, from: migration.appliedChecksum, to: file.checksum });
          }
        }
        for (const backfill of backfills) {
          if (backfill.state === 'failed') {
            await client.query(`DELETE FROM ${names.backfill} WHERE version = $1`, [backfill.version]);
            resetBackfills.push(backfill.version);
          }
        }
        await audit(client, names, {
          actor: config.actor,
          action: 'repair',
          version: null,
          reason,
          details: { removedFailed, realignedChecksums, resetBackfills },
        });
        logger.warn(
          { event: 'migrations.repair', reason, removedFailed, resetBackfills, realigned: realignedChecksums.length },
          'history repaired',
        );
        return { removedFailed, realignedChecksums, resetBackfills };
      });
    },
    compat: async (compatOptions) => {
      for (const key of ['from', 'to'] as const) {
        const value = compatOptions?.[key];
        if (typeof value !== 'string' || !isVersion(value)) invalidOption(key, 'a version such as "1.4"', value);
      }
      const from = normalizeVersion(compatOptions.from);
      const to = normalizeVersion(compatOptions.to);
      const files = loadMigrationFiles(config.directory);
      const downgrade = compareVersions(from, to) > 0;
      const [low, high] = downgrade ? [to, from] : [from, to];
      const path = files.filter(
        (file) => compareVersions(file.version, low) > 0 && compareVersions(file.version, high) <= 0,
      );
      const warnings: CompatWarning[] = [];
      if (parseVersion(from)[0] !== parseVersion(to)[0]) {
        warnings.push({
          code: 'major-version-jump',
          version: null,
          message: `Major version changes from ${parseVersion(from)[0]} to ${parseVersion(to)[0]}: read the release notes of every major in between`,
        });
      }
      if (path.length === 0)
        warnings.push({ code: 'no-migrations', version: null, message: `No migrations between ${low} and ${high}` });
      let ok = true;
      let estimated: number | null = null;
      const planned = await withSession(false, async (client) => {
        const backfills = (await storeExists(client, config.schema)) ? await readBackfills(client, names) : [];
        return planFiles(client, path, backfills, false);
      });
      for (const step of planned) {
        if (step.phase === 'contract') {
          warnings.push({
            code: 'destructive-migration',
            version: step.version,
            message: downgrade
              ? `${step.script} is a contract migration: rolling back past it needs the dropped schema back (not possible without a restore)`
              : `${step.script} is a contract migration: every app version older than it must be gone before it runs`,
          });
        }
        const destructiveOutsideContract = step.findings.filter((finding) => finding.severity === 'error');
        if (destructiveOutsideContract.length > 0) {
          ok = false;
          warnings.push({
            code: 'lint-error',
            version: step.version,
            message: `${step.script}: ${destructiveOutsideContract.map((finding) => finding.rule).join(', ')}`,
          });
        }
        const seconds =
          step.backfill?.estimatedSeconds ??
          step.statements.reduce((sum, statement) => sum + (statement.estimatedSeconds ?? 0), 0);
        if (step.backfill !== undefined) {
          warnings.push({
            code: 'backfill',
            version: step.version,
            message: `${step.script} backfills ${step.backfill.table} (~${step.backfill.estimatedRows ?? '?'} rows, ~${step.backfill.estimatedSeconds === null ? '?' : Math.ceil(step.backfill.estimatedSeconds)} s)`,
          });
        }
        if (seconds > LONG_RUNNING_SECONDS) {
          warnings.push({
            code: 'long-running',
            version: step.version,
            message: `${step.script} is estimated at ${Math.ceil(seconds)} s`,
          });
        }
        estimated = (estimated ?? 0) + seconds;
      }
      return {
        from,
        to,
        migrations: path.map((file) => ({ version: file.version, description: file.description, phase: file.phase })),
        warnings,
        estimatedSeconds: estimated,
        ok,
      };
    },
    liveClients: () => withSession(false, (client) => readLiveClients(client, config.schema, config.heartbeatTtlMs)),
  };
}
