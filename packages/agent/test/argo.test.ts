// The Argo Rollouts `web` provider contract (reference/gates.md §1.4, §7.3): Argo only evaluates 2xx JSON bodies,
// reads one value with a Kubernetes jsonPath, and maps successCondition/failureCondition to
// Successful/Failed/Inconclusive. These tests send the requests Argo sends and apply the same extraction.
import { afterEach, describe, expect, it } from 'vitest';
import { drive } from './app.ts';
import { TOKEN, jsonPath, startPod, type JsonBody, type Pod } from './helpers.ts';

const pods: Pod[] = [];
afterEach(async () => {
  await Promise.all(pods.splice(0).map((pod) => pod.close()));
});

/** What Argo makes of one response with `successCondition: result == "pass"`, `failureCondition: result == "fail"`. */
function argoMeasurement(status: number, text: string): 'Successful' | 'Failed' | 'Inconclusive' | 'Error' {
  if (status < 200 || status >= 300) return 'Error';
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    return 'Successful'; // released Argo versions ignore conditions for non-JSON bodies (#4535): must never happen
  }
  let result: unknown;
  try {
    result = jsonPath(document, '{$.verdict}');
  } catch {
    return 'Error';
  }
  if (result === 'fail') return 'Failed';
  if (result === 'pass') return 'Successful';
  return 'Inconclusive';
}

