// Fleet over a real Kafka broker (topic gantry.fleet keyed by pod) and CloudEvents to gantry.events.
import { randomUUID } from 'node:crypto';
import { server } from '@gantry/test-harness/vitest';
import { Kafka, logLevel } from 'kafkajs';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_EVENTS_TOPIC, DEFAULT_FLEET_TOPIC } from '../src/options.ts';
import { drive } from './app.ts';
import { startPod, type JsonBody, type Pod } from './helpers.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function waitFor<T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 45_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe('fleet and events over Kafka', () => {
  it(
    'exchanges pod summaries on gantry.fleet so the canary agent sees the baseline pods',
    { timeout: 120_000 },
    async () => {
      const { brokers } = server('kafka');
      const id = randomUUID().slice(0, 8);
      const kafka = { brokers: [...brokers] };
      const base: Pod = await startPod(
        {},
        {
          identity: { pod: `orders-b4s3-${id}`, podTemplateHash: `b4s3${id}` },
          kafka,
          fleet: { kafka: true, intervalMs: '1h' },
        },
      );
      cleanups.push(() => base.close());
      const can: Pod = await startPod(
        { errorRate: 0.05 },
        {
          identity: { pod: `orders-c4n4-${id}`, podTemplateHash: `c4n4${id}` },
          kafka,
          fleet: { kafka: true, intervalMs: '1h' },
        },
      );
      cleanups.push(() => can.close());
      const query = `/gate/v1/analysis?gate=compare&runId=kafka-${id}&expectHash=c4n4${id}&baselineHash=b4s3${id}`;
      // Consumers join their groups asynchronously; publish until the canary agent has heard of the baseline pod.
      await waitFor(async () => {
        await base.agent.syncFleet();
        const body = (await can.call(query)).body;
        return body.fleet.baselinePods === 1 ? body : undefined;
      });
      let verdict: JsonBody;
      for (let index = 0; index < 8; index += 1) {
        await Promise.all([drive(base.app.url, 100), drive(can.app.url, 100)]);
        await Promise.all([base.agent.cycle(), can.agent.cycle()]);
        await base.agent.syncFleet();
        const seenAt = base.agent.summary()!.at;
        // Wait until the canary's view holds the baseline summary just published.
        verdict = await waitFor(async () => {
          const body = (await can.call(`${query}&minSamples=100`)).body;
          return body.baseline !== null && body.baseline.samples >= (index + 1) * 100 ? body : undefined;
        }, 15_000);
        expect(seenAt).toBeGreaterThan(0);
        if (verdict.verdict !== 'pending') break;
      }
      expect(verdict).toMatchObject({ verdict: 'fail', reasonCode: 'COMPARE_ERROR_RATE' });
    },
  );

  it('publishes CloudEvents to gantry.events keyed by pod', { timeout: 90_000 }, async () => {
    const { brokers } = server('kafka');
    const id = randomUUID().slice(0, 8);
    const pod: Pod = await startPod(
      {},
      {
        identity: { pod: `orders-ev-${id}` },
        kafka: { brokers: [...brokers] },
        events: { kafka: true, retryMinMs: 50, heartbeatMs: '1h' },
      },
    );
    cleanups.push(() => pod.close());
    await pod.call('/gate/v1/holds', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'kafka drill', actor: 'ops', ttl: '5m' }),
    });
    const client = new Kafka({ clientId: `test-${id}`, brokers: [...brokers], logLevel: logLevel.NOTHING });
    const admin = client.admin();
    await admin.connect();
    if (!(await admin.listTopics()).includes(DEFAULT_EVENTS_TOPIC)) {
      await admin
        .createTopics({ topics: [{ topic: DEFAULT_EVENTS_TOPIC }], waitForLeaders: true })
        .catch(() => undefined);
    }
    await admin.disconnect();
    const consumer = client.consumer({ groupId: `test-events-${id}` });
    cleanups.push(() => consumer.disconnect());
    await consumer.connect();
    await consumer.subscribe({ topic: DEFAULT_EVENTS_TOPIC, fromBeginning: true });
    const mine: { key: string; event: JsonBody; contentType: string }[] = [];
    await consumer.run({
      eachMessage: async ({ message }) => {
        const event = JSON.parse(message.value!.toString('utf8'));
        if (event.source?.endsWith(`/orders-ev-${id}`)) {
          mine.push({
            key: message.key!.toString('utf8'),
            event,
            contentType: String(message.headers?.['content-type']),
          });
        }
      },
    });
    await waitFor(() =>
      mine.some((item) => item.event.type === 'dev.gantry.agent.audit') &&
      mine.some((item) => item.event.type === 'dev.gantry.agent.heartbeat')
        ? true
        : undefined,
    );
    expect(mine.every((item) => item.key === `orders-ev-${id}`)).toBe(true);
    expect(mine[0]!.contentType).toContain('application/cloudevents+json');
    const audit = mine.find((item) => item.event.type === 'dev.gantry.agent.audit')!.event;
    expect(audit).toMatchObject({
      specversion: '1.0',
      subject: 'hold.created',
      data: { action: 'hold.created', actor: 'ops' },
    });
    expect(DEFAULT_FLEET_TOPIC).toBe('gantry.fleet');
  });
});
