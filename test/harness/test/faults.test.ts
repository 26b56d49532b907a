// Stopping a server in the middle of a test must make that test fail, clearly: this is what tells us the tests
// talk to the real server and not to something that always answers. Private servers, so the shared ones live on.
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createRunDirectory } from '../src/environment.ts';
import { startKafka, type KafkaServer } from '../src/kafka.ts';
import { startPostgres, type PostgresServer } from '../src/postgres.ts';

const runDirectory = createRunDirectory('faults');

describe('a stopped PostgreSQL', () => {
  let postgres: PostgresServer | undefined;
  afterAll(async () => postgres?.destroy());

  it('fails queries with a connection error and serves again once restarted', async () => {
    postgres = await startPostgres({ runDirectory, name: 'postgres-fault' });
    const pool = new pg.Pool({ ...postgres, max: 2, connectionTimeoutMillis: 2_000 });
    pool.on('error', () => undefined);
    try {
      expect((await pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      await postgres.stop();
      await expect(pool.query('SELECT 1')).rejects.toThrow(
        /ECONNREFUSED|terminating connection|Connection terminated|shutting down/,
      );
      await postgres.start();
      expect((await pool.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
    } finally {
      await pool.end();
    }
  });
});

describe('a stopped Kafka broker', () => {
  let kafka: KafkaServer | undefined;
  afterAll(async () => kafka?.destroy());

  it('fails a produce with a connection error and accepts one again once restarted', async () => {
    kafka = await startKafka({ runDirectory, name: 'kafka-fault' });
    const client = new Kafka({
      clientId: 'harness-faults',
      brokers: [...kafka.brokers],
      logLevel: logLevel.NOTHING,
      connectionTimeout: 1_000,
      retry: { retries: 1, initialRetryTime: 100, maxRetryTime: 500 },
    });
    const producer = client.producer({ allowAutoTopicCreation: true });
    try {
      await producer.connect();
      await producer.send({ topic: 'faults', messages: [{ value: 'before' }] });
      await kafka.stop();
      await expect(producer.send({ topic: 'faults', messages: [{ value: 'during' }] })).rejects.toThrow(
        /ECONNREFUSED|Connection error|Closed connection|connect|timeout/i,
      );
      await kafka.start();
      await expect
        .poll(
          async () =>
            producer.send({ topic: 'faults', messages: [{ value: 'after' }] }).then(
              () => 'sent',
              (error: unknown) => String(error),
            ),
          { timeout: 30_000, interval: 500 },
        )
        .toBe('sent');
    } finally {
      await producer.disconnect();
    }
  }, 90_000);
});
