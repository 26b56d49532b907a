// The orders service: a fastify app wired to every Gantry package.
//   @gantry/telemetry  logs with trace ids, spans, the HTTP histogram and /q/metrics
//   @gantry/health     live/ready/started probes, /q/info, graceful shutdown with every resource as a hook
//   @gantry/flags      Unleash (or the offline bootstrap) and the migration flag `dual-write-customer-key`
//   @gantry/migrations the schema monitor (startup check, `schema` info section) and the contract-gate heartbeat
//   @gantry/secrets    Vault dynamic credentials in a rotating pool (when Vault is configured)
// Kafka order events are published when brokers are configured.
import { createFlags, defineFlags, flagsOptionsFromEnv, type FlagContext, type Flags } from '@gantry/flags';
import {
  createCheck,
  createEventLoopDelayCheck,
  createHealth,
  createMemoryCheck,
  createShutdownHook,
  healthOptionsFromEnv,
  type Health,
  type ShutdownHook,
} from '@gantry/health';
import { healthPlugin } from '@gantry/health/fastify';
import {
  createSchemaMonitor,
  registerAppVersion,
  type AppVersionRegistration,
  type SchemaMonitor,
} from '@gantry/migrations';
import type { Telemetry } from '@gantry/telemetry';
import { fastifyTelemetry } from '@gantry/telemetry/fastify';
import Fastify, { LogController } from 'fastify';
import type { Server } from 'node:http';
import { CUSTOMER_KEY_MIGRATION, type OrdersConfig } from './config.ts';
import { openDatabase, type Database } from './database.ts';
import { createOrderEvents, type OrderEvents } from './events.ts';
import { createFaultInjector, InjectedFault } from './faults.ts';
import { createLegacyOrderStore, createMigratingOrderStore, type OrderStore } from './orders.ts';

/** The flags this service knows (typed: an unknown name does not compile). */
export const FLAGS = defineFlags({
  [CUSTOMER_KEY_MIGRATION]: {
    owner: 'orders',
    defaultVariant: 'off',
    expires: '2027-06-30',
    description: 'customer_id → customer_key: the variant is the migration stage',
  },
});

/** Options of {@link createOrdersService}. */
export interface OrdersServiceOptions {
  readonly config: OrdersConfig;
  /** The running telemetry (the one `--import @gantry/telemetry/register` started). */
  readonly telemetry: Telemetry;
  /** Random source of the version's faults. @default Math.random */
  readonly random?: () => number;
  /** How long to wait for Unleash at start before serving from the bootstrap/backup values. @default 10_000 */
  readonly flagsReadyTimeoutMs?: number;
}

/** A started service. */
export interface OrdersService {
  /** The HTTP server fastify listens with. */
  readonly server: Server;
  readonly health: Health;
  readonly flags: Flags;
  readonly database: Database;
  /** Base URL it listens on. */
  readonly url: string;
  /** Runs the graceful shutdown (what SIGTERM does). */
  shutdown(reason?: string): Promise<void>;
}

const ORDER_BODY = {
  type: 'object',
  required: ['customer', 'item', 'quantity'],
  additionalProperties: false,
  properties: {
    customer: { type: 'string', minLength: 1, maxLength: 64 },
    item: { type: 'string', minLength: 1, maxLength: 64 },
    quantity: { type: 'integer', minimum: 1, maximum: 1000 },
  },
} as const;

/**
 * Builds and starts the service: opens the database (Vault or plain), starts flags, the schema monitor, the
 * heartbeat and Kafka, registers every check, info section and shutdown hook, and listens.
 * @throws when the database or Vault cannot be reached at start (the process should exit and be restarted).
 * @example const service = await createOrdersService({ config: ordersConfigFromEnv(), telemetry: getTelemetry()! });
 */
