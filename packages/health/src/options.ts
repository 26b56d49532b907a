// Options in, frozen config out: defaults, validation (messages name the option, the expectation and the value)
// and the one place that reads the environment.
import type { Registry } from 'prom-client';
import type { Check, InfoContributor, ShutdownHook } from './contracts.ts';
import type { Clock } from './clock.ts';
import { HealthError } from './errors.ts';
import type { Logger } from './logger.ts';

/** The three Kubernetes probe groups a check can belong to. */
export type HealthGroup = 'liveness' | 'readiness' | 'startup';

/** All probe groups, in the order `/q/health` lists them. */
export const HEALTH_GROUPS: readonly HealthGroup[] = Object.freeze(['liveness', 'readiness', 'startup']);

/** How often a background check runs. @default 5_000 */
export const DEFAULT_CHECK_INTERVAL_MS = 5_000;
/** How long one check run may take before it is aborted and counted DOWN. @default 1_000 */
export const DEFAULT_CHECK_TIMEOUT_MS = 1_000;
/** Consecutive failures before an UP check turns DOWN. @default 1 */
export const DEFAULT_FAILURE_THRESHOLD = 1;
/** Consecutive successes before a DOWN check turns UP again. @default 1 */
export const DEFAULT_SUCCESS_THRESHOLD = 1;
/** How long an on-demand check's result is reused. @default 1_000 */
export const DEFAULT_ON_DEMAND_CACHE_MS = 1_000;
/** Signals that start the graceful shutdown. @default ['SIGTERM', 'SIGINT'] */
export const DEFAULT_SHUTDOWN_SIGNALS: readonly NodeJS.Signals[] = Object.freeze(['SIGTERM', 'SIGINT']);
/** Time between readiness turning DOWN and the server closing, so load balancers stop routing. @default 5_000 */
export const DEFAULT_SHUTDOWN_DELAY_MS = 5_000;
/** How long in-flight requests get to finish before their sockets are destroyed. @default 10_000 */
export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;
/** How long a keep-alive socket that is idle when the drain starts may still carry one last request. @default 1_000 */
export const DEFAULT_IDLE_SOCKET_GRACE_MS = 1_000;
/** Timeout of a shutdown hook that does not set its own `timeoutMs`. @default 5_000 */
export const DEFAULT_HOOK_TIMEOUT_MS = 5_000;
/** The pod's `terminationGracePeriodSeconds` in milliseconds (Kubernetes' default). @default 30_000 */
export const DEFAULT_GRACE_PERIOD_MS = 30_000;
/** The shutdown sequence ends this long before the grace period, so the kubelet never has to SIGKILL. @default 1_000 */
export const DEFAULT_DEADLINE_MARGIN_MS = 1_000;

/** How one check is scheduled and judged. Everything defaults to the registry-wide options. */
export interface CheckPolicy {
  /** Probe groups the check belongs to. @default ['readiness'] */
  readonly groups?: readonly HealthGroup[];
  /** `background`: run on an interval, probes read the cached result. `on-demand`: run when a probe finds the
   * cached result older than `cacheMs` (single-flight), bounded by `timeoutMs`. @default 'background' */
  readonly mode?: 'background' | 'on-demand';
  /** @default the registry's `checkIntervalMs` */
  readonly intervalMs?: number;
  /** Overrides `check.timeoutMs`. @default check.timeoutMs, else the registry's `checkTimeoutMs` */
  readonly timeoutMs?: number;
  /** A result older than this counts as DOWN. @default 2 × intervalMs + timeoutMs (on-demand: cacheMs + timeoutMs) */
  readonly staleAfterMs?: number;
  /** @default the registry's `failureThreshold` */
  readonly failureThreshold?: number;
  /** @default the registry's `successThreshold` */
  readonly successThreshold?: number;
  /** On-demand only. @default DEFAULT_ON_DEMAND_CACHE_MS */
  readonly cacheMs?: number;
}

