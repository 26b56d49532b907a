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
