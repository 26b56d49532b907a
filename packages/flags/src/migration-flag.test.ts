import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { FlagContext } from './context.ts';
import { isFlagsError } from './errors.ts';
import type { FlagsLogger } from './logger.ts';
import {
  createMigrationFlag,
  isLegalStageChange,
  MIGRATION_STAGES,
  structuralDiff,
  type MigrationFlagOptions,
  type MigrationGuardrailEvent,
  type MigrationStage,
  type MigrationWriteFailure,
} from './migration-flag.ts';
import { createTestFlags } from './testing.ts';

const KEY = 'dual-write-orders';

interface Call {
  readonly op: string;
  readonly stage: MigrationStage;
}

/** Two in-memory "stores" and a log of which side was called, in order. */
function stores() {
  const old = new Map<number, string>();
  const fresh = new Map<number, string>();
  const calls: Call[] = [];
  const options: MigrationFlagOptions<number, string | undefined, { id: number; value: string }, number> = {
    readOld: async (id, call) => {
      calls.push({ op: 'readOld', stage: call.stage });
      return old.get(id);
    },
    readNew: async (id, call) => {
      calls.push({ op: 'readNew', stage: call.stage });
      return fresh.get(id);
    },
    writeOld: async (row, call) => {
      calls.push({ op: 'writeOld', stage: call.stage });
      old.set(row.id, row.value);
      return row.id;
    },
    writeNew: async (row, call) => {
      calls.push({ op: 'writeNew', stage: call.stage });
      fresh.set(row.id, row.value);
      return row.id;
    },
  };
  return { old, fresh, calls, options };
}

function recordingLogger() {
  const lines: { level: string; fields: Record<string, unknown>; message: string | undefined }[] = [];
  const make = (): FlagsLogger => ({
    debug: (fields, message) => lines.push({ level: 'debug', fields, message }),
    info: (fields, message) => lines.push({ level: 'info', fields, message }),
    warn: (fields, message) => lines.push({ level: 'warn', fields, message }),
    error: (fields, message) => lines.push({ level: 'error', fields, message }),
    child: () => make(),
  });
  return { lines, logger: make(), events: () => lines.map((line) => line.fields['event']) };
}

describe('createMigrationFlag stages', () => {
  const expected: Record<MigrationStage, { read: string[]; write: string[]; returns: 'old' | 'new' }> = {
    off: { read: ['readOld'], write: ['writeOld'], returns: 'old' },
    dualwrite: { read: ['readOld'], write: ['writeOld', 'writeNew'], returns: 'old' },
    shadow: { read: ['readOld', 'readNew'], write: ['writeOld', 'writeNew'], returns: 'old' },
    live: { read: ['readNew', 'readOld'], write: ['writeNew', 'writeOld'], returns: 'new' },
    rampdown: { read: ['readNew'], write: ['writeNew', 'writeOld'], returns: 'new' },
    complete: { read: ['readNew'], write: ['writeNew'], returns: 'new' },
  };

  for (const stage of MIGRATION_STAGES) {
    it(`${stage}: reads and writes the sides LaunchDarkly defines, authoritative first`, async () => {
      const { old, fresh, calls, options } = stores();
      old.set(1, 'from-old');
      fresh.set(1, 'from-new');
      const flags = createTestFlags({ [KEY]: stage });
      const migration = createMigrationFlag(flags, KEY, { ...options, registry: new Registry(), guardrail: false });
      const value = await migration.read({}, 1);
      await migration.settled();
      expect(value).toBe(expected[stage].returns === 'old' ? 'from-old' : 'from-new');
      expect(calls.map((call) => call.op)).toEqual(expected[stage].read);
      calls.length = 0;
      await migration.write({}, { id: 2, value: 'x' });
      expect(calls.map((call) => call.op)).toEqual(expected[stage].write);
      expect(calls.every((call) => call.stage === stage)).toBe(true);
    });
  }

  it('uses the default stage while the toggle is off, missing or not loaded yet', async () => {
    const { calls, options } = stores();
    const flags = createTestFlags({ [KEY]: false }, { ready: true });
    const migration = createMigrationFlag(flags, KEY, { ...options, registry: new Registry() });
    expect(migration.stage({})).toBe('off');
    flags.remove(KEY);
    expect(migration.stage({})).toBe('off');
    const unloaded = createTestFlags({ [KEY]: 'live' }, { ready: false });
    const early = createMigrationFlag(unloaded, KEY, {
      ...options,
      registry: new Registry(),
      defaultStage: 'dualwrite',
    });
    expect(early.stage({})).toBe('dualwrite');
    unloaded.markReady();
    // The first real observation is accepted as it is, even though it is two stages away from the default.
    expect(early.stage({})).toBe('live');
    expect(calls).toEqual([]);
  });
});

