// One kafkajs client per agent, loaded on first use (an agent without Kafka never imports it). The producer is
// shared by the fleet publisher and the events sink; connection failures surface as rejected sends, which the
// callers turn into backoff, never into crashes.
import type { Consumer, Kafka, Producer } from 'kafkajs';
import { AgentError } from './errors.ts';
import type { Logger } from './logger.ts';

/** Lazily connected Kafka producer and consumers. */
export class KafkaConnection {
  readonly #brokers: readonly string[];
  readonly #clientId: string;
  readonly #logger: Logger;
  #kafka: Kafka | undefined;
  #producer: Producer | undefined;
  #connecting: Promise<Producer> | undefined;
  readonly #consumers: Consumer[] = [];
  #closed = false;

  constructor(brokers: readonly string[], clientId: string, logger: Logger) {
    this.#brokers = brokers;
    this.#clientId = clientId;
    this.#logger = logger;
  }

  async #client(): Promise<Kafka> {
    if (this.#kafka !== undefined) return this.#kafka;
    const module = await import('kafkajs');
    const kafkajs = (module as unknown as { default?: typeof module }).default ?? module;
    const logger = this.#logger;
    this.#kafka = new kafkajs.Kafka({
      clientId: this.#clientId,
      brokers: [...this.#brokers],
      connectionTimeout: 3_000,
      requestTimeout: 10_000,
      retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 2_000 },
      logLevel: kafkajs.logLevel.WARN,
      logCreator: () => (entry) => {
        logger.debug({ event: 'agent.kafka.log', kafkaLevel: entry.level, detail: entry.log.message }, 'kafkajs');
      },
    });
    return this.#kafka;
  }

  /** The connected producer. @throws AgentError `GANTRY_AGENT_SINK` when the brokers cannot be reached. */
  async producer(): Promise<Producer> {
    if (this.#closed) throw new AgentError('GANTRY_AGENT_SINK', 'Kafka connection closed');
    if (this.#producer !== undefined) return this.#producer;
    this.#connecting ??= (async () => {
      const kafka = await this.#client();
      const producer = kafka.producer({ allowAutoTopicCreation: true });
      try {
        await producer.connect();
      } catch (error) {
        await producer.disconnect().catch(() => undefined);
        throw new AgentError('GANTRY_AGENT_SINK', `Cannot reach Kafka at ${this.#brokers.join(',')}`, { cause: error });
      }
      producer.on(producer.events.DISCONNECT, () => {
        if (this.#producer === producer) this.#producer = undefined;
      });
      this.#producer = producer;
      return producer;
    })().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  /** Sends messages to a topic through the shared producer. */
  async send(
    topic: string,
    messages: { key: string; value: string; headers?: Record<string, string> }[],
  ): Promise<void> {
    const producer = await this.producer();
    try {
      await producer.send({ topic, messages });
    } catch (error) {
      throw new AgentError('GANTRY_AGENT_SINK', `Kafka send to ${topic} failed`, { cause: error });
    }
  }

  /** Creates the topic when it does not exist yet (single partition; the broker's replication default). */
  async ensureTopic(topic: string): Promise<void> {
    const kafka = await this.#client();
    const admin = kafka.admin();
    try {
      await admin.connect();
      const existing = await admin.listTopics();
      if (!existing.includes(topic)) await admin.createTopics({ topics: [{ topic }], waitForLeaders: true });
    } catch (error) {
      throw new AgentError('GANTRY_AGENT_FLEET', `Cannot create or list topic ${topic}`, { cause: error });
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  /**
   * Subscribes to a topic from the latest offset with its own consumer group and hands every message value to
   * `onMessage`. Resolves once the consumer runs.
   */
  async subscribe(
    topic: string,
    groupId: string,
    onMessage: (key: string | undefined, value: string) => void,
  ): Promise<void> {
    const kafka = await this.#client();
    const consumer = kafka.consumer({
      groupId,
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
      retry: { retries: 5 },
    });
    this.#consumers.push(consumer);
    try {
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: false });
      await consumer.run({
        eachMessage: async ({ message }) => {
          if (message.value === null) return;
          onMessage(message.key?.toString('utf8'), message.value.toString('utf8'));
        },
      });
    } catch (error) {
      this.#consumers.splice(this.#consumers.indexOf(consumer), 1);
      await consumer.disconnect().catch(() => undefined);
      throw new AgentError('GANTRY_AGENT_FLEET', `Cannot consume ${topic}`, { cause: error });
    }
  }

  /** Disconnects everything. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const producer = this.#producer ?? (await this.#connecting?.catch(() => undefined));
    await Promise.all([
      producer?.disconnect().catch(() => undefined),
      ...this.#consumers.map((consumer) => consumer.disconnect().catch(() => undefined)),
    ]);
  }
}
