// Shared setup for the integration tests: a fresh database on the harness's PostgreSQL, the dev server creating
// real roles in it, a capturing logger and a load generator that counts every failed query.
import { createDatabase } from '@gantry/test-harness';
import { server } from '@gantry/test-harness/vitest';
import pg from 'pg';
import { Registry } from 'prom-client';
import type { Logger } from '../src/index.ts';
import {
  DEFAULT_CREATION_STATEMENTS,
  createVaultDevServer,
  postgresRoleHooks,
  type DevDatabaseRole,
  type PostgresRoleHooks,
  type VaultDevServer,
  type VaultDevServerOptions,
} from '../src/testing.ts';

export interface LogLine {
  readonly level: string;
  readonly fields: Readonly<Record<string, unknown>>;
  readonly msg: string | undefined;
}

/** A pino-shaped logger that keeps every line (bindings included) for assertions. */
export function captureLogger(
  lines: LogLine[] = [],
  bindings: Record<string, unknown> = {},
): Logger & { lines: LogLine[] } {
  const at =
    (level: string) =>
    (obj: Readonly<Record<string, unknown>> | string, msg?: string): void => {
      if (typeof obj === 'string') lines.push({ level, fields: { ...bindings }, msg: obj });
      else lines.push({ level, fields: { ...bindings, ...obj }, msg });
    };
  return {
    lines,
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (more) => captureLogger(lines, { ...bindings, ...more }),
  };
}

export const events = (lines: readonly LogLine[], name: string): LogLine[] =>
  lines.filter((line) => line.fields['event'] === name);

export interface TestBed {
  readonly vault: VaultDevServer;
  readonly hooks: PostgresRoleHooks;
  readonly database: string;
  readonly pgSettings: { host: string; port: number; database: string };
  readonly admin: pg.Pool;
  readonly registry: Registry;
  close(): Promise<void>;
}

/**
 * A database with an `items` table, the dev server with hooks that create real roles in it, and role `app`
 * granted SELECT on `items`.
 */
export async function createTestBed(
  role: DevDatabaseRole = {},
  options: Omit<VaultDevServerOptions, 'database'> = {},
): Promise<TestBed> {
  const info = server('postgres');
  const { name } = await createDatabase(info, 'secrets');
  const adminConfig = { host: info.host, port: info.port, user: info.user, password: info.password, database: name };
  const admin = new pg.Pool({ ...adminConfig, max: 2 });
  admin.on('error', () => undefined);
  await admin.query(
    'CREATE TABLE items (id int primary key, label text); INSERT INTO items SELECT g, $$item$$ || g FROM generate_series(1, 100) g',
  );
  const hooks = postgresRoleHooks(adminConfig);
  const vault = await createVaultDevServer({ ...options, database: hooks });
  vault.addDatabaseRole('app', {
    creationStatements: [...DEFAULT_CREATION_STATEMENTS, 'GRANT SELECT ON items TO "{{name}}";'],
    ...role,
  });
  return {
    vault,
    hooks,
    database: name,
    pgSettings: { host: info.host, port: info.port, database: name },
    admin,
    registry: new Registry(),
    async close() {
      await vault.close();
      await hooks.close();
      await admin.end();
    },
  };
}

/**
 * Roles whose name starts with `v-` that still exist; with `vault`, only the roles that dev server created. Roles
 * are cluster-wide and test files run in parallel on the shared server, so "none of ours is left" must not count
 * the roles of another file's test bed.
 */
export async function liveRoles(
  admin: pg.Pool,
  vault?: { leases(): readonly { readonly username: string | undefined }[] },
): Promise<string[]> {
  const { rows } = await admin.query<{ rolname: string }>("SELECT rolname FROM pg_roles WHERE rolname LIKE 'v-%'");
  const ours = vault === undefined ? undefined : new Set(vault.leases().map((lease) => lease.username));
  return rows.map((row) => row.rolname).filter((name) => ours === undefined || ours.has(name));
}

export interface LoadResult {
  ok: number;
  failed: number;
  errors: Map<string, number>;
}

type Queryable = { query(text: string): Promise<unknown> };

/**
 * Runs `workers` concurrent loops of a small query that touches a granted table (so a revoked role fails) until
 * `stop` resolves; every rejection is counted by message.
 */
export async function runLoad(
  pool: Queryable | (() => Queryable),
  workers: number,
  until: Promise<unknown>,
  sql = 'SELECT count(*) FROM items WHERE id > (SELECT 0 FROM pg_sleep(0.002))',
): Promise<LoadResult> {
  const result: LoadResult = { ok: 0, failed: 0, errors: new Map() };
  let stopped = false;
  void until.then(() => {
    stopped = true;
  });
  const resolve = typeof pool === 'function' ? pool : () => pool;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (!stopped) {
        try {
          await resolve().query(sql);
          result.ok += 1;
        } catch (error) {
          result.failed += 1;
          const key =
            error instanceof Error ? `${(error as { code?: string }).code ?? ''} ${error.message}` : String(error);
          result.errors.set(key, (result.errors.get(key) ?? 0) + 1);
        }
      }
    }),
  );
  return result;
}

export const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `predicate` until it holds or `timeoutMs` passes. */
export async function until(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(25);
  }
}
