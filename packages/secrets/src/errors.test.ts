import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SECRETS_ERROR_CODES, SecretsError, invalidOption, isSecretsError } from './errors.ts';

describe('SecretsError', () => {
  it('documents every code in the README, and the README lists no other', () => {
    const readme = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Error codes'), readme.indexOf('## Limitations'));
    const documented = new Set(section.match(/^\| `GANTRY_SECRETS_[A-Z_]+`/gm)?.map((cell) => cell.slice(3, -1)));
    const source = readFileSync(join(import.meta.dirname, 'errors.ts'), 'utf8');
    const declared = new Set(source.match(/'GANTRY_SECRETS_[A-Z_]+'/g)?.map((code) => code.slice(1, -1)));
    expect([...documented].sort()).toEqual([...declared].sort());
    expect([...declared].sort()).toEqual([...SECRETS_ERROR_CODES].sort());
  });

  it('keeps code, kind, status, Retry-After and cause', () => {
    const cause = new Error('socket hang up');
    const error = new SecretsError('GANTRY_SECRETS_VAULT_UNAVAILABLE', 'down', {
      cause,
      kind: 'retryable',
      status: 429,
      retryAfterMs: 2_000,
    });
    expect(error).toMatchObject({
      code: 'GANTRY_SECRETS_VAULT_UNAVAILABLE',
      kind: 'retryable',
      status: 429,
      retryAfterMs: 2_000,
      cause,
    });
    expect(isSecretsError(error)).toBe(true);
    expect(isSecretsError(cause)).toBe(false);
    expect(isSecretsError(Object.assign(new Error('x'), { code: 'GANTRY_SECRETS_CLOSED', kind: 'fatal' }))).toBe(true);
    expect(new SecretsError('GANTRY_SECRETS_CLOSED', 'closed').kind).toBe('fatal');
  });

  it('names the option, the expectation and the received value', () => {
    expect(invalidOption('timeoutMs', 'a finite number ≥ 0', 'abc').message).toBe(
      'Expected `timeoutMs` to be a finite number ≥ 0, got "abc"',
    );
    expect(invalidOption('auth', 'an object', null).message).toBe('Expected `auth` to be an object, got null');
  });
});
