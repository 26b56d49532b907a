import { Counter, Gauge, Histogram, register as globalRegistry, type Registry } from 'prom-client';

/** Most distinct `flag`×`value` series one registry gets; the rest are counted under `flag="__other__"`. */
export const MAX_EVALUATION_SERIES = 1_000;

/** Returns the metric already registered under `name`, or registers the one `create` builds. */
export function sharedMetric<T>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}

/** The registry a component uses: the one given, or prom-client's global one. */
export function resolveRegistry(registry: Registry | undefined): Registry {
  return registry ?? globalRegistry;
}

/**
 * Evaluation counts kept in plain numbers on the hot path and moved into the prom-client counter at scrape time,
 * so `isEnabled` costs a map lookup rather than a labelled `inc()`.
 */
export class EvaluationCounts {
  readonly #booleans = new Map<string, { yes: number; no: number }>();
  readonly #variants = new Map<string, Map<string, number>>();
  #series = 0;

  recordBoolean(flag: string, enabled: boolean): void {
    const entry = this.#booleans.get(flag) ?? this.#newBoolean(flag);
    if (enabled) entry.yes += 1;
    else entry.no += 1;
  }

  recordVariant(flag: string, variant: string): void {
    const entry = this.#variants.get(flag) ?? this.#newVariantFlag(flag);
    const count = entry.get(variant);
    if (count !== undefined) {
      entry.set(variant, count + 1);
    } else if (this.#series < MAX_EVALUATION_SERIES) {
      this.#series += 1;
      entry.set(variant, 1);
    } else {
      entry.set('__other__', (entry.get('__other__') ?? 0) + 1);
    }
  }

  #newBoolean(flag: string): { yes: number; no: number } {
    const key = this.#series + 2 > MAX_EVALUATION_SERIES ? '__other__' : flag;
    let entry = this.#booleans.get(key);
    if (entry === undefined) {
      entry = { yes: 0, no: 0 };
      this.#booleans.set(key, entry);
      this.#series += 2;
    }
    return entry;
  }

  #newVariantFlag(flag: string): Map<string, number> {
    const key = this.#series >= MAX_EVALUATION_SERIES ? '__other__' : flag;
    let entry = this.#variants.get(key);
    if (entry === undefined) {
      entry = new Map();
      this.#variants.set(key, entry);
    }
    return entry;
  }

  /** Adds the counts gathered since the last flush to `counter` and starts again from zero. */
  flush(counter: Counter<'flag' | 'value'>): void {
    for (const [flag, entry] of this.#booleans) {
      if (entry.yes > 0) counter.inc({ flag, value: 'true' }, entry.yes);
      if (entry.no > 0) counter.inc({ flag, value: 'false' }, entry.no);
      entry.yes = 0;
      entry.no = 0;
    }
    for (const [flag, entry] of this.#variants) {
      for (const [variant, count] of entry) {
        if (count > 0) counter.inc({ flag, value: variant }, count);
        entry.set(variant, 0);
      }
    }
  }
}

const sources = new WeakMap<Registry, Set<EvaluationCounts>>();

/** The metrics of one flags client. */
export interface FlagsMetrics {
  readonly syncs: Counter<'app' | 'outcome'>;
  readonly ready: Gauge<'app'>;
  readonly lastSync: Gauge<'app'>;
  readonly expired: Gauge<'app'>;
  /** Stops counting this client's evaluations (they are flushed one last time first). */
  detach(): void;
}

