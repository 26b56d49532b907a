import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { createMigrator, isMigrationError, type BackfillProgress } from '../src/index.ts';
import { CLI, freshDatabase, migrationFolder, waitFor } from './helpers.ts';

let url: string;
let pool: pg.Pool;
beforeAll(async () => {
  ({ url, pool } = await freshDatabase('backfill'));
});
afterAll(async () => {
  await pool.end();
});

const ROWS = 20_000;

describe('backfill', () => {
  it('resumes after the migrator is SIGKILLed mid-backfill with zero missing and zero duplicated rows', async () => {
    const folder = migrationFolder({
      'V1__tables.sql': `-- gantry:phase expand
CREATE TABLE source_rows (id bigint PRIMARY KEY, payload text NOT NULL);
CREATE TABLE copied_rows (id bigint NOT NULL, payload text NOT NULL);`,
      // Copies rows into a table without a unique key: a batch applied twice would show as duplicates.
      'V2__copy_rows.ts': `export default {
  table: 'source_rows',
  apply: async (query, batch) => {
    await query('INSERT INTO copied_rows (id, payload) SELECT id, payload FROM source_rows WHERE id = ANY($1::bigint[])', [batch.keys.map((key) => key[0])]);
  },
  verify: 'SELECT count(*) FROM source_rows s WHERE NOT EXISTS (SELECT 1 FROM copied_rows c WHERE c.id = s.id)',
  batchSize: 200,
  minBatchSize: 200,
  maxBatchSize: 200,
  pauseMs: 10,
};
`,
    });
    const migrator = createMigrator({ directory: folder.directory, connectionString: url, schema: 'kill_state' });
    await migrator.migrate({ phase: 'expand' });
    await pool.query(`INSERT INTO source_rows SELECT g, 'p' || g FROM generate_series(1, ${ROWS}) g`);

    const child = spawn(
      process.execPath,
      [CLI, 'backfill', 'run', '--url', url, '--dir', folder.directory, '--schema', 'kill_state', '--json'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.on('exit', (_code, signal) => resolve(signal)),
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    await waitFor(
      async () => {
        const state = await pool
          .query(`SELECT rows_done FROM kill_state.backfill WHERE version = '2'`)
          .catch(() => ({ rows: [] }));
        return Number(state.rows[0]?.rows_done ?? 0) >= 4_000;
      },
      30_000,
      `backfill progress (child stderr: ${stderr})`,
    );
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    // Not a TTY: progress arrives as JSON lines with rate and ETA.
    const firstLine = JSON.parse(stderr.split('\n')[0]!);
    expect(firstLine).toMatchObject({ event: 'migrations.backfill.progress', version: '2', table: 'source_rows' });
    expect(typeof firstLine.rowsPerSecond).toBe('number');
    expect(firstLine).toHaveProperty('etaSeconds');

    const interrupted = await pool.query(
      `SELECT state, rows_done::int AS done FROM kill_state.backfill WHERE version = '2'`,
    );
    expect(interrupted.rows[0].state).toBe('running');
    expect(interrupted.rows[0].done).toBeLessThan(ROWS);
    const info = await migrator.info();
    expect(info.phase).toBe('backfill');
    expect(info.migrations.find((migration) => migration.version === '2')?.state).toBe('backfilling');

    const progress: BackfillProgress[] = [];
    const resumed = createMigrator({
      directory: folder.directory,
      connectionString: url,
      schema: 'kill_state',
      onProgress: (item) => progress.push(item),
    });
    const report = await resumed.backfillResume();
    expect(report.applied.map((step) => step.version)).toEqual(['2']);
    // It continued from the cursor rather than starting again.
    expect(progress[0]!.rowsDone).toBeGreaterThan(interrupted.rows[0].done);

    const counts = await pool.query(
      `SELECT count(*)::int AS total, count(DISTINCT id)::int AS distinct_ids FROM copied_rows`,
    );
    expect(counts.rows[0]).toEqual({ total: ROWS, distinct_ids: ROWS });
    const missing = await pool.query(
      `SELECT count(*)::int AS n FROM source_rows s WHERE NOT EXISTS (SELECT 1 FROM copied_rows c WHERE c.id = s.id)`,
    );
    expect(missing.rows[0].n).toBe(0);
    const done = await pool.query(
      `SELECT state, mismatches::int AS mismatches, rows_done::int AS rows FROM kill_state.backfill`,
    );
    expect(done.rows).toEqual([{ state: 'done', mismatches: 0, rows: ROWS }]);
    folder.remove();
  });

  it('adapts the batch size towards the target duration and reports rows/s and ETA', async () => {
    const folder = migrationFolder({
      'V1__t.sql': '-- gantry:phase expand\nCREATE TABLE adaptive (id bigint PRIMARY KEY, a text, b text);',
      'V2__fill_b.ts': `export default { table: 'adaptive', set: { b: "upper(a)" }, batchSize: 100, targetBatchMs: 40 };\n`,
    });
    const progress: BackfillProgress[] = [];
    const migrator = createMigrator({
      directory: folder.directory,
      connectionString: url,
      schema: 'adaptive_state',
      onProgress: (item) => progress.push(item),
    });
    await migrator.migrate({ phase: 'expand' });
    await pool.query(`INSERT INTO adaptive SELECT g, 'a' || g, NULL FROM generate_series(1, 30000) g`);
    await pool.query('ANALYZE adaptive');
    await migrator.backfillRun();
    expect(progress.length).toBeGreaterThan(2);
    expect(Math.max(...progress.map((item) => item.batchSize))).toBeGreaterThan(100);
    const last = progress[progress.length - 1]!;
    expect(last.rowsDone).toBe(30_000);
    expect(last.rowsPerSecond).toBeGreaterThan(0);
    expect(progress[0]!.etaSeconds).not.toBeNull();
    const wrong = await pool.query(`SELECT count(*)::int AS n FROM adaptive WHERE b IS DISTINCT FROM upper(a)`);
    expect(wrong.rows[0].n).toBe(0);
    folder.remove();
  });

  it('fails verification when rows change behind the backfill without a dual write', async () => {
    const folder = migrationFolder({
      'V1__t.sql': '-- gantry:phase expand\nCREATE TABLE unsynced (id bigint PRIMARY KEY, a text, b text);',
      'V2__fill.ts': `export default {
  table: 'unsynced',
  // A where clause that never matches row 1 means the UPDATE skips it, so verify must catch it.
  set: { b: "upper(a)" },
  where: "b IS DISTINCT FROM upper(a) AND id <> 1",
  verify: 'SELECT count(*) FROM unsynced WHERE b IS DISTINCT FROM upper(a)',
};\n`,
    });
    const migrator = createMigrator({ directory: folder.directory, connectionString: url, schema: 'unsynced_state' });
    await migrator.migrate({ phase: 'expand' });
    await pool.query(`INSERT INTO unsynced SELECT g, 'a' || g, NULL FROM generate_series(1, 100) g`);
    const error = await migrator.backfillRun().catch((caught: unknown) => caught);
    expect(isMigrationError(error) && error.code).toBe('GANTRY_MIGRATIONS_VERIFY_FAILED');
    expect((error as Error).message).toContain('1 mismatching rows');
    const info = await migrator.info();
    expect(info.failed.map((item) => item.version)).toEqual(['2']);
    folder.remove();
  });
});
