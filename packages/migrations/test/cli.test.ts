import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { advisoryLockKey } from '../src/db.ts';
import { registerAppVersion } from '../src/index.ts';
import { CLI, freshDatabase, migrationFolder } from './helpers.ts';

let url: string;
let pool: pg.Pool;
beforeAll(async () => {
  ({ url, pool } = await freshDatabase('cli'));
});
afterAll(async () => {
  await pool.end();
});

async function run(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env['PATH'], ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  return { code, stdout, stderr };
}

describe('gantry-migrate', () => {
  it('prints help with the exit codes, per command too', async () => {
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Exit codes');
    expect(help.stdout).toContain('5    contract refused');
    const sub = await run(['contract', '--help']);
    expect(sub.code).toBe(0);
    expect(sub.stdout).toContain('gantry-migrate contract');
  });

  it('exits 2 on usage errors', async () => {
    expect((await run(['frobnicate'])).code).toBe(2);
    expect((await run(['info', '--bogus'])).code).toBe(2);
    expect((await run(['migrate', '--phase', 'sideways', '--url', url])).code).toBe(2);
    const noUrl = await run(['info', '--json']);
    expect(noUrl.code).toBe(2);
    expect(JSON.parse(noUrl.stdout).error.message).toContain('GANTRY_MIGRATIONS_URL');
    expect((await run(['contract', '--force', '--url', url])).code).toBe(2);
  });

  it('migrates, reports info as JSON, and exits 4 on a tampered file', async () => {
    const folder = migrationFolder({
      'V1__t.sql': '-- gantry:phase expand\nCREATE TABLE cli_t (id bigint PRIMARY KEY);\n',
    });
    const migrate = await run(['migrate', '--json', '--dir', folder.directory, '--schema', 'cli_a'], {
      GANTRY_MIGRATIONS_URL: url,
    });
    expect(migrate.code).toBe(0);
    expect(JSON.parse(migrate.stdout)).toMatchObject({
      ok: true,
      command: 'migrate',
      current: '1',
      applied: [{ version: '1', phase: 'expand' }],
    });
    const info = await run(['info', '--json', '--url', url, '--dir', folder.directory, '--schema', 'cli_a']);
    expect(JSON.parse(info.stdout)).toMatchObject({
      current: '1',
      pending: 0,
      failed: [],
      migrations: [{ version: '1', state: 'applied' }],
    });
    folder.write('V1__t.sql', '-- gantry:phase expand\nCREATE TABLE cli_t (id bigint PRIMARY KEY, sneaky text);\n');
    const validate = await run(['validate', '--json', '--url', url, '--dir', folder.directory, '--schema', 'cli_a']);
    expect(validate.code).toBe(4);
    expect(JSON.parse(validate.stdout)).toMatchObject({
      ok: false,
      problems: [{ version: '1', state: 'checksum-mismatch' }],
    });
    folder.remove();
  });

  it('exits 5 when contract is refused and 3 when another migrator holds the lock', async () => {
    const folder = migrationFolder({
      'V1__t.sql': '-- gantry:phase expand\nCREATE TABLE cli_c (id bigint PRIMARY KEY, old text);',
      'V2__c.sql': '-- gantry:phase contract\nALTER TABLE cli_c DROP COLUMN old;',
    });
    const args = ['--url', url, '--dir', folder.directory, '--schema', 'cli_b'];
    expect((await run(['migrate', '--phase', 'expand', ...args])).code).toBe(0);
    const heartbeat = await registerAppVersion(pool, {
      service: 'old',
      version: '1',
      schemaSupports: { min: '1', max: '1' },
      schema: 'cli_b',
    });
    const refused = await run(['contract', '--json', ...args]);
    expect(refused.code).toBe(5);
    expect(JSON.parse(refused.stdout).error.code).toBe('GANTRY_MIGRATIONS_CONTRACT_REFUSED');
    await heartbeat.stop();

    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    await holder.query('SELECT pg_advisory_lock($1::bigint)', [advisoryLockKey('cli_b')]);
    const locked = await run(['contract', '--lock-wait-ms', '200', ...args]);
    expect(locked.code).toBe(3);
    expect(locked.stderr).toContain('Another migrator holds the migration lock');
    await holder.end();
    expect((await run(['contract', ...args])).code).toBe(0);
    folder.remove();
  });

  it('lints files without a database and lists the rules', async () => {
    const folder = migrationFolder({});
    const file = join(folder.directory, 'bad.sql');
    writeFileSync(file, '-- gantry:phase expand\nCREATE INDEX i ON users (email);\n');
    const lint = await run(['lint', file]);
    expect(lint.code).toBe(4);
    expect(lint.stdout).toContain('require-concurrent-index-creation');
    const rules = await run(['lint', '--rules', '--json']);
    expect(rules.code).toBe(0);
    expect(JSON.parse(rules.stdout).rules.length).toBeGreaterThanOrEqual(25);
    folder.remove();
  });
});
