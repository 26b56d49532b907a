// Proves each shared server is the real thing: a real query, a real toggle seen by the real SDK, a real
// produce/consume round trip, a real scrape answered by PromQL.
import { createServer, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import { Unleash } from 'unleash-client';
import { afterAll, describe, expect, it } from 'vitest';
import { createDatabase } from '../src/postgres.ts';
import { addScrapeTarget, waitForQuery } from '../src/prometheus.ts';
import { unleashAdmin } from '../src/unleash-admin.ts';
import { server } from '../src/vitest.ts';

const unique = (prefix: string): string => `${prefix}-${randomBytes(4).toString('hex')}`;

describe('postgres', () => {
  it('answers real SQL in a fresh database', async () => {
    const info = server('postgres');
    const database = await createDatabase(info, 'smoke');
    const pool = new pg.Pool({ connectionString: database.url, max: 2 });
    try {
      const version = await pool.query<{ server_version_num: string }>('SHOW server_version_num');
      expect(Number(version.rows[0]?.server_version_num)).toBeGreaterThanOrEqual(150_000);
      await pool.query('CREATE TABLE orders (id bigserial PRIMARY KEY, total numeric NOT NULL)');
      await pool.query('INSERT INTO orders (total) SELECT g FROM generate_series(1, 100) AS g');
      const sum = await pool.query<{ sum: string }>('SELECT sum(total) FROM orders');
      expect(sum.rows[0]?.sum).toBe('5050');
    } finally {
      await pool.end();
    }
  });

  it('enforces password authentication', async () => {
    const info = server('postgres');
    const client = new pg.Client({ ...info, password: 'wrong' });
    client.on('error', () => undefined);
    await expect(client.connect()).rejects.toThrow(/password authentication failed/);
  });
});

describe('unleash', () => {
  it('serves a toggle created through the admin API to unleash-client, constraints included', async () => {
    const info = server('unleash');
    const admin = unleashAdmin(info);
    const toggle = unique('smoke-toggle');
    await admin.createContextField('tenantId');
    await admin.createToggle(toggle);
    await admin.addStrategy(toggle, {
      name: 'flexibleRollout',
      constraints: [{ contextName: 'tenantId', operator: 'IN', values: ['acme'] }],
    });
    await admin.enable(toggle);

    const client = new Unleash({
      appName: 'harness-smoke',
      url: `${info.url}/api/`,
      customHeaders: { Authorization: info.clientToken },
      refreshInterval: 1_000,
      disableMetrics: true,
      storageProvider: new (await import('unleash-client')).InMemStorageProvider(),
    });
    try {
      client.on('error', () => undefined);
      await once(client, 'synchronized');
      // Unleash serves SDKs from a cache refreshed in the background, so a toggle created a moment ago can take
      // a poll or two to reach a client (eventual consistency, not a failure).
      await expect
        .poll(() => client.isEnabled(toggle, { properties: { tenantId: 'acme' } }), { timeout: 15_000 })
        .toBe(true);
      expect(client.isEnabled(toggle, { properties: { tenantId: 'globex' } })).toBe(false);

      await admin.disable(toggle);
      await expect
        .poll(() => client.isEnabled(toggle, { properties: { tenantId: 'acme' } }), { timeout: 10_000 })
        .toBe(false);
    } finally {
      client.destroy();
    }
  });
});

describe('kafka', () => {
  it('creates a topic, produces and consumes a message', async () => {
    const info = server('kafka');
    const kafka = new Kafka({ clientId: 'harness-smoke', brokers: [...info.brokers], logLevel: logLevel.NOTHING });
    const topic = unique('smoke');
    const admin = kafka.admin();
    const producer = kafka.producer();
    const consumer = kafka.consumer({ groupId: unique('smoke-group') });
    try {
      await admin.connect();
      expect(await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true })).toBe(true);
      await producer.connect();
      await producer.send({ topic, messages: [{ key: 'order-1', value: JSON.stringify({ total: 42 }) }] });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      const received = new Promise<{ key: string; value: string }>((resolve) => {
        void consumer.run({
          eachMessage: async ({ message }) => {
            resolve({ key: String(message.key), value: String(message.value) });
          },
        });
      });
      expect(await received).toEqual({ key: 'order-1', value: '{"total":42}' });
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
      await admin.disconnect();
    }
  });
});

describe('prometheus', () => {
  let app: Server | undefined;
  afterAll(() => {
    app?.close();
  });

  it('scrapes a target and answers a PromQL query with its series', async () => {
    const info = server('prometheus');
    const marker = randomBytes(4).toString('hex');
    app = createServer((request, response) => {
      if (request.url !== '/metrics') {
        response.writeHead(404).end();
        return;
      }
      response.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4' });
      response.end(`# TYPE smoke_value gauge\nsmoke_value{marker="${marker}"} 42\n`);
    });
    app.listen(0, '127.0.0.1');
    await once(app, 'listening');
    const address = app.address();
    if (address === null || typeof address === 'string') throw new Error('no address');
    const remove = addScrapeTarget(info, { address: `127.0.0.1:${address.port}`, labels: { suite: 'smoke' } });
    try {
      const samples = await waitForQuery(info, `smoke_value{marker="${marker}"}`);
      expect(samples).toHaveLength(1);
      expect(samples[0]?.value).toBe(42);
      expect(samples[0]?.metric['suite']).toBe('smoke');
    } finally {
      remove();
    }
  });
});
