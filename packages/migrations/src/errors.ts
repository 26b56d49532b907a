// One error class for the package, with stable codes (README "Error codes" lists every one; a test keeps them in
// step) and the exit code the CLI maps each to.

/** Every code a {@link MigrationError} can carry. */
export const MIGRATION_ERROR_CODES = [
  'GANTRY_MIGRATIONS_INVALID_OPTION',
  'GANTRY_MIGRATIONS_INVALID_VERSION',
  'GANTRY_MIGRATIONS_INVALID_FILE',
  'GANTRY_MIGRATIONS_DUPLICATE_VERSION',
  'GANTRY_MIGRATIONS_LOCK_NOT_ACQUIRED',
  'GANTRY_MIGRATIONS_LOCK_TIMEOUT',
  'GANTRY_MIGRATIONS_MIGRATION_FAILED',
  'GANTRY_MIGRATIONS_VALIDATION_FAILED',
  'GANTRY_MIGRATIONS_LINT_FAILED',
  'GANTRY_MIGRATIONS_CONTRACT_REFUSED',
  'GANTRY_MIGRATIONS_BACKFILL_FAILED',
  'GANTRY_MIGRATIONS_BACKFILL_NOT_FOUND',
  'GANTRY_MIGRATIONS_VERIFY_FAILED',
  'GANTRY_MIGRATIONS_TARGET_NOT_FOUND',
  'GANTRY_MIGRATIONS_BASELINE_REFUSED',
  'GANTRY_MIGRATIONS_REASON_REQUIRED',
  'GANTRY_MIGRATIONS_ABORTED',
] as const;

/** A stable error code, `GANTRY_MIGRATIONS_<PROBLEM>`. */
export type MigrationErrorCode = (typeof MIGRATION_ERROR_CODES)[number];

/** Options of {@link MigrationError}. */
export interface MigrationErrorOptions {
  readonly cause?: unknown;
  /** The migration version the error is about, when there is one. */
  readonly version?: string;
  /** Structured details for `--json` output (never secrets). */
  readonly details?: Readonly<Record<string, unknown>>;
}

/**
 * The one error type of `@gantry/migrations`. `code` is stable across releases; `cause` keeps the underlying
 * error (a pg error keeps its SQLSTATE there).
 * @example
 * try { await migrator.migrate(); } catch (error) {
 *   if (isMigrationError(error) && error.code === 'GANTRY_MIGRATIONS_LOCK_NOT_ACQUIRED') retryLater();
 * }
 */
export class MigrationError extends Error {
  readonly code: MigrationErrorCode;
  readonly version: string | undefined;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: MigrationErrorCode, message: string, options: MigrationErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MigrationError';
    this.code = code;
    this.version = options.version;
    this.details = options.details;
  }
}

/**
 * Whether `value` is a {@link MigrationError} (also across duplicated copies of the package).
 * @example
 * if (isMigrationError(error)) console.error(error.code);
 */
export function isMigrationError(value: unknown): value is MigrationError {
  return (
    value instanceof MigrationError ||
    (value instanceof Error &&
      value.name === 'MigrationError' &&
      String((value as { code?: unknown }).code).startsWith('GANTRY_MIGRATIONS_'))
  );
}

/** Renders an option value for an error message without dumping large objects. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) {
    return String(value);
  }
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

/** Throws the standard invalid-option error. */
export function invalidOption(name: string, expected: string, received: unknown): never {
  throw new MigrationError(
    'GANTRY_MIGRATIONS_INVALID_OPTION',
    `Expected \`${name}\` to be ${expected}, got ${describeValue(received)}`,
  );
}
