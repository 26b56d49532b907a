// Options in, frozen configuration out. Every option is validated once in resolveAgentConfig(); messages name the
// option, what was expected and what was received. Time options ending in `Ms` take milliseconds or a duration
// string ("5s", "2m"), so a YAML file can say `intervalMs: 5s`.
import type { Registry } from 'prom-client';
import { createCalendar, type Calendar, type CalendarWindowOptions } from './calendar.ts';
import { parseDurationMs } from './duration.ts';
import { AgentError, invalidOption } from './errors.ts';
import type { PodIdentity } from './identity.ts';
import { SILENT_LOGGER, type Logger } from './logger.ts';
import { HTTP_DURATION_METRIC } from './totals.ts';

/** Default port of the agent's HTTP server (ARCHITECTURE.md). */
export const DEFAULT_AGENT_PORT = 8686;
/** Default app base URL (the service in the same pod). */
export const DEFAULT_APP_URL = 'http://127.0.0.1:8080';
/** Default time between two scrapes of the app. */
export const DEFAULT_INTERVAL_MS = 5_000;
/** Default timeout of one request to the app. */
export const DEFAULT_APP_TIMEOUT_MS = 2_000;
/** Requests in the first 30 s after the app starts or traffic shifts are excluded (JIT, caches). */
export const DEFAULT_WARMUP_MS = 30_000;
/** How long per-pod history is kept (longest window). */
export const DEFAULT_HISTORY_MS = 3_600_000;
/** Metrics older than this make gates answer 503 AGENT_ERROR. */
export const DEFAULT_STALE_AFTER_MS = 30_000;
/** Largest request body accepted (Flagger payloads are < 1 KB). */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;
/** Longest request target accepted. */
export const DEFAULT_MAX_URL_LENGTH = 4_096;
/** Longest long-poll (`wait`): below Argo's and Flagger's 10 s default timeouts. */
export const DEFAULT_MAX_WAIT_MS = 8_000;
/** Default `policy.runIdleMs`: a run idle this long belongs to an earlier rollout (30 min). */
export const DEFAULT_RUN_IDLE_MS = 1_800_000;
/** Kafka topic where agents publish their pod summaries, keyed by pod (ARCHITECTURE.md, "Fleet and events"). */
export const DEFAULT_FLEET_TOPIC = 'gantry.fleet';
/** Kafka topic that receives the agent's CloudEvents (ARCHITECTURE.md, "Fleet and events"). */
export const DEFAULT_EVENTS_TOPIC = 'gantry.events';

/** The app's endpoints (MicroProfile Health, /q/info, /q/metrics). */
export interface AppOptions {
  /** @default 'http://127.0.0.1:8080' */
  readonly url?: string;
  /** @default '/q/health/live' */
  readonly livePath?: string;
  /** @default '/q/health/ready' */
  readonly readyPath?: string;
  /** @default '/q/info' */
  readonly infoPath?: string;
  /** @default '/q/metrics' */
  readonly metricsPath?: string;
  /** @default 2000 */
  readonly timeoutMs?: number | string;
  /** @default 'http_server_request_duration_seconds' */
  readonly metricName?: string;
}

/** Thresholds of the `slo` check. */
export interface SloOptions {
  /** Largest acceptable share of 5xx responses. @default 0.01 */
  readonly maxErrorRate?: number;
  /** Quantile compared with `maxLatencyMs`. @default 0.99 */
  readonly latencyQuantile?: number;
  /** @default 500 */
  readonly maxLatencyMs?: number;
  /** Requests needed before judging. @default 200 */
  readonly minSamples?: number;
  /** Sliding window (bounded below by the run's start). @default 300000 */
  readonly windowMs?: number | string;
  /**
   * The error rate breaches only when its one-sided lower confidence bound (Wilson, level 1 − alpha) exceeds
   * `maxErrorRate`, so a few errors in few requests do not fail a healthy canary. @default 0.05
   */
  readonly alpha?: number;
}

/** Margins and level of the `compare` check. */
export interface CompareOptions {
  /** Error (and false-fail) probability of the sequential tests. @default 0.05 */
  readonly alpha?: number;
  /** Non-inferiority margin on the error-rate difference, absolute. @default 0.005 */
  readonly errorMargin?: number;
  /** Margin on P(canary slower) − 0.5. @default 0.06 */
  readonly latencyMargin?: number;
  /** Largest tolerated share of requests shifted above a bucket bound. @default 0.1 */
  readonly tailMargin?: number;
  /** Requests per side before any verdict. @default 200 */
  readonly minSamples?: number;
}

