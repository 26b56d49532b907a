import { rmSync } from 'node:fs';
import { createRunDirectory } from './environment.ts';
import { ensureKafkaJars, startKafka, type KafkaInfo, type KafkaServer } from './kafka.ts';
import { startPostgres, type PostgresInfo, type PostgresServer } from './postgres.ts';
import { startPrometheus, type PrometheusInfo, type PrometheusServer } from './prometheus.ts';
import { startUnleash, type UnleashInfo, type UnleashServer } from './unleash.ts';

/** The real servers the harness knows how to run. */
export const SERVER_NAMES = ['postgres', 'unleash', 'kafka', 'prometheus'] as const;
/** One of {@link SERVER_NAMES}. */
export type ServerName = (typeof SERVER_NAMES)[number];

/** Connection details of the shared servers of one test run; plain data that crosses into test workers. */
export interface HarnessInfo {
  readonly runDirectory: string;
  readonly postgres?: PostgresInfo;
  readonly unleash?: UnleashInfo;
  readonly kafka?: KafkaInfo;
  readonly prometheus?: PrometheusInfo;
  /** Start time of each server in milliseconds. */
  readonly startTimes: Readonly<Partial<Record<ServerName, number>>>;
}

/** The shared servers, started together and stopped together. */
export interface RunningServers {
  readonly info: HarnessInfo;
  /** Stops every server (in parallel, each with its own grace period) and removes the data. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Parses a server list such as `postgres,kafka` (or `all`, or `none`).
 * @throws Error naming an unknown server.
 */
export function parseServerList(value: string | undefined): ServerName[] {
  if (value === undefined || value.trim() === '' || value.trim() === 'all') return [...SERVER_NAMES];
  if (value.trim() === 'none') return [];
  const names = value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
  for (const name of names) {
    if (!(SERVER_NAMES as readonly string[]).includes(name)) {
      throw new Error(`Unknown server "${name}" in GANTRY_TEST_SERVERS; expected some of ${SERVER_NAMES.join(', ')}`);
    }
  }
  // Unleash keeps its data in PostgreSQL.
  if (names.includes('unleash') && !names.includes('postgres')) names.push('postgres');
  return names as ServerName[];
}

/**
 * Starts the requested servers: PostgreSQL, Kafka and Prometheus in parallel, then Unleash on that PostgreSQL.
 * If any fails, the others are stopped before the error is thrown.
 */
export async function startServers(
  wanted: readonly ServerName[],
  log: (line: string) => void = () => undefined,
): Promise<RunningServers> {
  const runDirectory = createRunDirectory('run');
  const started: { stop(): Promise<void>; destroy?(): Promise<void> }[] = [];
  const startTimes: Partial<Record<ServerName, number>> = {};
  const track = <T extends { stop(): Promise<void>; startMs: number }>(name: ServerName, server: T): T => {
    started.push(server);
    startTimes[name] = server.startMs;
    return server;
  };
  const stopAll = async (): Promise<void> => {
    await Promise.allSettled(started.splice(0).map((server) => (server.destroy ?? server.stop).call(server)));
  };

  try {
    const has = (name: ServerName): boolean => wanted.includes(name);
    if (has('kafka')) await ensureKafkaJars(log);
    const postgresPromise = has('postgres')
      ? startPostgres({ runDirectory }).then((server) => track('postgres', server))
      : undefined;
    const kafkaPromise = has('kafka')
      ? startKafka({ runDirectory }).then((server) => track('kafka', server))
      : undefined;
    const prometheusPromise = has('prometheus')
      ? startPrometheus({ runDirectory }).then((server) => track('prometheus', server))
      : undefined;
    const unleashPromise =
      has('unleash') && postgresPromise !== undefined
        ? postgresPromise.then((postgres) => startUnleash({ runDirectory, postgres })).then((s) => track('unleash', s))
        : undefined;

    const results = await Promise.allSettled([postgresPromise, kafkaPromise, prometheusPromise, unleashPromise]);
    const failures = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failures.length > 0) {
      const reasons = failures.map((failure) =>
        failure.reason instanceof Error ? failure.reason.message : String(failure.reason),
      );
      throw new Error(`The test harness could not start every server:\n  ${[...new Set(reasons)].join('\n  ')}`);
    }
    const [postgres, kafka, prometheus, unleash] = results.map((result) =>
      result.status === 'fulfilled' ? result.value : undefined,
    ) as [PostgresServer?, KafkaServer?, PrometheusServer?, UnleashServer?];

    const info: HarnessInfo = {
      runDirectory,
      ...(postgres && { postgres: pick(postgres, ['host', 'port', 'user', 'password', 'database', 'logFile']) }),
      ...(kafka && { kafka: pick(kafka, ['brokers', 'logFile']) }),
      ...(prometheus && {
        prometheus: pick(prometheus, ['url', 'targetsDirectory', 'rulesDirectory', 'intervalSeconds', 'logFile']),
      }),
      ...(unleash && {
        unleash: pick(unleash, ['url', 'adminToken', 'clientToken', 'productionClientToken', 'environment', 'logFile']),
      }),
      startTimes,
    };
    let stopped: Promise<void> | undefined;
    return {
      info,
      stop: () =>
        (stopped ??= (async () => {
          // Unleash first: it holds connections to PostgreSQL.
          const unleashServer = started.find((server) => server === unleash);
          if (unleashServer) {
            started.splice(started.indexOf(unleashServer), 1);
            await unleashServer.stop();
          }
          await stopAll();
          rmSync(`${runDirectory}/postgres`, { recursive: true, force: true });
          rmSync(`${runDirectory}/kafka`, { recursive: true, force: true });
          rmSync(`${runDirectory}/prometheus/data`, { recursive: true, force: true });
        })()),
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

function pick<T extends object, K extends keyof T>(source: T, keys: readonly K[]): Pick<T, K> {
  const result = {} as Pick<T, K>;
  for (const key of keys) result[key] = source[key];
  return result;
}
