import { describe, expect, it } from 'vitest';
import type { FlagContext } from './context.ts';
import { createMigrationFlag } from './migration-flag.ts';
import { createTestFlags } from './testing.ts';
import { Registry } from 'prom-client';

describe('createTestFlags', () => {
  it('answers from the values given, deterministically, with variants and payloads', () => {
    const flags = createTestFlags({
      'checkout-v2': true,
      layout: { variant: 'compact', payload: { type: 'string', value: 'rows=3' } },
      'per-tenant': (context: FlagContext) => context.tenantId === 'acme',
    });
    expect(flags.isEnabled('checkout-v2')).toBe(true);
    // @ts-expect-error: names are typed from the values given.
    expect(flags.isEnabled('unknown')).toBe(false);
    // @ts-expect-error: names are typed from the values given.
    expect(flags.isEnabled('unknown', {}, true)).toBe(true);
    expect(flags.variant('layout')).toEqual({
      name: 'compact',
      enabled: true,
      featureEnabled: true,
      payload: { type: 'string', value: 'rows=3' },
    });
    expect(flags.isEnabled('per-tenant', { tenantId: 'acme' })).toBe(true);
    expect(flags.isEnabled('per-tenant', { tenantId: 'globex' })).toBe(false);
    expect(flags.evaluations.map((evaluation) => evaluation.result)).toEqual([
      true,
      false,
      true,
      'compact',
      true,
      false,
    ]);
  });

  it('scopes withFlags overrides to one async call tree, so parallel tests do not see each other', async () => {
    const flags = createTestFlags({ 'checkout-v2': false });
    const seen = await Promise.all([
      flags.withFlags({ 'checkout-v2': true }, async () => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        return flags.isEnabled('checkout-v2');
      }),
      (async () => {
        await new Promise((resolve) => setTimeout(resolve, 1));
        return flags.isEnabled('checkout-v2');
      })(),
    ]);
    expect(seen).toEqual([true, false]);
  });

  it('set, remove and reset change later evaluations and notify listeners', () => {
    const flags = createTestFlags({ a: true });
    const hashes: (string | null)[] = [];
    flags.onChange((status) => hashes.push(status.hash));
    flags.set('a', false);
    expect(flags.isEnabled('a')).toBe(false);
    flags.remove('a');
    expect(flags.toggle('a')).toBeUndefined();
    flags.reset();
    expect(flags.isEnabled('a')).toBe(true);
    expect(new Set(hashes).size).toBe(3);
  });

  it('simulates a client that has not loaded yet, check DOWN until markReady()', async () => {
    const flags = createTestFlags({ a: true }, { ready: false });
    expect(flags.isEnabled('a')).toBe(false);
    expect((await flags.check().run(AbortSignal.timeout(100))).status).toBe('DOWN');
    const ready = flags.ready();
    flags.markReady();
    await ready;
    expect(flags.isEnabled('a')).toBe(true);
    expect(flags.info().contribute()).toMatchObject({ source: 'bootstrap' });
  });

  it("drives a migration flag in users' tests", async () => {
    const flags = createTestFlags({ 'dual-write-x': 'dualwrite' });
    const writes: string[] = [];
    const migration = createMigrationFlag(flags, 'dual-write-x', {
      registry: new Registry(),
      readOld: async () => 1,
      readNew: async () => 1,
      writeOld: async () => void writes.push('old'),
      writeNew: async () => void writes.push('new'),
    });
    await flags.withFlags({ 'dual-write-x': 'off' }, () => migration.write({}, 'x'));
    await migration.write({}, 'y');
    expect(writes).toEqual(['old', 'old', 'new']);
  });
});

describe('shutdown hooks', () => {
  it('close the test client and wait for background comparisons', async () => {
    const flags = createTestFlags({ 'dual-write-x': 'shadow' });
    let release: () => void = () => undefined;
    const migration = createMigrationFlag(flags, 'dual-write-x', {
      registry: new Registry(),
      readOld: async () => 1,
      readNew: () => new Promise<number>((resolve) => (release = () => resolve(1))),
      writeOld: async () => undefined,
      writeNew: async () => undefined,
    });
    await migration.read({}, 'id');
    const hook = migration.shutdownHook();
    let done = false;
    const running = hook.run(AbortSignal.timeout(1_000)).then(() => (done = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(done).toBe(false);
    release();
    await running;
    expect(migration.stats.consistent).toBe(1);
    await flags.shutdownHook().run(AbortSignal.timeout(1_000));
    await expect(flags.ready()).rejects.toMatchObject({ code: 'GANTRY_FLAGS_CLOSED' });
  });
});