/** Rollback triggers (ADR-060). */
export interface TriggerOptions {
  /** @default 0.01 */
  readonly errorRate?: number;
  /** @default 120000 */
  readonly errorRateForMs?: number | string;
  /** @default 2000 */
  readonly p95Ms?: number;
  /** @default 120000 */
  readonly latencyForMs?: number | string;
  /** Trailing window each condition is computed over. @default 30000 */
  readonly evaluationWindowMs?: number | string;
  /** Requests in the trailing window before a condition can hold. @default 20 */
  readonly minSamples?: number;
  /** Consecutive failed probe cycles. @default 5 */
  readonly healthFailures?: number;
  /** App restarts within `restartWindowMs` that count as a crash loop. @default 3 */
  readonly restarts?: number;
  /** @default 300000 */
  readonly restartWindowMs?: number | string;
}

/** Checks a gate can combine. */
export type GateCheckName =
  | 'health'
  | 'fleet'
  | 'slo'
  | 'compare'
  | 'evidence'
  | 'triggers'
  | 'holds'
  | 'calendar'
  | 'calendar-ahead'
  | 'schema'
  | 'rollback-safety'
  | 'rollback';

/** A named gate: which checks it runs and its own thresholds. */
export interface GateDefinition {
  readonly checks: readonly GateCheckName[];
  /** What to answer when evidence is insufficient. @default 'pending' */
  readonly insufficient?: 'pending' | 'pass' | 'fail';
  readonly slo?: SloOptions;
  readonly compare?: CompareOptions;
}

/** The agent's decision policy. */
export interface PolicyOptions {
  readonly slo?: SloOptions;
  readonly compare?: CompareOptions;
  readonly triggers?: TriggerOptions;
  /** Consecutive evaluation cycles an SLO breach must last before `fail`. @default 2 */
  readonly failAfter?: number;
  /** Expected length of a rollout, for "don't start a rollout that would run into a freeze". @default 1800000 */
  readonly rolloutDurationMs?: number | string;
  /**
   * A run not evaluated for longer than this belongs to an earlier rollout: the next evaluation under the same run
   * id starts a fresh run (evidence, hysteresis and sequential tests from zero).
   * @default 1800000
   */
  readonly runIdleMs?: number | string;
  readonly calendars?: readonly CalendarWindowOptions[];
  /** Extra or replaced gates by name. */
  readonly gates?: Readonly<Record<string, GateDefinition>>;
}

/** Where peers come from. */
export interface FleetOptions {
  /** Static peer agents: base URLs such as `http://10.0.0.12:8686`. */
  readonly peers?: readonly string[];
  /** A DNS name resolving to peer agents (a headless Service), and their port. */
  readonly dns?: { readonly name: string; readonly port?: number; readonly protocol?: 'http' | 'https' };
  /** Publish and read pod summaries on Kafka. */
  readonly kafka?: boolean | { readonly topic?: string };
  /** @default 5000 */
  readonly intervalMs?: number | string;
  /** Peers not heard from for this long are dropped. @default 30000 */
  readonly staleAfterMs?: number | string;
  /** @default 2000 */
  readonly timeoutMs?: number | string;
}

/** Where events go. */
export interface EventsOptions {
  /** Orchestrator URL receiving CloudEvents (structured JSON, POST). */
  readonly url?: string;
  /** Also send to Kafka. */
  readonly kafka?: boolean | { readonly topic?: string };
  /** @default 30000 */
  readonly heartbeatMs?: number | string;
  /** Events buffered per sink while it is down; the oldest are dropped. @default 1000 */
  readonly maxBuffer?: number;
  /** @default 500 */
  readonly retryMinMs?: number | string;
  /** @default 30000 */
  readonly retryMaxMs?: number | string;
  /** @default 5000 */
  readonly timeoutMs?: number | string;
}

/** Resolves a host name to addresses (default: `node:dns` lookup of all addresses). */
export type Resolver = (hostname: string) => Promise<readonly string[]>;