export async function createOrdersService(options: OrdersServiceOptions): Promise<OrdersService> {
  const { config, telemetry } = options;
  const logger = telemetry.logger;
  const hooks: ShutdownHook[] = [];
  const cleanup = async (): Promise<void> => {
    for (const hook of [...hooks].reverse())
      await Promise.resolve(hook.run(AbortSignal.timeout(5_000))).catch(() => undefined);
  };

  // Hooks run in reverse registration order at shutdown: telemetry flushes last, after every resource closed.
  hooks.push(telemetry.shutdownHook);
  let database: Database;
  let monitor: SchemaMonitor;
  let heartbeat: AppVersionRegistration;
  let events: OrderEvents;
  let flags: Flags;
  let store: OrderStore;
  try {
    database = await openDatabase(config, logger);
    hooks.push(...database.hooks);

    const eventCounter = telemetry.metrics?.counter({
      name: 'orders_events_published_total',
      help: 'Order events sent to Kafka, by result.',
      labelNames: ['result'],
    });
    events = createOrderEvents(config, logger, eventCounter);
    hooks.push(...events.hooks);
    await events.start();

    monitor = createSchemaMonitor({
      pool: database.pool,
      directory: config.migrationsDirectory,
      schemaSupports: config.schemaSupports,
      refreshIntervalMs: config.schemaRefreshIntervalMs,
      logger,
    });
    await monitor.start();
    hooks.push(createShutdownHook('schema-monitor', () => monitor.close(), { timeoutMs: 1_000 }));

    heartbeat = await registerAppVersion(database.pool, {
      service: config.service,
      version: config.version,
      schemaSupports: config.schemaSupports,
      intervalMs: config.heartbeatIntervalMs,
      logger,
    });
    // Removing the heartbeat row lets `contract` proceed as soon as this instance is gone.
    hooks.push(createShutdownHook('schema-heartbeat', () => heartbeat.stop(), { timeoutMs: 2_000 }));

    const fromEnv = flagsOptionsFromEnv();
    flags = createFlags({
      appName: config.service,
      definitions: FLAGS,
      bootstrapPath: config.flagsBootstrapPath,
      backupPath: false,
      logger,
      ...fromEnv,
      ...(config.unleash ? {} : { offline: true }),
    });
    hooks.push(flags.shutdownHook());
    await flags
      .ready({ timeoutMs: options.flagsReadyTimeoutMs ?? 10_000, require: config.unleash ? 'sync' : 'data' })
      .catch(async (error: unknown) => {
        logger.warn({ event: 'orders.flags.not_synced', err: String(error) }, 'flags: serving bootstrap values');
        await flags.ready({ timeoutMs: 2_000 });
      });
    store =
      config.behaviour === 'v1'
        ? createLegacyOrderStore(database.pool)
        : createMigratingOrderStore(database.pool, flags, { logger });
    if (store.migration !== undefined) hooks.push(store.migration.shutdownHook({ timeoutMs: 2_000 }));
  } catch (error) {
    await cleanup();
    throw error;
  }

  const health = createHealth({
    service: config.service,
    version: config.version,
    ...healthOptionsFromEnv(),
    logger,
  });
  for (const hook of hooks) health.addShutdownHook(hook);
  health.addCheck(createEventLoopDelayCheck(), { groups: ['liveness'] });
  health.addCheck(createMemoryCheck(), { groups: ['liveness'] });
  for (const check of database.checks) health.addCheck(check, { groups: ['readiness', 'startup'] });
  for (const check of events.checks) health.addCheck(check, { groups: ['readiness'] });
  health.addCheck(monitor.check, { groups: ['startup', 'readiness'] });
  health.addCheck(flags.check());
  if (store.migration !== undefined) health.addCheck(store.migration.check());
  health.addCheck(
    createCheck('schema-heartbeat', async () => ({ status: (await heartbeat.beat()) ? 'UP' : 'DOWN' }), {
      critical: false,
    }),
    { intervalMs: Math.max(1_000, config.heartbeatIntervalMs) },
  );
  health.addInfoContributor(flags.info());
  health.addInfoContributor(monitor.info);
  health.addInfoContributor({
    name: 'orders',
    contribute: () => ({
      behaviour: config.behaviour,
      credentials: database.credentials,
      rotations: database.rotations(),
      events: config.kafkaBrokers.length > 0 ? 'kafka' : 'off',
      migration: { flag: CUSTOMER_KEY_MIGRATION, stage: store.lastStage() },
    }),
  });

  const injector = createFaultInjector(config.faults, options.random);
  let warming = false;
  // Fastify's own request lines are off: the telemetry plugin writes one line per request, with the trace id.
  const app = Fastify({ loggerInstance: logger, logController: new LogController({ disableRequestLogging: true }) });
  await app.register(fastifyTelemetry, { telemetry });
  app.addHook('onSend', async (_request, reply) => {
    reply.header('x-app-version', config.version);
  });
  await app.register(healthPlugin, { health, logLevel: 'warn' });

  const context = (request: { headers: Record<string, string | string[] | undefined> }): FlagContext => {
    const tenant = request.headers['x-tenant-id'];
    return typeof tenant === 'string' ? { tenantId: tenant } : {};
  };
  app.post<{ Body: { customer: string; item: string; quantity: number } }>(
    '/orders',
    { schema: { body: ORDER_BODY } },
    async (request, reply) => {
      const decision = injector.decide(warming);
      await injector.delay(decision);
      if (decision.fail) throw new InjectedFault();
      const order = await store.create(request.body, context(request));
      void events.publish(order);
      return reply.code(201).send(order);
    },
  );
  app.get<{ Params: { id: string } }>(
    '/orders/:id',
    { schema: { params: { type: 'object', properties: { id: { type: 'integer', minimum: 1 } } } } },
    async (request, reply) => {
      const decision = injector.decide(warming);
      await injector.delay(decision);
      if (decision.fail) throw new InjectedFault();
      const order = await store.find(Number(request.params.id), context(request));
      if (order === undefined) return reply.code(404).send({ error: 'not found' });
      return order;
    },
  );

  if (config.warmupRequests > 0) {
    // JIT warm-up before the first client: a fresh process answers its first thousand requests or so several
    // times slower than a warm one, which a canary analysis would rightly call a regression. Reads only (no
    // side effects), and before `listen`, so the sidecar's first scrape already counts them as history.
    warming = true;
    const started = performance.now();
    const { rows } = await database.pool.query<{ id: string }>('SELECT id FROM orders ORDER BY id LIMIT 100');
    const ids = rows.length === 0 ? ['1'] : rows.map((row) => row.id);
    let next = 0;
    // Ten at a time: the reads overlap their database round trips, as real traffic does.
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        while (next < config.warmupRequests) {
          const index = next++;
          await app.inject({ method: 'GET', url: `/orders/${ids[index % ids.length]!}` });
        }
      }),
    );
    warming = false;
    logger.info(
      {
        event: 'orders.warmup.completed',
        requests: config.warmupRequests,
        ms: Math.round(performance.now() - started),
      },
      'warm-up done',
    );
  }
  await app.listen({ host: config.host, port: config.port });
  health.start();
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  logger.info(
    {
      event: 'orders.started',
      version: config.version,
      behaviour: config.behaviour,
      database: database.credentials,
      flags: flags.status.source,
      kafka: config.kafkaBrokers.length > 0,
      port,
    },
    `orders ${config.version} listening`,
  );
  return {
    server: app.server,
    health,
    flags,
    database,
    url: `http://${config.host}:${port}`,
    shutdown: async (reason) => {
      await health.shutdown(reason);
    },
  };
}
