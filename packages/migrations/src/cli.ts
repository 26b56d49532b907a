#!/usr/bin/env node
// gantry-migrate: the command line of @gantry/migrations. Every command takes --json; exit codes are listed in
// HELP and the README and are stable.
import { parseArgs } from 'node:util';
import { isMigrationError, type MigrationErrorCode } from './errors.ts';
import { migratorOptionsFromEnv } from './env.ts';
import { LINT_RULES } from './lint-rules.ts';
import { lintSql, type LintFinding } from './lint.ts';
import { createMigrator, type Migrator, type MigratorOptions } from './migrator.ts';
import { createProgressReporter } from './progress.ts';
import { MIGRATION_PHASES, type MigrationPhase } from './files.ts';
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Exit codes of gantry-migrate. */
export const EXIT_CODES = {
  ok: 0,
  failure: 1,
  usage: 2,
  lockNotAcquired: 3,
  invalid: 4,
  contractRefused: 5,
  lockTimeout: 6,
  interrupted: 130,
} as const;

const HELP = `Usage: gantry-migrate <command> [options]

Expand/contract PostgreSQL migrations: V<version>__<description>.sql files (phase from a
"-- gantry:phase expand|contract" header) and V<version>__<description>.ts backfill steps.

Commands
  migrate              apply pending migrations in order (--target V, --phase expand|backfill|contract)
  info                 applied, pending, failed, out-of-order and tampered migrations; backfills
  validate             checksums, missing files, failed and out-of-order migrations
  plan                 dry run: every pending statement with its lock level and estimates
  lint [file.sql ...]  lint the migrations folder (or the given files); --rules lists the rules
  backfill run         run pending backfill steps (bar on a TTY, JSON lines otherwise)
  backfill resume      continue a started backfill from its cursor
  backfill status      stored state of every backfill
  contract             apply pending contract migrations, gated on live app versions
  clients              app instances and sessions the contract gate sees
  compat --from A --to B   upgrade-path check between two schema versions
  baseline --version V     mark an existing database as being at V (empty history only)
  repair --reason "..."    drop failed entries, realign checksums, reset failed backfills (audited)

Options
  --url URL                 PostgreSQL URL (env GANTRY_MIGRATIONS_URL)
  --dir PATH                migrations folder (env GANTRY_MIGRATIONS_DIR, default ./migrations)
  --schema NAME             schema of the state tables (default gantry_migrations)
  --lock-timeout-ms N       lock_timeout of DDL sessions (default 500)
  --statement-timeout-ms N  statement_timeout of transactional migrations (default 60000)
  --lock-retries N          retries after a lock timeout (default 5)
  --lock-wait-ms N          how long to wait for another migrator's lock (default 30000)
  --target VERSION          apply up to and including VERSION
  --phase PHASE             only while pending migrations are of PHASE
  --force --reason TEXT     contract past live old clients (recorded in history and audit)
  --json                    machine-readable output on stdout (progress as JSON lines on stderr)
  -h, --help                this text (also after a command)

Exit codes
  0    success
  1    a migration or backfill failed, or the database could not be reached
  2    usage or configuration error
  3    another migrator holds the lock (waited --lock-wait-ms)
  4    validation or lint errors (validate, lint, compat not ok, migrate refused)
  5    contract refused: live clients need the old schema, or a backfill does not verify
  6    a migration could not get its table locks within the retries; nothing changed
  130  interrupted (a backfill pauses and can be resumed)
`;

const COMMAND_HELP: Readonly<Record<string, string>> = {
  migrate: 'gantry-migrate migrate [--target V] [--phase expand|backfill|contract] [--force --reason TEXT] [--json]',
  info: 'gantry-migrate info [--json]',
  validate: 'gantry-migrate validate [--json]     exit 4 when a problem is found',
  plan: 'gantry-migrate plan [--target V] [--phase P] [--json]',
  lint: 'gantry-migrate lint [file.sql ...] [--rules] [--no-runner-timeouts] [--json]     exit 4 on lint errors',
  backfill: 'gantry-migrate backfill run|resume|status [--target V] [--json]',
  contract: 'gantry-migrate contract [--target V] [--force --reason TEXT] [--json]     exit 5 when refused',
  clients: 'gantry-migrate clients [--json]',
  compat: 'gantry-migrate compat --from A --to B [--json]     exit 4 when not ok',
  baseline: 'gantry-migrate baseline --version V [--description TEXT] [--reason TEXT] [--json]',
  repair: 'gantry-migrate repair --reason TEXT [--json]',
};