/** Options of {@link createAgent}. */
export interface AgentOptions {
  readonly app?: AppOptions;
  /** Where to serve; `false` = no server (use `agent.handler`). @default { host: '0.0.0.0', port: 8686 } */
  readonly listen?: false | { readonly host?: string; readonly port?: number };
  /** @default 5000 */
  readonly intervalMs?: number | string;
  /** @default 30000 */
  readonly warmupMs?: number | string;
  /** @default 3600000 */
  readonly historyMs?: number | string;
  /** @default 30000 */
  readonly staleAfterMs?: number | string;
  readonly identity?: PodIdentity;
  readonly auth?: {
    /** Bearer token for gate, hold, policy, summary and audit endpoints. None = open (use a NetworkPolicy). */
    readonly token?: string;
    /** Token Flagger sends as `metadata.token` (Flagger cannot send headers). Defaults to `token`. */
    readonly flaggerToken?: string;
  };
  readonly limits?: {
    /** @default 65536 */
    readonly maxBodyBytes?: number;
    /** @default 4096 */
    readonly maxUrlLength?: number;
    /** @default 8000 */
    readonly maxWaitMs?: number | string;
  };
  readonly policy?: PolicyOptions;
  readonly fleet?: FleetOptions;
  readonly events?: EventsOptions;
  readonly kafka?: { readonly brokers: readonly string[]; readonly clientId?: string };
  /** Folder for holds and the audit log (an emptyDir in Kubernetes). Memory only when absent. */
  readonly stateDirectory?: string;
  readonly logger?: Logger;
  /** @default prom-client's global registry */
  readonly registry?: Registry;
  /** @default Date.now */
  readonly now?: () => number;
  /** Used instead of the built-in node:http client when given (custom transports, tests). @default the node:http client */
  readonly fetch?: typeof fetch;
  /** @default node:dns lookup */
  readonly resolver?: Resolver;
}

/** Resolved policy. */
export interface ResolvedPolicy {
  readonly slo: Required<{ [K in keyof SloOptions]-?: number }>;
  readonly compare: Required<{ [K in keyof CompareOptions]-?: number }>;
  readonly triggers: Required<{ [K in keyof TriggerOptions]-?: number }>;
  readonly failAfter: number;
  readonly rolloutDurationMs: number;
  readonly runIdleMs: number;
  readonly calendars: readonly CalendarWindowOptions[];
  readonly calendar: Calendar;
  readonly gates: Readonly<Record<string, ResolvedGate>>;
}

/** A gate after validation: its checks and full thresholds. */
export interface ResolvedGate {
  readonly checks: readonly GateCheckName[];
  readonly insufficient: 'pending' | 'pass' | 'fail';
  readonly slo: ResolvedPolicy['slo'];
  readonly compare: ResolvedPolicy['compare'];
}

/** The frozen configuration of an agent. */
export interface AgentConfig {
  readonly app: Required<{ [K in keyof AppOptions]-?: K extends 'timeoutMs' ? number : string }>;
  readonly listen: false | { readonly host: string; readonly port: number };
  readonly intervalMs: number;
  readonly warmupMs: number;
  readonly historyMs: number;
  readonly staleAfterMs: number;
  readonly identity: PodIdentity;
  readonly auth: { readonly token: string | undefined; readonly flaggerToken: string | undefined };
  readonly limits: { readonly maxBodyBytes: number; readonly maxUrlLength: number; readonly maxWaitMs: number };
  readonly policy: ResolvedPolicy;
  readonly fleet: {
    readonly peers: readonly string[];
    readonly dns: { readonly name: string; readonly port: number; readonly protocol: 'http' | 'https' } | undefined;
    readonly kafkaTopic: string | undefined;
    readonly intervalMs: number;
    readonly staleAfterMs: number;
    readonly timeoutMs: number;
  };
  readonly events: {
    readonly url: string | undefined;
    readonly kafkaTopic: string | undefined;
    readonly heartbeatMs: number;
    readonly maxBuffer: number;
    readonly retryMinMs: number;
    readonly retryMaxMs: number;
    readonly timeoutMs: number;
  };
  readonly kafka: { readonly brokers: readonly string[]; readonly clientId: string } | undefined;
  readonly stateDirectory: string | undefined;
}

/** Built-in gates (reference/gates.md §7). */
export const BUILT_IN_GATES: Readonly<Record<string, GateDefinition>> = Object.freeze({
  slo: { checks: ['slo'] },
  compare: { checks: ['compare'] },
  smoke: { checks: ['health', 'schema'] },
  freeze: { checks: ['holds', 'calendar', 'calendar-ahead'] },
  schema: { checks: ['schema', 'rollback-safety'] },
  start: { checks: ['holds', 'calendar', 'calendar-ahead', 'schema', 'fleet'] },
  promotion: { checks: ['holds', 'calendar', 'triggers', 'schema', 'rollback-safety', 'evidence'] },
  rollback: { checks: ['rollback'] },
});

const CHECK_NAMES: readonly GateCheckName[] = [
  'health',
  'fleet',
  'slo',
  'compare',
  'evidence',
  'triggers',
  'holds',
  'calendar',
  'calendar-ahead',
  'schema',
  'rollback-safety',
  'rollback',
];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function object(field: string, value: unknown): Record<string, unknown> {
  if (value === undefined) return {};
  if (!isRecord(value)) throw invalidOption(field, 'an object', value);
  return value;
}

