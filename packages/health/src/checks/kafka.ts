// Kafka: the cluster answers a metadata request within the timeout; consumer-group lag as data and metric.
// Takes a kafkajs `Kafka` (or an admin client) structurally, so `kafkajs` stays an optional peer.
import { Gauge, register as globalRegistry, type Registry } from 'prom-client';
import type { Check, ShutdownHook } from '../contracts.ts';
import { invalid, numberOption, stringOption } from '../options.ts';

/** The part of a kafkajs admin client the check uses. */
export interface KafkaAdminLike {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  describeCluster(): Promise<{
    readonly brokers: readonly unknown[];
    readonly controller: number | null;
    readonly clusterId: string;
  }>;
  fetchOffsets?(options: { groupId: string }): Promise<
    readonly {
      readonly topic: string;
      readonly partitions: readonly { readonly partition: number; readonly offset: string }[];
    }[]
  >;
  fetchTopicOffsets?(
    topic: string,
  ): Promise<
    readonly { readonly partition: number; readonly offset: string; readonly high: string; readonly low: string }[]
  >;
}

/** The part of a kafkajs `Kafka` instance the check uses. */
export interface KafkaLike {
  admin(config?: { retry?: { retries?: number } }): KafkaAdminLike;
}

/**
 * The Kafka check: a {@link Check} plus `close()`, which disconnects the admin client the check created. The health
 * registry calls it when its checks stop (shutdown, `close()`); call it yourself when you run the check elsewhere.
 */
export interface KafkaCheck extends Check {
  /** Disconnects the admin client the check created from `kafka` (never an `admin` you passed); later runs fail. Idempotent. */
  close(): Promise<void>;
}

/** Options of {@link createKafkaCheck}: give `kafka` (preferred) or `admin`. */
export interface KafkaCheckOptions {
  /**
   * The check creates its own admin client with no retries, so a dead broker fails fast, and disconnects it in
   * `close()` (which the health registry calls on shutdown): an open admin connection keeps the process alive.
   */
  readonly kafka?: KafkaLike;
  /** An admin client you own; the check connects it and reconnects after failures. */
  readonly admin?: KafkaAdminLike;
  /** @default 'kafka' */
  readonly name?: string;
  /** Consumer groups whose lag to report (data `consumerLag` and metric `gantry_health_kafka_consumer_lag`). */
  readonly consumerGroups?: readonly string[];
  /** DOWN when a group's lag exceeds this. @default never: lag is information, not readiness */
  readonly maxLag?: number;
  /** @default true */
  readonly critical?: boolean;
  /** Where the lag gauge goes. @default prom-client's global registry */
  readonly registry?: Registry;
}

function lagGauge(registry: Registry): Gauge<'group'> {
  const name = 'gantry_health_kafka_consumer_lag';
  return (
    (registry.getSingleMetric(name) as Gauge<'group'> | undefined) ??
    new Gauge({
      name,
      help: 'Messages behind the latest offset, summed over the partitions of the topics a consumer group commits to.',
      labelNames: ['group'],
      registers: [registry],
    })
  );
}

const dataKey = (group: string): string => `consumerLag_${group.replace(/[^A-Za-z0-9_]/g, '_')}`;

/**
 * Asks the cluster to describe itself (kafkajs admin `describeCluster`) within the check's timeout; when the
 * timeout aborts the run, the admin client is disconnected so the request does not linger. Data: `brokers`,
 * `controller`, and with `consumerGroups` the lag per group and in total. Lag never fails readiness unless
 * `maxLag` is set; a failed lag lookup shows as `consumerLagError`.
 * @throws HealthError `GANTRY_HEALTH_INVALID_OPTION` without `kafka` or `admin`.
 * @example
 * health.addCheck(createKafkaCheck({ kafka, consumerGroups: ['orders'] }), { intervalMs: 2_000 });
 */
