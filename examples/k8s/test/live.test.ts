// The manifests against the real routes. Two pods are simulated from the pod template (downward API files, the
// mounted Secret and ConfigMap, the container environment): a canary pod whose app is a fastify service built with
// @gantry/health and @gantry/telemetry, and a baseline pod (the agent package's test app, which serves the same
// contracts). Each runs a real @gantry/agent configured exactly as the gantry-agent CLI configures itself from that
// pod (`buildOptions`: config file ← environment ← flags, token files, pod identity). Then every URL the manifests
// name is requested: probes, Argo's AnalysisRun URLs with their arguments and headers, Flagger's webhooks with
// Flagger's payload. Overrides, and why: listen on port 0, the app URL's port (the test app cannot own 8080; the
// manifest test checks 8080 is the app port), the peers' port (same reason, the DNS name stays the manifest's), a
// clock set to the 10th of next month (the ConfigMap's month-end freeze must not depend on the day the test runs),
// cycles driven by the test instead of every 5 s, and no warm-up (so evidence counts at once).
import Fastify, { type FastifyInstance } from 'fastify';
import { createAgent, type Agent, type AgentOptions } from '@gantry/agent';
import { createCheck, createHealth, healthOptionsFromEnv, type Health } from '@gantry/health';
import { healthPlugin } from '@gantry/health/fastify';
import { fastifyTelemetry } from '@gantry/telemetry/fastify';
import { createTestTelemetry, type TestTelemetry } from '@gantry/telemetry/testing';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOptions } from '../../../packages/agent/src/cli.ts';
import { drive, startTestApp, type TestApp } from '../../../packages/agent/test/app.ts';
import {
  analysisArgs,
  analysisReferences,
  argoMeasurement,
  build,
  clusterAddress,
  find,
  relocate,
  simulateContainer,
  substituteArgs,
  type Json,
  type Resource,
} from './manifests.ts';

const CANARY_HASH = '6f9989bdd5';
const STABLE_HASH = '7c8d9f6b44';
const VERDICTS = ['pass', 'fail', 'pending', 'inconclusive', 'error'];

const overlays: Record<string, Resource[]> = {
  deployment: build('deployment'),
  'argo-canary': build('argo-canary'),
  'argo-bluegreen': build('argo-bluegreen'),
  flagger: build('flagger'),
};
const template = find(overlays['deployment']!, 'Deployment', 'orders').spec.template;
const ordersContainer = template.spec.containers.find((item: Json) => item.name === 'orders');
const agentContainer = template.spec.containers.find((item: Json) => item.name === 'gantry-agent');

// The 10th of next month, noon UTC: far from the month-end freeze in the ConfigMap, and 30 min of rollout ahead.
const target = new Date();
target.setUTCMonth(target.getUTCMonth() + 1, 10);
target.setUTCHours(12, 0, 0, 0);
let offset = target.getTime() - Date.now();
const now = (): number => Date.now() + offset;

/** The orders app as the container runs it: @gantry/health (shutdown timings from the pod's env) + telemetry. */
interface OrdersApp {
  readonly url: string;
  readonly health: Health;
  readonly state: { ready: boolean; failing: boolean };
  close(): Promise<void>;
}