function number(
  field: string,
  value: unknown,
  fallback: number,
  range: { min?: number; max?: number; integer?: boolean } = {},
): number {
  if (value === undefined) return fallback;
  const min = range.min ?? 0;
  const max = range.max ?? Number.POSITIVE_INFINITY;
  const parsed = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (
    typeof parsed !== 'number' ||
    !Number.isFinite(parsed) ||
    parsed < min ||
    parsed > max ||
    (range.integer === true && !Number.isInteger(parsed))
  ) {
    const kind = range.integer === true ? 'an integer' : 'a finite number';
    const bounds = Number.isFinite(max) ? `between ${min} and ${max}` : `≥ ${min}`;
    throw invalidOption(field, `${kind} ${bounds}`, value);
  }
  return parsed;
}

function duration(field: string, value: unknown, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  const ms = typeof value === 'number' ? value : parseDurationMs(value);
  if (ms === undefined || !Number.isFinite(ms) || ms < min) {
    throw invalidOption(field, `milliseconds or a duration such as "5s" (≥ ${min} ms)`, value);
  }
  return ms;
}

function string(field: string, value: unknown, fallback: string): string;
function string(field: string, value: unknown, fallback: string | undefined): string | undefined;
function string(field: string, value: unknown, fallback: string | undefined): string | undefined {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || value.length === 0) throw invalidOption(field, 'a non-empty string', value);
  return value;
}

function url(field: string, value: unknown, fallback: string | undefined): string | undefined {
  const text = string(field, value, fallback);
  if (text === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    throw invalidOption(field, 'an http(s) URL', value);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw invalidOption(field, 'an http(s) URL', value);
  return text.replace(/\/+$/, '');
}

function path(field: string, value: unknown, fallback: string): string {
  const text = string(field, value, fallback);
  if (!text.startsWith('/')) throw invalidOption(field, 'a path starting with "/"', value);
  return text;
}

function stringList(field: string, value: unknown): string[] {
  if (value === undefined) return [];
  const list =
    typeof value === 'string'
      ? value
          .split(',')
          .map((item) => item.trim())
          .filter(Boolean)
      : value;
  if (!Array.isArray(list) || !list.every((item) => typeof item === 'string' && item.length > 0)) {
    throw invalidOption(field, 'a list of non-empty strings', value);
  }
  return list as string[];
}

function bool(field: string, value: unknown): boolean | undefined {
  if (value === undefined) return undefined;
  if (value === true || value === 'true' || value === '1') return true;
  if (value === false || value === 'false' || value === '0') return false;
  throw invalidOption(field, 'true or false', value);
}

function checkKeys(field: string, value: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      const name = field === '' ? key : `${field}.${key}`;
      throw new AgentError(
        'GANTRY_AGENT_INVALID_OPTION',
        `Unknown option \`${name}\` (expected one of: ${allowed.join(', ')})`,
        { field: name },
      );
    }
  }
}

function resolveSlo(field: string, value: unknown, base: ResolvedPolicy['slo'] | undefined): ResolvedPolicy['slo'] {
  const options = object(field, value);
  checkKeys(field, options, ['maxErrorRate', 'latencyQuantile', 'maxLatencyMs', 'minSamples', 'windowMs', 'alpha']);
  return {
    maxErrorRate: number(`${field}.maxErrorRate`, options['maxErrorRate'], base?.maxErrorRate ?? 0.01, { max: 1 }),
    latencyQuantile: number(`${field}.latencyQuantile`, options['latencyQuantile'], base?.latencyQuantile ?? 0.99, {
      min: 0.5,
      max: 1,
    }),
    maxLatencyMs: number(`${field}.maxLatencyMs`, options['maxLatencyMs'], base?.maxLatencyMs ?? 500, { min: 1 }),
    minSamples: number(`${field}.minSamples`, options['minSamples'], base?.minSamples ?? 200, { integer: true }),
    windowMs: duration(`${field}.windowMs`, options['windowMs'], base?.windowMs ?? 300_000, 1_000),
    alpha: number(`${field}.alpha`, options['alpha'], base?.alpha ?? 0.05, { min: 1e-6, max: 0.5 }),
  };
}

