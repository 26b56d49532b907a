// One error class for the package, with stable codes. Messages never carry a secret: they name paths, statuses,
// options and the text Vault itself returned (which holds no credential).

/** Every error code `@gantry/secrets` throws or emits. */
export const SECRETS_ERROR_CODES = [
  'GANTRY_SECRETS_INVALID_OPTIONS',
  'GANTRY_SECRETS_VAULT_UNAVAILABLE',
  'GANTRY_SECRETS_VAULT_TIMEOUT',
  'GANTRY_SECRETS_LEASE_INVALID',
  'GANTRY_SECRETS_AUTH_FAILED',
  'GANTRY_SECRETS_PERMISSION_DENIED',
  'GANTRY_SECRETS_NOT_FOUND',
  'GANTRY_SECRETS_VAULT_REQUEST_FAILED',
  'GANTRY_SECRETS_CREDENTIALS_REJECTED',
  'GANTRY_SECRETS_STARTUP_FAILED',
  'GANTRY_SECRETS_CLOSED',
] as const;

/** A stable error code, e.g. `GANTRY_SECRETS_VAULT_UNAVAILABLE`. */
export type SecretsErrorCode = (typeof SECRETS_ERROR_CODES)[number];

/**
 * How a Vault failure should be handled:
 * - `retryable`: network error, timeout, 412, 429, 5xx, sealed — retry with backoff (honour `retryAfterMs`);
 * - `lease-terminal`: the lease is gone or cannot be renewed — obtain new credentials now;
 * - `auth`: the token is missing, expired or revoked — log in again, then retry once;
 * - `fatal`: retrying the same request will not help (policy denial, unknown role, bad request, closed client).
 */
export type FailureKind = 'retryable' | 'lease-terminal' | 'auth' | 'fatal';

/** Options of {@link SecretsError}. */
export interface SecretsErrorOptions {
  readonly cause?: unknown;
  readonly kind?: FailureKind;
  /** HTTP status Vault answered with, when it answered. */
  readonly status?: number;
  /** Delay the server asked for (`Retry-After`), in milliseconds. */
  readonly retryAfterMs?: number;
}

/**
 * The base error of `@gantry/secrets`. `code` is stable; `kind` tells how to react; `cause` keeps the original
 * error (node-vault's, the transport's or pg's).
 * @example
 * try { await vault.kv().get('app/config'); }
 * catch (error) { if (isSecretsError(error) && error.code === 'GANTRY_SECRETS_NOT_FOUND') useDefaults(); }
 */
export class SecretsError extends Error {
  readonly code: SecretsErrorCode;
  readonly kind: FailureKind;
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(code: SecretsErrorCode, message: string, options: SecretsErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SecretsError';
    this.code = code;
    this.kind = options.kind ?? 'fatal';
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/**
 * Tells whether `value` is a {@link SecretsError} (also across copies of the package).
 * @example
 * if (isSecretsError(error) && error.kind === 'retryable') scheduleRetry(error.retryAfterMs);
 */
export function isSecretsError(value: unknown): value is SecretsError {
  return (
    value instanceof SecretsError ||
    (value instanceof Error &&
      typeof (value as { code?: unknown }).code === 'string' &&
      (SECRETS_ERROR_CODES as readonly string[]).includes((value as unknown as { code: string }).code) &&
      typeof (value as { kind?: unknown }).kind === 'string')
  );
}

/** Builds the uniform ``Expected `x` to be …, got …`` construction error. */
export function invalidOption(name: string, expected: string, received: unknown): SecretsError {
  return new SecretsError(
    'GANTRY_SECRETS_INVALID_OPTIONS',
    `Expected \`${name}\` to be ${expected}, got ${describeValue(received)}`,
  );
}

function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'function') return 'a function';
  if (value === null || value === undefined || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}
