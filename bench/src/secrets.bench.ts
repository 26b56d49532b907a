// @gantry/secrets: queries through the rotating pool with a credential rotation every 2 s, against a plain
// pg.Pool with static credentials — same load, same PostgreSQL, same process run, phases interleaved so drift
// hits both alike. Targets (issue 7): throughput ≥ 0.95×, p99 ≤ 2×, zero failed queries.
//
// The rotating pool runs twice, with the two usual ways of granting a dynamic user its privileges (per-table
// grants, or membership of a group role). A fourth subject is the floor of any credential rotation: a pg.Pool with
// the static credentials replaced by a fresh one every 2 s (warmed the same way, the old one ended when idle) —
// no Vault, no roles, only new connections. New credentials mean new PostgreSQL backends, whose cost is the
// host's, not the library's; rotating / recycled is what rotation through Vault adds on top.
import { createRunDirectory, createDatabase, startPostgres } from '@gantry/test-harness';
import { createRotatingPool, createVault } from '@gantry/secrets';
import { DEFAULT_CREATION_STATEMENTS, createVaultDevServer, postgresRoleHooks } from '@gantry/secrets/testing';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import pg from 'pg';
import { publishReport, quantile } from './report.ts';

const WORKERS = 32;
const POOL_MAX = 10;
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 4);
const PHASE_MS = 10_000;
const WARMUP_MS = 3_000;
const ROTATE_EVERY_MS = 2_000;
const SQL = 'SELECT id, label FROM items WHERE id = $1';

