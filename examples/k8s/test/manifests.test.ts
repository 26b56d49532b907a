// The manifests' wiring, checked without a cluster: every overlay builds, Services reach the ports they name, every
// Secret/ConfigMap key referenced exists, the three pod templates are one, the sidecar is the agent package's, the
// timings fit @gantry/health's shutdown sequence (checked with the real package), and every URL the controllers
// will call names a Service and port that reach the agent. live.test.ts then sends those requests for real.
import { createHealth, createKafkaDisconnectHook, healthOptionsFromEnv } from '@gantry/health';
import { healthPlugin } from '@gantry/health/fastify';
import { createFlags, createMigrationFlag, flagsOptionsFromEnv } from '@gantry/flags';
import { createRotatingPool, createVault, rotatingPoolOptionsFromEnv, vaultOptionsFromEnv } from '@gantry/secrets';
import { createTestTelemetry } from '@gantry/telemetry/testing';
import Fastify from 'fastify';
import { FLAGGER_HOOKS, resolveAgentConfig } from '@gantry/agent';
import { buildOptions } from '../../../packages/agent/src/cli.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  MANIFESTS,
  OVERLAYS,
  analysisArgs,
  analysisReferences,
  build,
  clusterAddress,
  conditionLiterals,
  find,
  flaggerServices,
  keyRef,
  ofKind,
  readYaml,
  resolvePort,
  selects,
  serviceTarget,
  relocate,
  simulateContainer,
  workload,
  type Json,
  type Resource,
} from './manifests.ts';

const VERDICTS = ['pass', 'fail', 'pending', 'inconclusive', 'error'];
const overlays = Object.fromEntries(OVERLAYS.map((name) => [name, build(name)])) as Record<
  (typeof OVERLAYS)[number],
  Resource[]
>;
const deployment = find(overlays.deployment, 'Deployment', 'orders');
const template = deployment.spec.template;
const podSpec = template.spec;
const container = (name: string): Json => podSpec.containers.find((item: Json) => item.name === name);
const envOf = (name: string): Record<string, string> =>
  simulateContainer(overlays.deployment, template, name, {
    name: 'orders-5d8f7c9b6-x2x9q',
    namespace: 'shop',
    extraLabels: { 'pod-template-hash': '5d8f7c9b6' },
  }).env;
const seconds = (value: string): number => Number(value) / 1_000;

