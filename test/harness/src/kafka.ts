import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { CACHE_DIR, REPOSITORY_ROOT, freePort } from './environment.ts';
import { HarnessError, ManagedProcess, waitUntilReady } from './process.ts';

const execFileAsync = promisify(execFile);
const POM = join(REPOSITORY_ROOT, 'test', 'harness', 'kafka', 'pom.xml');
const LOG4J = join(REPOSITORY_ROOT, 'test', 'harness', 'kafka', 'log4j.properties');

/** What a test needs to reach the harness's Kafka broker. */
/**
 * A random KRaft cluster id: 16 bytes in base64url, like Kafka's own. One in 64 of those starts with "-", which the
 * storage tool's argument parser takes for an option ("argument --cluster-id: expected one argument"); Kafka's
 * Uuid.randomUuid() draws again in that case, and so does this.
 */
export function kafkaClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

export interface KafkaInfo {
  /** `host:port` bootstrap addresses for kafkajs. */
  readonly brokers: readonly string[];
  readonly logFile: string;
}

/** A running single-node KRaft broker (combined broker and controller). */
export interface KafkaServer extends KafkaInfo {
  /** Milliseconds from spawning the JVM until the broker accepted a connection (storage formatting excluded). */
  readonly startMs: number;
  /** Stops the broker; data is kept so `start()` can bring it back on the same ports. Idempotent. */
  stop(): Promise<void>;
  /** Starts a stopped broker again with the same ports and data. */
  start(): Promise<void>;
  /** Stops the broker and deletes its data. */
  destroy(): Promise<void>;
}

/** Options for {@link startKafka}. */
export interface StartKafkaOptions {
  readonly runDirectory: string;
  /** @default 'kafka' */
  readonly name?: string;
  /** @default 60_000 */
  readonly timeoutMs?: number;
}

function kafkaVersion(): string {
  const match = /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(readFileSync(POM, 'utf8'));
  if (match?.[1] === undefined) throw new HarnessError('kafka', `no <kafka.version> in ${POM}`);
  return match[1];
}

/** The folder that holds the broker's jars once {@link ensureKafkaJars} has run. */
export function kafkaLibraryDirectory(): string {
  return join(CACHE_DIR, `kafka-${kafkaVersion()}`, 'libs');
}

/**
 * Fetches Apache Kafka and its runtime dependencies from Maven Central into the cache (once; later runs are
 * offline). Safe when several processes call it at once: the jars land in a temporary folder that is renamed
 * into place.
 * @returns the folder holding the jars.
 * @throws HarnessError when Maven is missing or the download fails.
 */
