// The Flagger webhook contract (reference/gates.md §2.2, §7.4): POST with Flagger's payload, only 200/201/202 pass,
// 4xx bodies end up in Kubernetes Events, `rollback` is inverted, Flagger cannot send headers (metadata token).
import { afterEach, describe, expect, it } from 'vitest';
import { MONTH_END_FREEZE } from '../src/calendar.ts';
import { drive } from './app.ts';
import { TOKEN, startPod, type Pod } from './helpers.ts';

const pods: Pod[] = [];
afterEach(async () => {
  await Promise.all(pods.splice(0).map((pod) => pod.close()));
});

async function pod(...args: Parameters<typeof startPod>): Promise<Pod> {
  const created = await startPod(...args);
  pods.push(created);
  return created;
}

const payload = (extra: Record<string, unknown> = {}) => ({
  name: 'podinfo',
  namespace: 'test',
  phase: 'Progressing',
  checksum: '85d557f47b',
  ...extra,
});

/** Posts like Flagger: no Authorization header, JSON payload, metadata carries the token. */
async function hook(target: Pod, type: string, body: Record<string, unknown> = payload(), query = '') {
  const response = await fetch(`${target.agent.url()}/gate/v1/flagger/${type}${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, text, body: JSON.parse(text) as Record<string, unknown> };
}

const withToken = (extra: Record<string, string> = {}) => payload({ metadata: { token: TOKEN, ...extra } });

describe('Flagger webhooks', () => {
  it('authenticates with metadata.token, since Flagger cannot send headers', async () => {
    const target = await pod();
    expect((await hook(target, 'confirm-rollout', payload())).status).toBe(401);
    expect(
      (await hook(target, 'confirm-rollout', payload({ metadata: { token: 'wrong-token-wrong-token' } }))).status,
    ).toBe(403);
    const ok = await hook(target, 'confirm-rollout', withToken());
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ verdict: 'pass', runId: 'flagger:test/podinfo:85d557f47b', gate: 'start' });
    expect(ok.body).not.toHaveProperty('token');
  });

  it('confirm-rollout: 423 Locked during a manual hold (a wait, not a failed check), 200 once it is deleted', async () => {
    const target = await pod();
    const created = await target.call('/gate/v1/holds', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'incident INC-42', actor: 'alice', ttl: '30m' }),
    });
    expect(created.status).toBe(201);
    const held = await hook(target, 'confirm-rollout', withToken());
    expect(held.status).toBe(423);
    expect(held.body).toMatchObject({ verdict: 'pending', reasonCode: 'MANUAL_HOLD' });
    expect(held.body['reason']).toContain('held by alice');
    expect(held.text.length).toBeLessThan(1024);
    await target.call(`/gate/v1/holds/${created.body.hold.id}`, {
      method: 'DELETE',
      headers: { 'x-gantry-actor': 'bob' },
    });
    // Deleting the hold invalidates the cached verdict at once (no need to wait for the next cycle).
    expect((await hook(target, 'confirm-rollout', withToken())).status).toBe(200);
    const audit = await target.call('/gate/v1/audit');
    expect(
      audit.body.entries.map((entry: { action: string; actor: string }) => `${entry.action}:${entry.actor}`),
    ).toEqual(['hold.created:alice', 'hold.deleted:bob']);
  });

  it('pre-rollout: 412 when the canary is not healthy (a failed check), 200 when it is', async () => {
    const target = await pod();
    expect((await hook(target, 'pre-rollout', withToken())).status).toBe(200);
    target.app.set({ down: true });
    await target.agent.cycle();
    const failed = await hook(target, 'pre-rollout', withToken());
    expect(failed.status).toBe(412);
    expect(failed.body).toMatchObject({ verdict: 'fail', reasonCode: 'HEALTH_FAILING', gate: 'smoke' });
  });

  it('rollout: 200 on insufficient data (low traffic is not punished), 412 on a real failure', async () => {
    const target = await pod({ errorRate: 0.25 }, { policy: { failAfter: 1 } });
    const low = await hook(target, 'rollout', withToken(), '?gate=slo');
    expect(low.status).toBe(200);
    expect(low.body).toMatchObject({ verdict: 'pass', reasonCode: 'INSUFFICIENT_DATA' });
    await drive(target.app.url, 150);
    await target.agent.cycle();
    const failed = await hook(target, 'rollout', withToken(), '?gate=slo');
    expect(failed.status).toBe(412);
    expect(failed.body).toMatchObject({ verdict: 'fail', reasonCode: 'SLO_ERROR_RATE' });
  });

  it('confirm-traffic-increase and confirm-promotion: 423 while evidence is missing, 200 when it is there', async () => {
    const target = await pod();
    const step = await hook(target, 'confirm-traffic-increase', withToken());
    expect(step.status).toBe(423);
    const promote = await hook(target, 'confirm-promotion', withToken({ minSamples: '100' }));
    expect(promote.status).toBe(423);
    expect(promote.body).toMatchObject({ verdict: 'pending', reasonCode: 'INSUFFICIENT_DATA', gate: 'promotion' });
    expect(promote.body['reason']).toMatch(/^n=0\/100/);
    await drive(target.app.url, 150);
    await target.agent.cycle();
    expect((await hook(target, 'confirm-promotion', withToken({ minSamples: '100' }))).status).toBe(200);
    expect((await hook(target, 'confirm-traffic-increase', withToken())).status).toBe(200);
  });

  it('rollback: inverted — 412 while healthy, 200 ("roll back now") once a trigger fires', async () => {
    const target = await pod();
    const calm = await hook(target, 'rollback', withToken());
    expect(calm.status).toBe(412);
    expect(calm.body).toMatchObject({ verdict: 'pass' });
    target.app.set({ down: true });
    for (let index = 0; index < 5; index += 1) await target.agent.cycle();
    const now = await hook(target, 'rollback', withToken());
    expect(now.status).toBe(200);
    expect(now.body).toMatchObject({ verdict: 'fail', reasonCode: 'HEALTH_FAILING' });
  });

  it('event: 202 at once; post-rollout: 200 and the run is closed; a new checksum starts a new run', async () => {
    const target = await pod();
    const event = await hook(
      target,
      'event',
      payload({
        metadata: {
          token: TOKEN,
          eventMessage: 'Advance podinfo.test canary weight 20',
          eventType: 'Normal',
          timestamp: String(Date.now()),
        },
      }),
    );
    expect(event.status).toBe(202);
    const done = await hook(target, 'post-rollout', payload({ phase: 'Succeeded', metadata: { token: TOKEN } }));
    expect(done.status).toBe(200);
    const run = await target.call(`/gate/v1/runs/${encodeURIComponent('flagger:test/podinfo:85d557f47b')}`);
    expect(run.body).toMatchObject({ phase: 'Succeeded' });
    expect(run.body.closedAt).not.toBeNull();
    const next = await hook(target, 'confirm-rollout', payload({ checksum: 'aaaabbbb', metadata: { token: TOKEN } }));
    expect(next.body['runId']).toBe('flagger:test/podinfo:aaaabbbb');
  });

  it('confirm-rollout: 423 FREEZE_WINDOW inside the month-end freeze, FREEZE_AHEAD when a rollout would run into it', async () => {
    // 2026-01-30 16:45 UTC = 17:45 in Berlin: the freeze starts at 18:00 local.
    const base = Date.parse('2026-01-30T16:45:00Z');
    let offset = 0;
    const target = await pod(
      {},
      { now: () => base + offset, staleAfterMs: '1000d', policy: { calendars: [MONTH_END_FREEZE] } },
    );
    const ahead = await hook(target, 'confirm-rollout', withToken());
    expect(ahead.status).toBe(423);
    expect(ahead.body).toMatchObject({ verdict: 'pending', reasonCode: 'FREEZE_AHEAD' });
    expect(ahead.body['reason']).toContain('finance-month-end');
    // A short rollout (10 minutes) fits before the freeze.
    const short = await hook(target, 'confirm-rollout', withToken({ duration: '10m' }));
    expect(short.status).toBe(200);
    offset = 3_600_000;
    await target.agent.cycle();
    const inside = await hook(target, 'confirm-rollout', withToken());
    expect(inside.status).toBe(423);
    expect(inside.body).toMatchObject({ reasonCode: 'FREEZE_WINDOW' });
    expect(inside.body['reason']).toContain('until 2026-02-02T05:00:00.000Z');
    // An emergency override (audited, expiring) lets the rollout start.
    const override = await target.call('/gate/v1/holds', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        kind: 'override',
        reason: 'hotfix CVE-2026-1',
        actor: 'carol',
        ttl: '2h',
        gates: ['start'],
      }),
    });
    expect(override.status).toBe(201);
    expect((await hook(target, 'confirm-rollout', withToken())).status).toBe(200);
  });

  it('answers bad payloads with 400 (body copied into the Kubernetes Event), unknown hooks with 404', async () => {
    const target = await pod();
    const missing = await hook(target, 'rollout', { namespace: 'test' });
    expect(missing.status).toBe(400);
    expect(missing.body['reason']).toContain('name');
    const metadata = await hook(target, 'rollout', payload({ metadata: { minSamples: 5 } }));
    expect(metadata.status).toBe(400);
    expect((await hook(target, 'promote-everything', withToken())).status).toBe(404);
  });

  it('serves the loadtester-compatible gate API (drop-in for existing manifests)', async () => {
    const target = await pod();
    const post = async (path: string, body: Record<string, unknown>) =>
      (
        await fetch(`${target.agent.url()}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        })
      ).status;
    expect(await post('/gate/check', withToken())).toBe(403);
    expect(await post('/gate/open', withToken())).toBe(202);
    expect(await post('/gate/check', withToken())).toBe(200);
    expect(await post('/gate/close', withToken())).toBe(202);
    expect(await post('/gate/check', withToken())).toBe(403);
    expect(await post('/gate/approve', withToken())).toBe(200);
    expect(await post('/gate/halt', withToken())).toBe(403);
    expect(await post('/rollback/check', withToken())).toBe(403);
    expect(await post('/rollback/open', withToken())).toBe(202);
    expect(await post('/rollback/check', withToken())).toBe(200);
  });
});