describe('overlays', () => {
  it.each(OVERLAYS)(
    '%s builds: every listed file exists, every file is listed, one object per kind and name',
    (name) => {
      const resources = overlays[name];
      const keys = resources.map((resource) => `${resource.object.kind}/${resource.object.metadata.name}`);
      expect(new Set(keys).size).toBe(keys.length);
      for (const { object, file } of resources) {
        expect(object.apiVersion, file).toEqual(expect.any(String));
        expect(object.metadata.name, file).toEqual(expect.any(String));
        if (object.kind !== 'Namespace') expect(object.metadata.namespace, file).toBe('shop');
      }
    },
  );

  it('the migrations folder builds and its Jobs are valid YAML with their Secret', () => {
    const secret = build('migrations', ['expand-job.yaml', 'contract-job.yaml']);
    for (const file of ['expand-job.yaml', 'contract-job.yaml']) {
      const [job] = readYaml(join(MANIFESTS, 'migrations', file));
      for (const item of [...(job.spec.template.spec.initContainers ?? []), ...job.spec.template.spec.containers]) {
        for (const variable of item.env) {
          const ref = variable.valueFrom?.secretKeyRef;
          if (ref !== undefined) expect(keyRef(secret, 'Secret', ref.name, ref.key)).toMatch(/^postgres:\/\//);
        }
      }
    }
  });

  it('the Argo Rollouts carry exactly the Deployment pod template (probes and timings cannot drift apart)', () => {
    for (const name of ['argo-canary', 'argo-bluegreen'] as const) {
      const rollout = find(overlays[name], 'Rollout', 'orders');
      expect(rollout.spec.template, name).toEqual(template);
      expect(rollout.spec.selector, name).toEqual(deployment.spec.selector);
    }
    expect(find(overlays.flagger, 'Deployment', 'orders')).toEqual(deployment);
  });

  it('the workload selector matches its own pod template', () => {
    expect(selects(deployment.spec.selector.matchLabels, template.metadata.labels)).toBe(true);
  });
});

describe('the pod', () => {
  it('runs the agent sidecar of packages/agent/deploy/sidecar.yaml (same args, ports, probes, mounts, lock-down)', () => {
    const reference = readYaml(join(MANIFESTS, '..', '..', 'packages', 'agent', 'deploy', 'sidecar.yaml'));
    const referencePod = reference.find((object: Json) => object.kind === 'Deployment').spec.template.spec;
    const wanted = referencePod.containers.find((item: Json) => item.name === 'gantry-agent');
    const agent = container('gantry-agent');
    expect(agent.args).toEqual(wanted.args);
    expect(agent.ports).toEqual(wanted.ports);
    expect(agent.livenessProbe.httpGet).toEqual(wanted.livenessProbe.httpGet);
    expect(agent.readinessProbe.httpGet).toEqual(wanted.readinessProbe.httpGet);
    expect(agent.securityContext).toEqual(wanted.securityContext);
    expect(agent.resources).toEqual(wanted.resources);
    expect(agent.volumeMounts).toEqual(wanted.volumeMounts);
    const names = (list: Json[]): string[] => list.map((item) => item.name);
    expect(names(agent.env)).toEqual(expect.arrayContaining(names(wanted.env)));
    for (const volume of referencePod.volumes) {
      const ours = podSpec.volumes.find((item: Json) => item.name === volume.name);
      if (volume.secret !== undefined) {
        expect(ours.secret.secretName).toBe(volume.secret.secretName);
        expect(ours.secret.items).toEqual(expect.arrayContaining(volume.secret.items));
      } else expect(ours, volume.name).toEqual(volume);
    }
  });

  it('gives the agent its pod identity through the downward API and the app on its own port', () => {
    const agentEnv = envOf('gantry-agent');
    expect(agentEnv['GANTRY_AGENT_POD_NAME']).toBe('orders-5d8f7c9b6-x2x9q');
    expect(agentEnv['GANTRY_AGENT_POD_NAMESPACE']).toBe('shop');
    const appUrl = new URL(agentEnv['GANTRY_AGENT_APP_URL']!);
    expect(appUrl.hostname).toBe('127.0.0.1');
    expect(resolvePort(podSpec, Number(appUrl.port), 'orders').name).toBe('http');
    expect(container('gantry-agent').ports).toEqual([{ name: 'gate', containerPort: 8686 }]);
  });

  it('configures the agent exactly as `gantry-agent run` would read it: config file, env, token files, identity', async () => {
    const pod = simulateContainer(overlays['argo-canary'], template, 'gantry-agent', {
      name: 'orders-6f9989bdd5-x7k2p',
      namespace: 'shop',
      extraLabels: { 'rollouts-pod-template-hash': '6f9989bdd5' },
    });
    const env = Object.fromEntries(Object.entries(pod.env).map(([key, value]) => [key, relocate(pod, value)]));
    const built = await buildOptions(
      pod.args.map((arg) => relocate(pod, arg)),
      env,
    );
    const config = resolveAgentConfig(built.options); // throws GANTRY_AGENT_INVALID_OPTION naming the field
    expect(config.identity).toMatchObject({
      pod: 'orders-6f9989bdd5-x7k2p',
      namespace: 'shop',
      podTemplateHash: '6f9989bdd5',
      version: template.metadata.labels['app.kubernetes.io/version'],
      service: 'orders',
    });
    expect(config.auth.token).toBe(keyRef(overlays.deployment, 'Secret', 'gantry-agent', 'token'));
    expect(config.auth.flaggerToken).toBe(keyRef(overlays.deployment, 'Secret', 'gantry-agent', 'flagger-token'));
    expect(config.fleet.dns).toMatchObject({ name: 'orders-agents', port: 8686 });
    expect(config.listen).toMatchObject({ port: 8686 });
    expect(config.policy.slo).toMatchObject({ maxErrorRate: 0.01, maxLatencyMs: 500, minSamples: 200 });
    expect(config.policy.calendars.map((calendar) => calendar.name)).toEqual(['finance-month-end']);
  });

  it('probes hit @gantry/health paths on the app port, and /livez /readyz on the agent port', () => {
    const orders = container('orders');
    expect(orders.startupProbe.httpGet.path).toBe('/q/health/started');
    expect(orders.readinessProbe.httpGet.path).toBe('/q/health/ready');
    expect(orders.livenessProbe.httpGet.path).toBe('/q/health/live');
    for (const probe of [orders.startupProbe, orders.readinessProbe, orders.livenessProbe])
      expect(resolvePort(podSpec, probe.httpGet.port, 'orders').containerPort).toBe(8080);
    const agent = container('gantry-agent');
    for (const probe of [agent.livenessProbe, agent.readinessProbe])
      expect(resolvePort(podSpec, probe.httpGet.port, 'gantry-agent').containerPort).toBe(8686);
  });

  it('labels the pod with the version its image carries (the agent and telemetry report that label)', () => {
    const tag = container('orders').image.split(':').at(-1);
    expect(template.metadata.labels['app.kubernetes.io/version']).toBe(tag);
    expect(envOf('orders')['GANTRY_TELEMETRY_SERVICE_VERSION']).toBe(tag);
  });

  it('resolves every Secret and ConfigMap reference of both containers (keys included)', () => {
    for (const name of ['orders', 'gantry-agent']) {
      const simulated = simulateContainer(overlays.deployment, template, name, {
        name: 'p',
        namespace: 'shop',
        extraLabels: {},
      });
      expect(Object.keys(simulated.env).length).toBeGreaterThan(0);
    }
    const agentFiles = simulateContainer(overlays.deployment, template, 'gantry-agent', {
      name: 'p',
      namespace: 'shop',
      extraLabels: {},
    });
    const agentEnv = agentFiles.env;
    expect(readFileSync(agentFiles.path(agentEnv['GANTRY_AGENT_TOKEN_FILE']!), 'utf8').length).toBeGreaterThanOrEqual(
      16,
    );
    expect(
      readFileSync(agentFiles.path(agentEnv['GANTRY_AGENT_FLAGGER_TOKEN_FILE']!), 'utf8').length,
    ).toBeGreaterThanOrEqual(16);
    expect(readFileSync(agentFiles.path(container('gantry-agent').args[2]), 'utf8')).toContain('policy:');
  });
});

describe('timings', () => {
  const orders = container('orders');
  const env = envOf('orders');
  const delay = seconds(env['GANTRY_HEALTH_SHUTDOWN_DELAY_MS']!);
  const drain = seconds(env['GANTRY_HEALTH_DRAIN_TIMEOUT_MS']!);
  const hook = seconds(env['GANTRY_HEALTH_HOOK_TIMEOUT_MS']!);

  it('hands @gantry/health the pod grace period, and no preStop adds to it', () => {
    expect(seconds(env['GANTRY_HEALTH_GRACE_PERIOD_MS']!)).toBe(podSpec.terminationGracePeriodSeconds);
    // @gantry/health delays in-process after SIGTERM; a preStop sleep would run first and eat the same budget.
    for (const item of podSpec.containers) expect(item.lifecycle?.preStop, item.name).toBeUndefined();
  });

  it('keeps serving after SIGTERM at least as long as the kubelet needs to see readiness DOWN, plus propagation', () => {
    const noticeSeconds = orders.readinessProbe.periodSeconds * orders.readinessProbe.failureThreshold;
    expect(delay).toBeGreaterThanOrEqual(noticeSeconds + 2);
    // the kubelet's 1 s default timeout would fail probes spuriously on a throttled CPU
    expect(orders.readinessProbe.timeoutSeconds).toBeGreaterThanOrEqual(2);
  });

  it("fits delay + drain + the packages' own shutdown hooks (built from the pod's env) into the grace period", async () => {
    // The hooks the orders service registers, made by the Gantry packages from the container's environment, with
    // their own timeouts: fastify (the health plugin), Kafka, the rotating pool, Vault, flags, the dual-write
    // migration flag, telemetry. @gantry/health itself checks the sum against the grace period at start.
    const budgetWarnings = async (poolHookTimeoutMs: number | undefined): Promise<unknown[]> => {
      const warnings: unknown[] = [];
      const logger = {
        info: () => undefined,
        debug: () => undefined,
        error: () => undefined,
        warn: (object: unknown) => {
          if ((object as Record<string, unknown>)['event'] === 'health.shutdown.budget_exceeded') warnings.push(object);
        },
        child: () => logger,
      };
      const telemetry = createTestTelemetry({ serviceName: env['OTEL_SERVICE_NAME']! });
      const options = healthOptionsFromEnv(env);
      const health = createHealth({
        ...options,
        shutdown: { ...options.shutdown, signals: [] },
        registry: telemetry.registry,
        logger,
      });
      // registered in start-up order; they run in reverse
      health.addShutdownHook(telemetry.telemetry.shutdownHook);
      const flagsOptions = flagsOptionsFromEnv(env);
      const flags = createFlags({ ...flagsOptions, appName: flagsOptions.appName!, registry: telemetry.registry });
      health.addShutdownHook(flags.shutdownHook());
      const orders = createMigrationFlag(flags, 'dual-write-orders-customer-key', {
        readOld: async (id: string) => id,
        readNew: async (id: string) => id,
        writeOld: async (order: string) => order,
        writeNew: async (order: string) => order,
      });
      health.addShutdownHook(orders.shutdownHook());
      const vault = createVault({ ...vaultOptionsFromEnv(env), registry: telemetry.registry });
      health.addShutdownHook(vault.shutdownHook());
      const pool = createRotatingPool({ vault, ...rotatingPoolOptionsFromEnv(env), registry: telemetry.registry });
      health.addShutdownHook(
        pool.shutdownHook(poolHookTimeoutMs === undefined ? {} : { timeoutMs: poolHookTimeoutMs }),
      );
      health.addShutdownHook(createKafkaDisconnectHook({ disconnect: async () => undefined }));
      const app = Fastify();
      await app.register(healthPlugin, { health });
      await app.ready();
      health.start();
      await health.close();
      await app.close();
      await telemetry.shutdown();
      return warnings;
    };
    expect(delay + drain + 40 + 1).toBeLessThanOrEqual(podSpec.terminationGracePeriodSeconds);
    // the pool's hook bounded at 10 s (its drain only waits for clients still checked out: requests have drained)
    expect(await budgetWarnings(10_000)).toEqual([]);
    // with its default bound (drainTimeoutMs + 5 s = 35 s) the sequence would not fit: the service must pass one
    expect(await budgetWarnings(undefined)).toHaveLength(1);
    expect(hook).toBe(5);
  });

  it('gives start-up a generous budget and restarts a hung process within half a minute', () => {
    const startup = orders.startupProbe;
    expect(startup.periodSeconds * startup.failureThreshold).toBeGreaterThanOrEqual(120);
    const live = orders.livenessProbe;
    expect(live.periodSeconds * live.failureThreshold).toBeLessThanOrEqual(30);
    expect(live.timeoutSeconds).toBeGreaterThanOrEqual(2);
  });

  it('rolls without a gap: no pod down before its replacement is Ready for minReadySeconds', () => {
    expect(deployment.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
    expect(deployment.spec.minReadySeconds).toBeGreaterThan(0);
    for (const name of ['argo-canary', 'argo-bluegreen'] as const)
      expect(find(overlays[name], 'Rollout', 'orders').spec.minReadySeconds).toBe(deployment.spec.minReadySeconds);
    expect(find(overlays['argo-canary'], 'Rollout', 'orders').spec.strategy.canary.maxUnavailable).toBe(0);
  });
});

describe('Services, the PDB and the fleet', () => {
  it.each(OVERLAYS)('%s: every Service port reaches a container port of the pods it selects', (name) => {
    const resources = overlays[name];
    const target = workload(resources);
    const labels = target.spec.template.metadata.labels;
    for (const service of ofKind(resources, 'Service')) {
      expect(selects(service.spec.selector, labels), service.metadata.name).toBe(true);
      for (const port of service.spec.ports) serviceTarget(service, port.port, target.spec.template.spec);
    }
  });

  it('the PDB and the agents headless Service select Flagger primary pods too (they rename app.kubernetes.io/name)', () => {
    const canary = find(overlays.flagger, 'Canary', 'orders');
    const { primaryLabels } = flaggerServices(canary, deployment);
    const pdb = find(overlays.deployment, 'PodDisruptionBudget', 'orders');
    const agents = find(overlays.deployment, 'Service', 'orders-agents');
    for (const labels of [template.metadata.labels, primaryLabels]) {
      expect(selects(pdb.spec.selector.matchLabels, labels)).toBe(true);
      expect(selects(agents.spec.selector, labels)).toBe(true);
    }
    expect(pdb.spec.maxUnavailable).toBe(1);
  });

  it("the agents' peer name is the headless Service, on the gate port", () => {
    const [name, port] = envOf('gantry-agent')['GANTRY_AGENT_PEERS_DNS']!.split(':');
    const agents = find(overlays.deployment, 'Service', name!);
    expect(agents.spec.clusterIP).toBe('None');
    expect(serviceTarget(agents, Number(port), podSpec)).toMatchObject({
      container: 'gantry-agent',
      containerPort: 8686,
    });
  });
});

describe('Argo Rollouts analysis wiring', () => {
  for (const name of ['argo-canary', 'argo-bluegreen'] as const) {
    const resources = overlays[name];
    const rollout = find(resources, 'Rollout', 'orders');
    const references = analysisReferences(rollout);

    it(`${name}: every analysis reaches the agent port of a version-specific Service, with every argument set`, () => {
      expect(references.length).toBeGreaterThan(0);
      for (const reference of references) {
        for (const templateName of reference.templates) {
          const analysisTemplate = find(resources, 'AnalysisTemplate', templateName);
          const args = analysisArgs(analysisTemplate, reference.args, {
            resources,
            latestHash: 'aaaaaaaaa',
            stableHash: 'bbbbbbbbb',
          });
          for (const metric of analysisTemplate.spec.metrics) {
            const url = metric.provider.web.url.replace(
              /\{\{\s*args\.([a-z-]+)\s*\}\}/g,
              (_: string, key: string) => args[key],
            );
            // The controller runs in its own namespace: a name without namespace would resolve there.
            const address = clusterAddress(url, 'argo-rollouts');
            expect(address.namespace, `${reference.where}: ${url}`).toBe('shop');
            const service = find(resources, 'Service', address.service);
            expect(serviceTarget(service, address.port, rollout.spec.template.spec)).toMatchObject({
              container: 'gantry-agent',
              containerPort: 8686,
            });
            expect(address.path).toMatch(/^\/gate\/v1\/analysis\?/);
            expect(metric.provider.web.jsonPath).toBe('{$.verdict}');
            for (const condition of [metric.successCondition, metric.failureCondition].filter(Boolean))
              for (const literal of conditionLiterals(condition)) expect(VERDICTS).toContain(literal);
            expect(metric.provider.web.timeoutSeconds).toBeLessThan(10);
          }
        }
      }
    });
  }

  it('canary: analyses ask the canary Service (the pods under test), never the stable or traffic one', () => {
    const rollout = find(overlays['argo-canary'], 'Rollout', 'orders');
    const canaryService = rollout.spec.strategy.canary.canaryService;
    for (const reference of analysisReferences(rollout)) {
      const service = reference.args.find((arg: Json) => arg.name === 'service').value;
      expect(service.split('.')[0], reference.where).toBe(canaryService);
    }
    // background watch starts after the first canary pods exist (an unreachable agent counts as an Error)
    expect(rollout.spec.strategy.canary.analysis.startingStep).toBeGreaterThanOrEqual(1);
  });

  it('blue-green: pre-promotion asks the preview Service, post-promotion the active one, and the old pods wait', () => {
    const strategy = find(overlays['argo-bluegreen'], 'Rollout', 'orders').spec.strategy.blueGreen;
    const serviceOf = (spec: Json): string => spec.args.find((arg: Json) => arg.name === 'service').value.split('.')[0];
    expect(serviceOf(strategy.prePromotionAnalysis)).toBe(strategy.previewService);
    expect(serviceOf(strategy.postPromotionAnalysis)).toBe(strategy.activeService);
    // scaleDownDelaySeconds would cancel the post-promotion analysis when it elapses
    expect(strategy.scaleDownDelaySeconds).toBeUndefined();
  });

  it('the gate template waits through "pending" and stops at "fail" (limits consistent with count)', () => {
    const gate = find(overlays['argo-canary'], 'AnalysisTemplate', 'gantry-gate').spec.metrics[0];
    expect(gate.failureLimit).toBe(0);
    expect(gate.consecutiveSuccessLimit).toBe(1);
    expect(gate.inconclusiveLimit).toBe(gate.count - 1);
    const watch = find(overlays['argo-canary'], 'AnalysisTemplate', 'gantry-watch').spec.metrics[0];
    expect(watch.count).toBeUndefined(); // runs for the whole rollout
    expect(watch.successCondition).toBeUndefined(); // only "fail" aborts
  });
});

describe('Flagger webhook wiring', () => {
  const resources = overlays.flagger;
  const canary = find(resources, 'Canary', 'orders');
  const target = find(resources, 'Deployment', canary.spec.targetRef.name);
  const { services } = flaggerServices(canary, target);

  it('has one webhook per hook type the agent serves, each URL its own', () => {
    const types: string[] = canary.spec.analysis.webhooks.map((hook: Json) => hook.type);
    expect(new Set(types).size).toBe(types.length);
    for (const type of types) expect(FLAGGER_HOOKS).toContain(type);
    for (const hook of canary.spec.analysis.webhooks)
      expect(new URL(hook.url).pathname).toBe(`/gate/v1/flagger/${hook.type}`);
  });

  it("every URL reaches the agent port of a Service Flagger generates, in the Canary's namespace", () => {
    for (const hook of canary.spec.analysis.webhooks) {
      const address = clusterAddress(hook.url, 'flagger-system');
      expect(address.namespace, hook.name).toBe(canary.metadata.namespace);
      const service = services.find((item) => item.metadata.name === address.service);
      expect(service, hook.url).toBeDefined();
      expect(serviceTarget(service, address.port, target.spec.template.spec)).toMatchObject({
        container: 'gantry-agent',
        containerPort: 8686,
      });
    }
  });

  it('confirm-rollout asks the primary pods: the canary Service has no endpoints before Flagger scales it up', () => {
    const hook = canary.spec.analysis.webhooks.find((item: Json) => item.type === 'confirm-rollout');
    expect(clusterAddress(hook.url, undefined).service).toBe(`${canary.spec.targetRef.name}-primary`);
  });

  it("sends the agent's Flagger token (the Secret key the sidecar mounts) in every webhook's metadata", () => {
    const token = keyRef(resources, 'Secret', 'gantry-agent', 'flagger-token');
    for (const hook of canary.spec.analysis.webhooks) expect(hook.metadata.token, hook.name).toBe(token);
    expect(token).not.toBe(keyRef(resources, 'Secret', 'gantry-agent', 'token'));
  });

  it('keeps the hooks of one analysis tick well inside the interval', () => {
    const toSeconds = (value: string): number => Number(value.slice(0, -1)) * (value.endsWith('m') ? 60 : 1);
    const perTick = canary.spec.analysis.webhooks
      .filter((hook: Json) =>
        ['rollout', 'rollback', 'confirm-traffic-increase', 'confirm-promotion'].includes(hook.type),
      )
      .reduce((sum: number, hook: Json) => sum + toSeconds(hook.timeout ?? '10s'), 0);
    expect(perTick).toBeLessThan(toSeconds(canary.spec.analysis.interval));
  });
});