describe('Argo Rollouts web provider', () => {
  it('answers the exact GET of the drop-in AnalysisTemplate with 200 JSON and a verdict Argo can read', async () => {
    const pod = await startPod({}, { identity: { pod: 'guestbook-6f9989bdd5-x7k2p', podTemplateHash: '6f9989bdd5' } });
    pods.push(pod);
    const url = `${pod.agent.url()}/gate/v1/analysis?gate=slo&expectHash=6f9989bdd5&baselineHash=7c8d9f6b44`;
    const first = await fetch(url, {
      headers: { Authorization: `Bearer ${TOKEN}`, 'User-Agent': 'Argo-Rollouts/v1.9.1' },
    });
    const firstText = await first.text();
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toMatch(/^application\/json/);
    expect(first.headers.get('cache-control')).toBe('no-store');
    expect(argoMeasurement(first.status, firstText)).toBe('Inconclusive');
    expect(JSON.parse(firstText)).toMatchObject({
      verdict: 'pending',
      reasonCode: 'INSUFFICIENT_DATA',
      runId: 'hash:6f9989bdd5',
    });
    await drive(pod.app.url, 120);
    await pod.agent.cycle();
    const second = await fetch(url, { headers: { Authorization: `Bearer ${TOKEN}` } });
    const text = await second.text();
    expect(argoMeasurement(second.status, text)).toBe('Successful');
    expect(JSON.parse(text)).toMatchObject({ verdict: 'pass', pass: true, target: { matches: true } });
  });

  it('answers 200 with verdict "fail" (not a non-2xx) so Argo records Failed and aborts', async () => {
    const pod = await startPod({ errorRate: 0.2 }, { policy: { failAfter: 1 } });
    pods.push(pod);
    await pod.call('/gate/v1/analysis?gate=slo&runId=argo-run');
    await drive(pod.app.url, 150);
    await pod.agent.cycle();
    const response = await pod.call('/gate/v1/analysis?gate=slo&runId=argo-run');
    expect(response.status).toBe(200);
    expect(argoMeasurement(response.status, response.text)).toBe('Failed');
  });

  it('accepts POST with jsonBody (Content-Type application/json) and PUT with a plain body', async () => {
    const pod = await startPod();
    pods.push(pod);
    const post = await pod.call('/gate/v1/analysis', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ gate: 'freeze', runId: 'argo:guestbook-abc-3', minSamples: 10 }),
    });
    expect(post.status).toBe(200);
    expect(post.body).toMatchObject({ verdict: 'pass', gate: 'freeze', runId: 'argo:guestbook-abc-3' });
    const put = await pod.call('/gate/v1/analysis?gate=freeze', { method: 'PUT', body: '{"runId":"put-run"}' });
    expect(put.body).toMatchObject({ verdict: 'pass', runId: 'put-run' });
  });

  it('turns caller mistakes into a 200 error verdict (Inconclusive, reason visible) instead of a non-2xx', async () => {
    const pod = await startPod();
    pods.push(pod);
    for (const path of [
      '/gate/v1/analysis?gate=nope',
      '/gate/v1/analysis?gate=slo&window=soon',
      '/gate/v1/analysis?gate=slo&maxErrorRate=2',
      '/gate/v1/analysis?scope=galaxy',
    ]) {
      const response = await pod.call(path);
      expect(response.status, path).toBe(200);
      expect(response.body, path).toMatchObject({ verdict: 'error', reasonCode: 'BAD_REQUEST' });
      expect(argoMeasurement(response.status, response.text)).toBe('Inconclusive');
    }
    const badJson = await pod.call('/gate/v1/analysis', { method: 'POST', body: '{"gate":' });
    expect(badJson.status).toBe(200);
    expect(badJson.body).toMatchObject({
      verdict: 'error',
      reasonCode: 'BAD_REQUEST',
      reason: 'body is not valid JSON',
    });
  });

  it('requires the bearer token: 401 without, 403 with a wrong one, both JSON', async () => {
    const pod = await startPod();
    pods.push(pod);
    const missing = await pod.call('/gate/v1/analysis?gate=slo', { token: null });
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toContain('Bearer');
    expect(missing.body).toMatchObject({ verdict: 'error', reasonCode: 'UNAUTHORIZED' });
    const wrong = await pod.call('/gate/v1/analysis?gate=slo', { token: 'x'.repeat(26) });
    expect(wrong.status).toBe(403);
  });

  it('long-polls with wait= until the next cycle decides, within the cap', async () => {
    const pod = await startPod();
    pods.push(pod);
    await drive(pod.app.url, 120);
    const pending = pod.call('/gate/v1/analysis?gate=slo&runId=wait-run&wait=8s');
    // The long-poll is waiting once its first evaluation (pending: no cycle saw the traffic yet) was counted; a
    // fixed sleep here let a slow machine run the cycle first, and the test then proved nothing about waiting.
    const waitingPattern =
      /gantry_agent_verdicts_total\{gate="slo",verdict="pending",reason_code="INSUFFICIENT_DATA"\} 1\b/;
    for (let attempt = 0; !waitingPattern.test((await pod.call('/metrics')).text); attempt += 1) {
      if (attempt > 200) throw new Error('the long-poll never made its first evaluation');
      await new Promise((resolve) => setImmediate(resolve));
    }
    await pod.agent.cycle();
    const response = await pending;
    expect(response.body.verdict).toBe('pass');
    expect((await pod.call('/gate/v1/runs/wait-run')).body.history.map((entry: JsonBody) => entry.verdict)).toEqual([
      'pending',
      'pass',
    ]);
  });

  it('keeps verdicts idempotent per run and cycle, and keeps a history at /gate/v1/runs/{id}', async () => {
    const pod = await startPod();
    pods.push(pod);
    const a = await pod.call('/gate/v1/analysis?gate=slo&runId=idem');
    const b = await pod.call('/gate/v1/analysis?gate=slo&runId=idem');
    expect(b.body.evaluatedAt).toBe(a.body.evaluatedAt);
    const run = await pod.call('/gate/v1/runs/idem');
    expect(run.status).toBe(200);
    expect(run.body.history).toHaveLength(1);
    expect(run.body.history[0]).toMatchObject({ gate: 'slo', verdict: 'pending', reasonCode: 'INSUFFICIENT_DATA' });
    expect((await pod.call('/gate/v1/runs/unknown')).status).toBe(404);
  });
});
