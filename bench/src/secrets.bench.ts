// @gantry/secrets: queries through the rotating pool with a credential rotation every 2 s, against a plain
// pg.Pool with static credentials — same load, same PostgreSQL, same process run, phases interleaved so drift
// hits both alike. Targets (issue 7): throughput ≥ 0.95×, p99 ≤ 2×, zero failed queries.
import { createRunDirectory, createDatabase, startPostgres } from '@gantry/test-harness';
import { createRotatingPool, createVault } from '@gantry/secrets';
import { DEFAULT_CREATION_STATEMENTS, createVaultDevServer, postgresRoleHooks } from '@gantry/secrets/testing';
import pg from 'pg';
import { publishReport, quantile } from './report.ts';

const WORKERS = 32;
const POOL_MAX = 10;
const ROUNDS = 4;
const PHASE_MS = 10_000;
const WARMUP_MS = 3_000;
const ROTATE_EVERY_MS = 2_000;
const SQL = 'SELECT id, label FROM items WHERE id = $1';

interface Phase {
  ok: number;
  failed: number;
  latencies: number[];
  elapsedMs: number;
  errors: Map<string, number>;
}

type Queryable = { query(text: string, values: unknown[]): Promise<unknown> };

async function drive(pool: Queryable, durationMs: number, record: boolean): Promise<Phase> {
  const phase: Phase = { ok: 0, failed: 0, latencies: [], elapsedMs: 0, errors: new Map() };
  const started = performance.now();
  const deadline = started + durationMs;
  await Promise.all(
    Array.from({ length: WORKERS }, async (_, worker) => {
      let id = worker;
      while (performance.now() < deadline) {
        id = (id % 1_000) + 1;
        const begin = performance.now();
        try {
          await pool.query(SQL, [id]);
          if (record) phase.latencies.push(performance.now() - begin);
          phase.ok += 1;
        } catch (error) {
          phase.failed += 1;
          const key = error instanceof Error ? error.message : String(error);
          phase.errors.set(key, (phase.errors.get(key) ?? 0) + 1);
        }
      }
    }),
  );
  phase.elapsedMs = performance.now() - started;
  return phase;
}

function merge(phases: readonly Phase[]): Phase {
  const all: Phase = { ok: 0, failed: 0, latencies: [], elapsedMs: 0, errors: new Map() };
  for (const phase of phases) {
    all.ok += phase.ok;
    all.failed += phase.failed;
    all.elapsedMs += phase.elapsedMs;
    for (const latency of phase.latencies) all.latencies.push(latency);
    for (const [key, count] of phase.errors) all.errors.set(key, (all.errors.get(key) ?? 0) + count);
  }
  all.latencies.sort((a, b) => a - b);
  return all;
}