describe('createMigrationFlag writes', () => {
  it('skips the second write when the authoritative write fails, and rejects with its error', async () => {
    const { calls, options } = stores();
    const boom = new Error('old store down');
    const flags = createTestFlags({ [KEY]: 'dualwrite' });
    const migration = createMigrationFlag(flags, KEY, {
      ...options,
      registry: new Registry(),
      writeOld: async () => {
        calls.push({ op: 'writeOld', stage: 'dualwrite' });
        throw boom;
      },
    });
    await expect(migration.write({}, { id: 1, value: 'x' })).rejects.toBe(boom);
    expect(calls.map((call) => call.op)).toEqual(['writeOld']);
  });

  it('hands a failed second write to the retry callback with the payload and still succeeds', async () => {
    const { options } = stores();
    const failures: MigrationWriteFailure<{ id: number; value: string }>[] = [];
    const flags = createTestFlags({ [KEY]: 'live' });
    const migration = createMigrationFlag(flags, KEY, {
      ...options,
      registry: new Registry(),
      writeOld: async () => {
        throw new Error('legacy table locked');
      },
      onNonAuthoritativeWriteFailure: async (failure) => {
        failures.push(failure);
      },
    });
    await expect(migration.write({ tenantId: 't1' }, { id: 7, value: 'x' })).resolves.toBe(7);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ migration: KEY, stage: 'live', origin: 'old', payload: { id: 7, value: 'x' } });
  });

  it('passes the authoritative result to the second write (a generated id)', async () => {
    const { options } = stores();
    const seen: unknown[] = [];
    const flags = createTestFlags({ [KEY]: 'dualwrite' });
    const migration = createMigrationFlag(flags, KEY, {
      ...options,
      registry: new Registry(),
      writeOld: async () => 41,
      writeNew: async (_row, call) => {
        seen.push(call.authoritativeResult);
        return 0;
      },
    });
    await migration.write({}, { id: 0, value: 'x' });
    expect(seen).toEqual([41]);
  });

  it('logs a failed second write by default and ignores it when asked', async () => {
    const { options } = stores();
    const log = recordingLogger();
    const flags = createTestFlags({ [KEY]: 'dualwrite' });
    const failing = { ...options, writeNew: async () => Promise.reject(new Error('new store down')) };
    const logged = createMigrationFlag(flags, KEY, { ...failing, registry: new Registry(), logger: log.logger });
    await logged.write({}, { id: 1, value: 'x' });
    expect(log.events()).toContain('flags.migration.write_failed');
    const quiet = recordingLogger();
    const ignored = createMigrationFlag(flags, KEY, {
      ...failing,
      registry: new Registry(),
      logger: quiet.logger,
      onNonAuthoritativeWriteFailure: 'ignore',
    });
    await ignored.write({}, { id: 1, value: 'x' });
    expect(quiet.events()).not.toContain('flags.migration.write_failed');
  });
});

