// Canary vs baseline across pods: each app has its own agent; agents find each other through static peers or a DNS
// name and pull /gate/v1/summary. The compare gate then judges the canary pods against the baseline pods.
import { afterEach, describe, expect, it } from 'vitest';
import type { AgentOptions } from '../src/options.ts';
import { drive, type Behaviour } from './app.ts';
import { startPod, type JsonBody, type Pod } from './helpers.ts';

const pods: Pod[] = [];
afterEach(async () => {
  await Promise.all(pods.splice(0).map((pod) => pod.close()));
});

async function pod(behaviour: Partial<Behaviour>, options: Partial<AgentOptions>): Promise<Pod> {
  const created = await startPod(behaviour, options);
  pods.push(created);
  return created;
}

/** A baseline pod and a canary pod whose agent lists the baseline agent as a static peer. */
async function canaryAndBaseline(
  canary: Partial<Behaviour>,
  baseline: Partial<Behaviour>,
  policy: AgentOptions['policy'] = {},
) {
  const base = await pod(baseline, { identity: { pod: 'orders-b4s3-1', podTemplateHash: 'b4s3' }, policy });
  const can = await pod(canary, {
    identity: { pod: 'orders-c4n4-1', podTemplateHash: 'c4n4' },
    fleet: { peers: [base.agent.url()] },
    policy,
  });
  return { base, can };
}

/** One round: traffic to both apps, a watch cycle on both agents, then the canary pulls the baseline summary. */
async function round(base: Pod, can: Pod, requests: number, concurrency = 8): Promise<void> {
  await Promise.all([drive(base.app.url, requests, concurrency), drive(can.app.url, requests, concurrency)]);
  await Promise.all([base.agent.cycle(), can.agent.cycle()]);
  await can.agent.syncFleet();
}

describe('compare gate across pods (static peers)', () => {
  it('fails a canary with 5% errors against a 0.5% baseline within the documented 800 requests per side', async () => {
    const { base, can } = await canaryAndBaseline({ errorRate: 0.05 }, { errorRate: 0.005 });
    const query = '/gate/v1/analysis?gate=compare&runId=cmp-1&expectHash=c4n4&baselineHash=b4s3';
    await can.agent.syncFleet();
    expect((await can.call(query)).body.verdict).toBe('pending');
    let verdict: JsonBody;
    for (let index = 0; index < 8; index += 1) {
      await round(base, can, 100);
      verdict = (await can.call(query)).body;
      if (verdict.verdict !== 'pending') break;
    }
    expect(verdict).toMatchObject({ verdict: 'fail', reasonCode: 'COMPARE_ERROR_RATE' });
    expect(verdict.evidence.samples).toBeLessThanOrEqual(800);
    expect(verdict.baseline).toMatchObject({ podTemplateHash: 'b4s3' });
    expect(verdict.test).toMatchObject({ method: 'msprt-binomial+mann-whitney+tail', alpha: 0.05 });
    expect(verdict.test.errorDiffLower).toBeGreaterThan(0.005);
    expect(verdict.fleet).toMatchObject({ podsReporting: 1, baselinePods: 1 });
  });

  it('answers inconclusive (ENVIRONMENTAL), not fail, when the baseline degrades as much as the canary', async () => {
    const { base, can } = await canaryAndBaseline(
      { errorRate: 0.08 },
      { errorRate: 0.08 },
      { failAfter: 1, triggers: { errorRateForMs: 0, minSamples: 20 } },
    );
    const suffix = '&runId=env-1&expectHash=c4n4&baselineHash=b4s3';
    await can.agent.syncFleet();
    await can.call(`/gate/v1/analysis?gate=compare${suffix}`);
    await can.call(`/gate/v1/analysis?gate=slo${suffix}`);
    for (let index = 0; index < 4; index += 1) await round(base, can, 150);
    const compare = (await can.call(`/gate/v1/analysis?gate=compare${suffix}`)).body;
    expect(compare).toMatchObject({ verdict: 'inconclusive', reasonCode: 'ENVIRONMENTAL' });
    const slo = (await can.call(`/gate/v1/analysis?gate=slo${suffix}`)).body;
    expect(slo).toMatchObject({ verdict: 'inconclusive', reasonCode: 'ENVIRONMENTAL' });
    expect(slo.reason).toContain('baseline degraded alike');
    const rollback = (await can.call(`/gate/v1/analysis?gate=rollback${suffix}`)).body;
    expect(rollback).toMatchObject({ verdict: 'inconclusive', reasonCode: 'ENVIRONMENTAL' });
  });

  it('passes an equal canary once non-inferiority is shown, and fails a slower one on latency', async () => {
    const policy = { compare: { errorMargin: 0.01 } };
    const { base, can } = await canaryAndBaseline({}, {}, policy);
    const query = '/gate/v1/analysis?gate=compare&runId=aa-1';
    await can.agent.syncFleet();
    await can.call(query);
    let verdict: JsonBody;
    for (let index = 0; index < 12; index += 1) {
      await round(base, can, 150);
      verdict = (await can.call(query)).body;
      if (verdict.verdict !== 'pending') break;
    }
    expect(verdict).toMatchObject({ verdict: 'pass', reasonCode: 'OK' });
    expect(verdict.reason).toMatch(/^non-inferior: err 0\.00% vs baseline 0\.00%/);

    can.app.set({ delayMs: 30 });
    const slow = '/gate/v1/analysis?gate=compare&runId=slow-1';
    await can.call(slow);
    for (let index = 0; index < 6; index += 1) {
      await round(base, can, 100, 20);
      verdict = (await can.call(slow)).body;
      if (verdict.verdict !== 'pending') break;
    }
    expect(verdict).toMatchObject({ verdict: 'fail', reasonCode: 'COMPARE_LATENCY' });
  });

  const schema = (current: string, max: string, lastContract: string | null) => ({
    current,
    phase: lastContract === current ? ('contract' as const) : ('expand' as const),
    supports: { min: '1.0.0', max },
    pending: 0,
    failed: [],
    lastContract,
  });

  it('refuses to recommend rollback when a contract past what the baseline survives was applied', async () => {
    const { base, can } = await canaryAndBaseline(
      { schema: schema('1.3.0', '1.3.0', '1.3.0') },
      { schema: schema('1.3.0', '1.2.0', '1.3.0') },
    );
    can.app.set({ down: true });
    for (let index = 0; index < 5; index += 1) await Promise.all([can.agent.cycle(), base.agent.cycle()]);
    await can.agent.syncFleet();
    const rollback = (await can.call('/gate/v1/analysis?gate=rollback')).body;
    expect(rollback).toMatchObject({ verdict: 'inconclusive', reasonCode: 'SCHEMA_INCOMPATIBLE' });
    expect(rollback.reason).toContain('fix forward');
    const promotion = (await can.call('/gate/v1/analysis?gate=schema')).body;
    expect(promotion).toMatchObject({ verdict: 'inconclusive', reasonCode: 'ROLLBACK_UNSAFE' });
    expect(promotion.reason).toContain('contract migration 1.3.0 ran and it survives contracts up to 1.2.0');
  });

  it('regression: expand migrations past the baseline supports.max made rollback "unsafe" (max bounds contracts)', async () => {
    // The database went to 1.3.0 with expand migrations only; the last contract (1.1.0) is one the baseline
    // survives, so the old version still runs and rolling back is the right call.
    const { base, can } = await canaryAndBaseline(
      { schema: schema('1.3.0', '1.3.0', '1.1.0') },
      { schema: schema('1.3.0', '1.2.0', '1.1.0') },
    );
    can.app.set({ down: true });
    for (let index = 0; index < 5; index += 1) await Promise.all([can.agent.cycle(), base.agent.cycle()]);
    await can.agent.syncFleet();
    const rollback = (await can.call('/gate/v1/analysis?gate=rollback')).body;
    expect(rollback).toMatchObject({ verdict: 'fail', reasonCode: 'HEALTH_FAILING' });
    const promotion = (await can.call('/gate/v1/analysis?gate=schema')).body;
    expect(promotion).toMatchObject({ verdict: 'pass', reasonCode: 'OK' });
    expect(promotion.reason).toContain('rolling back stays possible');
  });
});

