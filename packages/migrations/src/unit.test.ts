import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { appApplicationName, parseApplicationName, blockingClients } from './app-version.ts';
import { backoffDelay } from './db.ts';
import { MIGRATION_ERROR_CODES, MigrationError, isMigrationError } from './errors.ts';
import { migratorOptionsFromEnv } from './env.ts';
import { checksumOf } from './files.ts';
import { createProgressReporter, renderProgressBar } from './progress.ts';
import { compareVersions, normalizeVersion } from './version.ts';
import { createMigrator } from './migrator.ts';
import { defineBackfill } from './backfill.ts';
import { exitCodeFor } from './cli.ts';

describe('versions', () => {
  it('orders segment by segment numerically', () => {
    expect(['1.10', '1.9', '1.2.10', '1.2.9', '2', '1'].sort(compareVersions)).toEqual([
      '1',
      '1.2.9',
      '1.2.10',
      '1.9',
      '1.10',
      '2',
    ]);
    expect(compareVersions('1.2', '1.2.0')).toBe(0);
    expect(normalizeVersion('01_02')).toBe('1.2');
    expect(() => normalizeVersion('1.x')).toThrow(/dot-separated integers/);
  });
});

describe('checksums', () => {
  it('ignore line endings and a byte-order mark but not content', () => {
    expect(checksumOf('SELECT 1;\r\nSELECT 2;\r\n')).toBe(checksumOf('SELECT 1;\nSELECT 2;\n'));
    expect(checksumOf('\uFEFFSELECT 1;\n')).toBe(checksumOf('SELECT 1;\n'));
    expect(checksumOf('SELECT 1;\n')).not.toBe(checksumOf('SELECT 2;\n'));
  });
});

