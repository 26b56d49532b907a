import { createHmac, randomBytes } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { Check, CheckResult, ShutdownHook } from '@gantry/health';
import type { FlagContext } from './context.ts';
import { describe } from './definitions.ts';
import { idleScheduler } from './idle-scheduler.ts';
import { FlagsError } from './errors.ts';
import type { Flags, FlagVariant } from './flags.ts';
import { errorMessage, SILENT_LOGGER, type FlagsLogger } from './logger.ts';
import { createMigrationMetrics, resolveRegistry, type MigrationMetrics } from './metrics.ts';
import type { FlagsClock } from './options.ts';
import type { Registry } from 'prom-client';

/** The stages of a migration, in order (LaunchDarkly's six-stage migration flag). */
export const MIGRATION_STAGES = ['off', 'dualwrite', 'shadow', 'live', 'rampdown', 'complete'] as const;
/** One of {@link MIGRATION_STAGES}; the variant name of the migration flag. */
export type MigrationStage = (typeof MIGRATION_STAGES)[number];
/** Which store a call went to. */
export type MigrationOrigin = 'old' | 'new';

/** Which side is read and written in a stage (authoritative first). */
export interface MigrationPlan {
  readonly read: { readonly authoritative: MigrationOrigin; readonly compareWith?: MigrationOrigin };
  readonly write: { readonly authoritative: MigrationOrigin; readonly then?: MigrationOrigin };
}

const PLANS: Readonly<Record<MigrationStage, MigrationPlan>> = {
  off: { read: { authoritative: 'old' }, write: { authoritative: 'old' } },
  dualwrite: { read: { authoritative: 'old' }, write: { authoritative: 'old', then: 'new' } },
  shadow: { read: { authoritative: 'old', compareWith: 'new' }, write: { authoritative: 'old', then: 'new' } },
  live: { read: { authoritative: 'new', compareWith: 'old' }, write: { authoritative: 'new', then: 'old' } },
  rampdown: { read: { authoritative: 'new' }, write: { authoritative: 'new', then: 'old' } },
  complete: { read: { authoritative: 'new' }, write: { authoritative: 'new' } },
};

/**
 * The reads and writes of a stage, as LaunchDarkly defines them: the authoritative side is read and written first;
 * `shadow` and `live` also read the other side to compare.
 * @example
 * migrationPlan('live'); // { read: { authoritative: 'new', compareWith: 'old' }, write: { authoritative: 'new', then: 'old' } }
 */
export function migrationPlan(stage: MigrationStage): MigrationPlan {
  return PLANS[stage];
}

/** Whether `value` names a stage. */
export function isMigrationStage(value: unknown): value is MigrationStage {
  return typeof value === 'string' && (MIGRATION_STAGES as readonly string[]).includes(value);
}

/**
 * Whether a migration may move from `from` to `to`: forward one stage at a time; back any number of stages,
 * except out of `complete` into a stage that reads the old store (it stopped receiving writes).
 */
export function isLegalStageChange(from: MigrationStage, to: MigrationStage, allowSkips = false): boolean {
  const a = MIGRATION_STAGES.indexOf(from);
  const b = MIGRATION_STAGES.indexOf(to);
  if (b === a) return true;
  if (b > a) return allowSkips || b === a + 1;
  return !(from === 'complete' && PLANS[to].read.authoritative === 'old');
}

/** What each read/write function receives besides its input. */
export interface MigrationCall<W = unknown> {
  readonly stage: MigrationStage;
  readonly origin: MigrationOrigin;
  readonly context: FlagContext;
  /** Aborts when a background comparison read passes `shadowTimeoutMs`. */
  readonly signal: AbortSignal;
  /** For the second write of a stage: what the authoritative write returned (e.g. a generated id). */
  readonly authoritativeResult?: W;
}

/** A non-authoritative write that failed, handed to `onNonAuthoritativeWriteFailure`. */
export interface MigrationWriteFailure<WI = unknown> {
  readonly migration: string;
  readonly stage: MigrationStage;
  readonly origin: MigrationOrigin;
  readonly payload: WI;
  readonly context: FlagContext;
  readonly error: unknown;
}

/** Raised when the mismatch rate crosses the threshold (`tripped`) and when it is back under it (`cleared`). */
export interface MigrationGuardrailEvent {
  readonly migration: string;
  readonly state: 'tripped' | 'cleared';
  readonly mismatchRate: number;
  readonly samples: number;
  readonly threshold: number;
  readonly windowMs: number;
  readonly at: string;
}

/** Guardrail settings. */
export interface MigrationGuardrailOptions {
  /** Mismatch rate (0–1) above which the guardrail trips. @default 0.01 */
  readonly maxMismatchRate?: number;
  /** Comparisons needed in the window before the rate counts. @default 20 */
  readonly minSamples?: number;
  /** Sliding window. @default 60_000 */
  readonly windowMs?: number;
}

