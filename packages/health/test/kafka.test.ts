// The Kafka check against real brokers: consumer-group lag from the shared broker, and a private broker stopped
// and started again moving readiness DOWN and UP within the configured bound.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel } from 'kafkajs';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRunDirectory, startKafka, type KafkaServer } from '@gantry/test-harness';
import { server } from '@gantry/test-harness/vitest';
import { createHealth, createKafkaCheck, createKafkaDisconnectHook, type Health } from '@gantry/health';

const KAFKA_FIXTURE = join(import.meta.dirname, 'fixtures', 'kafka-service.ts');

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

const kafkaFor = (brokers: readonly string[]): Kafka =>
  new Kafka({
    clientId: 'gantry-health-test',
    brokers: [...brokers],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1_000,
    requestTimeout: 5_000,
  });

function registry(prom = new Registry()): Health {
  const health = createHealth({ registry: prom, shutdown: { signals: [] } });
  cleanups.push(() => health.close());
  return health;
}

async function until<T>(what: string, read: () => T, ok: (value: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last = read();
  while (!ok(last)) {
    if (performance.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(last)} after ${timeoutMs} ms`);
    await sleep(100);
    last = read();
  }
  return last;
}

describe('Kafka check (shared broker)', () => {
  it('reports the brokers and a consumer group lag as data and metric, without failing readiness', async () => {
    const kafka = kafkaFor(server('kafka').brokers);
    const topic = `health-lag-${process.pid}-${Date.now()}`;
    const groupId = `health-lag-group-${process.pid}`;
    const admin = kafka.admin();
    await admin.connect();
    cleanups.push(() => admin.disconnect());
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: Array.from({ length: 10 }, (_, index) => ({ value: String(index) })) });
    await producer.disconnect();
    await admin.setOffsets({ groupId, topic, partitions: [{ partition: 0, offset: '3' }] });

    const prom = new Registry();
    const health = registry(prom);
    health.addCheck(createKafkaCheck({ kafka, consumerGroups: [groupId], registry: prom }), {
      intervalMs: 500,
      timeoutMs: 5_000,
    });
    health.start();
    const report = await until(
      'UP with lag',
      () => health.snapshot('readiness'),
      (value) => value.status === 'UP',
      30_000,
    );
    const data = report.checks.find((check) => check.name === 'kafka')?.data;
    expect(data).toMatchObject({ brokers: 1, consumerLag: 7 });
    expect(data?.[`consumerLag_${groupId.replace(/[^A-Za-z0-9_]/g, '_')}`]).toBe(7);
    expect(await prom.getSingleMetricAsString('gantry_health_kafka_consumer_lag')).toContain(`group="${groupId}"} 7`);

    // With a lag bound, the same lag turns the check DOWN.
    const strict = registry();
    strict.addCheck(
      createKafkaCheck({ kafka, name: 'kafka-strict', consumerGroups: [groupId], maxLag: 5, registry: new Registry() }),
      {
        intervalMs: 500,
        timeoutMs: 5_000,
      },
    );
    strict.start();
    const down = await until(
      'DOWN on lag',
      () => strict.snapshot('readiness'),
      (value) =>
        String(value.checks.find((check) => check.name === 'kafka-strict')?.data?.['reason']).startsWith(
          'consumer group',
        ),
      30_000,
    );
    expect(down.status).toBe('DOWN');
    expect(down.checks.find((check) => check.name === 'kafka-strict')?.data?.['reason']).toBe(
      `consumer group ${groupId} lag 7 > 5`,
    );
  }, 60_000);

  it('disconnects a client as a shutdown hook', async () => {
    const producer = kafkaFor(server('kafka').brokers).producer();
    await producer.connect();
    let disconnected = false;
    producer.on(producer.events.DISCONNECT, () => (disconnected = true));
    const health = createHealth({
      registry: new Registry(),
      shutdown: { signals: [], delayMs: 0, terminate: () => undefined },
    });
    health.addShutdownHook(createKafkaDisconnectHook(producer, { name: 'kafka-producer' }));
    health.start();
    expect((await health.shutdown()).failedHooks).toEqual([]);
    expect(disconnected).toBe(true);
  }, 30_000);
});

describe('Kafka check and process exit', () => {
  it('regression: the admin client the check created kept the process alive, so SIGTERM ended it with 143, not 0', async () => {
    const child = spawn(process.execPath, [KAFKA_FIXTURE, server('kafka').brokers.join(',')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    const logs: string[] = [];
    createInterface({ input: child.stderr }).on('line', (line) => logs.push(line));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`fixture not ready:\n${logs.join('\n')}`)), 30_000);
      createInterface({ input: child.stdout }).once('line', () => {
        clearTimeout(timer);
        resolve();
      });
      void exited.then(() => reject(new Error(`fixture exited early:\n${logs.join('\n')}`)));
    });
    child.kill('SIGTERM');
    // Exit by itself with status 0: the event loop emptied because the check disconnected its admin client; not
    // by the default terminate's backstop re-raising SIGTERM (exit status 143) one second later.
    expect(await exited, logs.join('\n')).toEqual({ code: 0, signal: null });
    expect(logs.some((line) => line.includes('health.shutdown.completed'))).toBe(true);
  }, 60_000);

  it('close() disconnects the admin client the check created and later runs fail', async () => {
    const kafka = kafkaFor(server('kafka').brokers);
    let disconnects = 0;
    const tracked = {
      admin: (config?: { retry?: { retries?: number } }) => {
        const admin = kafka.admin(config);
        admin.on(admin.events.DISCONNECT, () => (disconnects += 1));
        return admin;
      },
    };
    const check = createKafkaCheck({ kafka: tracked });
    expect((await check.run(new AbortController().signal)).status).toBe('UP');
    await check.close();
    expect(disconnects).toBe(1);
    await expect(check.run(new AbortController().signal)).rejects.toThrow('closed');
  }, 30_000);
});

describe('Kafka check (private broker stopped and started)', () => {
  let broker: KafkaServer;
  beforeAll(async () => {
    broker = await startKafka({ runDirectory: createRunDirectory('health-kafka'), name: 'health-kafka' });
  }, 120_000);
  afterAll(async () => {
    await broker?.destroy();
  });

  it('turns readiness DOWN within interval + timeout when the broker stops, and UP when it is back', async () => {
    const intervalMs = 500;
    const timeoutMs = 2_000;
    const health = registry();
    health.addCheck(createKafkaCheck({ kafka: kafkaFor(broker.brokers) }), { intervalMs, timeoutMs });
    health.start();
    await until(
      'UP',
      () => health.snapshot('readiness').status,
      (status) => status === 'UP',
      30_000,
    );

    await broker.stop();
    const stoppedAt = performance.now();
    await until(
      'DOWN',
      () => health.snapshot('readiness').status,
      (status) => status === 'DOWN',
      15_000,
    );
    const downAfter = performance.now() - stoppedAt;
    // The configured bound is one interval plus one timeout; the slack is for a loaded 2-core machine.
    expect(downAfter).toBeLessThan(intervalMs + timeoutMs + 3_000);

    await broker.start();
    const startedAt = performance.now();
    await until(
      'UP again',
      () => health.snapshot('readiness').status,
      (status) => status === 'UP',
      30_000,
    );
    process.stderr.write(
      `[kafka] DOWN ${Math.round(downAfter)} ms after stop, UP ${Math.round(performance.now() - startedAt)} ms after start\n`,
    );
  }, 90_000);
});
