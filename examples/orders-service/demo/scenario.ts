// The demo's story, end to end:
//   1. servers up (PostgreSQL; Kafka, Unleash and Vault when available), the orders table at schema 1 with rows;
//   2. two v1 pods behind the weighted proxy, open-loop load at the profile's rate;
//   3. expand (schema 2: customer_key + sync trigger) and backfill (schema 3) while v1 serves;
//   4. canary v2 (good): 10 → 25 → 50 → 100 %, promoted; before the v1 pods go, `contract` is refused because they
//      still need customer_id; they get SIGTERM while still in the pool and drain; the migration flag walks to
//      `complete`; `contract` now applies (schema 4);
//   5. canary v3 (bad: 5 % errors, slower p95): caught by its sidecar and rolled back automatically.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel } from 'kafkajs';
import type { GateAnswer, RolloutResult } from './controller.ts';
import {
  attemptContract,
  expandAndBackfill,
  startRun,
  walkMigrationFlag,
  type ContractAttempt,
  type Profile,
  type Run,
} from './run.ts';
import type { Timeline } from './timeline.ts';

/** Options of {@link runDemo}. */
export interface DemoOptions {
  readonly profile: Profile;
  readonly runDirectory: string;
  readonly kafka: boolean;
  readonly unleash: boolean;
  readonly vault: boolean;
  /** Seconds of v1 traffic before the first schema change. @default 8 */
  readonly warmupSeconds?: number;
  /** Progress: phases and notable lines. */
  readonly onPhase?: (text: string) => void;
  readonly onLine?: (text: string) => void;
  readonly onAnswer?: (version: string, answer: GateAnswer) => void;
  /** Called once the run exists (the live status line reads its timeline and proxy). */
  readonly onRun?: (run: Run) => void;
}

/** A rollout with the traffic clients saw while it ran. */
export interface RolloutSummary extends RolloutResult {
  readonly requests: number;
  readonly failed: number;
  readonly dropped: number;
  /** Requests the canary answered with a 5xx (the bad version's cost to users). */
  readonly canaryFailed: number;
}