/** Options of {@link createMigrationFlag}. */
export interface MigrationFlagOptions<RI, R, WI, W> {
  readonly readOld: (input: RI, call: MigrationCall) => Promise<R>;
  readonly readNew: (input: RI, call: MigrationCall) => Promise<R>;
  readonly writeOld: (payload: WI, call: MigrationCall<W>) => Promise<W>;
  readonly writeNew: (payload: WI, call: MigrationCall<W>) => Promise<W>;
  /** Whether the old and new reads agree. @default deep equality (`util.isDeepStrictEqual`) */
  readonly compare?: (oldValue: R, newValue: R) => boolean;
  /**
   * Structured description of a mismatch for the log; return only what may be logged.
   * @default a path-by-path diff with value types and keyed fingerprints, no values ({@link structuralDiff})
   */
  readonly diff?: (oldValue: R, newValue: R) => unknown;
  /**
   * Put the differing values themselves (shortened to 80 characters) in the default diff. Only for data that may be
   * logged: the paths are the records' own field names, so key-based log redaction cannot catch the values.
   * Ignored when `diff` is given. @default false
   */
  readonly logDiffValues?: boolean;
  /**
   * Copies the authoritative value before `read()` hands it to the caller, so a background comparison sees it as it
   * was read even when the caller then changes it (formats a field, adds an item). Runs only for reads that will
   * be compared in the background. Return `undefined` (or throw) when a value cannot be copied: it is then compared
   * as it is when the comparison runs.
   * @default structuredClone for plain data (objects, arrays, Date, Map, Set, RegExp, typed arrays); values it
   * cannot copy faithfully (class instances, Buffers, functions, symbol keys) are compared as they are, with a
   * `flags.migration.snapshot_unavailable` warning (once a minute)
   */
  readonly snapshot?: (value: R) => R | undefined;
  /** `background`: the comparison read runs after the authoritative one returned, off the request path. `await`: both run together and the read waits for both (LaunchDarkly's behaviour). @default 'background' */
  readonly shadowMode?: 'background' | 'await';
  /** Share of reads in `shadow`/`live` that also read the other side. @default 1 */
  readonly shadowSampleRatio?: number;
  /** Background comparison reads running at once at most; the rest wait in a queue. Keep it well below the connection pool size, so comparisons never starve requests of connections. @default 4 */
  readonly maxConcurrentShadowReads?: number;
  /** Comparisons waiting to run at most (each holds a copy of its read's value); reads beyond it are not compared, and counted as skipped. @default 1_000 */
  readonly maxQueuedShadowReads?: number;
  /** @default 5_000 */
  readonly shadowTimeoutMs?: number;
  /**
   * A background comparison read waits until no authoritative read or write (of any migration flag in the process)
   * is in flight, so that it runs in the gaps between requests instead of beside them — on a server that is never
   * idle, this long at the latest. Long enough to outlast a burst of requests; comparisons feed a guardrail window
   * of a minute, so the delay costs nothing there. @default 500
   */
  readonly shadowMaxDelayMs?: number;
  /** What to do when the second write fails: ignore it, log it, or hand it to a callback (retry/outbox). @default 'log' */
  readonly onNonAuthoritativeWriteFailure?:
    'ignore' | 'log' | ((failure: MigrationWriteFailure<WI>) => void | Promise<void>);
  /** Stage while the flag is off, unknown, or not loaded yet. @default 'off' */
  readonly defaultStage?: MigrationStage;
  /** Accept forward jumps over stages (e.g. `dualwrite` → `live`). @default false */
  readonly allowStageSkips?: boolean;
  /** Which population a remembered stage belongs to. @default the tenant, or one global key */
  readonly stageKey?: (context: FlagContext, tenantId: string | undefined) => string;
  /** How long a context object keeps its stage (one request). @default 30_000 */
  readonly pinTtlMs?: number;
  /** `false` turns the guardrail off. */
  readonly guardrail?: MigrationGuardrailOptions | false;
  readonly onGuardrail?: (event: MigrationGuardrailEvent) => void;
  /** Mismatch diffs logged per minute at most. @default 10 */
  readonly maxDiffLogsPerMinute?: number;
  readonly logger?: FlagsLogger;
  readonly registry?: Registry;
  readonly clock?: FlagsClock;
  /** @default Math.random */
  readonly random?: () => number;
}

/** Counters of one migration since it was created. */
export interface MigrationStats {
  readonly consistent: number;
  readonly inconsistent: number;
  /** Comparisons that could not be made: the other side or `compare` failed, or it timed out. */
  readonly errors: number;
  readonly skipped: number;
  readonly mismatchRate: number;
  readonly guardrailTripped: boolean;
}

/** A dual-write migration driven by the variant of a flag. */
export interface MigrationFlag<RI, R, WI, W> {
  readonly key: string;
  /** The stage `context` is in; the first call pins it to that object for `pinTtlMs`. */
  stage(context: FlagContext): MigrationStage;
  /** Reads per the stage; resolves with the authoritative side, rejects with its error. */
  read(context: FlagContext, input: RI): Promise<R>;
  /** Writes per the stage, authoritative side first; rejects with the authoritative error (the second write is then skipped). */
  write(context: FlagContext, payload: WI): Promise<W>;
  readonly stats: MigrationStats;
  /** Non-critical check, DOWN while the guardrail is tripped. */
  check(options?: { readonly name?: string; readonly critical?: boolean }): Check;
  /** Resolves once the background comparisons started so far have finished. */
  settled(): Promise<void>;
  /** A graceful-shutdown step that waits (bounded by its timeout) for background comparisons in flight. */
  shutdownHook(options?: { readonly timeoutMs?: number }): ShutdownHook;
}

/** Default maximum mismatch rate of the guardrail. */
export const DEFAULT_MAX_MISMATCH_RATE = 0.01;
/** Default comparisons needed before the guardrail judges. */
export const DEFAULT_GUARDRAIL_MIN_SAMPLES = 20;
/** Default guardrail window. */
export const DEFAULT_GUARDRAIL_WINDOW_MS = 60_000;
/** Default cap of background comparison reads. */
export const DEFAULT_MAX_CONCURRENT_SHADOW_READS = 4;
/** Default timeout of a background comparison read. */
export const DEFAULT_SHADOW_TIMEOUT_MS = 5_000;
/** Default cap of background comparison reads waiting to run. */
export const DEFAULT_MAX_QUEUED_SHADOW_READS = 1_000;
/** Default longest wait of a background comparison read for a moment without foreground calls. */
export const DEFAULT_SHADOW_MAX_DELAY_MS = 500;
/** Default lifetime of a stage pinned to a context object. */
export const DEFAULT_PIN_TTL_MS = 30_000;

