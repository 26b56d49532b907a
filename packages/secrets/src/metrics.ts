// prom-client metrics shared by every Vault client and rotating pool that reports to one registry. Gauges that
// depend on time (seconds left) are computed at scrape time from the live instances.
import { Counter, Gauge, Histogram, register as globalRegistry, type Registry } from 'prom-client';

/** A source of time-dependent gauge values, registered while its owner is running. */
export interface GaugeSource {
  /** Pool name → seconds until the current credentials stop working (negative once past). */
  leaseRemaining?(): readonly (readonly [string, number])[];
  /** Seconds until the current Vault token expires; undefined for a non-expiring token or none. */
  tokenRemaining?(): number | undefined;
}

/** The package's metric families in one registry. */
export interface SecretsMetrics {
  readonly vaultRequests: Counter<'operation' | 'outcome'>;
  readonly vaultRequestDuration: Histogram<'operation'>;
  readonly tokenRenewals: Counter<'result'>;
  readonly logins: Counter<'result'>;
  readonly leaseRenewals: Counter<'pool' | 'result'>;
  readonly rotations: Counter<'pool' | 'result'>;
  readonly generation: Gauge<'pool'>;
  readonly drainDuration: Histogram<'pool'>;
  readonly drainTimeouts: Counter<'pool'>;
  readonly drainingPools: Gauge<'pool'>;
  readonly kvRefreshes: Counter<'result'>;
  readonly sources: Set<GaugeSource>;
}

const byRegistry = new WeakMap<Registry, SecretsMetrics>();

/**
 * Returns the metric families for `registry`, creating them on first use.
 * @internal
 */
export function secretsMetrics(registry: Registry = globalRegistry): SecretsMetrics {
  const existing = byRegistry.get(registry);
  if (existing !== undefined) return existing;
  const registers = [registry];
  const sources = new Set<GaugeSource>();
  const metrics: SecretsMetrics = {
    vaultRequests: new Counter({
      name: 'gantry_secrets_vault_requests_total',
      help: 'Vault requests by operation and outcome (ok, retryable, lease_terminal, auth, fatal).',
      labelNames: ['operation', 'outcome'],
      registers,
    }),
    vaultRequestDuration: new Histogram({
      name: 'gantry_secrets_vault_request_duration_seconds',
      help: 'Duration of Vault requests, including failures and timeouts.',
      labelNames: ['operation'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    tokenRenewals: new Counter({
      name: 'gantry_secrets_token_renewals_total',
      help: 'Vault token renewals by result (success, failure).',
      labelNames: ['result'],
      registers,
    }),
    logins: new Counter({
      name: 'gantry_secrets_logins_total',
      help: 'Vault logins by result (success, failure).',
      labelNames: ['result'],
      registers,
    }),
    leaseRenewals: new Counter({
      name: 'gantry_secrets_lease_renewals_total',
      help: 'Database lease renewals by pool and result (success, truncated, failure).',
      labelNames: ['pool', 'result'],
      registers,
    }),
    rotations: new Counter({
      name: 'gantry_secrets_rotations_total',
      help: 'Credential rotations by pool and result (success, failure).',
      labelNames: ['pool', 'result'],
      registers,
    }),
    generation: new Gauge({
      name: 'gantry_secrets_pool_generation',
      help: 'Generation of the pool that serves new work (1 after start, +1 per rotation).',
      labelNames: ['pool'],
      registers,
    }),
    drainDuration: new Histogram({
      name: 'gantry_secrets_drain_duration_seconds',
      help: 'Time from switching away from a pool until it was ended.',
      labelNames: ['pool'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    }),
    drainTimeouts: new Counter({
      name: 'gantry_secrets_drain_timeouts_total',
      help: 'Old pools that were still busy when the drain timeout passed.',
      labelNames: ['pool'],
      registers,
    }),
    drainingPools: new Gauge({
      name: 'gantry_secrets_draining_pools',
      help: 'Old pools still draining.',
      labelNames: ['pool'],
      registers,
    }),
    kvRefreshes: new Counter({
      name: 'gantry_secrets_kv_refreshes_total',
      help: 'KV v2 cache refreshes by result (unchanged, changed, failure).',
      labelNames: ['result'],
      registers,
    }),
    sources,
  };
  new Gauge({
    name: 'gantry_secrets_lease_remaining_seconds',
    help: 'Seconds until the credentials serving new work stop working (lease or creating token expiry).',
    labelNames: ['pool'],
    registers,
    collect() {
      this.reset();
      for (const source of sources) {
        for (const [pool, seconds] of source.leaseRemaining?.() ?? []) this.set({ pool }, seconds);
      }
    },
  });
  new Gauge({
    name: 'gantry_secrets_token_remaining_seconds',
    help: 'Seconds until the current Vault token expires (absent for a non-expiring token).',
    registers,
    collect() {
      this.reset();
      for (const source of sources) {
        const seconds = source.tokenRemaining?.();
        if (seconds !== undefined) this.set(seconds);
      }
    },
  });
  byRegistry.set(registry, metrics);
  return metrics;
}
