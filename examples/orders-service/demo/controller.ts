// A canary controller in the style of Argo Rollouts with inline analysis: start one canary pod, shift traffic to
// it step by step (10 → 25 → 50 → 100 %), and at each step ask the canary's sidecar `GET /gate/v1/analysis`
// until it answers: `fail` rolls back at once, `pass` (after the step's bake time) moves on, `pending` and
// `inconclusive` keep waiting up to the step's timeout. Each weight change is announced to the sidecar (the
// Flagger `event` webhook), so the seconds after a shift are left out of its evidence.
//
// Which gate a step asks is part of the settings. The comparison with the baseline (the `promotion` gate) belongs
// to a step where both sides serve at the same time — at 100 % the baseline gets no traffic, and comparing the
// canary's later requests with the baseline's earlier ones would blame the canary for whatever else changed on
// the machine in between. Such a step can open its own analysis run, so its window starts with the step.
//
// Promotion and rollback replace pods the Kubernetes way: a new pod only gets traffic once its readiness answers
// 200; an old pod receives SIGTERM while it is still in the pool, its readiness goes DOWN, the proxy stops routing
// to it and @gantry/health drains its keep-alive connections before it exits.
import { setTimeout as sleep } from 'node:timers/promises';
import type { VerdictDocument } from '@gantry/agent';
import type { Cluster, Pod } from './cluster.ts';
import type { WeightedProxy } from './proxy.ts';
import type { Timeline } from './timeline.ts';

/** One canary step. */
export interface RolloutStep {
  /** Canary weight in percent. */
  readonly weight: number;
  /** The agent gate asked during the step; its `pass` (after the bake time) moves on, `fail` rolls back. */
  readonly gate: string;
  /** `rollout`: the analysis run spans the whole rollout; `step`: a run of its own, whose window opens now. */
  readonly window: 'rollout' | 'step';
}

/** How a rollout proceeds. */
export interface RolloutSettings {
  readonly steps: readonly RolloutStep[];
  /** Least time on a step, even when the gate passes at once. */
  readonly bakeMs: number;
  /** Time between two gate requests. */
  readonly pollMs: number;
  /** A step whose gate neither passes nor fails within this time aborts the rollout (rollback). */
  readonly stepTimeoutMs: number;
}

/** One gate answer, as the controller saw it. */
export interface GateAnswer {
  readonly at: number;
  readonly gate: string;
  readonly weight: number;
  readonly verdict: VerdictDocument['verdict'];
  readonly reasonCode: string;
  readonly reason: string;
  readonly samples: number;
  /** The sequential test's numbers, when the gate compared with the baseline. */
  readonly test: VerdictDocument['test'];
}

/** The outcome of one rollout. */
export interface RolloutResult {
  readonly version: string;
  readonly hash: string;
  readonly outcome: 'promoted' | 'rolled-back';
  readonly reasonCode: string;
  readonly reason: string;
  /** When the canary pod was requested, got traffic, the decision was made, and everything settled. */
  readonly startedAt: number;
  readonly trafficAt: number;
  readonly decidedAt: number;
  readonly finishedAt: number;
  /** Milliseconds from the canary's first traffic to the decision (promotion or rollback). */
  readonly decisionMs: number;
  /** The weight the canary had when the decision was made. */
  readonly decidedAtWeight: number;
  readonly answers: readonly GateAnswer[];
  /** The stable pods once the rollout is over (the new version's after a promotion). */
  readonly stable: readonly Pod[];
}

/** Hooks around the scale-down of the old pods at promotion (the demo tries `contract` there). */
export interface PromotionHooks {
  /** Runs after the new version serves every request and before the old pods get SIGTERM. */
  readonly beforeScaleDown?: (old: readonly Pod[]) => Promise<void>;
  /** Runs once the old pods are gone. */
  readonly afterScaleDown?: () => Promise<void>;
}

/** Options of {@link runRollout}. */
export interface RolloutOptions {
  readonly cluster: Cluster;
  readonly proxy: WeightedProxy;
  readonly timeline: Timeline;
  readonly settings: RolloutSettings;
  /** The pods serving now (one pod template). */
  readonly stable: readonly Pod[];
  readonly version: string;
  /** Distinguishes rollouts of one version (a new pod template). */
  readonly revision?: number;
  /** Progress for the terminal. */
  readonly onAnswer?: (answer: GateAnswer) => void;
  readonly onStep?: (weight: number) => void;
  readonly hooks?: PromotionHooks;
  /** Pods of the new version after promotion. @default as many as `stable` */
  readonly replicas?: number;
}