const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  migrate: ['target', 'phase', 'force', 'reason'],
  info: [],
  validate: [],
  plan: ['target', 'phase'],
  lint: ['rules', 'no-runner-timeouts'],
  backfill: ['target'],
  contract: ['target', 'force', 'reason'],
  clients: [],
  compat: ['from', 'to'],
  baseline: ['version', 'description', 'reason'],
  repair: ['reason'],
};
const GLOBAL = [
  'url',
  'dir',
  'schema',
  'lock-timeout-ms',
  'statement-timeout-ms',
  'lock-retries',
  'lock-wait-ms',
  'json',
  'help',
];

class UsageError extends Error {}

/** Maps an error code to the exit code. */
export function exitCodeFor(code: MigrationErrorCode): number {
  switch (code) {
    case 'GANTRY_MIGRATIONS_LOCK_NOT_ACQUIRED':
      return EXIT_CODES.lockNotAcquired;
    case 'GANTRY_MIGRATIONS_LOCK_TIMEOUT':
      return EXIT_CODES.lockTimeout;
    case 'GANTRY_MIGRATIONS_VALIDATION_FAILED':
    case 'GANTRY_MIGRATIONS_LINT_FAILED':
    case 'GANTRY_MIGRATIONS_VERIFY_FAILED':
      return EXIT_CODES.invalid;
    case 'GANTRY_MIGRATIONS_CONTRACT_REFUSED':
      return EXIT_CODES.contractRefused;
    case 'GANTRY_MIGRATIONS_INVALID_OPTION':
    case 'GANTRY_MIGRATIONS_INVALID_VERSION':
    case 'GANTRY_MIGRATIONS_INVALID_FILE':
    case 'GANTRY_MIGRATIONS_DUPLICATE_VERSION':
    case 'GANTRY_MIGRATIONS_TARGET_NOT_FOUND':
    case 'GANTRY_MIGRATIONS_REASON_REQUIRED':
    case 'GANTRY_MIGRATIONS_BASELINE_REFUSED':
    case 'GANTRY_MIGRATIONS_BACKFILL_NOT_FOUND':
      return EXIT_CODES.usage;
    case 'GANTRY_MIGRATIONS_ABORTED':
      return EXIT_CODES.interrupted;
    case 'GANTRY_MIGRATIONS_MIGRATION_FAILED':
    case 'GANTRY_MIGRATIONS_BACKFILL_FAILED':
      return EXIT_CODES.failure;
  }
}

interface Io {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  readonly env: NodeJS.ProcessEnv;
}

const intOption = (value: string | undefined, name: string): number | undefined => {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0) throw new UsageError(`--${name} expects a number ≥ 0, got "${value}"`);
  return parsed;
};

