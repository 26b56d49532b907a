// @gantry/migrations: expand/contract PostgreSQL migrations that cannot take production down.
export {
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_HEARTBEAT_TTL_MS,
  appApplicationName,
  parseApplicationName,
  registerAppVersion,
} from './app-version.ts';
export type { AppVersionRegistration, LiveClient, RegisterAppVersionOptions, SchemaSupports } from './app-version.ts';
export {
  DEFAULT_BACKFILL_BATCH_SIZE,
  DEFAULT_BACKFILL_MAX_BATCH_SIZE,
  DEFAULT_BACKFILL_MIN_BATCH_SIZE,
  DEFAULT_BACKFILL_RETRIES,
  DEFAULT_BACKFILL_TARGET_BATCH_MS,
  defineBackfill,
} from './backfill.ts';
export type { BackfillBatch, BackfillDefinition, BackfillProgress, BackfillQuery, BackfillStatus } from './backfill.ts';
export type { Clock, Logger } from './db.ts';
export { MIGRATIONS_ENV_VARIABLES, migratorOptionsFromEnv } from './env.ts';
export { MIGRATION_ERROR_CODES, MigrationError, isMigrationError } from './errors.ts';
export type { MigrationErrorCode, MigrationErrorOptions } from './errors.ts';
export { MIGRATION_PHASES, checksumOf, loadMigrationFiles } from './files.ts';
export type { AllowDirective, MigrationFile, MigrationPhase } from './files.ts';
export { LINT_RULES, lintRule } from './lint-rules.ts';
export type { LintRule, LintSeverity } from './lint-rules.ts';
export { createLintState, lintMigrationFiles, lintSql } from './lint.ts';
export type { FileLintResult, LintFinding, LintOptions, LintResult, LintState, SuppressedFinding } from './lint.ts';
export {
  DEFAULT_ADVISORY_LOCK_WAIT_MS,
  DEFAULT_BACKFILL_STATEMENT_TIMEOUT_MS,
  DEFAULT_CONCURRENT_STATEMENT_TIMEOUT_MS,
  DEFAULT_ESTIMATED_BACKFILL_ROWS_PER_SECOND,
  DEFAULT_LOCK_RETRIES,
  DEFAULT_LOCK_TIMEOUT_MS,
  DEFAULT_RETRY_BASE_DELAY_MS,
  DEFAULT_RETRY_MAX_DELAY_MS,
  DEFAULT_STATEMENT_TIMEOUT_MS,
  createMigrator,
} from './migrator.ts';
export type {
  AppliedMigration,
  BaselineReport,
  CompatReport,
  CompatWarning,
  LintEnforcement,
  MigrateOptions,
  MigrateReport,
  Migrator,
  MigratorConfig,
  MigratorOptions,
  PlanReport,
  PlannedMigration,
  PlannedStatement,
  RepairReport,
  ValidateReport,
  ValidationProblem,
} from './migrator.ts';
export {
  DEFAULT_MONITOR_CHECK_TIMEOUT_MS,
  DEFAULT_MONITOR_REFRESH_INTERVAL_MS,
  createSchemaMonitor,
} from './monitor.ts';
export type { SchemaInfo, SchemaMonitor, SchemaMonitorOptions } from './monitor.ts';
export { createProgressReporter } from './progress.ts';
export type { ProgressReporter, ProgressReporterOptions, ProgressStream } from './progress.ts';
export { LOCK_LEVELS } from './sql.ts';
export type { LockImpact, LockLevel } from './sql.ts';
export type { MigrationState, MigrationStatus, SchemaStatus } from './status.ts';
export { DEFAULT_HISTORY_SCHEMA } from './store.ts';
export { compareVersions, normalizeVersion, parseVersion } from './version.ts';
