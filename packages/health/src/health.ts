// The health registry: checks grouped into liveness, readiness and startup, probes answered from cached state,
// `/q/info`, and the one graceful-shutdown sequence with one deadline.
import type { Server } from 'node:http';
import type { Check, CheckStatus, InfoContributor, ShutdownHook } from './contracts.ts';
import { CheckRunner, type CheckView, type ResolvedPolicy, type RunReport } from './check-runner.ts';
import { sleep, systemClock, type Clock, type TimerHandle } from './clock.ts';
import { ServerDrainer, type DrainResult } from './drain.ts';
import { HealthError } from './errors.ts';
import { silentLogger, type Logger } from './logger.ts';
import { createHealthMetrics, SHUTDOWN_PHASES, type HealthMetrics, type ShutdownPhase } from './metrics.ts';
import {
  DEFAULT_DEADLINE_MARGIN_MS,
  DEFAULT_ON_DEMAND_CACHE_MS,
  HEALTH_GROUPS,
  functionOption,
  groupsOption,
  invalid,
  numberOption,
  resolveConfig,
  type CheckPolicy,
  type HealthConfig,
  type HealthGroup,
  type HealthOptions,
  type ShutdownOutcome,
} from './options.ts';
import { describeError } from './reason.ts';

/** A probe: one of the three groups, or `all` for `/q/health`. */
export type ProbeName = HealthGroup | 'all';

/** A MicroProfile Health response body. */
export interface HealthReport {
  readonly status: CheckStatus;
  readonly checks: readonly CheckView[];
}

/** Emitted when a probe's overall status changes. */
export interface HealthChange {
  readonly probe: HealthGroup;
  readonly status: CheckStatus;
  readonly previous: CheckStatus;
}

// Every key of CheckPolicy: others are rejected by addCheck.
const CHECK_POLICY_KEYS: ReadonlySet<string> = new Set([
  'groups',
  'mode',
  'intervalMs',
  'timeoutMs',
  'staleAfterMs',
  'failureThreshold',
  'successThreshold',
  'cacheMs',
] satisfies (keyof CheckPolicy)[]);

/** Check names the registry uses for its own entries. */
export const RESERVED_CHECK_NAMES: readonly string[] = Object.freeze(['started', 'shutdown']);

/** `/q/info` keys that contributors cannot take. */
export const RESERVED_INFO_KEYS: readonly string[] = Object.freeze(['service', 'version', 'commit', 'startedAt']);

/**
 * The health registry returned by {@link createHealth}.
 */
export interface Health {
  readonly config: HealthConfig;
  /** Whether the startup probe has latched UP. */
  readonly started: boolean;
  /** `running` until a shutdown starts, then the current phase. */
  readonly phase: ShutdownPhase;
  /**
   * Registers a check in one or more groups (default readiness). Started at once when the registry runs. A check
   * object with a `close()` method (the Kafka check) is closed when the checks stop: during shutdown after the
   * hooks, or in `close()`; each bounded by `shutdown.hookTimeoutMs`, a failure is logged.
   * @throws HealthError `GANTRY_HEALTH_DUPLICATE_NAME`, `GANTRY_HEALTH_INVALID_CHECK`, `GANTRY_HEALTH_INVALID_OPTION`,
   * `GANTRY_HEALTH_CLOSED`.
   */
  addCheck(check: Check, policy?: CheckPolicy): void;
  /** Adds a `/q/info` section. @throws HealthError `GANTRY_HEALTH_DUPLICATE_NAME`, `GANTRY_HEALTH_INVALID_OPTION` */
  addInfoContributor(contributor: InfoContributor): void;
  /** Adds a shutdown step; hooks run in reverse order of registration. @throws HealthError on a duplicate or bad hook */
  addShutdownHook(hook: ShutdownHook): void;
  /** Drains `server` (HTTP/1.1 or HTTPS) during shutdown. Returns a function that detaches it. */
  attachServer(server: Server): () => void;
  /** Starts the checks and installs the signal handlers. Idempotent. */
  start(): void;
  /** Latches the startup probe UP even if startup checks have not all passed. */
  markStarted(): void;
  /** The probe as cached now, without any I/O (on-demand checks show their cached result). */
  snapshot(probe: ProbeName): HealthReport;
  /** The probe, refreshing on-demand checks whose cache expired (bounded by their timeouts). */
  probe(probe: ProbeName): Promise<HealthReport>;
  /** The `/q/info` document. */
  info(): Record<string, unknown>;
  /** Runs the graceful shutdown (what a signal does). Calling it again returns the same promise. */
  shutdown(reason?: string): Promise<ShutdownOutcome>;
  /** Subscribes to probe status changes. Returns the unsubscribe function. */
  onChange(listener: (change: HealthChange) => void): () => void;
  /** Stops the checks (closing those with `close()`) and removes the signal handlers without running the shutdown. Idempotent. */
  close(): Promise<void>;
}