/**
 * Default canary steps: the canary's own SLO and rollback triggers at 10 and 25 %, the comparison with the
 * baseline pods (gate `promotion`, in a window of its own) at 50 % where both serve alike, and the SLO again at
 * 100 % before the promotion.
 */
export const DEFAULT_STEPS: readonly RolloutStep[] = Object.freeze([
  { weight: 10, gate: 'canary', window: 'rollout' },
  { weight: 25, gate: 'canary', window: 'rollout' },
  { weight: 50, gate: 'promotion', window: 'step' },
  { weight: 100, gate: 'canary', window: 'rollout' },
]);

async function askGate(
  pod: Pod,
  token: string,
  parameters: Readonly<Record<string, string>>,
): Promise<VerdictDocument | { verdict: 'error'; reasonCode: string; reason: string; evidence: { samples: number } }> {
  const url = new URL('/gate/v1/analysis', pod.agentUrl);
  for (const [key, value] of Object.entries(parameters)) url.searchParams.set(key, value);
  try {
    const response = await fetch(url, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(5_000),
    });
    // Like Argo's web provider: the verdict is in the body; a 503 means the agent cannot evaluate (Error).
    return (await response.json()) as VerdictDocument;
  } catch (error) {
    return { verdict: 'error', reasonCode: 'UNREACHABLE', reason: String(error), evidence: { samples: 0 } };
  }
}

/** Tells the canary's sidecar that its traffic changed (Flagger's `event` webhook): a warm-up follows. */
async function announceShift(pod: Pod, token: string, runId: string, weight: number): Promise<void> {
  await fetch(new URL('/gate/v1/flagger/event', pod.agentUrl), {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      name: 'orders',
      namespace: 'demo',
      phase: 'Progressing',
      checksum: pod.hash,
      metadata: { eventMessage: `Advance orders.demo canary weight ${weight}`, eventType: 'Normal', runId },
    }),
    signal: AbortSignal.timeout(5_000),
  })
    .then((response) => response.arrayBuffer())
    .catch(() => undefined);
}

/** Waits until the proxy has the pod in rotation (its readiness answered 200). */
async function inRotation(proxy: WeightedProxy, pod: Pod, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const rotation = proxy.inRotation();
    if (rotation.stable.includes(pod.name) || rotation.canary.includes(pod.name)) return;
    await sleep(50);
  }
  throw new Error(`${pod.name} never entered the proxy's rotation`);
}

/**
 * Terminates pods the Kubernetes way: SIGTERM while they are still in the pool; the proxy drops each one when its
 * readiness goes DOWN; once a pod exited it leaves the pool. Resolves when all exited.
 */
export async function scaleDown(
  proxy: WeightedProxy,
  pools: { stable: readonly Pod[]; canary: readonly Pod[] },
  leaving: readonly Pod[],
): Promise<void> {
  const gone = new Set<string>();
  await Promise.all(
    leaving.map(async (pod) => {
      await pod.terminate();
      gone.add(pod.name);
      proxy.setPools(
        pools.stable.filter((item) => !gone.has(item.name)).map((item) => item.backend),
        pools.canary.filter((item) => !gone.has(item.name)).map((item) => item.backend),
      );
    }),
  );
}

/**
 * Runs one canary rollout of `version` against the `stable` pods and returns what happened.
 * @throws only when a pod cannot start (an infrastructure problem, not a verdict).
 */
