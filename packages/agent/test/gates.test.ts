import { afterEach, describe, expect, it } from 'vitest';
import { drive } from './app.ts';
import { startPod, type Pod } from './helpers.ts';

const pods: Pod[] = [];
afterEach(async () => {
  await Promise.all(pods.splice(0).map((pod) => pod.close()));
});

async function pod(...args: Parameters<typeof startPod>): Promise<Pod> {
  const created = await startPod(...args);
  pods.push(created);
  return created;
}

describe('slo gate against a real app', () => {
  it('answers pending with the samples still needed and an ETA until enough traffic arrived', async () => {
    const { agent, app, call } = await pod();
    await call('/gate/v1/analysis?gate=slo&runId=r1');
    await drive(app.url, 40);
    await agent.cycle();
    const { status, body } = await call('/gate/v1/analysis?gate=slo&runId=r1');
    expect(status).toBe(200);
    expect(body.verdict).toBe('pending');
    expect(body.reasonCode).toBe('INSUFFICIENT_DATA');
    expect(body.reason).toMatch(/^n=40\/100 at [\d.]+ rps; ETA /);
    expect(body.evidence).toMatchObject({ samples: 40, minSamples: 100 });
  });

  it('passes a healthy version once the minimum sample is reached', async () => {
    const { agent, app, call } = await pod();
    await call('/gate/v1/analysis?gate=slo&runId=r2');
    await drive(app.url, 150);
    await agent.cycle();
    const { body } = await call('/gate/v1/analysis?gate=slo&runId=r2');
    expect(body).toMatchObject({ verdict: 'pass', pass: true, reasonCode: 'OK', gate: 'slo', runId: 'r2' });
    expect(body.metrics.errorRate).toBe(0);
    expect(body.metrics.p99Ms).toBeLessThan(500);
  });

  it('fails a version with a 10% error rate only after the breach lasted two cycles (hysteresis)', async () => {
    const { agent, app, call } = await pod({ errorRate: 0.1 });
    await call('/gate/v1/analysis?gate=slo&runId=r3');
    await drive(app.url, 200);
    await agent.cycle();
    const first = await call('/gate/v1/analysis?gate=slo&runId=r3');
    expect(first.body.verdict).toBe('pending');
    expect(first.body.reasonCode).toBe('SLO_ERROR_RATE');
    expect(first.body.reason).toContain('breach 1/2');
    // The same cycle answers the same (controller retries must not advance hysteresis).
    const retry = await call('/gate/v1/analysis?gate=slo&runId=r3');
    expect(retry.body.verdict).toBe('pending');
    await drive(app.url, 50);
    await agent.cycle();
    const second = await call('/gate/v1/analysis?gate=slo&runId=r3');
    expect(second.body.verdict).toBe('fail');
    expect(second.body.reasonCode).toBe('SLO_ERROR_RATE');
    expect(second.body.reason).toMatch(/^err \d+\.\d+% \(≥ \d+\.\d+% @95%\) > 1\.00%/);
  });

  it('fails a slow version on its p99 latency', async () => {
    const { agent, app, call } = await pod(
      { delayMs: 300 },
      { policy: { slo: { minSamples: 60, maxLatencyMs: 250 }, failAfter: 1 } },
    );
    await call('/gate/v1/analysis?gate=slo&runId=r4');
    await drive(app.url, 80, 20);
    await agent.cycle();
    const { body } = await call('/gate/v1/analysis?gate=slo&runId=r4');
    expect(body.verdict).toBe('fail');
    expect(body.reasonCode).toBe('SLO_LATENCY');
    expect(body.metrics.p99Ms).toBeGreaterThan(250);
  });

  it('leaves requests in the warm-up period out of the evidence', async () => {
    const { agent, app, call } = await pod({}, { warmupMs: 3_600_000 });
    await call('/gate/v1/analysis?gate=slo&runId=r5');
    await drive(app.url, 150);
    await agent.cycle();
    const { body } = await call('/gate/v1/analysis?gate=slo&runId=r5');
    expect(body.verdict).toBe('pending');
    expect(body.evidence.samples).toBe(0);
    const metrics = await call('/metrics');
    expect(metrics.text).toMatch(/gantry_agent_warmup_excluded_requests_total 150/);
  });

  it('leaves out the warm-up after a traffic shift announced by Flagger, then counts again', async () => {
    // The agent's clock runs an hour ahead of the app's start, so only the shift's warm-up applies.
    let offset = 3_600_000;
    const { agent, app, call } = await pod(
      {},
      { warmupMs: 60_000, now: () => Date.now() + offset, staleAfterMs: '1000d' },
    );
    await call('/gate/v1/analysis?gate=slo&runId=shift');
    await drive(app.url, 50);
    await agent.cycle();
    expect((await call('/gate/v1/analysis?gate=slo&runId=shift')).body.evidence.samples).toBe(50);
    const event = await call('/gate/v1/flagger/event', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        name: 'orders',
        namespace: 'shop',
        phase: 'Progressing',
        checksum: 'c1',
        metadata: { eventMessage: 'Advance orders.shop canary weight 40', eventType: 'Normal' },
      }),
    });
    expect(event.status).toBe(202);
    await drive(app.url, 70);
    await agent.cycle();
    const during = (await call('/gate/v1/analysis?gate=slo&runId=shift')).body;
    expect(during.evidence.samples).toBe(50);
    expect(during.evidence.sinceTrafficShift).toBeLessThan(60);
    offset += 61_000;
    await drive(app.url, 30);
    await agent.cycle();
    expect((await call('/gate/v1/analysis?gate=slo&runId=shift')).body.evidence.samples).toBe(80);
    expect((await call('/metrics')).text).toMatch(/gantry_agent_warmup_excluded_requests_total 70/);
  });

  it('answers TARGET_MISMATCH when the answering pod is not the expected version', async () => {
    const { call } = await pod({}, { identity: { pod: 'orders-abc', podTemplateHash: 'abc' } });
    const { status, body } = await call('/gate/v1/analysis?gate=slo&expectHash=def');
    expect(status).toBe(200);
    expect(body.verdict).toBe('inconclusive');
    expect(body.reasonCode).toBe('TARGET_MISMATCH');
    expect(body.target).toEqual({
      expected: { podTemplateHash: 'def' },
      actual: { podTemplateHash: 'abc', version: '1.0.0' },
      matches: false,
    });
  });

  it('answers 503 AGENT_ERROR when the app metrics cannot be read', async () => {
    // The agent's clock moves on instead of the test sleeping past staleAfterMs.
    let offset = 0;
    const { agent, app, call } = await pod({}, { staleAfterMs: 1_000, now: () => Date.now() + offset });
    await app.close();
    offset += 1_100;
    await agent.cycle();
    const { status, body } = await call('/gate/v1/analysis?gate=slo');
    expect(status).toBe(503);
    expect(body).toMatchObject({ verdict: 'error', reasonCode: 'AGENT_ERROR' });
    expect(body.reason).toMatch(/app metrics are \d/);
    const ready = await call('/readyz');
    expect(ready.status).toBe(503);
  });
});

