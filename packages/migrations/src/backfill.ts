// Backfill steps: keyset pagination on the primary key (never OFFSET), one statement (or one transaction) per
// batch that also advances the persisted cursor, so a crash resumes exactly after the last committed batch and
// no batch is applied twice. Batch size adapts to a target duration; an upper bound captured at the start makes
// the backfill finish under heavy inserts (rows written later are the dual-write's job, and verify checks it).
import type pg from 'pg';
import { MigrationError, invalidOption } from './errors.ts';
import {
  SILENT_LOGGER,
  SYSTEM_CLOCK,
  backoffDelay,
  errorMessage,
  isTransientLockError,
  quoteIdent,
  type Clock,
  type Logger,
} from './db.ts';
import type { StoreNames } from './store.ts';

/** Initial rows per batch. */
export const DEFAULT_BACKFILL_BATCH_SIZE = 1_000;
/** Smallest batch the adaptive sizing goes down to. */
export const DEFAULT_BACKFILL_MIN_BATCH_SIZE = 100;
/** Largest batch the adaptive sizing goes up to. */
export const DEFAULT_BACKFILL_MAX_BATCH_SIZE = 50_000;
/** Target duration of one batch; batches grow or shrink towards it. */
export const DEFAULT_BACKFILL_TARGET_BATCH_MS = 30;
/** Retries of one batch after a lock timeout, deadlock or serialization failure. */
export const DEFAULT_BACKFILL_RETRIES = 10;

/** The rows of one batch, handed to an `apply` function. */
export interface BackfillBatch {
  /** Key values of every row in the batch, in key order (one array per row, one entry per key column). */
  readonly keys: readonly (readonly unknown[])[];
  /** Key column names. */
  readonly keyColumns: readonly string[];
  /** The quoted, qualified table name, for building SQL. */
  readonly table: string;
}

/** A query function bound to the batch's transaction. */
export type BackfillQuery = (
  text: string,
  values?: readonly unknown[],
) => Promise<{ rows: Record<string, unknown>[]; rowCount: number | null }>;

/** A backfill step, as exported by `V<version>__<description>.ts`. */
export interface BackfillDefinition {
  /** Table to walk, optionally schema-qualified (`public.users`). */
  readonly table: string;
  /** Key columns to paginate on. @default the primary key */
  readonly key?: readonly string[];
  /**
   * Declarative form: column → SQL expression over the row. Each batch runs one UPDATE touching only rows where
   * a column differs from its expression (so re-running a batch changes nothing).
   */
  readonly set?: Readonly<Record<string, string>>;
  /** SQL predicate for rows that still need the change. @default any `set` column IS DISTINCT FROM its expression */
  readonly where?: string;
  /**
   * Free form: called once per batch inside the transaction that also advances the cursor (exactly once per
   * committed batch). Use `query` for every statement.
   */
  readonly apply?: (query: BackfillQuery, batch: BackfillBatch) => Promise<void>;
  /**
   * Consistency check run after the last batch and again before contract: a SQL query returning one row with one
   * numeric column (the number of mismatching rows), or a function returning it. Must be 0.
   * @default for `set`: count of rows matching `where`; required with `apply`
   */
  readonly verify?: string | ((query: BackfillQuery) => Promise<number>);
  /** @default DEFAULT_BACKFILL_BATCH_SIZE */
  readonly batchSize?: number;
  /** @default DEFAULT_BACKFILL_MIN_BATCH_SIZE */
  readonly minBatchSize?: number;
  /** @default DEFAULT_BACKFILL_MAX_BATCH_SIZE */
  readonly maxBatchSize?: number;
  /** @default DEFAULT_BACKFILL_TARGET_BATCH_MS */
  readonly targetBatchMs?: number;
  /** Fixed pause between batches (throttling). @default 0 */
  readonly pauseMs?: number;
  /** Upper limit of rows per second (throttling). @default unlimited */
  readonly maxRowsPerSecond?: number;
}

