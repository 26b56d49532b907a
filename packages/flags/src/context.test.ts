import { describe, expect, it } from 'vitest';
import { effectiveIdentity, toUnleashContext } from './context.ts';

describe('toUnleashContext', () => {
  it('sets only the keys that have a value', () => {
    expect(toUnleashContext(undefined, undefined, 'tenantId')).toEqual({});
    expect(Object.keys(toUnleashContext({}, undefined, 'tenantId'))).toEqual([]);
    expect(toUnleashContext({ userId: 'u1' }, undefined, 'tenantId')).toStrictEqual({ userId: 'u1' });
    expect(toUnleashContext({ tenantId: 't1' }, undefined, 'tenantId')).toStrictEqual({
      properties: { tenantId: 't1' },
    });
    expect(toUnleashContext({ userId: 'u1', tenantId: 't1' }, undefined, 'tenantId')).toStrictEqual({
      userId: 'u1',
      properties: { tenantId: 't1' },
    });
  });

  it('puts the tenant under the configured property name', () => {
    expect(toUnleashContext({ userId: 'u1', tenantId: 't1' }, undefined, 'tenant')).toStrictEqual({
      userId: 'u1',
      properties: { tenant: 't1' },
    });
    expect(toUnleashContext({ tenantId: 't1', properties: { plan: 'pro' } }, undefined, 'tenant')).toStrictEqual({
      properties: { plan: 'pro', tenant: 't1' },
    });
  });

  it('keeps custom properties and the other standard fields, without changing the caller’s object', () => {
    const currentTime = new Date('2026-12-08T00:00:00Z');
    const properties = { plan: 'pro', tenantId: 'stale' };
    const context = {
      userId: 'u1',
      tenantId: 't1',
      sessionId: 's1',
      remoteAddress: '10.0.0.1',
      currentTime,
      properties,
    };
    expect(toUnleashContext(context, undefined, 'tenantId')).toStrictEqual({
      userId: 'u1',
      sessionId: 's1',
      remoteAddress: '10.0.0.1',
      currentTime,
      properties: { plan: 'pro', tenantId: 't1' },
    });
    expect(properties).toEqual({ plan: 'pro', tenantId: 'stale' });
    expect(toUnleashContext({ sessionId: 's1' }, undefined, 'tenantId')).toStrictEqual({ sessionId: 's1' });
  });

  it('fills only the gaps from the ambient context, and reads it only when there is a gap', () => {
    let reads = 0;
    const ambient = () => {
      reads += 1;
      return { tenantId: 'ambient-tenant', userId: 'ambient-user' };
    };
    expect(toUnleashContext({ userId: 'u1', tenantId: 't1' }, ambient, 'tenantId')).toStrictEqual({
      userId: 'u1',
      properties: { tenantId: 't1' },
    });
    expect(reads).toBe(0);
    expect(toUnleashContext({ userId: 'u1' }, ambient, 'tenantId')).toStrictEqual({
      userId: 'u1',
      properties: { tenantId: 'ambient-tenant' },
    });
    expect(toUnleashContext(undefined, ambient, 'tenantId')).toStrictEqual({
      userId: 'ambient-user',
      properties: { tenantId: 'ambient-tenant' },
    });
    expect(toUnleashContext({ sessionId: 's1' }, () => undefined, 'tenantId')).toStrictEqual({ sessionId: 's1' });
    expect(reads).toBe(2);
  });
});

describe('effectiveIdentity', () => {
  it('prefers the call’s own identity and falls back to the ambient one', () => {
    const ambient = () => ({ tenantId: 'a-t', userId: 'a-u' });
    expect(effectiveIdentity({ tenantId: 't1' }, ambient)).toEqual({ tenantId: 't1', userId: 'a-u' });
    expect(effectiveIdentity(undefined, undefined)).toEqual({ tenantId: undefined, userId: undefined });
  });
});