async function startOrdersApp(env: Record<string, string>): Promise<OrdersApp & { telemetry: TestTelemetry }> {
  const telemetry = createTestTelemetry({
    serviceName: env['OTEL_SERVICE_NAME']!,
    serviceVersion: env['GANTRY_TELEMETRY_SERVICE_VERSION']!,
  });
  const options = healthOptionsFromEnv(env);
  const health = createHealth({
    ...options,
    shutdown: { ...options.shutdown, signals: [] }, // no process signal handlers inside the test runner
    registry: telemetry.registry,
  });
  const state = { ready: true, failing: false };
  health.addCheck(
    createCheck('database', () => state.ready),
    { groups: ['readiness', 'startup'], intervalMs: 100 },
  );
  const app: FastifyInstance = Fastify();
  await app.register(fastifyTelemetry, { telemetry: telemetry.telemetry, requestLogs: false });
  await app.register(healthPlugin, { health });
  let served = 0;
  app.get('/orders/:id', async (request, reply) => {
    served += 1;
    if (state.failing && served % 5 === 0) return reply.code(500).send({ error: 'injected' });
    return { id: (request.params as { id: string }).id, status: 'open' };
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  health.start();
  const address = app.server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${address.port}`,
    health,
    state,
    telemetry,
    close: async () => {
      await health.close();
      await app.close();
    },
  };
}

async function driveOrders(url: string, count: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const index = next;
      next += 1;
      const response = await fetch(`${url}/orders/${index % 50}`);
      await response.arrayBuffer();
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

/** An agent configured from the simulated pod, the way `gantry-agent run` configures itself. */
async function startPodAgent(
  name: string,
  extraLabels: Record<string, string>,
  appUrl: string,
  overrides: Partial<AgentOptions>,
): Promise<{ agent: Agent; options: Record<string, unknown>; env: Record<string, string> }> {
  const pod = simulateContainer(overlays['deployment']!, template, 'gantry-agent', {
    name,
    namespace: 'shop',
    extraLabels,
  });
  const env = Object.fromEntries(Object.entries(pod.env).map(([key, value]) => [key, relocate(pod, value)]));
  const args = pod.args.map((arg) => relocate(pod, arg));
  const built = await buildOptions(args, env);
  expect(built.command).toBe('run');
  const options = built.options as AgentOptions & Record<string, unknown>;
  const manifestApp = new URL((options.app as { url: string }).url);
  expect(`${manifestApp.hostname}:${manifestApp.port}`).toBe(`127.0.0.1:${ordersContainer.ports[0].containerPort}`);
  const agent = createAgent({
    ...options,
    app: { ...options.app, url: appUrl },
    listen: { host: '127.0.0.1', port: 0 },
    intervalMs: '1h',
    warmupMs: 0,
    registry: new Registry(),
    now,
    ...overrides,
  });
  await agent.start();
  return { agent, options, env };
}

let canaryApp: OrdersApp & { telemetry: TestTelemetry };
let baselineApp: TestApp;
let canary: Agent;
let baseline: Agent;
let canaryOptions: Record<string, unknown>;

/** One scrape-and-evaluate round of both agents, 10 s later on their clock (as in a cluster, where they run every 5 s). */
async function cycle(): Promise<void> {
  offset += 10_000;
  await baseline.cycle();
  await canary.syncFleet();
  await canary.cycle();
}

beforeAll(async () => {
  const appEnv = simulateContainer(overlays['deployment']!, template, 'orders', {
    name: 'orders-6f9989bdd5-x7k2p',
    namespace: 'shop',
    extraLabels: { 'rollouts-pod-template-hash': CANARY_HASH },
  }).env;
  canaryApp = await startOrdersApp(appEnv);
  baselineApp = await startTestApp({ version: '1.9.0', schema: null });
  baseline = (
    await startPodAgent('orders-7c8d9f6b44-q8w2n', { 'rollouts-pod-template-hash': STABLE_HASH }, baselineApp.url, {
      fleet: {},
    })
  ).agent;
  const baselinePort = Number(new URL(baseline.url()).port);
  const started = await startPodAgent(
    'orders-6f9989bdd5-x7k2p',
    { 'rollouts-pod-template-hash': CANARY_HASH },
    canaryApp.url,
    {
      // The peers' DNS name is the manifest's (orders-agents); only its port differs here.
      resolver: async (host: string) => {
        if (host !== 'orders-agents') throw new Error(`unexpected peer name ${host}`);
        return ['127.0.0.1'];
      },
    },
  );
  canaryOptions = started.options;
  const dns = (canaryOptions['fleet'] as { dns: { name: string } }).dns;
  expect(dns.name).toBe('orders-agents');
  await started.agent.close();
  canary = createAgent({
    ...(canaryOptions as AgentOptions),
    app: { ...(canaryOptions['app'] as object), url: canaryApp.url },
    listen: { host: '127.0.0.1', port: 0 },
    intervalMs: '1h',
    warmupMs: 0,
    registry: new Registry(),
    now,
    fleet: { ...(canaryOptions['fleet'] as object), dns: { name: dns.name, port: baselinePort } },
    resolver: async (host: string) => {
      if (host !== 'orders-agents') throw new Error(`unexpected peer name ${host}`);
      return ['127.0.0.1'];
    },
  });
  await canary.start();
}, 60_000);

afterAll(async () => {
  await canary?.close();
  await baseline?.close();
  await canaryApp?.close();
  await canaryApp?.telemetry.shutdown();
  await baselineApp?.close();
});

describe('probes', () => {
  it("the app's startup, readiness and liveness probes answer 200 on the paths the manifest names", async () => {
    for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
      const response = await fetch(`${canaryApp.url}${ordersContainer[probe].httpGet.path}`);
      expect(response.status, probe).toBe(200);
      expect(await response.json(), probe).toMatchObject({ status: 'UP' });
    }
  });

  it("the agent's liveness and readiness probes answer 200 once it has read the app", async () => {
    await cycle();
    for (const probe of ['livenessProbe', 'readinessProbe']) {
      const response = await fetch(`${canary.url()}${agentContainer[probe].httpGet.path}`);
      expect(response.status, probe).toBe(200);
    }
  });

  it('readiness goes 503 when a readiness check fails, and the agent follows (the pod leaves its Services)', async () => {
    canaryApp.state.ready = false;
    try {
      await expect
        .poll(async () => (await fetch(`${canaryApp.url}${ordersContainer.readinessProbe.httpGet.path}`)).status, {
          timeout: 15_000,
        })
        .toBe(503);
      expect((await fetch(`${canaryApp.url}${ordersContainer.livenessProbe.httpGet.path}`)).status).toBe(200);
      await cycle();
      expect((await fetch(`${canary.url()}${agentContainer.readinessProbe.httpGet.path}`)).status).toBe(503);
    } finally {
      canaryApp.state.ready = true;
    }
    await expect
      .poll(async () => (await fetch(`${canaryApp.url}${ordersContainer.readinessProbe.httpGet.path}`)).status, {
        timeout: 15_000,
      })
      .toBe(200);
    await cycle();
    expect((await fetch(`${canary.url()}${agentContainer.readinessProbe.httpGet.path}`)).status).toBe(200);
  });

  it('/q/metrics carries the HTTP histogram the agent reads', async () => {
    await driveOrders(canaryApp.url, 10);
    const text = await (await fetch(`${canaryApp.url}/q/metrics`)).text();
    expect(text).toContain('http_server_request_duration_seconds_bucket');
    expect(text).toContain('http_route="/orders/:id"');
  });
});

/** One request of an AnalysisRun, built from the template, the Rollout's args, and sent to the agent. */
interface ArgoCall {
  readonly overlay: string;
  readonly where: string;
  readonly gate: string;
  readonly metric: Json;
  readonly url: string;
  readonly headers: Record<string, string>;
}

function argoCalls(): ArgoCall[] {
  const calls: ArgoCall[] = [];
  for (const overlay of ['argo-canary', 'argo-bluegreen']) {
    const resources = overlays[overlay]!;
    const rollout = find(resources, 'Rollout', 'orders');
    for (const reference of analysisReferences(rollout)) {
      for (const templateName of reference.templates) {
        const analysisTemplate = find(resources, 'AnalysisTemplate', templateName);
        const args = analysisArgs(analysisTemplate, reference.args, {
          resources,
          latestHash: CANARY_HASH,
          stableHash: STABLE_HASH,
        });
        for (const metric of analysisTemplate.spec.metrics) {
          const url = substituteArgs(metric.provider.web.url, args);
          const headers = Object.fromEntries(
            (metric.provider.web.headers ?? []).map((header: Json) => [header.key, substituteArgs(header.value, args)]),
          );
          const gate = new URL(url).searchParams.get('gate') ?? 'slo';
          calls.push({ overlay, where: `${reference.where} (${templateName})`, gate, metric, url, headers });
        }
      }
    }
  }
  return calls;
}

/** Sends an AnalysisRun's request to the agent that sits behind the Service it names. */
async function measure(call: ArgoCall) {
  const address = clusterAddress(call.url, 'argo-rollouts');
  const response = await fetch(`${canary.url()}${address.path}`, {
    method: call.metric.provider.web.method ?? 'GET',
    headers: call.headers,
  });
  const body = await response.text();
  return { status: response.status, body, ...argoMeasurement(call.metric, response.status, body) };
}

const calls = argoCalls();

describe('Argo Rollouts: the AnalysisRuns the Rollouts create', () => {
  it('covers every analysis of both Rollouts', () => {
    expect(calls.map((call) => `${call.overlay} ${call.gate}`).sort()).toEqual(
      [
        'argo-bluegreen slo',
        'argo-bluegreen smoke',
        'argo-canary compare',
        'argo-canary promotion',
        'argo-canary rollback',
      ].sort(),
    );
  });

  it('every URL, with its arguments and bearer token, gets 200 JSON whose {$.verdict} is a verdict', async () => {
    for (const call of calls) {
      const result = await measure(call);
      expect(result.status, `${call.overlay} ${call.where}: ${result.body}`).toBe(200);
      expect(result.phase, call.where).not.toBe('Error');
      expect(VERDICTS, call.where).toContain(result.result);
      const document = JSON.parse(result.body);
      expect(document.target, call.where).toMatchObject({
        expected: { podTemplateHash: CANARY_HASH },
        matches: true,
      });
    }
  });

  it('with healthy traffic on both versions: smoke, slo and the watch succeed; compare sees the baseline pod', async () => {
    await Promise.all([driveOrders(canaryApp.url, 300), drive(baselineApp.url, 300)]);
    await cycle();
    const byGate = new Map(calls.map((call) => [call.gate, call]));
    expect((await measure(byGate.get('smoke')!)).phase).toBe('Successful');
    expect((await measure(byGate.get('slo')!)).phase).toBe('Successful');
    expect((await measure(byGate.get('rollback')!)).phase).toBe('Successful');
    const compare = await measure(byGate.get('compare')!);
    expect(['Successful', 'Inconclusive']).toContain(compare.phase);
    const document = JSON.parse(compare.body);
    expect(document.fleet.baselinePods).toBe(1);
    expect(document.baseline.podTemplateHash).toBe(STABLE_HASH);
    expect(['Successful', 'Inconclusive']).toContain((await measure(byGate.get('promotion')!)).phase);
  });

  it('a typo in the path, the token or the jsonPath turns a measurement into an Error', async () => {
    const call = calls[0]!;
    const broken = [
      { ...call, url: call.url.replace('/gate/v1/analysis', '/gate/v1/analyse') },
      { ...call, headers: { Authorization: 'Bearer not-the-token-0123456789' } },
      {
        ...call,
        metric: { ...call.metric, provider: { web: { ...call.metric.provider.web, jsonPath: '{$.verdikt}' } } },
      },
    ];
    for (const item of broken) expect((await measure(item)).phase).toBe('Error');
  });
});

// Flagger's requests: the Canary's webhooks, with the payload Flagger posts.
const canaryResource = find(overlays['flagger']!, 'Canary', 'orders');
const hooks: Json[] = canaryResource.spec.analysis.webhooks;
const phaseOf: Record<string, string> = {
  'confirm-rollout': 'Initialized',
  'post-rollout': 'Succeeded',
  rollback: 'Progressing',
  event: 'Progressing',
};
// Which agent answers: the Service in the URL decides (primary pods → the baseline agent here).
const agentFor = (url: string): Agent =>
  clusterAddress(url, undefined).service.endsWith('-primary') ? baseline : canary;

async function callHook(hook: Json, metadata: Record<string, string> = hook.metadata) {
  const address = clusterAddress(hook.url, canaryResource.metadata.namespace);
  const payload = {
    name: canaryResource.metadata.name,
    namespace: canaryResource.metadata.namespace,
    phase: phaseOf[hook.type] ?? 'Progressing',
    checksum: '85d557f47b',
    metadata:
      hook.type === 'event'
        ? {
            ...metadata,
            eventMessage: 'Advance orders.shop canary weight 10',
            eventType: 'Normal',
            timestamp: String(Date.now()),
          }
        : metadata,
  };
  const response = await fetch(`${agentFor(hook.url).url()}${address.path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(payload),
  });
  const text = await response.text();
  return { status: response.status, text, body: JSON.parse(text) };
}

describe('Flagger: the webhooks of the Canary', () => {
  /** Flagger's semantics per hook type (reference/gates.md §2.2, the agent README). */
  const expectedStatus = (type: string, verdict: string): number => {
    switch (type) {
      case 'confirm-rollout':
      case 'confirm-traffic-increase':
      case 'confirm-promotion':
        return verdict === 'pass' ? 200 : 423;
      case 'pre-rollout':
        return verdict === 'pass' ? 200 : 412;
      case 'rollout':
        return verdict === 'fail' ? 412 : 200;
      case 'rollback':
        return verdict === 'fail' ? 200 : 412;
      case 'post-rollout':
        return 200;
      default:
        return 202;
    }
  };

  it('every webhook, with its metadata token, answers with the status Flagger reads for its verdict', async () => {
    await Promise.all([driveOrders(canaryApp.url, 300), drive(baselineApp.url, 300)]);
    await cycle();
    for (const hook of hooks) {
      const result = await callHook(hook);
      expect(VERDICTS, hook.name).toContain(result.body.verdict);
      expect(result.status, `${hook.name}: ${result.text}`).toBe(expectedStatus(hook.type, result.body.verdict));
      expect(result.text.length, hook.name).toBeLessThan(1024); // copied into Kubernetes Events
    }
  });

  it('a healthy canary: start, smoke, rollout, step and done proceed; rollback is not asked for', async () => {
    // this run (Flagger's checksum) began with the previous test: give it enough requests of its own
    await Promise.all([driveOrders(canaryApp.url, 300), drive(baselineApp.url, 300)]);
    await cycle();
    const statusOf = async (type: string): Promise<number> =>
      (await callHook(hooks.find((hook) => hook.type === type))).status;
    expect(await statusOf('confirm-rollout')).toBe(200);
    expect(await statusOf('pre-rollout')).toBe(200);
    expect(await statusOf('rollout')).toBe(200);
    expect(await statusOf('confirm-traffic-increase')).toBe(200);
    expect(await statusOf('rollback')).toBe(412);
    expect(await statusOf('post-rollout')).toBe(200);
    expect(await statusOf('event')).toBe(202);
  });

  it('the metadata token is what opens the hooks: a wrong one is refused', async () => {
    const result = await callHook(hooks[0], { ...hooks[0].metadata, token: 'not-the-flagger-token-0123' });
    expect(result.status).toBe(403);
  });
});

describe('when the canary goes bad', () => {
  it('a canary serving 20 % errors makes the slo gate Failed within the two cycles the policy asks for', async () => {
    const slo = calls.find((call) => call.gate === 'slo')!;
    canaryApp.state.failing = true;
    try {
      const phases: string[] = [];
      for (let round = 0; round < 2; round += 1) {
        await driveOrders(canaryApp.url, 300);
        await cycle();
        const result = await measure(slo); // Argo measures every interval, each cycle counts once
        phases.push(result.phase);
        if (result.phase === 'Failed') expect(JSON.parse(result.body).reasonCode).toBe('SLO_ERROR_RATE');
      }
      expect(phases).toEqual(['Inconclusive', 'Failed']);
    } finally {
      canaryApp.state.failing = false;
    }
  });

  it('a canary worse than its baseline fails the rollout hook (412, a failed check) and the compare gate', async () => {
    canaryApp.state.failing = true;
    try {
      await Promise.all([driveOrders(canaryApp.url, 600), drive(baselineApp.url, 600)]);
      await cycle();
      const result = await callHook(hooks.find((hook) => hook.type === 'rollout'));
      expect(result.body).toMatchObject({ verdict: 'fail', reasonCode: 'COMPARE_ERROR_RATE' });
      expect(result.status).toBe(412);
      expect((await measure(calls.find((call) => call.gate === 'compare')!)).phase).toBe('Failed');
    } finally {
      canaryApp.state.failing = false;
    }
  });
});