const positiveInteger = (value: unknown, name: string): void => {
  if (value !== undefined && (typeof value !== 'number' || !Number.isInteger(value) || value < 1)) {
    invalidOption(name, 'an integer ≥ 1', value);
  }
};
const nonNegative = (value: unknown, name: string): void => {
  if (value !== undefined && (typeof value !== 'number' || !Number.isFinite(value) || value < 0)) {
    invalidOption(name, 'a finite number ≥ 0', value);
  }
};

/**
 * Declares a backfill step. Validates the definition once and freezes it.
 * @throws MigrationError `GANTRY_MIGRATIONS_INVALID_OPTION` for a malformed definition.
 * @example
 * // migrations/V3__backfill_display_name.ts
 * import { defineBackfill } from '@gantry/migrations';
 * export default defineBackfill({ table: 'users', set: { display_name: 'upper(name)' } });
 */
export function defineBackfill(definition: BackfillDefinition): BackfillDefinition {
  if (typeof definition !== 'object' || definition === null) invalidOption('definition', 'an object', definition);
  if (typeof definition.table !== 'string' || definition.table.trim() === '') {
    invalidOption('table', 'a non-empty table name', definition.table);
  }
  const hasSet = definition.set !== undefined;
  const hasApply = definition.apply !== undefined;
  if (hasSet === hasApply) invalidOption('set', 'exactly one of `set` and `apply`', hasSet ? 'both' : 'neither');
  if (hasSet) {
    const entries = Object.entries(definition.set ?? {});
    if (
      entries.length === 0 ||
      entries.some(([, expression]) => typeof expression !== 'string' || expression.trim() === '')
    ) {
      invalidOption('set', 'an object of column → SQL expression', definition.set);
    }
  }
  if (hasApply && typeof definition.apply !== 'function') invalidOption('apply', 'a function', definition.apply);
  if (hasApply && definition.verify === undefined) {
    invalidOption('verify', 'a SQL query or function (required with `apply`)', definition.verify);
  }
  if (
    definition.verify !== undefined &&
    typeof definition.verify !== 'string' &&
    typeof definition.verify !== 'function'
  ) {
    invalidOption('verify', 'a SQL query or a function', definition.verify);
  }
  if (definition.key !== undefined && (!Array.isArray(definition.key) || definition.key.length === 0)) {
    invalidOption('key', 'a non-empty array of column names', definition.key);
  }
  positiveInteger(definition.batchSize, 'batchSize');
  positiveInteger(definition.minBatchSize, 'minBatchSize');
  positiveInteger(definition.maxBatchSize, 'maxBatchSize');
  nonNegative(definition.targetBatchMs, 'targetBatchMs');
  nonNegative(definition.pauseMs, 'pauseMs');
  if (definition.maxRowsPerSecond !== undefined) positiveInteger(definition.maxRowsPerSecond, 'maxRowsPerSecond');
  return Object.freeze({ ...definition });
}

/** Progress of a running backfill, reported after every batch. */
export interface BackfillProgress {
  readonly version: string;
  readonly table: string;
  readonly rowsDone: number;
  /** Estimated total (rows at start, from statistics or a count). */
  readonly rowsTotal: number;
  readonly rowsRemaining: number;
  readonly rowsPerSecond: number;
  /** Seconds left at the current rate, or null before the first batch. */
  readonly etaSeconds: number | null;
  readonly batches: number;
  readonly batchSize: number;
  readonly batchMs: number;
}

/** State of a backfill as stored in the backfill table. */
export interface BackfillStatus {
  readonly version: string;
  readonly table: string;
  readonly state: 'running' | 'paused' | 'failed' | 'done';
  readonly rowsDone: number;
  readonly rowsTotal: number | null;
  readonly batches: number;
  readonly rowsPerSecond: number | null;
  readonly cursor: readonly string[] | null;
  readonly startedAt: Date;
  readonly updatedAt: Date;
  readonly finishedAt: Date | null;
  readonly verifiedAt: Date | null;
  readonly mismatches: number | null;
  readonly lastError: string | null;
}

