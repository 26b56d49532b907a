// @gantry/migrations against its peers, side by side on one private PostgreSQL (the harness's, fsync off — both
// sides of every comparison run on the same server, so the ratios stay fair):
//   1. a backfill of 100 k and 1 M rows against one single UPDATE of the same table (rows/s, p99 batch);
//   2. applying 200 small migrations against node-pg-migrate.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { runner as nodePgMigrate } from 'node-pg-migrate';
import { createMigrator, type BackfillProgress } from '@gantry/migrations';
import { createRunDirectory, postgresUrl, startPostgres } from '@gantry/test-harness';
import { publishReport, type BenchRow } from './report.ts';

const SIZES = [100_000, 1_000_000] as const;
const MIGRATIONS = 200;
const ROUNDS = 3;

const percentile = (values: readonly number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? 0;
};
const median = (values: readonly number[]): number => percentile(values, 50);

function folder(files: Readonly<Record<string, string>>): string {
  const directory = join(tmpdir(), `gantry-bench-migrations-${randomBytes(4).toString('hex')}`);
  mkdirSync(directory, { recursive: true });
  for (const [name, content] of Object.entries(files)) writeFileSync(join(directory, name), content);
  return directory;
}

const server = await startPostgres({ runDirectory: createRunDirectory('bench-migrations'), name: 'bench-pg' });
const admin = new pg.Client({ ...server });
await admin.connect();
const database = async (name: string): Promise<string> => {
  await admin.query(`CREATE DATABASE ${name}`);
  return postgresUrl(server, name);
};
const cleanup: string[] = [];