/** One expectation the demo checks about itself. */
export interface Expectation {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** Everything the demo found. */
export interface DemoResult {
  readonly startedAt: number;
  readonly finishedAt: number;
  readonly rate: number;
  readonly timeline: Timeline;
  readonly notices: readonly string[];
  readonly startSeconds: Readonly<Record<string, number>>;
  readonly services: { readonly vault: boolean; readonly unleash: boolean; readonly kafka: boolean };
  readonly expand: { readonly expanded: readonly string[]; readonly backfilledRows: number };
  readonly v2: RolloutSummary;
  readonly v3: RolloutSummary;
  readonly contract: { readonly whileOldAlive: ContractAttempt; readonly afterOldGone: ContractAttempt };
  readonly drainedPods: number;
  readonly rotations: number;
  readonly kafkaMessages: { readonly orders: number; readonly agentEvents: number } | null;
  readonly totals: { readonly requests: number; readonly failed: number; readonly dropped: number };
  readonly expectations: readonly Expectation[];
  readonly runDirectory: string;
}

function summarize(run: Run, result: RolloutResult): RolloutSummary {
  const window = run.timeline.between(result.startedAt, result.finishedAt + 1);
  const canaryFailed = run.timeline.failedByVersion(result.version, result.startedAt, result.finishedAt + 1);
  return { ...result, ...window, canaryFailed };
}

/** Credential rotations (beyond the start-up one) logged by every pod of the run. */
function countRotations(runDirectory: string): number {
  let count = 0;
  for (const file of readdirSync(runDirectory).filter((name) => name.endsWith('.app.log'))) {
    for (const line of readFileSync(join(runDirectory, file), 'utf8').split('\n')) {
      if (line.includes('"event":"secrets.rotation.completed"') && !line.includes('"reason":"startup"')) count += 1;
    }
  }
  return count;
}

async function countKafkaMessages(brokers: readonly string[]): Promise<{ orders: number; agentEvents: number }> {
  const admin = new Kafka({ clientId: 'orders-demo', brokers: [...brokers], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const count = async (topic: string): Promise<number> => {
      try {
        const offsets = await admin.fetchTopicOffsets(topic);
        return offsets.reduce((sum, partition) => sum + Number(partition.high) - Number(partition.low), 0);
      } catch {
        return 0;
      }
    };
    return { orders: await count('orders.events'), agentEvents: await count('gantry.events') };
  } finally {
    await admin.disconnect();
  }
}

/**
 * Runs the whole demo and returns what happened; never leaves a process behind.
 * @throws when a server or a pod cannot start (not when a verdict is unexpected: that is an expectation).
 */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const phase = options.onPhase ?? (() => undefined);
  const line = options.onLine ?? (() => undefined);
  const startedAt = Date.now();
  phase('Starting the servers');
  const run = await startRun({
    profile: options.profile,
    runDirectory: options.runDirectory,
    infra: {
      ...(options.kafka ? {} : { kafka: false }),
      ...(options.unleash ? {} : { unleash: false }),
      vault: options.vault,
    },
  });
  options.onRun?.(run);
  const { infra, timeline } = run;
  for (const notice of infra.notices) line(`notice: ${notice}`);
  try {
    phase(`Deploying v1 (${options.profile.replicas} pods with their gantry-agent sidecars)`);
    await run.deploy('1.0.0');
    run.startLoad();
    line(`load: ${options.profile.rate} requests/s through the weighted proxy (keep-alive, open loop)`);
    await sleep((options.warmupSeconds ?? 8) * 1_000);

    phase('Expand and backfill while v1 serves');
    timeline.event({ kind: 'phase', text: 'expand + backfill' });
    const expand = await expandAndBackfill(infra);
    line(`migrations: applied ${expand.expanded.join(', ')}; backfilled ${expand.backfilledRows} rows (schema 3)`);
    timeline.event({
      kind: 'note',
      text: `expand ${expand.expanded.join(', ')}; backfill ${expand.backfilledRows} rows`,
    });
    // v2 rolls out with its migration flag at `off`: the deploy and the data migration are separate steps.
    await infra.setMigrationStage('off');

    phase('Canary v2 (good): 10 → 25 → 50 → 100 %');
    let whileOldAlive: ContractAttempt | undefined;
    let afterOldGone: ContractAttempt | undefined;
    let drainedPods = 0;
    const v2 = await run.rollout('2.0.0', {
      revision: 1,
      onAnswer: (answer) => options.onAnswer?.('2.0.0', answer),
      onStep: (weight) => line(`v2 canary at ${weight}%`),
      hooks: {
        beforeScaleDown: async (old) => {
          whileOldAlive = await attemptContract(infra);
          timeline.event({
            kind: 'contract',
            text: `contract while ${old.length} v1 pods run: ${whileOldAlive.outcome}`,
          });
          line(
            `contract with ${old.length} v1 pods alive: ${whileOldAlive.outcome} — ${whileOldAlive.message.slice(0, 160)}`,
          );
          line(`v1 pods get SIGTERM while still in the pool: ${old.map((pod) => pod.name).join(', ')}`);
          drainedPods += old.length;
        },
        afterScaleDown: async () => {
          line('v1 pods drained and gone');
          if (infra.unleash !== undefined) {
            await walkMigrationFlag(infra, run.cluster.pods(), ['dualwrite', 'shadow', 'live', 'rampdown', 'complete']);
            line('migration flag dual-write-customer-key: off → dualwrite → shadow → live → rampdown → complete');
            timeline.event({ kind: 'note', text: 'migration flag at complete' });
          }
          afterOldGone = await attemptContract(infra);
          timeline.event({ kind: 'contract', text: `contract after v1 is gone: ${afterOldGone.outcome}` });
          line(`contract after v1 is gone: ${afterOldGone.outcome} — ${afterOldGone.message.slice(0, 160)}`);
        },
      },
    });
    line(`v2: ${v2.outcome} (${v2.reasonCode})`);

    phase('Canary v3 (bad: 5 % errors, slower p95): 10 → 25 → 50 → 100 %');
    const v3 = await run.rollout('3.0.0', {
      revision: 1,
      onAnswer: (answer) => options.onAnswer?.('3.0.0', answer),
      onStep: (weight) => line(`v3 canary at ${weight}%`),
    });
    line(`v3: ${v3.outcome} (${v3.reasonCode}) after ${(v3.decisionMs / 1000).toFixed(1)} s at ${v3.decidedAtWeight}%`);
    timeline.event({ kind: 'phase', text: 'v2 serving' });
    await sleep(3_000);

    phase('Stopping');
    await run.load?.stop();
    const kafkaMessages =
      infra.kafka === undefined ? null : await countKafkaMessages(infra.kafka.brokers).catch(() => null);
    await run.close();
    const v2Summary = summarize(run, v2);
    const v3Summary = summarize(run, v3);
    const contract = {
      whileOldAlive: whileOldAlive ?? { at: 0, outcome: 'failed' as const, message: 'never attempted', blocking: [] },
      afterOldGone: afterOldGone ?? { at: 0, outcome: 'failed' as const, message: 'never attempted', blocking: [] },
    };
    const expectations: Expectation[] = [
      {
        name: 'v2 promoted',
        ok: v2.outcome === 'promoted',
        detail: `${v2.outcome} (${v2.reasonCode}: ${v2.reason.slice(0, 120)})`,
      },
      {
        name: 'no failed request during the v2 rollout (SIGTERM of the v1 pods included)',
        ok: v2Summary.failed === 0 && v2Summary.requests > 0,
        detail: `${v2Summary.failed} failed of ${v2Summary.requests}`,
      },
      {
        name: 'v3 rolled back by a failing verdict',
        ok: v3.outcome === 'rolled-back' && v3.reasonCode !== 'ANALYSIS_TIMEOUT',
        detail: `${v3.outcome} (${v3.reasonCode})`,
      },
      {
        name: 'contract refused while v1 pods were alive',
        ok: contract.whileOldAlive.outcome === 'refused',
        detail: contract.whileOldAlive.message.slice(0, 200),
      },
      {
        name: 'contract applied once v1 was gone',
        ok: contract.afterOldGone.outcome === 'applied',
        detail: contract.afterOldGone.message.slice(0, 200),
      },
      {
        name: 'no dropped connection (every failure was an HTTP answer)',
        ok: timeline.totals.dropped === 0,
        detail: `${timeline.totals.dropped} dropped`,
      },
    ];
    return {
      startedAt,
      finishedAt: Date.now(),
      rate: options.profile.rate,
      timeline,
      notices: infra.notices,
      startSeconds: infra.startSeconds,
      services: {
        vault: infra.vault !== undefined,
        unleash: infra.unleash !== undefined,
        kafka: infra.kafka !== undefined,
      },
      expand,
      v2: v2Summary,
      v3: v3Summary,
      contract,
      drainedPods,
      rotations: infra.vault === undefined ? 0 : countRotations(options.runDirectory),
      kafkaMessages,
      totals: timeline.totals,
      expectations,
      runDirectory: options.runDirectory,
    };
  } finally {
    await run.close();
  }
}