interface CachedResponse {
  readonly version: number;
  readonly validUntil: number;
  readonly report: HealthReport;
  readonly statusCode: 200 | 503;
  readonly body: string;
}

/** Internals the HTTP adapters of this package use; not part of the public API. */
export interface HealthInternals {
  /** The serialized probe, synchronously when no on-demand check needs a refresh. */
  readonly respond: (probe: ProbeName) => CachedResponse | Promise<CachedResponse>;
  /** Registers something to close after the hooks, just before terminate (a separate probe server). */
  readonly addFinalCloser: (close: () => Promise<void>) => () => void;
  readonly logger: Logger;
}

// A registered symbol, so a registry made by one copy of the package (ESM vs CJS, or two installs) still works
// with the adapters of another.
const INTERNALS = Symbol.for('@gantry/health.internals');

/** @internal */
export function healthInternals(health: Health): HealthInternals {
  const found =
    typeof health === 'object' && health !== null
      ? ((health as unknown as Record<symbol, HealthInternals | undefined>)[INTERNALS] ?? undefined)
      : undefined;
  if (found === undefined) {
    throw new HealthError('GANTRY_HEALTH_INVALID_OPTION', 'Expected `health` to be a registry from createHealth()');
  }
  return found;
}

const EXIT_BACKSTOP_MS = 1_000;

/**
 * The default `terminate`: sets `process.exitCode` (0 or 1) and lets the event loop empty, which it does when the
 * hooks closed every resource. If something still holds the loop open when the grace period is about to end (at
 * most 1 s later), it re-raises the shutdown signal so the process ends by that signal (exit status 128 + n), or
 * SIGKILLs itself when another listener would swallow the signal. Library code never calls `process.exit`
 * (see STYLE.md); this function is the package's one way out of the process.
 * @example
 * createHealth({ shutdown: { terminate: async (outcome) => { await flushSomething(); exitProcess(outcome); } } });
 */
export function exitProcess(outcome: ShutdownOutcome): void {
  process.exitCode = outcome.exitCode;
  const signal = outcome.signal ?? 'SIGTERM';
  const backstop = setTimeout(
    () => {
      process.kill(process.pid, process.listenerCount(signal) === 0 ? signal : 'SIGKILL');
    },
    Math.max(0, Math.min(EXIT_BACKSTOP_MS, outcome.remainingMs - 100)),
  );
  backstop.unref();
}

function validateCheck(check: unknown): asserts check is Check {
  if (typeof check !== 'object' || check === null) {
    throw new HealthError('GANTRY_HEALTH_INVALID_CHECK', `Expected a check object, got ${typeof check}`);
  }
  const { name, run, critical, timeoutMs } = check as Partial<Check>;
  if (typeof name !== 'string' || name.trim() === '') {
    throw new HealthError(
      'GANTRY_HEALTH_INVALID_CHECK',
      `Expected check \`name\` to be a non-empty string, got ${JSON.stringify(name)}`,
    );
  }
  if (RESERVED_CHECK_NAMES.includes(name)) {
    throw new HealthError(
      'GANTRY_HEALTH_INVALID_CHECK',
      `The check name "${name}" is reserved (${RESERVED_CHECK_NAMES.join(', ')})`,
    );
  }
  if (typeof run !== 'function') {
    throw new HealthError('GANTRY_HEALTH_INVALID_CHECK', `Expected check "${name}" to have a \`run(signal)\` function`);
  }
  if (critical !== undefined && typeof critical !== 'boolean') {
    throw new HealthError(
      'GANTRY_HEALTH_INVALID_CHECK',
      `Expected check "${name}" \`critical\` to be a boolean, got ${JSON.stringify(critical)}`,
    );
  }
  numberOption(`check "${name}" timeoutMs`, timeoutMs, 0, { min: 1 });
}

