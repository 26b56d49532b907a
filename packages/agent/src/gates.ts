// The evaluation engine: named gates combine checks (slo, compare, triggers, calendars, holds, schema…) into one
// verdict document (reference/gates.md §7.2). Evaluation is synchronous and works on data the background loops
// already gathered, so a gate request costs microseconds; results are cached per (run, gate, parameters, scrape
// cycle), so controller retries see the same answer, and SLO breaches need `failAfter` cycles (hysteresis).
import { nodeCrypto } from './builtins.ts';
import { describeOccurrence } from './calendar.ts';
import { formatDuration, parseDurationMs } from './duration.ts';
import type { HoldStore } from './holds.ts';
import type { TotalsHistory } from './history.ts';
import type { GateCheckName, ResolvedPolicy } from './options.ts';
import {
  errorRateInterval,
  latencyInterval,
  samplesForErrorRateGap,
  tailShift,
  wilsonLowerBound,
  type Interval,
} from './stats.ts';
import { fleetServiceName, type PodSummary, type TriggerName } from './summary.ts';
import { addTotals, emptyTotals, histogramQuantile, type Totals } from './totals.ts';
import { compareVersions, schemaIncompatibility } from './versions.ts';

/** The five verdicts (jsonPath `{$.verdict}` for Argo). */
export type Verdict = 'pass' | 'fail' | 'pending' | 'inconclusive' | 'error';

/** Machine-readable reasons. */
export type ReasonCode =
  | 'OK'
  | 'SLO_ERROR_RATE'
  | 'SLO_LATENCY'
  | 'COMPARE_ERROR_RATE'
  | 'COMPARE_LATENCY'
  | 'INSUFFICIENT_DATA'
  | 'ENVIRONMENTAL'
  | 'TARGET_MISMATCH'
  | 'FREEZE_WINDOW'
  | 'FREEZE_AHEAD'
  | 'MAINTENANCE_WINDOW'
  | 'MANUAL_HOLD'
  | 'SCHEMA_INCOMPATIBLE'
  | 'ROLLBACK_UNSAFE'
  | 'MIGRATION_FAILED'
  | 'FLEET_NOT_READY'
  | 'HEALTH_FAILING'
  | 'CRASHLOOP'
  | 'BAD_REQUEST'
  | 'UNAUTHORIZED'
  | 'AGENT_ERROR';

/** Parameters of one gate request (query string, JSON body or Flagger metadata). */
export interface GateQuery {
  readonly gate: string;
  readonly runId: string | undefined;
  readonly expectHash: string | undefined;
  readonly expectVersion: string | undefined;
  readonly expectDigest: string | undefined;
  readonly baselineHash: string | undefined;
  readonly windowMs: number | undefined;
  readonly minSamples: number | undefined;
  readonly maxErrorRate: number | undefined;
  readonly maxP99Ms: number | undefined;
  readonly insufficient: 'pending' | 'pass' | 'fail' | undefined;
  readonly scope: 'version' | 'pod';
  readonly waitMs: number;
  readonly tenant: string | undefined;
  readonly expectPods: number | undefined;
  readonly durationMs: number | undefined;
}

/** A pod as the evaluator sees it: its latest summary and its totals history. */
export interface PodView {
  readonly summary: PodSummary;
  readonly history: TotalsHistory;
  readonly isSelf: boolean;
}

/** Everything an evaluation reads; supplied by the agent for each request. */
export interface EvaluationState {
  readonly now: number;
  /** Own scrape cycles so far (hysteresis counts these). */
  readonly cycle: number;
  /** Changes whenever the data changes (own cycle or a peer summary): the verdict cache key. */
  readonly dataVersion: number;
  readonly self: PodView | undefined;
  readonly pods: readonly PodView[];
  readonly metricsAgeMs: number | undefined;
  readonly lastShiftAt: number | undefined;
}

/** Outcome of one check inside a gate. */
export interface CheckOutcome {
  readonly check: GateCheckName | 'identity';
  readonly verdict: Verdict;
  readonly reasonCode: ReasonCode;
  readonly reason: string;
  readonly etaSeconds?: number;
}

/** The verdict document every gate endpoint returns. */
export interface VerdictDocument {
  readonly verdict: Verdict;
  readonly pass: boolean;
  readonly reasonCode: ReasonCode;
  readonly reason: string;
  readonly gate: string;
  readonly runId: string;
  readonly evaluatedAt: string;
  readonly ageSeconds: number;
  readonly policyHash: string;
  readonly target: {
    readonly expected: Readonly<Record<string, string>>;
    readonly actual: Readonly<Record<string, string>>;
    readonly matches: boolean;
  };
  readonly fleet: {
    readonly scope: 'version' | 'pod';
    readonly podsExpected: number | null;
    readonly podsReporting: number;
    readonly podsPassing: number;
    readonly baselinePods: number;
  };
  readonly evidence: {
    readonly samples: number;
    readonly minSamples: number;
    readonly windowSeconds: number;
    readonly sinceTrafficShift: number | null;
  };
  readonly metrics: { readonly errorRate: number | null; readonly p99Ms: number | null; readonly rps: number } | null;
  readonly baseline: {
    readonly podTemplateHash: string | null;
    readonly errorRate: number | null;
    readonly p99Ms: number | null;
    readonly samples: number;
  } | null;
  readonly test: Readonly<Record<string, number | string | null>> | null;
  readonly checks: readonly CheckOutcome[];
  readonly next: { readonly retryAfterSeconds: number; readonly etaSeconds: number | null };
}

