// The agent: watches the app every interval, keeps per-pod totals (warm-up excluded), evaluates rollback triggers,
// exchanges summaries with the fleet, reports CloudEvents, and serves the gates over HTTP.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import type { Registry } from 'prom-client';
import packageJson from '../package.json' with { type: 'json' };
import { AgentError } from './errors.ts';
import { BufferedSink, cloudEvent, httpDeliver, type CloudEvent } from './events.ts';
import { defaultResolver, FleetStore, PeerPoller } from './fleet.ts';
import { Evaluator, policyHash, type EvaluationState, type VerdictDocument } from './gates.ts';
import { HoldStore, type Hold } from './holds.ts';
import { createNodeHttpClient, fetchHttpClient } from './http-client.ts';
import { KafkaConnection } from './kafka.ts';
import { Counter, Gauge, Histogram, globalRegistry } from './prom.ts';
import { SILENT_LOGGER, type Logger } from './logger.ts';
import {
  resolveAgentConfig,
  resolvePolicy,
  type AgentConfig,
  type AgentOptions,
  type PolicyOptions,
  type ResolvedPolicy,
} from './options.ts';
import { createRequestHandler, parseGateQuery, type FlaggerPayload } from './server.ts';
import {
  inSameFleet,
  summaryFromJson,
  summaryToJson,
  type PodSummary,
  type ProbeState,
  type TriggerName,
  type TriggerStatus,
} from './summary.ts';
import { addTotals, emptyTotals, histogramQuantile, isReset, subtractTotals, type Totals } from './totals.ts';
import { observeApp, type AppObservation } from './watcher.ts';

/** Version of this package (shown on /version). */
export const AGENT_VERSION: string = packageJson.version;

/** A running (or startable) agent. */
export interface Agent {
  readonly config: AgentConfig;
  /** The `node:http` request handler (also usable without `listen`). */
  readonly handler: (request: IncomingMessage, response: ServerResponse) => void;
  /** Holds, overrides and the audit log. */
  readonly holds: HoldStore;
  /** Starts the watch loop, fleet, event sinks and the server. Idempotent. @throws AgentError `GANTRY_AGENT_LISTEN` */
  start(): Promise<void>;
  /** Stops everything, drains event sinks briefly. Idempotent. */
  close(): Promise<void>;
  /** Where the server listens, once started. */
  address(): { host: string; port: number } | undefined;
  /** Base URL of the server. @throws AgentError when not listening. */
  url(): string;
  /** Runs one watch cycle now (tests, benchmarks). */
  cycle(): Promise<void>;
  /** Runs one fleet round now: pulls peer summaries and publishes ours to Kafka. */
  syncFleet(): Promise<void>;
  /** Evaluates a gate programmatically with the same parameters as `/gate/v1/analysis`. */
  evaluate(parameters: Readonly<Record<string, string>>): Promise<VerdictDocument>;
  /** This pod's latest summary. */
  summary(): PodSummary | undefined;
  /** Marks a traffic shift now (warm-up follows). Flagger hooks and rate jumps do this on their own. */
  markTrafficShift(at?: number): void;
  /** Replaces the policy (validated, audited). @throws AgentError naming the field. */
  updatePolicy(policy: PolicyOptions, actor?: string): void;
  /** The effective policy. */
  policy(): ResolvedPolicy;
}

interface TriggerState {
  since: number | undefined;
  firing: boolean;
  detail: string;
}

const TRIGGER_NAMES: readonly TriggerName[] = ['error-rate', 'latency', 'health', 'crashloop', 'migration'];

function metric<T>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}

/**
 * Creates an agent. Nothing runs until `start()`.
 * @throws AgentError `GANTRY_AGENT_INVALID_OPTION` / `GANTRY_AGENT_INVALID_CALENDAR` naming the field.
 * @example
 * const agent = createAgent({ app: { url: 'http://127.0.0.1:8080' }, auth: { token: process.env.TOKEN } });
 * await agent.start();
 */
