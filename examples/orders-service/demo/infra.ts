// What the pods run against: PostgreSQL (always), and Unleash, Kafka and Vault when available. The demo starts
// its own servers through the test harness; tests hand in the shared ones. Whatever is not available is skipped
// with a one-line notice, and the service falls back (flags offline from the bootstrap file, a plain pool, no
// order events).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { MigrationStage } from '@gantry/flags';
import { createMigrator, type Migrator } from '@gantry/migrations';
import { createVaultDevServer, postgresRoleHooks, type VaultDevServer } from '@gantry/secrets/testing';
import {
  createDatabase,
  kafkaLibraryDirectory,
  postgresUrl,
  startKafka,
  startPostgres,
  startUnleash,
  unleashAdmin,
  type KafkaInfo,
  type PostgresInfo,
  type UnleashInfo,
} from '@gantry/test-harness';
import pg from 'pg';
import { CUSTOMER_KEY_MIGRATION } from '../src/config.ts';

const MIGRATIONS = join(import.meta.dirname, '..', 'migrations');

/** Where a server comes from: started here (`'start'`), handed in, or not used (`false`). */
export type Source<T> = 'start' | T | false;

/** Options of {@link startInfrastructure}. */
export interface InfraOptions {
  readonly runDirectory: string;
  /** @default 'start' */
  readonly postgres?: Source<PostgresInfo>;
  /** @default 'start' */
  readonly unleash?: Source<UnleashInfo>;
  /** @default 'start' (when Java and the cached broker jars are present) */
  readonly kafka?: Source<KafkaInfo>;
  /** Vault dev server from @gantry/secrets/testing. @default true */
  readonly vault?: boolean;
  /** Lease length of the database credentials Vault hands out (they rotate at about half of it). @default 60 */
  readonly leaseSeconds?: number;
  /** Progress lines. */
  readonly log?: (line: string) => void;
}

/** The servers of one run. */
export interface Infrastructure {
  readonly postgres: PostgresInfo;
  /** URL of the demo database for the migrator (a superuser). */
  readonly adminUrl: string;
  /** URL the apps get: the static app role, or (with Vault) no credentials at all. */
  readonly databaseUrl: string;
  readonly databaseName: string;
  readonly unleash: UnleashInfo | undefined;
  readonly kafka: KafkaInfo | undefined;
  readonly vault:
    | {
        readonly address: string;
        readonly roleId: string;
        readonly secretId: string;
        readonly role: string;
        readonly server: VaultDevServer;
      }
    | undefined;
  /** One line per server that was skipped, and why. */
  readonly notices: readonly string[];
  /** Seconds each started server took. */
  readonly startSeconds: Readonly<Record<string, number>>;
  /** A migrator on the demo database and the example's migrations folder. */
  migrator(): Migrator;
  /** Sets the stage of the migration flag (the variant of `dual-write-customer-key`); no-op without Unleash. */
  setMigrationStage(stage: MigrationStage): Promise<void>;
  /** Stops what was started here. */
  stop(): Promise<void>;
}

/** Whether this machine can run the Kafka broker: Java on the PATH and the jars fetched by `./gantry test`. */
export function kafkaAvailability(): { available: boolean; reason: string } {
  try {
    execFileSync('java', ['-version'], { stdio: 'ignore', timeout: 10_000 });
  } catch {
    return { available: false, reason: 'no Java on the PATH' };
  }
  let libs: string;
  try {
    libs = kafkaLibraryDirectory();
  } catch (error) {
    return { available: false, reason: (error as Error).message };
  }
  if (!existsSync(join(libs, '.complete'))) {
    return { available: false, reason: 'the broker jars are not cached yet (./gantry test fetches them once)' };
  }
  return { available: true, reason: '' };
}

const seconds = (since: number): number => Math.round((performance.now() - since) / 100) / 10;

/**
 * Starts (or takes) the servers, creates the demo database, its app role and the migration toggle.
 * @throws when PostgreSQL cannot be had (everything else is optional).
 */
