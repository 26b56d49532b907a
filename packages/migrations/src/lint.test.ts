import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LINT_RULES } from './lint-rules.ts';
import { createLintState, lintSql } from './lint.ts';

describe('lint rules catalogue', () => {
  it('has at least 25 rules, each with an explanation and a safe alternative', () => {
    expect(LINT_RULES.length).toBeGreaterThanOrEqual(25);
    const ids = new Set(LINT_RULES.map((rule) => rule.id));
    expect(ids.size).toBe(LINT_RULES.length);
    for (const rule of LINT_RULES) {
      expect(rule.explanation.length, rule.id).toBeGreaterThan(20);
      expect(rule.safeAlternative.length, rule.id).toBeGreaterThan(5);
    }
  });

  it('is listed in the README, rule by rule, with the right count', () => {
    const readme = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8');
    const listed = [...readme.matchAll(/^\| `([a-z-]+)` \|/gm)].map((match) => match[1]);
    expect(listed.filter((id) => LINT_RULES.some((rule) => rule.id === id))).toEqual(LINT_RULES.map((rule) => rule.id));
    expect(readme).toContain(`${LINT_RULES.length} rules`);
  });

  for (const rule of LINT_RULES) {
    describe(rule.id, () => {
      const options = {
        ...(rule.examples.phase === undefined ? {} : { phase: rule.examples.phase }),
      };
      it('reports the failing example', async () => {
        const result = await lintSql(rule.examples.failing, options);
        expect(result.findings.map((finding) => finding.rule)).toContain(rule.id);
      });
      it('stays quiet on the passing example', async () => {
        const result = await lintSql(rule.examples.passing, options);
        expect(result.findings.map((finding) => finding.rule)).not.toContain(rule.id);
        if (rule.examples.nonTransactional === true) expect(result.transactional).toBe(false);
      });
    });
  }
});

describe('lintSql', () => {
  it('gives the line of the offending statement and its explanation', async () => {
    const result = await lintSql(
      '-- gantry:phase expand\n\nALTER TABLE users ADD COLUMN a text;\nCREATE INDEX i ON users (a);\n',
    );
    const finding = result.findings.find((item) => item.rule === 'require-concurrent-index-creation');
    expect(finding?.line).toBe(4);
    expect(finding?.severity).toBe('error');
    expect(finding?.safeAlternative).toContain('CONCURRENTLY');
  });

  it('does not flag an index on a table created in the same migration', async () => {
    const result = await lintSql(
      '-- gantry:phase expand\nCREATE TABLE t (id bigint PRIMARY KEY, a text);\nCREATE INDEX t_a ON t (a);',
    );
    expect(result.findings).toEqual([]);
  });

  it('treats destructive changes as errors outside contract and allows them in contract', async () => {
    const expand = await lintSql('-- gantry:phase expand\nALTER TABLE users DROP COLUMN legacy;');
    expect(expand.errors).toBe(1);
    const contract = await lintSql('-- gantry:phase contract\nALTER TABLE users DROP COLUMN legacy;');
    expect(contract.findings).toEqual([]);
  });

  it('suppresses only the statement below the allow comment, keeping the reason', async () => {
    const sql = [
      '-- gantry:phase expand',
      '-- gantry:allow ban-drop-column nobody reads it since 2.0',
      'ALTER TABLE a DROP COLUMN x;',
      'ALTER TABLE b DROP COLUMN y;',
    ].join('\n');
    const result = await lintSql(sql);
    expect(result.suppressed.map((item) => [item.rule, item.reason])).toEqual([
      ['ban-drop-column', 'nobody reads it since 2.0'],
    ]);
    expect(result.findings.filter((item) => item.rule === 'ban-drop-column').map((item) => item.line)).toEqual([4]);
  });

  it('carries a validated NOT NULL check across files', async () => {
    const state = createLintState();
    await lintSql('-- gantry:phase expand\nALTER TABLE u ADD CONSTRAINT u_e_nn CHECK (e IS NOT NULL) NOT VALID;', {
      state,
    });
    await lintSql('-- gantry:phase expand\nALTER TABLE u VALIDATE CONSTRAINT u_e_nn;', { state });
    const third = await lintSql('-- gantry:phase expand\nALTER TABLE u ALTER COLUMN e SET NOT NULL;', { state });
    expect(third.findings.map((item) => item.rule)).not.toContain('setting-not-null-without-check');
    const fresh = await lintSql('-- gantry:phase expand\nALTER TABLE u ALTER COLUMN e SET NOT NULL;');
    expect(fresh.findings.map((item) => item.rule)).toContain('setting-not-null-without-check');
  });

  it('flags blocking DDL without lock_timeout when linting for another runner', async () => {
    const sql = '-- gantry:phase expand\nALTER TABLE users ADD COLUMN a text;';
    expect((await lintSql(sql)).findings).toEqual([]);
    const result = await lintSql(sql, { assumeRunnerTimeouts: false });
    expect(result.findings.map((item) => item.rule).sort()).toEqual([
      'require-lock-timeout',
      'require-statement-timeout',
    ]);
  });

  it('treats a stable default (now()) as safe and an unknown function as a warning', async () => {
    const safe = await lintSql('-- gantry:phase expand\nALTER TABLE t ADD COLUMN c timestamptz DEFAULT now();');
    expect(safe.findings).toEqual([]);
    const unknown = await lintSql('-- gantry:phase expand\nALTER TABLE t ADD COLUMN c text DEFAULT my_func();');
    expect(unknown.findings.map((item) => [item.rule, item.severity])).toEqual([
      ['adding-field-with-volatile-default', 'warning'],
    ]);
  });
});

