// prom-client metrics of the registry: check status and duration, shutdown phase. Label values are check names
// and group names (both a fixed, registered set) and shutdown phases.
import { Counter, Gauge, Histogram, register as globalRegistry, type Registry } from 'prom-client';

/** Shutdown phases in order, as the `phase` label shows them. */
export const SHUTDOWN_PHASES = ['running', 'delay', 'drain', 'hooks', 'terminate'] as const;
/** Where the graceful shutdown is: `running` until a signal, then delay → drain → hooks → terminate. */
export type ShutdownPhase = (typeof SHUTDOWN_PHASES)[number];

export interface HealthMetrics {
  readonly checkStatus: Gauge<'check' | 'group'>;
  readonly checkDuration: Histogram<'check'>;
  readonly checkTimeouts: Counter<'check'>;
  readonly probeStatus: Gauge<'group'>;
  readonly shutdownPhase: Gauge<'phase'>;
  readonly shutdownPhaseDuration: Gauge<'phase'>;
  readonly forcedSockets: Counter;
}

function reuse<T>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}

/** Creates (or, when a second registry uses the same prom-client registry, reuses) the metrics. */
export function createHealthMetrics(registry: Registry = globalRegistry): HealthMetrics {
  const registers = [registry];
  return {
    checkStatus: reuse(
      registry,
      'gantry_health_check_status',
      () =>
        new Gauge({
          name: 'gantry_health_check_status',
          help: 'Damped status of a check in a probe group (1 UP, 0 DOWN; stale counts as DOWN).',
          labelNames: ['check', 'group'],
          registers,
        }),
    ),
    checkDuration: reuse(
      registry,
      'gantry_health_check_duration_seconds',
      () =>
        new Histogram({
          name: 'gantry_health_check_duration_seconds',
          help: 'Duration of check runs, timeouts included.',
          labelNames: ['check'],
          buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
          registers,
        }),
    ),
    checkTimeouts: reuse(
      registry,
      'gantry_health_check_timeouts_total',
      () =>
        new Counter({
          name: 'gantry_health_check_timeouts_total',
          help: 'Check runs aborted by their timeout.',
          labelNames: ['check'],
          registers,
        }),
    ),
    probeStatus: reuse(
      registry,
      'gantry_health_probe_status',
      () =>
        new Gauge({
          name: 'gantry_health_probe_status',
          help: 'Overall status of a probe group as last served or evaluated (1 UP, 0 DOWN).',
          labelNames: ['group'],
          registers,
        }),
    ),
    shutdownPhase: reuse(
      registry,
      'gantry_health_shutdown_phase',
      () =>
        new Gauge({
          name: 'gantry_health_shutdown_phase',
          help: 'Current phase of the graceful shutdown (1 for the current phase, 0 for the others).',
          labelNames: ['phase'],
          registers,
        }),
    ),
    shutdownPhaseDuration: reuse(
      registry,
      'gantry_health_shutdown_phase_duration_seconds',
      () =>
        new Gauge({
          name: 'gantry_health_shutdown_phase_duration_seconds',
          help: 'How long each finished shutdown phase took.',
          labelNames: ['phase'],
          registers,
        }),
    ),
    forcedSockets: reuse(
      registry,
      'gantry_health_shutdown_forced_sockets_total',
      () =>
        new Counter({
          name: 'gantry_health_shutdown_forced_sockets_total',
          help: 'Sockets destroyed because the drain timeout passed with requests still in flight.',
          registers,
        }),
    ),
  };
}