describe('createMigrationFlag reads', () => {
  it('returns the authoritative read before a slow comparison read finishes (background mode)', async () => {
    const { options } = stores();
    let releaseNew: () => void = () => undefined;
    const flags = createTestFlags({ [KEY]: 'shadow' });
    const migration = createMigrationFlag(flags, KEY, {
      ...options,
      registry: new Registry(),
      readOld: async () => 'old',
      readNew: () =>
        new Promise<string>((resolve) => {
          releaseNew = () => resolve('old');
        }),
    });
    await expect(migration.read({}, 1)).resolves.toBe('old');
    expect(migration.stats.consistent).toBe(0);
    await new Promise((resolve) => setImmediate(resolve));
    releaseNew();
    await migration.settled();
    expect(migration.stats.consistent).toBe(1);
  });

  it('holds a background comparison while another request is reading, up to shadowMaxDelayMs', async () => {
    const flags = createTestFlags({ [KEY]: 'shadow' });
    const order: string[] = [];
    let releaseSecond: () => void = () => undefined;
    const migration = createMigrationFlag(flags, KEY, {
      ...stores().options,
      registry: new Registry(),
      shadowMaxDelayMs: 200,
      readOld: (id) =>
        id === 2
          ? new Promise<string>((resolve) => {
              releaseSecond = () => {
                order.push('second request read');
                resolve('two');
              };
            })
          : Promise.resolve('one'),
      readNew: async (id) => {
        order.push(`comparison ${String(id)}`);
        return id === 1 ? 'one' : 'two';
      },
    });
    await migration.read({}, 1); // its comparison is queued
    const second = migration.read({}, 2); // another request's authoritative read is now in flight
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(order).toEqual([]); // the comparison waits for the gap
    releaseSecond();
    await second;
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(order).toEqual(['second request read', 'comparison 1', 'comparison 2']);
    await migration.settled();
    expect(migration.stats.consistent).toBe(2);

    // A server that is never idle still compares, at the deadline.
    const busy = migration.read({}, 2); // stays in flight
    await migration.read({}, 1);
    const started = performance.now();
    while (!order.includes('comparison 1', 3) && performance.now() - started < 1_000) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(performance.now() - started).toBeGreaterThanOrEqual(150);
    expect(order.lastIndexOf('comparison 1')).toBeGreaterThan(2);
    releaseSecond();
    await busy;
    await migration.settled();
    expect(migration.stats.consistent).toBe(4);
  });

  it('queues comparisons beyond maxConcurrentShadowReads instead of dropping them, up to maxQueuedShadowReads', async () => {
    const flags = createTestFlags({ [KEY]: 'shadow' });
    let running = 0;
    let peak = 0;
    const migration = createMigrationFlag(flags, KEY, {
      ...stores().options,
      registry: new Registry(),
      maxConcurrentShadowReads: 2,
      maxQueuedShadowReads: 6,
      readOld: async (id) => `v${String(id)}`,
      readNew: async (id) => {
        running += 1;
        peak = Math.max(peak, running);
        await new Promise((resolve) => setTimeout(resolve, 5));
        running -= 1;
        return `v${String(id)}`;
      },
    });
    for (let id = 1; id <= 8; id += 1) await migration.read({}, id);
    await migration.settled();
    expect(migration.stats).toMatchObject({ consistent: 6, skipped: 2 });
    expect(peak).toBe(2);
  });

  it('works through its queue on a server that is never idle, one deadline for the overdue, not one each', async () => {
    const flags = createTestFlags({ [KEY]: 'shadow' });
    let releaseBusy: () => void = () => undefined;
    const comparedAt: number[] = [];
    const migration = createMigrationFlag(flags, KEY, {
      ...stores().options,
      registry: new Registry(),
      shadowMaxDelayMs: 1_000,
      maxConcurrentShadowReads: 1,
      readOld: (id) =>
        id === 0
          ? new Promise<string>((resolve) => {
              releaseBusy = () => resolve('zero');
            })
          : Promise.resolve(`v${String(id)}`),
      readNew: async (id) => {
        comparedAt.push(performance.now());
        return id === 0 ? 'zero' : `v${String(id)}`;
      },
    });
    const busy = migration.read({}, 0); // in flight throughout: the process is never idle
    for (let id = 1; id <= 5; id += 1) await migration.read({}, id);
    const started = performance.now();
    while (comparedAt.length < 5 && performance.now() - started < 10_000) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(comparedAt.length).toBe(5);
    // Each runs at its own read's deadline, all within a few ms of each other: not one more full delay after the
    // first (≥ 1 000 ms, a bug this test found) nor one each (≥ 4 000 ms). Timed between the comparisons themselves,
    // so a slow machine delaying the first one does not count; 500 ms leaves room for four late timers.
    expect(comparedAt[4]! - comparedAt[0]!).toBeLessThan(500);
    releaseBusy();
    await busy;
    await migration.settled();
    expect(migration.stats.consistent).toBe(6);
  });

  it('rejects a negative shadowMaxDelayMs', () => {
    const flags = createTestFlags({ [KEY]: 'shadow' });
    expect(() => createMigrationFlag(flags, KEY, { ...stores().options, shadowMaxDelayMs: -1 })).toThrow(
      'Expected `shadowMaxDelayMs` to be a finite number ≥ 0, got -1',
    );
  });

  it('waits for both sides in await mode and rejects with the authoritative error only', async () => {
    const { options } = stores();
    const flags = createTestFlags({ [KEY]: 'live' });
    const migration = createMigrationFlag(flags, KEY, {
      ...options,
      registry: new Registry(),
      shadowMode: 'await',
      readNew: async () => 'same',
      readOld: async () => Promise.reject(new Error('old side broken')),
    });
    await expect(migration.read({}, 1)).resolves.toBe('same');
    expect(migration.stats).toMatchObject({ consistent: 0, errors: 1 });
    const broken = createMigrationFlag(flags, KEY, {
      ...options,
      registry: new Registry(),
      shadowMode: 'await',
      readNew: async () => Promise.reject(new Error('new side broken')),
    });
    await expect(broken.read({}, 1)).rejects.toThrow('new side broken');
  });

  it('skips comparison reads over the queue cap and counts them', async () => {
    const { options } = stores();
    const flags = createTestFlags({ [KEY]: 'shadow' });
    const registry = new Registry();
    const migration = createMigrationFlag(flags, KEY, {
      ...options,
      registry,
      maxQueuedShadowReads: 2,
      readOld: async () => 'v',
      readNew: async () => 'v',
    });
    // Five reads in one turn: the queue takes two, the other three are not compared.
    for (let index = 0; index < 5; index += 1) await migration.read({}, index);
    expect(migration.stats.skipped).toBe(3);
    await migration.settled();
    expect(migration.stats.consistent).toBe(2);
    const metrics = await registry.getSingleMetricAsString('gantry_flags_migration_operations_total');
    expect(metrics).toContain('outcome="skipped"');
  });

  it('times out a hung comparison read and frees its slot', async () => {
    const { options } = stores();
    const flags = createTestFlags({ [KEY]: 'shadow' });
    let aborted = false;
    const migration = createMigrationFlag(flags, KEY, {
      ...options,
      registry: new Registry(),
      shadowTimeoutMs: 20,
      maxConcurrentShadowReads: 1,
      readOld: async () => 'v',
      readNew: (_id, call) =>
        new Promise<string>(() => {
          call.signal.addEventListener('abort', () => {
            aborted = true;
          });
        }),
    });
    await migration.read({}, 1);
    await migration.settled();
    expect(aborted).toBe(true);
    expect(migration.stats.errors).toBe(1);
    await migration.read({}, 2);
    expect(migration.stats.skipped).toBe(0);
    await migration.settled();
  });

  it('compares old against new in that order whichever side is authoritative', async () => {
    const { options } = stores();
    const compared: [unknown, unknown][] = [];
    const flags = createTestFlags({ [KEY]: 'live' });
    const migration = createMigrationFlag(flags, KEY, {
      ...options,
      registry: new Registry(),
      readOld: async () => 'O',
      readNew: async () => 'N',
      compare: (a, b) => {
        compared.push([a, b]);
        return true;
      },
    });
    await expect(migration.read({}, 1)).resolves.toBe('N');
    await migration.settled();
    expect(compared).toEqual([['O', 'N']]);
  });

  it('reads only a sample of comparisons when shadowSampleRatio < 1', async () => {
    const { calls, options } = stores();
    const flags = createTestFlags({ [KEY]: 'shadow' });
    const draws = [0.05, 0.5, 0.95, 0.05];
    const migration = createMigrationFlag(flags, KEY, {
      ...options,
      registry: new Registry(),
      shadowSampleRatio: 0.1,
      random: () => draws.shift() ?? 1,
    });
    for (let index = 0; index < 4; index += 1) await migration.read({}, index);
    await migration.settled();
    expect(calls.filter((call) => call.op === 'readNew')).toHaveLength(2);
    expect(migration.stats.skipped).toBe(2);
  });
});

