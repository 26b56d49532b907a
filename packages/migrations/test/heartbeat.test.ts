// Background loops of the app side against a real PostgreSQL: the heartbeat (never overlapping, and never writing
// its row again after stop() deleted it) and the schema monitor (its timer and its check never race each other).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { createMigrator, createSchemaMonitor, registerAppVersion } from '../src/index.ts';
import { freshDatabase, migrationFolder, waitFor } from './helpers.ts';

let url: string;
let pool: pg.Pool;
beforeAll(async () => {
  ({ url, pool } = await freshDatabase('heartbeat'));
});
afterAll(async () => {
  await pool.end();
});

/** A pool whose next query matching `pattern` waits until released (`holdNext`); counts those in flight. */
function gatedPool(pattern: RegExp) {
  let hold = false;
  const waiting: (() => void)[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const gated = {
    query: async (text: string, values?: unknown[]) => {
      const matches = pattern.test(text);
      if (matches) {
        inFlight += 1;
        maxInFlight = Math.max(maxInFlight, inFlight);
      }
      try {
        if (matches && hold) {
          hold = false;
          await new Promise<void>((resolve) => waiting.push(resolve));
        }
        return await pool.query(text, values);
      } finally {
        if (matches) inFlight -= 1;
      }
    },
  } as unknown as pg.Pool;
  return {
    pool: gated,
    holdNext: () => {
      hold = true;
    },
    release: () => {
      hold = false;
      for (const resolve of waiting.splice(0)) resolve();
    },
    held: () => waiting.length,
    maxInFlight: () => maxInFlight,
  };
}

const SCHEMA = 'heartbeat_state';

describe('registerAppVersion', () => {
  it('a slow beat overlapping later ones re-inserted the row after stop() deleted it (a dead app looked alive)', async () => {
    const gate = gatedPool(/INSERT INTO .*app_versions/s);
    const registration = await registerAppVersion(gate.pool, {
      service: 'orders',
      version: '1.0.0',
      schemaSupports: { min: '1', max: '2' },
      schema: SCHEMA,
      intervalMs: 20,
    });
    const rows = async () =>
      (
        await pool.query(`SELECT count(*)::int AS n FROM ${SCHEMA}.app_versions WHERE instance = $1`, [
          registration.instance,
        ])
      ).rows[0].n as number;
    expect(await rows()).toBe(1);
    gate.holdNext();
    await waitFor(() => gate.held() > 0, 5_000, 'a beat to hang');
    // Several intervals pass while that beat hangs (a slow database, a lock).
    await new Promise((resolve) => setTimeout(resolve, 200));
    const stopping = registration.stop();
    await new Promise((resolve) => setTimeout(resolve, 50));
    gate.release();
    await stopping;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await rows()).toBe(0);
    expect(gate.maxInFlight()).toBe(1);
  });

  it('never overlaps beats when called by hand while the timer beats', async () => {
    const gate = gatedPool(/INSERT INTO .*app_versions/s);
    const registration = await registerAppVersion(gate.pool, {
      service: 'orders',
      version: '1.0.0',
      schemaSupports: { min: '1', max: '2' },
      schema: SCHEMA,
      intervalMs: 10,
    });
    const manual = await Promise.all(Array.from({ length: 20 }, () => registration.beat()));
    expect(manual.every(Boolean)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await registration.stop();
    expect(gate.maxInFlight()).toBe(1);
    expect(await registration.beat()).toBe(false);
  });
});

describe('createSchemaMonitor', () => {
  it('a slow refresh finishing after a newer one put the older schema back into /q/info', async () => {
    const folder = migrationFolder({
      'V1__a.sql': '-- gantry:phase expand\nCREATE TABLE monitor_a (id bigint PRIMARY KEY);',
      'V2__b.sql': '-- gantry:phase expand\nCREATE TABLE monitor_b (id bigint PRIMARY KEY);',
    });
    try {
      const migrator = createMigrator({ directory: folder.directory, connectionString: url, schema: SCHEMA });
      await migrator.migrate({ target: '1' });
      // Hold a refresh after it read the history, before it reads the backfills.
      const gate = gatedPool(/FROM .*\.backfill/);
      const monitor = createSchemaMonitor({
        pool: gate.pool,
        directory: folder.directory,
        schemaSupports: { min: '1', max: '2' },
        schema: SCHEMA,
        refreshIntervalMs: 0,
        registry: false,
      });
      gate.holdNext();
      const slow = monitor.refresh();
      await waitFor(() => gate.held() > 0, 5_000, 'the first refresh to hang');
      // Meanwhile a migration lands and the check (or the timer) refreshes again.
      await migrator.migrate();
      const fresh = monitor.refresh();
      await new Promise((resolve) => setTimeout(resolve, 200));
      gate.release();
      expect((await slow).current).toBe('1');
      expect((await fresh).current).toBe('2');
      expect(monitor.snapshot()?.current).toBe('2');
      expect(monitor.info.contribute()).toMatchObject({ current: '2' });
      expect(gate.maxInFlight()).toBe(1);
      await monitor.close();
    } finally {
      folder.remove();
    }
  });

  it('close() returned while a refresh was still reading the database (a pool closed after it broke that read)', async () => {
    const folder = migrationFolder({
      'V1__a.sql': '-- gantry:phase expand\nCREATE TABLE monitor_close_a (id bigint PRIMARY KEY);',
    });
    try {
      const gate = gatedPool(/FROM .*\.backfill/);
      const monitor = createSchemaMonitor({
        pool: gate.pool,
        directory: folder.directory,
        schemaSupports: { min: '1', max: '2' },
        schema: SCHEMA,
        refreshIntervalMs: 0,
        registry: false,
      });
      gate.holdNext();
      const refreshing = monitor.refresh();
      await waitFor(() => gate.held() > 0, 5_000, 'the refresh to hang');
      let closed = false;
      const closing = monitor.close().then(() => {
        closed = true;
      });
      // Give close() every chance to return early; it must wait for the refresh instead.
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(closed).toBe(false);
      gate.release();
      await closing;
      expect((await refreshing).current).not.toBeUndefined();
    } finally {
      folder.remove();
    }
  });
});