export function createKafkaCheck(options: KafkaCheckOptions): KafkaCheck {
  if (typeof options !== 'object' || options === null) throw invalid('options', 'an object', options);
  const { kafka } = options;
  const given = options.admin;
  if (typeof kafka?.admin !== 'function' && typeof given?.describeCluster !== 'function') {
    throw invalid('kafka', 'a kafkajs Kafka instance (or `admin`, a kafkajs admin client)', kafka ?? given);
  }
  const name = stringOption('name', options.name) ?? 'kafka';
  const rawGroups: unknown = options.consumerGroups ?? [];
  if (!Array.isArray(rawGroups) || rawGroups.some((group) => typeof group !== 'string' || group === '')) {
    throw invalid('consumerGroups', 'an array of group ids', rawGroups);
  }
  const groups = rawGroups as readonly string[];

  const maxLag = numberOption('maxLag', options.maxLag, Number.POSITIVE_INFINITY);
  const gauge = groups.length > 0 ? lagGauge(options.registry ?? globalRegistry) : undefined;
  let admin: KafkaAdminLike | undefined;
  let connected = false;
  let closed = false;

  const reset = (): void => {
    const current = admin;
    connected = false;
    if (given === undefined) admin = undefined;
    void current?.disconnect().catch(() => undefined);
  };

  const lagOf = async (client: KafkaAdminLike, groupId: string): Promise<number> => {
    if (client.fetchOffsets === undefined || client.fetchTopicOffsets === undefined) {
      throw new Error('the admin client cannot fetch offsets');
    }
    let lag = 0;
    for (const { topic, partitions } of await client.fetchOffsets({ groupId })) {
      const latest = new Map((await client.fetchTopicOffsets(topic)).map((entry) => [entry.partition, entry]));
      for (const { partition, offset } of partitions) {
        const ends = latest.get(partition);
        if (ends === undefined) continue;
        const committed = Number(offset) >= 0 ? Number(offset) : Number(ends.low);
        lag += Math.max(0, Number(ends.high) - committed);
      }
    }
    return lag;
  };

  return {
    name,
    critical: options.critical ?? true,
    run: async (signal) => {
      if (closed) throw new Error('the Kafka check was closed');
      const client = (admin ??= given ?? kafka!.admin({ retry: { retries: 0 } }));
      const onAbort = (): void => reset();
      signal.addEventListener('abort', onAbort, { once: true });
      try {
        if (!connected) {
          await client.connect();
          connected = true;
        }
        const cluster = await client.describeCluster();
        const data: Record<string, string | number> = {
          brokers: cluster.brokers.length,
          controller: cluster.controller ?? -1,
        };
        let status: 'UP' | 'DOWN' = 'UP';
        if (groups.length > 0) {
          try {
            let total = 0;
            for (const group of groups) {
              if (signal.aborted) break;
              const lag = await lagOf(client, group);
              total += lag;
              data[dataKey(group)] = lag;
              gauge?.set({ group }, lag);
              if (lag > maxLag) {
                status = 'DOWN';
                data['reason'] = `consumer group ${group} lag ${lag} > ${maxLag}`;
              }
            }
            data['consumerLag'] = total;
          } catch (error) {
            data['consumerLagError'] = error instanceof Error ? error.message.slice(0, 200) : 'lag lookup failed';
          }
        }
        return { status, data };
      } catch (error) {
        reset();
        throw error;
      } finally {
        signal.removeEventListener('abort', onAbort);
        // close() while this run was connecting: the run may have (re)opened the connection after close() dropped it.
        if (closed && given === undefined) void client.disconnect().catch(() => undefined);
      }
    },
    close: async () => {
      if (closed) return;
      closed = true;
      const current = admin;
      connected = false;
      if (given !== undefined) return;
      admin = undefined;
      await current?.disconnect().catch(() => undefined);
    },
  };
}

/**
 * A shutdown hook that disconnects a kafkajs producer, consumer or admin client.
 * @example
 * health.addShutdownHook(createKafkaDisconnectHook(consumer, { name: 'kafka-consumer' }));
 */
export function createKafkaDisconnectHook(
  client: { disconnect(): Promise<void> },
  options: { readonly name?: string; readonly timeoutMs?: number } = {},
): ShutdownHook {
  if (typeof client?.disconnect !== 'function') throw invalid('client', 'an object with disconnect()', client);
  const timeoutMs = numberOption('timeoutMs', options.timeoutMs, 0, { min: 1 });
  return {
    name: stringOption('name', options.name) ?? 'kafka',
    ...(timeoutMs > 0 ? { timeoutMs } : {}),
    run: () => client.disconnect(),
  };
}
