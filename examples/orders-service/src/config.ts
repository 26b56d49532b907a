// The service's own settings, read once from the environment and frozen. Each Gantry package still reads its own
// GANTRY_<PACKAGE>_* variables through its `xOptionsFromEnv()`; this file only covers what the example adds: which
// version runs (and so how it behaves), where the database, Kafka and the migrations are.
import { join } from 'node:path';
import type { SchemaSupports } from '@gantry/migrations';

/** How a version behaves: `v1` knows only `customer_id`; `v2` migrates to `customer_key`; `v3` is v2 with a bug. */
export type Behaviour = 'v1' | 'v2' | 'v3';

/** Faults a version injects into its order endpoints. */
export interface Faults {
  /** Share of order requests answered with a 500. */
  readonly errorRate: number;
  /** Share of order requests delayed by `slowMs`. */
  readonly slowRate: number;
  /** Extra latency of a slowed request: a uniform draw from this range, in milliseconds. */
  readonly slowMs: readonly [number, number];
}

/** Frozen configuration of one service process. */
export interface OrdersConfig {
  readonly service: string;
  /** Semantic version of this build, e.g. `2.0.0`. */
  readonly version: string;
  readonly behaviour: Behaviour;
  readonly faults: Faults;
  /** Schema versions this version works with (see @gantry/migrations). */
  readonly schemaSupports: SchemaSupports;
  readonly host: string;
  readonly port: number;
  /** PostgreSQL URL. With Vault configured its user and password are ignored: credentials come from Vault. */
  readonly databaseUrl: string;
  /** Connections per pool. */
  readonly poolSize: number;
  /** True when `GANTRY_SECRETS_VAULT_ADDR` (or `VAULT_ADDR`) is set: the rotating pool is used. */
  readonly vault: boolean;
  readonly kafkaBrokers: readonly string[];
  readonly kafkaTopic: string;
  /** True when `GANTRY_FLAGS_URL` is set; otherwise flags run offline from the bootstrap file. */
  readonly unleash: boolean;
  readonly flagsBootstrapPath: string;
  readonly migrationsDirectory: string;
  readonly heartbeatIntervalMs: number;
  readonly schemaRefreshIntervalMs: number;
  /** Requests the service sends itself before it listens, so the first clients do not meet cold code. */
  readonly warmupRequests: number;
}

/** The example's root folder (the one holding `migrations/` and `flags-bootstrap.json`). */
export const SERVICE_ROOT = join(import.meta.dirname, '..');
/** The migration toggle: `dual-write-<migration id>`, its variant is the stage. */
export const CUSTOMER_KEY_MIGRATION = 'dual-write-customer-key';
/** The faults of version 3: 5 % errors, and one request in six 250–450 ms slower (p95 ≈ 400 ms). */
export const V3_FAULTS: Faults = Object.freeze({ errorRate: 0.05, slowRate: 0.16, slowMs: [250, 450] as const });
const NO_FAULTS: Faults = Object.freeze({ errorRate: 0, slowRate: 0, slowMs: [0, 0] as const });

/** Schema range per behaviour: v1 survives the expand and the backfill (≤ 3), v2/v3 need the expand (≥ 2). */
export const SCHEMA_SUPPORTS: Readonly<Record<Behaviour, SchemaSupports>> = Object.freeze({
  v1: Object.freeze({ min: '1', max: '3' }),
  v2: Object.freeze({ min: '2', max: '4' }),
  v3: Object.freeze({ min: '2', max: '4' }),
});

type Env = Readonly<Record<string, string | undefined>>;

function fail(name: string, expected: string, value: string): never {
  throw new Error(`Expected \`${name}\` to be ${expected}, got ${JSON.stringify(value)}`);
}

function number(env: Env, name: string, fallback: number, min: number, max = Number.POSITIVE_INFINITY): number {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) {
    fail(name, `a number from ${min}${Number.isFinite(max) ? ` to ${max}` : ''}`, raw);
  }
  return value;
}

