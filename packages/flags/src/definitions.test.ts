import { describe, expect, it } from 'vitest';
import { defineFlags, findExpiredFlags } from './definitions.ts';
import { isFlagsError } from './errors.ts';
import { createTestFlags } from './testing.ts';

describe('defineFlags', () => {
  it('fills defaults and parses expiry dates', () => {
    const registry = defineFlags({
      'checkout-v2': { owner: 'payments', expires: '2026-12-31' },
      legacy: { default: true },
    });
    expect(registry.names).toEqual(['checkout-v2', 'legacy']);
    expect(registry.get('checkout-v2')).toMatchObject({
      default: false,
      defaultVariant: 'disabled',
      owner: 'payments',
    });
    expect(registry.get('checkout-v2')?.expires?.toISOString()).toBe('2026-12-31T00:00:00.000Z');
    expect(registry.get('legacy')?.default).toBe(true);
    expect(registry.get('unknown')).toBeUndefined();
  });

  it('rejects malformed definitions with the flag and the value in the message', () => {
    expect(() => defineFlags({ 'bad name': {} })).toThrow('Expected flag name to be a URL-safe Unleash name');
    expect(() => defineFlags({ a: { default: 'yes' as unknown as boolean } })).toThrow(
      'Expected `default` of "a" to be a boolean, got "yes"',
    );
    expect(() => defineFlags({ a: { expires: '31/12/2026' } })).toThrow(
      'Expected `expires` of "a" to be a date such as "2026-12-31", got "31/12/2026"',
    );
    try {
      defineFlags({ a: { owner: '' } });
    } catch (error) {
      expect(isFlagsError(error, 'GANTRY_FLAGS_INVALID_DEFINITION')).toBe(true);
    }
  });

  it('reports flags past their expiry date with the owner and days overdue', () => {
    const registry = defineFlags({
      old: { owner: 'search', expires: '2026-01-01' },
      fresh: { expires: '2027-01-01' },
      forever: {},
    });
    expect(findExpiredFlags(registry, Date.parse('2026-01-11T12:00:00Z'))).toEqual([
      { name: 'old', owner: 'search', expires: '2026-01-01', daysOverdue: 10 },
    ]);
  });

  it('types flag names, so an unknown name does not compile', () => {
    const registry = defineFlags({ 'checkout-v2': {} });
    const flags = createTestFlags({ 'checkout-v2': true }, { definitions: registry });
    expect(flags.isEnabled('checkout-v2')).toBe(true);
    // @ts-expect-error: 'checkout-v3' is not in the registry.
    expect(flags.isEnabled('checkout-v3')).toBe(false);
  });
});