describe('createMigrationFlag stage changes', () => {
  it('pins the stage to a request context even when the flag moves between its read and write', async () => {
    const { calls, options } = stores();
    const flags = createTestFlags({ [KEY]: 'dualwrite' });
    const migration = createMigrationFlag(flags, KEY, { ...options, registry: new Registry() });
    const request: FlagContext = { tenantId: 'acme' };
    await migration.read(request, 1);
    flags.set(KEY, 'shadow');
    await migration.write(request, { id: 1, value: 'x' });
    expect(calls.map((call) => call.stage)).toEqual(['dualwrite', 'dualwrite', 'dualwrite']);
    expect(migration.stage({ tenantId: 'acme' })).toBe('shadow');
  });

  it('refuses an illegal jump (off → live), keeps the previous stage and logs it once a minute', async () => {
    const { options } = stores();
    const log = recordingLogger();
    const registry = new Registry();
    const flags = createTestFlags({ [KEY]: 'off' });
    const migration = createMigrationFlag(flags, KEY, { ...options, registry, logger: log.logger });
    expect(migration.stage({})).toBe('off');
    flags.set(KEY, 'live');
    expect(migration.stage({})).toBe('off');
    expect(migration.stage({})).toBe('off');
    expect(log.events().filter((event) => event === 'flags.migration.stage.refused')).toHaveLength(1);
    expect(await registry.getSingleMetricAsString('gantry_flags_migration_stage_rejections_total')).toContain(
      'gantry_flags_migration_stage_rejections_total{migration="dual-write-orders",from="off",to="live"} 2',
    );
    flags.set(KEY, 'dualwrite');
    expect(migration.stage({})).toBe('dualwrite');
    expect(log.events()).toContain('flags.migration.stage.changed');
  });

  it('remembers stages per tenant, so tenants can be ramped separately', () => {
    const { options } = stores();
    const flags = createTestFlags({
      [KEY]: (context: FlagContext) => (context.tenantId === 'early' ? 'shadow' : 'dualwrite'),
    });
    const migration = createMigrationFlag(flags, KEY, { ...options, registry: new Registry() });
    expect(migration.stage({ tenantId: 'early' })).toBe('shadow');
    expect(migration.stage({ tenantId: 'late' })).toBe('dualwrite');
  });

  it('keeps the last stage when the variant is not a stage name', () => {
    const { options } = stores();
    const log = recordingLogger();
    const flags = createTestFlags({ [KEY]: 'shadow' });
    const migration = createMigrationFlag(flags, KEY, { ...options, registry: new Registry(), logger: log.logger });
    expect(migration.stage({})).toBe('shadow');
    flags.set(KEY, 'shaddow');
    expect(migration.stage({})).toBe('shadow');
    expect(log.events()).toContain('flags.migration.stage.invalid');
  });

  it('accepts rollbacks, but not out of complete into a stage that reads the old store', () => {
    expect(isLegalStageChange('live', 'dualwrite')).toBe(true);
    expect(isLegalStageChange('complete', 'rampdown')).toBe(true);
    expect(isLegalStageChange('complete', 'shadow')).toBe(false);
    expect(isLegalStageChange('dualwrite', 'live')).toBe(false);
    expect(isLegalStageChange('dualwrite', 'live', true)).toBe(true);
  });
});