const MAX_REMEMBERED_STAGES = 10_000;
const MINUTE_MS = 60_000;
const GLOBAL_STAGE_KEY = '*';

/**
 * Creates a migration flag: the stage (`off` → `dualwrite` → `shadow` → `live` → `rampdown` → `complete`) is the
 * variant of the Unleash toggle `key` (by convention `dual-write-<migration-id>`), evaluated per request context so
 * stages can be ramped per tenant. Writes go to the authoritative side first; in `shadow` and `live` the other side
 * is read too (in the background by default) and compared, with metrics, sampled diffs and a guardrail.
 * @throws FlagsError `GANTRY_FLAGS_INVALID_OPTIONS` for malformed options.
 * @example
 * const orders = createMigrationFlag(flags, 'dual-write-orders-v2', {
 *   readOld: (id) => oldDb.order(id), readNew: (id) => newDb.order(id),
 *   writeOld: (order) => oldDb.insert(order), writeNew: (order) => newDb.insert(order),
 * });
 * const order = await orders.read(request.flagContext, id);
 */
export function createMigrationFlag<N extends string, RI, R, WI, W>(
  flags: Flags<N>,
  key: NoInfer<N>,
  options: MigrationFlagOptions<RI, R, WI, W>,
): MigrationFlag<RI, R, WI, W> {
  return new Migration(flags, key, options);
}

interface WindowBucket {
  start: number;
  consistent: number;
  inconsistent: number;
}

function invalid(message: string): FlagsError {
  return new FlagsError('GANTRY_FLAGS_INVALID_OPTIONS', message);
}

function ratio(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) {
    throw invalid(`Expected \`${name}\` to be a number between 0 and 1, got ${describe(value)}`);
  }
  return value;
}

function positive(name: string, value: unknown, fallback: number, integer = false): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw invalid(
      `Expected \`${name}\` to be a ${integer ? 'positive integer' : 'finite number > 0'}, got ${describe(value)}`,
    );
  }
  return value;
}

function nonNegative(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw invalid(`Expected \`${name}\` to be a finite number ≥ 0, got ${describe(value)}`);
  }
  return value;
}

class Migration<N extends string, RI, R, WI, W> implements MigrationFlag<RI, R, WI, W> {
  readonly key: string;
  readonly #flags: Flags<N>;
  readonly #options: MigrationFlagOptions<RI, R, WI, W>;
  readonly #logger: FlagsLogger;
  readonly #clock: FlagsClock;
  readonly #random: () => number;
  readonly #metrics: MigrationMetrics;
  readonly #compare: (oldValue: R, newValue: R) => boolean;
  readonly #diff: (oldValue: R, newValue: R) => unknown;
  readonly #shadowMode: 'background' | 'await';
  readonly #sampleRatio: number;
  readonly #maxShadow: number;
  readonly #maxQueued: number;
  readonly #shadowTimeoutMs: number;
  readonly #shadowMaxDelayMs: number;
  readonly #defaultStage: MigrationStage;
  readonly #allowSkips: boolean;
  readonly #pinTtlMs: number;
  readonly #guardrail: Required<MigrationGuardrailOptions> | undefined;
  readonly #maxDiffLogs: number;
  readonly #pins = new WeakMap<object, { stage: MigrationStage; until: number }>();
  readonly #stages = new Map<string, MigrationStage>();
  /** Comparisons waiting for an idle moment, oldest first. */
  readonly #pending: { readonly start: () => Promise<void>; readonly queuedAt: number }[] = [];
  readonly #running = new Set<Promise<void>>();
  #pumpScheduled = false;
  readonly #window: WindowBucket[] = [];
  readonly #rateLimits = new Map<string, number>();
  #diffLogs = { minute: 0, count: 0 };
  #consistent = 0;
  #inconsistent = 0;
  #errors = 0;
  #skipped = 0;
  #tripped = false;
  #lastRate = 0;

