// The PostgreSQL check against the harness's real PostgreSQL: a hanging query is cancelled by the server when the
// check times out while the probe keeps answering, the pooled connection comes back clean, and a private server
// stopped and started again moves readiness DOWN and UP.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRunDirectory, startPostgres, type PostgresServer } from '@gantry/test-harness';
import { server } from '@gantry/test-harness/vitest';
import { createHealth, createPoolEndHook, createPostgresCheck, type Health } from '@gantry/health';
import { createHealthHandler } from '@gantry/health/node-http';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

function pool(
  info: { host: string; port: number; user: string; password: string; database: string },
  max = 2,
): pg.Pool {
  const created = new pg.Pool({ ...info, max, connectionTimeoutMillis: 2_000 });
  created.on('error', () => undefined);
  cleanups.push(() => created.end());
  return created;
}

function registry(options: Parameters<typeof createHealth>[0] = {}): Health {
  const health = createHealth({ registry: new Registry(), shutdown: { signals: [] }, ...options });
  cleanups.push(() => health.close());
  return health;
}

async function probeServer(health: Health): Promise<string> {
  const probes = createHealthHandler(health);
  const http: Server = createServer((req, res) => void probes(req, res));
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => http.close(resolve)));
  return `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
}

async function until<T>(
  what: string,
  read: () => Promise<T>,
  ok: (value: T) => boolean,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last: T | undefined;
  while (performance.now() < deadline) {
    last = await read();
    if (ok(last)) return last;
    await sleep(100);
  }
  throw new Error(`${what}: still ${JSON.stringify(last)} after ${timeoutMs} ms`);
}

const MARKER = 'gantry-health-sleep-probe';

async function activeSleeps(admin: pg.Pool, marker: string): Promise<number> {
  const { rows } = await admin.query<{ count: string }>(
    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1 AND pid <> pg_backend_pid()",
    [`%${marker}%`],
  );
  return Number(rows[0]?.count ?? 0);
}

describe('PostgreSQL check (shared server)', () => {
  it('is UP with the pool counters as data', async () => {
    const health = registry();
    health.addCheck(createPostgresCheck({ pool: pool(server('postgres')) }));
    health.start();
    const report = await until(
      'readiness',
      async () => health.snapshot('readiness'),
      (value) => value.status === 'UP',
    );
    const data = report.checks.find((check) => check.name === 'postgres')?.data;
    expect(data).toMatchObject({ totalCount: 1, idleCount: 1, waitingCount: 0 });
  });

  it('cancels a pg_sleep server-side at the timeout while the probe answers at once', async () => {
    const admin = pool(server('postgres'), 1);
    const checked = pool(server('postgres'), 1);
    const health = registry();
    health.addCheck(
      createPostgresCheck({
        pool: checked,
        name: 'slow-query',
        query: `SELECT pg_sleep(30) /* ${MARKER} */`,
        // Long enough for the polling below to see the sleep on a busy machine, far below the 30 s it would take.
        timeoutMs: 3_000,
      }),
      { intervalMs: 60_000 },
    );
    health.start();
    const url = await probeServer(health);

    // While the query sleeps on the server, the probe answers from cached state.
    await until(
      'the sleep to show in pg_stat_activity',
      () => activeSleeps(admin, MARKER),
      (count) => count === 1,
      5_000,
    );
    const began = performance.now();
    const response = await fetch(`${url}/q/health/ready`);
    const elapsed = performance.now() - began;
    expect(response.status).toBe(503);
    // Far below the 30 s the query would take: the probe never waits for the database.
    expect(elapsed).toBeLessThan(2_000);

    const report = await until(
      'the check to time out',
      async () => health.snapshot('readiness'),
      (value) =>
        /timed out|statement timeout/.test(
          String(value.checks.find((check) => check.name === 'slow-query')?.data?.['reason']),
        ),
    );
    expect(String(report.checks.find((check) => check.name === 'slow-query')?.data?.['reason'])).toMatch(
      /timed out after 3000 ms|statement timeout/,
    );
    // The server cancelled it: no backend is still sleeping, long before the 30 s are up.
    await until(
      'the backend to stop sleeping',
      () => activeSleeps(admin, MARKER),
      (count) => count === 0,
      5_000,
    );
    // The connection went back to the pool clean: usable, and statement_timeout did not leak into the session.
    const { rows } = await checked.query<{ statement_timeout: string }>('SHOW statement_timeout');
    expect(rows[0]?.statement_timeout).toBe('0');
  });

  it('control: a client-side timeout alone (Promise.race) leaves the query running on the server', async () => {
    const admin = pool(server('postgres'), 1);
    const raw = pool(server('postgres'), 1);
    const marker = `${MARKER}-control`;
    const query = raw.query(`SELECT pg_sleep(30) /* ${marker} */`).catch(() => undefined);
    await Promise.race([query, sleep(500)]);
    // The caller gave up after 500 ms; the server keeps sleeping (seen within 10 s even on a busy machine).
    await until(
      'the abandoned sleep to show',
      () => activeSleeps(admin, marker),
      (count) => count === 1,
      10_000,
    );
    await sleep(1_000);
    expect(await activeSleeps(admin, marker)).toBe(1);
    await admin.query(
      'SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()',
      [`%${marker}%`],
    );
    await query;
  });

  it('reports an exhausted pool in the timeout reason', async () => {
    const exhausted = pool(server('postgres'), 1);
    const held = await exhausted.connect();
    cleanups.push(async () => held.release());
    const health = registry();
    health.addCheck(createPostgresCheck({ pool: exhausted, timeoutMs: 300 }), { intervalMs: 60_000 });
    health.start();
    const report = await until(
      'the check to time out',
      async () => health.snapshot('readiness'),
      (value) =>
        String(value.checks.find((check) => check.name === 'postgres')?.data?.['reason']).startsWith('timed out'),
    );
    expect(report.checks.find((check) => check.name === 'postgres')?.data?.['reason']).toBe(
      'timed out after 300 ms: pool exhausted: 0 idle of 1, 1 waiting',
    );
  });

  it('ends the pool as a shutdown hook', async () => {
    const ended = new pg.Pool({ ...server('postgres'), max: 1 });
    await ended.query('SELECT 1');
    const health = registry({ shutdown: { signals: [], delayMs: 0, terminate: () => undefined } });
    health.addShutdownHook(createPoolEndHook(ended));
    health.start();
    const outcome = await health.shutdown();
    expect(outcome.failedHooks).toEqual([]);
    expect(ended.ended).toBe(true);
  });
});

describe('PostgreSQL check (private server stopped and started)', () => {
  let postgres: PostgresServer;
  beforeAll(async () => {
    postgres = await startPostgres({ runDirectory: createRunDirectory('health-pg'), name: 'health-pg' });
  }, 60_000);
  afterAll(async () => {
    await postgres?.destroy();
  });

  it('turns readiness DOWN within the bound when the server stops and UP when it is back', async () => {
    const health = registry();
    health.addCheck(createPostgresCheck({ pool: pool(postgres), timeoutMs: 1_000 }), { intervalMs: 300 });
    health.start();
    await until(
      'UP',
      async () => health.snapshot('readiness').status,
      (status) => status === 'UP',
    );

    await postgres.stop();
    const stoppedAt = performance.now();
    await until(
      'DOWN',
      async () => health.snapshot('readiness').status,
      (status) => status === 'DOWN',
      10_000,
    );
    // Bound: one interval plus one timeout (failureThreshold 1), with room for a loaded machine.
    expect(performance.now() - stoppedAt).toBeLessThan(300 + 1_000 + 3_000);

    await postgres.start();
    await until(
      'UP again',
      async () => health.snapshot('readiness').status,
      (status) => status === 'UP',
      20_000,
    );
  }, 60_000);
});