/** The cost floor of rotation: the same static credentials, but a new warmed pool every ROTATE_EVERY_MS. */
class RecycledPool {
  #current: pg.Pool;
  readonly #old = new Set<Promise<void>>();
  readonly #config: pg.PoolConfig;
  constructor(config: pg.PoolConfig) {
    this.#config = config;
    this.#current = this.#create();
  }
  #create(): pg.Pool {
    const pool = new pg.Pool(this.#config);
    pool.on('error', () => undefined);
    return pool;
  }
  query(text: string, values: unknown[]): Promise<unknown> {
    return this.#current.query(text, values);
  }
  async recycle(): Promise<void> {
    const next = this.#create();
    const wanted = Math.max(1, this.#current.totalCount);
    const held: pg.PoolClient[] = [];
    let opening = 0;
    const lane = async (): Promise<void> => {
      while (opening < wanted) {
        opening += 1;
        held.push(await next.connect());
      }
    };
    await Promise.all([lane(), lane()]); // two at a time, like the rotating pool's default warmConcurrency
    for (const client of held) client.release();
    const old = this.#current;
    this.#current = next;
    const ended = (async () => {
      while (old.waitingCount > 0 || old.totalCount !== old.idleCount) await new Promise((r) => setTimeout(r, 10));
      await old.end();
    })();
    this.#old.add(ended);
    void ended.finally(() => this.#old.delete(ended));
  }
  async end(): Promise<void> {
    await Promise.all(this.#old);
    await this.#current.end();
  }
}

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

/** CPU time the whole machine has spent so far (all processes, from /proc/stat), in ms. */
function machineBusyMs(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
  return ((user + nice + system + irq + softirq + steal) * 1000) / 100; // USER_HZ is 100 on Linux
}

/** What one connection's whole life costs the machine, measured one at a time on the otherwise idle host. */
async function measureConnectionCost(config: pg.ClientConfig, count: number): Promise<{ systemMs: number }> {
  const busy = machineBusyMs();
  for (let i = 0; i < count; i += 1) {
    const client = new pg.Client(config);
    await client.connect();
    await client.query(SQL, [i + 1]);
    await client.end();
  }
  return { systemMs: (machineBusyMs() - busy) / count };
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
      GRANT SELECT ON items TO bench_static;
      CREATE ROLE bench_readers NOLOGIN;
      GRANT SELECT ON items TO bench_readers;`);
    await admin.end();
    // No idle timeout: a pool waiting for its next phase keeps its connections, so no phase starts by reconnecting.
    const settings = { host: postgres.host, port: postgres.port, database, max: POOL_MAX, idleTimeoutMillis: 0 };
    const cpus = availableParallelism();
    const connectionCost = await measureConnectionCost(
      { ...settings, user: 'bench_static', password: 'bench-static-pw' },
      40,
    );

    const hooks = postgresRoleHooks(adminConfig);
    cleanups.unshift(() => hooks.close());
    const devVault = await createVaultDevServer({ database: hooks });
    cleanups.unshift(() => devVault.close());
    // Two ways to give a dynamic user its privileges. Per-table grants (Vault's own example statements, and its
    // default revocation: REVOKE … ON ALL TABLES, DROP ROLE) rewrite the tables' ACLs at every rotation, which
    // makes every open backend rebuild its cached table entries and plans. Membership of a group role that holds
    // the grants (`IN ROLE`, revoked by DROP ROLE alone) leaves the tables untouched.
    devVault.addDatabaseRole('app-grants', {
      defaultTtlSeconds: 3_600,
      maxTtlSeconds: 7_200,
      creationStatements: [...DEFAULT_CREATION_STATEMENTS, 'GRANT SELECT ON items TO "{{name}}";'],
    });
    devVault.addDatabaseRole('app-group', {
      defaultTtlSeconds: 3_600,
      maxTtlSeconds: 7_200,
      creationStatements: [
        `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}' IN ROLE bench_readers;`,
      ],
      revocationStatements: ['DROP ROLE IF EXISTS "{{name}}";'],
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
    const recycled = new RecycledPool({ ...settings, user: 'bench_static', password: 'bench-static-pw' });
    cleanups.unshift(() => recycled.end());
    const rotatingGrants = createRotatingPool({ vault, role: 'app-grants', pool: settings, registry: null });
    cleanups.unshift(() => rotatingGrants.close());
    const rotatingGroup = createRotatingPool({ vault, role: 'app-group', pool: settings, registry: null });
    cleanups.unshift(() => rotatingGroup.close());
    await Promise.all([rotatingGrants.start(), rotatingGroup.start()]);

    interface Subject {
      readonly name: string;
      readonly pool: Queryable;
      readonly renew?: () => Promise<void>;
      readonly phases: Phase[];
      renewals: number;
      failures: number;
    }
    const subject = (name: string, pool: Queryable, renew?: () => Promise<void>): Subject => ({
      name,
      pool,
      ...(renew === undefined ? {} : { renew }),
      phases: [],
      renewals: 0,
      failures: 0,
    });
    const subjects = [
      subject('pg.Pool (static credentials)', plain),
      subject('pg.Pool recycled every 2 s (floor)', recycled, () => recycled.recycle()),
      subject('rotating pool, per-table grants', rotatingGrants, () => rotatingGrants.rotate()),
      subject('rotating pool, group role', rotatingGroup, () => rotatingGroup.rotate()),
    ] as const;
    for (const { pool } of subjects) await drive(pool, WARMUP_MS, false);
    const run = async (target: Subject): Promise<void> => {
      const renew = target.renew;
      const timer =
        renew === undefined
          ? undefined
          : setInterval(() => {
              renew().then(
                () => void (target.renewals += 1),
                () => void (target.failures += 1),
              );
            }, ROTATE_EVERY_MS);
      target.phases.push(await drive(target.pool, PHASE_MS, true));
      clearInterval(timer);
      await new Promise((resolve) => setTimeout(resolve, 500)); // let the last rotation and drain finish
    };
    // Rotate the order every round so that order effects (caches, neighbours on the CPU) hit all alike.
    for (let round = 0; round < ROUNDS; round += 1) {
      process.stdout.write(`  round ${round + 1}/${ROUNDS}:`);
      for (let k = 0; k < subjects.length; k += 1) {
        const target = subjects[(round + k) % subjects.length]!;
        await run(target);
        const phase = target.phases.at(-1)!;
        process.stdout.write(` ${target.name.split(' ').at(-1)} ${Math.round((phase.ok / phase.elapsedMs) * 1000)}/s`);
      }
      process.stdout.write('\n');
    }

    const [plainSubject, floorSubject, grantsSubject, groupSubject] = subjects;
    const base = merge(plainSubject.phases);
    const floor = merge(floorSubject.phases);
    const grants = merge(grantsSubject.phases);
    const group = merge(groupSubject.phases);
    const row = (target: Subject, phase: Phase) => ({
      subject: target.name,
      'queries/s': (phase.ok / phase.elapsedMs) * 1_000,
      'p50 ms': quantile(phase.latencies, 0.5),
      'p99 ms': quantile(phase.latencies, 0.99),
      'p99.9 ms': quantile(phase.latencies, 0.999),
      'max ms': phase.latencies.at(-1) ?? 0,
      queries: phase.ok,
      failed: phase.failed,
      'new pools': target.renewals,
    });
    const ratioRow = (name: string, a: Phase, b: Phase) => ({
      subject: name,
      'queries/s': a.ok / a.elapsedMs / (b.ok / b.elapsedMs),
      'p50 ms': quantile(a.latencies, 0.5) / quantile(b.latencies, 0.5),
      'p99 ms': quantile(a.latencies, 0.99) / quantile(b.latencies, 0.99),
      'p99.9 ms': quantile(a.latencies, 0.999) / quantile(b.latencies, 0.999),
      'max ms': (a.latencies.at(-1) ?? 0) / (b.latencies.at(-1) ?? 1),
      queries: '',
      failed: '',
      'new pools': '',
    });
    const throughput = (a: Phase, b: Phase): number => a.ok / a.elapsedMs / (b.ok / b.elapsedMs);
    const p99 = (a: Phase, b: Phase): number => quantile(a.latencies, 0.99) / quantile(b.latencies, 0.99);
    const failed = subjects.reduce((sum, s) => sum + s.phases.reduce((n, phase) => n + phase.failed, 0), 0);
    const rotations = grantsSubject.renewals + groupSubject.renewals;
    const rotationFailures = grantsSubject.failures + groupSubject.failures + floorSubject.failures;
    const busyShare = ((connectionCost.systemMs * POOL_MAX) / ROTATE_EVERY_MS / cpus) * 100;
    publishReport({
      name: 'secrets',
      description: `${WORKERS} workers, pg pool max ${POOL_MAX}, ${ROUNDS} interleaved rounds of ${PHASE_MS / 1000} s per subject; the rotating pools rotate every ${ROTATE_EVERY_MS / 1000} s`,
      environment: {
        node: process.version,
        cpus,
        postgres: 'embedded (harness)',
        'one connection (start, SCRAM, first query, exit)': `${connectionCost.systemMs.toFixed(1)} ms CPU`,
      },
      tables: [
        {
          title: `Point queries (${SQL})`,
          rows: [
            ...subjects.map((target, index) => row(target, [base, floor, grants, group][index]!)),
            ratioRow('ratio recycled / plain (floor)', floor, base),
            ratioRow('ratio per-table grants / plain', grants, base),
            ratioRow('ratio group role / plain', group, base),
            ratioRow('ratio per-table grants / recycled', grants, floor),
            ratioRow('ratio group role / recycled', group, floor),
          ],
        },
      ],
      notes: [
        `Every rotation opens ${POOL_MAX} new PostgreSQL connections and ends ${POOL_MAX}. One connection's life costs`,
        `${connectionCost.systemMs.toFixed(1)} ms of CPU on this host, so ${POOL_MAX} of them every ${ROTATE_EVERY_MS / 1000} s take ≈ ${busyShare.toFixed(1)} % of the machine whoever`,
        `manages the credentials: the recycled pool is that floor. "/ recycled" is what rotation through Vault adds.`,
      ],
      targets: [
        {
          target: 'throughput ≥ 0.95× plain pg.Pool (per-table grants)',
          measured: `${throughput(grants, base).toFixed(3)}× (floor ${throughput(floor, base).toFixed(3)}×)`,
          met: throughput(grants, base) >= 0.95,
        },
        {
          target: 'throughput ≥ 0.95× plain pg.Pool (group role)',
          measured: `${throughput(group, base).toFixed(3)}× (floor ${throughput(floor, base).toFixed(3)}×)`,
          met: throughput(group, base) >= 0.95,
        },
        {
          target: 'rotation through Vault adds ≤ 5 % to the reconnection floor (not an issue target: context)',
          measured: `${throughput(grants, floor).toFixed(3)}× per-table grants, ${throughput(group, floor).toFixed(3)}× group role`,
          met: throughput(grants, floor) >= 0.95 && throughput(group, floor) >= 0.95,
        },
        {
          target: 'p99 ≤ 2× plain pg.Pool',
          measured: `${p99(grants, base).toFixed(2)}× per-table grants, ${p99(group, base).toFixed(2)}× group role`,
          met: p99(grants, base) <= 2 && p99(group, base) <= 2,
        },
        {
          target: 'zero failed queries',
          measured: `${failed} failed over ${rotations} rotations (${rotationFailures} rotation failures)`,
          met: failed === 0 && rotationFailures === 0,
        },
      ],
    });
    if (failed > 0) {
      for (const target of subjects)
        for (const [message, count] of merge(target.phases).errors)
          process.stdout.write(`  ${target.name}: ${count}× ${message}\n`);
    }
  } finally {
    for (const cleanup of cleanups) await cleanup().catch(() => undefined);
  }
}

await main();