function validateNamed(kind: string, value: unknown, method: string): void {
  if (typeof value !== 'object' || value === null) throw invalid(kind, 'an object', value);
  const { name } = value as { name?: unknown };
  if (typeof name !== 'string' || name.trim() === '') throw invalid(`${kind}.name`, 'a non-empty string', name);
  if (typeof (value as Record<string, unknown>)[method] !== 'function') {
    throw invalid(`${kind} "${name}" ${method}`, 'a function', (value as Record<string, unknown>)[method]);
  }
}

/**
 * Creates a health registry. Nothing runs until {@link Health.start}.
 * @throws HealthError `GANTRY_HEALTH_INVALID_OPTION` naming the option, or the errors of `addCheck` for `checks`.
 * @example
 * const health = createHealth({ service: 'orders', version: '1.4.0', shutdown: { delayMs: 5_000 } });
 * health.addCheck(createPostgresCheck({ pool }), { groups: ['readiness'] });
 * health.start();
 */
export function createHealth(options: HealthOptions = {}): Health {
  const config = resolveConfig(options);
  const logger = (options.logger ?? silentLogger).child({ component: 'gantry-health' });
  const clock: Clock = options.clock ?? systemClock;
  const wallClock = options.wallClock ?? (() => new Date());
  const metrics: HealthMetrics = createHealthMetrics(options.registry);
  const createdAt = wallClock().toISOString();
  const terminate = options.shutdown?.terminate ?? exitProcess;

  const runners = new Map<string, CheckRunner>();
  const byGroup: Record<HealthGroup, CheckRunner[]> = { liveness: [], readiness: [], startup: [] };
  const passedOnce = new Set<string>();
  const contributors = new Map<string, InfoContributor>();
  const hooks: ShutdownHook[] = [];
  const drainers = new Set<ServerDrainer>();
  const finalClosers = new Set<() => Promise<void>>();
  // Checks that hold a resource of their own (the Kafka check's admin client) expose `close()`; it runs when the
  // checks stop, so a connection no one else knows about cannot keep the process alive after shutdown.
  const checkClosers = new Map<string, () => Promise<void>>();
  const closeChecks = async (): Promise<void> => {
    const timeoutMs = config.shutdown.hookTimeoutMs;
    await Promise.all(
      [...checkClosers].map(async ([name, close]) => {
        let timer: ReturnType<Clock['setTimeout']> | undefined;
        try {
          await Promise.race([
            close(),
            new Promise<never>((_resolve, reject) => {
              timer = clock.setTimeout(
                () => reject(new Error(`closing check "${name}" timed out after ${timeoutMs} ms`)),
                timeoutMs,
              );
            }),
          ]);
        } catch (error) {
          logger.warn(
            { event: 'health.check.close_failed', check: name, err: describeError(error) },
            `closing check ${name} failed`,
          );
        } finally {
          if (timer !== undefined) clock.clearTimeout(timer);
        }
      }),
    );
    checkClosers.clear();
  };
  const listeners = new Set<(change: HealthChange) => void>();
  const cache = new Map<ProbeName, CachedResponse>();
  const lastProbeStatus = new Map<HealthGroup, CheckStatus>();
  const signalHandlers = new Map<NodeJS.Signals, () => void>();
  let version = 0;
  let running = false;
  let closed = false;
  let started = false;
  let startedReport: HealthReport | undefined;
  let phase: ShutdownPhase = 'running';
  let shutdownPromise: Promise<ShutdownOutcome> | undefined;
  // The signal handler hands its signal to shutdown() through this slot (the public signature takes a reason).
  let pendingSignal: NodeJS.Signals | undefined;

  const setPhase = (next: ShutdownPhase): void => {
    phase = next;
    version += 1;
    for (const name of SHUTDOWN_PHASES) metrics.shutdownPhase.set({ phase: name }, name === next ? 1 : 0);
    emitChanges();
  };
  metrics.shutdownPhase.set({ phase: 'running' }, 1);

  const overall = (views: readonly CheckView[], runnersOf: readonly CheckRunner[]): CheckStatus => {
    for (const view of views) {
      if (view.status === 'UP') continue;
      const runner = runners.get(view.name);
      if (runner !== undefined && !runner.policy.critical && runnersOf.includes(runner)) continue;
      return 'DOWN';
    }
    return 'UP';
  };

  const evaluate = (group: HealthGroup, now: number): HealthReport => {
    if (group === 'startup' && startedReport !== undefined) return startedReport;
    const list = byGroup[group];
    const views: CheckView[] = [];
    if (group === 'readiness') {
      if (phase !== 'running') views.push({ name: 'shutdown', status: 'DOWN', data: { phase } });
      if (!started) {
        views.push({
          name: 'started',
          status: 'DOWN',
          data: { reason: running ? 'startup checks have not all passed yet' : 'health.start() has not been called' },
        });
      }
    }
    for (const runner of list) views.push(runner.view(now));
    // Until it latches, the startup probe is DOWN even with no startup checks (MicroProfile: expected, not ready).
    if (group === 'startup') return { status: 'DOWN', checks: views };
    return { status: overall(views, list), checks: views };
  };

  const validUntil = (probe: ProbeName): number => {
    let until = Number.POSITIVE_INFINITY;
    for (const group of probe === 'all' ? HEALTH_GROUPS : [probe]) {
      if (group === 'startup' && startedReport !== undefined) continue;
      for (const runner of byGroup[group]) until = Math.min(until, runner.staleAt());
    }
    return until;
  };

  const build = (probe: ProbeName, now: number): CachedResponse => {
    let report: HealthReport;
    if (probe === 'all') {
      const parts = HEALTH_GROUPS.map((group) => evaluate(group, now));
      const seen = new Set<string>();
      const checks: CheckView[] = [];
      for (const part of parts) {
        for (const view of part.checks) {
          if (seen.has(view.name)) continue;
          seen.add(view.name);
          checks.push(view);
        }
      }
      report = { status: parts.every((part) => part.status === 'UP') ? 'UP' : 'DOWN', checks };
    } else {
      report = evaluate(probe, now);
      metrics.probeStatus.set({ group: probe }, report.status === 'UP' ? 1 : 0);
    }
    return {
      version,
      validUntil: validUntil(probe),
      report,
      statusCode: report.status === 'UP' ? 200 : 503,
      body: JSON.stringify(report),
    };
  };

  const respondNow = (probe: ProbeName): CachedResponse => {
    const now = clock.now();
    const cached = cache.get(probe);
    if (cached !== undefined && cached.version === version && now <= cached.validUntil) return cached;
    const fresh = build(probe, now);
    cache.set(probe, fresh);
    return fresh;
  };

  const refreshing = (probe: ProbeName): Promise<unknown> | undefined => {
    const now = clock.now();
    let pending: Promise<void>[] | undefined;
    for (const group of probe === 'all' ? HEALTH_GROUPS : [probe]) {
      for (const runner of byGroup[group]) {
        if (runner.needsRefresh(now)) (pending ??= []).push(runner.runOnce());
      }
    }
    return pending === undefined ? undefined : Promise.all(pending);
  };

  const respond = (probe: ProbeName): CachedResponse | Promise<CachedResponse> => {
    const wait = refreshing(probe);
    return wait === undefined ? respondNow(probe) : wait.then(() => respondNow(probe));
  };

  function emitChanges(): void {
    const now = clock.now();
    for (const group of HEALTH_GROUPS) {
      const status = evaluate(group, now).status;
      const previous = lastProbeStatus.get(group);
      lastProbeStatus.set(group, status);
      metrics.probeStatus.set({ group }, status === 'UP' ? 1 : 0);
      if (previous === undefined || previous === status) continue;
      logger.info({ event: 'health.probe.changed', probe: group, status, previous }, `${group} is ${status}`);
      for (const listener of listeners) {
        try {
          listener({ probe: group, status, previous });
        } catch (error) {
          logger.warn({ event: 'health.listener.failed', err: describeError(error) }, 'a change listener threw');
        }
      }
    }
  }

  const latchStarted = (): void => {
    if (started) return;
    started = true;
    const now = clock.now();
    const list = byGroup.startup;
    startedReport = {
      status: 'UP',
      checks: list.map((runner) => {
        const view = runner.view(now);
        return view.status === 'UP' ? view : { name: view.name, status: 'UP' as const, data: { latched: true } };
      }),
    };
    // A check that only served the startup probe has done its job.
    for (const runner of list) {
      if (runner.policy.groups.length === 1) runner.stop();
    }
    logger.info({ event: 'health.started' }, 'startup probe latched UP');
    version += 1;
    emitChanges();
  };

  const maybeLatch = (): void => {
    if (started || !running) return;
    for (const runner of byGroup.startup) {
      if (runner.policy.critical && !passedOnce.has(runner.name)) return;
    }
    latchStarted();
  };

  const onRun = (runner: CheckRunner, report: RunReport): void => {
    try {
      recordRun(runner, report);
    } catch (error) {
      logger.error(
        { event: 'health.check.record_failed', check: report.name, err: describeError(error) },
        'recording a check result failed',
      );
    }
  };

  const recordRun = (runner: CheckRunner, report: RunReport): void => {
    version += 1;
    metrics.checkDuration.observe({ check: report.name }, report.durationMs / 1000);
    if (report.timedOut) metrics.checkTimeouts.inc({ check: report.name });
    const value = report.status === 'UP' ? 1 : 0;
    for (const group of runner.policy.groups) metrics.checkStatus.set({ check: report.name, group }, value);
    if (report.changed) {
      const fields = {
        event: 'health.check.changed',
        check: report.name,
        status: report.status,
        reason: report.reason,
      };
      if (report.status === 'UP') logger.info(fields, `check ${report.name} is UP`);
      else logger.warn(fields, `check ${report.name} is DOWN`);
    }
    if (report.raw === 'UP' && runner.policy.groups.includes('startup')) {
      passedOnce.add(report.name);
      maybeLatch();
    }
    emitChanges();
  };

  const shutdownBudget = (): number =>
    config.shutdown.delayMs +
    config.shutdown.drainTimeoutMs +
    hooks.reduce((sum, hook) => sum + (hook.timeoutMs ?? config.shutdown.hookTimeoutMs), 0);

  const warnBudget = (): void => {
    const budget = shutdownBudget();
    const available = config.shutdown.gracePeriodMs - DEFAULT_DEADLINE_MARGIN_MS;
    if (budget > available) {
      logger.warn(
        {
          event: 'health.shutdown.budget_exceeded',
          delayMs: config.shutdown.delayMs,
          drainTimeoutMs: config.shutdown.drainTimeoutMs,
          hooksMs: budget - config.shutdown.delayMs - config.shutdown.drainTimeoutMs,
          gracePeriodMs: config.shutdown.gracePeriodMs,
        },
        `shutdown delay + drain + hooks (${budget} ms) exceed the grace period minus ${DEFAULT_DEADLINE_MARGIN_MS} ms ` +
          `(${available} ms): the sequence will be cut short; raise terminationGracePeriodSeconds or lower the timeouts`,
      );
    }
  };

  const assertOpen = (what: string): void => {
    if (closed || shutdownPromise !== undefined) {
      throw new HealthError('GANTRY_HEALTH_CLOSED', `Cannot ${what}: the health registry is closed or shutting down`);
    }
  };

  const removeSignalHandlers = (): void => {
    for (const [signal, handler] of signalHandlers) process.off(signal, handler);
    signalHandlers.clear();
  };

  const runHook = async (hook: ShutdownHook, deadline: AbortSignal): Promise<boolean> => {
    const timeoutMs = hook.timeoutMs ?? config.shutdown.hookTimeoutMs;
    const controller = new AbortController();
    const began = clock.now();
    let timer: TimerHandle | undefined;
    const stop = new Promise<'timeout' | 'deadline'>((resolve) => {
      timer = clock.setTimeout(() => resolve('timeout'), timeoutMs);
      deadline.addEventListener('abort', () => resolve('deadline'), { once: true });
    });
    let work: Promise<unknown>;
    try {
      work = Promise.resolve(hook.run(controller.signal));
    } catch (error) {
      work = Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    const outcome = await Promise.race([
      work.then(
        () => 'ok' as const,
        (error: unknown) => ({ error }),
      ),
      stop,
    ]);
    if (timer !== undefined) clock.clearTimeout(timer);
    const durationMs = Math.round(clock.now() - began);
    if (outcome === 'ok') {
      logger.info({ event: 'health.shutdown.hook.completed', hook: hook.name, durationMs }, `hook ${hook.name} done`);
      return true;
    }
    if (outcome === 'timeout' || outcome === 'deadline') {
      controller.abort(
        new HealthError('GANTRY_HEALTH_HOOK_TIMEOUT', `shutdown hook "${hook.name}" timed out after ${timeoutMs} ms`),
      );
      logger.error(
        { event: 'health.shutdown.hook.timed_out', hook: hook.name, timeoutMs, cause: outcome },
        `hook ${hook.name} ${outcome === 'timeout' ? `timed out after ${timeoutMs} ms` : 'was cut off by the deadline'}`,
      );
      return false;
    }
    logger.error(
      { event: 'health.shutdown.hook.failed', hook: hook.name, durationMs, err: describeError(outcome.error) },
      `hook ${hook.name} failed`,
    );
    return false;
  };

  const runShutdown = async (reason: string, signal: NodeJS.Signals | undefined): Promise<ShutdownOutcome> => {
    const began = clock.now();
    const shutdownConfig = config.shutdown;
    const deadlineAt = began + Math.max(0, shutdownConfig.gracePeriodMs - DEFAULT_DEADLINE_MARGIN_MS);
    const deadline = new AbortController();
    const deadlineTimer = clock.setTimeout(() => {
      logger.error(
        { event: 'health.shutdown.deadline_exceeded', phase, gracePeriodMs: shutdownConfig.gracePeriodMs },
        `shutdown deadline reached during ${phase}`,
      );
      deadline.abort();
    }, deadlineAt - began);
    let forcedSockets = 0;
    const failedHooks: string[] = [];
    let phaseStart = began;
    const enter = (next: ShutdownPhase): void => {
      const now = clock.now();
      if (phase !== 'running') metrics.shutdownPhaseDuration.set({ phase }, (now - phaseStart) / 1000);
      phaseStart = now;
      setPhase(next);
    };

    logger.info(
      {
        event: 'health.shutdown.started',
        reason,
        delayMs: shutdownConfig.delayMs,
        drainTimeoutMs: shutdownConfig.drainTimeoutMs,
      },
      `shutting down (${reason}): readiness is DOWN`,
    );
    enter('delay');
    await sleep(clock, shutdownConfig.delayMs, deadline.signal);

    enter('drain');
    const results: DrainResult[] = await Promise.all(
      [...drainers].map((drainer) =>
        drainer.drain(shutdownConfig.drainTimeoutMs, shutdownConfig.idleSocketGraceMs, deadline.signal),
      ),
    );
    for (const result of results) {
      forcedSockets += result.forcedSockets;
      if (result.forcedSockets > 0) {
        metrics.forcedSockets.inc(result.forcedSockets);
        logger.warn(
          { event: 'health.shutdown.drain.forced', sockets: result.forcedSockets, requests: result.forcedRequests },
          `drain timed out: destroyed ${result.forcedSockets} socket(s) with ${result.forcedRequests} request(s) in flight`,
        );
      }
    }
    logger.info(
      {
        event: 'health.shutdown.drain.completed',
        servers: results.length,
        closedAfterResponse: results.reduce((sum, result) => sum + result.closedAfterResponse, 0),
        forcedSockets,
      },
      'connections drained',
    );

    enter('hooks');
    for (const runner of runners.values()) runner.stop();
    for (const hook of [...hooks].reverse()) {
      if (deadline.signal.aborted) {
        failedHooks.push(hook.name);
        logger.error({ event: 'health.shutdown.hook.skipped', hook: hook.name }, `hook ${hook.name} skipped: deadline`);
        continue;
      }
      if (!(await runHook(hook, deadline.signal))) failedHooks.push(hook.name);
    }
    await closeChecks();
    await Promise.all(
      [...finalClosers].map((close) =>
        close().catch((error: unknown) => {
          logger.warn(
            { event: 'health.server.close_failed', err: describeError(error) },
            'closing a probe server failed',
          );
        }),
      ),
    );

    enter('terminate');
    clock.clearTimeout(deadlineTimer);
    removeSignalHandlers();
    const now = clock.now();
    const outcome: ShutdownOutcome = Object.freeze({
      exitCode: forcedSockets > 0 || failedHooks.length > 0 || deadline.signal.aborted ? 1 : 0,
      signal,
      reason,
      deadlineExceeded: deadline.signal.aborted,
      forcedSockets,
      failedHooks: Object.freeze(failedHooks),
      elapsedMs: now - began,
      remainingMs: began + shutdownConfig.gracePeriodMs - now,
    });
    logger.info(
      { event: 'health.shutdown.completed', ...outcome, elapsedMs: Math.round(outcome.elapsedMs) },
      `shutdown complete in ${Math.round(outcome.elapsedMs)} ms, exit code ${outcome.exitCode}`,
    );
    closed = true;
    try {
      await terminate(outcome);
    } catch (error) {
      logger.error({ event: 'health.shutdown.terminate_failed', err: describeError(error) }, 'terminate threw');
    }
    return outcome;
  };

  const health: Health = {
    config,
    get started() {
      return started;
    },
    get phase() {
      return phase;
    },
    addCheck(check, policy = {}) {
      assertOpen('add a check');
      validateCheck(check);
      if (runners.has(check.name)) {
        throw new HealthError('GANTRY_HEALTH_DUPLICATE_NAME', `A check named "${check.name}" is already registered`);
      }
      if (typeof policy !== 'object' || policy === null)
        throw invalid(`policy of check "${check.name}"`, 'an object', policy);
      const label = `check "${check.name}"`;
      // A misspelt key (`startup: true` for `groups: ['startup']`) would otherwise register the check somewhere
      // the caller did not mean, silently.
      for (const key of Object.keys(policy)) {
        if (!CHECK_POLICY_KEYS.has(key))
          throw invalid(`${label} policy`, `only the keys ${[...CHECK_POLICY_KEYS].join(', ')}`, key);
      }
      const groups = groupsOption(`${label} groups`, policy.groups);
      const mode = policy.mode ?? 'background';
      if (mode !== 'background' && mode !== 'on-demand')
        throw invalid(`${label} mode`, "'background' or 'on-demand'", mode);
      const intervalMs = numberOption(`${label} intervalMs`, policy.intervalMs, config.checkIntervalMs, { min: 1 });
      const timeoutMs = numberOption(`${label} timeoutMs`, policy.timeoutMs, check.timeoutMs ?? config.checkTimeoutMs, {
        min: 1,
      });
      const cacheMs = numberOption(`${label} cacheMs`, policy.cacheMs, DEFAULT_ON_DEMAND_CACHE_MS);
      const resolved: ResolvedPolicy = Object.freeze({
        groups,
        mode,
        critical: check.critical ?? true,
        intervalMs,
        timeoutMs,
        cacheMs,
        staleAfterMs: numberOption(
          `${label} staleAfterMs`,
          policy.staleAfterMs,
          mode === 'background' ? 2 * intervalMs + timeoutMs : cacheMs + timeoutMs,
          { min: 1 },
        ),
        failureThreshold: numberOption(`${label} failureThreshold`, policy.failureThreshold, config.failureThreshold, {
          min: 1,
          integer: true,
        }),
        successThreshold: numberOption(`${label} successThreshold`, policy.successThreshold, config.successThreshold, {
          min: 1,
          integer: true,
        }),
      });
      const runner: CheckRunner = new CheckRunner(check, resolved, clock, (report) => onRun(runner, report));
      runners.set(check.name, runner);
      const { close } = check as Check & { close?: unknown };
      if (typeof close === 'function')
        checkClosers.set(check.name, async () => {
          await (close.call(check) as unknown);
        });
      for (const group of groups) {
        byGroup[group].push(runner);
        metrics.checkStatus.set({ check: check.name, group }, 0);
      }
      version += 1;
      if (running) runner.start();
    },
    addInfoContributor(contributor) {
      validateNamed('infoContributor', contributor, 'contribute');
      if (RESERVED_INFO_KEYS.includes(contributor.name)) {
        throw invalid('infoContributor.name', `not one of ${RESERVED_INFO_KEYS.join(', ')}`, contributor.name);
      }
      if (contributors.has(contributor.name)) {
        throw new HealthError(
          'GANTRY_HEALTH_DUPLICATE_NAME',
          `An info contributor named "${contributor.name}" is already registered`,
        );
      }
      contributors.set(contributor.name, contributor);
    },
    addShutdownHook(hook) {
      assertOpen('add a shutdown hook');
      validateNamed('shutdownHook', hook, 'run');
      numberOption(`shutdownHook "${hook.name}" timeoutMs`, hook.timeoutMs, 0, { min: 1 });
      if (hooks.some((existing) => existing.name === hook.name)) {
        throw new HealthError(
          'GANTRY_HEALTH_DUPLICATE_NAME',
          `A shutdown hook named "${hook.name}" is already registered`,
        );
      }
      hooks.push(hook);
      if (running) warnBudget();
    },
    attachServer(server) {
      assertOpen('attach a server');
      if (typeof server !== 'object' || server === null || typeof server.on !== 'function') {
        throw invalid('server', 'a node:http or node:https Server', server);
      }
      for (const drainer of drainers) if (drainer.server === server) return () => undefined;
      const drainer = new ServerDrainer(server, clock);
      drainers.add(drainer);
      return () => {
        drainer.detach();
        drainers.delete(drainer);
      };
    },
    start() {
      if (running || closed) return;
      running = true;
      for (const signal of config.shutdown.signals) {
        const handler = (): void => {
          if (shutdownPromise !== undefined) {
            logger.warn(
              { event: 'health.shutdown.repeated_signal', signal },
              `${signal} received again; already shutting down`,
            );
            return;
          }
          pendingSignal = signal;
          void health.shutdown(`signal ${signal}`);
        };
        signalHandlers.set(signal, handler);
        process.on(signal, handler);
      }
      for (const runner of runners.values()) runner.start();
      warnBudget();
      version += 1;
      maybeLatch();
      logger.info(
        { event: 'health.started_checks', checks: runners.size, signals: config.shutdown.signals },
        `health checks running (${runners.size})`,
      );
    },
    markStarted() {
      latchStarted();
    },
    snapshot(probe) {
      return respondNow(probe).report;
    },
    async probe(probe) {
      return (await respond(probe)).report;
    },
    info() {
      const document: Record<string, unknown> = {
        service: config.service,
        version: config.version,
        commit: config.commit,
        startedAt: createdAt,
      };
      for (const [name, contributor] of contributors) {
        try {
          const section = contributor.contribute();
          // A section that cannot be serialized (a BigInt, a cycle) must not take the whole document down.
          JSON.stringify(section);
          document[name] = section;
        } catch (error) {
          document[name] = { error: describeError(error) };
          logger.debug(
            { event: 'health.info.contributor_failed', contributor: name, err: describeError(error) },
            'info contributor threw',
          );
        }
      }
      return document;
    },
    shutdown(reason = 'shutdown requested') {
      if (shutdownPromise !== undefined) return shutdownPromise;
      const signal = pendingSignal;
      pendingSignal = undefined;
      shutdownPromise = runShutdown(reason, signal);
      return shutdownPromise;
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      if (closed) return;
      closed = true;
      running = false;
      removeSignalHandlers();
      for (const runner of runners.values()) runner.stop();
      for (const drainer of drainers) drainer.detach();
      await closeChecks();
    },
  };
  Object.defineProperty(health, INTERNALS, {
    enumerable: false,
    value: {
      respond,
      addFinalCloser: (close) => {
        finalClosers.add(close);
        return () => finalClosers.delete(close);
      },
      logger,
    } satisfies HealthInternals,
  });
  for (const [group, checks] of Object.entries(options.checks ?? {}) as [HealthGroup, readonly Check[] | undefined][]) {
    if (!HEALTH_GROUPS.includes(group))
      throw invalid('checks', "an object keyed by 'liveness', 'readiness', 'startup'", group);
    for (const check of checks ?? []) health.addCheck(check, { groups: [group] });
  }
  for (const contributor of options.infoContributors ?? []) health.addInfoContributor(contributor);
  for (const hook of options.shutdownHooks ?? []) health.addShutdownHook(hook);
  functionOption('shutdown.terminate', options.shutdown?.terminate);
  return health;
}