/**
 * Per-run memory: start, lifecycle, verdict history and sequential-test state. A run id names a rollout only while
 * it lasts: the next evaluation starts a fresh run (a new `generation`) once the run was closed, sat idle longer
 * than `policy.runIdleMs`, or none of its canary pods is among the canary pods any more (see {@link Evaluator}).
 */
export interface RunRecord {
  readonly id: string;
  /** 1 for the first run under this id, +1 each time a new rollout reused the id. */
  readonly generation: number;
  readonly createdAt: number;
  startedAt: number;
  lastSeenAt: number;
  phase: string | undefined;
  closedAt: number | undefined;
  /** Names of the canary pods evaluated in this run. */
  readonly canaryPods: Set<string>;
  /** `schema.lastContract` when the run first saw the app's schema (`undefined` until then). */
  lastContractAtStart: string | null | undefined;
  readonly history: {
    at: string;
    gate: string;
    verdict: Verdict;
    reasonCode: ReasonCode;
    reason: string;
    test: VerdictDocument['test'];
    metrics: VerdictDocument['metrics'];
  }[];
  readonly intervals: Map<string, { lower: number; upper: number }>;
  readonly streaks: Map<string, { cycle: number; count: number }>;
  readonly cache: Map<string, { cycle: number; document: VerdictDocument; at: number }>;
}

const ORDER: readonly Verdict[] = ['pass', 'pending', 'inconclusive', 'fail', 'error'];
const MAX_RUNS = 256;
const MAX_HISTORY = 200;

function worst(outcomes: readonly CheckOutcome[]): CheckOutcome | undefined {
  let result: CheckOutcome | undefined;
  for (const outcome of outcomes) {
    if (result === undefined || ORDER.indexOf(outcome.verdict) > ORDER.indexOf(result.verdict)) result = outcome;
  }
  return result;
}

function percent(value: number): string {
  return `${(value * 100).toFixed(value < 0.001 && value > 0 ? 3 : 2)}%`;
}

function ms(seconds: number | undefined): string {
  return seconds === undefined ? 'n/a' : `${Math.round(seconds * 1_000)}ms`;
}

const policyHashes = new WeakMap<ResolvedPolicy, string>();

/**
 * A stable hash of the effective policy, echoed in every verdict (computed once per policy object).
 * @example policyHash(agent.policy()) // 'a41c09f3d2e1'
 */
export function policyHash(policy: ResolvedPolicy): string {
  let hash = policyHashes.get(policy);
  if (hash === undefined) {
    const { calendar: _calendar, ...rest } = policy;
    hash = nodeCrypto().createHash('sha256').update(JSON.stringify(rest)).digest('hex').slice(0, 12);
    policyHashes.set(policy, hash);
  }
  return hash;
}

interface GroupStats {
  readonly pods: readonly PodView[];
  readonly totals: Totals;
  readonly elapsedMs: number;
}

/** Options of the evaluator. */
export interface EvaluatorOptions {
  readonly policy: () => ResolvedPolicy;
  readonly holds: HoldStore;
  readonly intervalMs: number;
  readonly staleAfterMs: number;
  readonly warmupMs: number;
  /** Called when a (run, gate) verdict changes. */
  readonly onVerdictChange?: (document: VerdictDocument) => void;
  /** Called for every freshly computed verdict. */
  readonly onVerdict?: (document: VerdictDocument) => void;
  /** Called when an evaluation found its run id belonging to an earlier rollout and started a fresh run. */
  readonly onRunRestarted?: (run: RunRecord, previous: RunRecord, reason: string) => void;
}

const MAX_RUN_CANARY_PODS = 1_000;

/** Evaluates gates; keeps runs. */
export class Evaluator {
  readonly #options: EvaluatorOptions;
  readonly #runs = new Map<string, RunRecord>();

  constructor(options: EvaluatorOptions) {
    this.#options = options;
  }

