// The service's PostgreSQL pool: Vault dynamic credentials that rotate make-before-break when a Vault address is
// configured (@gantry/secrets), a plain pg pool otherwise. Either way every connection carries an
// `application_name` naming the schema range this version supports, so the contract gate sees it.
import type { Check, ShutdownHook } from '@gantry/health';
import { createPoolEndHook, createPostgresCheck } from '@gantry/health';
import { appApplicationName } from '@gantry/migrations';
import {
  createRotatingPool,
  createVault,
  rotatingPoolOptionsFromEnv,
  vaultOptionsFromEnv,
  type Logger as SecretsLogger,
  type RotatingPool,
  type Vault,
} from '@gantry/secrets';
import pg from 'pg';
import type { OrdersConfig } from './config.ts';

/** The database of one service process. */
export interface Database {
  /** A pg.Pool, or a rotating pool (which has the same surface). */
  readonly pool: pg.Pool;
  /** `vault` when credentials come from Vault, `static` for a plain pool. */
  readonly credentials: 'vault' | 'static';
  /** Readiness checks: a `SELECT 1` with a server-side timeout, plus the lease and Vault token when rotating. */
  readonly checks: readonly Check[];
  /** Shutdown hooks in registration order (health runs them in reverse: the pool ends before Vault closes). */
  readonly hooks: readonly ShutdownHook[];
  /** Rotations so far (0 with a plain pool). */
  rotations(): number;
}

/**
 * Opens the pool for `config`. With Vault, logs in (`GANTRY_SECRETS_*`) and waits for working credentials.
 * @throws the secrets package's `SecretsError` when Vault or the first credentials cannot be had.
 * @example const database = await openDatabase(config, logger);
 */
export async function openDatabase(config: OrdersConfig, logger: SecretsLogger): Promise<Database> {
  const url = new URL(config.databaseUrl);
  const applicationName = appApplicationName({
    service: config.service,
    version: config.version,
    schemaSupports: config.schemaSupports,
  });
  if (!config.vault) {
    const pool = new pg.Pool({
      connectionString: config.databaseUrl,
      max: config.poolSize,
      application_name: applicationName,
    });
    pool.on('error', (error) =>
      logger.warn({ event: 'orders.pool.idle_error', err: error.message }, 'idle client error'),
    );
    return {
      pool,
      credentials: 'static',
      checks: [createPostgresCheck({ pool, timeoutMs: 1_000 })],
      hooks: [createPoolEndHook(pool, { timeoutMs: 3_000 })],
      rotations: () => 0,
    };
  }
  const vault: Vault = createVault({ ...vaultOptionsFromEnv(), logger });
  await vault.start();
  let rotations = 0;
  const pool: RotatingPool = createRotatingPool({
    ...rotatingPoolOptionsFromEnv(),
    vault,
    Pool: pg.Pool,
    logger,
    pool: {
      host: url.hostname,
      port: Number(url.port || 5432),
      database: decodeURIComponent(url.pathname.slice(1)) || 'postgres',
      max: config.poolSize,
      application_name: applicationName,
    },
  });
  pool.on('rotated', () => {
    rotations += 1;
  });
  try {
    await pool.start();
  } catch (error) {
    await vault.close();
    throw error;
  }
  return {
    pool: pool as unknown as pg.Pool,
    credentials: 'vault',
    checks: [createPostgresCheck({ pool, timeoutMs: 1_000 }), pool.check(), vault.check()],
    // Reverse order at shutdown: the pool drains, ends and revokes its leases, then the Vault client closes.
    hooks: [vault.shutdownHook({ timeoutMs: 2_000 }), pool.shutdownHook({ timeoutMs: 5_000 })],
    rotations: () => rotations,
  };
}
