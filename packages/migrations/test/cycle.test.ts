import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { Registry } from 'prom-client';
import {
  appApplicationName,
  createMigrator,
  createSchemaMonitor,
  isMigrationError,
  registerAppVersion,
  type MigrationError,
} from '../src/index.ts';
import { freshDatabase, migrationFolder } from './helpers.ts';

let url: string;
let pool: pg.Pool;
beforeAll(async () => {
  ({ url, pool } = await freshDatabase('cycle'));
});
afterAll(async () => {
  await pool.end();
});

const SEEDED = 20_000;
const SCHEMA = 'cycle_state';
const OLD_APP = { service: 'users-api', version: '1.0.0', schemaSupports: { min: '1', max: '3' } };
const NEW_APP = { service: 'users-api', version: '2.0.0', schemaSupports: { min: '2', max: '4' } };

/** A bounded writer loop standing in for one app version; counts writes and errors. */
function writer(
  connection: pg.Pool,
  write: (client: pg.Pool, n: number) => Promise<unknown>,
): {
  stop(): Promise<void>;
  readonly writes: () => number;
  readonly errors: string[];
} {
  let running = true;
  let writes = 0;
  const errors: string[] = [];
  const done = (async () => {
    for (let n = 0; running && n < 100_000; n += 1) {
      try {
        await write(connection, n);
        writes += 1;
      } catch (error) {
        errors.push(String(error));
      }
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await done;
    },
    writes: () => writes,
    errors,
  };
}

describe('expand → dual-write → backfill → validate → contract', () => {
  it('completes under concurrent writes, and contract waits for the old version to leave', async () => {
    const folder = migrationFolder({
      'V1__users.sql': `-- gantry:phase expand
CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL);`,
      // Expand: the new column, and a trigger that dual-writes between the old and the new column.
      'V2__display_name.sql': `-- gantry:phase expand
-- gantry:allow ban-drop-not-null the new version writes display_name only; the trigger fills name
ALTER TABLE users ADD COLUMN display_name text, ALTER COLUMN name DROP NOT NULL;
CREATE FUNCTION users_dual_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.display_name IS NULL THEN NEW.display_name := upper(NEW.name); END IF;
    IF NEW.name IS NULL THEN NEW.name := lower(NEW.display_name); END IF;
  ELSIF NEW.name IS DISTINCT FROM OLD.name THEN
    NEW.display_name := upper(NEW.name);
  ELSIF NEW.display_name IS DISTINCT FROM OLD.display_name THEN
    NEW.name := lower(NEW.display_name);
  END IF;
  RETURN NEW;
END $$;
-- gantry:allow create-trigger-lock dual-write trigger; the runner's lock_timeout and retries apply
CREATE TRIGGER users_dual_write BEFORE INSERT OR UPDATE ON users FOR EACH ROW EXECUTE FUNCTION users_dual_write();`,
      'V3__backfill_display_name.ts': `import { defineBackfill } from '@gantry/migrations';

export default defineBackfill({ table: 'users', set: { display_name: 'upper(name)' }, batchSize: 500 });
`,
      'V4__drop_name.sql': `-- gantry:phase contract
DROP TRIGGER users_dual_write ON users;
DROP FUNCTION users_dual_write();
ALTER TABLE users DROP COLUMN name;`,
    });
    const migrator = createMigrator({
      directory: folder.directory,
      connectionString: url,
      schema: SCHEMA,
      heartbeatTtlMs: 60_000,
    });
    await migrator.migrate({ target: '1' });
    await pool.query(`INSERT INTO users (name) SELECT 'user_' || g FROM generate_series(1, ${SEEDED}) g`);

    // The old version runs: heartbeat, a pool that announces its schema range, and writes to `name` only.
    const oldPool = new pg.Pool({ connectionString: url, max: 2, application_name: appApplicationName(OLD_APP) });
    oldPool.on('error', () => undefined);
    const oldHeartbeat = await registerAppVersion(pool, { ...OLD_APP, schema: SCHEMA, intervalMs: 200 });
    const oldWriter = writer(oldPool, async (client, n) =>
      n % 2 === 0
        ? client.query(`INSERT INTO users (name) VALUES ($1)`, [`old_${n}`])
        : client.query(`UPDATE users SET name = $1 WHERE id = $2`, [`renamed_${n}`, 1 + ((n * 7919) % SEEDED)]),
    );

    // Expand under writes.
    const expand = await migrator.migrate({ phase: 'expand' });
    expect(expand.applied.map((step) => step.version)).toEqual(['2']);
    expect(expand.stoppedAt).toEqual({ version: '3', phase: 'backfill' });

    // The new version starts: it writes display_name only, the trigger keeps `name` for the old version.
    const newPool = new pg.Pool({ connectionString: url, max: 2, application_name: appApplicationName(NEW_APP) });
    newPool.on('error', () => undefined);
    const newHeartbeat = await registerAppVersion(pool, { ...NEW_APP, schema: SCHEMA, intervalMs: 200 });
    const newWriter = writer(newPool, async (client, n) =>
      n % 2 === 0
        ? client.query(`INSERT INTO users (display_name) VALUES ($1)`, [`NEW_${n}`])
        : client.query(`UPDATE users SET display_name = $1 WHERE id = $2`, [
            `NEWNAME_${n}`,
            1 + ((n * 104729) % SEEDED),
          ]),
    );
    const registry = new Registry();
    const monitor = createSchemaMonitor({
      pool,
      directory: folder.directory,
      schemaSupports: NEW_APP.schemaSupports,
      schema: SCHEMA,
      refreshIntervalMs: 0,
      registry,
    });
    const startup = await monitor.check.run(AbortSignal.timeout(5_000));
    expect(startup.status).toBe('UP');

    // Backfill under writes from both versions, then verify.
    const backfill = await migrator.backfillRun();
    expect(backfill.applied.map((step) => [step.version, step.phase])).toEqual([['3', 'backfill']]);
    expect(backfill.applied[0]!.rows).toBeGreaterThanOrEqual(SEEDED);

    // Contract is refused while the old version is alive: by its heartbeat and by its connections.
    const refused = await migrator.contract().catch((caught: unknown) => caught);
    expect(isMigrationError(refused) && refused.code).toBe('GANTRY_MIGRATIONS_CONTRACT_REFUSED');
    expect((refused as MigrationError).message).toContain('users-api@1.0.0');
    const blocking = ((refused as MigrationError).details?.['blocking'] as { source: string }[])
      .map((item) => item.source)
      .sort();
    expect(blocking).toEqual(['connection', 'heartbeat']);
    expect((await migrator.info()).current).toBe('3');

    await monitor.refresh();
    expect(monitor.info.name).toBe('schema');
    expect(monitor.info.contribute()).toEqual({
      current: '3',
      phase: 'backfill',
      supports: { min: '2', max: '4' },
      pending: 1,
      failed: [],
      lastContract: null,
    });
    expect(await registry.getSingleMetricAsString('gantry_migrations_pending_migrations')).toContain(
      'gantry_migrations_pending_migrations 1',
    );

    // The old version goes away: writes stop, heartbeat removed, connections closed.
    await oldWriter.stop();
    await oldHeartbeat.stop();
    await oldPool.end();
    const contract = await migrator.contract();
    expect(contract.applied.map((step) => step.version)).toEqual(['4']);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await newWriter.stop();
    await newHeartbeat.stop();
    await newPool.end();

    expect(oldWriter.errors).toEqual([]);
    expect(newWriter.errors).toEqual([]);
    expect(oldWriter.writes()).toBeGreaterThan(10);
    expect(newWriter.writes()).toBeGreaterThan(10);
    const data = await pool.query(
      `SELECT count(*)::int AS total, count(*) FILTER (WHERE display_name IS NULL)::int AS missing FROM users`,
    );
    expect(data.rows[0].missing).toBe(0);
    expect(data.rows[0].total).toBeGreaterThan(SEEDED);
    expect(await migrator.validate()).toEqual({ ok: true, problems: [] });
    await monitor.refresh();
    expect(monitor.info.contribute()).toMatchObject({ current: '4', phase: 'contract', pending: 0, lastContract: '4' });
    expect((await monitor.check.run(AbortSignal.timeout(5_000))).status).toBe('UP');

    // An instance of the old version starting now is told the schema moved past it.
    const oldMonitor = createSchemaMonitor({
      pool,
      directory: folder.directory,
      schemaSupports: OLD_APP.schemaSupports,
      schema: SCHEMA,
      registry: false,
    });
    const stale = await oldMonitor.check.run(AbortSignal.timeout(5_000));
    expect(stale.status).toBe('DOWN');
    expect(String(stale.data?.['reason'])).toContain('contracted to 4');
    await monitor.close();
    await oldMonitor.close();
    folder.remove();
  });

  it('records a forced contract with its reason in the history and the audit log', async () => {
    const folder = migrationFolder({
      'V1__t.sql': '-- gantry:phase expand\nCREATE TABLE forced (id bigint PRIMARY KEY, old text);',
      'V2__drop.sql': '-- gantry:phase contract\nALTER TABLE forced DROP COLUMN old;',
    });
    const migrator = createMigrator({ directory: folder.directory, connectionString: url, schema: 'forced_state' });
    await migrator.migrate({ phase: 'expand' });
    const heartbeat = await registerAppVersion(pool, {
      service: 'legacy',
      version: '0.9',
      schemaSupports: { min: '1', max: '1' },
      schema: 'forced_state',
    });
    const noReason = await migrator.contract({ force: true }).catch((caught: unknown) => caught);
    expect(isMigrationError(noReason) && noReason.code).toBe('GANTRY_MIGRATIONS_REASON_REQUIRED');
    const report = await migrator.contract({
      force: true,
      reason: 'legacy pods are draining; they never read column old',
    });
    expect(report.applied.map((step) => [step.version, step.forcedReason])).toEqual([
      ['2', 'legacy pods are draining; they never read column old'],
    ]);
    const history = await pool.query(`SELECT forced_reason FROM forced_state.history WHERE version = '2'`);
    expect(history.rows).toEqual([{ forced_reason: 'legacy pods are draining; they never read column old' }]);
    const auditRows = await pool.query(
      `SELECT action, version, reason, details->'blocking'->0->>'service' AS service FROM forced_state.audit`,
    );
    expect(auditRows.rows).toEqual([
      {
        action: 'force-contract',
        version: '2',
        reason: 'legacy pods are draining; they never read column old',
        service: 'legacy',
      },
    ]);
    await heartbeat.stop();
    folder.remove();
  });

  it('lets contract through once a heartbeat is older than the TTL', async () => {
    const folder = migrationFolder({
      'V1__t.sql': '-- gantry:phase expand\nCREATE TABLE stale_beat (id bigint PRIMARY KEY, old text);',
      'V2__drop.sql': '-- gantry:phase contract\nALTER TABLE stale_beat DROP COLUMN old;',
    });
    const migrator = createMigrator({
      directory: folder.directory,
      connectionString: url,
      schema: 'stale_state',
      // Fresh for the first contract() even on a busy machine; the backdating below makes it stale.
      heartbeatTtlMs: 30_000,
    });
    await migrator.migrate({ phase: 'expand' });
    const heartbeat = await registerAppVersion(pool, {
      service: 'crashed',
      version: '0.1',
      schemaSupports: { min: '1', max: '1' },
      schema: 'stale_state',
      intervalMs: 60_000,
    });
    const refused = await migrator.contract().catch((caught: unknown) => caught);
    expect(isMigrationError(refused) && refused.code).toBe('GANTRY_MIGRATIONS_CONTRACT_REFUSED');
    await pool.query(`UPDATE stale_state.app_versions SET last_seen = now() - interval '60 seconds'`);
    expect((await migrator.contract()).applied.map((step) => step.version)).toEqual(['2']);
    await heartbeat.stop();
    folder.remove();
  });
});