export async function ensureKafkaJars(log: (line: string) => void = () => undefined): Promise<string> {
  const libs = kafkaLibraryDirectory();
  if (existsSync(join(libs, '.complete'))) return libs;
  const partial = `${libs}.${process.pid}.${randomBytes(3).toString('hex')}.partial`;
  mkdirSync(partial, { recursive: true });
  log(`fetching Apache Kafka ${kafkaVersion()} jars from Maven Central (once; cached in ${libs})`);
  const started = performance.now();
  try {
    await execFileAsync(
      'mvn',
      ['-q', '-B', '-f', POM, 'dependency:copy-dependencies', `-DoutputDirectory=${partial}`, '-DincludeScope=runtime'],
      { maxBuffer: 16 * 1024 * 1024 },
    );
  } catch (error) {
    rmSync(partial, { recursive: true, force: true });
    const detail = error instanceof Error ? error.message : String(error);
    throw new HarnessError('kafka', `could not fetch the broker jars with Maven: ${detail}`, undefined, {
      cause: error,
    });
  }
  writeFileSync(join(partial, '.complete'), new Date().toISOString());
  if (existsSync(join(libs, '.complete'))) {
    rmSync(partial, { recursive: true, force: true });
  } else {
    rmSync(libs, { recursive: true, force: true });
    renameSync(partial, libs);
  }
  log(`fetched ${readdirSync(libs).length - 1} jars in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return libs;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.setTimeout(500);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.connect(port, '127.0.0.1');
  });
}

/**
 * Starts a real Apache Kafka broker in KRaft mode (one node that is broker and controller) on free loopback
 * ports, using the jars from {@link ensureKafkaJars} and the machine's Java.
 * @throws HarnessError naming the log when formatting or start-up fails.
 */
export async function startKafka(options: StartKafkaOptions): Promise<KafkaServer> {
  const name = options.name ?? 'kafka';
  const timeoutMs = options.timeoutMs ?? 60_000;
  const libs = await ensureKafkaJars();
  const home = join(options.runDirectory, name);
  const dataDir = join(home, 'data');
  mkdirSync(dataDir, { recursive: true });
  const logFile = join(options.runDirectory, `${name}.log`);
  const [brokerPort, controllerPort] = [await freePort(), await freePort()];
  const properties = join(home, 'server.properties');
  writeFileSync(
    properties,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
      `listeners=PLAINTEXT://127.0.0.1:${brokerPort},CONTROLLER://127.0.0.1:${controllerPort}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${brokerPort}`,
      'controller.listener.names=CONTROLLER',
      'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
      'inter.broker.listener.name=PLAINTEXT',
      `log.dirs=${dataDir}`,
      'num.partitions=1',
      'offsets.topic.replication.factor=1',
      'offsets.topic.num.partitions=4',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'group.initial.rebalance.delay.ms=0',
      'auto.create.topics.enable=true',
      'controlled.shutdown.enable=false',
      // A restarted broker waits for its previous session to expire; keep that short so stop/start tests are quick.
      'broker.heartbeat.interval.ms=500',
      'broker.session.timeout.ms=2000',
      '',
    ].join('\n'),
  );
  const classpath = `${libs}/*`;
  const jvm = [
    '-Xms128m',
    '-Xmx512m',
    '-XX:+UseSerialGC',
    '-XX:TieredStopAtLevel=1',
    '-Djava.awt.headless=true',
    `-Dlog4j.configuration=file:${LOG4J}`,
  ];
  const clusterId = kafkaClusterId();
  try {
    execFileSync(
      'java',
      [...jvm, '-cp', classpath, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', properties],
      { stdio: 'pipe' },
    );
  } catch (error) {
    const output = error instanceof Error && 'stderr' in error ? String((error as { stderr: unknown }).stderr) : '';
    writeFileSync(logFile, `storage format failed\n${output}`);
    throw new HarnessError(name, 'formatting the KRaft storage failed (is Java 17+ on PATH?)', logFile, {
      cause: error,
    });
  }

  const proc = new ManagedProcess({
    name,
    command: 'java',
    args: [...jvm, '-cp', classpath, 'kafka.Kafka', properties],
    logFile,
  });
  let launches = 0;
  // Each launch appends to the same log, so "started" means one more start line than launches so far.
  const started = (): boolean => {
    try {
      return readFileSync(logFile, 'utf8').split('Kafka Server started').length - 1 > launches;
    } catch {
      return false;
    }
  };
  const launch = async (): Promise<number> => {
    const begin = performance.now();
    await proc.spawn();
    try {
      await waitUntilReady(proc, async () => started() && (await canConnect(brokerPort)), timeoutMs);
    } catch (error) {
      await proc.stop('SIGKILL');
      throw error;
    }
    launches += 1;
    return performance.now() - begin;
  };

  const startMs = await launch();
  return {
    brokers: [`127.0.0.1:${brokerPort}`],
    logFile,
    startMs,
    stop: async () => {
      await proc.stop('SIGTERM', 15_000);
      // The kernel may hold the listening port for a moment after the JVM exits.
      await sleep(100);
    },
    start: async () => {
      if (!proc.running) await launch();
    },
    destroy: async () => {
      await proc.stop('SIGTERM', 15_000);
      rmSync(home, { recursive: true, force: true });
    },
  };
}