async function main(): Promise<void> {
  const postgres = await startPostgres({ runDirectory: createRunDirectory('bench-secrets') });
  const cleanups: (() => Promise<unknown>)[] = [() => postgres.destroy()];
  try {
    const { name: database } = await createDatabase(postgres, 'bench_secrets');
    const adminConfig = {
      host: postgres.host,
      port: postgres.port,
      user: postgres.user,
      password: postgres.password,
      database,
    };
    const admin = new pg.Client(adminConfig);
    await admin.connect();
    await admin.query(`CREATE TABLE items (id int PRIMARY KEY, label text);
      INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 1000) g;
      CREATE ROLE bench_static LOGIN PASSWORD 'bench-static-pw';
      GRANT SELECT ON items TO bench_static;`);
    await admin.end();
    const settings = { host: postgres.host, port: postgres.port, database, max: POOL_MAX };

    const hooks = postgresRoleHooks(adminConfig);
    cleanups.unshift(() => hooks.close());
    const devVault = await createVaultDevServer({ database: hooks });
    cleanups.unshift(() => devVault.close());
    devVault.addDatabaseRole('app', {
      defaultTtlSeconds: 3_600,
      maxTtlSeconds: 7_200,
      creationStatements: [...DEFAULT_CREATION_STATEMENTS, 'GRANT SELECT ON items TO "{{name}}";'],
    });
    const { roleId, secretId } = devVault.addAppRole('bench', { tokenTtlSeconds: 3_600 });
    const vault = createVault({
      endpoint: devVault.address,
      auth: { method: 'approle', roleId, secretId },
      registry: null,
    });
    cleanups.unshift(() => vault.close());

    const plain = new pg.Pool({ ...settings, user: 'bench_static', password: 'bench-static-pw' });
    plain.on('error', () => undefined);
    cleanups.unshift(() => plain.end());
    const rotating = createRotatingPool({ vault, role: 'app', pool: settings, registry: null });
    cleanups.unshift(() => rotating.close());
    await rotating.start();

    await drive(plain, WARMUP_MS, false);
    await drive(rotating, WARMUP_MS, false);

    const plainPhases: Phase[] = [];
    const rotatingPhases: Phase[] = [];
    let rotations = 0;
    let rotationFailures = 0;
    const runRotating = async (): Promise<void> => {
      const timer = setInterval(() => {
        rotating.rotate().then(
          () => (rotations += 1),
          () => (rotationFailures += 1),
        );
      }, ROTATE_EVERY_MS);
      rotatingPhases.push(await drive(rotating, PHASE_MS, true));
      clearInterval(timer);
    };
    // Alternate which subject goes first so that order effects (caches, neighbours on the CPU) hit both alike.
    for (let round = 0; round < ROUNDS; round += 1) {
      if (round % 2 === 0) {
        plainPhases.push(await drive(plain, PHASE_MS, true));
        await runRotating();
      } else {
        await runRotating();
        plainPhases.push(await drive(plain, PHASE_MS, true));
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 500));

    const base = merge(plainPhases);
    const mine = merge(rotatingPhases);
    const row = (subject: string, phase: Phase, extra: Record<string, string | number>) => ({
      subject,
      'queries/s': (phase.ok / phase.elapsedMs) * 1_000,
      'p50 ms': quantile(phase.latencies, 0.5),
      'p99 ms': quantile(phase.latencies, 0.99),
      'p99.9 ms': quantile(phase.latencies, 0.999),
      'max ms': phase.latencies.at(-1) ?? 0,
      queries: phase.ok,
      failed: phase.failed,
      ...extra,
    });
    const throughputRatio = mine.ok / mine.elapsedMs / (base.ok / base.elapsedMs);
    const p99Ratio = quantile(mine.latencies, 0.99) / quantile(base.latencies, 0.99);
    const failures = mine.failed + base.failed;
    publishReport({
      name: 'secrets',
      description: `${WORKERS} workers, pg pool max ${POOL_MAX}, ${ROUNDS} interleaved rounds of ${PHASE_MS / 1000} s per subject; rotating pool rotates every ${ROTATE_EVERY_MS / 1000} s`,
      environment: {
        node: process.version,
        cpus: (await import('node:os')).availableParallelism(),
        postgres: 'embedded (harness)',
      },
      tables: [
        {
          title: `Point queries (${SQL})`,
          rows: [
            row('pg.Pool (static credentials)', base, { rotations: 0 }),
            row('@gantry/secrets rotating pool', mine, { rotations }),
            {
              subject: 'ratio rotating / plain',
              'queries/s': throughputRatio,
              'p50 ms': quantile(mine.latencies, 0.5) / quantile(base.latencies, 0.5),
              'p99 ms': p99Ratio,
              'p99.9 ms': quantile(mine.latencies, 0.999) / quantile(base.latencies, 0.999),
              'max ms': (mine.latencies.at(-1) ?? 0) / (base.latencies.at(-1) ?? 1),
              queries: '',
              failed: '',
              rotations: '',
            },
          ],
        },
      ],
      targets: [
        {
          target: 'throughput ≥ 0.95× plain pg.Pool',
          measured: `${throughputRatio.toFixed(3)}×`,
          met: throughputRatio >= 0.95,
        },
        { target: 'p99 ≤ 2× plain pg.Pool', measured: `${p99Ratio.toFixed(2)}×`, met: p99Ratio <= 2 },
        {
          target: 'zero failed queries',
          measured: `${failures} failed over ${rotations} rotations (${rotationFailures} rotation failures)`,
          met: failures === 0 && rotationFailures === 0,
        },
      ],
    });
    if (failures > 0) {
      for (const [message, count] of [...base.errors, ...mine.errors]) process.stdout.write(`  ${count}× ${message}\n`);
    }
  } finally {
    for (const cleanup of cleanups) await cleanup().catch(() => undefined);
  }
}

await main();
