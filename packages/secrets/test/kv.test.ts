// KV v2 through vault.kv(): cached reads, a refresh interval, change events, and the last good value kept when
// Vault fails.
import { afterEach, describe, expect, it } from 'vitest';
import { createManualClock, createVault, type KvChange } from '../src/index.ts';
import { createVaultDevServer } from '../src/testing.ts';
import { captureLogger, events, until } from './helpers.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(refreshIntervalMs = 60_000) {
  const clock = createManualClock();
  const server = await createVaultDevServer({ clock, kvMount: 'kv' });
  cleanups.push(() => server.close());
  const logger = captureLogger();
  const vault = createVault({
    endpoint: server.address,
    auth: { method: 'token', token: server.rootToken },
    requestTimeoutMs: 2_000,
    retryInitialDelayMs: 1_000,
    retryMaxDelayMs: 4_000,
    clock,
    logger,
    registry: null,
  });
  cleanups.push(() => vault.close());
  const kv = vault.kv({ mount: 'kv', refreshIntervalMs });
  const reads = () => server.requests.filter((request) => request.path === 'kv/data/app/config').length;
  return { clock, server, vault, kv, logger, reads };
}

describe('KV v2 store', () => {
  it('serves repeated gets from the cache', async () => {
    const { server, kv, reads } = await setup();
    server.kvPut('app/config', { color: 'blue' });
    const [a, b] = await Promise.all([kv.get('app/config'), kv.get('app/config')]);
    const c = await kv.get('app/config');
    expect(a).toBe(b);
    expect(c).toBe(a);
    expect(c).toMatchObject({ version: 1, data: { color: 'blue' } });
    expect(reads()).toBe(1);
    expect(Object.isFrozen(c.data)).toBe(true);
  });

  it('refreshes on its interval and emits change when the version moves', async () => {
    const { clock, server, kv, reads } = await setup(10_000);
    server.kvPut('app/config', { color: 'blue' });
    const changes: KvChange[] = [];
    kv.on('change', (change) => changes.push(change));
    await kv.get('app/config');
    await clock.advance(11_000);
    await until(() => reads() === 2, 2_000, 'a refresh');
    expect(changes).toEqual([]); // same version: no event
    server.kvPut('app/config', { color: 'green' });
    await clock.advance(11_000);
    await until(() => changes.length === 1, 2_000, 'a change event');
    expect(changes[0]).toMatchObject({
      path: 'app/config',
      previousVersion: 1,
      secret: { version: 2, data: { color: 'green' } },
    });
    expect((await kv.get('app/config')).data).toEqual({ color: 'green' });
    expect(kv.peek('app/config')?.version).toBe(2);
  });

  it('keeps the last good value while Vault fails, then picks up the new one', async () => {
    const { clock, server, kv, logger, reads } = await setup(10_000);
    server.kvPut('app/config', { color: 'blue' });
    await kv.get('app/config');
    const fault = server.inject({ kind: 'internal-error', path: 'kv/' });
    await clock.advance(11_000);
    await until(() => events(logger.lines, 'secrets.kv.refresh_failed').length >= 1, 2_000, 'a failed refresh');
    expect((await kv.get('app/config')).data).toEqual({ color: 'blue' });
    fault.clear();
    server.kvPut('app/config', { color: 'red' });
    await clock.advance(10_000); // retry after backoff (≤ 2 s), not after a full interval
    await until(() => kv.peek('app/config')?.version === 2, 2_000, 'recovery');
    expect(reads()).toBeGreaterThanOrEqual(3);
    const failedLine = events(logger.lines, 'secrets.kv.refresh_failed')[0]!;
    expect(JSON.stringify(failedLine)).not.toContain('blue');
  });

  it('fails a first read of a missing or deleted secret with GANTRY_SECRETS_NOT_FOUND', async () => {
    const { server, vault, kv } = await setup();
    await expect(kv.get('nope')).rejects.toMatchObject({ code: 'GANTRY_SECRETS_NOT_FOUND' });
    server.kvPut('gone', { a: 1 });
    await vault.delete('kv/data/gone');
    await expect(kv.get('gone')).rejects.toMatchObject({ code: 'GANTRY_SECRETS_NOT_FOUND' });
  });

  it('writes versions with check-and-set and reads a pinned version', async () => {
    const { kv } = await setup();
    expect(await kv.put('app/flags', { on: true }, { cas: 0 })).toBe(1);
    expect(await kv.put('app/flags', { on: false })).toBe(2);
    await expect(kv.put('app/flags', { on: true }, { cas: 1 })).rejects.toMatchObject({ status: 400 });
    expect((await kv.get('app/flags', { version: 1 })).data).toEqual({ on: true });
    expect((await kv.get('app/flags')).data).toEqual({ on: false });
  });

  it('stops refreshing once closed', async () => {
    const { clock, server, kv, reads } = await setup(10_000);
    server.kvPut('app/config', { color: 'blue' });
    await kv.get('app/config');
    await kv.close();
    await clock.advance(30_000);
    expect(reads()).toBe(1);
    await expect(kv.get('app/config')).rejects.toMatchObject({ code: 'GANTRY_SECRETS_CLOSED' });
  });
});