describe('errors', () => {
  it('documents every code in the README, and the README lists no unknown code', () => {
    const readme = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8');
    for (const code of MIGRATION_ERROR_CODES) expect(readme, code).toContain(`\`${code}\``);
    const mentioned = new Set(readme.match(/GANTRY_MIGRATIONS_[A-Z_]+(?=`)/g) ?? []);
    const known = new Set<string>([...MIGRATION_ERROR_CODES]);
    const envVariables =
      /^GANTRY_MIGRATIONS_(URL|DIR|SCHEMA|LOCK_TIMEOUT_MS|STATEMENT_TIMEOUT_MS|LOCK_RETRIES|LOCK_WAIT_MS|HEARTBEAT_TTL_MS|ALLOW_OUT_OF_ORDER|LINT|ACTOR)$/;
    for (const code of mentioned) expect(known.has(code) || envVariables.test(code), code).toBe(true);
  });

  it('maps every code to a documented CLI exit code', () => {
    for (const code of MIGRATION_ERROR_CODES) expect([1, 2, 3, 4, 5, 6, 130]).toContain(exitCodeFor(code));
  });

  it('keeps the cause and is recognised by the guard', () => {
    const cause = new Error('underlying');
    const error = new MigrationError('GANTRY_MIGRATIONS_LOCK_TIMEOUT', 'x', { cause, version: '1' });
    expect(error.cause).toBe(cause);
    expect(isMigrationError(error)).toBe(true);
    expect(isMigrationError(new Error('x'))).toBe(false);
  });
});

describe('options', () => {
  it('names the option, the expectation and the value', () => {
    expect(() => createMigrator({ directory: './m', connectionString: 'postgres://x', lockTimeoutMs: -1 })).toThrow(
      'Expected `lockTimeoutMs` to be a finite number ≥ 0, got -1',
    );
    expect(() => createMigrator({ directory: './m' })).toThrow(/exactly one of `connectionString`/);
    expect(() => defineBackfill({ table: 't' })).toThrow(/exactly one of `set` and `apply`/);
    expect(() => defineBackfill({ table: 't', apply: async () => undefined })).toThrow(/`verify`/);
  });

  it('freezes the configuration', () => {
    const migrator = createMigrator({ directory: './m', connectionString: 'postgres://x' });
    expect(Object.isFrozen(migrator.config)).toBe(true);
    expect(migrator.config.lockTimeoutMs).toBe(500);
  });

  it('reads GANTRY_MIGRATIONS_* variables only', () => {
    expect(
      migratorOptionsFromEnv({
        GANTRY_MIGRATIONS_URL: 'postgres://h/db',
        GANTRY_MIGRATIONS_LOCK_TIMEOUT_MS: '250',
        GANTRY_MIGRATIONS_LINT: 'report',
        DATABASE_URL: 'x',
      }),
    ).toEqual({ connectionString: 'postgres://h/db', lockTimeoutMs: 250, lint: 'report' });
    expect(() => migratorOptionsFromEnv({ GANTRY_MIGRATIONS_LOCK_RETRIES: 'many' })).toThrow(
      'GANTRY_MIGRATIONS_LOCK_RETRIES',
    );
  });
});

describe('backoff', () => {
  it('grows exponentially, is capped, and keeps at least half the step', () => {
    expect(backoffDelay(1, 100, 1_000, () => 0)).toBe(50);
    expect(backoffDelay(3, 100, 1_000, () => 1)).toBe(400);
    expect(backoffDelay(10, 100, 1_000, () => 1)).toBe(1_000);
  });
});

describe('application_name', () => {
  it('round-trips the schema range and fits in 63 bytes', () => {
    const name = appApplicationName({ service: 'orders', version: '2.1.0', schemaSupports: { min: '5', max: '7.1' } });
    expect(parseApplicationName(name)).toEqual({
      service: 'orders',
      version: '2.1.0',
      schemaSupports: { min: '5', max: '7.1' },
    });
    const long = appApplicationName({ service: 'x'.repeat(100), version: '1', schemaSupports: { min: '1', max: '2' } });
    expect(Buffer.byteLength(long)).toBeLessThanOrEqual(63);
    expect(parseApplicationName(long)?.schemaSupports).toEqual({ min: '1', max: '2' });
  });

  it('blocks a contract only for clients whose max is below it', () => {
    const client = (max: string) => ({
      source: 'heartbeat' as const,
      service: 's',
      version: 'v',
      instance: 'i',
      schemaSupports: { min: '1', max },
      ageSeconds: 1,
    });
    expect(
      blockingClients([client('3'), client('4'), client('4.1')], '4').map((item) => item.schemaSupports.max),
    ).toEqual(['3']);
  });
});

describe('progress', () => {
  const sample = {
    version: '3',
    table: 'users',
    rowsDone: 500,
    rowsTotal: 1_000,
    rowsRemaining: 500,
    rowsPerSecond: 250,
    etaSeconds: 2,
    batches: 5,
    batchSize: 100,
    batchMs: 40,
  };
  it('draws a bar with rows/s and ETA on a TTY', () => {
    expect(renderProgressBar(sample)).toMatch(/3 users \[█+░+\]\s+50% 500\/1,000 rows 250 rows\/s ETA 2s/);
    const chunks: string[] = [];
    const reporter = createProgressReporter({ stream: { isTTY: true, write: (chunk: string) => chunks.push(chunk) } });
    reporter.update(sample);
    reporter.done();
    expect(chunks[0]).toMatch(/^\r3 users/);
    expect(chunks[1]).toBe('\n');
  });
  it('writes JSON lines otherwise, at most once per interval plus the last one', () => {
    const chunks: string[] = [];
    let now = 0;
    const reporter = createProgressReporter({
      stream: { write: (chunk: string) => chunks.push(chunk) },
      now: () => now,
    });
    reporter.update(sample);
    now = 10;
    reporter.update({ ...sample, rowsDone: 600 });
    reporter.done();
    expect(chunks.map((chunk) => JSON.parse(chunk).rowsDone)).toEqual([500, 600]);
    expect(JSON.parse(chunks[0]!)).toMatchObject({
      event: 'migrations.backfill.progress',
      rowsPerSecond: 250,
      etaSeconds: 2,
    });
  });
});