/** What the shutdown sequence hands to `terminate`. */
export interface ShutdownOutcome {
  /** 0 when every phase finished in time, 1 when sockets were force-closed, a hook failed or the deadline hit. */
  readonly exitCode: 0 | 1;
  /** The signal that started the shutdown, if one did. */
  readonly signal: NodeJS.Signals | undefined;
  /** Why the shutdown started (`signal SIGTERM`, or the reason given to `shutdown()`). */
  readonly reason: string;
  /** Whether the overall deadline cut the sequence short. */
  readonly deadlineExceeded: boolean;
  /** Sockets destroyed because the drain timed out (their requests failed). */
  readonly forcedSockets: number;
  /** Hooks that threw or timed out. */
  readonly failedHooks: readonly string[];
  /** Milliseconds from the start of the shutdown. */
  readonly elapsedMs: number;
  /** Milliseconds left until the grace period ends (the kubelet's SIGKILL). */
  readonly remainingMs: number;
}

/** Graceful shutdown settings. */
export interface ShutdownOptions {
  /** Signals that start the sequence; `[]` to trigger it only through `health.shutdown()`. @default ['SIGTERM', 'SIGINT'] */
  readonly signals?: readonly NodeJS.Signals[];
  /** Load-balancer de-registration delay. @default DEFAULT_SHUTDOWN_DELAY_MS */
  readonly delayMs?: number;
  /** In-flight request budget; `0` disables draining (sockets are destroyed at once). @default DEFAULT_DRAIN_TIMEOUT_MS */
  readonly drainTimeoutMs?: number;
  /** @default DEFAULT_IDLE_SOCKET_GRACE_MS */
  readonly idleSocketGraceMs?: number;
  /** @default DEFAULT_HOOK_TIMEOUT_MS */
  readonly hookTimeoutMs?: number;
  /** The pod's termination grace period; a warning is logged at start when the phases may not fit, and the
   * sequence terminates `DEFAULT_DEADLINE_MARGIN_MS` before it whatever happens. @default DEFAULT_GRACE_PERIOD_MS */
  readonly gracePeriodMs?: number;
  /** Ends the process once the sequence is over. @default exitProcess (sets `process.exitCode`, then re-raises the
   * signal if the event loop does not empty before the grace period ends) */
  readonly terminate?: (outcome: ShutdownOutcome) => void | Promise<void>;
}

/** Options of {@link createHealth}. */
export interface HealthOptions {
  /** `/q/info` `service`. @default 'unknown' */
  readonly service?: string;
  /** `/q/info` `version`. @default 'unknown' */
  readonly version?: string;
  /** `/q/info` `commit`. @default null in the document */
  readonly commit?: string;
  /** Checks registered at construction, by group (same as calling `addCheck`). */
  readonly checks?: Partial<Record<HealthGroup, readonly Check[]>>;
  /** @default DEFAULT_CHECK_INTERVAL_MS */
  readonly checkIntervalMs?: number;
  /** @default DEFAULT_CHECK_TIMEOUT_MS */
  readonly checkTimeoutMs?: number;
  /** @default DEFAULT_FAILURE_THRESHOLD */
  readonly failureThreshold?: number;
  /** @default DEFAULT_SUCCESS_THRESHOLD */
  readonly successThreshold?: number;
  /** Sections of `/q/info`. */
  readonly infoContributors?: readonly InfoContributor[];
  /** Hooks run in reverse order during shutdown. */
  readonly shutdownHooks?: readonly ShutdownHook[];
  readonly shutdown?: ShutdownOptions;
  /** @default silent */
  readonly logger?: Logger;
  /** Where the metrics go. @default prom-client's global registry */
  readonly registry?: Registry;
  /** @default the monotonic system clock */
  readonly clock?: Clock;
  /** Wall-clock time for `/q/info` `startedAt`. @default () => new Date() */
  readonly wallClock?: () => Date;
}

/** The validated, frozen shutdown settings. */
export interface ShutdownConfig {
  readonly signals: readonly NodeJS.Signals[];
  readonly delayMs: number;
  readonly drainTimeoutMs: number;
  readonly idleSocketGraceMs: number;
  readonly hookTimeoutMs: number;
  readonly gracePeriodMs: number;
}

/** The validated, frozen configuration of a health registry. */
export interface HealthConfig {
  readonly service: string;
  readonly version: string;
  readonly commit: string | null;
  readonly checkIntervalMs: number;
  readonly checkTimeoutMs: number;
  readonly failureThreshold: number;
  readonly successThreshold: number;
  readonly shutdown: ShutdownConfig;
}