  constructor(flags: Flags<N>, key: N, options: MigrationFlagOptions<RI, R, WI, W>) {
    if (typeof key !== 'string' || key.length === 0)
      throw invalid(`Expected the migration flag key to be a non-empty string, got ${describe(key)}`);
    if (typeof options !== 'object' || options === null)
      throw invalid(`Expected the migration options to be an object, got ${describe(options)}`);
    for (const name of ['readOld', 'readNew', 'writeOld', 'writeNew'] as const) {
      if (typeof options[name] !== 'function')
        throw invalid(`Expected \`${name}\` to be a function, got ${describe(options[name])}`);
    }
    for (const name of ['compare', 'diff', 'snapshot', 'stageKey', 'onGuardrail', 'random'] as const) {
      if (options[name] !== undefined && typeof options[name] !== 'function') {
        throw invalid(`Expected \`${name}\` to be a function, got ${describe(options[name])}`);
      }
    }
    if (options.shadowMode !== undefined && options.shadowMode !== 'background' && options.shadowMode !== 'await') {
      throw invalid(`Expected \`shadowMode\` to be "background" or "await", got ${describe(options.shadowMode)}`);
    }
    if (options.defaultStage !== undefined && !isMigrationStage(options.defaultStage)) {
      throw invalid(
        `Expected \`defaultStage\` to be one of ${MIGRATION_STAGES.join(', ')}, got ${describe(options.defaultStage)}`,
      );
    }
    if (options.logDiffValues !== undefined && typeof options.logDiffValues !== 'boolean') {
      throw invalid(`Expected \`logDiffValues\` to be a boolean, got ${describe(options.logDiffValues)}`);
    }
    const policy = options.onNonAuthoritativeWriteFailure;
    if (policy !== undefined && policy !== 'ignore' && policy !== 'log' && typeof policy !== 'function') {
      throw invalid(
        `Expected \`onNonAuthoritativeWriteFailure\` to be "ignore", "log" or a function, got ${describe(policy)}`,
      );
    }
    this.key = key;
    this.#flags = flags;
    this.#options = options;
    this.#logger = (options.logger ?? SILENT_LOGGER).child({ component: 'gantry-flags', migration: key });
    this.#clock = options.clock ?? Date;
    this.#random = options.random ?? Math.random;
    this.#metrics = createMigrationMetrics(resolveRegistry(options.registry));
    this.#compare = options.compare ?? isDeepStrictEqual;
    const includeValues = options.logDiffValues ?? false;
    this.#diff = options.diff ?? ((a, b) => structuralDiff(a, b, { includeValues }));
    this.#shadowMode = options.shadowMode ?? 'background';
    this.#sampleRatio = ratio('shadowSampleRatio', options.shadowSampleRatio, 1);
    this.#maxShadow = positive(
      'maxConcurrentShadowReads',
      options.maxConcurrentShadowReads,
      DEFAULT_MAX_CONCURRENT_SHADOW_READS,
      true,
    );
    this.#shadowTimeoutMs = positive('shadowTimeoutMs', options.shadowTimeoutMs, DEFAULT_SHADOW_TIMEOUT_MS);
    this.#maxQueued = positive(
      'maxQueuedShadowReads',
      options.maxQueuedShadowReads,
      DEFAULT_MAX_QUEUED_SHADOW_READS,
      true,
    );
    this.#shadowMaxDelayMs = nonNegative('shadowMaxDelayMs', options.shadowMaxDelayMs, DEFAULT_SHADOW_MAX_DELAY_MS);
    this.#defaultStage = options.defaultStage ?? 'off';
    this.#allowSkips = options.allowStageSkips ?? false;
    this.#pinTtlMs = positive('pinTtlMs', options.pinTtlMs, DEFAULT_PIN_TTL_MS);
    this.#maxDiffLogs =
      options.maxDiffLogsPerMinute === undefined
        ? 10
        : positive('maxDiffLogsPerMinute', options.maxDiffLogsPerMinute, 10, true);
    this.#guardrail =
      options.guardrail === false
        ? undefined
        : {
            maxMismatchRate: ratio(
              'guardrail.maxMismatchRate',
              options.guardrail?.maxMismatchRate,
              DEFAULT_MAX_MISMATCH_RATE,
            ),
            minSamples: positive(
              'guardrail.minSamples',
              options.guardrail?.minSamples,
              DEFAULT_GUARDRAIL_MIN_SAMPLES,
              true,
            ),
            windowMs: positive('guardrail.windowMs', options.guardrail?.windowMs, DEFAULT_GUARDRAIL_WINDOW_MS),
          };
    this.#metrics.guardrail.set({ migration: key }, 0);
  }

  // ── stage ──────────────────────────────────────────────────────────────────────────────────────────────────

  stage(context: FlagContext): MigrationStage {
    const now = this.#clock.now();
    const pinned = this.#pins.get(context);
    if (pinned !== undefined && pinned.until > now) return pinned.stage;
    const stage = this.#resolveStage(context, now);
    this.#pins.set(context, { stage, until: now + this.#pinTtlMs });
    return stage;
  }

  #resolveStage(context: FlagContext, now: number): MigrationStage {
    const { tenantId } = this.#flags.identity(context);
    const stageKey = this.#options.stageKey?.(context, tenantId) ?? tenantId ?? GLOBAL_STAGE_KEY;
    const previous = this.#stages.get(stageKey);
    // Without loaded values the flag would read as its fallback: never let that count as a stage change.
    if (!this.#flags.status.ready) return previous ?? this.#defaultStage;
    const variant: FlagVariant = this.#flags.variant(this.key as N, context, {
      name: this.#defaultStage,
      enabled: false,
      featureEnabled: false,
    });
    let observed: MigrationStage;
    if (!variant.featureEnabled || !variant.enabled) {
      observed = this.#defaultStage;
    } else if (isMigrationStage(variant.name)) {
      observed = variant.name;
    } else {
      if (this.#allowLog(`invalid:${variant.name}`, now)) {
        this.#logger.warn(
          { event: 'flags.migration.stage.invalid', variant: variant.name, kept: previous ?? this.#defaultStage },
          `variant "${variant.name}" of ${this.key} is not a migration stage (${MIGRATION_STAGES.join(', ')})`,
        );
      }
      return previous ?? this.#defaultStage;
    }
    if (previous === undefined || previous === observed) {
      if (previous === undefined) this.#remember(stageKey, observed);
      return observed;
    }
    if (isLegalStageChange(previous, observed, this.#allowSkips)) {
      this.#remember(stageKey, observed);
      this.#logger.info(
        { event: 'flags.migration.stage.changed', from: previous, to: observed, stageKey },
        `${this.key} moved from ${previous} to ${observed}`,
      );
      return observed;
    }
    this.#metrics.rejections.inc({ migration: this.key, from: previous, to: observed });
    if (this.#allowLog(`jump:${stageKey}:${previous}:${observed}`, now)) {
      this.#logger.error(
        { event: 'flags.migration.stage.refused', from: previous, to: observed, stageKey },
        `refused the jump of ${this.key} from ${previous} to ${observed}; staying in ${previous}. ` +
          'Move one stage at a time (off → dualwrite → shadow → live → rampdown → complete).',
      );
    }
    return previous;
  }

  #remember(stageKey: string, stage: MigrationStage): void {
    this.#stages.delete(stageKey);
    this.#stages.set(stageKey, stage);
    if (this.#stages.size > MAX_REMEMBERED_STAGES) {
      const oldest = this.#stages.keys().next().value;
      if (oldest !== undefined) this.#stages.delete(oldest);
    }
  }

  /** At most one log line per `key` per minute. */
  #allowLog(key: string, now: number): boolean {
    const last = this.#rateLimits.get(key);
    if (last !== undefined && now - last < MINUTE_MS) return false;
    if (this.#rateLimits.size > 1_000) this.#rateLimits.clear();
    this.#rateLimits.set(key, now);
    return true;
  }

  // ── operations ─────────────────────────────────────────────────────────────────────────────────────────────

  async #invoke<I, O>(
    operation: 'read' | 'write',
    stage: MigrationStage,
    origin: MigrationOrigin,
    fn: (input: I, call: MigrationCall<W>) => Promise<O>,
    input: I,
    call: MigrationCall<W>,
    foreground = true,
  ): Promise<O> {
    const started = performance.now();
    if (foreground) idleScheduler.enter();
    try {
      const result = await fn(input, call);
      this.#record(operation, stage, origin, 'success', started);
      return result;
    } catch (error) {
      this.#record(operation, stage, origin, 'error', started);
      throw error;
    } finally {
      if (foreground) idleScheduler.leave();
    }
  }

  #record(
    operation: 'read' | 'write',
    stage: MigrationStage,
    origin: MigrationOrigin,
    outcome: string,
    started: number,
  ): void {
    const migration = this.key;
    this.#metrics.operations.inc({ migration, operation, stage, origin, outcome });
    this.#metrics.duration.observe({ migration, operation, origin }, (performance.now() - started) / 1000);
  }

  #reader(origin: MigrationOrigin): (input: RI, call: MigrationCall<W>) => Promise<R> {
    return origin === 'old' ? this.#options.readOld : this.#options.readNew;
  }

  async read(context: FlagContext, input: RI): Promise<R> {
    const stage = this.stage(context);
    const plan = PLANS[stage].read;
    const authoritative = this.#reader(plan.authoritative);
    const call = (origin: MigrationOrigin, signal: AbortSignal): MigrationCall<W> => ({
      stage,
      origin,
      context,
      signal,
    });
    const other = plan.compareWith;
    if (other === undefined || !this.#sampled()) {
      if (other !== undefined) this.#skip(stage, other);
      return this.#invoke(
        'read',
        stage,
        plan.authoritative,
        authoritative,
        input,
        call(plan.authoritative, NEVER_ABORTED),
      );
    }
    if (this.#shadowMode === 'await') {
      const [mine, theirs] = await Promise.allSettled([
        this.#invoke('read', stage, plan.authoritative, authoritative, input, call(plan.authoritative, NEVER_ABORTED)),
        this.#invoke(
          'read',
          stage,
          other,
          this.#reader(other),
          input,
          call(other, AbortSignal.timeout(this.#shadowTimeoutMs)),
        ),
      ]);
      if (mine.status === 'rejected') throw mine.reason;
      if (theirs.status === 'fulfilled') this.#check(stage, plan.authoritative, mine.value, theirs.value, context);
      else this.#comparisonFailed(stage, other, theirs.reason);
      return mine.value;
    }
    const value = await this.#invoke(
      'read',
      stage,
      plan.authoritative,
      authoritative,
      input,
      call(plan.authoritative, NEVER_ABORTED),
    );
    if (this.#pending.length >= this.#maxQueued) {
      this.#skip(stage, other);
      return value;
    }
    // The caller gets `value` now and may change it before the comparison runs: compare a copy.
    const snapshot = this.#snapshot(value, stage);
    this.#pending.push({
      start: () => this.#shadowRead(stage, plan.authoritative, other, input, snapshot, context),
      queuedAt: performance.now(),
    });
    this.#schedulePump();
    return value;
  }

  /**
   * Asks for the next idle moment (or the oldest queued comparison's deadline: `shadowMaxDelayMs` after its read, not
   * after now) to start queued comparisons.
   */
  #schedulePump(): void {
    const oldest = this.#pending[0];
    if (this.#pumpScheduled || oldest === undefined || this.#running.size >= this.#maxShadow) return;
    this.#pumpScheduled = true;
    idleScheduler.schedule(
      () => {
        this.#pumpScheduled = false;
        this.#pump();
      },
      Math.max(0, this.#delayLeft(oldest.queuedAt)),
    );
  }

  /** What is left of `shadowMaxDelayMs` for a comparison queued at `queuedAt` (≤ 0 once it is overdue). */
  #delayLeft(queuedAt: number): number {
    return this.#shadowMaxDelayMs - (performance.now() - queuedAt);
  }

  /**
   * Starts queued comparisons up to the cap. Each one that ends starts the next at once when that one is overdue
   * (a server that is never idle still works through its queue), else asks for the next idle moment.
   */
  #pump(): void {
    while (this.#pending.length > 0 && this.#running.size < this.#maxShadow) {
      const { start } = this.#pending.shift()!;
      const task: Promise<void> = start().finally(() => {
        this.#running.delete(task);
        const next = this.#pending[0];
        if (next !== undefined && this.#delayLeft(next.queuedAt) <= 0) this.#pump();
        else this.#schedulePump();
      });
      this.#running.add(task);
    }
  }

  async #shadowRead(
    stage: MigrationStage,
    authoritative: MigrationOrigin,
    other: MigrationOrigin,
    input: RI,
    value: R,
    context: FlagContext,
  ): Promise<void> {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new Error(`comparison read of the ${other} side took longer than ${this.#shadowTimeoutMs} ms`);
        controller.abort(error);
        reject(error);
      }, this.#shadowTimeoutMs);
      timer.unref();
    });
    try {
      const result = await Promise.race([
        this.#invoke(
          'read',
          stage,
          other,
          this.#reader(other),
          input,
          { stage, origin: other, context, signal: controller.signal },
          false,
        ),
        timeout,
      ]);
      this.#check(stage, authoritative, value, result, context);
    } catch (error) {
      this.#comparisonFailed(stage, other, error);
    } finally {
      clearTimeout(timer);
    }
  }

  #snapshot(value: R, stage: MigrationStage): R {
    // Primitives cannot change under the comparison.
    if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return value;
    let copy: R | undefined;
    let reason = 'not plain data (a class instance, Buffer, function or symbol key): structuredClone would change it';
    const custom = this.#options.snapshot;
    if (custom === undefined) {
      try {
        if (isPlainData(value)) copy = structuredClone(value);
      } catch (error) {
        reason = `structuredClone failed: ${errorMessage(error)}`;
      }
    } else {
      try {
        copy = custom(value);
        reason = '`snapshot` returned undefined';
      } catch (error) {
        reason = `\`snapshot\` threw: ${errorMessage(error)}`;
      }
    }
    if (copy !== undefined) return copy;
    if (this.#allowLog('snapshot-unavailable', this.#clock.now())) {
      this.#logger.warn(
        { event: 'flags.migration.snapshot_unavailable', stage, reason },
        `cannot copy a read result of ${this.key}; it is compared as it is when the comparison runs, so changes ` +
          'the caller makes to it count as mismatches (pass `snapshot`, or shadowMode "await")',
      );
    }
    return value;
  }

  #sampled(): boolean {
    return this.#sampleRatio >= 1 || this.#random() < this.#sampleRatio;
  }

  #skip(stage: MigrationStage, origin: MigrationOrigin): void {
    this.#skipped += 1;
    this.#metrics.operations.inc({ migration: this.key, operation: 'read', stage, origin, outcome: 'skipped' });
  }

  #comparisonFailed(stage: MigrationStage, origin: MigrationOrigin, error: unknown): void {
    this.#errors += 1;
    this.#metrics.consistency.inc({ migration: this.key, result: 'error' });
    if (this.#allowLog(`compare-error:${origin}`, this.#clock.now())) {
      this.#logger.warn(
        { event: 'flags.migration.compare_failed', stage, origin, error: errorMessage(error) },
        `could not compare ${this.key}: the ${origin} read failed`,
      );
    }
  }

  #check(
    stage: MigrationStage,
    authoritative: MigrationOrigin,
    authoritativeValue: R,
    otherValue: R,
    context: FlagContext,
  ): void {
    const [oldValue, newValue] =
      authoritative === 'old' ? [authoritativeValue, otherValue] : [otherValue, authoritativeValue];
    let consistent: boolean;
    try {
      consistent = this.#compare(oldValue, newValue);
    } catch (error) {
      this.#comparisonFailed(stage, authoritative, error);
      return;
    }
    const now = this.#clock.now();
    this.#metrics.consistency.inc({ migration: this.key, result: consistent ? 'consistent' : 'inconsistent' });
    const bucket = this.#bucket(now);
    if (consistent) {
      this.#consistent += 1;
      bucket.consistent += 1;
    } else {
      this.#inconsistent += 1;
      bucket.inconsistent += 1;
      this.#logDiff(stage, oldValue, newValue, context, now);
    }
    this.#evaluateGuardrail(now, stage);
  }

  #logDiff(stage: MigrationStage, oldValue: R, newValue: R, context: FlagContext, now: number): void {
    const minute = Math.floor(now / MINUTE_MS);
    if (this.#diffLogs.minute !== minute) this.#diffLogs = { minute, count: 0 };
    if (this.#diffLogs.count >= this.#maxDiffLogs) return;
    this.#diffLogs.count += 1;
    let diff: unknown;
    try {
      diff = this.#diff(oldValue, newValue);
    } catch (error) {
      diff = { error: `diff failed: ${errorMessage(error)}` };
    }
    const { tenantId } = this.#flags.identity(context);
    this.#logger.warn(
      { event: 'flags.migration.mismatch', stage, tenant_id: tenantId ?? null, diff },
      `old and new reads of ${this.key} differ`,
    );
  }

  async write(context: FlagContext, payload: WI): Promise<W> {
    const stage = this.stage(context);
    const plan = PLANS[stage].write;
    const writer = (origin: MigrationOrigin): ((payload: WI, call: MigrationCall<W>) => Promise<W>) =>
      origin === 'old' ? this.#options.writeOld : this.#options.writeNew;
    const result = await this.#invoke('write', stage, plan.authoritative, writer(plan.authoritative), payload, {
      stage,
      origin: plan.authoritative,
      context,
      signal: NEVER_ABORTED,
    });
    const then = plan.then;
    if (then === undefined) return result;
    try {
      await this.#invoke('write', stage, then, writer(then), payload, {
        stage,
        origin: then,
        context,
        signal: NEVER_ABORTED,
        authoritativeResult: result,
      });
    } catch (error) {
      await this.#secondWriteFailed({ migration: this.key, stage, origin: then, payload, context, error });
    }
    return result;
  }

  async #secondWriteFailed(failure: MigrationWriteFailure<WI>): Promise<void> {
    const policy = this.#options.onNonAuthoritativeWriteFailure ?? 'log';
    if (policy === 'ignore') return;
    if (policy === 'log') {
      this.#logger.error(
        {
          event: 'flags.migration.write_failed',
          stage: failure.stage,
          origin: failure.origin,
          error: errorMessage(failure.error),
        },
        `the ${failure.origin} write of ${this.key} failed after the authoritative write succeeded; the stores differ`,
      );
      return;
    }
    try {
      await policy(failure);
    } catch (error) {
      this.#logger.error(
        {
          event: 'flags.migration.write_failure_handler_failed',
          stage: failure.stage,
          origin: failure.origin,
          error: errorMessage(error),
        },
        `onNonAuthoritativeWriteFailure of ${this.key} threw`,
      );
    }
  }

  // ── guardrail ──────────────────────────────────────────────────────────────────────────────────────────────

  #bucket(now: number): WindowBucket {
    const size = (this.#guardrail?.windowMs ?? DEFAULT_GUARDRAIL_WINDOW_MS) / 6;
    const start = now - (now % size);
    const last = this.#window.at(-1);
    if (last !== undefined && last.start === start) return last;
    const bucket = { start, consistent: 0, inconsistent: 0 };
    this.#window.push(bucket);
    return bucket;
  }

  #windowCounts(now: number): { consistent: number; inconsistent: number } {
    const windowMs = this.#guardrail?.windowMs ?? DEFAULT_GUARDRAIL_WINDOW_MS;
    while (this.#window.length > 0 && this.#window[0]!.start + windowMs / 6 <= now - windowMs) this.#window.shift();
    let consistent = 0;
    let inconsistent = 0;
    for (const bucket of this.#window) {
      consistent += bucket.consistent;
      inconsistent += bucket.inconsistent;
    }
    return { consistent, inconsistent };
  }

  #evaluateGuardrail(now: number, stage: MigrationStage | undefined): void {
    const guardrail = this.#guardrail;
    if (guardrail === undefined) return;
    const { consistent, inconsistent } = this.#windowCounts(now);
    const samples = consistent + inconsistent;
    const rate = samples === 0 ? 0 : inconsistent / samples;
    this.#lastRate = rate;
    let tripped = this.#tripped;
    if (samples >= guardrail.minSamples) tripped = rate > guardrail.maxMismatchRate;
    else if (inconsistent === 0) tripped = false;
    if (tripped === this.#tripped) return;
    this.#tripped = tripped;
    this.#metrics.guardrail.set({ migration: this.key }, tripped ? 1 : 0);
    const event: MigrationGuardrailEvent = {
      migration: this.key,
      state: tripped ? 'tripped' : 'cleared',
      mismatchRate: rate,
      samples,
      threshold: guardrail.maxMismatchRate,
      windowMs: guardrail.windowMs,
      at: new Date(now).toISOString(),
    };
    if (tripped) {
      this.#logger.error(
        {
          event: 'flags.migration.guardrail.tripped',
          stage: stage ?? null,
          mismatchRate: rate,
          samples,
          threshold: guardrail.maxMismatchRate,
        },
        `${this.key}: ${(rate * 100).toFixed(2)}% of comparisons differ (over ${(guardrail.maxMismatchRate * 100).toFixed(2)}%); do not advance the stage`,
      );
    } else {
      this.#logger.info(
        { event: 'flags.migration.guardrail.cleared', mismatchRate: rate, samples },
        `${this.key}: mismatch rate back under the threshold`,
      );
    }
    try {
      this.#options.onGuardrail?.(event);
    } catch (error) {
      this.#logger.error(
        { event: 'flags.migration.guardrail_listener_failed', error: errorMessage(error) },
        'onGuardrail threw',
      );
    }
  }

  get stats(): MigrationStats {
    const compared = this.#consistent + this.#inconsistent;
    return {
      consistent: this.#consistent,
      inconsistent: this.#inconsistent,
      errors: this.#errors,
      skipped: this.#skipped,
      mismatchRate: compared === 0 ? 0 : this.#inconsistent / compared,
      guardrailTripped: this.#tripped,
    };
  }

  check(options: { readonly name?: string; readonly critical?: boolean } = {}): Check {
    return {
      name: options.name ?? `migration:${this.key}`,
      critical: options.critical ?? false,
      timeoutMs: 500,
      run: async (): Promise<CheckResult> => {
        this.#evaluateGuardrail(this.#clock.now(), undefined);
        const stats = this.stats;
        const data: Record<string, string | number | boolean> = {
          consistent: stats.consistent,
          inconsistent: stats.inconsistent,
          errors: stats.errors,
          windowMismatchRate: Number(this.#lastRate.toFixed(4)),
        };
        const global = this.#stages.get(GLOBAL_STAGE_KEY);
        if (global !== undefined) data['stage'] = global;
        if (this.#guardrail !== undefined) data['threshold'] = this.#guardrail.maxMismatchRate;
        if (stats.guardrailTripped) data['reason'] = 'mismatch rate over the guardrail threshold';
        return { status: stats.guardrailTripped ? 'DOWN' : 'UP', data };
      },
    };
  }

  async settled(): Promise<void> {
    while (this.#pending.length > 0 || this.#running.size > 0) {
      this.#pump(); // comparisons still waiting for an idle moment start now
      await Promise.allSettled([...this.#running]);
    }
  }

  shutdownHook(options: { readonly timeoutMs?: number } = {}): ShutdownHook {
    return {
      name: `migration:${this.key}`,
      timeoutMs: options.timeoutMs ?? this.#shadowTimeoutMs,
      run: () => this.settled(),
    };
  }
}

const NEVER_ABORTED = new AbortController().signal;

/** Prototypes structuredClone keeps, so a copy still deep-equals (`isDeepStrictEqual`) the original. */
const PLAIN_PROTOTYPES: ReadonlySet<object | null> = new Set([
  null,
  Object.prototype,
  Array.prototype,
  Date.prototype,
  Map.prototype,
  Set.prototype,
  RegExp.prototype,
  ArrayBuffer.prototype,
  ...[
    Int8Array,
    Uint8Array,
    Uint8ClampedArray,
    Int16Array,
    Uint16Array,
    Int32Array,
    Uint32Array,
    Float32Array,
    Float64Array,
    BigInt64Array,
    BigUint64Array,
  ].map((type) => type.prototype),
]);

/** Whether structuredClone copies `root` faithfully: only plain containers and primitives, no symbol keys. */
function isPlainData(root: unknown): boolean {
  const seen = new Set<object>();
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value === 'function' || typeof value === 'symbol') return false;
    if (typeof value !== 'object' || value === null || seen.has(value)) continue;
    seen.add(value);
    if (!PLAIN_PROTOTYPES.has(Object.getPrototypeOf(value) as object | null)) return false;
    if (Object.getOwnPropertySymbols(value).length > 0) return false;
    if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof Date || value instanceof RegExp)
      continue;
    if (value instanceof Map) {
      for (const [key, item] of value) stack.push(key, item);
    } else if (value instanceof Set) {
      for (const item of value) stack.push(item);
    } else {
      for (const key of Object.keys(value)) {
        const descriptor = Object.getOwnPropertyDescriptor(value, key);
        // A getter would be read once by structuredClone and frozen into a plain value.
        if (descriptor === undefined || !('value' in descriptor)) return false;
        stack.push(descriptor.value);
      }
    }
  }
  return true;
}