export async function runRollout(options: RolloutOptions): Promise<RolloutResult> {
  const { cluster, proxy, timeline, settings, stable } = options;
  const startedAt = Date.now();
  const baselineHash = stable[0]?.hash;
  const canary = await cluster.startPod({
    version: options.version,
    revision: options.revision ?? 0,
    peers: stable,
  });
  const runId = `rollout-${canary.hash}`;
  const backends = (pods: readonly Pod[]) => pods.map((pod) => pod.backend);
  proxy.setCanaryWeight(0);
  proxy.setPools(backends(stable), [canary.backend]);
  await inRotation(proxy, canary);
  timeline.event({ kind: 'phase', text: `canary ${options.version}` });

  const answers: GateAnswer[] = [];
  let trafficAt = 0;
  let decision: { outcome: 'promoted' | 'rolled-back'; reasonCode: string; reason: string; weight: number } | undefined;

  for (const [index, step] of settings.steps.entries()) {
    const { weight, gate } = step;
    const stepRunId = step.window === 'step' ? `${runId}-step${index + 1}` : runId;
    proxy.setCanaryWeight(weight);
    if (index === 0) trafficAt = Date.now();
    timeline.event({ kind: 'weight', text: `canary ${options.version} at ${weight}%`, weight });
    options.onStep?.(weight);
    await announceShift(canary, cluster.token, runId, weight);
    const stepStart = Date.now();
    let last: GateAnswer | undefined;
    for (;;) {
      const document = await askGate(canary, cluster.token, {
        gate,
        runId: stepRunId,
        expectHash: canary.hash,
        ...(baselineHash === undefined ? {} : { baselineHash }),
      });
      const answer: GateAnswer = {
        at: Date.now(),
        gate,
        weight,
        verdict: document.verdict,
        reasonCode: document.reasonCode,
        reason: document.reason,
        samples: document.evidence.samples,
        test: 'test' in document ? document.test : null,
      };
      answers.push(answer);
      options.onAnswer?.(answer);
      if (last === undefined || last.verdict !== answer.verdict || last.reasonCode !== answer.reasonCode) {
        timeline.event({
          kind: 'verdict',
          verdict: answer.verdict,
          text: `${gate} @${weight}%: ${answer.verdict} ${answer.reasonCode} — ${answer.reason}`,
        });
      }
      last = answer;
      if (answer.verdict === 'fail') {
        decision = { outcome: 'rolled-back', reasonCode: answer.reasonCode, reason: answer.reason, weight };
        break;
      }
      const elapsed = Date.now() - stepStart;
      if (answer.verdict === 'pass' && elapsed >= settings.bakeMs) break;
      if (elapsed >= settings.stepTimeoutMs) {
        decision = {
          outcome: 'rolled-back',
          reasonCode: 'ANALYSIS_TIMEOUT',
          reason: `no verdict from ${gate} within ${Math.round(settings.stepTimeoutMs / 1000)} s (last: ${answer.verdict} ${answer.reasonCode})`,
          weight,
        };
        break;
      }
      await sleep(settings.pollMs);
    }
    if (decision !== undefined) break;
  }
  decision ??= {
    outcome: 'promoted',
    reasonCode: 'OK',
    reason: answers.at(-1)?.reason ?? '',
    weight: settings.steps.at(-1)?.weight ?? 100,
  };
  const decidedAt = Date.now();

  let finalStable: readonly Pod[];
  if (decision.outcome === 'rolled-back') {
    // Traffic off the canary first, then the canary goes.
    proxy.setCanaryWeight(0);
    timeline.event({ kind: 'rollback', text: `rollback of ${options.version}: ${decision.reasonCode}`, weight: 0 });
    await scaleDown(proxy, { stable, canary: [canary] }, [canary]);
    proxy.setPools(backends(stable), []);
    finalStable = stable;
  } else {
    timeline.event({ kind: 'promote', text: `promote ${options.version}` });
    // Scale the new version to full size: the new pods join the canary pool (which has all the traffic) once ready.
    const replicas = options.replicas ?? Math.max(1, stable.length);
    const extra = await Promise.all(
      Array.from({ length: replicas - 1 }, () =>
        cluster.startPod({ version: options.version, revision: options.revision ?? 0 }),
      ),
    );
    const fresh = [canary, ...extra];
    proxy.setPools(backends(stable), backends(fresh));
    await Promise.all(extra.map((pod) => inRotation(proxy, pod)));
    // The stable Service now selects both pod templates, as during any rolling update; the old pods leave next.
    proxy.setPools([...backends(fresh), ...backends(stable)], []);
    proxy.setCanaryWeight(0);
    timeline.event({ kind: 'weight', text: `${options.version} is stable`, weight: 0 });
    await options.hooks?.beforeScaleDown?.(stable);
    await scaleDown(proxy, { stable: [...fresh, ...stable], canary: [] }, stable);
    proxy.setPools(backends(fresh), []);
    await options.hooks?.afterScaleDown?.();
    finalStable = fresh;
  }
  return {
    version: options.version,
    hash: canary.hash,
    outcome: decision.outcome,
    reasonCode: decision.reasonCode,
    reason: decision.reason,
    startedAt,
    trafficAt,
    decidedAt,
    finishedAt: Date.now(),
    decisionMs: decidedAt - trafficAt,
    decidedAtWeight: decision.weight,
    answers,
    stable: finalStable,
  };
}
