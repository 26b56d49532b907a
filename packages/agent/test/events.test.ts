// CloudEvents to an orchestrator URL: structured JSON, retries with backoff while the orchestrator is down, a
// bounded buffer that drops the oldest events and counts them.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startPod, type JsonBody, type Pod } from './helpers.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Orchestrator {
  readonly url: string;
  readonly received: JsonBody[];
  readonly contentTypes: string[];
  status: number;
  attempts: number;
}

async function startOrchestrator(): Promise<Orchestrator> {
  const state: Orchestrator = { url: '', received: [], contentTypes: [], status: 503, attempts: 0 };
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      state.attempts += 1;
      if (state.status === 202) {
        state.received.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        state.contentTypes.push(String(request.headers['content-type']));
      }
      response.writeHead(state.status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  (state as { url: string }).url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`;
  cleanups.push(() => new Promise((resolve) => server.close(() => resolve())));
  return state;
}

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('CloudEvents to an orchestrator URL', () => {
  it('buffers while the orchestrator is down, drops the oldest beyond the bound (counted), then delivers', async () => {
    const orchestrator = await startOrchestrator();
    const pod: Pod = await startPod(
      {},
      {
        identity: { pod: 'orders-ev-1', namespace: 'shop' },
        events: { url: orchestrator.url, maxBuffer: 5, retryMinMs: 20, retryMaxMs: 100, heartbeatMs: '1h' },
      },
    );
    cleanups.push(() => pod.close());
    for (let index = 0; index < 8; index += 1) {
      const created = await pod.call('/gate/v1/holds', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ reason: `drill ${index}`, actor: 'ops', ttl: '5m' }),
      });
      expect(created.status).toBe(201);
    }
    await waitFor(() => orchestrator.attempts >= 3);
    const during = await pod.call('/metrics');
    // 1 heartbeat + 8 audit events into a buffer of 5: at least 4 dropped.
    expect(during.text).toMatch(/gantry_agent_events_dropped_total\{sink="http"\} [4-9]/);
    expect(during.text).toMatch(/gantry_agent_events_failures_total\{sink="http"\} [1-9]/);
    orchestrator.status = 202;
    await waitFor(() => orchestrator.received.length >= 5);
    const reasons = orchestrator.received.map((event) => event.data?.details?.hold?.reason).filter(Boolean);
    // The newest survived; the oldest were dropped.
    expect(reasons).toContain('drill 7');
    expect(reasons).not.toContain('drill 0');
    const event = orchestrator.received.at(-1)!;
    expect(event).toMatchObject({
      specversion: '1.0',
      type: 'dev.gantry.agent.audit',
      source: '/gantry/agent/shop/orders-ev-1',
      datacontenttype: 'application/json',
      subject: 'hold.created',
    });
    expect(event.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(Date.parse(event.time)).toBeGreaterThan(0);
    expect(orchestrator.contentTypes[0]).toContain('application/cloudevents+json');
  });

  it('sends a heartbeat with version and health, health changes and verdict changes', async () => {
    const orchestrator = await startOrchestrator();
    orchestrator.status = 202;
    const pod: Pod = await startPod(
      { version: '2.4.1' },
      { identity: { pod: 'orders-ev-2' }, events: { url: orchestrator.url, retryMinMs: 20, heartbeatMs: '1h' } },
    );
    cleanups.push(() => pod.close());
    await waitFor(() => orchestrator.received.some((event) => event.type === 'dev.gantry.agent.heartbeat'));
    const heartbeat = orchestrator.received.find((event) => event.type === 'dev.gantry.agent.heartbeat')!;
    expect(heartbeat.data).toMatchObject({
      pod: 'orders-ev-2',
      version: '2.4.1',
      live: 'UP',
      ready: 'UP',
      health: 'pass',
    });
    pod.app.set({ down: true });
    await pod.agent.cycle();
    await pod.call('/gate/v1/analysis?gate=smoke&runId=ev');
    await waitFor(() => orchestrator.received.some((event) => event.type === 'dev.gantry.health.changed'));
    await waitFor(() => orchestrator.received.some((event) => event.type === 'dev.gantry.gate.verdict'));
    const changed = orchestrator.received.find((event) => event.type === 'dev.gantry.health.changed')!;
    expect(changed.data).toMatchObject({ from: 'UP', to: 'DOWN' });
    const verdict = orchestrator.received.find((event) => event.type === 'dev.gantry.gate.verdict')!;
    expect(verdict).toMatchObject({
      subject: 'ev',
      data: { gate: 'smoke', verdict: 'fail', reasonCode: 'HEALTH_FAILING' },
    });
  });
});