export function createAgent(options: AgentOptions = {}): Agent {
  const config = resolveAgentConfig(options);
  const logger: Logger = (options.logger ?? SILENT_LOGGER).child({ component: 'gantry-agent' });
  const registry = options.registry ?? globalRegistry;
  const now = options.now ?? Date.now;
  const httpClient = options.fetch === undefined ? createNodeHttpClient() : fetchHttpClient(options.fetch);
  const resolver = options.resolver ?? defaultResolver;
  const agentStartedAt = now();
  const podName = config.identity.pod ?? hostname();
  const source = `/gantry/agent/${config.identity.namespace ?? 'default'}/${podName}`;
  let policy = config.policy;
  let policyVersion = 0;

  const registers = registry === globalRegistry ? undefined : [registry];
  const withRegistry = <T extends object>(value: T): T => (registers === undefined ? value : { ...value, registers });
  const verdicts = metric(
    registry,
    'gantry_agent_verdicts_total',
    () =>
      new Counter(
        withRegistry({
          name: 'gantry_agent_verdicts_total',
          help: 'Verdicts computed, by gate, verdict and reason code.',
          labelNames: ['gate', 'verdict', 'reason_code'] as const,
        }),
      ),
  );
  const httpRequests = metric(
    registry,
    'gantry_agent_http_requests_total',
    () =>
      new Counter(
        withRegistry({
          name: 'gantry_agent_http_requests_total',
          help: 'HTTP requests served, by route and status code.',
          labelNames: ['route', 'code'] as const,
        }),
      ),
  );
  const httpDuration = metric(
    registry,
    'gantry_agent_http_request_duration_seconds',
    () =>
      new Histogram(
        withRegistry({
          name: 'gantry_agent_http_request_duration_seconds',
          help: 'Time to answer HTTP requests, by route.',
          labelNames: ['route'] as const,
          buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1, 5, 10],
        }),
      ),
  );
  const scrapes = metric(
    registry,
    'gantry_agent_scrapes_total',
    () =>
      new Counter(
        withRegistry({
          name: 'gantry_agent_scrapes_total',
          help: 'Requests to the app, by target and result.',
          labelNames: ['target', 'result'] as const,
        }),
      ),
  );
  const cycleDuration = metric(
    registry,
    'gantry_agent_cycle_duration_seconds',
    () =>
      new Histogram(
        withRegistry({
          name: 'gantry_agent_cycle_duration_seconds',
          help: 'Duration of one scrape-and-evaluate cycle.',
          buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5],
        }),
      ),
  );
  const appUp = metric(
    registry,
    'gantry_agent_app_probe_up',
    () =>
      new Gauge(
        withRegistry({
          name: 'gantry_agent_app_probe_up',
          help: 'Whether the app probe is UP (1) or not (0), by probe.',
          labelNames: ['probe'] as const,
        }),
      ),
  );
  const triggerFiring = metric(
    registry,
    'gantry_agent_trigger_firing',
    () =>
      new Gauge(
        withRegistry({
          name: 'gantry_agent_trigger_firing',
          help: 'Whether a rollback trigger fires on this pod.',
          labelNames: ['trigger'] as const,
        }),
      ),
  );
  const fleetPods = metric(
    registry,
    'gantry_agent_fleet_pods',
    () =>
      new Gauge(withRegistry({ name: 'gantry_agent_fleet_pods', help: 'Pods in the fleet view (this one included).' })),
  );
  const fleetIgnored = metric(
    registry,
    'gantry_agent_fleet_ignored_summaries_total',
    () =>
      new Counter(
        withRegistry({
          name: 'gantry_agent_fleet_ignored_summaries_total',
          help: 'Peer summaries ignored because they belong to another service or namespace.',
        }),
      ),
  );
  const fleetErrors = metric(
    registry,
    'gantry_agent_fleet_errors_total',
    () =>
      new Counter(
        withRegistry({
          name: 'gantry_agent_fleet_errors_total',
          help: 'Failed peer lookups, summary fetches and Kafka publishes.',
        }),
      ),
  );
  const eventsSent = metric(
    registry,
    'gantry_agent_events_sent_total',
    () =>
      new Counter(
        withRegistry({
          name: 'gantry_agent_events_sent_total',
          help: 'CloudEvents delivered, by sink.',
          labelNames: ['sink'] as const,
        }),
      ),
  );
  const eventsDropped = metric(
    registry,
    'gantry_agent_events_dropped_total',
    () =>
      new Counter(
        withRegistry({
          name: 'gantry_agent_events_dropped_total',
          help: 'CloudEvents dropped because the buffer was full, by sink.',
          labelNames: ['sink'] as const,
        }),
      ),
  );
  const eventsBuffered = metric(
    registry,
    'gantry_agent_events_buffered',
    () =>
      new Gauge(
        withRegistry({
          name: 'gantry_agent_events_buffered',
          help: 'CloudEvents waiting, by sink.',
          labelNames: ['sink'] as const,
        }),
      ),
  );
  const eventsFailures = metric(
    registry,
    'gantry_agent_events_failures_total',
    () =>
      new Counter(
        withRegistry({
          name: 'gantry_agent_events_failures_total',
          help: 'Failed delivery attempts, by sink.',
          labelNames: ['sink'] as const,
        }),
      ),
  );
  const holdsActive = metric(
    registry,
    'gantry_agent_holds_active',
    () =>
      new Gauge(
        withRegistry({
          name: 'gantry_agent_holds_active',
          help: 'Live manual holds and overrides, by kind.',
          labelNames: ['kind'] as const,
        }),
      ),
  );
  const warmupExcluded = metric(
    registry,
    'gantry_agent_warmup_excluded_requests_total',
    () =>
      new Counter(
        withRegistry({
          name: 'gantry_agent_warmup_excluded_requests_total',
          help: 'App requests left out of the evidence because they fell in a warm-up period.',
        }),
      ),
  );

  const requestCounters = new Map<string, { inc(): void }>();
  const requestTimers = new Map<string, { observe(value: number): void }>();
  const sinks: BufferedSink[] = [];
  const emit = (type: string, data: Record<string, unknown>, subject?: string): void => {
    if (sinks.length === 0) return;
    const event: CloudEvent = cloudEvent(type, source, data, now(), subject);
    for (const sink of sinks) sink.push(event);
  };

  const holds = new HoldStore({
    now,
    logger,
    ...(config.stateDirectory === undefined ? {} : { stateDirectory: config.stateDirectory }),
    onAudit: (entry) => emit('dev.gantry.agent.audit', { ...entry }, entry.action),
  });
  // The fleet is this pod's service in this pod's namespace: the Kafka topic (and a careless peer list) carries
  // every service of the cluster, and comparing against them or keeping their history would be wrong and costly.
  // Until the first cycle tells us our service, nothing is accepted (summaries come again every interval).
  const fleet = new FleetStore(config.historyMs, config.fleet.staleAfterMs, (summary) => {
    const accepted = selfSummary !== undefined && inSameFleet(summary, selfSummary);
    if (!accepted) fleetIgnored.inc();
    return accepted;
  });
  const evaluator = new Evaluator({
    policy: () => policy,
    holds,
    intervalMs: config.intervalMs,
    staleAfterMs: config.staleAfterMs,
    warmupMs: config.warmupMs,
    onVerdict: (document) =>
      verdicts.inc({
        gate: policy.gates[document.gate] === undefined ? 'unknown' : document.gate,
        verdict: document.verdict,
        reason_code: document.reasonCode,
      }),
    onVerdictChange: (document) => {
      emit(
        'dev.gantry.gate.verdict',
        {
          gate: document.gate,
          runId: document.runId,
          verdict: document.verdict,
          reasonCode: document.reasonCode,
          reason: document.reason,
          metrics: document.metrics,
          pod: podName,
        },
        document.runId,
      );
      logger.info(
        {
          event: 'agent.gate.verdict_changed',
          gate: document.gate,
          runId: document.runId,
          verdict: document.verdict,
          reasonCode: document.reasonCode,
        },
        document.reason,
      );
    },
    onRunRestarted: (run, previous, reason) => {
      const data = {
        runId: run.id,
        generation: run.generation,
        previousStartedAt: new Date(previous.startedAt).toISOString(),
        reason,
      };
      emit('dev.gantry.agent.run.restarted', { ...data, pod: podName }, run.id);
      logger.info({ event: 'agent.run.restarted', ...data }, `run ${run.id} starts afresh: ${reason}`);
    },
  });

  // Watch state.
  let cycleNumber = 0;
  let lastObservation: AppObservation | undefined;
  let previousRaw: Totals | undefined;
  let localTotals: Totals = emptyTotals();
  let lastMetricsAt: number | undefined;
  let lastCycleAt: number | undefined;
  let appStartedAt: number | undefined;
  let warmupUntil = 0;
  let lastShiftAt: number | undefined;
  let consecutiveHealthFailures = 0;
  const restarts: number[] = [];
  const readinessFlips: number[] = [];
  const recent: { at: number; delta: Totals }[] = [];
  const rates: number[] = [];
  const triggers = new Map<TriggerName, TriggerState>(
    TRIGGER_NAMES.map((name) => [name, { since: undefined, firing: false, detail: '' }]),
  );
  let selfSummary: PodSummary | undefined;
  let cycleWaiters: (() => void)[] = [];
  const loadtesterGates = new Map<string, boolean>();

  const probeState = (observation: AppObservation | undefined, probe: 'live' | 'ready'): ProbeState =>
    observation?.[probe].status ?? 'UNKNOWN';

  const markTrafficShift = (at: number = now()): void => {
    lastShiftAt = at;
    warmupUntil = Math.max(warmupUntil, at + config.warmupMs);
    rates.length = 0;
    logger.info(
      { event: 'agent.traffic.shifted', warmupUntil: new Date(warmupUntil).toISOString() },
      'traffic shift: warm-up begins',
    );
  };

  const updateTrigger = (name: TriggerName, condition: boolean, forMs: number, detail: string, at: number): void => {
    const state = triggers.get(name)!;
    const wasFiring = state.firing;
    if (condition) {
      state.since ??= at;
      state.firing = at - state.since >= forMs;
      state.detail = detail;
    } else {
      state.since = undefined;
      state.firing = false;
    }
    triggerFiring.set({ trigger: name }, state.firing ? 1 : 0);
    if (state.firing !== wasFiring) {
      logger.warn(
        { event: state.firing ? 'agent.trigger.fired' : 'agent.trigger.cleared', trigger: name, detail },
        `rollback trigger ${name} ${state.firing ? 'fired' : 'cleared'}`,
      );
      emit('dev.gantry.agent.trigger', { trigger: name, firing: state.firing, detail, pod: podName });
    }
  };

  const absorb = (observation: AppObservation): void => {
    const at = observation.at;
    const previous = lastObservation;
    lastObservation = observation;
    for (const target of ['live', 'ready'] as const) {
      scrapes.inc({ target, result: observation[target].status === 'UNREACHABLE' ? 'error' : 'ok' });
      appUp.set({ probe: target }, observation[target].status === 'UP' ? 1 : 0);
    }
    scrapes.inc({ target: 'info', result: observation.infoError === undefined ? 'ok' : 'error' });
    scrapes.inc({ target: 'metrics', result: observation.metricsError === undefined ? 'ok' : 'error' });
    for (const probe of ['live', 'ready'] as const) {
      const before = probeState(previous, probe);
      const after = observation[probe].status;
      if (previous !== undefined && before !== after) {
        if (probe === 'ready') readinessFlips.push(at);
        logger.info(
          { event: 'agent.health.changed', probe, from: before, to: after, detail: observation[probe].detail },
          `app ${probe} ${before} → ${after}`,
        );
        emit('dev.gantry.health.changed', {
          probe,
          from: before,
          to: after,
          detail: observation[probe].detail ?? null,
          pod: podName,
        });
      }
    }
    // App (re)starts: /q/info's startedAt, or the first successful scrape.
    const started = observation.info?.startedAt;
    if (started !== undefined && started !== appStartedAt) {
      if (appStartedAt !== undefined) restarts.push(at);
      appStartedAt = started;
      warmupUntil = Math.max(warmupUntil, started + config.warmupMs);
    } else if (appStartedAt === undefined && observation.totals !== undefined) {
      appStartedAt = at;
      warmupUntil = Math.max(warmupUntil, at + config.warmupMs);
    }
    if (observation.totals !== undefined) {
      const raw = observation.totals;
      if (previousRaw !== undefined) {
        if (isReset(raw, previousRaw) && (started === undefined || restarts.at(-1) !== at)) restarts.push(at);
        const delta = subtractTotals(raw, previousRaw);
        recent.push({ at, delta });
        const elapsed = Math.max(0.001, (at - (lastMetricsAt ?? at - config.intervalMs)) / 1_000);
        const rate = delta.requests / elapsed;
        // A jump or drop of the request rate by 2× against the recent average is a traffic shift (weight change).
        if (rates.length >= 6 && delta.requests >= 20) {
          const average = rates.reduce((sum, value) => sum + value, 0) / rates.length;
          if (average > 0 && (rate >= 2 * average || rate <= average / 2)) markTrafficShift(at);
        }
        rates.push(rate);
        if (rates.length > 6) rates.shift();
        if (at < warmupUntil) warmupExcluded.inc(delta.requests);
        else localTotals = addTotals(localTotals, delta);
      }
      previousRaw = raw;
      lastMetricsAt = at;
    }
    const t = policy.triggers;
    while (recent.length > 0 && recent[0]!.at <= at - Math.max(t.evaluationWindowMs, 1)) recent.shift();
    let window = emptyTotals();
    for (const entry of recent) window = addTotals(window, entry.delta);
    const errorRate = window.requests > 0 ? window.errors / window.requests : 0;
    updateTrigger(
      'error-rate',
      window.requests >= t.minSamples && errorRate > t.errorRate,
      t.errorRateForMs,
      `error rate ${(errorRate * 100).toFixed(2)}% > ${(t.errorRate * 100).toFixed(2)}% for ${Math.round(t.errorRateForMs / 1_000)}s`,
      at,
    );
    const p95 = histogramQuantile(window, 0.95);
    updateTrigger(
      'latency',
      window.requests >= t.minSamples && p95 !== undefined && p95 * 1_000 > t.p95Ms,
      t.latencyForMs,
      `p95 ${Math.round((p95 ?? 0) * 1_000)}ms > ${t.p95Ms}ms for ${Math.round(t.latencyForMs / 1_000)}s`,
      at,
    );
    const healthy = observation.live.status === 'UP' && observation.ready.status === 'UP';
    consecutiveHealthFailures = healthy ? 0 : consecutiveHealthFailures + 1;
    while (readinessFlips.length > 0 && readinessFlips[0]! <= at - t.restartWindowMs) readinessFlips.shift();
    const flapping = readinessFlips.length >= 2 * t.restarts;
    updateTrigger(
      'health',
      consecutiveHealthFailures >= t.healthFailures || flapping,
      0,
      flapping && consecutiveHealthFailures < t.healthFailures
        ? `readiness flapped ${readinessFlips.length} times in ${Math.round(t.restartWindowMs / 1_000)}s`
        : `${consecutiveHealthFailures} consecutive failed health checks (${observation.ready.detail ?? observation.live.detail ?? 'DOWN'})`,
      at,
    );
    while (restarts.length > 0 && restarts[0]! <= at - t.restartWindowMs) restarts.shift();
    updateTrigger(
      'crashloop',
      restarts.length >= t.restarts,
      0,
      `app restarted ${restarts.length} times in ${Math.round(t.restartWindowMs / 1_000)}s`,
      at,
    );
    const failed = observation.info?.schema?.failed ?? [];
    const hadFailed = (previous?.info?.schema?.failed.length ?? 0) > 0;
    if (failed.length > 0 && !hadFailed)
      emit('dev.gantry.migration.failed', {
        pod: podName,
        failed: [...failed],
        schema: observation.info?.schema?.current ?? null,
      });
    updateTrigger(
      'migration',
      failed.length > 0,
      0,
      failed.length > 0 ? `migration ${failed[0]!.version} failed (${failed[0]!.description})` : '',
      at,
    );

    const info = observation.info;
    selfSummary = {
      schemaVersion: 1,
      pod: podName,
      namespace: config.identity.namespace,
      podTemplateHash: config.identity.podTemplateHash,
      version: config.identity.version ?? info?.version,
      service: config.identity.service ?? info?.service,
      imageDigest: config.identity.imageDigest,
      agentStartedAt,
      appStartedAt,
      at,
      live: observation.live.status,
      ready: observation.ready.status,
      consecutiveHealthFailures,
      totals: localTotals,
      triggers: TRIGGER_NAMES.map((name): TriggerStatus => {
        const state = triggers.get(name)!;
        return { name, firing: state.firing, since: state.since, detail: state.firing ? state.detail : '' };
      }),
      schema: info?.schema ?? selfSummary?.schema ?? null,
      restarts: restarts.length,
    };
    fleet.update(selfSummary, at, true);
    fleetPods.set(fleet.size);
  };

  const runCycle = async (): Promise<void> => {
    const started = performance.now();
    const observation = await observeApp(httpClient, config.app, now);
    try {
      absorb(observation);
    } catch (error) {
      logger.error(
        { event: 'agent.cycle.failed', err: String((error as Error)?.stack ?? error) },
        'watch cycle failed',
      );
    }
    holds.expire();
    const live = holds.list();
    holdsActive.set({ kind: 'hold' }, live.filter((hold: Hold) => hold.kind === 'hold').length);
    holdsActive.set({ kind: 'override' }, live.filter((hold: Hold) => hold.kind === 'override').length);
    cycleNumber += 1;
    lastCycleAt = now();
    cycleDuration.observe((performance.now() - started) / 1_000);
    for (const resolve of cycleWaiters.splice(0)) resolve();
  };

  const state = (): EvaluationState => {
    const at = now();
    const pods = fleet.views(at);
    return {
      now: at,
      cycle: cycleNumber,
      dataVersion: fleet.version + holds.version + policyVersion,
      self: pods.find((pod) => pod.isSelf),
      pods,
      metricsAgeMs: lastMetricsAt === undefined ? undefined : at - lastMetricsAt,
      lastShiftAt,
    };
  };

  const nextCycle = (timeoutMs: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(
        () => {
          cycleWaiters = cycleWaiters.filter((waiter) => waiter !== done);
          resolve();
        },
        Math.max(0, timeoutMs),
      );
      timer.unref();
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      cycleWaiters.push(done);
    });

  const versionDocument = (): Record<string, unknown> => {
    const info = lastObservation?.info;
    const schema = info?.schema;
    return {
      service: config.identity.service ?? info?.service ?? null,
      version: config.identity.version ?? info?.version ?? null,
      commit: info?.commit ?? null,
      imageDigest: config.identity.imageDigest ?? null,
      podTemplateHash: config.identity.podTemplateHash ?? null,
      pod: podName,
      namespace: config.identity.namespace ?? null,
      startedAt: appStartedAt === undefined ? null : new Date(appStartedAt).toISOString(),
      agentStartedAt: new Date(agentStartedAt).toISOString(),
      agentVersion: AGENT_VERSION,
      configHash: policyHash(policy),
      flagsHash: info?.flagsHash ?? null,
      schema:
        schema === undefined
          ? null
          : {
              current: schema.current,
              appSupports: schema.supports,
              phase: schema.phase,
              pending: schema.pending,
              failed: schema.failed,
              lastContract: schema.lastContract,
            },
    };
  };

  const context = {
    config,
    logger,
    evaluator,
    holds,
    now,
    policy: () => policy,
    state,
    nextCycle,
    summary: () => (selfSummary === undefined ? undefined : summaryToJson(selfSummary)),
    versionDocument,
    liveness: () => {
      const at = now();
      const stalled =
        lastCycleAt !== undefined && at - lastCycleAt > Math.max(3 * config.intervalMs, 30_000) + config.app.timeoutMs;
      return {
        ok: !stalled,
        body: {
          status: stalled ? 'DOWN' : 'UP',
          lastCycleAt: lastCycleAt === undefined ? null : new Date(lastCycleAt).toISOString(),
          app: probeState(lastObservation, 'live'),
        },
      };
    },
    readiness: () => {
      const ready = lastMetricsAt !== undefined && probeState(lastObservation, 'ready') === 'UP';
      return {
        ok: ready,
        body: {
          status: ready ? 'UP' : 'DOWN',
          app: probeState(lastObservation, 'ready'),
          metrics: lastMetricsAt === undefined ? 'not scraped yet' : 'ok',
        },
      };
    },
    health: () => {
      const at = now();
      const live = probeState(lastObservation, 'live');
      const ready = probeState(lastObservation, 'ready');
      const stale = lastMetricsAt === undefined || at - lastMetricsAt > config.staleAfterMs;
      const firingNames = TRIGGER_NAMES.filter((name) => triggers.get(name)!.firing);
      const status: 'pass' | 'warn' | 'fail' =
        live !== 'UP' || ready !== 'UP' ? 'fail' : stale || firingNames.length > 0 ? 'warn' : 'pass';
      const time = new Date(at).toISOString();
      return {
        status,
        body: {
          status,
          version: versionDocument()['version'],
          serviceId: podName,
          checks: {
            'app:liveness': [{ status: live === 'UP' ? 'pass' : 'fail', observedValue: live, time }],
            'app:readiness': [{ status: ready === 'UP' ? 'pass' : 'fail', observedValue: ready, time }],
            'app:metrics': [
              {
                status: stale ? 'warn' : 'pass',
                observedValue: lastMetricsAt === undefined ? null : Math.round((at - lastMetricsAt) / 1_000),
                observedUnit: 's',
                time,
              },
            ],
            'rollback:triggers': [
              {
                status: firingNames.length > 0 ? 'warn' : 'pass',
                observedValue: firingNames.join(',') || 'none',
                time,
              },
            ],
          },
        },
      };
    },
    metricsText: async () => ({ contentType: registry.contentType, text: await registry.metrics() }),
    policyDocument: () => {
      const at = now();
      const { calendar, ...rest } = policy;
      return {
        policyHash: policyHash(policy),
        policy: rest,
        upcomingWindows: calendar.occurrences(at, at + 30 * 86_400_000).map((item) => ({
          ...item,
          start: new Date(item.start).toISOString(),
          end: new Date(item.end).toISOString(),
        })),
      };
    },
    recordRequest: (route: string, status: number, seconds: number) => {
      // Label children are cached: both label sets are small and bounded (routes and status codes).
      const key = `${route} ${status}`;
      let counter = requestCounters.get(key);
      if (counter === undefined) {
        counter = httpRequests.labels(route, String(status));
        requestCounters.set(key, counter);
      }
      counter.inc();
      let timer = requestTimers.get(route);
      if (timer === undefined) {
        timer = httpDuration.labels(route);
        requestTimers.set(route, timer);
      }
      timer.observe(seconds);
    },
    flaggerEvent: (runId: string, payload: FlaggerPayload) => {
      const run = evaluator.run(runId, now());
      run.phase = payload.phase ?? run.phase;
      const message = payload.metadata['eventMessage'] ?? '';
      if (payload.phase === 'TrafficIncrease' || /weight|advance/i.test(message)) markTrafficShift();
      if (payload.phase === 'Succeeded' || payload.phase === 'Failed' || payload.phase === 'Terminated') {
        evaluator.closeRun(runId, now(), payload.phase);
        emit(
          'dev.gantry.agent.run.closed',
          { runId, phase: payload.phase, name: payload.name, namespace: payload.namespace },
          runId,
        );
      }
    },
    loadtesterGate: (
      action: 'check' | 'open' | 'close',
      kind: 'gate' | 'rollback',
      key: string,
      actor: string,
    ): boolean => {
      const mapKey = `${kind}:${key}`;
      if (action === 'check') return loadtesterGates.get(mapKey) === true;
      loadtesterGates.set(mapKey, action === 'open');
      holds.audit(`${kind}.${action === 'open' ? 'opened' : 'closed'}`, actor, { key });
      return action === 'open';
    },
  };
  const handler = createRequestHandler(context);

  // Lifecycle.
  let server: Server | undefined;
  let started = false;
  let closed = false;
  let loopTimer: NodeJS.Timeout | undefined;
  let fleetTimer: NodeJS.Timeout | undefined;
  let heartbeatTimer: NodeJS.Timeout | undefined;
  let cycleRunning: Promise<void> | undefined;
  let kafka: KafkaConnection | undefined;
  let poller: PeerPoller | undefined;

  const cycle = async (): Promise<void> => {
    if (cycleRunning !== undefined) return cycleRunning;
    cycleRunning = runCycle().finally(() => {
      cycleRunning = undefined;
    });
    return cycleRunning;
  };

  const schedule = (): void => {
    if (closed) return;
    loopTimer = setTimeout(() => {
      void cycle().finally(schedule);
    }, config.intervalMs);
    loopTimer.unref();
  };

  const fleetRound = async (): Promise<void> => {
    const tasks: Promise<unknown>[] = [];
    if (poller !== undefined) tasks.push(poller.poll());
    if (kafka !== undefined && config.fleet.kafkaTopic !== undefined && selfSummary !== undefined) {
      const message = { key: podName, value: JSON.stringify(summaryToJson(selfSummary)) };
      tasks.push(
        kafka.send(config.fleet.kafkaTopic, [message]).catch((error: unknown) => {
          fleetErrors.inc();
          logger.debug(
            { event: 'agent.fleet.publish_failed', err: String((error as Error)?.message ?? error) },
            'fleet publish failed',
          );
        }),
      );
    }
    await Promise.all(tasks);
    fleetPods.set(fleet.views(now()).length);
  };

  const scheduleFleet = (): void => {
    if (closed) return;
    fleetTimer = setTimeout(() => {
      void fleetRound().finally(scheduleFleet);
    }, config.fleet.intervalMs);
    fleetTimer.unref();
  };

  const heartbeat = (): void => {
    emit('dev.gantry.agent.heartbeat', {
      pod: podName,
      version: selfSummary?.version ?? null,
      podTemplateHash: config.identity.podTemplateHash ?? null,
      live: probeState(lastObservation, 'live'),
      ready: probeState(lastObservation, 'ready'),
      health: context.health().status,
      requests: localTotals.requests,
      errors: localTotals.errors,
    });
  };

  const agent: Agent = {
    config,
    handler,
    holds,
    async start() {
      if (started) return;
      started = true;
      closed = false;
      if (
        config.kafka !== undefined &&
        (config.fleet.kafkaTopic !== undefined || config.events.kafkaTopic !== undefined)
      ) {
        kafka = new KafkaConnection(config.kafka.brokers, config.kafka.clientId, logger);
      }
      const counters = (sink: string) => ({
        sent: (count: number) => eventsSent.inc({ sink }, count),
        dropped: (count: number) => eventsDropped.inc({ sink }, count),
        buffered: (size: number) => eventsBuffered.set({ sink }, size),
        failed: () => eventsFailures.inc({ sink }),
      });
      if (config.events.url !== undefined) {
        sinks.push(
          new BufferedSink({
            name: 'http',
            deliver: httpDeliver(httpClient, config.events.url, config.events.timeoutMs),
            maxBuffer: config.events.maxBuffer,
            retryMinMs: config.events.retryMinMs,
            retryMaxMs: config.events.retryMaxMs,
            logger,
            counters: counters('http'),
          }),
        );
      }
      if (kafka !== undefined && config.events.kafkaTopic !== undefined) {
        const topic = config.events.kafkaTopic;
        const connection = kafka;
        sinks.push(
          new BufferedSink({
            name: 'kafka',
            deliver: (events) =>
              connection.send(
                topic,
                events.map((event) => ({
                  key: podName,
                  value: JSON.stringify(event),
                  headers: {
                    'content-type': 'application/cloudevents+json; charset=utf-8',
                    ce_type: event.type,
                    ce_id: event.id,
                  },
                })),
              ),
            maxBuffer: config.events.maxBuffer,
            retryMinMs: config.events.retryMinMs,
            retryMaxMs: config.events.retryMaxMs,
            logger,
            counters: counters('kafka'),
          }),
        );
      }
      if (config.fleet.peers.length > 0 || config.fleet.dns !== undefined) {
        poller = new PeerPoller(
          {
            peers: config.fleet.peers,
            dns: config.fleet.dns,
            resolver,
            http: httpClient,
            timeoutMs: config.fleet.timeoutMs,
            token: config.auth.token,
            selfPod: podName,
            logger,
            now,
            onError: () => fleetErrors.inc(),
          },
          fleet,
        );
      }
      if (kafka !== undefined && config.fleet.kafkaTopic !== undefined) {
        const topic = config.fleet.kafkaTopic;
        // Make sure the topic exists, then subscribe; on failure retry with backoff (a broker that is down at start
        // must neither stop the agent nor leave it deaf for good).
        const connection = kafka;
        const subscribe = async (attempt: number): Promise<void> => {
          try {
            await connection.ensureTopic(topic);
            await connection.subscribe(topic, `gantry-agent-${podName}`, (_key, value) => {
              try {
                const summary = summaryFromJson(JSON.parse(value));
                if (summary !== undefined && summary.pod !== podName) fleet.update(summary, now());
              } catch {
                fleetErrors.inc();
              }
            });
          } catch (error) {
            fleetErrors.inc();
            if (closed) return;
            const delay = Math.min(30_000, 500 * 2 ** attempt);
            logger.warn(
              {
                event: 'agent.fleet.subscribe_failed',
                attempt,
                retryInMs: delay,
                err: String((error as Error)?.message ?? error),
              },
              'cannot consume the fleet topic yet',
            );
            await new Promise((resolve) => setTimeout(resolve, delay).unref());
            if (!closed) await subscribe(attempt + 1);
          }
        };
        void subscribe(0);
      }
      if (config.listen !== false) {
        const listen = config.listen;
        server = process
          .getBuiltinModule('node:http')
          .createServer(
            { requestTimeout: 15_000, headersTimeout: 10_000, keepAliveTimeout: 5_000, maxHeaderSize: 16_384 },
            handler,
          );
        server.on('clientError', (_error, socket) => {
          if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
          else socket.destroy();
        });
        await new Promise<void>((resolve, reject) => {
          server!.once('error', (error) =>
            reject(
              new AgentError(
                'GANTRY_AGENT_LISTEN',
                `Cannot listen on ${listen.host}:${listen.port}: ${error.message}`,
                { cause: error },
              ),
            ),
          );
          server!.listen(listen.port, listen.host, () => resolve());
        });
      }
      logger.info(
        {
          event: 'agent.started',
          pod: podName,
          address: server === undefined ? null : agent.url(),
          app: config.app.url,
          auth: config.auth.token === undefined ? 'none' : 'bearer',
        },
        'gantry-agent started',
      );
      if (config.auth.token === undefined)
        logger.warn(
          { event: 'agent.auth.disabled' },
          'no token configured: gate, hold and policy endpoints are open; restrict them with a NetworkPolicy',
        );
      await cycle();
      schedule();
      if (poller !== undefined || kafka !== undefined) {
        await fleetRound();
        scheduleFleet();
      }
      if (sinks.length > 0) {
        heartbeat();
        heartbeatTimer = setInterval(heartbeat, config.events.heartbeatMs);
        heartbeatTimer.unref();
      }
    },
    async close() {
      if (closed || !started) {
        closed = true;
        return;
      }
      closed = true;
      started = false;
      clearTimeout(loopTimer);
      clearTimeout(fleetTimer);
      clearInterval(heartbeatTimer);
      await cycleRunning?.catch(() => undefined);
      await Promise.all(sinks.map((sink) => sink.drain(2_000)));
      for (const sink of sinks.splice(0)) sink.close();
      await kafka?.close();
      kafka = undefined;
      if (server !== undefined) {
        const closing = server;
        server = undefined;
        await new Promise<void>((resolve) => {
          closing.close(() => resolve());
          closing.closeIdleConnections();
          setTimeout(() => closing.closeAllConnections(), 2_000).unref();
        });
      }
      for (const resolve of cycleWaiters.splice(0)) resolve();
      logger.info({ event: 'agent.stopped' }, 'gantry-agent stopped');
    },
    address() {
      const address = server?.address() as AddressInfo | null | undefined;
      return address === undefined || address === null ? undefined : { host: address.address, port: address.port };
    },
    url() {
      const address = agent.address();
      if (address === undefined)
        throw new AgentError('GANTRY_AGENT_LISTEN', 'The agent is not listening (call start() with `listen` set)');
      const host =
        address.host === '0.0.0.0' || address.host === '::'
          ? '127.0.0.1'
          : address.host.includes(':')
            ? `[${address.host}]`
            : address.host;
      return `http://${host}:${address.port}`;
    },
    cycle,
    syncFleet: () => fleetRound(),
    async evaluate(parameters) {
      const query = parseGateQuery([parameters], { gate: 'slo', maxWaitMs: config.limits.maxWaitMs });
      const at = now();
      if ('error' in query)
        return evaluator.errorDocument(
          parameters['gate'] ?? 'unknown',
          parameters['runId'] ?? 'default',
          at,
          'BAD_REQUEST',
          query.error,
        );
      const runId = query.runId ?? (query.expectHash === undefined ? 'default' : `hash:${query.expectHash}`);
      if (policy.gates[query.gate] === undefined)
        return evaluator.errorDocument(
          query.gate,
          runId,
          at,
          'BAD_REQUEST',
          `unknown gate ${JSON.stringify(query.gate)}`,
        );
      return evaluator.evaluate(query, state(), runId);
    },
    summary: () => (selfSummary === undefined ? undefined : summaryToJson(selfSummary)),
    markTrafficShift,
    updatePolicy(next, actor = 'api') {
      const resolved = resolvePolicy(next);
      const before = policyHash(policy);
      policy = resolved;
      policyVersion += 1;
      holds.audit('policy.updated', actor, { from: before, to: policyHash(resolved) });
    },
    policy: () => policy,
  };
  return agent;
}
