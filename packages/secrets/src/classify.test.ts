import { describe, expect, it } from 'vitest';
import { classifyVaultError } from './classify.ts';
import { RESPONSE_META, parseRetryAfter } from './transport.ts';

const apiError = (statusCode: number, errors: string[], retryAfterMs?: number) => {
  const body: Record<string, unknown> = { errors };
  Object.defineProperty(body, RESPONSE_META, { value: { statusCode, retryAfterMs } });
  return Object.assign(new Error(errors[0] ?? `Status ${statusCode}`), { response: { statusCode, body } });
};

describe('classifyVaultError', () => {
  it.each([
    [apiError(503, ['Vault is sealed']), 'GANTRY_SECRETS_VAULT_UNAVAILABLE', 'retryable'],
    [
      apiError(429, ['request path "x": rate limit quota exceeded'], 3_000),
      'GANTRY_SECRETS_VAULT_UNAVAILABLE',
      'retryable',
    ],
    [apiError(412, ['required index state not present']), 'GANTRY_SECRETS_VAULT_UNAVAILABLE', 'retryable'],
    [apiError(502, ['upstream rate limited']), 'GANTRY_SECRETS_VAULT_UNAVAILABLE', 'retryable'],
    [
      apiError(403, ['2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n']),
      'GANTRY_SECRETS_AUTH_FAILED',
      'auth',
    ],
    [apiError(403, ['missing client token']), 'GANTRY_SECRETS_AUTH_FAILED', 'auth'],
    [apiError(400, ['missing client token']), 'GANTRY_SECRETS_AUTH_FAILED', 'auth'],
    [apiError(403, ['1 error occurred:\n\t* permission denied\n\n']), 'GANTRY_SECRETS_PERMISSION_DENIED', 'fatal'],
    [apiError(400, ['lease not found']), 'GANTRY_SECRETS_LEASE_INVALID', 'lease-terminal'],
    [apiError(400, ['lease not found or lease is not renewable']), 'GANTRY_SECRETS_LEASE_INVALID', 'lease-terminal'],
    [apiError(400, ['lease expired']), 'GANTRY_SECRETS_LEASE_INVALID', 'lease-terminal'],
    [apiError(400, ['unknown role: app']), 'GANTRY_SECRETS_VAULT_REQUEST_FAILED', 'fatal'],
    [apiError(404, []), 'GANTRY_SECRETS_NOT_FOUND', 'fatal'],
    [
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8200'), { code: 'ECONNREFUSED' }),
      'GANTRY_SECRETS_VAULT_UNAVAILABLE',
      'retryable',
    ],
    [
      Object.assign(new Error('timeout of 200ms exceeded'), { code: 'ECONNABORTED', isAxiosError: true }),
      'GANTRY_SECRETS_VAULT_UNAVAILABLE',
      'retryable',
    ],
    [new Error('socket hang up'), 'GANTRY_SECRETS_VAULT_UNAVAILABLE', 'retryable'],
    [
      Object.assign(new Error('Invalid type: string (expected integer)'), { name: 'ValidationError' }),
      'GANTRY_SECRETS_VAULT_REQUEST_FAILED',
      'fatal',
    ],
  ])('%s → %s (%s)', (error, code, kind) => {
    const classified = classifyVaultError(error, 'op', 'some/path');
    expect(classified).toMatchObject({ code, kind });
    expect(classified.cause).toBe(error);
    expect(classified.message).toContain('some/path');
  });

  it('keeps the status and the Retry-After delay, and folds multi-error text onto one line', () => {
    const classified = classifyVaultError(
      apiError(429, ['1 error occurred:\n\t* slow down\n\n'], 3_000),
      'renew_lease',
      'sys/leases/renew',
    );
    expect(classified).toMatchObject({ status: 429, retryAfterMs: 3_000 });
    expect(classified.message).toBe('Vault renew_lease (sys/leases/renew) answered 429: slow down');
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates', () => {
    expect(parseRetryAfter('3')).toBe(3_000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6_000);
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
  });
});