const formatFinding = (finding: LintFinding): string =>
  `  ${finding.severity === 'error' ? 'error  ' : 'warning'} ${finding.file ?? ''}:${finding.line} ${finding.rule}: ${finding.message}\n           fix: ${finding.safeAlternative}`;

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function main(
  argv: readonly string[],
  io: Io = { stdout: process.stdout, stderr: process.stderr, env: process.env },
): Promise<number> {
  const out = (text: string): void => {
    io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  };
  let json = argv.includes('--json');
  let command = '';
  try {
    const parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        url: { type: 'string' },
        dir: { type: 'string' },
        schema: { type: 'string' },
        'lock-timeout-ms': { type: 'string' },
        'statement-timeout-ms': { type: 'string' },
        'lock-retries': { type: 'string' },
        'lock-wait-ms': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        target: { type: 'string' },
        phase: { type: 'string' },
        force: { type: 'boolean' },
        reason: { type: 'string' },
        rules: { type: 'boolean' },
        'no-runner-timeouts': { type: 'boolean' },
        from: { type: 'string' },
        to: { type: 'string' },
        version: { type: 'string' },
        description: { type: 'string' },
      },
    });
    const values = parsed.values;
    json = values.json === true;
    const [first, ...rest] = parsed.positionals;
    command = first ?? '';
    if (command === '' || command === 'help') {
      out(HELP);
      return command === '' && values.help !== true ? EXIT_CODES.usage : EXIT_CODES.ok;
    }
    if (!(command in ALLOWED)) throw new UsageError(`Unknown command "${command}". Run gantry-migrate --help.`);
    if (values.help === true) {
      out(`${COMMAND_HELP[command] ?? ''}\n\nGlobal options and exit codes: gantry-migrate --help`);
      return EXIT_CODES.ok;
    }
    for (const key of Object.keys(values)) {
      if (!GLOBAL.includes(key) && !(ALLOWED[command] ?? []).includes(key))
        throw new UsageError(`--${key} does not apply to ${command}`);
    }
    if (values.phase !== undefined && !MIGRATION_PHASES.includes(values.phase as MigrationPhase)) {
      throw new UsageError(`--phase must be one of ${MIGRATION_PHASES.join(', ')}, got "${values.phase}"`);
    }
    if (values.force === true && (values.reason ?? '').trim() === '')
      throw new UsageError('--force needs --reason "<why it is safe>"');

    // lint --rules and lint of explicit files need no database.
    if (command === 'lint' && values.rules === true) {
      if (json) out(JSON.stringify({ rules: LINT_RULES }, null, 2));
      else
        for (const rule of LINT_RULES)
          out(
            `${rule.id} (${rule.severity}${rule.destructive ? ', destructive' : ''})\n  ${rule.summary}\n  why: ${rule.explanation}\n  instead: ${rule.safeAlternative}\n`,
          );
      return EXIT_CODES.ok;
    }
    if (command === 'lint' && rest.length > 0) {
      const results = [];
      for (const file of rest) {
        const result = await lintSql(readFileSync(file, 'utf8'), {
          file,
          assumeRunnerTimeouts: values['no-runner-timeouts'] !== true,
        });
        results.push({
          file,
          findings: result.findings,
          suppressed: result.suppressed,
          errors: result.errors,
          warnings: result.warnings,
        });
      }
      return printLint(results, json, out);
    }
    if (command !== 'backfill' && rest.length > 0) throw new UsageError(`Unexpected argument "${rest[0] ?? ''}"`);

    const fromEnv = migratorOptionsFromEnv(io.env);
    const url = values.url ?? fromEnv.connectionString;
    if (command !== 'lint' && url === undefined)
      throw new UsageError('No database: pass --url or set GANTRY_MIGRATIONS_URL');
    const options: MigratorOptions = {
      ...fromEnv,
      directory: values.dir ?? fromEnv.directory ?? './migrations',
      connectionString: url ?? 'postgres://unused',
      ...(values.schema === undefined ? {} : { schema: values.schema }),
      ...optional('lockTimeoutMs', intOption(values['lock-timeout-ms'], 'lock-timeout-ms')),
      ...optional('statementTimeoutMs', intOption(values['statement-timeout-ms'], 'statement-timeout-ms')),
      ...optional('lockRetries', intOption(values['lock-retries'], 'lock-retries')),
      ...optional('advisoryLockWaitMs', intOption(values['lock-wait-ms'], 'lock-wait-ms')),
    };
    const reporter = createProgressReporter({ stream: io.stderr, json: json || io.stderr.isTTY !== true });
    const migrator = createMigrator({ ...options, onProgress: reporter.update });
    const controller = new AbortController();
    const onSignal = (): void => controller.abort(new Error('interrupted'));
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      return await runCommand(migrator, command, rest, values, json, out, controller.signal, reporter);
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      reporter.done();
    }
  } catch (error) {
    let code: number = EXIT_CODES.failure;
    let payload: Record<string, unknown>;
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true) {
      code = EXIT_CODES.usage;
      payload = { code: 'USAGE', message: (error as Error).message };
    } else if (isMigrationError(error)) {
      code = exitCodeFor(error.code);
      payload = {
        code: error.code,
        message: error.message,
        ...(error.version === undefined ? {} : { version: error.version }),
        ...(error.details === undefined ? {} : { details: error.details }),
      };
    } else {
      payload = { code: 'ERROR', message: error instanceof Error ? error.message : String(error) };
    }
    if (json) out(JSON.stringify({ ok: false, command, error: payload }, null, 2));
    else io.stderr.write(`gantry-migrate${command === '' ? '' : ` ${command}`}: ${String(payload['message'])}\n`);
    return code;
  }
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function printLint(
  results: readonly {
    file: string;
    findings: readonly LintFinding[];
    errors: number;
    warnings: number;
    suppressed: readonly unknown[];
  }[],
  json: boolean,
  out: (text: string) => void,
): number {
  const errors = results.reduce((sum, result) => sum + result.errors, 0);
  const warnings = results.reduce((sum, result) => sum + result.warnings, 0);
  if (json) out(JSON.stringify({ ok: errors === 0, errors, warnings, files: results }, null, 2));
  else {
    for (const result of results) {
      if (result.findings.length === 0) continue;
      out(result.file);
      for (const finding of result.findings) out(formatFinding(finding));
    }
    out(`${results.length} file(s): ${errors} error(s), ${warnings} warning(s)`);
  }
  return errors > 0 ? EXIT_CODES.invalid : EXIT_CODES.ok;
}

