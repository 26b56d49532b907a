import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { startLoad, type LoadResult } from './load.ts';
import { createWeightedProxy, type ProxyResult, type WeightedProxy } from './proxy.ts';
import { renderReport } from './report.ts';
import { briefReason } from './summary.ts';
import { quantile, Timeline } from './timeline.ts';

const servers: Server[] = [];
let proxy: WeightedProxy | undefined;

afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
});

/** A backend answering every request with its version, whose readiness can be switched. */
async function backend(version: string): Promise<{ url: string; setReady(ready: boolean): void }> {
  let ready = true;
  const server = createServer((request, response) => {
    if (request.url === '/q/health/ready') {
      response.writeHead(ready ? 200 : 503).end();
      return;
    }
    response.writeHead(200, { 'x-app-version': version }).end(version);
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, setReady: (value) => (ready = value) };
}

describe('weighted proxy', () => {
  it('splits traffic by weight and routes only to ready backends', async () => {
    const v1 = await backend('v1');
    const v2 = await backend('v2');
    const results: ProxyResult[] = [];
    proxy = await createWeightedProxy({ readinessIntervalMs: 50, onResult: (result) => results.push(result) });
    proxy.setPools([{ id: 'v1-a', url: v1.url, version: 'v1' }], [{ id: 'v2-a', url: v2.url, version: 'v2' }]);
    await expect.poll(() => proxy!.inRotation()).toEqual({ stable: ['v1-a'], canary: ['v2-a'] });

    proxy.setCanaryWeight(25);
    const versions: string[] = [];
    for (let i = 0; i < 400; i += 1) versions.push(await (await fetch(proxy.url)).text());
    const canaryShare = versions.filter((version) => version === 'v2').length / versions.length;
    expect(canaryShare).toBeGreaterThan(0.15);
    expect(canaryShare).toBeLessThan(0.35);

    v2.setReady(false);
    await expect.poll(() => proxy!.inRotation().canary).toEqual([]);
    for (let i = 0; i < 50; i += 1) expect(await (await fetch(proxy.url)).text()).toBe('v1');
    expect(results.every((result) => result.status === 200)).toBe(true);
  });

  it('answers 502 and counts the error when a backend is gone', async () => {
    const v1 = await backend('v1');
    const results: ProxyResult[] = [];
    proxy = await createWeightedProxy({ readinessIntervalMs: 60_000, onResult: (result) => results.push(result) });
    proxy.setPools([{ id: 'v1-a', url: v1.url, version: 'v1' }], []);
    await expect.poll(() => proxy!.inRotation().stable).toEqual(['v1-a']);
    for (const server of servers) {
      server.closeAllConnections();
      server.close();
    }
    const response = await fetch(proxy.url);
    expect(response.status).toBe(502);
    expect(results.at(-1)?.error).toBe('ECONNREFUSED');
  });

  it('refuses a weight outside 0–100', async () => {
    proxy = await createWeightedProxy();
    expect(() => proxy!.setCanaryWeight(120)).toThrow(/from 0 to 100, got 120/);
  });
});

describe('load generator', () => {
  it('keeps its schedule and reports every request with the answering version', async () => {
    const v1 = await backend('v1');
    const results: LoadResult[] = [];
    const started = performance.now();
    const load = startLoad({
      url: v1.url,
      rate: 100,
      next: () => ({ method: 'GET', path: '/' }),
      onResult: (r) => results.push(r),
    });
    await sleep(1_000);
    const stopping = performance.now();
    await load.stop();
    // 100 a second for as long as it ran (a busy machine may wake this test late; the schedule catches up, it does
    // not burst beyond it): at least 80 % of the due requests, at most the due ones plus one tick's worth.
    const due = ((stopping - started) / 1000) * 100;
    expect(results.length).toBeGreaterThanOrEqual(Math.floor(due * 0.8));
    expect(results.length).toBeLessThanOrEqual(Math.ceil(due) + 5);
    expect(results.every((result) => result.status === 200 && result.version === 'v1')).toBe(true);
  });
});

describe('timeline and report', () => {
  it('aggregates per second, counts failures and drops, and renders charts and events', () => {
    const timeline = new Timeline(0);
    timeline.event({ at: 0, kind: 'phase', text: 'v2 rollout' });
    for (let i = 0; i < 100; i += 1) timeline.observe({ at: 10 + i, status: 200, ms: i, version: 'v1' });
    timeline.event({ at: 1_000, kind: 'weight', text: 'canary 10%', weight: 10 });
    timeline.observe({ at: 1_100, status: 500, ms: 5, version: 'v3' });
    timeline.observe({ at: 1_200, status: 0, ms: 5, version: undefined, error: 'ECONNRESET' });
    timeline.event({ at: 1_500, kind: 'verdict', text: 'fail: SLO_ERROR_RATE', verdict: 'fail' });
    const seconds = timeline.seconds();
    expect(seconds).toHaveLength(2);
    expect(seconds[0]).toMatchObject({ requests: 100, failed: 0, p99Ms: 98, canaryWeight: 0 });
    expect(seconds[1]).toMatchObject({ requests: 2, failed: 2, dropped: 1, canaryWeight: 10 });
    expect(timeline.totals).toEqual({ requests: 102, failed: 2, dropped: 1 });

    const html = renderReport({
      title: 'demo <test>',
      startedAt: 0,
      seconds,
      events: timeline.events,
      summary: [['failed', '2']],
    });
    expect(html).toContain('demo &lt;test&gt;');
    expect(html.match(/<svg /g)).toHaveLength(4);
    expect(html).toContain('fail: SLO_ERROR_RATE');
    expect(html).not.toMatch(/<script/);
  });

  it('leaves out a phase label that would run into the previous one, keeping its band', () => {
    const timeline = new Timeline(0);
    timeline.event({ at: 0, kind: 'phase', text: '1.0.0 serving' });
    timeline.event({ at: 500, kind: 'phase', text: 'expand + backfill' });
    timeline.event({ at: 60_000, kind: 'phase', text: 'canary 2.0.0' });
    for (let t = 0; t < 120_000; t += 1_000) timeline.observe({ at: t, status: 200, ms: 5, version: 'v1' });
    const html = renderReport({
      title: 't',
      startedAt: 0,
      seconds: timeline.seconds(),
      events: timeline.events,
      summary: [],
    });
    const labels = [...html.matchAll(/class="phase">([^<]*)</g)].map((match) => match[1]);
    const shown = labels.filter((label) => label === '1.0.0 serving').length;
    expect(shown).toBeGreaterThan(0);
    expect(labels.filter((label) => label === 'canary 2.0.0')).toHaveLength(shown);
    expect(labels).not.toContain('expand + backfill');
  });

  it('takes the nearest-rank quantile', () => {
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2);
    expect(quantile([1, 2, 3, 4], 0.99)).toBe(4);
    expect(quantile([], 0.99)).toBe(0);
  });
});

describe('verdict timeline', () => {
  it('shows the evidence of a pass, and cuts long reasons with an ellipsis', () => {
    const pass =
      'no manual hold; no freeze or maintenance window; no rollback trigger firing; schema 4 supported; ' +
      'err 0.00% (≥ 0.00% @95%), p95 10ms, n=21 within SLO';
    expect(briefReason('pass', pass)).toBe('err 0.00% (≥ 0.00% @95%), p95 10ms, n=21 within SLO');
    expect(briefReason('fail', 'p95 319ms > 250ms, n=29')).toBe('p95 319ms > 250ms, n=29');
    const long = briefReason('pending', 'x'.repeat(100));
    expect(long).toHaveLength(70);
    expect(long.endsWith('…')).toBe(true);
  });
});