describe('dangerous SQL the linter used to miss', () => {
  const rulesOf = async (sql: string, phase?: 'expand' | 'contract' | 'backfill') =>
    (await lintSql(sql, phase === undefined ? {} : { phase })).findings
      .filter((item) => item.rule !== 'missing-phase')
      .map((item) => [item.rule, item.severity]);

  it('reports DDL hidden in a DO block: an error in an expand migration, a warning elsewhere', async () => {
    const sql = "DO $$ BEGIN EXECUTE 'ALTER TABLE users DROP COLUMN email'; END $$;";
    expect(await rulesOf(sql, 'expand')).toEqual([['opaque-procedural-code', 'error']]);
    expect(await rulesOf(sql, 'contract')).toEqual([['opaque-procedural-code', 'warning']]);
    expect(await rulesOf('CALL rebuild_everything();', 'backfill')).toEqual([['opaque-procedural-code', 'warning']]);
    const finding = (await lintSql(sql)).findings.find((item) => item.rule === 'opaque-procedural-code');
    expect(finding?.message).toContain('EXECUTE');
  });

  it('reports SET TABLESPACE and SET LOGGED/UNLOGGED, which rewrite the table under ACCESS EXCLUSIVE', async () => {
    expect(await rulesOf('ALTER TABLE orders SET TABLESPACE fast_ssd;')).toEqual([['ban-set-tablespace', 'error']]);
    expect(await rulesOf('ALTER INDEX orders_pkey SET TABLESPACE fast_ssd;')).toEqual([
      ['ban-set-tablespace', 'error'],
    ]);
    expect(await rulesOf('ALTER TABLE ALL IN TABLESPACE slow SET TABLESPACE fast_ssd;')).toEqual([
      ['ban-set-tablespace', 'error'],
    ]);
    expect(await rulesOf('ALTER TABLE orders SET UNLOGGED;')).toEqual([['ban-set-logged-unlogged', 'error']]);
    expect(await rulesOf('ALTER TABLE orders SET LOGGED;')).toEqual([['ban-set-logged-unlogged', 'error']]);
    const plan = await lintSql('ALTER TABLE orders SET LOGGED;');
    expect(plan.statements[0]).toMatchObject({ lock: 'ACCESS EXCLUSIVE', rewrite: true });
    // A table created in the same migration is empty: nothing to rewrite.
    expect(
      await rulesOf('CREATE TABLE staging (id bigint PRIMARY KEY);\nALTER TABLE staging SET UNLOGGED;', 'expand'),
    ).toEqual([]);
  });

  it('reports dropping views, functions, types and sequences outside a contract migration', async () => {
    for (const sql of [
      'DROP VIEW active_users;',
      'DROP MATERIALIZED VIEW daily_totals;',
      'DROP FUNCTION order_total(bigint);',
      'DROP PROCEDURE archive_orders();',
      'DROP TYPE order_status;',
      'DROP DOMAIN email_address;',
      'DROP SEQUENCE invoice_numbers;',
    ]) {
      expect(await rulesOf(sql, 'expand'), sql).toEqual([['ban-drop-object', 'error']]);
      expect(await rulesOf(sql, 'contract'), sql).toEqual([]);
    }
    // Replacing an object in one transaction keeps it there for the old version.
    expect(
      await rulesOf(
        'DROP VIEW active_users;\nCREATE VIEW active_users AS SELECT id FROM users WHERE active;',
        'expand',
      ),
    ).toEqual([]);
  });

  it('reports ATTACH PARTITION without a validated CHECK matching the bounds on the partition', async () => {
    const attach = "ALTER TABLE events ATTACH PARTITION events_2025 FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');";
    expect(await rulesOf(attach)).toEqual([['attach-partition-without-check', 'error']]);
    const state = createLintState();
    await lintSql(
      "ALTER TABLE events_2025 ADD CONSTRAINT events_2025_bounds CHECK (at >= '2025-01-01' AND at < '2026-01-01') NOT VALID;",
      { state, phase: 'expand' },
    );
    await lintSql('ALTER TABLE events_2025 VALIDATE CONSTRAINT events_2025_bounds;', { state, phase: 'expand' });
    expect((await lintSql(`-- gantry:phase expand\n${attach}`, { state })).findings).toEqual([]);
  });
});