export function describe(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'function':
      return 'a function';
    case 'object':
      return value === null ? 'null' : Array.isArray(value) ? 'an array' : 'an object';
    case 'symbol':
      return value.toString();
    case 'number':
    case 'boolean':
    case 'bigint':
    case 'undefined':
      return String(value);
  }
}

export function invalid(option: string, expected: string, value: unknown): HealthError {
  return new HealthError(
    'GANTRY_HEALTH_INVALID_OPTION',
    `Expected \`${option}\` to be ${expected}, got ${describe(value)}`,
  );
}

/** A finite number ≥ `min` (integer if asked), or `fallback` when undefined. */
export function numberOption(
  option: string,
  value: unknown,
  fallback: number,
  { min = 0, integer = false }: { min?: number; integer?: boolean } = {},
): number {
  if (value === undefined) return fallback;
  const ok =
    typeof value === 'number' && Number.isFinite(value) && value >= min && (!integer || Number.isInteger(value));
  if (!ok) throw invalid(option, `${integer ? 'an integer' : 'a finite number'} ≥ ${min}`, value);
  return value;
}

export function stringOption(option: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0) throw invalid(option, 'a non-empty string', value);
  return value;
}

const KNOWN_SIGNALS = new Set(['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGBREAK']);

function signalsOption(value: unknown): readonly NodeJS.Signals[] {
  if (value === undefined) return DEFAULT_SHUTDOWN_SIGNALS;
  if (!Array.isArray(value) || value.some((signal) => typeof signal !== 'string' || !KNOWN_SIGNALS.has(signal))) {
    throw invalid('shutdown.signals', `an array of ${[...KNOWN_SIGNALS].join(', ')}`, value);
  }
  return Object.freeze([...new Set(value as NodeJS.Signals[])]);
}

export function groupsOption(option: string, value: unknown): readonly HealthGroup[] {
  if (value === undefined) return ['readiness'];
  if (
    !Array.isArray(value) ||
    value.length === 0 ||
    value.some((group) => !HEALTH_GROUPS.includes(group as HealthGroup))
  ) {
    throw invalid(option, "a non-empty array of 'liveness', 'readiness', 'startup'", value);
  }
  return Object.freeze([...new Set(value as HealthGroup[])]);
}

export function functionOption(option: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'function') throw invalid(option, 'a function', value);
}

/** Validates the scalar options once; registrations (checks, hooks, contributors) are validated as they arrive. */
export function resolveConfig(options: HealthOptions): HealthConfig {
  if (typeof options !== 'object' || options === null) throw invalid('options', 'an object', options);
  const shutdown = options.shutdown ?? {};
  if (typeof shutdown !== 'object' || shutdown === null) throw invalid('shutdown', 'an object', shutdown);
  functionOption('shutdown.terminate', shutdown.terminate);
  functionOption('wallClock', options.wallClock);
  const checkIntervalMs = numberOption('checkIntervalMs', options.checkIntervalMs, DEFAULT_CHECK_INTERVAL_MS, {
    min: 1,
  });
  return Object.freeze({
    service: stringOption('service', options.service) ?? 'unknown',
    version: stringOption('version', options.version) ?? 'unknown',
    commit: stringOption('commit', options.commit) ?? null,
    checkIntervalMs,
    checkTimeoutMs: numberOption('checkTimeoutMs', options.checkTimeoutMs, DEFAULT_CHECK_TIMEOUT_MS, { min: 1 }),
    failureThreshold: numberOption('failureThreshold', options.failureThreshold, DEFAULT_FAILURE_THRESHOLD, {
      min: 1,
      integer: true,
    }),
    successThreshold: numberOption('successThreshold', options.successThreshold, DEFAULT_SUCCESS_THRESHOLD, {
      min: 1,
      integer: true,
    }),
    shutdown: Object.freeze({
      signals: signalsOption(shutdown.signals),
      delayMs: numberOption('shutdown.delayMs', shutdown.delayMs, DEFAULT_SHUTDOWN_DELAY_MS),
      drainTimeoutMs: numberOption('shutdown.drainTimeoutMs', shutdown.drainTimeoutMs, DEFAULT_DRAIN_TIMEOUT_MS),
      idleSocketGraceMs: numberOption(
        'shutdown.idleSocketGraceMs',
        shutdown.idleSocketGraceMs,
        DEFAULT_IDLE_SOCKET_GRACE_MS,
      ),
      hookTimeoutMs: numberOption('shutdown.hookTimeoutMs', shutdown.hookTimeoutMs, DEFAULT_HOOK_TIMEOUT_MS, {
        min: 1,
      }),
      gracePeriodMs: numberOption('shutdown.gracePeriodMs', shutdown.gracePeriodMs, DEFAULT_GRACE_PERIOD_MS, {
        min: 1,
      }),
    }),
  });
}

