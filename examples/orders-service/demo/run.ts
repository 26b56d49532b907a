// The pieces every scenario shares (the demo and the end-to-end tests): the servers, the pods, the weighted proxy,
// open-loop load and the timeline of what clients saw — plus the schema steps (expand, backfill, flag stages,
// contract) done the way an operator would, through @gantry/migrations and the Unleash admin API.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { MigrationStage } from '@gantry/flags';
import { isMigrationError, type LiveClient } from '@gantry/migrations';
import pg from 'pg';
import { createCluster, type AgentPolicy, type Cluster, type Pod, type PodTimings } from './cluster.ts';
import { runRollout, scaleDown, type RolloutOptions, type RolloutResult, type RolloutSettings } from './controller.ts';
import { startInfrastructure, type InfraOptions, type Infrastructure } from './infra.ts';
import { startLoad, type Load, type LoadRequest } from './load.ts';
import { createWeightedProxy, type WeightedProxy } from './proxy.ts';
import { Timeline } from './timeline.ts';

/** Everything that sets the pace of a scenario. */
export interface Profile {
  /** Requests per second of the load generator. */
  readonly rate: number;
  readonly pods: PodTimings;
  readonly rollout: RolloutSettings;
  readonly policy: AgentPolicy;
  /** The proxy's readiness polling interval (the endpoints controller's reaction time). */
  readonly readinessIntervalMs: number;
  /** Stable pods. */
  readonly replicas: number;
  /** Orders written before the demo starts (the rows the backfill copies). */
  readonly seedOrders: number;
  /** Extra environment of every app (e.g. a lower trace sampling ratio at high request rates). */
  readonly appEnv?: Readonly<Record<string, string>>;
}

/** Options of {@link startRun}. */
export interface RunOptions {
  readonly profile: Profile;
  /** Folder for logs, agent configs and server data. */
  readonly runDirectory: string;
  readonly infra: Omit<InfraOptions, 'runDirectory'>;
  /** Extra app environment (tests). */
  readonly env?: Readonly<Record<string, string>>;
  readonly log?: (line: string) => void;
}

/** A running scenario. */
export interface Run {
  readonly infra: Infrastructure;
  readonly cluster: Cluster;
  readonly proxy: WeightedProxy;
  readonly timeline: Timeline;
  readonly profile: Profile;
  /** Starts `replicas` pods of `version` and puts them in the stable pool. */
  deploy(version: string, revision?: number): Promise<Pod[]>;
  /** The stable pods. */
  readonly stable: readonly Pod[];
  /** Starts the load (idempotent). */
  startLoad(rate?: number): void;
  readonly load: Load | undefined;
  /** One canary rollout against the stable pods; the stable pods follow the outcome. */
  rollout(
    version: string,
    options?: Partial<Pick<RolloutOptions, 'revision' | 'onAnswer' | 'onStep' | 'hooks' | 'settings'>>,
  ): Promise<RolloutResult>;
  /** Replaces each stable pod by a fresh one of the same version: new pod ready and in rotation, then SIGTERM. */
  rollingRestart(): Promise<void>;
  /** Stops the load, the pods, the proxy and the servers. Idempotent. */
  close(): Promise<void>;
}

/**
 * The request mix: half new orders, half reads of existing ones (the seeded rows and what was written since).
 * @example startLoad({ url, rate: 20, next: orderTraffic(1000), onResult })
 */
export function orderTraffic(seeded: number): (sequence: number) => LoadRequest {
  const items = ['book', 'lamp', 'mug', 'pen', 'chair', 'desk'];
  return (sequence) =>
    sequence % 2 === 0
      ? {
          method: 'POST',
          path: '/orders',
          body: {
            customer: `customer-${sequence % 97}`,
            item: items[sequence % items.length]!,
            quantity: 1 + (sequence % 5),
          },
        }
      : { method: 'GET', path: `/orders/${1 + ((sequence * 7919) % Math.max(1, seeded))}` };
}

/**
 * Starts the servers, the proxy and an empty cluster; seeds the orders table at schema version 1.
 * @throws when PostgreSQL cannot be had.
 */
