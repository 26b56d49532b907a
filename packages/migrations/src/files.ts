// Migration files on disk: `V<version>__<description>.sql` (phase from a `-- gantry:phase` header) and
// `V<version>__<description>.ts` (a backfill step). Checksums are SHA-256 of the text with line endings and a
// byte-order mark normalised, so a checkout on Windows or an editor's BOM does not look like tampering.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { MigrationError } from './errors.ts';
import { compareVersions, normalizeVersion } from './version.ts';

/** The three phases of a zero-downtime change. */
export type MigrationPhase = 'expand' | 'backfill' | 'contract';

/** The phases in their order of a rollout. */
export const MIGRATION_PHASES: readonly MigrationPhase[] = ['expand', 'backfill', 'contract'];

/** A `-- gantry:allow <rule> <reason>` suppression found in a SQL file. */
export interface AllowDirective {
  readonly rule: string;
  readonly reason: string;
  /** 1-based line of the comment. */
  readonly line: number;
  /** UTF-8 byte offset of the comment: it applies to the first statement that starts after it. */
  readonly offset: number;
}

/** One migration file. */
export interface MigrationFile {
  /** Canonical version ("1.2.10"). */
  readonly version: string;
  /** Description from the file name, underscores as spaces. */
  readonly description: string;
  readonly phase: MigrationPhase;
  /** `sql` for SQL files, `backfill` for TypeScript/JavaScript backfill steps. */
  readonly kind: 'sql' | 'backfill';
  /** Path relative to the migrations directory, with `/` separators. */
  readonly script: string;
  /** Absolute path. */
  readonly path: string;
  /** `sha256:<hex>` of the normalised text. */
  readonly checksum: string;
  /** The file's text with normalised line endings. */
  readonly source: string;
  /** Whether the SQL file declared its phase (files without a header default to `expand`). */
  readonly declaresPhase: boolean;
  /** `-- gantry:no-transaction`: run every statement on its own even if all could share a transaction. */
  readonly noTransaction: boolean;
  readonly allows: readonly AllowDirective[];
}

const FILE_PATTERN = /^V(\d+(?:[._]\d+)*)__([^/\\]+?)\.(sql|ts|mts|js|mjs)$/;
const PHASE_PATTERN = /^[ \t]*--[ \t]*gantry:phase[ \t]+(\S+)[ \t]*$/m;
const NO_TRANSACTION_PATTERN = /^[ \t]*--[ \t]*gantry:no-transaction[ \t]*$/m;
const ALLOW_PATTERN = /^[ \t]*--[ \t]*gantry:allow\b(.*)$/gm;

/** Normalises line endings and drops a byte-order mark. */
export function normalizeSource(text: string): string {
  return text.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');
}

/**
 * The checksum recorded in the history table: `sha256:` and the hex digest of the normalised text.
 * @example
 * checksumOf('SELECT 1;\r\n') === checksumOf('SELECT 1;\n'); // true
 */
export function checksumOf(text: string): string {
  return `sha256:${createHash('sha256').update(normalizeSource(text), 'utf8').digest('hex')}`;
}

function listFiles(directory: string): string[] {
  const found: string[] = [];
  const visit = (folder: string): void => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      if (entry.name.startsWith('.') || entry.name === 'node_modules') continue;
      const path = join(folder, entry.name);
      if (entry.isDirectory()) visit(path);
      else if (entry.isFile()) found.push(path);
    }
  };
  visit(directory);
  return found;
}

/** Finds the `-- gantry:allow` directives of a SQL text. */
export function parseAllowDirectives(source: string): AllowDirective[] {
  const allows: AllowDirective[] = [];
  for (const match of source.matchAll(ALLOW_PATTERN)) {
    const [rule = '', ...reason] = (match[1] ?? '').trim().split(/\s+/);
    const prefix = source.slice(0, match.index);
    allows.push({
      rule,
      reason: reason.join(' '),
      line: prefix.split('\n').length,
      offset: Buffer.byteLength(prefix, 'utf8'),
    });
  }
  return allows;
}

/**
 * Reads one migration file.
 * @throws MigrationError `GANTRY_MIGRATIONS_INVALID_FILE` for a malformed name or phase header.
 */
export function readMigrationFile(path: string, root: string): MigrationFile {
  const script = relative(root, path).split(/[\\/]/).join('/');
  const name = script.split('/').pop() ?? script;
  const match = FILE_PATTERN.exec(name);
  if (match === null) {
    throw new MigrationError(
      'GANTRY_MIGRATIONS_INVALID_FILE',
      `Migration file "${script}" must be named V<version>__<description>.sql (or .ts for a backfill step)`,
    );
  }
  const version = normalizeVersion(match[1]!);
  const description = match[2]!.replace(/_/g, ' ').trim();
  const extension = match[3]!;
  const source = normalizeSource(readFileSync(path, 'utf8'));
  const kind = extension === 'sql' ? 'sql' : 'backfill';
  let phase: MigrationPhase = kind === 'sql' ? 'expand' : 'backfill';
  const header = PHASE_PATTERN.exec(source);
  if (kind === 'sql' && header !== null) {
    const declared = header[1]!;
    if (declared !== 'expand' && declared !== 'contract') {
      throw new MigrationError(
        'GANTRY_MIGRATIONS_INVALID_FILE',
        `"${script}" declares phase "${declared}"; a SQL migration is "expand" or "contract" ` +
          `(backfill steps are TypeScript files exporting defineBackfill())`,
        { version },
      );
    }
    phase = declared;
  }
  return {
    version,
    description,
    phase,
    kind,
    script,
    path,
    checksum: checksumOf(source),
    source,
    declaresPhase: kind === 'backfill' || header !== null,
    noTransaction: kind === 'sql' && NO_TRANSACTION_PATTERN.test(source),
    allows: kind === 'sql' ? parseAllowDirectives(source) : [],
  };
}

/**
 * Reads every migration file under `directory` (recursively), sorted by version.
 * @throws MigrationError `GANTRY_MIGRATIONS_INVALID_FILE` when the folder is missing or a file is malformed,
 *   `GANTRY_MIGRATIONS_DUPLICATE_VERSION` when two files share a version ("1.2" and "1.2.0" count as one).
 * @example
 * const files = loadMigrationFiles('./migrations');
 */
export function loadMigrationFiles(directory: string): MigrationFile[] {
  const root = resolve(directory);
  let isDirectory: boolean;
  try {
    isDirectory = statSync(root).isDirectory();
  } catch (error) {
    throw new MigrationError('GANTRY_MIGRATIONS_INVALID_FILE', `Migrations directory "${root}" does not exist`, {
      cause: error,
    });
  }
  if (!isDirectory) {
    throw new MigrationError('GANTRY_MIGRATIONS_INVALID_FILE', `"${root}" is not a directory`);
  }
  const files = listFiles(root)
    .filter((path) => /\.(sql|ts|mts|js|mjs)$/.test(path) && !/\.(test|d)\.m?ts$/.test(path))
    .filter((path) => /^V/.test(path.split(/[\\/]/).pop() ?? ''))
    .map((path) => readMigrationFile(path, root))
    .sort((a, b) => compareVersions(a.version, b.version));
  for (let index = 1; index < files.length; index += 1) {
    const previous = files[index - 1]!;
    const current = files[index]!;
    if (compareVersions(previous.version, current.version) === 0) {
      throw new MigrationError(
        'GANTRY_MIGRATIONS_DUPLICATE_VERSION',
        `Version ${current.version} is used by both "${previous.script}" and "${current.script}"`,
        { version: current.version },
      );
    }
  }
  return files;
}