function resolveCompare(
  field: string,
  value: unknown,
  base: ResolvedPolicy['compare'] | undefined,
): ResolvedPolicy['compare'] {
  const options = object(field, value);
  checkKeys(field, options, ['alpha', 'errorMargin', 'latencyMargin', 'tailMargin', 'minSamples']);
  return {
    alpha: number(`${field}.alpha`, options['alpha'], base?.alpha ?? 0.05, { min: 1e-6, max: 0.5 }),
    errorMargin: number(`${field}.errorMargin`, options['errorMargin'], base?.errorMargin ?? 0.005, { max: 1 }),
    latencyMargin: number(`${field}.latencyMargin`, options['latencyMargin'], base?.latencyMargin ?? 0.06, {
      max: 0.5,
    }),
    tailMargin: number(`${field}.tailMargin`, options['tailMargin'], base?.tailMargin ?? 0.1, { max: 1 }),
    minSamples: number(`${field}.minSamples`, options['minSamples'], base?.minSamples ?? 200, { integer: true }),
  };
}

/**
 * Validates policy options.
 * @throws AgentError `GANTRY_AGENT_INVALID_OPTION` or `GANTRY_AGENT_INVALID_CALENDAR` naming the field.
 * @example resolvePolicy({ slo: { maxErrorRate: 0.02 } }).gates['slo']?.slo.maxErrorRate // 0.02
 */
export function resolvePolicy(value: unknown, field = 'policy'): ResolvedPolicy {
  const options = object(field, value);
  checkKeys(field, options, [
    'slo',
    'compare',
    'triggers',
    'failAfter',
    'rolloutDurationMs',
    'runIdleMs',
    'calendars',
    'gates',
  ]);
  const slo = resolveSlo(`${field}.slo`, options['slo'], undefined);
  const compare = resolveCompare(`${field}.compare`, options['compare'], undefined);
  const triggerOptions = object(`${field}.triggers`, options['triggers']);
  const t = `${field}.triggers`;
  checkKeys(t, triggerOptions, [
    'errorRate',
    'errorRateForMs',
    'p95Ms',
    'latencyForMs',
    'evaluationWindowMs',
    'minSamples',
    'healthFailures',
    'restarts',
    'restartWindowMs',
  ]);
  const triggers = {
    errorRate: number(`${t}.errorRate`, triggerOptions['errorRate'], 0.01, { max: 1 }),
    errorRateForMs: duration(`${t}.errorRateForMs`, triggerOptions['errorRateForMs'], 120_000),
    p95Ms: number(`${t}.p95Ms`, triggerOptions['p95Ms'], 2_000, { min: 1 }),
    latencyForMs: duration(`${t}.latencyForMs`, triggerOptions['latencyForMs'], 120_000),
    evaluationWindowMs: duration(`${t}.evaluationWindowMs`, triggerOptions['evaluationWindowMs'], 30_000, 1_000),
    minSamples: number(`${t}.minSamples`, triggerOptions['minSamples'], 20, { integer: true }),
    healthFailures: number(`${t}.healthFailures`, triggerOptions['healthFailures'], 5, { min: 1, integer: true }),
    restarts: number(`${t}.restarts`, triggerOptions['restarts'], 3, { min: 1, integer: true }),
    restartWindowMs: duration(`${t}.restartWindowMs`, triggerOptions['restartWindowMs'], 300_000, 1_000),
  };
  const calendarsValue = options['calendars'] ?? [];
  if (!Array.isArray(calendarsValue))
    throw invalidOption(`${field}.calendars`, 'a list of calendar windows', calendarsValue);
  let calendar: Calendar;
  try {
    calendar = createCalendar(calendarsValue as CalendarWindowOptions[]);
  } catch (error) {
    if (error instanceof AgentError && error.field !== undefined) {
      throw new AgentError(error.code, error.message.replace('`calendars', `\`${field}.calendars`), {
        cause: error,
        field: `${field}.${error.field}`,
      });
    }
    throw error;
  }
  const gates: Record<string, ResolvedPolicy['gates'][string]> = {};
  const gateOptions = object(`${field}.gates`, options['gates']);
  for (const [name, definition] of Object.entries({ ...BUILT_IN_GATES, ...gateOptions })) {
    const g = `${field}.gates.${name}`;
    if (!/^[a-z][a-z0-9-]{0,39}$/.test(name))
      throw invalidOption(g, 'a gate name of lowercase letters, digits and -', name);
    const gate = object(g, definition);
    checkKeys(g, gate, ['checks', 'insufficient', 'slo', 'compare']);
    const checks = stringList(`${g}.checks`, gate['checks']);
    if (checks.length === 0)
      throw invalidOption(`${g}.checks`, `a non-empty list of ${CHECK_NAMES.join('|')}`, gate['checks']);
    for (const check of checks) {
      if (!(CHECK_NAMES as readonly string[]).includes(check)) {
        throw invalidOption(`${g}.checks`, `a list of ${CHECK_NAMES.join('|')}`, check);
      }
    }
    const insufficient = gate['insufficient'] ?? 'pending';
    if (insufficient !== 'pending' && insufficient !== 'pass' && insufficient !== 'fail') {
      throw invalidOption(`${g}.insufficient`, '"pending", "pass" or "fail"', insufficient);
    }
    gates[name] = Object.freeze({
      checks: Object.freeze(checks as GateCheckName[]),
      insufficient,
      slo: resolveSlo(`${g}.slo`, gate['slo'], slo),
      compare: resolveCompare(`${g}.compare`, gate['compare'], compare),
    });
  }
  return Object.freeze({
    slo: Object.freeze(slo),
    compare: Object.freeze(compare),
    triggers: Object.freeze(triggers),
    failAfter: number(`${field}.failAfter`, options['failAfter'], 2, { min: 1, max: 100, integer: true }),
    rolloutDurationMs: duration(`${field}.rolloutDurationMs`, options['rolloutDurationMs'], 1_800_000),
    runIdleMs: duration(`${field}.runIdleMs`, options['runIdleMs'], DEFAULT_RUN_IDLE_MS, 1_000),
    calendars: Object.freeze([...(calendarsValue as CalendarWindowOptions[])]),
    calendar,
    gates: Object.freeze(gates),
  });
}

