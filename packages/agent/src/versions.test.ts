import { describe, expect, it } from 'vitest';
import { compareVersions, schemaCompatible, schemaIncompatibility } from './versions.ts';

describe('schemaCompatible (the rule of @gantry/migrations: supports.max bounds contracts, not current)', () => {
  const supports = { min: '1.2', max: '1.4' };

  it('regression: an old version was declared unable to run once expand migrations went past supports.max', () => {
    // Expand migrations never break an old version: current may be far past max while no contract ran.
    expect(schemaCompatible({ current: '1.9', lastContract: null }, supports)).toBe(true);
    expect(schemaCompatible({ current: '2.0', lastContract: '1.4' }, supports)).toBe(true);
  });

  it('refuses once a contract migration newer than supports.max was applied', () => {
    expect(schemaCompatible({ current: '1.5', lastContract: '1.5' }, supports)).toBe(false);
    expect(schemaIncompatibility({ current: '1.6', lastContract: '1.5' }, supports)).toBe(
      'contract migration 1.5 ran and it survives contracts up to 1.4',
    );
  });

  it('refuses a database older than supports.min (or without any migration)', () => {
    expect(schemaCompatible({ current: '1.1', lastContract: null }, supports)).toBe(false);
    expect(schemaCompatible({ current: '1.2', lastContract: null }, supports)).toBe(true);
    expect(schemaIncompatibility({ current: null, lastContract: null }, supports)).toBe(
      'it needs schema 1.2 and the database is at no migration',
    );
  });

  it('compares segment by segment numerically', () => {
    expect(compareVersions('1.10', '1.9')).toBeGreaterThan(0);
    expect(schemaCompatible({ current: '1.10', lastContract: '1.10' }, { min: '1.9', max: '1.9' })).toBe(false);
    expect(schemaCompatible({ current: '1.10', lastContract: '1.9' }, { min: '1.9', max: '1.10' })).toBe(true);
  });
});