describe('createMigrationFlag consistency', () => {
  it('logs sampled structured diffs of mismatches and counts them', async () => {
    const { options } = stores();
    const log = recordingLogger();
    const registry = new Registry();
    const flags = createTestFlags({ [KEY]: 'shadow' });
    const migration = createMigrationFlag(flags, KEY, {
      ...options,
      registry,
      logger: log.logger,
      maxDiffLogsPerMinute: 2,
      maxConcurrentShadowReads: 16,
      guardrail: false,
      readOld: async (id: number) => ({ id, total: 10, items: ['a'] }),
      readNew: async (id: number) => ({ id, total: 12, items: ['a'] }),
    } as unknown as typeof options);
    for (let index = 0; index < 5; index += 1) await migration.read({ tenantId: 'acme' }, index);
    await migration.settled();
    const diffs = log.lines.filter((line) => line.fields['event'] === 'flags.migration.mismatch');
    expect(diffs).toHaveLength(2);
    expect(diffs[0]!.fields).toMatchObject({
      tenant_id: 'acme',
      stage: 'shadow',
      diff: { entries: [{ path: 'total', oldType: 'number', newType: 'number' }], truncated: false },
    });
    expect(await registry.getSingleMetricAsString('gantry_flags_migration_consistency_total')).toContain(
      'gantry_flags_migration_consistency_total{migration="dual-write-orders",result="inconsistent"} 5',
    );
  });

  it('kept compared values (emails, secrets) out of mismatch logs unless logDiffValues is on', async () => {
    const { options } = stores();
    const records = {
      old: { id: 7, email: 'alice@example.com', apiKey: 'sk_live_4f9a0c2e', plan: 'pro', tags: ['a', 'b'] },
      new: { id: 7, email: 'alice@example.org', apiKey: 'sk_live_4f9a0c2f', plan: 'pro', tags: ['a'] },
    };
    const mismatchLines = async (extra: Record<string, unknown>) => {
      const log = recordingLogger();
      const migration = createMigrationFlag(createTestFlags({ [KEY]: 'shadow' }), KEY, {
        ...options,
        registry: new Registry(),
        logger: log.logger,
        guardrail: false,
        readOld: async () => structuredClone(records.old),
        readNew: async () => structuredClone(records.new),
        ...extra,
      } as unknown as typeof options);
      await migration.read({}, 7);
      await migration.read({}, 7);
      await migration.settled();
      return log.lines.filter((line) => line.fields['event'] === 'flags.migration.mismatch');
    };
    const [first, second] = await mismatchLines({});
    const text = JSON.stringify(first);
    for (const secret of ['alice', 'example', 'sk_live', '4f9a0c']) expect(text).not.toContain(secret);
    const entries = (first!.fields['diff'] as { entries: Record<string, unknown>[] }).entries;
    expect(entries.map((entry) => [entry['path'], entry['oldType'], entry['newType']])).toEqual([
      ['email', 'string(17)', 'string(17)'],
      ['apiKey', 'string(16)', 'string(16)'],
      ['tags[1]', 'string(1)', 'missing'],
    ]);
    expect(entries.every((entry) => !('old' in entry) && !('new' in entry))).toBe(true);
    expect(entries[2]).not.toHaveProperty('newFingerprint');
    // Fingerprints tell values apart and repeat for the same value, without revealing it.
    expect(entries[0]!['oldFingerprint']).toMatch(/^[\w-]{8}$/);
    expect(entries[0]!['oldFingerprint']).not.toBe(entries[0]!['newFingerprint']);
    expect(second!.fields['diff']).toEqual(first!.fields['diff']);

    const [raw] = await mismatchLines({ logDiffValues: true });
    expect((raw!.fields['diff'] as { entries: Record<string, unknown>[] }).entries[0]).toMatchObject({
      path: 'email',
      old: 'alice@example.com',
      new: 'alice@example.org',
    });
  });

  it('compared the object the handler had already mutated: a formatted field tripped the guardrail', async () => {
    const { options } = stores();
    const migration = createMigrationFlag(createTestFlags({ [KEY]: 'shadow' }), KEY, {
      ...options,
      registry: new Registry(),
      guardrail: { minSamples: 20 },
      maxConcurrentShadowReads: 64,
      readOld: async (id: number) => ({ id, totalCents: 1234, placedAt: new Date(0), lines: [{ sku: 'a' }] }),
      readNew: async (id: number) => ({ id, totalCents: 1234, placedAt: new Date(0), lines: [{ sku: 'a' }] }),
    } as unknown as typeof options);
    for (let id = 0; id < 30; id += 1) {
      const order = (await migration.read({}, id)) as unknown as Record<string, unknown>;
      // What a request handler does next, before the background comparison gets to run.
      order['totalCents'] = `$${(1234 / 100).toFixed(2)}`;
      (order['lines'] as { sku: string }[]).push({ sku: 'gift-wrap' });
    }
    await migration.settled();
    expect(migration.stats).toMatchObject({ consistent: 30, inconsistent: 0, guardrailTripped: false });
    expect((await migration.check().run(AbortSignal.timeout(1_000))).status).toBe('UP');
  });

  it('snapshots with the `snapshot` option, and compares values it cannot copy as they are (logged once)', async () => {
    class Money {
      readonly cents: number;
      constructor(cents: number) {
        this.cents = cents;
      }
    }
    const { options } = stores();
    const log = recordingLogger();
    const base = {
      ...options,
      registry: new Registry(),
      logger: log.logger,
      guardrail: false,
      maxConcurrentShadowReads: 64,
      readOld: async () => ({ total: new Money(5) }),
      readNew: async () => ({ total: new Money(5) }),
    } as unknown as typeof options;
    // A class instance: structuredClone would turn it into a plain object that no longer deep-equals the other side.
    const live = createMigrationFlag(createTestFlags({ [KEY]: 'shadow' }), KEY, base);
    for (let id = 0; id < 3; id += 1) await live.read({}, id);
    await live.settled();
    expect(live.stats).toMatchObject({ consistent: 3, inconsistent: 0 });
    expect(log.events().filter((event) => event === 'flags.migration.snapshot_unavailable')).toHaveLength(1);

    let copies = 0;
    const copied = createMigrationFlag(createTestFlags({ [KEY]: 'shadow' }), KEY, {
      ...base,
      registry: new Registry(),
      snapshot: (value: unknown) => {
        copies += 1;
        const { total } = value as { total: Money };
        return { total: new Money(total.cents) };
      },
    } as unknown as typeof options);
    for (let id = 0; id < 3; id += 1) {
      const result = (await copied.read({}, id)) as unknown as { total: Money };
      (result as { total: unknown }).total = new Money(999);
    }
    await copied.settled();
    expect(copies).toBe(3);
    expect(copied.stats).toMatchObject({ consistent: 3, inconsistent: 0 });
  });

  it('trips the guardrail over the mismatch threshold (event + check DOWN) and clears it when the window recovers', async () => {
    const { options } = stores();
    let now = 1_000_000;
    const events: MigrationGuardrailEvent[] = [];
    let differ = true;
    const flags = createTestFlags({ [KEY]: 'shadow' });
    const migration = createMigrationFlag(flags, KEY, {
      ...options,
      registry: new Registry(),
      clock: { now: () => now },
      guardrail: { maxMismatchRate: 0.2, minSamples: 10, windowMs: 60_000 },
      maxConcurrentShadowReads: 16,
      onGuardrail: (event) => events.push(event),
      readOld: async () => 'a',
      readNew: async () => (differ ? 'b' : 'a'),
    });
    const check = migration.check();
    expect(check.critical).toBe(false);
    for (let index = 0; index < 8; index += 1) await migration.read({}, index);
    await migration.settled();
    differ = false;
    expect(events).toEqual([]);
    for (let index = 0; index < 2; index += 1) await migration.read({}, index);
    await migration.settled();
    expect(events.map((event) => event.state)).toEqual(['tripped']);
    expect(events[0]).toMatchObject({ migration: KEY, samples: 10, mismatchRate: 0.8, threshold: 0.2 });
    expect((await check.run(AbortSignal.timeout(1_000))).status).toBe('DOWN');
    now += 120_000;
    for (let index = 0; index < 10; index += 1) await migration.read({}, index);
    await migration.settled();
    expect(events.map((event) => event.state)).toEqual(['tripped', 'cleared']);
    expect((await check.run(AbortSignal.timeout(1_000))).status).toBe('UP');
  });
});