function kafkaTopic(field: string, value: unknown, fallback: string): string | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true || value === 'true') return fallback;
  const options = object(field, value);
  checkKeys(field, options, ['topic']);
  return string(`${field}.topic`, options['topic'], fallback);
}

const TOP_LEVEL_KEYS = [
  'app',
  'listen',
  'intervalMs',
  'warmupMs',
  'historyMs',
  'staleAfterMs',
  'identity',
  'auth',
  'limits',
  'policy',
  'fleet',
  'events',
  'kafka',
  'stateDirectory',
  'logger',
  'registry',
  'now',
  'fetch',
  'resolver',
];

/**
 * Validates options and returns the frozen configuration (functions such as `logger` stay on the options).
 * @throws AgentError `GANTRY_AGENT_INVALID_OPTION` (or `GANTRY_AGENT_INVALID_CALENDAR`) with `field` set.
 * @example const config = resolveAgentConfig({ app: { url: 'http://127.0.0.1:8080' }, intervalMs: '5s' });
 */
export function resolveAgentConfig(input: AgentOptions | Record<string, unknown> = {}): AgentConfig {
  const options = object('options', input);
  checkKeys('', options, TOP_LEVEL_KEYS);
  const appOptions = object('app', options['app']);
  checkKeys('app', appOptions, ['url', 'livePath', 'readyPath', 'infoPath', 'metricsPath', 'timeoutMs', 'metricName']);
  const app = {
    url: url('app.url', appOptions['url'], DEFAULT_APP_URL)!,
    livePath: path('app.livePath', appOptions['livePath'], '/q/health/live'),
    readyPath: path('app.readyPath', appOptions['readyPath'], '/q/health/ready'),
    infoPath: path('app.infoPath', appOptions['infoPath'], '/q/info'),
    metricsPath: path('app.metricsPath', appOptions['metricsPath'], '/q/metrics'),
    timeoutMs: duration('app.timeoutMs', appOptions['timeoutMs'], DEFAULT_APP_TIMEOUT_MS, 10),
    metricName: string('app.metricName', appOptions['metricName'], HTTP_DURATION_METRIC),
  };
  let listen: AgentConfig['listen'];
  if (options['listen'] === false) listen = false;
  else {
    const listenOptions = object('listen', options['listen']);
    checkKeys('listen', listenOptions, ['host', 'port']);
    listen = {
      host: string('listen.host', listenOptions['host'], '0.0.0.0'),
      port: number('listen.port', listenOptions['port'], DEFAULT_AGENT_PORT, { max: 65_535, integer: true }),
    };
  }
  const intervalMs = duration('intervalMs', options['intervalMs'], DEFAULT_INTERVAL_MS, 100);
  const identityOptions = object('identity', options['identity']);
  checkKeys('identity', identityOptions, ['pod', 'namespace', 'podTemplateHash', 'version', 'imageDigest', 'service']);
  const identity: Record<string, string> = {};
  for (const [key, value] of Object.entries(identityOptions)) {
    const text = string(`identity.${key}`, value, undefined);
    if (text !== undefined) identity[key] = text;
  }
  const authOptions = object('auth', options['auth']);
  checkKeys('auth', authOptions, ['token', 'flaggerToken']);
  const token = string('auth.token', authOptions['token'], undefined);
  const flaggerToken = string('auth.flaggerToken', authOptions['flaggerToken'], undefined) ?? token;
  for (const [field, value] of [
    ['auth.token', token],
    ['auth.flaggerToken', flaggerToken],
  ] as const) {
    if (value !== undefined && (value.length < 16 || /\s/.test(value))) {
      // Never echo a secret: say what is wrong without the value.
      throw new AgentError(
        'GANTRY_AGENT_INVALID_OPTION',
        `Expected \`${field}\` to be at least 16 characters without whitespace (value hidden)`,
        { field },
      );
    }
  }
  const limitOptions = object('limits', options['limits']);
  checkKeys('limits', limitOptions, ['maxBodyBytes', 'maxUrlLength', 'maxWaitMs']);
  const fleetOptions = object('fleet', options['fleet']);
  checkKeys('fleet', fleetOptions, ['peers', 'dns', 'kafka', 'intervalMs', 'staleAfterMs', 'timeoutMs']);
  const peers = stringList('fleet.peers', fleetOptions['peers']).map((peer, index) =>
    url(`fleet.peers[${index}]`, peer, undefined)!,
  );
  let dns: AgentConfig['fleet']['dns'];
  if (fleetOptions['dns'] !== undefined) {
    const dnsOptions = object('fleet.dns', fleetOptions['dns']);
    checkKeys('fleet.dns', dnsOptions, ['name', 'port', 'protocol']);
    const protocol = dnsOptions['protocol'] ?? 'http';
    if (protocol !== 'http' && protocol !== 'https')
      throw invalidOption('fleet.dns.protocol', '"http" or "https"', protocol);
    dns = {
      name:
        string('fleet.dns.name', dnsOptions['name'], undefined) ??
        (() => {
          throw invalidOption('fleet.dns.name', 'a DNS name', undefined);
        })(),
      port: number('fleet.dns.port', dnsOptions['port'], DEFAULT_AGENT_PORT, { min: 1, max: 65_535, integer: true }),
      protocol,
    };
  }
  const kafkaOptions = options['kafka'] === undefined ? undefined : object('kafka', options['kafka']);
  let kafka: AgentConfig['kafka'];
  if (kafkaOptions !== undefined) {
    checkKeys('kafka', kafkaOptions, ['brokers', 'clientId']);
    const brokers = stringList('kafka.brokers', kafkaOptions['brokers']);
    if (brokers.length === 0) throw invalidOption('kafka.brokers', 'at least one host:port', kafkaOptions['brokers']);
    kafka = { brokers, clientId: string('kafka.clientId', kafkaOptions['clientId'], 'gantry-agent') };
  }
  const fleetTopic = kafkaTopic('fleet.kafka', fleetOptions['kafka'], DEFAULT_FLEET_TOPIC);
  const eventOptions = object('events', options['events']);
  checkKeys('events', eventOptions, [
    'url',
    'kafka',
    'heartbeatMs',
    'maxBuffer',
    'retryMinMs',
    'retryMaxMs',
    'timeoutMs',
  ]);
  const eventsTopic = kafkaTopic('events.kafka', eventOptions['kafka'], DEFAULT_EVENTS_TOPIC);
  if ((fleetTopic !== undefined || eventsTopic !== undefined) && kafka === undefined) {
    throw invalidOption('kafka.brokers', 'at least one host:port when fleet.kafka or events.kafka is on', undefined);
  }
  const retryMinMs = duration('events.retryMinMs', eventOptions['retryMinMs'], 500, 1);
  const config: AgentConfig = {
    app,
    listen,
    intervalMs,
    warmupMs: duration('warmupMs', options['warmupMs'], DEFAULT_WARMUP_MS),
    historyMs: duration('historyMs', options['historyMs'], DEFAULT_HISTORY_MS, 60_000),
    staleAfterMs: duration(
      'staleAfterMs',
      options['staleAfterMs'],
      Math.max(DEFAULT_STALE_AFTER_MS, 3 * intervalMs),
      1_000,
    ),
    identity,
    auth: { token, flaggerToken },
    limits: {
      maxBodyBytes: number('limits.maxBodyBytes', limitOptions['maxBodyBytes'], DEFAULT_MAX_BODY_BYTES, {
        min: 1_024,
        max: 16 * 1024 * 1024,
        integer: true,
      }),
      maxUrlLength: number('limits.maxUrlLength', limitOptions['maxUrlLength'], DEFAULT_MAX_URL_LENGTH, {
        min: 256,
        max: 65_536,
        integer: true,
      }),
      maxWaitMs: duration('limits.maxWaitMs', limitOptions['maxWaitMs'], DEFAULT_MAX_WAIT_MS),
    },
    policy: resolvePolicy(options['policy']),
    fleet: {
      peers,
      dns,
      kafkaTopic: fleetTopic,
      intervalMs: duration('fleet.intervalMs', fleetOptions['intervalMs'], DEFAULT_INTERVAL_MS, 100),
      staleAfterMs: duration('fleet.staleAfterMs', fleetOptions['staleAfterMs'], 30_000, 1_000),
      timeoutMs: duration('fleet.timeoutMs', fleetOptions['timeoutMs'], 2_000, 10),
    },
    events: {
      url: url('events.url', eventOptions['url'], undefined),
      kafkaTopic: eventsTopic,
      heartbeatMs: duration('events.heartbeatMs', eventOptions['heartbeatMs'], 30_000, 100),
      maxBuffer: number('events.maxBuffer', eventOptions['maxBuffer'], 1_000, {
        min: 1,
        max: 1_000_000,
        integer: true,
      }),
      retryMinMs,
      retryMaxMs: duration('events.retryMaxMs', eventOptions['retryMaxMs'], 30_000, retryMinMs),
      timeoutMs: duration('events.timeoutMs', eventOptions['timeoutMs'], 5_000, 10),
    },
    kafka,
    stateDirectory: string('stateDirectory', options['stateDirectory'], undefined),
  };
  if (options['logger'] !== undefined && typeof (options['logger'] as Logger).info !== 'function') {
    throw invalidOption('logger', 'a pino-style logger', options['logger']);
  }
  for (const name of ['now', 'fetch', 'resolver'] as const) {
    if (options[name] !== undefined && typeof options[name] !== 'function')
      throw invalidOption(name, 'a function', options[name]);
  }
  return deepFreeze(config);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}

