import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isTelemetryError, TELEMETRY_ERROR_CODES, TelemetryError } from './errors.ts';

describe('error codes', () => {
  it('are each documented in the README, and the README documents no other', () => {
    const readme = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8');
    const declared = new Set<string>(Object.values(TELEMETRY_ERROR_CODES));
    // The codes table: one row per code, first column the code.
    const readmeCodes = new Set([...readme.matchAll(/^\| `(GANTRY_TELEMETRY_[A-Z_]+)` \|/gm)].map((match) => match[1]));
    expect([...readmeCodes].sort()).toEqual([...declared].sort());
  });

  it('keeps the cause and is recognised by the guard', () => {
    const cause = new Error('low level');
    const error = new TelemetryError(TELEMETRY_ERROR_CODES.exportFailed, 'export failed', { cause });
    expect(error.cause).toBe(cause);
    expect(isTelemetryError(error)).toBe(true);
    expect(
      isTelemetryError(
        Object.assign(new Error('x'), { name: 'TelemetryError', code: 'GANTRY_TELEMETRY_EXPORT_FAILED' }),
      ),
    ).toBe(true);
    expect(isTelemetryError(new Error('x'))).toBe(false);
  });
});