/** One difference found by {@link structuralDiff}. */
export interface DiffEntry {
  readonly path: string;
  /** What the old side holds: its type, with the length of strings and arrays (`string(17)`, `array(2)`, `missing`). */
  readonly oldType: string;
  readonly newType: string;
  /**
   * 8-character keyed fingerprints (HMAC-SHA-256 under a random key per process): equal values give equal
   * fingerprints in one process's logs, and they can be neither reversed nor matched against guessed values.
   * Absent for a missing value.
   */
  readonly oldFingerprint?: string;
  readonly newFingerprint?: string;
  /** The old value, shortened for a log line: only with `includeValues`. */
  readonly old?: unknown;
  /** The new value, shortened for a log line: only with `includeValues`. */
  readonly new?: unknown;
}

/** Options of {@link structuralDiff}. */
export interface StructuralDiffOptions {
  /** Include the (shortened) values; only for data that may be logged. @default false */
  readonly includeValues?: boolean;
}

const MAX_DIFF_ENTRIES = 10;
const MAX_DIFF_DEPTH = 6;

/**
 * The paths where two JSON-like values differ (at most 10), with each side's type and a keyed fingerprint; the
 * values themselves (shortened for a log line) only with `includeValues`.
 * @example
 * structuralDiff({ total: 10 }, { total: 12 }); // { entries: [{ path: 'total', oldType: 'number', newType: 'number', oldFingerprint: 'Yq3…', newFingerprint: '0cN…' }], truncated: false }
 * structuralDiff({ total: 10 }, { total: 12 }, { includeValues: true }).entries[0]; // { …, old: 10, new: 12 }
 */
