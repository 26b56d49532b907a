// Database hooks for the dev server that do what Vault's PostgreSQL plugin does: create a LOGIN role with a
// password and VALID UNTIL, move VALID UNTIL on renewal, and on revocation run the role's revocation statements or
// Vault's default (REVOKE …, REVOKE CONNECT, DROP ROLE — which leaves open sessions connected but powerless).
import pg from 'pg';
import type { ClientConfig } from 'pg';
import { vaultExpiration, type DevDatabaseHooks, type DevDatabaseUser } from './dev-server.ts';

/** The creation statement every Vault guide uses. */
export const DEFAULT_CREATION_STATEMENTS: readonly string[] = Object.freeze([
  `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
]);
/** Vault's default renew statement (dbplugin v5). */
export const DEFAULT_RENEW_STATEMENTS: readonly string[] = Object.freeze([
  `ALTER ROLE "{{name}}" VALID UNTIL '{{expiration}}';`,
]);

/** Hooks plus a `close()` for the admin connections they hold. */
export interface PostgresRoleHooks extends DevDatabaseHooks {
  onCreate(user: DevDatabaseUser, password: string): Promise<void>;
  onRenew(user: DevDatabaseUser): Promise<void>;
  onRevoke(user: DevDatabaseUser): Promise<void>;
  close(): Promise<void>;
}

const ident = (name: string): string => `"${name.replaceAll('"', '""')}"`;
const literal = (value: string): string => value.replaceAll("'", "''");

function render(statement: string, values: { name: string; password?: string; expiration?: string }): string {
  return statement
    .replaceAll('{{name}}', values.name.replaceAll('"', '""'))
    .replaceAll('{{username}}', values.name.replaceAll('"', '""'))
    .replaceAll('{{password}}', literal(values.password ?? ''))
    .replaceAll('{{expiration}}', literal(values.expiration ?? ''));
}

/**
 * Database hooks for {@link createVaultDevServer} that manage real PostgreSQL roles through an admin connection
 * (a superuser or a role with CREATEROLE). Statements run in the connection's database, so grants such as
 * `GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}"` apply there.
 * @example
 * const hooks = postgresRoleHooks({ host, port, user: 'postgres', password, database: 'app' });
 * const vault = await createVaultDevServer({ database: hooks });
 * vault.addDatabaseRole('app', { creationStatements: [...DEFAULT_CREATION_STATEMENTS, 'GRANT SELECT ON items TO "{{name}}";'] });
 */
export function postgresRoleHooks(connection: Readonly<ClientConfig>): PostgresRoleHooks {
  const admin = new pg.Pool({ ...connection, max: 3, idleTimeoutMillis: 5_000, allowExitOnIdle: true });
  admin.on('error', () => undefined);
  const run = async (statements: readonly string[], values: Parameters<typeof render>[1]): Promise<void> => {
    const client = await admin.connect();
    try {
      await client.query('BEGIN');
      for (const statement of statements) await client.query(render(statement, values));
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  };
  const defaultRevoke = async (name: string): Promise<void> => {
    const client = await admin.connect();
    try {
      const { rows } = await client.query<{ schema: string }>(
        'SELECT DISTINCT table_schema AS schema FROM information_schema.role_table_grants WHERE grantee = $1',
        [name],
      );
      const { rows: database } = await client.query<{ name: string }>('SELECT current_database() AS name');
      const statements = [
        ...rows.flatMap(({ schema }) => [
          `REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA ${ident(schema)} FROM ${ident(name)}`,
          `REVOKE USAGE ON SCHEMA ${ident(schema)} FROM ${ident(name)}`,
        ]),
        `REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA public FROM ${ident(name)}`,
        `REVOKE ALL PRIVILEGES ON ALL SEQUENCES IN SCHEMA public FROM ${ident(name)}`,
        `REVOKE USAGE ON SCHEMA public FROM ${ident(name)}`,
        `REVOKE CONNECT ON DATABASE ${ident(database[0]?.name ?? 'postgres')} FROM ${ident(name)}`,
      ];
      // Like Vault: the REVOKEs run one by one and keep going on error; DROP ROLE decides success.
      for (const statement of statements) await client.query(statement).catch(() => undefined);
      await client.query(`DROP ROLE IF EXISTS ${ident(name)}`);
    } finally {
      client.release();
    }
  };
  return {
    async onCreate(user: DevDatabaseUser, password: string) {
      const statements = user.roleConfig.creationStatements ?? DEFAULT_CREATION_STATEMENTS;
      await run(statements, { name: user.username, password, expiration: vaultExpiration(user.expiresAt) });
    },
    async onRenew(user: DevDatabaseUser) {
      const statements = user.roleConfig.renewStatements ?? DEFAULT_RENEW_STATEMENTS;
      await run(statements, { name: user.username, expiration: vaultExpiration(user.expiresAt) });
    },
    async onRevoke(user: DevDatabaseUser) {
      const statements = user.roleConfig.revocationStatements ?? [];
      if (statements.length === 0) await defaultRevoke(user.username);
      else await run(statements, { name: user.username });
    },
    async close() {
      await admin.end();
    },
  };
}