/** Registers (or reuses) the flags metrics in `registry` and attaches `counts` to the evaluation counter. */
export function createFlagsMetrics(registry: Registry, counts: EvaluationCounts): FlagsMetrics {
  let attached = sources.get(registry);
  if (attached === undefined) {
    attached = new Set();
    sources.set(registry, attached);
  }
  const set = attached;
  const evaluations = sharedMetric(
    registry,
    'gantry_flags_evaluations_total',
    () =>
      new Counter({
        name: 'gantry_flags_evaluations_total',
        help: 'Flag evaluations by flag and result (true/false, or the variant name).',
        labelNames: ['flag', 'value'] as const,
        registers: [registry],
        collect(this: Counter<'flag' | 'value'>) {
          for (const source of sources.get(registry) ?? []) source.flush(this);
        },
      }),
  );
  set.add(counts);
  return {
    syncs: sharedMetric(
      registry,
      'gantry_flags_syncs_total',
      () =>
        new Counter({
          name: 'gantry_flags_syncs_total',
          help: 'Polls of Unleash by outcome: changed, unchanged, failed, unauthorized.',
          labelNames: ['app', 'outcome'] as const,
          registers: [registry],
        }),
    ),
    ready: sharedMetric(
      registry,
      'gantry_flags_ready',
      () =>
        new Gauge({
          name: 'gantry_flags_ready',
          help: '1 when flag values are loaded (bootstrap, backup or Unleash), else 0.',
          labelNames: ['app'] as const,
          registers: [registry],
        }),
    ),
    lastSync: sharedMetric(
      registry,
      'gantry_flags_last_sync_timestamp_seconds',
      () =>
        new Gauge({
          name: 'gantry_flags_last_sync_timestamp_seconds',
          help: 'Unix time of the last successful poll of Unleash.',
          labelNames: ['app'] as const,
          registers: [registry],
        }),
    ),
    expired: sharedMetric(
      registry,
      'gantry_flags_expired_flags',
      () =>
        new Gauge({
          name: 'gantry_flags_expired_flags',
          help: 'Flags of the registry past their expiry date.',
          labelNames: ['app'] as const,
          registers: [registry],
        }),
    ),
    detach: () => {
      counts.flush(evaluations);
      set.delete(counts);
    },
  };
}

/** Migration metrics, shared by every migration flag in a registry. */
export interface MigrationMetrics {
  readonly operations: Counter<'migration' | 'operation' | 'stage' | 'origin' | 'outcome'>;
  readonly duration: Histogram<'migration' | 'operation' | 'origin'>;
  readonly consistency: Counter<'migration' | 'result'>;
  readonly rejections: Counter<'migration' | 'from' | 'to'>;
  readonly guardrail: Gauge<'migration'>;
}

/** Default buckets of migration operation latency, in seconds. */
export const MIGRATION_DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** Registers (or reuses) the migration metrics in `registry`. */
export function createMigrationMetrics(registry: Registry): MigrationMetrics {
  return {
    operations: sharedMetric(
      registry,
      'gantry_flags_migration_operations_total',
      () =>
        new Counter({
          name: 'gantry_flags_migration_operations_total',
          help: 'Reads and writes of a migration by stage, origin (old/new) and outcome (success/error/skipped).',
          labelNames: ['migration', 'operation', 'stage', 'origin', 'outcome'] as const,
          registers: [registry],
        }),
    ),
    duration: sharedMetric(
      registry,
      'gantry_flags_migration_operation_duration_seconds',
      () =>
        new Histogram({
          name: 'gantry_flags_migration_operation_duration_seconds',
          help: 'Latency of each side of a migration read or write.',
          labelNames: ['migration', 'operation', 'origin'] as const,
          buckets: MIGRATION_DURATION_BUCKETS,
          registers: [registry],
        }),
    ),
    consistency: sharedMetric(
      registry,
      'gantry_flags_migration_consistency_total',
      () =>
        new Counter({
          name: 'gantry_flags_migration_consistency_total',
          help: 'Comparisons of old and new reads: consistent, inconsistent, or error (a side or compare failed).',
          labelNames: ['migration', 'result'] as const,
          registers: [registry],
        }),
    ),
    rejections: sharedMetric(
      registry,
      'gantry_flags_migration_stage_rejections_total',
      () =>
        new Counter({
          name: 'gantry_flags_migration_stage_rejections_total',
          help: 'Stage changes refused as illegal jumps (the previous stage was kept).',
          labelNames: ['migration', 'from', 'to'] as const,
          registers: [registry],
        }),
    ),
    guardrail: sharedMetric(
      registry,
      'gantry_flags_migration_guardrail_tripped',
      () =>
        new Gauge({
          name: 'gantry_flags_migration_guardrail_tripped',
          help: '1 while the mismatch rate of a migration is over its threshold.',
          labelNames: ['migration'] as const,
          registers: [registry],
        }),
    ),
  };
}