type Values = Record<string, string | boolean | undefined>;

async function runCommand(
  migrator: Migrator,
  command: string,
  rest: readonly string[],
  values: Values,
  json: boolean,
  out: (text: string) => void,
  signal: AbortSignal,
  reporter: { done(): void },
): Promise<number> {
  const str = (key: string): string | undefined => (typeof values[key] === 'string' ? values[key] : undefined);
  const target = str('target');
  const emit = (document: unknown, human: () => void): void => {
    if (json) out(JSON.stringify(document, null, 2));
    else human();
  };
  const printApplied = (report: Awaited<ReturnType<Migrator['migrate']>>): void => {
    reporter.done();
    emit({ ok: true, command, ...report }, () => {
      for (const step of report.applied) {
        out(
          `applied ${step.version} ${step.phase.padEnd(8)} ${step.description} (${Math.round(step.durationMs)} ms${step.attempts > 1 ? `, ${step.attempts} attempts` : ''}${step.rows === undefined ? '' : `, ${step.rows} rows`}${step.forcedReason === undefined ? '' : `, FORCED: ${step.forcedReason}`})`,
        );
      }
      if (report.applied.length === 0) out('nothing to apply');
      if (report.stoppedAt !== null) out(`stopped before ${report.stoppedAt.version} (${report.stoppedAt.phase})`);
      for (const warning of report.warnings) out(formatFinding(warning));
      out(`schema version: ${report.current ?? 'none'}`);
    });
  };
  const phase = str('phase') as MigrationPhase | undefined;
  const base = { ...(target === undefined ? {} : { target }), signal };
  switch (command) {
    case 'migrate': {
      const report = await migrator.migrate({
        ...base,
        ...(phase === undefined ? {} : { phase }),
        ...(values['force'] === true ? { force: true, reason: str('reason') ?? '' } : {}),
      });
      printApplied(report);
      return EXIT_CODES.ok;
    }
    case 'contract': {
      const report = await migrator.contract({
        ...base,
        ...(values['force'] === true ? { force: true, reason: str('reason') ?? '' } : {}),
      });
      printApplied(report);
      return EXIT_CODES.ok;
    }
    case 'backfill': {
      const sub = rest[0] ?? '';
      if (sub === 'status') {
        const status = await migrator.backfillStatus();
        emit({ ok: true, command: 'backfill status', backfills: status }, () => {
          if (status.length === 0) out('no backfills');
          for (const item of status) {
            out(
              `${item.version} ${item.table} ${item.state} ${item.rowsDone}/${item.rowsTotal ?? '?'} rows, ${Math.round(item.rowsPerSecond ?? 0)} rows/s${item.mismatches === null ? '' : `, ${item.mismatches} mismatches`}${item.lastError === null ? '' : `, error: ${item.lastError}`}`,
            );
          }
        });
        return EXIT_CODES.ok;
      }
      if (sub !== 'run' && sub !== 'resume') throw new UsageError('backfill needs run, resume or status');
      const report = sub === 'run' ? await migrator.backfillRun(base) : await migrator.backfillResume(base);
      printApplied(report);
      return EXIT_CODES.ok;
    }
    case 'info': {
      const info = await migrator.info();
      emit({ ok: true, command, ...info }, () => {
        out(
          `schema version: ${info.current ?? 'none'}   phase: ${info.phase ?? '-'}   last contract: ${info.lastContract ?? '-'}   pending: ${info.pending}   failed: ${info.failed.length}`,
        );
        for (const migration of info.migrations) {
          out(
            `  ${migration.version.padEnd(10)} ${migration.phase.padEnd(8)} ${migration.state.padEnd(17)} ${migration.description}${migration.installedOn === null ? '' : `  (${migration.installedOn}, ${migration.executionMs ?? 0} ms)`}`,
          );
        }
        for (const backfill of info.backfills)
          out(
            `  backfill ${backfill.version}: ${backfill.state} ${backfill.rowsDone}/${backfill.rowsTotal ?? '?'} rows`,
          );
      });
      return EXIT_CODES.ok;
    }
    case 'validate': {
      const report = await migrator.validate();
      emit({ command, ...report }, () => {
        for (const problem of report.problems) out(`  ${problem.state}: ${problem.message}`);
        out(report.ok ? 'valid' : `${report.problems.length} problem(s)`);
      });
      return report.ok ? EXIT_CODES.ok : EXIT_CODES.invalid;
    }
    case 'lint': {
      const results = await migrator.lint();
      return printLint(
        results.map((result) => ({
          file: result.script,
          findings: result.findings,
          suppressed: result.suppressed,
          errors: result.errors,
          warnings: result.warnings,
        })),
        json,
        out,
      );
    }
    case 'plan': {
      const report = await migrator.plan({
        ...(target === undefined ? {} : { target }),
        ...(phase === undefined ? {} : { phase }),
      });
      emit({ ok: true, command, ...report }, () => {
        out(`schema version: ${report.current ?? 'none'}`);
        if (report.migrations.length === 0) out('nothing to apply');
        for (const migration of report.migrations) {
          out(
            `${migration.version} ${migration.phase} ${migration.description}${migration.transactional ? '' : ' [no transaction]'}`,
          );
          for (const statement of migration.statements) {
            out(
              `  line ${statement.line}: ${statement.lock.padEnd(22)} blocks ${statement.blocks.padEnd(16)} ${statement.tables.map((table) => `${table.name}${table.estimatedRows === null ? '' : ` (~${table.estimatedRows} rows)`}`).join(', ')}${statement.rewrite ? ' REWRITE' : ''}  ${statement.sql.split('\n')[0] ?? ''}`,
            );
          }
          if (migration.backfill !== undefined)
            out(
              `  backfill ${migration.backfill.table}: ~${migration.backfill.estimatedRows ?? '?'} rows, ~${migration.backfill.estimatedSeconds === null ? '?' : Math.ceil(migration.backfill.estimatedSeconds)} s`,
            );
          for (const client of migration.blockingClients ?? [])
            out(
              `  contract would be refused: ${client.service}@${client.version} supports ≤ ${client.schemaSupports.max}`,
            );
          for (const finding of migration.findings) out(formatFinding(finding));
        }
        if (report.stoppedAt !== null) out(`stops before ${report.stoppedAt.version} (${report.stoppedAt.phase})`);
      });
      return EXIT_CODES.ok;
    }
    case 'clients': {
      const clients = await migrator.liveClients();
      emit({ ok: true, command, clients }, () => {
        if (clients.length === 0) out('no live clients');
        for (const client of clients)
          out(
            `${client.service}@${client.version} ${client.instance} schema ${client.schemaSupports.min}..${client.schemaSupports.max} (${client.source}, ${Math.round(client.ageSeconds)} s)`,
          );
      });
      return EXIT_CODES.ok;
    }
    case 'compat': {
      const from = str('from');
      const to = str('to');
      if (from === undefined || to === undefined) throw new UsageError('compat needs --from and --to');
      const report = await migrator.compat({ from, to });
      emit({ command, ...report }, () => {
        out(
          `${report.from} → ${report.to}: ${report.migrations.length} migration(s), estimated ${report.estimatedSeconds === null ? '?' : Math.ceil(report.estimatedSeconds)} s`,
        );
        for (const warning of report.warnings) out(`  ${warning.code}: ${warning.message}`);
        out(report.ok ? 'ok' : 'not ok');
      });
      return report.ok ? EXIT_CODES.ok : EXIT_CODES.invalid;
    }
    case 'baseline': {
      const version = str('version');
      if (version === undefined) throw new UsageError('baseline needs --version');
      const description = str('description');
      const reason = str('reason');
      const report = await migrator.baseline({
        version,
        ...(description === undefined ? {} : { description }),
        ...(reason === undefined ? {} : { reason }),
      });
      emit({ ok: true, command, ...report }, () => out(`baselined at ${report.version}`));
      return EXIT_CODES.ok;
    }
    case 'repair': {
      const reason = str('reason');
      if (reason === undefined || reason.trim() === '') throw new UsageError('repair needs --reason');
      const report = await migrator.repair({ reason });
      emit({ ok: true, command, ...report }, () => {
        out(`removed failed: ${report.removedFailed.join(', ') || 'none'}`);
        out(`realigned checksums: ${report.realignedChecksums.map((item) => item.version).join(', ') || 'none'}`);
        out(`reset backfills: ${report.resetBackfills.join(', ') || 'none'}`);
      });
      return EXIT_CODES.ok;
    }
    default:
      throw new UsageError(`Unknown command "${command}"`);
  }
}

// Run when executed directly (not when imported by tests).
function isMainModule(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}
const invokedDirectly = isMainModule();
if (invokedDirectly) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`gantry-migrate: ${String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