describe('peer discovery through DNS', () => {
  it('finds the peer agent behind a real node:dns lookup of localhost', async () => {
    const base = await pod({}, { identity: { pod: 'orders-b4s3-dns', podTemplateHash: 'b4s3' } });
    const port = base.agent.address()!.port;
    const can = await pod(
      {},
      { identity: { pod: 'orders-c4n4-dns', podTemplateHash: 'c4n4' }, fleet: { dns: { name: 'localhost', port } } },
    );
    await can.agent.syncFleet();
    const verdict = (await can.call('/gate/v1/analysis?gate=compare&runId=dns-1')).body;
    expect(verdict.fleet.baselinePods).toBe(1);
    expect(verdict.reasonCode).toBe('INSUFFICIENT_DATA');
  });

  it('uses an injected resolver, and survives one that fails (counted, no crash)', async () => {
    const base = await pod({}, { identity: { pod: 'orders-b4s3-res', podTemplateHash: 'b4s3' } });
    const port = base.agent.address()!.port;
    let fail = false;
    // The canary agent's clock moves on instead of the test sleeping past fleet.staleAfterMs.
    let offset = 0;
    const can = await pod(
      {},
      {
        now: () => Date.now() + offset,
        identity: { pod: 'orders-c4n4-res', podTemplateHash: 'c4n4' },
        fleet: { dns: { name: 'orders-agents.shop.svc.cluster.local', port }, staleAfterMs: 1_000 },
        resolver: async (name) => {
          if (fail) throw new Error(`getaddrinfo ENOTFOUND ${name}`);
          return ['127.0.0.1'];
        },
      },
    );
    await can.agent.syncFleet();
    expect((await can.call('/gate/v1/analysis?gate=compare&runId=res-1')).body.fleet.baselinePods).toBe(1);
    fail = true;
    await can.agent.syncFleet();
    offset += 1_100;
    await can.agent.cycle();
    const after = (await can.call('/gate/v1/analysis?gate=compare&runId=res-1')).body;
    expect(after).toMatchObject({ verdict: 'pending', reasonCode: 'FLEET_NOT_READY' });
    const metrics = await can.call('/metrics');
    expect(metrics.text).toMatch(/gantry_agent_fleet_errors_total [1-9]/);
  });
});