export async function startInfrastructure(options: InfraOptions): Promise<Infrastructure> {
  const log = options.log ?? (() => undefined);
  const notices: string[] = [];
  const startSeconds: Record<string, number> = {};
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async (): Promise<void> => {
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined);
  };
  try {
    const postgresSource = options.postgres ?? 'start';
    if (postgresSource === false) throw new Error('PostgreSQL is required');
    const postgresPromise = (async (): Promise<PostgresInfo> => {
      if (postgresSource !== 'start') return postgresSource;
      const begin = performance.now();
      const server = await startPostgres({ runDirectory: options.runDirectory, name: 'postgres' });
      stops.push(() => server.destroy());
      startSeconds['postgres'] = seconds(begin);
      return server;
    })();

    const kafkaSource = options.kafka ?? 'start';
    const kafkaPromise = (async (): Promise<KafkaInfo | undefined> => {
      if (kafkaSource === false) {
        notices.push('Kafka: off (not requested): no order events, agents send no CloudEvents');
        return undefined;
      }
      if (kafkaSource !== 'start') return kafkaSource;
      const availability = kafkaAvailability();
      if (!availability.available) {
        notices.push(`Kafka: skipped, ${availability.reason}: no order events, agents send no CloudEvents`);
        return undefined;
      }
      const begin = performance.now();
      try {
        const server = await startKafka({ runDirectory: options.runDirectory, name: 'kafka' });
        stops.push(() => server.destroy());
        startSeconds['kafka'] = seconds(begin);
        return server;
      } catch (error) {
        notices.push(`Kafka: skipped, the broker did not start (${(error as Error).message.split('\n')[0]})`);
        return undefined;
      }
    })();

    const postgres = await postgresPromise;
    const unleashSource = options.unleash ?? 'start';
    const unleashPromise = (async (): Promise<UnleashInfo | undefined> => {
      if (unleashSource === false) {
        notices.push('Unleash: off (not requested): flags run offline from flags-bootstrap.json');
        return undefined;
      }
      if (unleashSource !== 'start') return unleashSource;
      const begin = performance.now();
      try {
        const server = await startUnleash({ runDirectory: options.runDirectory, postgres, name: 'unleash' });
        stops.push(() => server.stop());
        startSeconds['unleash'] = seconds(begin);
        return server;
      } catch (error) {
        notices.push(
          `Unleash: skipped, it did not start (${(error as Error).message.split('\n')[0]}): flags run offline from flags-bootstrap.json`,
        );
        return undefined;
      }
    })();

    const database = await createDatabase(postgres, 'orders_demo');
    const adminUrl = database.url;
    const migrator = (): Migrator =>
      createMigrator({ directory: MIGRATIONS, connectionString: adminUrl, heartbeatTtlMs: 15_000, actor: 'demo' });
    // The state tables exist before any app connects: an app role must never own (and so pin) one of them.
    await migrator().migrate({ target: '1' });
    // One group role holds the app's privileges; the login roles (the static one, and every role Vault creates)
    // are members. Granting table privileges to each new role instead would make concurrent credential requests
    // race on the tables' ACLs ("tuple concurrently updated"). Roles are global to the server, so the names
    // follow the database's.
    const group = `${database.name}_rw`;
    const staticRole = `${database.name}_app`;
    const password = `app-${randomBytes(12).toString('hex')}`;
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    try {
      for (const statement of [
        `CREATE ROLE ${group} NOLOGIN`,
        `GRANT SELECT, INSERT, UPDATE ON orders TO ${group}`,
        `GRANT USAGE ON SCHEMA gantry_migrations TO ${group}`,
        `GRANT SELECT ON gantry_migrations.history, gantry_migrations.backfill TO ${group}`,
        `GRANT SELECT, INSERT, UPDATE, DELETE ON gantry_migrations.app_versions TO ${group}`,
        `CREATE ROLE ${staticRole} WITH LOGIN PASSWORD '${password}' IN ROLE ${group}`,
      ]) {
        await admin.query(statement);
      }
    } finally {
      await admin.end();
    }

    let vault: Infrastructure['vault'];
    if (options.vault !== false) {
      const hooks = postgresRoleHooks({ ...postgres, database: database.name });
      const server = await createVaultDevServer({ database: hooks });
      stops.push(async () => {
        await server.close();
        await hooks.close();
      });
      const lease = options.leaseSeconds ?? 60;
      server.addDatabaseRole('orders', {
        defaultTtlSeconds: lease,
        maxTtlSeconds: lease * 10,
        creationStatements: [
          `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}' IN ROLE ${group};`,
        ],
      });
      const { roleId, secretId } = server.addAppRole('orders', { tokenTtlSeconds: 3_600 });
      vault = { address: server.address, roleId, secretId, role: 'orders', server };
    } else {
      notices.push('Vault: off (not requested): the apps use a plain pool with a static role');
    }

    const [kafka, unleash] = await Promise.all([kafkaPromise, unleashPromise]);
    let setMigrationStage: Infrastructure['setMigrationStage'] = async () => undefined;
    if (unleash !== undefined) {
      const adminApi = unleashAdmin(unleash);
      const strategy = (stage: MigrationStage) => ({
        name: 'flexibleRollout' as const,
        variants: [{ name: stage, weight: 1000 }],
      });
      let strategyId: string;
      try {
        await adminApi.createToggle(CUSTOMER_KEY_MIGRATION, { description: 'customer_id → customer_key' });
        strategyId = await adminApi.addStrategy(CUSTOMER_KEY_MIGRATION, strategy('off'));
      } catch {
        // The toggle exists already (a shared Unleash): take its first strategy.
        const feature = (await adminApi.request(
          'GET',
          `projects/default/features/${CUSTOMER_KEY_MIGRATION}/environments/${unleash.environment}/strategies`,
        )) as { id: string }[];
        strategyId = feature[0]?.id ?? (await adminApi.addStrategy(CUSTOMER_KEY_MIGRATION, strategy('off')));
      }
      await adminApi.enable(CUSTOMER_KEY_MIGRATION);
      setMigrationStage = async (stage) => {
        await adminApi.updateStrategy(CUSTOMER_KEY_MIGRATION, strategyId, strategy(stage));
      };
    }
    log(
      `servers ready: ${Object.entries(startSeconds)
        .map(([name, value]) => `${name} ${value} s`)
        .join(', ')}`,
    );
    return {
      postgres,
      adminUrl,
      databaseName: database.name,
      databaseUrl:
        vault === undefined
          ? postgresUrl({ ...postgres, user: staticRole, password }, database.name)
          : `postgres://${postgres.host}:${postgres.port}/${encodeURIComponent(database.name)}`,
      unleash,
      kafka,
      vault,
      notices,
      startSeconds,
      migrator,
      setMigrationStage,
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
