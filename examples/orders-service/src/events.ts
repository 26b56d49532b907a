// Order events on Kafka, when brokers are configured: one `orders.created` message per order, keyed by order id.
// Publishing is off the request path (an order is stored before its event is sent); a broker outage is counted
// and shows as a non-critical DOWN check, it never fails a request.
import type { Check, ShutdownHook } from '@gantry/health';
import { createKafkaCheck, createKafkaDisconnectHook } from '@gantry/health';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import type { OrdersConfig } from './config.ts';
import type { Order } from './orders.ts';

/** Publishes order events. */
export interface OrderEvents {
  /** Sends the event in the background; the returned promise never rejects. */
  publish(order: Order): Promise<void>;
  readonly checks: readonly Check[];
  readonly hooks: readonly ShutdownHook[];
  /** Connects the producer; failures are logged and retried by kafkajs on the next send. */
  start(): Promise<void>;
}

interface Counter {
  inc(labels: { result: 'sent' | 'failed' }): void;
}

interface Log {
  warn(object: object, message: string): void;
}

/**
 * Order events for `config`, or a no-op publisher when no brokers are configured.
 * @example const events = createOrderEvents(config, logger, counter); await events.start();
 */
export function createOrderEvents(config: OrdersConfig, logger: Log, counter: Counter | undefined): OrderEvents {
  if (config.kafkaBrokers.length === 0) {
    return { publish: async () => undefined, checks: [], hooks: [], start: async () => undefined };
  }
  const kafka = new Kafka({
    clientId: `${config.service}-${config.version}`,
    brokers: [...config.kafkaBrokers],
    logLevel: logLevel.NOTHING,
    retry: { retries: 3, initialRetryTime: 200 },
    connectionTimeout: 3_000,
  });
  const producer: Producer = kafka.producer({ allowAutoTopicCreation: true });
  let connected: Promise<void> | undefined;
  let lastWarning = 0;
  const connect = (): Promise<void> =>
    (connected ??= producer.connect().catch((error: unknown) => {
      connected = undefined;
      throw error;
    }));
  return {
    checks: [createKafkaCheck({ kafka, name: 'kafka', critical: false })],
    hooks: [createKafkaDisconnectHook(producer, { name: 'kafka-producer', timeoutMs: 2_000 })],
    start: async () => {
      await connect().catch((error: unknown) =>
        logger.warn({ event: 'orders.events.connect_failed', err: String(error) }, 'Kafka not reachable yet'),
      );
    },
    publish: async (order) => {
      try {
        await connect();
        await producer.send({
          topic: config.kafkaTopic,
          messages: [
            {
              key: String(order.id),
              value: JSON.stringify({
                type: 'orders.created',
                order,
                version: config.version,
                at: new Date().toISOString(),
              }),
            },
          ],
        });
        counter?.inc({ result: 'sent' });
      } catch (error) {
        counter?.inc({ result: 'failed' });
        if (Date.now() - lastWarning > 10_000) {
          lastWarning = Date.now();
          logger.warn({ event: 'orders.events.send_failed', err: String(error) }, 'order event not sent');
        }
      }
    },
  };
}