describe('createMigrationFlag options', () => {
  it('names the option, the expectation and the value it got', () => {
    const { options } = stores();
    const flags = createTestFlags<string>({});
    const attempt = (extra: Record<string, unknown>) => () => createMigrationFlag(flags, KEY, { ...options, ...extra });
    expect(attempt({ shadowSampleRatio: 2 })).toThrow(
      'Expected `shadowSampleRatio` to be a number between 0 and 1, got 2',
    );
    expect(attempt({ readNew: 'nope' })).toThrow('Expected `readNew` to be a function, got "nope"');
    expect(attempt({ defaultStage: 'on' })).toThrow(/Expected `defaultStage` to be one of off, dualwrite/);
    try {
      attempt({ maxConcurrentShadowReads: 0.5 })();
    } catch (error) {
      expect(isFlagsError(error, 'GANTRY_FLAGS_INVALID_OPTIONS')).toBe(true);
    }
  });
});

describe('structuralDiff', () => {
  it('lists differing paths with value types and fingerprints, values only when asked', () => {
    const before = { a: 1, b: { c: 'x', d: [1, 2] } };
    const after = { a: 1, b: { c: 'y', d: [1, 3] }, e: true };
    expect(structuralDiff(before, after)).toEqual({
      entries: [
        {
          path: 'b.c',
          oldType: 'string(1)',
          newType: 'string(1)',
          oldFingerprint: expect.any(String),
          newFingerprint: expect.any(String),
        },
        {
          path: 'b.d[1]',
          oldType: 'number',
          newType: 'number',
          oldFingerprint: expect.any(String),
          newFingerprint: expect.any(String),
        },
        { path: 'e', oldType: 'missing', newType: 'boolean', newFingerprint: expect.any(String) },
      ],
      truncated: false,
    });
    expect(structuralDiff(before, after, { includeValues: true }).entries).toMatchObject([
      { path: 'b.c', old: 'x', new: 'y' },
      { path: 'b.d[1]', old: 2, new: 3 },
      { path: 'e', old: '(missing)', new: true },
    ]);
    // Same value, same fingerprint (within a process); the string "2" and the number 2 differ.
    const [first] = structuralDiff({ v: 2 }, { v: '2' }).entries;
    expect(first!.oldFingerprint).toBe(structuralDiff({ v: 2 }, { v: 3 }).entries[0]!.oldFingerprint);
    expect(first!.oldFingerprint).not.toBe(first!.newFingerprint);
  });
});
