// A real dual-write migration: orders move from `orders_old` (total in cents) to `orders_new` (total as numeric) in
// a real PostgreSQL, driven by the variant of a real Unleash toggle `dual-write-orders-<id>`. Which table a stage
// reads is measured by PostgreSQL itself (pg_stat_user_tables), which table it writes by the rows that land.
import { createDatabase, unleashAdmin } from '@gantry/test-harness';
import { server } from '@gantry/test-harness/vitest';
import pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createFlags,
  createMigrationFlag,
  MIGRATION_STAGES,
  type FlagContext,
  type Flags,
  type MigrationGuardrailEvent,
  type MigrationStage,
} from '../src/index.ts';
import { recordingLogger, uniqueName, waitFor } from './helpers.ts';

interface Order {
  readonly id: number;
  readonly customer: string;
  readonly totalCents: number;
}

const unleash = server('unleash');
const admin = unleashAdmin(unleash);
const migrationId = uniqueName('orders');
const toggle = `dual-write-${migrationId}`;
let pool: pg.Pool;
let statsPool: pg.Pool;
let flags: Flags;
let strategyId: string;

beforeAll(async () => {
  const database = await createDatabase(server('postgres'), 'flags_migration');
  // One connection for the application, so the statistics it produces can be flushed from that same backend.
  pool = new pg.Pool({ connectionString: database.url, max: 1 });
  statsPool = new pg.Pool({ connectionString: database.url, max: 1 });
  await pool.query(`
    CREATE TABLE orders_old (id integer PRIMARY KEY, customer text NOT NULL, total_cents integer NOT NULL);
    CREATE TABLE orders_new (id integer PRIMARY KEY, customer_name text NOT NULL, total numeric(12, 2) NOT NULL);
  `);
  await admin.createToggle(toggle, { type: 'release', description: 'orders: old table → new table' });
  strategyId = await admin.addStrategy(toggle, { name: 'flexibleRollout', variants: [{ name: 'off', weight: 1000 }] });
  await admin.enable(toggle);
  flags = createFlags({
    url: `${unleash.url}/api`,
    token: unleash.clientToken,
    appName: uniqueName('migration-app'),
    refreshIntervalMs: 200,
    sendUsageMetrics: false,
    backupPath: false,
    registry: new Registry(),
  });
  await flags.ready({ timeoutMs: 20_000, require: 'sync' });
});

afterAll(async () => {
  await flags.close();
  await pool.end();
  await statsPool.end();
});

async function moveTo(stage: string): Promise<void> {
  await admin.updateStrategy(toggle, strategyId, {
    name: 'flexibleRollout',
    variants: [{ name: stage, weight: 1000 }],
  });
  await waitFor(`variant ${stage}`, () => flags.variant(toggle, {}).name === stage);
}

/**
 * Sequential + index scans per table, as PostgreSQL counted them. A backend publishes its counts when it goes idle,
 * at most once a second unless forced: both backends are forced, the application's and this one's (whose rowsIn()
 * scans would otherwise land, a second later, inside the next window — as they did on a slow CI run).
 */
async function scans(): Promise<Record<string, number>> {
  await pool.query('SELECT pg_stat_force_next_flush()');
  await statsPool.query('SELECT pg_stat_force_next_flush()');
  const { rows } = await statsPool.query<{ relname: string; scans: string }>(
    `SELECT relname, (coalesce(seq_scan, 0) + coalesce(idx_scan, 0))::text AS scans
       FROM pg_stat_user_tables WHERE relname IN ('orders_old', 'orders_new')`,
  );
  return Object.fromEntries(rows.map((row) => [row.relname, Number(row.scans)]));
}

async function rowsIn(table: 'orders_old' | 'orders_new', id: number): Promise<number> {
  const { rows } = await statsPool.query<{ count: string }>(
    `SELECT count(*)::text AS count FROM ${table} WHERE id = $1`,
    [id],
  );
  return Number(rows[0]!.count);
}

function ordersMigration(
  options: { events?: MigrationGuardrailEvent[]; logger?: ReturnType<typeof recordingLogger>['logger'] } = {},
) {
  return createMigrationFlag(flags, toggle, {
    readOld: async (id: number) => {
      const { rows } = await pool.query<{ id: number; customer: string; total_cents: number }>(
        'SELECT id, customer, total_cents FROM orders_old WHERE id = $1',
        [id],
      );
      const row = rows[0];
      return row === undefined ? undefined : { id: row.id, customer: row.customer, totalCents: row.total_cents };
    },
    readNew: async (id: number) => {
      const { rows } = await pool.query<{ id: number; customer_name: string; total: string }>(
        'SELECT id, customer_name, total FROM orders_new WHERE id = $1',
        [id],
      );
      const row = rows[0];
      return row === undefined
        ? undefined
        : { id: row.id, customer: row.customer_name, totalCents: Math.round(Number(row.total) * 100) };
    },
    writeOld: async (order: Order) => {
      await pool.query('INSERT INTO orders_old (id, customer, total_cents) VALUES ($1, $2, $3)', [
        order.id,
        order.customer,
        order.totalCents,
      ]);
      return order.id;
    },
    writeNew: async (order: Order) => {
      await pool.query('INSERT INTO orders_new (id, customer_name, total) VALUES ($1, $2, $3)', [
        order.id,
        order.customer,
        order.totalCents / 100,
      ]);
      return order.id;
    },
    registry: new Registry(),
    guardrail: { maxMismatchRate: 0.5, minSamples: 3, windowMs: 60_000 },
    ...(options.logger && { logger: options.logger }),
    onGuardrail: (event) => options.events?.push(event),
  });
}

