// A tiny stand-in for Kubernetes: a "pod" is an orders-service process plus its gantry-agent sidecar process, with
// the pod's identity (name, pod-template-hash, version) handed to the agent as the downward API would. Pods start,
// become ready, and are terminated the Kubernetes way: SIGTERM to the app, which drains itself (@gantry/health),
// then the sidecar stops.
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, ManagedProcess } from '@gantry/test-harness';
import type { AgentOptions } from '@gantry/agent';
import type { Infrastructure } from './infra.ts';
import type { Backend } from './proxy.ts';

const SERVICE_DIR = join(import.meta.dirname, '..');
const REPOSITORY_ROOT = join(SERVICE_DIR, '..', '..');
const AGENT_CLI = join(REPOSITORY_ROOT, 'packages', 'agent', 'src', 'cli.ts');

/** Timings of pods and their sidecars. */
export interface PodTimings {
  /** Agent scrape-and-evaluate interval. */
  readonly agentIntervalMs: number;
  /** Agent warm-up after app start and after each traffic shift (excluded from the evidence). */
  readonly agentWarmupMs: number;
  /** Health: readiness DOWN → stop accepting (the load balancer's reaction time). */
  readonly shutdownDelayMs: number;
  /** Health: how long keep-alive connections may drain. */
  readonly drainTimeoutMs: number;
  /** Health: check interval. */
  readonly checkIntervalMs: number;
  /** Flags: Unleash polling interval. */
  readonly flagsRefreshMs: number;
  /** Heartbeat interval of the contract gate. */
  readonly heartbeatIntervalMs: number;
  /** Share of successful requests each app logs. */
  readonly requestLogSampleRatio: number;
  /** Reads each app sends itself before it listens (JIT warm-up; see the service's README). */
  readonly warmupRequests: number;
}

/** What the sidecars decide with: the agent policy (thresholds, gates) shared by every pod. */
export type AgentPolicy = NonNullable<AgentOptions['policy']>;

/** Options of {@link createCluster}. */
export interface ClusterOptions {
  readonly infra: Infrastructure;
  /** Folder for the pods' logs and agent configs. */
  readonly runDirectory: string;
  readonly timings: PodTimings;
  readonly policy: AgentPolicy;
  /** Extra environment for every app (e.g. fault overrides in tests). */
  readonly env?: Readonly<Record<string, string>>;
  /** Milliseconds a pod may take to become ready. @default 60_000 */
  readonly readyTimeoutMs?: number;
}

/** A running pod. */
export interface Pod {
  readonly name: string;
  readonly version: string;
  readonly revision: number;
  /** The pod-template-hash: same for every pod of one revision, new for the next. */
  readonly hash: string;
  readonly appUrl: string;
  readonly agentUrl: string;
  /** The proxy's view of this pod. */
  readonly backend: Backend;
  readonly startedAt: number;
  readonly appLog: string;
  readonly agentLog: string;
  /** SIGTERM to the app (it drains), then the sidecar. Resolves with the app's exit code. Idempotent. */
  terminate(): Promise<number | null>;
  /** Whether the app process still runs. */
  readonly alive: boolean;
}

/** The pods of one demo or test run. */
export interface Cluster {
  /** Bearer token of every sidecar (the controller and peer agents send it). */
  readonly token: string;
  /** Starts a pod of `version` (revision distinguishes two rollouts of one version); resolves once it is ready. */
  startPod(spec: PodSpec): Promise<Pod>;
  /** Pods currently alive. */
  pods(): Pod[];
  /** Terminates every pod (SIGTERM, SIGKILL after a grace period). */
  close(): Promise<void>;
}

/** What to start. */
export interface PodSpec {
  readonly version: string;
  /** Distinguishes pod templates of the same version (a new rollout of the same build). @default 0 */
  readonly revision?: number;
  /** Agents to compare with (the baseline pods): their URLs become the sidecar's static peers. */
  readonly peers?: readonly Pod[];
}

/** The pod-template-hash of a version and revision (stable, 10 hex characters like Kubernetes'). */
export function templateHash(version: string, revision = 0): string {
  return createHash('sha256').update(`orders:${version}:${revision}`).digest('hex').slice(0, 10);
}