/** The logger of options (silent by default). */
export function loggerOf(options: AgentOptions): Logger {
  return options.logger ?? SILENT_LOGGER;
}

/**
 * Reads agent options from `GANTRY_AGENT_*` variables (the only place the package reads the environment).
 * Pod identity variables are read by {@link podIdentityFromEnvironment}.
 * @example const options = agentOptionsFromEnv(process.env);
 */
export function agentOptionsFromEnv(
  env: Readonly<Record<string, string | undefined>> = process.env,
): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  const set = (path: string, value: unknown): void => {
    if (value === undefined || value === '') return;
    const keys = path.split('.');
    let target = options;
    for (const key of keys.slice(0, -1)) {
      target[key] = isRecord(target[key]) ? target[key] : {};
      target = target[key] as Record<string, unknown>;
    }
    target[keys.at(-1)!] = value;
  };
  set('app.url', env['GANTRY_AGENT_APP_URL']);
  set('app.timeoutMs', env['GANTRY_AGENT_APP_TIMEOUT']);
  set('listen.host', env['GANTRY_AGENT_HOST']);
  set('listen.port', env['GANTRY_AGENT_PORT']);
  set('intervalMs', env['GANTRY_AGENT_INTERVAL']);
  set('warmupMs', env['GANTRY_AGENT_WARMUP']);
  set('auth.token', env['GANTRY_AGENT_TOKEN']);
  set('auth.flaggerToken', env['GANTRY_AGENT_FLAGGER_TOKEN']);
  set('fleet.peers', env['GANTRY_AGENT_PEERS']);
  if (env['GANTRY_AGENT_PEERS_DNS'] !== undefined && env['GANTRY_AGENT_PEERS_DNS'] !== '') {
    const [name, port] = env['GANTRY_AGENT_PEERS_DNS'].split(':');
    set('fleet.dns', { name, ...(port === undefined ? {} : { port }) });
  }
  set('fleet.kafka', bool('GANTRY_AGENT_FLEET_KAFKA', env['GANTRY_AGENT_FLEET_KAFKA']));
  set('kafka.brokers', env['GANTRY_AGENT_KAFKA_BROKERS']);
  set('events.url', env['GANTRY_AGENT_EVENTS_URL']);
  set('events.kafka', bool('GANTRY_AGENT_EVENTS_KAFKA', env['GANTRY_AGENT_EVENTS_KAFKA']));
  set('stateDirectory', env['GANTRY_AGENT_STATE_DIR']);
  return options;
}

/**
 * Deep-merges configuration layers (later wins; arrays are replaced).
 * @example mergeOptions(fileOptions, agentOptionsFromEnv(), flagOptions)
 */
export function mergeOptions(...layers: readonly Record<string, unknown>[]): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer)) {
      if (value === undefined) continue;
      result[key] = isRecord(value) && isRecord(result[key]) ? mergeOptions(result[key], value) : value;
    }
  }
  return result;
}