  /** The run with this id, created (started now) when new. */
  run(id: string, now: number, generation = 1): RunRecord {
    let run = this.#runs.get(id);
    if (run === undefined) {
      run = {
        id,
        generation,
        createdAt: now,
        startedAt: now,
        lastSeenAt: now,
        phase: undefined,
        closedAt: undefined,
        canaryPods: new Set(),
        lastContractAtStart: undefined,
        history: [],
        intervals: new Map(),
        streaks: new Map(),
        cache: new Map(),
      };
      this.#runs.set(id, run);
      if (this.#runs.size > MAX_RUNS) {
        const oldest = [...this.#runs.values()].sort((a, b) => a.lastSeenAt - b.lastSeenAt)[0];
        if (oldest !== undefined) this.#runs.delete(oldest.id);
      }
    }
    run.lastSeenAt = now;
    return run;
  }

  /** A run by id, if known. */
  findRun(id: string): RunRecord | undefined {
    return this.#runs.get(id);
  }

  /** All runs, most recent first. */
  listRuns(): RunRecord[] {
    return [...this.#runs.values()].sort((a, b) => b.lastSeenAt - a.lastSeenAt);
  }

  /** Closes a run (Flagger post-rollout / terminal event). */
  closeRun(id: string, now: number, phase: string | undefined): void {
    const run = this.#runs.get(id);
    if (run === undefined) return;
    run.closedAt = now;
    run.phase = phase;
  }

  /**
   * Evaluates a gate for a run. Never throws: problems become `error`/`AGENT_ERROR` documents.
   */
  evaluate(query: GateQuery, state: EvaluationState, runId: string): VerdictDocument {
    const policy = this.#options.policy();
    const canaryPods = canaryPodNames(query, state);
    const existing = this.#runs.get(runId);
    const ended = existing === undefined ? undefined : endedBecause(existing, canaryPods, state.now, policy);
    if (existing !== undefined && ended !== undefined) {
      // The id (by default `hash:<expectHash>`) came back for another rollout: nothing of the old run (evidence
      // start, latched intervals, hysteresis streaks, cached verdicts) may decide the new one.
      this.#runs.delete(runId);
      const fresh = this.run(runId, state.now, existing.generation + 1);
      this.#options.onRunRestarted?.(fresh, existing, ended);
    }
    const run = this.run(runId, state.now);
    for (const name of canaryPods) if (run.canaryPods.size < MAX_RUN_CANARY_PODS) run.canaryPods.add(name);
    const seenSchema = state.self?.summary.schema;
    if (run.lastContractAtStart === undefined && seenSchema) run.lastContractAtStart = seenSchema.lastContract;
    const key = JSON.stringify([
      query.gate,
      query.expectHash,
      query.expectVersion,
      query.expectDigest,
      query.baselineHash,
      query.windowMs,
      query.minSamples,
      query.maxErrorRate,
      query.maxP99Ms,
      query.insufficient,
      query.scope,
      query.tenant,
      query.expectPods,
      query.durationMs,
    ]);
    const cached = run.cache.get(key);
    if (cached !== undefined && cached.cycle === state.dataVersion) {
      return { ...cached.document, ageSeconds: Math.max(0, Math.round((state.now - cached.at) / 1_000)) };
    }
    let document: VerdictDocument;
    try {
      document = this.#compute(query, state, run, policy);
    } catch (error) {
      document = this.errorDocument(
        query.gate,
        runId,
        state.now,
        'AGENT_ERROR',
        `evaluation failed: ${String((error as Error)?.message ?? error)}`,
        policy,
      );
    }
    run.cache.set(key, { cycle: state.dataVersion, document, at: state.now });
    if (run.cache.size > 64) run.cache.delete(run.cache.keys().next().value!);
    const previous = [...run.history].reverse().find((entry) => entry.gate === query.gate);
    run.history.push({
      at: document.evaluatedAt,
      gate: query.gate,
      verdict: document.verdict,
      reasonCode: document.reasonCode,
      reason: document.reason,
      test: document.test,
      metrics: document.metrics,
    });
    if (run.history.length > MAX_HISTORY) run.history.splice(0, run.history.length - MAX_HISTORY);
    this.#options.onVerdict?.(document);
    if (
      previous === undefined ||
      previous.verdict !== document.verdict ||
      previous.reasonCode !== document.reasonCode
    ) {
      this.#options.onVerdictChange?.(document);
    }
    return document;
  }

  /** A document for requests that cannot be evaluated (bad input, agent trouble). */
  errorDocument(
    gate: string,
    runId: string,
    now: number,
    reasonCode: ReasonCode,
    reason: string,
    policy: ResolvedPolicy = this.#options.policy(),
  ): VerdictDocument {
    return {
      verdict: 'error',
      pass: false,
      reasonCode,
      reason,
      gate,
      runId,
      evaluatedAt: new Date(now).toISOString(),
      ageSeconds: 0,
      policyHash: policyHash(policy),
      target: { expected: {}, actual: {}, matches: false },
      fleet: { scope: 'pod', podsExpected: null, podsReporting: 0, podsPassing: 0, baselinePods: 0 },
      evidence: { samples: 0, minSamples: 0, windowSeconds: 0, sinceTrafficShift: null },
      metrics: null,
      baseline: null,
      test: null,
      checks: [],
      next: { retryAfterSeconds: Math.ceil(this.#options.intervalMs / 1_000), etaSeconds: null },
    };
  }

  #compute(query: GateQuery, state: EvaluationState, run: RunRecord, policy: ResolvedPolicy): VerdictDocument {
    const definition = policy.gates[query.gate]!;
    const self = state.self;
    const now = state.now;
    if (self === undefined || state.metricsAgeMs === undefined || state.metricsAgeMs > this.#options.staleAfterMs) {
      const why =
        self === undefined || state.metricsAgeMs === undefined
          ? 'no successful scrape of the app metrics yet'
          : `app metrics are ${formatDuration(state.metricsAgeMs)} old`;
      return this.errorDocument(query.gate, run.id, now, 'AGENT_ERROR', why, policy);
    }
    const slo = {
      ...definition.slo,
      ...(query.maxErrorRate === undefined ? {} : { maxErrorRate: query.maxErrorRate }),
      ...(query.maxP99Ms === undefined ? {} : { maxLatencyMs: query.maxP99Ms, latencyQuantile: 0.99 }),
      ...(query.minSamples === undefined ? {} : { minSamples: query.minSamples }),
      ...(query.windowMs === undefined ? {} : { windowMs: query.windowMs }),
    };
    const compare = {
      ...definition.compare,
      ...(query.minSamples === undefined ? {} : { minSamples: query.minSamples }),
    };
    const insufficient = query.insufficient ?? definition.insufficient;
    const canaryHash = query.expectHash ?? self.summary.podTemplateHash;
    // Canary and baseline are pods of this service only ("every other hash" must never mean other services).
    const service = fleetServiceName(self.summary.service);
    const servicePods = state.pods.filter((pod) => pod.isSelf || fleetServiceName(pod.summary.service) === service);
    const canaryPods =
      query.scope === 'pod' || canaryHash === undefined
        ? [self]
        : servicePods.filter((pod) => pod.summary.podTemplateHash === canaryHash);
    const baselinePods = servicePods.filter((pod) =>
      query.baselineHash !== undefined
        ? pod.summary.podTemplateHash === query.baselineHash
        : pod.summary.podTemplateHash !== canaryHash && !pod.isSelf,
    );

    const expected: Record<string, string> = {};
    const actual: Record<string, string> = {};
    if (self.summary.podTemplateHash !== undefined) actual['podTemplateHash'] = self.summary.podTemplateHash;
    if (self.summary.version !== undefined) actual['version'] = self.summary.version;
    const mismatches: string[] = [];
    const expectField = (name: string, want: string | undefined, have: string | undefined): void => {
      if (want === undefined) return;
      expected[name] = want;
      if (want !== have) mismatches.push(`${name} ${have ?? 'unknown'} ≠ expected ${want}`);
    };
    expectField('podTemplateHash', query.expectHash, self.summary.podTemplateHash);
    expectField('version', query.expectVersion, self.summary.version);
    expectField('imageDigest', query.expectDigest, self.summary.imageDigest);

    const outcomes: CheckOutcome[] = [];
    let evidence: VerdictDocument['evidence'] = {
      samples: 0,
      minSamples: 0,
      windowSeconds: 0,
      sinceTrafficShift: null,
    };
    let metrics: VerdictDocument['metrics'] = null;
    let baseline: VerdictDocument['baseline'] = null;
    let test: VerdictDocument['test'] = null;

    if (mismatches.length > 0) {
      outcomes.push({
        check: 'identity',
        verdict: 'inconclusive',
        reasonCode: 'TARGET_MISMATCH',
        reason: `answering pod ${self.summary.pod} is not the target: ${mismatches.join(', ')}`,
      });
    } else {
      const group = (pods: readonly PodView[], from: number): GroupStats => {
        let totals = emptyTotals();
        for (const pod of pods)
          totals = addTotals(totals, pod.history.since(from, pod.summary.appStartedAt ?? pod.summary.agentStartedAt));
        return { pods, totals, elapsedMs: Math.max(1, now - from) };
      };
      const describe = (stats: GroupStats): NonNullable<VerdictDocument['metrics']> => {
        const p99 = histogramQuantile(stats.totals, 0.99);
        return {
          errorRate: stats.totals.requests > 0 ? stats.totals.errors / stats.totals.requests : null,
          p99Ms: p99 === undefined ? null : Math.round(p99 * 1_000),
          rps: Math.round((stats.totals.requests / (stats.elapsedMs / 1_000)) * 100) / 100,
        };
      };
      const insufficientOutcome = (
        check: GateCheckName,
        reason: string,
        etaSeconds: number | undefined,
      ): CheckOutcome => ({
        check,
        verdict: insufficient === 'pass' ? 'pass' : insufficient === 'fail' ? 'fail' : 'pending',
        reasonCode: 'INSUFFICIENT_DATA',
        reason,
        ...(etaSeconds === undefined ? {} : { etaSeconds }),
      });

      const runSlo = (): CheckOutcome => {
        const from = Math.max(run.startedAt, now - slo.windowMs);
        const stats = group(canaryPods, from);
        metrics = describe(stats);
        const n = stats.totals.requests;
        evidence = {
          samples: n,
          minSamples: slo.minSamples,
          windowSeconds: Math.round(stats.elapsedMs / 1_000),
          sinceTrafficShift: state.lastShiftAt === undefined ? null : Math.round((now - state.lastShiftAt) / 1_000),
        };
        const streakKey = `slo:${query.gate}`;
        if (n < slo.minSamples) {
          const rate = n / (stats.elapsedMs / 1_000);
          const eta = rate > 0 ? Math.ceil((slo.minSamples - n) / rate) : undefined;
          return insufficientOutcome(
            'slo',
            `n=${n}/${slo.minSamples} at ${rate.toFixed(1)} rps; ETA ${eta === undefined ? 'unknown (no traffic)' : formatDuration(eta * 1_000)}`,
            eta,
          );
        }
        const errorRate = stats.totals.errors / n;
        // Decided on the one-sided lower bound, not the point estimate: 3 errors in 200 requests (1.5 %) do not
        // show a rate above 1 %; 20 in 200 do.
        const errorLower = wilsonLowerBound(stats.totals.errors, n, slo.alpha);
        const level = `${Math.round((1 - slo.alpha) * 1_000) / 10}%`;
        const quantile = histogramQuantile(stats.totals, slo.latencyQuantile);
        const q = `p${Math.round(slo.latencyQuantile * 100)}`;
        const breaches: { code: ReasonCode; text: string }[] = [];
        if (errorLower > slo.maxErrorRate)
          breaches.push({
            code: 'SLO_ERROR_RATE',
            text: `err ${percent(errorRate)} (≥ ${percent(errorLower)} @${level}) > ${percent(slo.maxErrorRate)}`,
          });
        if (quantile !== undefined && quantile * 1_000 > slo.maxLatencyMs) {
          breaches.push({ code: 'SLO_LATENCY', text: `${q} ${ms(quantile)} > ${slo.maxLatencyMs}ms` });
        }
        const summary = `err ${percent(errorRate)} (≥ ${percent(errorLower)} @${level}), ${q} ${ms(quantile)}, n=${n}`;
        if (breaches.length === 0) {
          run.streaks.delete(streakKey);
          return { check: 'slo', verdict: 'pass', reasonCode: 'OK', reason: `${summary} within SLO` };
        }
        // Blame attribution: a baseline that breaches the same way points at the environment, not the canary.
        if (baselinePods.length > 0) {
          const base = group(baselinePods, from);
          baseline = {
            podTemplateHash: query.baselineHash ?? baselinePods[0]!.summary.podTemplateHash ?? null,
            ...pick(describe(base)),
            samples: base.totals.requests,
          };
          if (base.totals.requests >= Math.min(slo.minSamples, 50)) {
            const baseError = base.totals.errors / base.totals.requests;
            const baseQuantile = histogramQuantile(base.totals, slo.latencyQuantile);
            const interval = errorRateInterval(
              { n, x: stats.totals.errors },
              { n: base.totals.requests, x: base.totals.errors },
              compare.alpha,
            );
            const errorsShared =
              breaches.every((b) => b.code !== 'SLO_ERROR_RATE') ||
              (baseError > slo.maxErrorRate && interval.lower <= compare.errorMargin);
            const latencyShared =
              breaches.every((b) => b.code !== 'SLO_LATENCY') ||
              (baseQuantile !== undefined &&
                baseQuantile * 1_000 > slo.maxLatencyMs &&
                latencyInterval(stats.totals, base.totals, compare.alpha).lower <= 0.5 + compare.latencyMargin);
            if (errorsShared && latencyShared) {
              run.streaks.delete(streakKey);
              return {
                check: 'slo',
                verdict: 'inconclusive',
                reasonCode: 'ENVIRONMENTAL',
                reason: `${breaches.map((b) => b.text).join(', ')} but baseline degraded alike (err ${percent(baseError)}, ${q} ${ms(baseQuantile)}): environmental`,
              };
            }
          }
        }
        const streak = run.streaks.get(streakKey) ?? { cycle: -1, count: 0 };
        if (streak.cycle !== state.cycle) {
          streak.count += 1;
          streak.cycle = state.cycle;
        }
        run.streaks.set(streakKey, streak);
        const first = breaches[0]!;
        if (streak.count < policy.failAfter) {
          return {
            check: 'slo',
            verdict: 'pending',
            reasonCode: first.code,
            reason: `${breaches.map((b) => b.text).join(', ')} (breach ${streak.count}/${policy.failAfter} cycles), n=${n}`,
          };
        }
        return {
          check: 'slo',
          verdict: 'fail',
          reasonCode: first.code,
          reason: `${breaches.map((b) => b.text).join(', ')}, n=${n}`,
        };
      };

      const latched = (name: string, interval: Interval): Interval => {
        // Running intersection of the confidence sequence: valid at every look, and verdicts cannot flip back
        // and forth on noise. An empty intersection means the data changed (non-stationary): start over.
        const previous = run.intervals.get(name);
        let lower = interval.lower;
        let upper = interval.upper;
        if (previous !== undefined) {
          lower = Math.max(lower, previous.lower);
          upper = Math.min(upper, previous.upper);
          if (lower > upper) ({ lower, upper } = interval);
        }
        run.intervals.set(name, { lower, upper });
        return { estimate: interval.estimate, lower, upper };
      };

      const runCompare = (): CheckOutcome => {
        const from = run.startedAt;
        const canary = group(canaryPods, from);
        metrics = describe(canary);
        if (baselinePods.length === 0) {
          return {
            check: 'compare',
            verdict: 'pending',
            reasonCode: 'FLEET_NOT_READY',
            reason:
              query.baselineHash === undefined
                ? 'no baseline pods reporting'
                : `no pods with baselineHash ${query.baselineHash} reporting`,
          };
        }
        const base = group(baselinePods, from);
        const nc = canary.totals.requests;
        const nb = base.totals.requests;
        const baseDescription = describe(base);
        baseline = {
          podTemplateHash: query.baselineHash ?? baselinePods[0]!.summary.podTemplateHash ?? null,
          ...pick(baseDescription),
          samples: nb,
        };
        evidence = {
          samples: Math.min(nc, nb),
          minSamples: compare.minSamples,
          windowSeconds: Math.round(canary.elapsedMs / 1_000),
          sinceTrafficShift: state.lastShiftAt === undefined ? null : Math.round((now - state.lastShiftAt) / 1_000),
        };
        if (Math.min(nc, nb) < compare.minSamples) {
          const rate = Math.min(nc / (canary.elapsedMs / 1_000), nb / (base.elapsedMs / 1_000));
          const eta = rate > 0 ? Math.ceil((compare.minSamples - Math.min(nc, nb)) / rate) : undefined;
          return insufficientOutcome(
            'compare',
            `n=${nc}/${nb} (canary/baseline) of ${compare.minSamples} each; ETA ${eta === undefined ? 'unknown (no traffic)' : formatDuration(eta * 1_000)}`,
            eta,
          );
        }
        const errors = latched(
          `errors:${query.gate}`,
          errorRateInterval({ n: nc, x: canary.totals.errors }, { n: nb, x: base.totals.errors }, compare.alpha),
        );
        const latency = latched(`latency:${query.gate}`, latencyInterval(canary.totals, base.totals, compare.alpha));
        const tail = tailShift(canary.totals, base.totals, compare.alpha);
        const pc = canary.totals.errors / nc;
        const pb = base.totals.errors / nb;
        test = {
          method: 'msprt-binomial+mann-whitney+tail',
          alpha: compare.alpha,
          errorDiff: round(errors.estimate),
          errorDiffLower: round(errors.lower),
          errorDiffUpper: round(errors.upper),
          errorMargin: compare.errorMargin,
          probSlower: round(latency.estimate),
          probSlowerLower: round(latency.lower),
          probSlowerUpper: round(latency.upper),
          latencyMargin: compare.latencyMargin,
          tailShift: round(tail.shift),
          tailShiftLower: round(tail.lower),
          tailAtSeconds: tail.at ?? null,
          mde: round((errors.upper - errors.lower) / 2),
        };
        const stats = `err ${percent(pc)} vs baseline ${percent(pb)} (Δ ${pp(errors.lower)}..${pp(errors.upper)} @${Math.round((1 - compare.alpha) * 100)}%), P(slower)=${latency.estimate.toFixed(2)}, n=${nc}/${nb}`;
        const fails: { code: ReasonCode; text: string }[] = [];
        if (errors.lower > compare.errorMargin)
          fails.push({ code: 'COMPARE_ERROR_RATE', text: `canary error rate worse by >${pp(compare.errorMargin)}` });
        if (latency.lower > 0.5 + compare.latencyMargin)
          fails.push({ code: 'COMPARE_LATENCY', text: `canary slower (P(slower) ≥ ${latency.lower.toFixed(2)})` });
        if (tail.lower > compare.tailMargin) {
          fails.push({
            code: 'COMPARE_LATENCY',
            text: `${percent(tail.shift)} of requests moved above ${ms(tail.at)}`,
          });
        }
        if (fails.length > 0)
          return {
            check: 'compare',
            verdict: 'fail',
            reasonCode: fails[0]!.code,
            reason: `${fails.map((f) => f.text).join('; ')}: ${stats}`,
          };
        const canaryQuantile = histogramQuantile(canary.totals, slo.latencyQuantile);
        const baseQuantile = histogramQuantile(base.totals, slo.latencyQuantile);
        const canaryBreaches = pc > slo.maxErrorRate || (canaryQuantile ?? 0) * 1_000 > slo.maxLatencyMs;
        const baseBreaches = pb > slo.maxErrorRate || (baseQuantile ?? 0) * 1_000 > slo.maxLatencyMs;
        if (canaryBreaches && baseBreaches) {
          return {
            check: 'compare',
            verdict: 'inconclusive',
            reasonCode: 'ENVIRONMENTAL',
            reason: `canary and baseline both outside the SLO: environmental; ${stats}`,
          };
        }
        if (errors.upper < compare.errorMargin && latency.upper < 0.5 + compare.latencyMargin) {
          if (canaryBreaches) {
            return {
              check: 'compare',
              verdict: 'pending',
              reasonCode: pc > slo.maxErrorRate ? 'SLO_ERROR_RATE' : 'SLO_LATENCY',
              reason: `not worse than baseline, but outside the SLO while baseline is not: ${stats}`,
            };
          }
          return { check: 'compare', verdict: 'pass', reasonCode: 'OK', reason: `non-inferior: ${stats}` };
        }
        const gap = compare.errorMargin - errors.estimate;
        const needed = samplesForErrorRateGap(pc, pb, Math.abs(gap), compare.alpha);
        const rate = nc / (canary.elapsedMs / 1_000);
        const eta = Number.isFinite(needed) && rate > 0 ? Math.ceil(Math.max(0, needed - nc) / rate) : undefined;
        return {
          check: 'compare',
          verdict: 'pending',
          reasonCode: 'INSUFFICIENT_DATA',
          reason: `not decided yet: ${stats}; ~${Number.isFinite(needed) ? needed : '∞'} per side needed${eta === undefined ? '' : `, ETA ${formatDuration(eta * 1_000)}`}`,
          ...(eta === undefined ? {} : { etaSeconds: eta }),
        };
      };

      const firing = (pods: readonly PodView[]): Map<TriggerName, { pod: string; detail: string }> => {
        const result = new Map<TriggerName, { pod: string; detail: string }>();
        for (const pod of pods) {
          for (const trigger of pod.summary.triggers) {
            if (trigger.firing && !result.has(trigger.name))
              result.set(trigger.name, { pod: pod.summary.pod, detail: trigger.detail });
          }
        }
        return result;
      };
      const triggerCode: Record<TriggerName, ReasonCode> = {
        'error-rate': 'SLO_ERROR_RATE',
        latency: 'SLO_LATENCY',
        health: 'HEALTH_FAILING',
        crashloop: 'CRASHLOOP',
        migration: 'MIGRATION_FAILED',
      };
      const runTriggers = (check: GateCheckName): CheckOutcome => {
        const canaryFiring = firing(canaryPods);
        const baseFiring = firing(baselinePods);
        const own: { code: ReasonCode; text: string }[] = [];
        const shared: string[] = [];
        for (const [name, info] of canaryFiring) {
          // Traffic-driven triggers that fire on the baseline too are the environment's, not the canary's.
          if ((name === 'error-rate' || name === 'latency') && baseFiring.has(name))
            shared.push(`${name} (${info.detail})`);
          else own.push({ code: triggerCode[name], text: `${info.detail} on ${info.pod}` });
        }
        if (own.length > 0)
          return { check, verdict: 'fail', reasonCode: own[0]!.code, reason: own.map((item) => item.text).join('; ') };
        if (shared.length > 0) {
          return {
            check,
            verdict: 'inconclusive',
            reasonCode: 'ENVIRONMENTAL',
            reason: `baseline shows the same: ${shared.join('; ')}: environmental`,
          };
        }
        return { check, verdict: 'pass', reasonCode: 'OK', reason: 'no rollback trigger firing' };
      };

      const overrides = this.#options.holds.matching('override', query.gate, query.tenant);
      const overrideNote =
        overrides.length > 0
          ? ` (overridden by ${overrides[0]!.actor} until ${overrides[0]!.expiresAt}: ${overrides[0]!.reason})`
          : '';
      const schema = self.summary.schema;
      const rollbackTarget = (): { pod: PodView; supports: { min: string; max: string } } | undefined => {
        for (const pod of baselinePods) {
          const supports = pod.summary.schema?.supports;
          if (supports) return { pod, supports };
        }
        return undefined;
      };

      const runCheck = (check: GateCheckName): CheckOutcome => {
        switch (check) {
          case 'health': {
            const notReady = canaryPods.filter((pod) => pod.summary.ready !== 'UP' || pod.summary.live !== 'UP');
            if (notReady.length === 0)
              return { check, verdict: 'pass', reasonCode: 'OK', reason: `${canaryPods.length} pod(s) live and ready` };
            return {
              check,
              verdict: 'fail',
              reasonCode: 'HEALTH_FAILING',
              reason: `${notReady.length}/${canaryPods.length} pod(s) not live+ready: ${notReady.map((pod) => `${pod.summary.pod} live=${pod.summary.live} ready=${pod.summary.ready}`).join(', ')}`,
            };
          }
          case 'fleet': {
            const ready = canaryPods.filter((pod) => pod.summary.ready === 'UP').length;
            const expectedPods = query.expectPods;
            if (expectedPods !== undefined && canaryPods.length < expectedPods) {
              return {
                check,
                verdict: 'pending',
                reasonCode: 'FLEET_NOT_READY',
                reason: `${canaryPods.length}/${expectedPods} pods reporting`,
              };
            }
            if (ready < canaryPods.length) {
              return {
                check,
                verdict: 'pending',
                reasonCode: 'FLEET_NOT_READY',
                reason: `${ready}/${canaryPods.length} pods ready`,
              };
            }
            return { check, verdict: 'pass', reasonCode: 'OK', reason: `${ready} pod(s) ready` };
          }
          case 'slo':
            return runSlo();
          case 'compare':
            return runCompare();
          case 'evidence':
            return baselinePods.length > 0 ? { ...runCompare(), check } : { ...runSlo(), check };
          case 'triggers':
            return runTriggers(check);
          case 'holds': {
            const holds = this.#options.holds.matching('hold', query.gate, query.tenant);
            if (holds.length === 0) return { check, verdict: 'pass', reasonCode: 'OK', reason: 'no manual hold' };
            const hold = holds[0]!;
            return {
              check,
              verdict: 'pending',
              reasonCode: 'MANUAL_HOLD',
              reason: `held by ${hold.actor} until ${hold.expiresAt}: ${hold.reason}`,
              etaSeconds: Math.max(0, Math.ceil((Date.parse(hold.expiresAt) - now) / 1_000)),
            };
          }
          case 'calendar': {
            const active = policy.calendar.activeAt(now, query.tenant);
            if (active.length === 0)
              return { check, verdict: 'pass', reasonCode: 'OK', reason: 'no freeze or maintenance window' };
            const window = active[0]!;
            if (overrides.length > 0)
              return {
                check,
                verdict: 'pass',
                reasonCode: 'OK',
                reason: `${describeOccurrence(window, now)}${overrideNote}`,
              };
            return {
              check,
              verdict: 'pending',
              reasonCode: window.kind === 'freeze' ? 'FREEZE_WINDOW' : 'MAINTENANCE_WINDOW',
              reason: describeOccurrence(window, now),
              etaSeconds: Math.ceil((window.end - now) / 1_000),
            };
          }
          case 'calendar-ahead': {
            const length = query.durationMs ?? policy.rolloutDurationMs;
            const ahead = policy.calendar
              .occurrences(now, now + length, query.tenant)
              .filter((item) => item.start > now);
            if (ahead.length === 0)
              return {
                check,
                verdict: 'pass',
                reasonCode: 'OK',
                reason: `no window in the next ${formatDuration(length)}`,
              };
            const window = ahead[0]!;
            if (overrides.length > 0)
              return {
                check,
                verdict: 'pass',
                reasonCode: 'OK',
                reason: `${describeOccurrence(window, now)}${overrideNote}`,
              };
            return {
              check,
              verdict: 'pending',
              reasonCode: 'FREEZE_AHEAD',
              reason: `a rollout of ${formatDuration(length)} would run into the ${describeOccurrence(window, now)}`,
              etaSeconds: Math.ceil((window.end - now) / 1_000),
            };
          }
          case 'schema': {
            if (schema === null) return { check, verdict: 'pass', reasonCode: 'OK', reason: 'app reports no schema' };
            if (schema.failed.length > 0) {
              const failed = schema.failed[0]!;
              return {
                check,
                verdict: 'fail',
                reasonCode: 'MIGRATION_FAILED',
                reason: `migration ${failed.version} failed: ${failed.description}`.slice(0, 300),
              };
            }
            // No migration applied yet: nothing to check here (the app's own startup check reports a missing one).
            const incompatible =
              schema.current === null || schema.supports === null
                ? undefined
                : schemaIncompatibility(schema, schema.supports);
            if (incompatible !== undefined) {
              return {
                check,
                verdict: 'fail',
                reasonCode: 'SCHEMA_INCOMPATIBLE',
                reason: `app cannot run against the database: ${incompatible} (supports ${schema.supports!.min}..${schema.supports!.max}, database at ${schema.current}, last contract ${schema.lastContract ?? 'none'})`,
              };
            }
            return { check, verdict: 'pass', reasonCode: 'OK', reason: `schema ${schema.current ?? 'none'} supported` };
          }
          case 'rollback-safety': {
            if (schema === null || schema.current === null)
              return { check, verdict: 'pass', reasonCode: 'OK', reason: 'app reports no schema' };
            const target = rollbackTarget();
            let unsafe: string | undefined;
            const incompatible = target === undefined ? undefined : schemaIncompatibility(schema, target.supports);
            if (target !== undefined && incompatible !== undefined) {
              unsafe = `rollback target ${target.pod.summary.version ?? target.pod.summary.podTemplateHash ?? target.pod.summary.pod} cannot run against the database: ${incompatible}`;
            } else if (
              // No baseline tells what the old version survives: a contract applied since the run started is the
              // only sign that going back may break it. (`phase: contract` alone only says the newest applied
              // migration was a contract one — finished, possibly long before this rollout.)
              target === undefined &&
              schema.lastContract !== null &&
              run.lastContractAtStart !== undefined &&
              (run.lastContractAtStart === null || compareVersions(schema.lastContract, run.lastContractAtStart) > 0)
            ) {
              unsafe = `contract migration ${schema.lastContract} ran during this rollout`;
            }
            if (unsafe === undefined)
              return { check, verdict: 'pass', reasonCode: 'OK', reason: 'rolling back stays possible' };
            if (overrides.length > 0)
              return { check, verdict: 'pass', reasonCode: 'OK', reason: `${unsafe}${overrideNote}` };
            return {
              check,
              verdict: 'inconclusive',
              reasonCode: 'ROLLBACK_UNSAFE',
              reason: `${unsafe}: promotion needs a human (override)`,
            };
          }
          case 'rollback': {
            const outcome = runTriggers(check);
            if (outcome.verdict !== 'fail') return outcome;
            const target = rollbackTarget();
            const incompatible =
              schema === null || schema.current === null || target === undefined
                ? undefined
                : schemaIncompatibility(schema, target.supports);
            if (incompatible !== undefined) {
              return {
                check,
                verdict: 'inconclusive',
                reasonCode: 'SCHEMA_INCOMPATIBLE',
                reason: `rollback wanted (${outcome.reason}) but the old version cannot run against the database (${incompatible}): fix forward`,
              };
            }
            return outcome;
          }
          default:
            return { check, verdict: 'error', reasonCode: 'AGENT_ERROR', reason: `unknown check ${String(check)}` };
        }
      };
      for (const check of definition.checks) outcomes.push(runCheck(check));
    }

    const decisive = worst(outcomes) ?? { check: 'identity', verdict: 'pass', reasonCode: 'OK', reason: 'no checks' };
    const verdict = decisive.verdict;
    const reason = verdict === 'pass' ? outcomes.map((outcome) => outcome.reason).join('; ') : decisive.reason;
    const etas = outcomes
      .filter((outcome) => outcome.verdict !== 'pass' && outcome.etaSeconds !== undefined)
      .map((outcome) => outcome.etaSeconds!);
    return {
      verdict,
      pass: verdict === 'pass',
      reasonCode: decisive.reasonCode,
      reason: reason.length > 400 ? `${reason.slice(0, 397)}...` : reason,
      gate: query.gate,
      runId: run.id,
      evaluatedAt: new Date(now).toISOString(),
      ageSeconds: 0,
      policyHash: policyHash(policy),
      target: { expected, actual, matches: mismatches.length === 0 },
      fleet: {
        scope: query.scope,
        podsExpected: query.expectPods ?? null,
        podsReporting: canaryPods.length,
        podsPassing: canaryPods.filter(
          (pod) => pod.summary.ready === 'UP' && !pod.summary.triggers.some((trigger) => trigger.firing),
        ).length,
        baselinePods: baselinePods.length,
      },
      evidence,
      metrics,
      baseline,
      test,
      checks: outcomes,
      next: {
        retryAfterSeconds: Math.max(1, Math.ceil(this.#options.intervalMs / 1_000)),
        etaSeconds: etas.length > 0 ? Math.max(...etas) : verdict === 'pass' ? 0 : null,
      },
    };
  }
}

/** Names of the pods a gate query treats as the canary (the same selection as the checks make). */
function canaryPodNames(query: GateQuery, state: EvaluationState): string[] {
  const self = state.self;
  if (self === undefined) return [];
  const canaryHash = query.expectHash ?? self.summary.podTemplateHash;
  if (query.scope === 'pod' || canaryHash === undefined) return [self.summary.pod];
  const service = fleetServiceName(self.summary.service);
  return state.pods
    .filter(
      (pod) =>
        (pod.isSelf || fleetServiceName(pod.summary.service) === service) && pod.summary.podTemplateHash === canaryHash,
    )
    .map((pod) => pod.summary.pod);
}

/** Why `run` belongs to an earlier rollout, or `undefined` while it still is the current one. */
function endedBecause(
  run: RunRecord,
  canaryPods: readonly string[],
  now: number,
  policy: ResolvedPolicy,
): string | undefined {
  if (run.closedAt !== undefined) return `the run was closed (${run.phase ?? 'closed'})`;
  if (now - run.lastSeenAt > policy.runIdleMs)
    return `no evaluation for ${formatDuration(now - run.lastSeenAt)} (runIdleMs ${formatDuration(policy.runIdleMs)})`;
  // Pods come and go during a rollout (scale-up, a replaced pod); a canary made only of pods this run never saw is
  // another rollout of the same hash (a retry after an abort, a rollback to this version).
  if (canaryPods.length > 0 && run.canaryPods.size > 0 && !canaryPods.some((name) => run.canaryPods.has(name)))
    return `the canary pods were replaced (${canaryPods.slice(0, 3).join(', ')}${canaryPods.length > 3 ? ', …' : ''})`;
  return undefined;
}

function pick(metrics: NonNullable<VerdictDocument['metrics']>): { errorRate: number | null; p99Ms: number | null } {
  return { errorRate: metrics.errorRate, p99Ms: metrics.p99Ms };
}

function round(value: number): number {
  return Math.round(value * 1e5) / 1e5;
}

function pp(value: number): string {
  return `${(value * 100).toFixed(2)}pp`;
}

/** Parses a duration parameter in seconds-or-duration form; `undefined` when absent, NaN when invalid. */
export function parseDurationParameter(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  return parseDurationMs(value) ?? Number.NaN;
}
