import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createMigrator, isMigrationError, type MigrationError } from '../src/index.ts';
import { freshDatabase, migrationFolder } from './helpers.ts';

let url: string;
let pool: pg.Pool;
beforeAll(async () => {
  ({ url, pool } = await freshDatabase('locking'));
});
afterAll(async () => {
  await pool.end();
});

describe('two migrators at once', () => {
  it('lets exactly one apply; the other waits and then finds nothing to do', async () => {
    const folder = migrationFolder({
      'V1__slow.sql': '-- gantry:phase expand\nCREATE TABLE raced (id bigint PRIMARY KEY);\nSELECT pg_sleep(1);',
    });
    const make = (): ReturnType<typeof createMigrator> =>
      createMigrator({
        directory: folder.directory,
        connectionString: url,
        schema: 'race_wait',
        advisoryLockWaitMs: 20_000,
      });
    const [first, second] = await Promise.all([make().migrate(), make().migrate()]);
    expect([first.applied.length, second.applied.length].sort()).toEqual([0, 1]);
    const rows = await pool.query(`SELECT version, success FROM race_wait.history`);
    expect(rows.rows).toEqual([{ version: '1', success: true }]);
    folder.remove();
  });

  it('makes the loser give up after its wait with a message naming the holder', async () => {
    const folder = migrationFolder({
      'V1__slow.sql': '-- gantry:phase expand\nCREATE TABLE raced_short (id bigint PRIMARY KEY);\nSELECT pg_sleep(2);',
    });
    const make = (): ReturnType<typeof createMigrator> =>
      createMigrator({
        directory: folder.directory,
        connectionString: url,
        schema: 'race_short',
        advisoryLockWaitMs: 300,
      });
    const results = await Promise.allSettled([make().migrate(), make().migrate()]);
    const fulfilled = results.filter((result) => result.status === 'fulfilled');
    const rejected = results.filter((result) => result.status === 'rejected');
    expect(fulfilled).toHaveLength(1);
    expect(rejected).toHaveLength(1);
    const error = (rejected[0] as PromiseRejectedResult).reason as MigrationError;
    expect(isMigrationError(error) && error.code).toBe('GANTRY_MIGRATIONS_LOCK_NOT_ACQUIRED');
    expect(error.message).toMatch(/Another migrator holds the migration lock \(pid \d+, gantry-migrate/);
    const rows = await pool.query(`SELECT count(*)::int AS n FROM race_short.history`);
    expect(rows.rows[0].n).toBe(1);
    folder.remove();
  });
});

describe('a long transaction holding a lock', () => {
  it('makes the migration retry and fail clearly while reads and writes continue', async () => {
    await pool.query('CREATE TABLE busy (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note text)');
    await pool.query(`INSERT INTO busy (note) SELECT 'n' || g FROM generate_series(1, 100) g`);
    const folder = migrationFolder({
      'V1__add.sql': '-- gantry:phase expand\nALTER TABLE busy ADD COLUMN extra text;',
    });
    const blocker = new pg.Client({ connectionString: url, application_name: 'report-job' });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('SELECT count(*) FROM busy');

    // Application traffic with a 3 s statement timeout: it would fail if the ALTER sat in the lock queue.
    const traffic = new pg.Pool({ connectionString: url, max: 4, statement_timeout: 3_000 });
    traffic.on('error', () => undefined);
    let running = true;
    let reads = 0;
    let writes = 0;
    const errors: string[] = [];
    const loop = async (write: boolean): Promise<void> => {
      while (running) {
        try {
          if (write) {
            await traffic.query(`INSERT INTO busy (note) VALUES ('traffic')`);
            writes += 1;
          } else {
            await traffic.query('SELECT count(*) FROM busy');
            reads += 1;
          }
        } catch (error) {
          errors.push(String(error));
        }
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    };
    const loops = [loop(false), loop(true), loop(false), loop(true)];

    const migrator = createMigrator({
      directory: folder.directory,
      connectionString: url,
      schema: 'busy_state',
      lockTimeoutMs: 200,
      lockRetries: 3,
      retryBaseDelayMs: 100,
      retryMaxDelayMs: 400,
    });
    const readsBefore = reads;
    const writesBefore = writes;
    const error = await migrator.migrate().catch((caught: unknown) => caught);
    const readsDuring = reads - readsBefore;
    const writesDuring = writes - writesBefore;
    running = false;
    await Promise.all(loops);
    await traffic.end();

    expect(isMigrationError(error) && error.code).toBe('GANTRY_MIGRATIONS_LOCK_TIMEOUT');
    const failure = error as MigrationError;
    expect(failure.details?.['attempts']).toBe(4);
    expect(failure.message).toContain('nothing was changed');
    expect(failure.message).toMatch(/pid \d+ \(report-job, idle in transaction, AccessShareLock/);
    expect(errors).toEqual([]);
    expect(readsDuring).toBeGreaterThan(5);
    expect(writesDuring).toBeGreaterThan(5);
    expect((await migrator.info()).failed).toEqual([{ version: '1', description: 'add' }]);

    await blocker.query('ROLLBACK');
    await blocker.end();
    expect((await migrator.migrate()).applied.map((step) => step.version)).toEqual(['1']);
    expect((await migrator.info()).failed).toEqual([]);
    folder.remove();
  });
});