export async function startRun(options: RunOptions): Promise<Run> {
  const { profile } = options;
  mkdirSync(options.runDirectory, { recursive: true });
  const infra = await startInfrastructure({
    ...options.infra,
    runDirectory: options.runDirectory,
    ...(options.log ? { log: options.log } : {}),
  });
  const admin = new pg.Client({ connectionString: infra.adminUrl });
  await admin.connect();
  try {
    await admin.query(
      `INSERT INTO orders (customer_id, item, quantity)
       SELECT 'customer-' || (g % 97), 'seed', 1 + g % 5 FROM generate_series(1, $1::int) g`,
      [profile.seedOrders],
    );
  } finally {
    await admin.end();
  }
  const timeline = new Timeline();
  const proxy = await createWeightedProxy({ readinessIntervalMs: profile.readinessIntervalMs });
  const cluster = createCluster({
    infra,
    runDirectory: options.runDirectory,
    timings: profile.pods,
    policy: profile.policy,
    env: { ...profile.appEnv, ...options.env },
  });
  let stable: Pod[] = [];
  let load: Load | undefined;
  let closed: Promise<void> | undefined;
  const run: Run = {
    infra,
    cluster,
    proxy,
    timeline,
    profile,
    get stable() {
      return stable;
    },
    get load() {
      return load;
    },
    async deploy(version, revision = 0) {
      const pods = await Promise.all(
        Array.from({ length: profile.replicas }, () => cluster.startPod({ version, revision })),
      );
      stable = pods;
      proxy.setPools(
        pods.map((pod) => pod.backend),
        [],
      );
      const deadline = Date.now() + 30_000;
      while (proxy.inRotation().stable.length < pods.length && Date.now() < deadline) await sleep(50);
      timeline.event({ kind: 'phase', text: `${version} serving` });
      return pods;
    },
    startLoad(rate = profile.rate) {
      load ??= startLoad({
        url: proxy.url,
        rate,
        next: orderTraffic(profile.seedOrders),
        onResult: (result) => timeline.observe(result),
      });
    },
    async rollout(version, rolloutOptions = {}) {
      const result = await runRollout({
        cluster,
        proxy,
        timeline,
        settings: rolloutOptions.settings ?? profile.rollout,
        stable,
        version,
        replicas: profile.replicas,
        ...rolloutOptions,
      });
      stable = [...result.stable];
      return result;
    },
    async rollingRestart() {
      timeline.event({ kind: 'phase', text: 'rolling restart' });
      let current = [...stable];
      for (const old of [...current]) {
        const fresh = await cluster.startPod({ version: old.version, revision: old.revision });
        const pool = [...current, fresh];
        proxy.setPools(
          pool.map((pod) => pod.backend),
          [],
        );
        const deadline = Date.now() + 30_000;
        while (!proxy.inRotation().stable.includes(fresh.name) && Date.now() < deadline) await sleep(50);
        await scaleDown(proxy, { stable: pool, canary: [] }, [old]);
        current = pool.filter((pod) => pod !== old);
        stable = current;
      }
    },
    close: () =>
      (closed ??= (async () => {
        await load?.stop();
        await cluster.close();
        await proxy.close();
        await infra.stop();
      })()),
  };
  return run;
}

/** The schema steps of the expand phase while version 1 serves: the new column and trigger, then the backfill. */
export async function expandAndBackfill(
  infra: Infrastructure,
): Promise<{ expanded: string[]; backfilledRows: number }> {
  const migrator = infra.migrator();
  const expand = await migrator.migrate({ phase: 'expand' });
  const backfill = await migrator.backfillRun();
  return {
    expanded: expand.applied.map((step) => `V${step.version} ${step.description}`),
    backfilledRows: backfill.applied.reduce((sum, step) => sum + (step.rows ?? 0), 0),
  };
}

/** What one `contract` attempt did. */
export interface ContractAttempt {
  readonly at: number;
  readonly outcome: 'refused' | 'applied' | 'failed';
  readonly message: string;
  /** The live clients that made the gate refuse. */
  readonly blocking: readonly LiveClient[];
}

/** Runs `contract` (what `gantry-migrate contract` does) and reports whether the gate refused it. */
export async function attemptContract(infra: Infrastructure): Promise<ContractAttempt> {
  const at = Date.now();
  try {
    const report = await infra.migrator().contract();
    return {
      at,
      outcome: 'applied',
      message: `applied ${report.applied.map((step) => `V${step.version} ${step.description}`).join(', ')}; schema at ${report.current ?? '?'}`,
      blocking: [],
    };
  } catch (error) {
    if (isMigrationError(error) && error.code === 'GANTRY_MIGRATIONS_CONTRACT_REFUSED') {
      return {
        at,
        outcome: 'refused',
        message: error.message,
        blocking: (error.details?.['blocking'] as LiveClient[] | undefined) ?? [],
      };
    }
    return { at, outcome: 'failed', message: String((error as Error)?.message ?? error), blocking: [] };
  }
}

/** The stage each pod reports in `/q/info` (`orders.migration.stage`). */
export async function reportedStages(pods: readonly Pod[]): Promise<(string | null)[]> {
  return Promise.all(
    pods.map(async (pod) => {
      try {
        const response = await fetch(`${pod.appUrl}/q/info`, { signal: AbortSignal.timeout(2_000) });
        const info = (await response.json()) as { orders?: { migration?: { stage?: string | null } } };
        return info.orders?.migration?.stage ?? null;
      } catch {
        return null;
      }
    }),
  );
}

/**
 * Moves the migration flag through `stages` one at a time (Unleash refuses nothing, but each pod does refuse a
 * jump), waiting until every pod serves the stage before the next. Without Unleash the pods run at the bootstrap
 * stage (`complete`) and there is nothing to move.
 * @throws when a pod does not reach a stage within `timeoutMs`.
 */
export async function walkMigrationFlag(
  infra: Infrastructure,
  pods: readonly Pod[],
  stages: readonly MigrationStage[],
  timeoutMs = 20_000,
): Promise<void> {
  if (infra.unleash === undefined) return;
  for (const stage of stages) {
    await infra.setMigrationStage(stage);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const seen = await reportedStages(pods);
      if (seen.every((value) => value === stage)) break;
      if (Date.now() > deadline) throw new Error(`pods did not reach stage ${stage}: ${seen.join(', ')}`);
      await sleep(200);
    }
  }
}

/** A run directory under `reports/` or the system temp folder. */
export function runDirectoryFor(base: string, label: string): string {
  const dir = join(base, `${label}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}