function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  // A test runner's or a parent's Node options must not leak into the pods.
  for (const key of Object.keys(env)) {
    if (key === 'NODE_OPTIONS' || key.startsWith('VITEST') || key === 'NODE_V8_COVERAGE') delete env[key];
  }
  return env;
}

async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs: number, exited?: Promise<unknown>) {
  const deadline = Date.now() + timeoutMs;
  let gone = false;
  void exited?.then(() => {
    gone = true;
  });
  while (Date.now() < deadline) {
    if (gone) throw new Error(`${what}: the process exited`);
    if (await probe().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`${what}: not ready within ${timeoutMs} ms`);
}

const ok = async (url: string): Promise<boolean> => {
  const response = await fetch(url, { signal: AbortSignal.timeout(1_000) });
  await response.arrayBuffer();
  return response.status === 200;
};

/**
 * Creates the cluster: nothing runs until `startPod`.
 * @example const cluster = createCluster({ infra, runDirectory, timings, policy }); const pod = await cluster.startPod({ version: '1.0.0' });
 */
export function createCluster(options: ClusterOptions): Cluster {
  const token = randomBytes(24).toString('hex');
  const tokenFile = join(options.runDirectory, 'agent-token');
  writeFileSync(tokenFile, token, { mode: 0o600 });
  const pods = new Set<Pod>();
  const counters = new Map<string, number>();
  const { infra, timings } = options;

  const appEnvironment = (version: string, port: number): Record<string, string> => {
    const env: Record<string, string> = {
      ORDERS_VERSION: version,
      ORDERS_PORT: String(port),
      ORDERS_HOST: '127.0.0.1',
      ORDERS_HEARTBEAT_INTERVAL_MS: String(timings.heartbeatIntervalMs),
      ORDERS_SCHEMA_REFRESH_INTERVAL_MS: '1000',
      ORDERS_WARMUP_REQUESTS: String(timings.warmupRequests),
      DATABASE_URL: infra.databaseUrl,
      OTEL_SERVICE_NAME: 'orders',
      GANTRY_TELEMETRY_SERVICE_VERSION: version,
      GANTRY_TELEMETRY_ENVIRONMENT: 'demo',
      OTEL_TRACES_EXPORTER: 'none',
      GANTRY_TELEMETRY_LOG_LEVEL: 'info',
      GANTRY_TELEMETRY_REQUEST_LOG_SAMPLE_RATIO: String(timings.requestLogSampleRatio),
      GANTRY_TELEMETRY_PROCESS_METRICS: 'false',
      GANTRY_HEALTH_SHUTDOWN_DELAY_MS: String(timings.shutdownDelayMs),
      GANTRY_HEALTH_DRAIN_TIMEOUT_MS: String(timings.drainTimeoutMs),
      GANTRY_HEALTH_CHECK_INTERVAL_MS: String(timings.checkIntervalMs),
      GANTRY_HEALTH_HOOK_TIMEOUT_MS: '3000',
      GANTRY_HEALTH_GRACE_PERIOD_MS: '30000',
      ...options.env,
    };
    if (infra.unleash !== undefined) {
      Object.assign(env, {
        GANTRY_FLAGS_URL: `${infra.unleash.url}/api`,
        GANTRY_FLAGS_TOKEN: infra.unleash.clientToken,
        GANTRY_FLAGS_REFRESH_INTERVAL_MS: String(timings.flagsRefreshMs),
        GANTRY_FLAGS_SEND_USAGE_METRICS: 'false',
      });
    }
    if (infra.vault !== undefined) {
      Object.assign(env, {
        GANTRY_SECRETS_VAULT_ADDR: infra.vault.address,
        GANTRY_SECRETS_AUTH_METHOD: 'approle',
        GANTRY_SECRETS_APPROLE_ROLE_ID: infra.vault.roleId,
        GANTRY_SECRETS_APPROLE_SECRET_ID: infra.vault.secretId,
        GANTRY_SECRETS_DB_ROLE: infra.vault.role,
      });
    }
    if (infra.kafka !== undefined) env['KAFKA_BROKERS'] = infra.kafka.brokers.join(',');
    return env;
  };

  return {
    token,
    pods: () => [...pods].filter((pod) => pod.alive),
    async startPod(spec) {
      const revision = spec.revision ?? 0;
      const hash = templateHash(spec.version, revision);
      const index = (counters.get(hash) ?? 0) + 1;
      counters.set(hash, index);
      const name = `orders-${hash}-${index}`;
      const [appPort, agentPort] = [await freePort(), await freePort()];
      const appUrl = `http://127.0.0.1:${appPort}`;
      const agentUrl = `http://127.0.0.1:${agentPort}`;
      const appLog = join(options.runDirectory, `${name}.app.log`);
      const agentLog = join(options.runDirectory, `${name}.agent.log`);
      const config = join(options.runDirectory, `${name}.agent.json`);
      writeFileSync(
        config,
        JSON.stringify(
          {
            app: { url: appUrl, timeoutMs: 2_000 },
            listen: { host: '127.0.0.1', port: agentPort },
            intervalMs: timings.agentIntervalMs,
            warmupMs: timings.agentWarmupMs,
            historyMs: 300_000,
            policy: options.policy,
            fleet: {
              peers: (spec.peers ?? []).map((peer) => peer.agentUrl),
              intervalMs: timings.agentIntervalMs,
              staleAfterMs: Math.max(5_000, 5 * timings.agentIntervalMs),
              timeoutMs: 1_000,
            },
            ...(infra.kafka === undefined
              ? {}
              : {
                  kafka: { brokers: infra.kafka.brokers, clientId: name },
                  events: { kafka: true, heartbeatMs: 10_000 },
                }),
          },
          null,
          2,
        ),
      );
      const app = new ManagedProcess({
        name,
        command: process.execPath,
        args: ['--import', '@gantry/telemetry/register', 'src/main.ts'],
        cwd: SERVICE_DIR,
        logFile: appLog,
        env: childEnv(appEnvironment(spec.version, appPort)),
      });
      const agent = new ManagedProcess({
        name: `${name}-agent`,
        command: process.execPath,
        args: [AGENT_CLI, 'run', '--config', config, '--token-file', tokenFile, '--log-level', 'info'],
        cwd: REPOSITORY_ROOT,
        logFile: agentLog,
        env: childEnv({
          GANTRY_AGENT_POD_NAME: name,
          GANTRY_AGENT_POD_NAMESPACE: 'demo',
          GANTRY_AGENT_POD_TEMPLATE_HASH: hash,
          GANTRY_AGENT_VERSION: spec.version,
          GANTRY_AGENT_SERVICE: 'orders',
          GANTRY_AGENT_PODINFO_DIR: join(options.runDirectory, 'no-podinfo'),
        }),
      });
      await Promise.all([app.spawn(), agent.spawn()]);
      const timeout = options.readyTimeoutMs ?? 60_000;
      try {
        await Promise.all([
          waitFor(`${name} readiness`, () => ok(`${appUrl}/q/health/ready`), timeout, app.exited()),
          waitFor(`${name} sidecar`, () => ok(`${agentUrl}/readyz`), timeout, agent.exited()),
        ]);
      } catch (error) {
        await Promise.all([app.stop('SIGKILL', 1_000), agent.stop('SIGKILL', 1_000)]);
        throw new Error(`${(error as Error).message} (logs: ${appLog}, ${agentLog})`, { cause: error });
      }
      let terminating: Promise<number | null> | undefined;
      const pod: Pod = {
        name,
        version: spec.version,
        revision,
        hash,
        appUrl,
        agentUrl,
        backend: { id: name, url: appUrl, version: spec.version },
        startedAt: Date.now(),
        appLog,
        agentLog,
        get alive() {
          return app.running;
        },
        terminate: () =>
          (terminating ??= (async () => {
            // Like the kubelet: SIGTERM, then SIGKILL once the grace period (30 s) is over.
            await app.stop('SIGTERM', 30_000);
            const code = await app.exited();
            await agent.stop('SIGTERM', 5_000);
            pods.delete(pod);
            return code;
          })()),
      };
      pods.add(pod);
      return pod;
    },
    async close() {
      await Promise.all([...pods].map((pod) => pod.terminate()));
    },
  };
}
