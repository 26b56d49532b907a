// One error class for the package, with stable codes that the README lists (a unit test keeps them in sync).

/** Every code a {@link HealthError} can carry. */
export const HEALTH_ERROR_CODES = [
  'GANTRY_HEALTH_INVALID_OPTION',
  'GANTRY_HEALTH_INVALID_CHECK',
  'GANTRY_HEALTH_DUPLICATE_NAME',
  'GANTRY_HEALTH_CLOSED',
  'GANTRY_HEALTH_CHECK_TIMEOUT',
  'GANTRY_HEALTH_HOOK_TIMEOUT',
  'GANTRY_HEALTH_SERVER_FAILED',
] as const;

/** A stable code naming what went wrong; see the package README for each. */
export type HealthErrorCode = (typeof HEALTH_ERROR_CODES)[number];

/**
 * The one error class of `@gantry/health`. `code` is stable across releases; `cause` keeps the original error.
 * @example
 * try { createHealth({ checkTimeoutMs: -1 }); } catch (error) { if (isHealthError(error)) console.log(error.code); }
 */
export class HealthError extends Error {
  readonly code: HealthErrorCode;

  constructor(code: HealthErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HealthError';
    this.code = code;
  }
}

/**
 * Whether `value` is a {@link HealthError}, optionally with the given code.
 * @example
 * if (isHealthError(error, 'GANTRY_HEALTH_DUPLICATE_NAME')) { ... }
 */
export function isHealthError(value: unknown, code?: HealthErrorCode): value is HealthError {
  return value instanceof HealthError && (code === undefined || value.code === code);
}