/** Options of {@link runBackfill}. */
export interface RunBackfillOptions {
  readonly client: pg.ClientBase;
  readonly names: StoreNames;
  readonly version: string;
  readonly definition: BackfillDefinition;
  readonly lockTimeoutMs: number;
  readonly statementTimeoutMs: number;
  readonly retryBaseDelayMs: number;
  readonly retryMaxDelayMs: number;
  readonly logger?: Logger;
  readonly clock?: Clock;
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: BackfillProgress) => void;
  /** Called after every batch with its duration, for metrics. */
  readonly onBatch?: (batch: { rows: number; durationMs: number }) => void;
}

interface KeyColumn {
  readonly name: string;
  readonly type: string;
}

interface RawStatus {
  version: string;
  table_name: string;
  state: BackfillStatus['state'];
  rows_done: string;
  rows_total: string | null;
  batches: string;
  rows_per_second: number | null;
  cursor: string[] | null;
  upper_bound: string[] | null;
  batch_size: number | null;
  started_at: Date;
  updated_at: Date;
  finished_at: Date | null;
  verified_at: Date | null;
  mismatches: string | null;
  last_error: string | null;
}

function toStatus(row: RawStatus): BackfillStatus {
  return {
    version: row.version,
    table: row.table_name,
    state: row.state,
    rowsDone: Number(row.rows_done),
    rowsTotal: row.rows_total === null ? null : Number(row.rows_total),
    batches: Number(row.batches),
    rowsPerSecond: row.rows_per_second,
    cursor: row.cursor,
    startedAt: row.started_at,
    updatedAt: row.updated_at,
    finishedAt: row.finished_at,
    verifiedAt: row.verified_at,
    mismatches: row.mismatches === null ? null : Number(row.mismatches),
    lastError: row.last_error,
  };
}

/** Every backfill's stored state, by version. */
export async function readBackfills(client: pg.ClientBase, names: StoreNames): Promise<BackfillStatus[]> {
  const result = await client.query<RawStatus>(`SELECT * FROM ${names.backfill} ORDER BY started_at`);
  return result.rows.map(toStatus);
}

async function resolveTable(client: pg.ClientBase, table: string): Promise<{ oid: number; name: string }> {
  try {
    const result = await client.query<{ oid: number; name: string }>(
      'SELECT $1::regclass::oid::int AS oid, $1::regclass::text AS name',
      [table],
    );
    const row = result.rows[0];
    if (row === undefined) throw new Error('no row');
    return row;
  } catch (error) {
    throw new MigrationError('GANTRY_MIGRATIONS_BACKFILL_FAILED', `Backfill table "${table}" does not exist`, {
      cause: error,
    });
  }
}