try {
  // ------------------------------------------------------------------------------------------- backfill
  const backfillRows: BenchRow[] = [];
  const measured = new Map<number, { backfill: number; update: number; p99: number }>();
  for (const size of SIZES) {
    const url = await database(`backfill_${size}`);
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    for (const table of ['single_update', 'backfilled']) {
      await pool.query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, a integer NOT NULL, b integer)`);
      await pool.query(`INSERT INTO ${table} SELECT g, g % 1000, NULL FROM generate_series(1, ${size}) g`);
      await pool.query(`VACUUM ANALYZE ${table}`);
    }
    await pool.query('CHECKPOINT');

    const updateStarted = performance.now();
    await pool.query('UPDATE single_update SET b = a * 2');
    const updateSeconds = (performance.now() - updateStarted) / 1000;

    const directory = folder({ 'V1__fill_b.ts': `export default { table: 'backfilled', set: { b: 'a * 2' } };\n` });
    cleanup.push(directory);
    const batches: number[] = [];
    let batchRows = 0;
    const migrator = createMigrator({
      directory,
      connectionString: url,
      onProgress: (progress: BackfillProgress) => {
        batches.push(progress.batchMs);
        batchRows = progress.rowsDone;
      },
    });
    const started = performance.now();
    await migrator.backfillRun();
    const backfillSeconds = (performance.now() - started) / 1000;
    const wrong = await pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM backfilled WHERE b IS DISTINCT FROM a * 2',
    );
    if (wrong.rows[0]?.n !== 0 || batchRows !== size) throw new Error(`backfill of ${size} rows incomplete`);
    const batchSeconds = batches.reduce((sum, ms) => sum + ms, 0) / 1000;
    const p99 = percentile(batches, 99);
    measured.set(size, { backfill: size / backfillSeconds, update: size / updateSeconds, p99 });
    backfillRows.push(
      {
        subject: `single UPDATE (${size.toLocaleString('en-US')} rows)`,
        seconds: updateSeconds,
        'rows/s': Math.round(size / updateSeconds),
        batches: 1,
        'p50 batch ms': updateSeconds * 1000,
        'p99 batch ms': updateSeconds * 1000,
        'vs UPDATE': 1,
      },
      {
        subject: `gantry backfill (${size.toLocaleString('en-US')} rows)`,
        seconds: backfillSeconds,
        'rows/s': Math.round(size / backfillSeconds),
        batches: batches.length,
        'p50 batch ms': median(batches),
        'p99 batch ms': p99,
        'vs UPDATE': size / backfillSeconds / (size / updateSeconds),
      },
    );
    process.stdout.write(
      `  ${size} rows: UPDATE ${updateSeconds.toFixed(2)} s, backfill ${backfillSeconds.toFixed(2)} s (batches alone ${batchSeconds.toFixed(2)} s, ${batches.length} batches)\n`,
    );
    await pool.end();
    await admin.query(`DROP DATABASE backfill_${size}`);
  }

  // ------------------------------------------------------------------------------------- apply 200 migrations
  const files: Record<string, string> = {};
  const peerFiles: Record<string, string> = {};
  for (let index = 1; index <= MIGRATIONS; index += 1) {
    const sql = `-- gantry:phase expand\nCREATE TABLE table_${index} (id bigint PRIMARY KEY, value text);\nCOMMENT ON TABLE table_${index} IS 'migration ${index}';\n`;
    files[`V${index}__table_${index}.sql`] = sql;
    peerFiles[`${String(index).padStart(4, '0')}_table_${index}.sql`] = `-- Up Migration\n${sql}`;
  }
  const gantryDirectory = folder(files);
  const peerDirectory = folder(peerFiles);
  cleanup.push(gantryDirectory, peerDirectory);
  const gantryTimes: number[] = [];
  const peerTimes: number[] = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    const gantryUrl = await database(`apply_gantry_${round}`);
    const peerUrl = await database(`apply_peer_${round}`);
    const runGantry = async (): Promise<void> => {
      const started = performance.now();
      const report = await createMigrator({ directory: gantryDirectory, connectionString: gantryUrl }).migrate();
      gantryTimes.push(performance.now() - started);
      if (report.applied.length !== MIGRATIONS) throw new Error('gantry applied too few');
    };
    const runPeer = async (): Promise<void> => {
      const started = performance.now();
      const applied = await nodePgMigrate({
        databaseUrl: peerUrl,
        dir: peerDirectory,
        direction: 'up',
        migrationsTable: 'pgmigrations',
        count: Infinity,
        log: () => undefined,
        logger: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
      });
      peerTimes.push(performance.now() - started);
      if (applied.length !== MIGRATIONS) throw new Error('node-pg-migrate applied too few');
    };
    // Alternate who goes first so neither always meets a warmer cache.
    if (round % 2 === 0) {
      await runGantry();
      await runPeer();
    } else {
      await runPeer();
      await runGantry();
    }
  }
  const gantryMs = median(gantryTimes);
  const peerMs = median(peerTimes);

  const small = measured.get(100_000)!;
  const large = measured.get(1_000_000)!;
  const flatness = large.backfill / small.backfill;
  publishReport({
    name: 'migrations',
    description: 'backfill vs one UPDATE, and applying 200 small migrations vs node-pg-migrate',
    environment: {
      postgres: 'harness (fsync off, synchronous_commit off, same server for both sides)',
      node: process.version,
      rounds: ROUNDS,
    },
    tables: [
      {
        title: 'Backfill (keyset batches, adaptive size, cursor committed per batch; end to end incl. verify)',
        rows: backfillRows,
      },
      {
        title: `Apply ${MIGRATIONS} small migrations (median of ${ROUNDS}, fresh database each)`,
        rows: [
          {
            subject: 'gantry-migrate (one transaction each, linted, checksummed)',
            ms: gantryMs,
            'ms/migration': gantryMs / MIGRATIONS,
            'vs node-pg-migrate': gantryMs / peerMs,
          },
          {
            subject: 'node-pg-migrate 9 (single transaction)',
            ms: peerMs,
            'ms/migration': peerMs / MIGRATIONS,
            'vs node-pg-migrate': 1,
          },
        ],
      },
    ],
    targets: [
      {
        target: 'backfill ≥ 50 000 rows/s (1 M rows)',
        measured: `${Math.round(large.backfill).toLocaleString('en-US')} rows/s`,
        met: large.backfill >= 50_000,
      },
      {
        target: 'backfill ≥ 0.5× single UPDATE (1 M rows)',
        measured: `${(large.backfill / large.update).toFixed(2)}×`,
        met: large.backfill / large.update >= 0.5,
      },
      { target: 'p99 batch ≤ 100 ms (1 M rows)', measured: `${large.p99.toFixed(1)} ms`, met: large.p99 <= 100 },
      {
        target: 'flat throughput 100 k → 1 M (≥ 0.8×)',
        measured: `${flatness.toFixed(2)}× (${Math.round(small.backfill).toLocaleString('en-US')} → ${Math.round(large.backfill).toLocaleString('en-US')} rows/s)`,
        met: flatness >= 0.8,
      },
      {
        target: `apply ${MIGRATIONS} migrations ≤ 1.0× node-pg-migrate`,
        measured: `${(gantryMs / peerMs).toFixed(2)}×`,
        met: gantryMs <= peerMs,
      },
    ],
  });
} finally {
  await admin.end().catch(() => undefined);
  await server.destroy();
  for (const directory of cleanup) rmSync(directory, { recursive: true, force: true });
}