function envNumber(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) {
    throw new HealthError(
      'GANTRY_HEALTH_INVALID_OPTION',
      `Expected \`${name}\` to be a finite number ≥ 0, got ${JSON.stringify(raw)}`,
    );
  }
  return value;
}

function envString(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const raw = env[name]?.trim();
  return raw === undefined || raw === '' ? undefined : raw;
}

/**
 * Reads `GANTRY_HEALTH_*` variables into options to spread into {@link createHealth}. Unset variables are left out.
 * `service` falls back to `OTEL_SERVICE_NAME`.
 *
 * | variable | option |
 * |---|---|
 * | `GANTRY_HEALTH_SERVICE` | `service` |
 * | `GANTRY_HEALTH_VERSION` | `version` |
 * | `GANTRY_HEALTH_COMMIT` | `commit` |
 * | `GANTRY_HEALTH_CHECK_INTERVAL_MS` | `checkIntervalMs` |
 * | `GANTRY_HEALTH_CHECK_TIMEOUT_MS` | `checkTimeoutMs` |
 * | `GANTRY_HEALTH_SHUTDOWN_SIGNALS` | `shutdown.signals` (comma-separated; empty string for none) |
 * | `GANTRY_HEALTH_SHUTDOWN_DELAY_MS` | `shutdown.delayMs` |
 * | `GANTRY_HEALTH_DRAIN_TIMEOUT_MS` | `shutdown.drainTimeoutMs` |
 * | `GANTRY_HEALTH_HOOK_TIMEOUT_MS` | `shutdown.hookTimeoutMs` |
 * | `GANTRY_HEALTH_GRACE_PERIOD_MS` | `shutdown.gracePeriodMs` |
 *
 * @default env = process.env
 * @throws HealthError `GANTRY_HEALTH_INVALID_OPTION` naming the variable when a number does not parse.
 * @example
 * const health = createHealth({ ...healthOptionsFromEnv(), logger });
 */
export function healthOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): HealthOptions {
  const shutdown: Record<string, unknown> = {};
  const signals = env['GANTRY_HEALTH_SHUTDOWN_SIGNALS'];
  if (signals !== undefined) {
    shutdown['signals'] = signals
      .split(',')
      .map((signal) => signal.trim())
      .filter((signal) => signal !== '');
  }
  const numbers: [string, string][] = [
    ['GANTRY_HEALTH_SHUTDOWN_DELAY_MS', 'delayMs'],
    ['GANTRY_HEALTH_DRAIN_TIMEOUT_MS', 'drainTimeoutMs'],
    ['GANTRY_HEALTH_HOOK_TIMEOUT_MS', 'hookTimeoutMs'],
    ['GANTRY_HEALTH_GRACE_PERIOD_MS', 'gracePeriodMs'],
  ];
  for (const [name, key] of numbers) {
    const value = envNumber(env, name);
    if (value !== undefined) shutdown[key] = value;
  }
  const options: Record<string, unknown> = {};
  const service = envString(env, 'GANTRY_HEALTH_SERVICE') ?? envString(env, 'OTEL_SERVICE_NAME');
  if (service !== undefined) options['service'] = service;
  const version = envString(env, 'GANTRY_HEALTH_VERSION');
  if (version !== undefined) options['version'] = version;
  const commit = envString(env, 'GANTRY_HEALTH_COMMIT');
  if (commit !== undefined) options['commit'] = commit;
  const interval = envNumber(env, 'GANTRY_HEALTH_CHECK_INTERVAL_MS');
  if (interval !== undefined) options['checkIntervalMs'] = interval;
  const timeout = envNumber(env, 'GANTRY_HEALTH_CHECK_TIMEOUT_MS');
  if (timeout !== undefined) options['checkTimeoutMs'] = timeout;
  if (Object.keys(shutdown).length > 0) options['shutdown'] = shutdown;
  return options;
}
