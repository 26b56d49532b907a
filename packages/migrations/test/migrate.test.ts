import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { createMigrator, isMigrationError, type MigrationError } from '../src/index.ts';
import { freshDatabase, migrationFolder } from './helpers.ts';

let url: string;
let pool: pg.Pool;
beforeAll(async () => {
  ({ url, pool } = await freshDatabase('migrate'));
});
afterAll(async () => {
  await pool.end();
});

const schemaFor = (name: string): string => `gm_${name}`;

describe('migrate', () => {
  it('applies versions in numeric order (1.2.10 after 1.2.9) and records them in the history', async () => {
    const folder = migrationFolder({
      'V1.2.10__third.sql': '-- gantry:phase expand\nALTER TABLE ordered ADD COLUMN c text;',
      'V1.2.9__second.sql': '-- gantry:phase expand\nALTER TABLE ordered ADD COLUMN b text;',
      'V1_2_1__first.sql': '-- gantry:phase expand\nCREATE TABLE ordered (id bigint PRIMARY KEY, a text);',
    });
    const migrator = createMigrator({
      directory: folder.directory,
      connectionString: url,
      schema: schemaFor('order'),
      actor: 'tester',
    });
    const report = await migrator.migrate();
    expect(report.applied.map((step) => step.version)).toEqual(['1.2.1', '1.2.9', '1.2.10']);
    expect(report.current).toBe('1.2.10');
    const history = await pool.query(
      `SELECT version, description, phase, checksum, installed_by, execution_ms, success, transactional FROM gm_order.history ORDER BY installed_rank`,
    );
    expect(
      history.rows.map((row) => [
        row.version,
        row.description,
        row.phase,
        row.installed_by,
        row.success,
        row.transactional,
      ]),
    ).toEqual([
      ['1.2.1', 'first', 'expand', 'tester', true, true],
      ['1.2.9', 'second', 'expand', 'tester', true, true],
      ['1.2.10', 'third', 'expand', 'tester', true, true],
    ]);
    expect(history.rows.every((row) => /^sha256:[0-9a-f]{64}$/.test(row.checksum) && row.execution_ms >= 0)).toBe(true);
    const columns = await pool.query(
      `SELECT column_name FROM information_schema.columns WHERE table_name = 'ordered' ORDER BY ordinal_position`,
    );
    expect(columns.rows.map((row) => row.column_name)).toEqual(['id', 'a', 'b', 'c']);
    expect((await migrator.migrate()).applied).toEqual([]);
    folder.remove();
  });

  it('rolls a failing migration back, records it as failed, and applies it once fixed', async () => {
    const folder = migrationFolder({
      'V1__table.sql': '-- gantry:phase expand\nCREATE TABLE fails (id bigint PRIMARY KEY);',
      'V2__broken.sql':
        '-- gantry:phase expand\nALTER TABLE fails ADD COLUMN ok text;\nALTER TABLE fails ADD COLUMN bad no_such_type;',
    });
    const migrator = createMigrator({ directory: folder.directory, connectionString: url, schema: schemaFor('fail') });
    const error = await migrator.migrate().catch((caught: unknown) => caught);
    expect(isMigrationError(error) && error.code).toBe('GANTRY_MIGRATIONS_MIGRATION_FAILED');
    expect((error as MigrationError).message).toContain('no_such_type');
    const columns = await pool.query(`SELECT column_name FROM information_schema.columns WHERE table_name = 'fails'`);
    expect(columns.rows.map((row) => row.column_name)).toEqual(['id']);
    const info = await migrator.info();
    expect(info.failed).toEqual([{ version: '2', description: 'broken' }]);
    expect(info.current).toBe('1');
    folder.write(
      'V2__broken.sql',
      '-- gantry:phase expand\nALTER TABLE fails ADD COLUMN ok text, ADD COLUMN fine text;',
    );
    expect((await migrator.migrate()).applied.map((step) => step.version)).toEqual(['2']);
    expect((await migrator.info()).failed).toEqual([]);
    folder.remove();
  });

  it('keeps the migrations before a failure in a run applied and stops at the failure', async () => {
    const folder = migrationFolder({
      'V1__one.sql': '-- gantry:phase expand\nCREATE TABLE run_one (id bigint PRIMARY KEY);',
      'V2__two.sql': '-- gantry:phase expand\nCREATE TABLE run_two (id bigint PRIMARY KEY);',
      'V3__three.sql': '-- gantry:phase expand\nINSERT INTO run_missing VALUES (1);',
      'V4__four.sql': '-- gantry:phase expand\nCREATE TABLE run_four (id bigint PRIMARY KEY);',
    });
    const migrator = createMigrator({ directory: folder.directory, connectionString: url, schema: schemaFor('run') });
    const error = await migrator.migrate().catch((caught: unknown) => caught);
    expect(isMigrationError(error) && error.code).toBe('GANTRY_MIGRATIONS_MIGRATION_FAILED');
    expect((error as MigrationError).version).toBe('3');
    const info = await migrator.info();
    expect(info.migrations.map((migration) => [migration.version, migration.state])).toEqual([
      ['1', 'applied'],
      ['2', 'applied'],
      ['3', 'failed'],
      ['4', 'pending'],
    ]);
    const tables = await pool.query(
      `SELECT count(*)::int AS n FROM pg_class WHERE relname IN ('run_one', 'run_two', 'run_four')`,
    );
    expect(tables.rows[0].n).toBe(2);
    folder.remove();
  });

  it('runs CREATE INDEX CONCURRENTLY outside a transaction and records it as such', async () => {
    const folder = migrationFolder({
      'V1__table.sql': '-- gantry:phase expand\nCREATE TABLE indexed (id bigint PRIMARY KEY, email text);',
      'V2__index.sql':
        '-- gantry:phase expand\nCREATE INDEX CONCURRENTLY IF NOT EXISTS indexed_email_idx ON indexed (email);',
    });
    const migrator = createMigrator({ directory: folder.directory, connectionString: url, schema: schemaFor('cic') });
    const report = await migrator.migrate();
    expect(report.applied.map((step) => [step.version, step.transactional])).toEqual([
      ['1', true],
      ['2', false],
    ]);
    const history = await pool.query(
      `SELECT transactional, statements_applied, success FROM gm_cic.history WHERE version = '2'`,
    );
    expect(history.rows).toEqual([{ transactional: false, statements_applied: 1, success: true }]);
    const index = await pool.query(`SELECT indisvalid FROM pg_index WHERE indexrelid = 'indexed_email_idx'::regclass`);
    expect(index.rows).toEqual([{ indisvalid: true }]);
    folder.remove();
  });

  it('refuses to apply a migration with lint errors and names the rule', async () => {
    const folder = migrationFolder({
      'V1__table.sql': '-- gantry:phase expand\nCREATE TABLE linted (id bigint PRIMARY KEY, name text);',
      'V2__drop.sql': '-- gantry:phase expand\nALTER TABLE linted DROP COLUMN name;',
    });
    const migrator = createMigrator({ directory: folder.directory, connectionString: url, schema: schemaFor('lint') });
    const error = await migrator.migrate().catch((caught: unknown) => caught);
    expect(isMigrationError(error) && error.code).toBe('GANTRY_MIGRATIONS_LINT_FAILED');
    expect((error as Error).message).toContain('ban-drop-column');
    expect((await migrator.info()).current).toBeNull();
    folder.remove();
  });

  it('stops a phase-limited run at the first migration of another phase', async () => {
    const folder = migrationFolder({
      'V1__a.sql': '-- gantry:phase expand\nCREATE TABLE phased (id bigint PRIMARY KEY, old text);',
      'V2__b.sql': '-- gantry:phase contract\nALTER TABLE phased DROP COLUMN old;',
      'V3__c.sql': '-- gantry:phase expand\nALTER TABLE phased ADD COLUMN later text;',
    });
    const migrator = createMigrator({ directory: folder.directory, connectionString: url, schema: schemaFor('phase') });
    const report = await migrator.migrate({ phase: 'expand' });
    expect(report.applied.map((step) => step.version)).toEqual(['1']);
    expect(report.stoppedAt).toEqual({ version: '2', phase: 'contract' });
    const contract = await migrator.contract();
    expect(contract.applied.map((step) => step.version)).toEqual(['2']);
    expect(contract.stoppedAt).toEqual({ version: '3', phase: 'expand' });
    const info = await migrator.info();
    expect([info.current, info.lastContract, info.phase, info.pending]).toEqual(['2', '2', 'contract', 1]);
    folder.remove();
  });

  it('fails validate for a tampered file but not for a change of line endings', async () => {
    const folder = migrationFolder({
      'V1__a.sql': '-- gantry:phase expand\nCREATE TABLE tampered (id bigint PRIMARY KEY);\n',
    });
    const migrator = createMigrator({
      directory: folder.directory,
      connectionString: url,
      schema: schemaFor('tamper'),
    });
    await migrator.migrate();
    expect(await migrator.validate()).toEqual({ ok: true, problems: [] });
    folder.write('V1__a.sql', '-- gantry:phase expand\r\nCREATE TABLE tampered (id bigint PRIMARY KEY);\r\n');
    expect((await migrator.validate()).ok).toBe(true);
    folder.write('V1__a.sql', '-- gantry:phase expand\nCREATE TABLE tampered (id bigint PRIMARY KEY, extra text);\n');
    const report = await migrator.validate();
    expect(report.ok).toBe(false);
    expect(report.problems.map((problem) => problem.state)).toEqual(['checksum-mismatch']);
    const error = await migrator.migrate().catch((caught: unknown) => caught);
    expect(isMigrationError(error) && error.code).toBe('GANTRY_MIGRATIONS_VALIDATION_FAILED');
    const repaired = await migrator.repair({ reason: 'comment-only edit reviewed in PR 12' });
    expect(repaired.realignedChecksums.map((item) => item.version)).toEqual(['1']);
    expect((await migrator.validate()).ok).toBe(true);
    const auditRows = await pool.query(`SELECT action, reason FROM gm_tamper.audit`);
    expect(auditRows.rows).toEqual([{ action: 'repair', reason: 'comment-only edit reviewed in PR 12' }]);
    folder.remove();
  });

  it('reports out-of-order and missing migrations', async () => {
    const folder = migrationFolder({
      'V1__a.sql': '-- gantry:phase expand\nCREATE TABLE ooo (id bigint PRIMARY KEY);',
      'V3__c.sql': '-- gantry:phase expand\nALTER TABLE ooo ADD COLUMN c text;',
    });
    const migrator = createMigrator({ directory: folder.directory, connectionString: url, schema: schemaFor('ooo') });
    await migrator.migrate();
    folder.write('V2__b.sql', '-- gantry:phase expand\nALTER TABLE ooo ADD COLUMN b text;');
    const info = await migrator.info();
    expect(info.migrations.map((migration) => [migration.version, migration.state])).toEqual([
      ['1', 'applied'],
      ['2', 'out-of-order'],
      ['3', 'applied'],
    ]);
    expect((await migrator.validate()).problems.map((problem) => problem.state)).toEqual(['out-of-order']);
    const tolerant = createMigrator({
      directory: folder.directory,
      connectionString: url,
      schema: schemaFor('ooo'),
      allowOutOfOrder: true,
    });
    expect((await tolerant.migrate()).applied.map((step) => step.version)).toEqual(['2']);
    folder.remove();
  });

  it('baselines an existing database once and skips the files below the baseline', async () => {
    const folder = migrationFolder({
      'V1__old.sql': '-- gantry:phase expand\nCREATE TABLE legacy_base (id bigint PRIMARY KEY);',
      'V2__new.sql': '-- gantry:phase expand\nCREATE TABLE after_base (id bigint PRIMARY KEY);',
    });
    await pool.query('CREATE TABLE legacy_base (id bigint PRIMARY KEY)');
    const migrator = createMigrator({ directory: folder.directory, connectionString: url, schema: schemaFor('base') });
    await migrator.baseline({ version: '1', reason: 'adopting gantry' });
    expect((await migrator.migrate()).applied.map((step) => step.version)).toEqual(['2']);
    const error = await migrator.baseline({ version: '3' }).catch((caught: unknown) => caught);
    expect(isMigrationError(error) && error.code).toBe('GANTRY_MIGRATIONS_BASELINE_REFUSED');
    expect((await migrator.info()).migrations.map((migration) => migration.state)).toEqual([
      'below-baseline',
      'applied',
    ]);
    folder.remove();
  });

  it('plans each pending statement with its lock level, and compat warns about contract and major jumps', async () => {
    const folder = migrationFolder({
      'V1__t.sql': '-- gantry:phase expand\nCREATE TABLE planned (id bigint PRIMARY KEY, name text);',
      'V1.1__col.sql': '-- gantry:phase expand\nALTER TABLE planned ADD COLUMN nick text;',
      'V2__drop.sql': '-- gantry:phase contract\nALTER TABLE planned DROP COLUMN name;',
    });
    const migrator = createMigrator({ directory: folder.directory, connectionString: url, schema: schemaFor('plan') });
    await migrator.migrate({ target: '1' });
    const plan = await migrator.plan();
    expect(
      plan.migrations.map((migration) => [
        migration.version,
        migration.statements.map((statement) => [statement.lock, statement.blocks]),
      ]),
    ).toEqual([
      ['1.1', [['ACCESS EXCLUSIVE', 'reads and writes']]],
      ['2', [['ACCESS EXCLUSIVE', 'reads and writes']]],
    ]);
    expect((await migrator.info()).current).toBe('1');
    const compat = await migrator.compat({ from: '1', to: '2' });
    expect(compat.ok).toBe(true);
    expect(compat.warnings.map((warning) => warning.code).sort()).toEqual([
      'destructive-migration',
      'major-version-jump',
    ]);
    folder.remove();
  });
});