export function structuralDiff(
  oldValue: unknown,
  newValue: unknown,
  options: StructuralDiffOptions = {},
): { entries: DiffEntry[]; truncated: boolean } {
  const includeValues = options.includeValues ?? false;
  const entries: DiffEntry[] = [];
  let truncated = false;
  const walk = (a: unknown, b: unknown, path: string, depth: number): void => {
    if (entries.length >= MAX_DIFF_ENTRIES) {
      truncated = true;
      return;
    }
    if (isDeepStrictEqual(a, b)) return;
    const bothObjects = typeof a === 'object' && a !== null && typeof b === 'object' && b !== null;
    if (
      !bothObjects ||
      depth >= MAX_DIFF_DEPTH ||
      Array.isArray(a) !== Array.isArray(b) ||
      a instanceof Date ||
      b instanceof Date
    ) {
      const oldFingerprint = fingerprint(a);
      const newFingerprint = fingerprint(b);
      entries.push({
        path: path === '' ? '$' : path,
        oldType: typeOf(a),
        newType: typeOf(b),
        ...(oldFingerprint === undefined ? {} : { oldFingerprint }),
        ...(newFingerprint === undefined ? {} : { newFingerprint }),
        ...(includeValues ? { old: shorten(a), new: shorten(b) } : {}),
      });
      return;
    }
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const key of keys) {
      const next = Array.isArray(a) ? `${path}[${key}]` : path === '' ? key : `${path}.${key}`;
      walk((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key], next, depth + 1);
    }
  };
  walk(oldValue, newValue, '', 0);
  return { entries, truncated };
}