async function keyColumns(
  client: pg.ClientBase,
  oid: number,
  wanted: readonly string[] | undefined,
): Promise<KeyColumn[]> {
  if (wanted !== undefined) {
    const result = await client.query<{ name: string; type: string }>(
      `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type
         FROM pg_attribute a WHERE a.attrelid = $1 AND a.attname = ANY($2::text[]) AND NOT a.attisdropped`,
      [oid, wanted],
    );
    return wanted.map((name) => {
      const found = result.rows.find((row) => row.name === name);
      if (found === undefined) {
        throw new MigrationError('GANTRY_MIGRATIONS_BACKFILL_FAILED', `Key column "${name}" does not exist`);
      }
      return found;
    });
  }
  const result = await client.query<{ name: string; type: string }>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type
       FROM pg_index i
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
      WHERE i.indrelid = $1 AND i.indisprimary
      ORDER BY array_position(i.indkey::int2[], a.attnum)`,
    [oid],
  );
  if (result.rows.length === 0) {
    throw new MigrationError(
      'GANTRY_MIGRATIONS_BACKFILL_FAILED',
      'Backfill table has no primary key; name unique, non-null key columns with `key`',
    );
  }
  return result.rows;
}

/** SQL predicate for the rows a `set` backfill still has to change. */
export function pendingPredicate(definition: BackfillDefinition): string {
  if (definition.where !== undefined) return `(${definition.where})`;
  return Object.entries(definition.set ?? {})
    .map(([column, expression]) => `${quoteIdent(column)} IS DISTINCT FROM (${expression})`)
    .join(' OR ');
}

/** The query that counts mismatches for a backfill (its `verify`, or the default for `set`). */
function verifyQuery(
  definition: BackfillDefinition,
  table: string,
): string | ((query: BackfillQuery) => Promise<number>) {
  if (definition.verify !== undefined) return definition.verify;
  return `SELECT count(*) FROM ${table} WHERE ${pendingPredicate(definition)}`;
}

/**
 * Runs the consistency check of a backfill and returns the number of mismatching rows.
 * @throws MigrationError `GANTRY_MIGRATIONS_VERIFY_FAILED` when the query itself fails.
 */
export async function verifyBackfill(client: pg.ClientBase, definition: BackfillDefinition): Promise<number> {
  const table = (await resolveTable(client, definition.table)).name;
  const check = verifyQuery(definition, table);
  const query: BackfillQuery = async (text, values) => {
    const result = await client.query(text, values as unknown[] | undefined);
    return { rows: result.rows as Record<string, unknown>[], rowCount: result.rowCount };
  };
  try {
    if (typeof check === 'function') return await check(query);
    const result = await client.query<Record<string, unknown>>(check);
    const first = result.rows[0];
    const value = first === undefined ? 0 : Number(Object.values(first)[0] ?? 0);
    return Number.isFinite(value) ? value : 0;
  } catch (error) {
    throw new MigrationError('GANTRY_MIGRATIONS_VERIFY_FAILED', `Verify query failed: ${errorMessage(error)}`, {
      cause: error,
    });
  }
}

const rowValue = (keys: readonly KeyColumn[], offset: number): string =>
  keys.length === 1
    ? `$${offset}::${keys[0]!.type}`
    : `ROW(${keys.map((key, index) => `$${offset + index}::${key.type}`).join(', ')})`;
const keyTuple = (keys: readonly KeyColumn[], prefix = ''): string =>
  keys.length === 1
    ? `${prefix}${quoteIdent(keys[0]!.name)}`
    : `(${keys.map((key) => `${prefix}${quoteIdent(key.name)}`).join(', ')})`;

/**
 * Runs (or resumes) one backfill to completion and verifies it.
 * @throws MigrationError `GANTRY_MIGRATIONS_BACKFILL_FAILED` when a batch fails for good,
 *   `GANTRY_MIGRATIONS_VERIFY_FAILED` when mismatches remain, `GANTRY_MIGRATIONS_ABORTED` when `signal` aborts
 *   (the cursor is kept; resume continues from it).
 */
export async function runBackfill(options: RunBackfillOptions): Promise<BackfillStatus> {
  const { client, names, version, definition } = options;
  const logger = options.logger ?? SILENT_LOGGER;
  const clock = options.clock ?? SYSTEM_CLOCK;
  const resolved = await resolveTable(client, definition.table);
  const table = resolved.name;
  const keys = await keyColumns(client, resolved.oid, definition.key);
  const keyNames = keys.map((key) => key.name);
  const orderBy = keys.map((key) => quoteIdent(key.name)).join(', ');
  const orderByDescending = keys.map((key) => `${quoteIdent(key.name)} DESC`).join(', ');
  const lastKeyText = `ARRAY[${keys.map((key) => `${quoteIdent(key.name)}::text`).join(', ')}]`;

  await client.query(`SET lock_timeout = ${Math.round(options.lockTimeoutMs)}`);
  await client.query(`SET statement_timeout = ${Math.round(options.statementTimeoutMs)}`);
  await client.query(`SET TimeZone = 'UTC'`);

  // Create the state row, or pick up the existing one.
  const existing = await client.query<RawStatus>(`SELECT * FROM ${names.backfill} WHERE version = $1`, [version]);
  let state = existing.rows[0];
  if (state === undefined) {
    const upper = await client.query<{ last: string[] | null }>(
      `SELECT ${lastKeyText} AS last FROM ${table} ORDER BY ${orderByDescending} LIMIT 1`,
    );
    const estimate = await client.query<{ estimate: string }>(
      `SELECT CASE WHEN c.reltuples > 0 THEN c.reltuples::bigint ELSE (SELECT count(*) FROM ${table}) END AS estimate
         FROM pg_class c WHERE c.oid = $1`,
      [resolved.oid],
    );
    const inserted = await client.query<RawStatus>(
      `INSERT INTO ${names.backfill} (version, table_name, key_columns, cursor, upper_bound, state, rows_total, batch_size)
       VALUES ($1, $2, $3, NULL, $4, 'running', $5, $6) RETURNING *`,
      [
        version,
        table,
        keyNames,
        upper.rows[0]?.last ?? null,
        Number(estimate.rows[0]?.estimate ?? 0),
        definition.batchSize ?? DEFAULT_BACKFILL_BATCH_SIZE,
      ],
    );
    state = inserted.rows[0]!;
    logger.info({ event: 'migrations.backfill.started', version, table }, 'backfill started');
  } else if (state.state === 'done') {
    return toStatus(state);
  } else {
    await client.query(
      `UPDATE ${names.backfill} SET state = 'running', last_error = NULL, updated_at = now() WHERE version = $1`,
      [version],
    );
    logger.info(
      { event: 'migrations.backfill.resumed', version, table, rowsDone: Number(state.rows_done) },
      'backfill resumed',
    );
  }

  const minSize = definition.minBatchSize ?? DEFAULT_BACKFILL_MIN_BATCH_SIZE;
  const maxSize = Math.max(minSize, definition.maxBatchSize ?? DEFAULT_BACKFILL_MAX_BATCH_SIZE);
  const target = definition.targetBatchMs ?? DEFAULT_BACKFILL_TARGET_BATCH_MS;
  let batchSize = Math.min(
    maxSize,
    Math.max(minSize, state.batch_size ?? definition.batchSize ?? DEFAULT_BACKFILL_BATCH_SIZE),
  );
  let cursor: string[] | null = state.cursor;
  const upperBound = state.upper_bound;
  let rowsDone = Number(state.rows_done);
  let batches = Number(state.batches);
  const rowsTotal = Math.max(Number(state.rows_total ?? 0), rowsDone);
  const startedAt = clock.now();
  const rowsAtStart = rowsDone;
  let rate = state.rows_per_second ?? 0;

  const upperCondition = `${keyTuple(keys)} <= ${rowValue(keys, 1)}`;
  const boundValues = upperBound ?? [];
  const cursorCondition = (offset: number): string => `${keyTuple(keys)} > ${rowValue(keys, offset)}`;

  const setBatch = (withCursor: boolean): string => {
    const n = keys.length;
    const limitParam = `$${n + 1}`;
    const versionParam = `$${n + 2}`;
    const cursorParamsAt = n + 3;
    const after = withCursor ? ` AND ${cursorCondition(cursorParamsAt)}` : '';
    const assignments = Object.entries(definition.set ?? {})
      .map(([column, expression]) => `${quoteIdent(column)} = (${expression})`)
      .join(', ');
    const lastRow = `(SELECT ${orderBy} FROM last)`;
    return `WITH batch AS (
  SELECT ${orderBy} FROM ${table} WHERE ${upperCondition}${after} ORDER BY ${orderBy} LIMIT ${limitParam}
), last AS (
  SELECT ${orderBy} FROM batch ORDER BY ${orderByDescending} LIMIT 1
), changed AS (
  UPDATE ${table} SET ${assignments}
   WHERE ${keyTuple(keys)} <= ${lastRow}${after} AND (${pendingPredicate(definition)})
  RETURNING 1
), progress AS (
  UPDATE ${names.backfill}
     SET cursor = (SELECT ${lastKeyText} FROM last), rows_done = rows_done + (SELECT count(*) FROM batch),
         batches = batches + 1, updated_at = now()
   WHERE version = ${versionParam} AND EXISTS (SELECT 1 FROM last)
  RETURNING 1
)
SELECT (SELECT count(*) FROM batch)::int AS scanned, (SELECT count(*) FROM changed)::int AS changed,
       (SELECT ${lastKeyText} FROM last) AS last, (SELECT count(*) FROM progress)::int AS saved`;
  };
  const withCursorSql = definition.set === undefined ? '' : setBatch(true);
  const firstSql = definition.set === undefined ? '' : setBatch(false);
  const selectKeys = (withCursor: boolean): string =>
    `SELECT ${orderBy}, ${lastKeyText} AS __gantry_last FROM ${table} WHERE ${upperCondition}${withCursor ? ` AND ${cursorCondition(keys.length + 2)}` : ''} ORDER BY ${orderBy} LIMIT $${keys.length + 1}`;

  const runOneBatch = async (): Promise<{ scanned: number; last: string[] | null }> => {
    if (definition.set !== undefined) {
      const values: unknown[] = [...boundValues, batchSize, version, ...(cursor ?? [])];
      const result = await client.query<{ scanned: number; last: string[] | null; saved: number }>(
        cursor === null ? firstSql : withCursorSql,
        values,
      );
      const row = result.rows[0];
      return { scanned: row?.scanned ?? 0, last: row?.last ?? null };
    }
    await client.query('BEGIN');
    try {
      const found = await client.query({
        text: selectKeys(cursor !== null),
        values: [...boundValues, batchSize, ...(cursor ?? [])],
        rowMode: 'array',
      });
      const withLast = found.rows as unknown[][];
      const rows = withLast.map((row) => row.slice(0, keys.length));
      if (rows.length > 0) {
        const query: BackfillQuery = async (text, values) => {
          const result = await client.query(text, values as unknown[] | undefined);
          return { rows: result.rows as Record<string, unknown>[], rowCount: result.rowCount };
        };
        await definition.apply!(query, { keys: rows, keyColumns: keyNames, table });
        const last = withLast[withLast.length - 1]![keys.length] as string[];
        await client.query(
          `UPDATE ${names.backfill} SET cursor = $2, rows_done = rows_done + $3, batches = batches + 1, updated_at = now() WHERE version = $1`,
          [version, last, rows.length],
        );
        await client.query('COMMIT');
        return { scanned: rows.length, last };
      }
      await client.query('COMMIT');
      return { scanned: 0, last: null };
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  };

  let lastPersist = clock.now();
  // A table that was empty when the backfill started has nothing to backfill (later rows are dual-written).
  for (; upperBound !== null;) {
    if (options.signal?.aborted === true) {
      await client.query(
        `UPDATE ${names.backfill} SET state = 'paused', batch_size = $2, rows_per_second = $3, updated_at = now() WHERE version = $1`,
        [version, batchSize, rate],
      );
      throw new MigrationError(
        'GANTRY_MIGRATIONS_ABORTED',
        `Backfill ${version} paused at ${rowsDone} rows; resume continues from there`,
        {
          version,
        },
      );
    }
    let attempt = 0;
    let outcome: { scanned: number; last: string[] | null };
    const batchStarted = performance.now();
    for (;;) {
      try {
        outcome = await runOneBatch();
        break;
      } catch (error) {
        attempt += 1;
        if (isTransientLockError(error) && attempt <= DEFAULT_BACKFILL_RETRIES) {
          const wait = backoffDelay(attempt, options.retryBaseDelayMs, options.retryMaxDelayMs);
          logger.warn(
            { event: 'migrations.backfill.retry', version, attempt, waitMs: wait, error: errorMessage(error) },
            'backfill batch retried',
          );
          await clock.sleep(wait, options.signal);
          continue;
        }
        await client
          .query(
            `UPDATE ${names.backfill} SET state = 'failed', last_error = $2, updated_at = now() WHERE version = $1`,
            [version, errorMessage(error)],
          )
          .catch(() => undefined);
        throw new MigrationError(
          'GANTRY_MIGRATIONS_BACKFILL_FAILED',
          `Backfill ${version} failed at ${rowsDone} rows: ${errorMessage(error)}`,
          {
            cause: error,
            version,
          },
        );
      }
    }
    const batchMs = performance.now() - batchStarted;
    if (outcome.scanned === 0) break;
    cursor = outcome.last;
    rowsDone += outcome.scanned;
    batches += 1;
    const elapsed = (clock.now() - startedAt) / 1000;
    rate = elapsed > 0 ? (rowsDone - rowsAtStart) / elapsed : rate;
    options.onBatch?.({ rows: outcome.scanned, durationMs: batchMs });
    const remaining = Math.max(0, rowsTotal - rowsDone);
    options.onProgress?.({
      version,
      table,
      rowsDone,
      rowsTotal: Math.max(rowsTotal, rowsDone),
      rowsRemaining: remaining,
      rowsPerSecond: rate,
      etaSeconds: rate > 0 ? remaining / rate : null,
      batches,
      batchSize,
      batchMs,
    });
    // Adapt the batch size towards the target duration: grow slowly (at most +25% per batch, so one slow batch
    // does not overshoot the p99), shrink fast (down to half) when a batch ran long.
    if (target > 0) {
      const ratio = target / Math.max(1, batchMs);
      const factor = ratio >= 1 ? Math.min(1.25, ratio) : Math.max(0.5, ratio);
      batchSize = Math.min(maxSize, Math.max(minSize, Math.round(batchSize * factor)));
    }
    if (clock.now() - lastPersist > 1_000) {
      lastPersist = clock.now();
      await client.query(`UPDATE ${names.backfill} SET batch_size = $2, rows_per_second = $3 WHERE version = $1`, [
        version,
        batchSize,
        rate,
      ]);
    }
    let pause = definition.pauseMs ?? 0;
    if (definition.maxRowsPerSecond !== undefined) {
      const earliest = startedAt + ((rowsDone - rowsAtStart) / definition.maxRowsPerSecond) * 1000;
      pause = Math.max(pause, earliest - clock.now());
    }
    if (pause > 0) await clock.sleep(pause, options.signal).catch(() => undefined);
  }

  const mismatches = await verifyBackfill(client, definition);
  const finished = await client.query<RawStatus>(
    `UPDATE ${names.backfill}
        SET state = CASE WHEN $2::bigint = 0 THEN 'done' ELSE 'failed' END, mismatches = $2, verified_at = now(),
            finished_at = CASE WHEN $2::bigint = 0 THEN now() END, rows_per_second = $3, batch_size = $4,
            last_error = CASE WHEN $2::bigint = 0 THEN NULL ELSE $2::text || ' rows still mismatch after the last batch' END,
            updated_at = now()
      WHERE version = $1 RETURNING *`,
    [version, mismatches, rate, batchSize],
  );
  if (mismatches !== 0) {
    throw new MigrationError(
      'GANTRY_MIGRATIONS_VERIFY_FAILED',
      `Backfill ${version}: verify found ${mismatches} mismatching rows after the last batch (are writes dual-written?)`,
      { version, details: { mismatches } },
    );
  }
  logger.info(
    { event: 'migrations.backfill.completed', version, table, rows: rowsDone, batches },
    'backfill completed',
  );
  return toStatus(finished.rows[0]!);
}