describe('rollback triggers and the rollback gate', () => {
  it('recommends rollback after five consecutive failed health checks', async () => {
    const { agent, call, app } = await pod();
    for (let index = 0; index < 4; index += 1) {
      app.set({ down: index >= 0 });
      await agent.cycle();
    }
    let rollback = await call('/gate/v1/analysis?gate=rollback');
    expect(rollback.body.verdict).toBe('pass');
    await agent.cycle();
    rollback = await call('/gate/v1/analysis?gate=rollback');
    expect(rollback.body.verdict).toBe('fail');
    expect(rollback.body.reasonCode).toBe('HEALTH_FAILING');
    expect(rollback.body.reason).toMatch(/5 consecutive failed health checks/);
    const health = await call('/health', { token: null });
    expect(health.status).toBe(503);
    expect(health.headers.get('content-type')).toContain('application/health+json');
  });

  it('detects a flapping readiness probe', async () => {
    const { agent, call, app } = await pod();
    for (let index = 0; index < 8; index += 1) {
      app.set({ down: index % 2 === 1 });
      await agent.cycle();
    }
    const { body } = await call('/gate/v1/analysis?gate=rollback');
    expect(body.verdict).toBe('fail');
    expect(body.reason).toMatch(/readiness flapped \d+ times/);
  });

  it('fails the schema gate and recommends rollback when /q/info reports a failed migration', async () => {
    const { agent, call, app } = await pod();
    app.set({
      schema: {
        current: '1.2.0',
        phase: 'expand',
        supports: { min: '1.1.0', max: '1.3.0' },
        pending: 1,
        failed: [{ version: '1.3.0', description: 'add column orders.total' }],
        lastContract: null,
      },
    });
    await agent.cycle();
    const schema = await call('/gate/v1/analysis?gate=schema');
    expect(schema.body).toMatchObject({ verdict: 'fail', reasonCode: 'MIGRATION_FAILED' });
    expect(schema.body.reason).toContain('1.3.0');
    const rollback = await call('/gate/v1/analysis?gate=rollback');
    expect(rollback.body).toMatchObject({ verdict: 'fail', reasonCode: 'MIGRATION_FAILED' });
  });

  it('counts app restarts as a crash loop', async () => {
    const { agent, call, app } = await pod();
    for (let index = 0; index < 3; index += 1) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      app.restart();
      await agent.cycle();
    }
    const { body } = await call('/gate/v1/analysis?gate=rollback');
    expect(body).toMatchObject({ verdict: 'fail', reasonCode: 'CRASHLOOP' });
  });

  const schemaAt = (current: string, lastContract: string | null, phase: 'expand' | 'contract' | null = null) => ({
    current,
    phase,
    supports: { min: '1.1.0', max: '1.9.10' },
    pending: 0,
    failed: [],
    lastContract,
  });

  it('refuses promotion when a contract past what the app survives was applied, or the schema is too old', async () => {
    const { agent, call, app } = await pod();
    app.set({ schema: schemaAt('2.0.0', '1.10.0', 'expand') });
    await agent.cycle();
    const contracted = (await call('/gate/v1/analysis?gate=schema')).body;
    expect(contracted).toMatchObject({ verdict: 'fail', reasonCode: 'SCHEMA_INCOMPATIBLE' });
    expect(contracted.reason).toContain('contract migration 1.10.0 ran and it survives contracts up to 1.9.10');
    app.set({ schema: schemaAt('1.0.5', null) });
    await agent.cycle();
    const old = (await call('/gate/v1/analysis?gate=schema')).body;
    expect(old).toMatchObject({ verdict: 'fail', reasonCode: 'SCHEMA_INCOMPATIBLE' });
    expect(old.reason).toContain('it needs schema 1.1.0 and the database is at 1.0.5');
  });

  it('regression: expand migrations past supports.max failed the schema gate (max bounds contracts only)', async () => {
    const { agent, call, app } = await pod();
    app.set({ schema: schemaAt('2.0.0', '1.9.10', 'expand') });
    await agent.cycle();
    const { body } = await call('/gate/v1/analysis?gate=schema');
    expect(body).toMatchObject({ verdict: 'pass', reasonCode: 'OK' });
  });

  it('regression: a finished contract (phase stays "contract") held promotion as "in progress" forever', async () => {
    // phase is the phase of the newest applied migration: after a contract completed it stays `contract` until the
    // next migration. Without a baseline, only a contract applied during this run makes rolling back unsafe.
    const { agent, call, app } = await pod();
    app.set({ schema: schemaAt('1.5.0', '1.5.0', 'contract') });
    await agent.cycle();
    const finished = (await call('/gate/v1/analysis?gate=schema&runId=contract-1')).body;
    expect(finished).toMatchObject({ verdict: 'pass', reasonCode: 'OK' });
    app.set({ schema: schemaAt('1.6.0', '1.6.0', 'contract') });
    await agent.cycle();
    const during = (await call('/gate/v1/analysis?gate=schema&runId=contract-1')).body;
    expect(during).toMatchObject({ verdict: 'inconclusive', reasonCode: 'ROLLBACK_UNSAFE' });
    expect(during.reason).toContain('contract migration 1.6.0 ran during this rollout');
    // A run that starts after that contract has nothing to worry about.
    const next = (await call('/gate/v1/analysis?gate=schema&runId=contract-2')).body;
    expect(next).toMatchObject({ verdict: 'pass', reasonCode: 'OK' });
  });
});

