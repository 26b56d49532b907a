import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FLAGS_ERROR_CODES, FlagsError, isFlagsError } from './errors.ts';

describe('error codes', () => {
  it('every code in errors.ts is in the README table, and every code in the README exists', () => {
    const readme = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8');
    // Rows of the "Error codes" table start with the code; GANTRY_FLAGS_* environment variables live elsewhere.
    const documented = new Set([...readme.matchAll(/^\| `(GANTRY_FLAGS_[A-Z_]+)` \|/gm)].map((match) => match[1]));
    expect([...documented].sort()).toEqual([...FLAGS_ERROR_CODES].sort());
  });

  it('isFlagsError checks the class shape and the code, keeping the cause', () => {
    const cause = new Error('io');
    const error = new FlagsError('GANTRY_FLAGS_READY_TIMEOUT', 'late', { cause });
    expect(isFlagsError(error)).toBe(true);
    expect(isFlagsError(error, 'GANTRY_FLAGS_READY_TIMEOUT')).toBe(true);
    expect(isFlagsError(error, 'GANTRY_FLAGS_CLOSED')).toBe(false);
    expect(isFlagsError(new Error('late'))).toBe(false);
    expect(error.cause).toBe(cause);
  });
});