function typeOf(value: unknown): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  if (value instanceof Date) return 'date';
  if (Array.isArray(value)) return `array(${value.length})`;
  if (typeof value === 'string') return `string(${value.length})`;
  return typeof value;
}

let fingerprintKey: Buffer | undefined;

/** A keyed, non-reversible short fingerprint of a value (undefined when it is missing or cannot be serialized). */
function fingerprint(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  let text: string | undefined;
  try {
    if (value instanceof Date) text = `date:${value.toISOString()}`;
    else if (typeof value === 'object' && value !== null)
      text = `object:${JSON.stringify(value, (_key, item: unknown) => (typeof item === 'bigint' ? item.toString() : item))}`;
    else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')
      text = `${typeof value}:${value}`;
    else if (typeof value === 'bigint') text = `bigint:${value.toString()}`;
    else if (value === null) text = 'null';
  } catch {
    return undefined;
  }
  if (text === undefined) return undefined;
  // The key is drawn on first use, never at import; without it a short hash of a low-entropy value (a boolean,
  // a status, a known email) could be matched against guesses.
  fingerprintKey ??= randomBytes(32);
  return createHmac('sha256', fingerprintKey).update(text).digest('base64url').slice(0, 8);
}

function shorten(value: unknown): unknown {
  if (value === undefined) return '(missing)';
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'string') return value.length > 80 ? `${value.slice(0, 77)}...` : value;
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return `[array of ${value.length}]`;
  if (typeof value === 'object' && value !== null) return '[object]';
  return value;
}
