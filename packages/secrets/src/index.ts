// @gantry/secrets: Vault auth, KV v2, leases and a pg pool whose dynamic credentials rotate under load.
export { SYSTEM_CLOCK, createManualClock } from './clock.ts';
export type { Clock, ClockTimer, ManualClock } from './clock.ts';
export { SECRETS_ERROR_CODES, SecretsError, isSecretsError } from './errors.ts';
export type { FailureKind, SecretsErrorCode, SecretsErrorOptions } from './errors.ts';
export { DEFAULT_KV_REFRESH_INTERVAL_MS } from './kv.ts';
export type { KvChange, KvSecret, KvStore, KvStoreEvents, KvStoreOptions } from './kv.ts';
export { SILENT_LOGGER } from './logger.ts';
export type { LogMethod, Logger } from './logger.ts';
export { rotatingPoolOptionsFromEnv, vaultOptionsFromEnv } from './options-from-env.ts';
export {
  DEFAULT_DRAIN_TIMEOUT_MS,
  DEFAULT_READINESS_LEAD_MS,
  DEFAULT_ROTATION_FRACTION,
  DEFAULT_SAFETY_MARGIN_MS,
  DEFAULT_SHORTEN_TO_SECONDS,
  DEFAULT_WARMUP_TIMEOUT_MS,
  DEFAULT_WARM_CONCURRENCY,
  createRotatingPool,
} from './rotating-pool.ts';
export type {
  RevokeMode,
  RotatingPool,
  RotatingPoolConfig,
  RotatingPoolEvents,
  RotatingPoolOptions,
  RotatingPoolState,
  RotationReason,
} from './rotating-pool.ts';
export type { VaultTlsOptions } from './transport.ts';
export {
  DEFAULT_KUBERNETES_JWT_FILE,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_RETRY_INITIAL_DELAY_MS,
  DEFAULT_RETRY_MAX_DELAY_MS,
  DEFAULT_STARTUP_TIMEOUT_MS,
  DEFAULT_TOKEN_RELOGIN_LEAD_MS,
  RENEW_FRACTION_RANGE,
  createVault,
} from './vault.ts';
export type {
  DatabaseCredentials,
  LeaseRenewal,
  LoginReason,
  SecretSource,
  TokenInfo,
  Vault,
  VaultAuth,
  VaultCallOptions,
  VaultConfig,
  VaultEvents,
  VaultHealth,
  VaultOptions,
  VaultResponse,
} from './vault.ts';
