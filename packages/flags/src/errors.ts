/** Every stable error code of @gantry/flags. The README has a table of them (a unit test keeps both in step). */
export const FLAGS_ERROR_CODES = [
  'GANTRY_FLAGS_INVALID_OPTIONS',
  'GANTRY_FLAGS_INVALID_DEFINITION',
  'GANTRY_FLAGS_READY_TIMEOUT',
  'GANTRY_FLAGS_UNAUTHORIZED',
  'GANTRY_FLAGS_CLOSED',
  'GANTRY_FLAGS_BOOTSTRAP_INVALID',
] as const;

/** One of {@link FLAGS_ERROR_CODES}. */
export type FlagsErrorCode = (typeof FLAGS_ERROR_CODES)[number];

/**
 * The one error class of @gantry/flags. `code` is stable across versions; `cause` keeps the underlying error.
 * Messages never hold the API token.
 * @example
 * try { await flags.ready({ timeoutMs: 5_000 }); }
 * catch (error) { if (isFlagsError(error) && error.code === 'GANTRY_FLAGS_UNAUTHORIZED') rotateToken(); }
 */
export class FlagsError extends Error {
  readonly code: FlagsErrorCode;

  constructor(code: FlagsErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FlagsError';
    this.code = code;
  }
}

/**
 * Whether `value` is a {@link FlagsError} (optionally with the given code). Works across copies of the package.
 * @example
 * if (isFlagsError(error, 'GANTRY_FLAGS_READY_TIMEOUT')) logger.warn('starting with defaults');
 */
export function isFlagsError(value: unknown, code?: FlagsErrorCode): value is FlagsError {
  if (!(value instanceof Error) || value.name !== 'FlagsError') return false;
  const actual = (value as { code?: unknown }).code;
  if (typeof actual !== 'string' || !(FLAGS_ERROR_CODES as readonly string[]).includes(actual)) return false;
  return code === undefined || actual === code;
}
