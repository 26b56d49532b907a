// A realistic app for the agent's integration tests: fastify + prom-client serving exactly the contracts the agent
// reads (MicroProfile Health at /q/health/*, /q/info with a `schema` section, the OTel-named HTTP histogram at
// /q/metrics). Its behaviour can be switched at run time: healthy, failing (error rate), slow (latency), flapping
// (readiness), failed migration, restart. When @gantry/health and @gantry/telemetry land, a second implementation of
// `TestApp` built from them can replace this one without touching the tests.
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { Histogram, Registry } from 'prom-client';

/** What the app does; every field can be changed while it runs. */
export interface Behaviour {
  /** Share of API requests answered with 500. */
  errorRate: number;
  /** Added latency of API requests, ms. */
  delayMs: number;
  /** Readiness toggles every this many ms (0 = steady). */
  flapMs: number;
  /** Liveness/readiness forced DOWN. */
  down: boolean;
  /** /q/info schema section (null = none). */
  schema: Record<string, unknown> | null;
  version: string;
}

/** The test app's handle. */
export interface TestApp {
  readonly url: string;
  set(behaviour: Partial<Behaviour>): void;
  /** Simulates a process restart: counters reset, startedAt moves. */
  restart(): void;
  close(): Promise<void>;
}

/** OTel's default HTTP duration buckets (seconds). */
export const OTEL_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

/** A healthy schema section: database at 1.2.0, app supports 1.1.0..1.2.0. */
export const HEALTHY_SCHEMA = {
  current: '1.2.0',
  phase: null,
  supports: { min: '1.1.0', max: '1.2.0' },
  pending: 0,
  failed: [],
  lastContract: '1.0.0',
};

let appsStarted = 0;

/** A small LCG per app: each app's error sequence depends only on how many requests it served (reproducible). */
function createRandom(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
    return state / 2_147_483_648;
  };
}

/**
 * Starts the app on 127.0.0.1, port 0.
 * @example const app = await startTestApp({ version: '1.1.0' }); app.set({ errorRate: 0.05 });
 */
export async function startTestApp(
  initial: Partial<Behaviour> = {},
  buckets: readonly number[] = OTEL_BUCKETS,
): Promise<TestApp> {
  const behaviour: Behaviour = {
    errorRate: 0,
    delayMs: 0,
    flapMs: 0,
    down: false,
    schema: HEALTHY_SCHEMA,
    version: '1.0.0',
    ...initial,
  };
  appsStarted += 1;
  const random = createRandom(appsStarted * 7_919);
  let startedAt = new Date();
  let registry = new Registry();
  let histogram: Histogram<'http_request_method' | 'http_route' | 'http_response_status_code'>;
  const createMetrics = (): void => {
    registry = new Registry();
    histogram = new Histogram({
      name: 'http_server_request_duration_seconds',
      help: 'Duration of HTTP server requests.',
      labelNames: ['http_request_method', 'http_route', 'http_response_status_code'],
      buckets: [...buckets],
      registers: [registry],
    });
  };
  createMetrics();
  const app: FastifyInstance = Fastify({ logger: false });
  const probeRoutes = new Set([
    '/q/health',
    '/q/health/live',
    '/q/health/ready',
    '/q/health/started',
    '/q/info',
    '/q/metrics',
  ]);
  app.addHook('onRequest', async (request) => {
    (request as unknown as { startedAt: bigint }).startedAt = process.hrtime.bigint();
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    if (probeRoutes.has(route)) return;
    const seconds = Number(process.hrtime.bigint() - (request as unknown as { startedAt: bigint }).startedAt) / 1e9;
    histogram.observe(
      { http_request_method: request.method, http_route: route, http_response_status_code: String(reply.statusCode) },
      seconds,
    );
  });
  const ready = (): boolean => {
    if (behaviour.down) return false;
    if (behaviour.flapMs <= 0) return true;
    return Math.floor(Date.now() / behaviour.flapMs) % 2 === 0;
  };
  const health = (up: boolean) => ({
    status: up ? 'UP' : 'DOWN',
    checks: [{ name: 'db', status: up ? 'UP' : 'DOWN' }],
  });
  const probe = (up: () => boolean) => async (_request: unknown, reply: FastifyReply) => {
    const isUp = up();
    return reply
      .code(isUp ? 200 : 503)
      .header('cache-control', 'no-store')
      .send(health(isUp));
  };
  app.get(
    '/q/health/live',
    probe(() => !behaviour.down),
  );
  app.get('/q/health/ready', probe(ready));
  app.get(
    '/q/health/started',
    probe(() => true),
  );
  app.get(
    '/q/health',
    probe(() => !behaviour.down && ready()),
  );
  app.get('/q/info', async () => ({
    service: 'orders',
    version: behaviour.version,
    commit: 'abc1234',
    startedAt: startedAt.toISOString(),
    ...(behaviour.schema === null ? {} : { schema: behaviour.schema }),
    flags: { hash: 'f00d', source: 'bootstrap', updatedAt: startedAt.toISOString() },
  }));
  app.get('/q/metrics', async (_request, reply) =>
    reply.header('content-type', registry.contentType).send(await registry.metrics()),
  );
  const work = async (_request: unknown, reply: FastifyReply) => {
    if (behaviour.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, behaviour.delayMs));
    if (random() < behaviour.errorRate) return reply.code(500).send({ error: 'boom' });
    return { ok: true };
  };
  app.get('/api/orders', work);
  app.get('/api/orders/:id', work);
  app.post('/api/orders', work);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    set: (partial) => Object.assign(behaviour, partial),
    restart: () => {
      startedAt = new Date(Date.now() + 1);
      createMetrics();
    },
    close: () => app.close(),
  };
}

/**
 * Sends `count` requests to the app's API with `concurrency` in flight (statuses are the app's business).
 * @returns the number of 5xx answers seen.
 */
export async function drive(url: string, count: number, concurrency = 8): Promise<number> {
  let next = 0;
  let errors = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const index = next;
      next += 1;
      const response = await fetch(`${url}/api/orders/${index % 50}`);
      await response.arrayBuffer();
      if (response.status >= 500) errors += 1;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return errors;
}
