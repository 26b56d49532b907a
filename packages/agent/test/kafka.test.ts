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

  it(
    'confirm-promotion compared the canary with every service on the shared topic; now only its own service and namespace',
    { timeout: 180_000 },
    async () => {
      const { brokers } = server('kafka');
      const id = randomUUID().slice(0, 8);
      const kafka = { brokers: [...brokers] };
      const namespace = `shop-${id}`;
      const member = async (
        behaviour: Parameters<typeof startPod>[0],
        identity: { pod: string; podTemplateHash: string; service: string; namespace: string },
      ): Promise<Pod> => {
        const started = await startPod(behaviour, { identity, kafka, fleet: { kafka: true, intervalMs: '1h' } });
        cleanups.push(() => started.close());
        return started;
      };
      const base = await member(
        { errorRate: 0.005 },
        { pod: `orders-b-${id}`, podTemplateHash: `ob${id}`, service: 'orders', namespace },
      );
      // Flagger's primary carries the selector label `orders-primary`: still the same service.
      const canary = await member(
        { errorRate: 0.05 },
        { pod: `orders-c-${id}`, podTemplateHash: `oc${id}`, service: 'orders-primary', namespace },
      );
      // Another service in the same namespace, failing hard, and the same service in another namespace.
      const payments = await member(
        { errorRate: 0.4 },
        { pod: `payments-${id}`, podTemplateHash: `pp${id}`, service: 'payments', namespace },
      );
      const elsewhere = await member(
        { errorRate: 0.4 },
        { pod: `orders-x-${id}`, podTemplateHash: `ox${id}`, service: 'orders', namespace: `staging-${id}` },
      );
      const others = [payments, elsewhere];
      const all = [base, canary, ...others];
      const analysis = `/gate/v1/analysis?gate=compare&runId=scope-${id}&expectHash=oc${id}&minSamples=100`;
      // The topic has one partition: once the canary holds the baseline's latest summary, it has also read the
      // summaries the other pods published before it.
      const publishAll = async (): Promise<number> => {
        for (const pod of others) await pod.agent.syncFleet();
        await base.agent.syncFleet();
        return base.agent.summary()!.totals.requests;
      };
      await waitFor(async () => {
        await publishAll();
        const body = (await canary.call(analysis)).body;
        return body.fleet.baselinePods > 0 ? body : undefined;
      });
      const promote = () =>
        canary.call('/gate/v1/flagger/confirm-promotion', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ name: 'orders', namespace, phase: 'Progressing', checksum: id }),
        });
      let promotion: Awaited<ReturnType<typeof promote>> | undefined;
      for (let index = 0; index < 8; index += 1) {
        await Promise.all(all.map((pod) => drive(pod.app.url, 100)));
        await Promise.all(all.map((pod) => pod.agent.cycle()));
        const published = await publishAll();
        const view = await waitFor(async () => {
          const body = (await canary.call(analysis)).body;
          return body.baseline !== null && body.baseline.samples >= published ? body : undefined;
        }, 20_000);
        // Only the orders baseline in this namespace is the baseline: not payments, not the staging pod.
        expect(view.fleet.baselinePods).toBe(1);
        expect(view.baseline.samples).toBe(published);
        promotion = await promote();
        // Until the evidence is conclusive the answer is INSUFFICIENT_DATA, or ENVIRONMENTAL while the few
        // baseline samples still look as bad as the canary.
        if (promotion.body.verdict === 'pass' || promotion.body.verdict === 'fail') break;
      }
      // 5% errors against the orders baseline's 0.5%: no promotion. Mixed with the failing payments pods, the
      // baseline looked as bad as the canary and the verdict was a blameless `inconclusive` ENVIRONMENTAL.
      expect(promotion!.status).toBe(423);
      expect(promotion!.body).toMatchObject({ verdict: 'fail', reasonCode: 'COMPARE_ERROR_RATE' });
      // The canary keeps no history for pods outside its fleet.
      const metrics = (await canary.call('/metrics')).text;
      expect(metrics).toMatch(/^gantry_agent_fleet_pods 2$/m);
      expect(Number(/^gantry_agent_fleet_ignored_summaries_total (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThan(0);
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
