// The state tables: history (Flyway-like, plus phase and statement progress), backfill cursors, app version
// heartbeats and the audit log of forced and repaired operations. All live in one schema (default
// `gantry_migrations`) created on first use.
import type pg from 'pg';
import { quoteIdent } from './db.ts';

/** Default schema of the state tables. */
export const DEFAULT_HISTORY_SCHEMA = 'gantry_migrations';

/** A row of the history table. */
export interface HistoryRow {
  readonly installedRank: number;
  readonly version: string;
  readonly description: string;
  readonly phase: 'expand' | 'backfill' | 'contract' | 'baseline';
  readonly script: string;
  readonly checksum: string | null;
  readonly transactional: boolean;
  readonly statementsApplied: number;
  readonly installedBy: string;
  readonly installedOn: Date;
  readonly executionMs: number;
  readonly success: boolean;
  readonly error: string | null;
  readonly forcedReason: string | null;
}

/** Qualified names of the state tables for one schema. */
export interface StoreNames {
  readonly schema: string;
  readonly history: string;
  readonly backfill: string;
  readonly appVersions: string;
  readonly audit: string;
}

/** Builds the quoted table names for `schema`. */
export function storeNames(schema: string): StoreNames {
  const q = quoteIdent(schema);
  return {
    schema: q,
    history: `${q}.history`,
    backfill: `${q}.backfill`,
    appVersions: `${q}.app_versions`,
    audit: `${q}.audit`,
  };
}

/** DDL of the app heartbeat table alone (apps create it when it is missing). */
export function appVersionsDdl(names: StoreNames): string {
  return `CREATE SCHEMA IF NOT EXISTS ${names.schema};
CREATE TABLE IF NOT EXISTS ${names.appVersions} (
  service text NOT NULL,
  instance text NOT NULL,
  version text NOT NULL,
  schema_min text NOT NULL,
  schema_max text NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now(),
  last_seen timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (service, instance)
);`;
}

/** Creates the state tables when missing. Run under the migrator's advisory lock. */
export async function ensureStore(client: pg.ClientBase, names: StoreNames): Promise<void> {
  const present = await client.query<{ ok: boolean }>(
    `SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL AND to_regclass($3) IS NOT NULL
            AND to_regclass($4) IS NOT NULL AS ok`,
    [names.history, names.backfill, names.appVersions, names.audit],
  );
  if (present.rows[0]?.ok === true) return;
  await client.query(`${appVersionsDdl(names)}
CREATE TABLE IF NOT EXISTS ${names.history} (
  installed_rank bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  version text NOT NULL,
  description text NOT NULL,
  phase text NOT NULL CHECK (phase IN ('expand', 'backfill', 'contract', 'baseline')),
  script text NOT NULL,
  checksum text,
  transactional boolean NOT NULL DEFAULT true,
  statements_applied integer NOT NULL DEFAULT 0,
  installed_by text NOT NULL DEFAULT current_user,
  installed_on timestamptz NOT NULL DEFAULT now(),
  execution_ms integer NOT NULL DEFAULT 0,
  success boolean NOT NULL,
  error text,
  forced_reason text
);
CREATE INDEX IF NOT EXISTS history_version_idx ON ${names.history} (version);
CREATE TABLE IF NOT EXISTS ${names.backfill} (
  version text PRIMARY KEY,
  table_name text NOT NULL,
  key_columns text[] NOT NULL,
  cursor text[],
  upper_bound text[],
  state text NOT NULL CHECK (state IN ('running', 'paused', 'failed', 'done')),
  rows_done bigint NOT NULL DEFAULT 0,
  rows_total bigint,
  batches bigint NOT NULL DEFAULT 0,
  batch_size integer,
  rows_per_second double precision,
  started_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  verified_at timestamptz,
  mismatches bigint,
  last_error text
);
CREATE TABLE IF NOT EXISTS ${names.audit} (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT now(),
  actor text NOT NULL,
  action text NOT NULL,
  version text,
  reason text NOT NULL,
  details jsonb
);`);
}

/** Whether the history table exists (read-only commands do not create it). */
export async function storeExists(client: pg.ClientBase, schema: string): Promise<boolean> {
  const result = await client.query<{ exists: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS exists`, [
    `${quoteIdent(schema)}.history`,
  ]);
  return result.rows[0]?.exists === true;
}

interface RawHistoryRow {
  installed_rank: string;
  version: string;
  description: string;
  phase: HistoryRow['phase'];
  script: string;
  checksum: string | null;
  transactional: boolean;
  statements_applied: number;
  installed_by: string;
  installed_on: Date;
  execution_ms: number;
  success: boolean;
  error: string | null;
  forced_reason: string | null;
}

/** Every history row, oldest first. */
export async function readHistory(client: pg.ClientBase, names: StoreNames): Promise<HistoryRow[]> {
  const result = await client.query<RawHistoryRow>(`SELECT * FROM ${names.history} ORDER BY installed_rank`);
  return result.rows.map((row) => ({
    installedRank: Number(row.installed_rank),
    version: row.version,
    description: row.description,
    phase: row.phase,
    script: row.script,
    checksum: row.checksum,
    transactional: row.transactional,
    statementsApplied: row.statements_applied,
    installedBy: row.installed_by,
    installedOn: row.installed_on,
    executionMs: row.execution_ms,
    success: row.success,
    error: row.error,
    forcedReason: row.forced_reason,
  }));
}

/** Writes an audit record. */
export async function audit(
  client: pg.ClientBase,
  names: StoreNames,
  entry: { actor: string; action: string; version: string | null; reason: string; details?: unknown },
): Promise<void> {
  await client.query(
    `INSERT INTO ${names.audit} (actor, action, version, reason, details) VALUES ($1, $2, $3, $4, $5)`,
    [
      entry.actor,
      entry.action,
      entry.version,
      entry.reason,
      entry.details === undefined ? null : JSON.stringify(entry.details),
    ],
  );
}