const EXPECTED: Record<MigrationStage, { reads: [old: number, fresh: number]; writes: [old: number, fresh: number] }> =
  {
    off: { reads: [1, 0], writes: [1, 0] },
    dualwrite: { reads: [1, 0], writes: [1, 1] },
    shadow: { reads: [1, 1], writes: [1, 1] },
    live: { reads: [1, 1], writes: [1, 1] },
    rampdown: { reads: [0, 1], writes: [1, 1] },
    complete: { reads: [0, 1], writes: [0, 1] },
  };

describe('a migration flag moved through every stage on real tables', () => {
  it('reads and writes the tables each stage names, compares in shadow/live, and refuses a jump back out of complete', async () => {
    const migration = ordersMigration();
    let id = 100;
    for (const stage of MIGRATION_STAGES) {
      await moveTo(stage);
      const request: FlagContext = { tenantId: 'acme' };
      expect(migration.stage(request)).toBe(stage);

      id += 1;
      const order: Order = { id, customer: `customer ${id}`, totalCents: 1234 };
      await migration.write(request, order);
      expect([await rowsIn('orders_old', id), await rowsIn('orders_new', id)], `${stage} writes`).toEqual(
        EXPECTED[stage].writes,
      );

      const before = await scans();
      const consistentBefore = migration.stats.consistent;
      const read = await migration.read(request, id);
      await migration.settled();
      const after = await scans();
      expect(read, `${stage} read`).toEqual(order);
      expect(
        [after['orders_old']! - before['orders_old']!, after['orders_new']! - before['orders_new']!],
        `${stage} reads`,
      ).toEqual(EXPECTED[stage].reads);
      const compares = stage === 'shadow' || stage === 'live' ? 1 : 0;
      expect(migration.stats.consistent - consistentBefore, `${stage} comparisons`).toBe(compares);
    }
    expect(migration.stats.inconsistent).toBe(0);

    // complete → shadow would read the old table, which stopped receiving writes: refused, complete kept.
    await moveTo('shadow');
    expect(migration.stage({ tenantId: 'acme' })).toBe('complete');
    await moveTo('off');
  });

  it('detects mismatches when the two tables differ, logs a diff and trips the guardrail check', async () => {
    const events: MigrationGuardrailEvent[] = [];
    const log = recordingLogger();
    const migration = ordersMigration({ events, logger: log.logger });
    await moveTo('off');
    expect(migration.stage({})).toBe('off');
    await moveTo('dualwrite');
    for (const id of [201, 202, 203]) await migration.write({}, { id, customer: `c${id}`, totalCents: 5000 });
    await moveTo('shadow');
    // Drift the new table behind the application's back, as a buggy backfill would.
    await statsPool.query('UPDATE orders_new SET total = total + 1 WHERE id IN (201, 202, 203)');

    const check = migration.check();
    expect((await check.run(AbortSignal.timeout(1_000))).status).toBe('UP');
    for (const id of [201, 202, 203]) {
      expect((await migration.read({}, id))?.totalCents).toBe(5000);
    }
    await migration.settled();
    expect(migration.stats).toMatchObject({ inconsistent: 3, consistent: 0, guardrailTripped: true });
    const diff = log.lines.find((line) => line.fields['event'] === 'flags.migration.mismatch');
    expect(diff?.fields['diff']).toMatchObject({
      entries: [{ path: 'totalCents', oldType: 'number', newType: 'number' }],
      truncated: false,
    });
    expect((diff?.fields['diff'] as { entries: object[] }).entries[0]).not.toHaveProperty('old');
    expect(events).toMatchObject([{ state: 'tripped', migration: toggle, samples: 3, mismatchRate: 1 }]);
    const result = await check.run(AbortSignal.timeout(1_000));
    expect(result).toMatchObject({
      status: 'DOWN',
      data: { inconsistent: 3, reason: 'mismatch rate over the guardrail threshold' },
    });
    expect(check.critical).toBe(false);
  });
});
