// @gantry/secrets/testing: a Vault-compatible dev server with real PostgreSQL roles, and a manual clock.
export { createManualClock } from './clock.ts';
export type { Clock, ManualClock } from './clock.ts';
export {
  DATABASE_EXPIRY_BUFFER_MS,
  createVaultDevServer,
  humanDuration,
  parseDurationSeconds,
  vaultExpiration,
} from './dev-server.ts';
export type {
  DevAuthRole,
  DevDatabaseHooks,
  DevDatabaseRole,
  DevDatabaseUser,
  DevFault,
  DevFaultHandle,
  DevFaultKind,
  DevLeaseState,
  DevRequest,
  DevTokenState,
  VaultDevServer,
  VaultDevServerOptions,
} from './dev-server.ts';
export { DEFAULT_CREATION_STATEMENTS, DEFAULT_RENEW_STATEMENTS, postgresRoleHooks } from './postgres-hooks.ts';
export type { PostgresRoleHooks } from './postgres-hooks.ts';
