// The one place that reads the environment.
import { invalidOption } from './errors.ts';
import type { LintEnforcement, MigratorOptions } from './migrator.ts';

/** Environment variables read by {@link migratorOptionsFromEnv}. */
export const MIGRATIONS_ENV_VARIABLES = [
  'GANTRY_MIGRATIONS_URL',
  'GANTRY_MIGRATIONS_DIR',
  'GANTRY_MIGRATIONS_SCHEMA',
  'GANTRY_MIGRATIONS_LOCK_TIMEOUT_MS',
  'GANTRY_MIGRATIONS_STATEMENT_TIMEOUT_MS',
  'GANTRY_MIGRATIONS_LOCK_RETRIES',
  'GANTRY_MIGRATIONS_LOCK_WAIT_MS',
  'GANTRY_MIGRATIONS_HEARTBEAT_TTL_MS',
  'GANTRY_MIGRATIONS_ALLOW_OUT_OF_ORDER',
  'GANTRY_MIGRATIONS_LINT',
  'GANTRY_MIGRATIONS_ACTOR',
] as const;

const number = (env: NodeJS.ProcessEnv, name: string): number | undefined => {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) invalidOption(name, 'a finite number ≥ 0', raw);
  return value;
};

/**
 * Migrator options from `GANTRY_MIGRATIONS_*` variables (only those that are set). Combine with your own:
 * `createMigrator({ ...migratorOptionsFromEnv(), directory: './migrations' })`.
 * @throws MigrationError `GANTRY_MIGRATIONS_INVALID_OPTION` for malformed values.
 * @example
 * const migrator = createMigrator({ directory: './migrations', ...migratorOptionsFromEnv() });
 */
export function migratorOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<MigratorOptions> {
  const options: { -readonly [K in keyof MigratorOptions]?: MigratorOptions[K] } = {};
  if (env['GANTRY_MIGRATIONS_URL']) options.connectionString = env['GANTRY_MIGRATIONS_URL'];
  if (env['GANTRY_MIGRATIONS_DIR']) options.directory = env['GANTRY_MIGRATIONS_DIR'];
  if (env['GANTRY_MIGRATIONS_SCHEMA']) options.schema = env['GANTRY_MIGRATIONS_SCHEMA'];
  if (env['GANTRY_MIGRATIONS_ACTOR']) options.actor = env['GANTRY_MIGRATIONS_ACTOR'];
  const lockTimeoutMs = number(env, 'GANTRY_MIGRATIONS_LOCK_TIMEOUT_MS');
  if (lockTimeoutMs !== undefined) options.lockTimeoutMs = lockTimeoutMs;
  const statementTimeoutMs = number(env, 'GANTRY_MIGRATIONS_STATEMENT_TIMEOUT_MS');
  if (statementTimeoutMs !== undefined) options.statementTimeoutMs = statementTimeoutMs;
  const lockRetries = number(env, 'GANTRY_MIGRATIONS_LOCK_RETRIES');
  if (lockRetries !== undefined) options.lockRetries = lockRetries;
  const wait = number(env, 'GANTRY_MIGRATIONS_LOCK_WAIT_MS');
  if (wait !== undefined) options.advisoryLockWaitMs = wait;
  const ttl = number(env, 'GANTRY_MIGRATIONS_HEARTBEAT_TTL_MS');
  if (ttl !== undefined) options.heartbeatTtlMs = ttl;
  const outOfOrder = env['GANTRY_MIGRATIONS_ALLOW_OUT_OF_ORDER'];
  if (outOfOrder !== undefined && outOfOrder !== '') {
    if (!['true', 'false', '1', '0'].includes(outOfOrder))
      invalidOption('GANTRY_MIGRATIONS_ALLOW_OUT_OF_ORDER', 'true or false', outOfOrder);
    options.allowOutOfOrder = outOfOrder === 'true' || outOfOrder === '1';
  }
  const lint = env['GANTRY_MIGRATIONS_LINT'];
  if (lint !== undefined && lint !== '') {
    if (!['enforce', 'report', 'off'].includes(lint))
      invalidOption('GANTRY_MIGRATIONS_LINT', '"enforce", "report" or "off"', lint);
    options.lint = lint as LintEnforcement;
  }
  return options;
}
