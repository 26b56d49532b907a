import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HEALTH_ERROR_CODES, HealthError, isHealthError } from './errors.ts';

describe('errors', () => {
  it('documents every code in the README, and the README lists no code that does not exist', () => {
    const readme = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8');
    const section = readme.split('## Error codes')[1]?.split('\n## ')[0] ?? '';
    const documented = new Set(section.match(/GANTRY_HEALTH_[A-Z_]+/g));
    for (const code of HEALTH_ERROR_CODES) expect(documented, code).toContain(code);
    for (const code of documented) expect(HEALTH_ERROR_CODES as readonly string[], code).toContain(code);
  });

  it('keeps the cause and narrows with isHealthError', () => {
    const cause = new Error('socket hang up');
    const error = new HealthError('GANTRY_HEALTH_SERVER_FAILED', 'could not listen', { cause });
    expect(error.cause).toBe(cause);
    expect(isHealthError(error)).toBe(true);
    expect(isHealthError(error, 'GANTRY_HEALTH_SERVER_FAILED')).toBe(true);
    expect(isHealthError(error, 'GANTRY_HEALTH_CLOSED')).toBe(false);
    expect(isHealthError(cause)).toBe(false);
  });
});