/**
 * Reads `ORDERS_*` (and the presence of the Vault, Unleash and Kafka variables) into a frozen configuration.
 * `ORDERS_VERSION` (else `GANTRY_TELEMETRY_SERVICE_VERSION`, else `1.0.0`) picks the behaviour by its major version:
 * 1 → v1, 2 → v2, 3 → v3. `ORDERS_SERVICE` defaults to `OTEL_SERVICE_NAME`, then `orders`.
 * @throws Error naming the variable, what was expected and what was received.
 * @example const config = ordersConfigFromEnv({ ORDERS_VERSION: '2.0.0', DATABASE_URL: 'postgres://…' });
 */
export function ordersConfigFromEnv(env: Env = process.env): OrdersConfig {
  const version = env['ORDERS_VERSION']?.trim() || env['GANTRY_TELEMETRY_SERVICE_VERSION']?.trim() || '1.0.0';
  const major = /^v?(\d+)(?:\.\d+)*$/.exec(version)?.[1];
  if (major === undefined || !['1', '2', '3'].includes(major)) {
    fail('ORDERS_VERSION', 'a version whose major is 1, 2 or 3 (e.g. 2.0.0)', version);
  }
  const behaviour = `v${major}` as Behaviour;
  const base = behaviour === 'v3' ? V3_FAULTS : NO_FAULTS;
  const slowMin = number(env, 'ORDERS_SLOW_MIN_MS', base.slowMs[0], 0);
  const faults: Faults = Object.freeze({
    errorRate: number(env, 'ORDERS_ERROR_RATE', base.errorRate, 0, 1),
    slowRate: number(env, 'ORDERS_SLOW_RATE', base.slowRate, 0, 1),
    slowMs: Object.freeze([slowMin, number(env, 'ORDERS_SLOW_MAX_MS', base.slowMs[1], slowMin)] as const),
  });
  const databaseUrl = env['DATABASE_URL']?.trim() ?? '';
  if (databaseUrl === '') fail('DATABASE_URL', 'a PostgreSQL URL', '');
  try {
    new URL(databaseUrl);
  } catch {
    fail('DATABASE_URL', 'a PostgreSQL URL', '(unparsable, value hidden)');
  }
  const set = (name: string): boolean => (env[name]?.trim() ?? '') !== '';
  const brokers = (env['KAFKA_BROKERS'] ?? '')
    .split(',')
    .map((broker) => broker.trim())
    .filter((broker) => broker !== '');
  return Object.freeze({
    service: env['ORDERS_SERVICE']?.trim() || env['OTEL_SERVICE_NAME']?.trim() || 'orders',
    version,
    behaviour,
    faults,
    schemaSupports: SCHEMA_SUPPORTS[behaviour],
    host: env['ORDERS_HOST']?.trim() || '127.0.0.1',
    port: number(env, 'ORDERS_PORT', 8080, 0, 65_535),
    databaseUrl,
    poolSize: number(env, 'ORDERS_POOL_SIZE', 5, 1, 100),
    vault: set('GANTRY_SECRETS_VAULT_ADDR') || set('VAULT_ADDR'),
    kafkaBrokers: Object.freeze(brokers),
    kafkaTopic: env['ORDERS_KAFKA_TOPIC']?.trim() || 'orders.events',
    unleash: set('GANTRY_FLAGS_URL'),
    flagsBootstrapPath: env['GANTRY_FLAGS_BOOTSTRAP_PATH']?.trim() || join(SERVICE_ROOT, 'flags-bootstrap.json'),
    migrationsDirectory: env['ORDERS_MIGRATIONS_DIR']?.trim() || join(SERVICE_ROOT, 'migrations'),
    heartbeatIntervalMs: number(env, 'ORDERS_HEARTBEAT_INTERVAL_MS', 10_000, 10),
    schemaRefreshIntervalMs: number(env, 'ORDERS_SCHEMA_REFRESH_INTERVAL_MS', 5_000, 0),
    warmupRequests: number(env, 'ORDERS_WARMUP_REQUESTS', 0, 0, 100_000),
  });
}
