// @gantry/flags: Unleash feature flags with tenant context, a typed registry and dual-write migration stages.
export { TENANT_BAGGAGE_KEY, USER_BAGGAGE_KEY } from './context.ts';
export type { AmbientContext, AmbientContextReader, FlagContext } from './context.ts';
export { DISABLED_VARIANT, defineFlags } from './definitions.ts';
export type { ExpiredFlag, FlagDefinition, FlagRegistry, NormalizedFlagDefinition } from './definitions.ts';
export { FLAGS_ERROR_CODES, FlagsError, isFlagsError } from './errors.ts';
export type { FlagsErrorCode } from './errors.ts';
export { DEFAULT_CHECK_TIMEOUT_MS, createFlags } from './flags.ts';
export type {
  FlagPayload,
  Flags,
  FlagsCheckOptions,
  FlagsReadyOptions,
  FlagsSource,
  FlagsStatus,
  FlagToggle,
  FlagVariant,
} from './flags.ts';
export type { FlagsLogger } from './logger.ts';
export { MAX_EVALUATION_SERIES, MIGRATION_DURATION_BUCKETS } from './metrics.ts';
export {
  DEFAULT_GUARDRAIL_MIN_SAMPLES,
  DEFAULT_GUARDRAIL_WINDOW_MS,
  DEFAULT_MAX_CONCURRENT_SHADOW_READS,
  DEFAULT_MAX_MISMATCH_RATE,
  DEFAULT_PIN_TTL_MS,
  DEFAULT_SHADOW_TIMEOUT_MS,
  DEFAULT_SHADOW_MAX_DELAY_MS,
  DEFAULT_MAX_QUEUED_SHADOW_READS,
  MIGRATION_STAGES,
  createMigrationFlag,
  isLegalStageChange,
  isMigrationStage,
  migrationPlan,
  structuralDiff,
} from './migration-flag.ts';
export type {
  DiffEntry,
  MigrationCall,
  MigrationFlag,
  MigrationFlagOptions,
  MigrationGuardrailEvent,
  MigrationGuardrailOptions,
  MigrationOrigin,
  MigrationPlan,
  MigrationStage,
  MigrationStats,
  StructuralDiffOptions,
  MigrationWriteFailure,
} from './migration-flag.ts';
export {
  DEFAULT_ENVIRONMENT,
  DEFAULT_METRICS_INTERVAL_MS,
  DEFAULT_READY_TIMEOUT_MS,
  DEFAULT_REFRESH_INTERVAL_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_TENANT_PROPERTY,
  flagsOptionsFromEnv,
} from './options.ts';
export type { FlagsClock, FlagsOptions } from './options.ts';
export type { BootstrapData } from './snapshot-store.ts';