describe('probe and identity endpoints', () => {
  it('serves /livez, /readyz, /version and /metrics with verdict counters', async () => {
    const { call } = await pod(
      { version: '1.8.0' },
      { identity: { pod: 'orders-6f99-x7k2p', podTemplateHash: '6f9989bdd5', namespace: 'shop' } },
    );
    expect((await call('/livez', { token: null })).status).toBe(200);
    expect((await call('/readyz', { token: null })).status).toBe(200);
    const version = await call('/version', { token: null });
    expect(version.body).toMatchObject({
      service: 'orders',
      version: '1.8.0',
      commit: 'abc1234',
      podTemplateHash: '6f9989bdd5',
      pod: 'orders-6f99-x7k2p',
      namespace: 'shop',
      flagsHash: 'f00d',
    });
    expect(version.body.schema).toMatchObject({ current: '1.2.0', appSupports: { min: '1.1.0', max: '1.2.0' } });
    await call('/gate/v1/analysis?gate=slo');
    const metrics = await call('/metrics', { token: null });
    expect(metrics.text).toContain(
      'gantry_agent_verdicts_total{gate="slo",verdict="pending",reason_code="INSUFFICIENT_DATA"} 1',
    );
    expect(metrics.text).toContain('gantry_agent_app_probe_up{probe="ready"} 1');
  });
});
