import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import type { Check, CheckResult } from './contracts.ts';
import { createCheck } from './checks/custom.ts';
import { createHealth, type Health } from './health.ts';
import type { HealthOptions } from './options.ts';
import { createManualClock, type ManualClock } from './testing.ts';

const opened: Health[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((health) => health.close()));
});

function setup(options: HealthOptions = {}): { health: Health; clock: ManualClock; registry: Registry } {
  const clock = createManualClock();
  const registry = new Registry();
  const health = createHealth({
    clock,
    registry,
    checkIntervalMs: 1_000,
    checkTimeoutMs: 200,
    ...options,
    shutdown: { signals: [], ...options.shutdown },
  });
  opened.push(health);
  return { health, clock, registry };
}

/** A check whose next results the test decides; counts runs and concurrency. */
function scripted(name: string, extra: Partial<Check> = {}) {
  const state = {
    results: [] as (CheckResult | Error | 'hang')[],
    runs: 0,
    active: 0,
    maxActive: 0,
    signals: [] as AbortSignal[],
  };
  let fallback: CheckResult | Error | 'hang' = { status: 'UP' };
  const check: Check = {
    name,
    ...extra,
    run: async (signal) => {
      state.runs += 1;
      state.active += 1;
      state.maxActive = Math.max(state.maxActive, state.active);
      state.signals.push(signal);
      const next = state.results.shift() ?? fallback;
      try {
        if (next === 'hang') {
          await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
          throw signal.reason;
        }
        if (next instanceof Error) throw next;
        return next;
      } finally {
        state.active -= 1;
      }
    },
  };
  return {
    check,
    state,
    always(result: CheckResult | Error | 'hang') {
      fallback = result;
      state.results.length = 0;
    },
  };
}

describe('background checks', () => {
  it('runs on the interval and answers probes from the cached result without running the check', async () => {
    const { health, clock } = setup();
    const db = scripted('db');
    health.addCheck(db.check);
    health.start();
    await clock.advance(0);
    expect(db.state.runs).toBe(1);
    for (let index = 0; index < 50; index += 1) expect(health.snapshot('readiness').status).toBe('UP');
    await health.probe('readiness');
    expect(db.state.runs).toBe(1);
    await clock.advance(1_000);
    expect(db.state.runs).toBe(2);
    await clock.advance(3_000);
    expect(db.state.runs).toBe(5);
  });

  it('never overlaps runs of a slow check: the next run starts an interval after the previous one settled', async () => {
    const { health, clock } = setup({ checkTimeoutMs: 10_000 });
    let release: (() => void) | undefined;
    let runs = 0;
    let active = 0;
    let maxActive = 0;
    health.addCheck({
      name: 'slow',
      run: async () => {
        runs += 1;
        active += 1;
        maxActive = Math.max(maxActive, active);
        await new Promise<void>((resolve) => (release = resolve));
        active -= 1;
        return { status: 'UP' };
      },
    });
    health.start();
    await clock.advance(5_000);
    expect(runs).toBe(1);
    release?.();
    await clock.advance(999);
    expect(runs).toBe(1);
    await clock.advance(1);
    expect(runs).toBe(2);
    expect(maxActive).toBe(1);
  });

  it('aborts the signal at the timeout and reports DOWN with the reason', async () => {
    const { health, clock, registry } = setup();
    const db = scripted('db');
    db.always('hang');
    health.addCheck(db.check, { timeoutMs: 300 });
    health.start();
    await clock.advance(299);
    expect(db.state.signals[0]?.aborted).toBe(false);
    expect(health.snapshot('readiness').checks).toContainEqual({
      name: 'db',
      status: 'DOWN',
      data: { reason: 'no result yet; first run in progress' },
    });
    await clock.advance(1);
    expect(db.state.signals[0]?.aborted).toBe(true);
    expect((db.state.signals[0]?.reason as { code?: string }).code).toBe('GANTRY_HEALTH_CHECK_TIMEOUT');
    const report = health.snapshot('readiness');
    expect(report.status).toBe('DOWN');
    expect(report.checks).toContainEqual({ name: 'db', status: 'DOWN', data: { reason: 'timed out after 300 ms' } });
    expect(await registry.getSingleMetricAsString('gantry_health_check_timeouts_total')).toContain('check="db"} 1');
  });

  it('turns a throwing check DOWN with a one-line reason, no stack and no credentials', async () => {
    const { health, clock } = setup();
    const db = scripted('db');
    const error = new Error(
      'connect failed for postgres://app:s3cret@db:5432/orders\n    at Socket.connect (net.js:1:1)',
    );
    db.always(error);
    health.addCheck(db.check);
    health.start();
    await clock.advance(0);
    const [view] = health.snapshot('readiness').checks.filter((check) => check.name === 'db');
    expect(view).toEqual({
      name: 'db',
      status: 'DOWN',
      data: { reason: 'connect failed for postgres://app:***@db:5432/orders' },
    });
    expect(JSON.stringify(view)).not.toContain('s3cret');
    expect(JSON.stringify(view)).not.toContain('net.js');
  });

  it('turns a check that returns a malformed result DOWN', async () => {
    const { health, clock } = setup();
    health.addCheck({ name: 'bad', run: async () => ({ status: 'OK' }) as unknown as CheckResult });
    health.addCheck({
      name: 'nested',
      run: async () => ({ status: 'UP', data: { deep: { x: 1 } } }) as unknown as CheckResult,
    });
    health.start();
    await clock.advance(0);
    const checks = health.snapshot('readiness').checks;
    expect(checks.find((check) => check.name === 'bad')?.status).toBe('DOWN');
    expect(checks.find((check) => check.name === 'nested')?.data?.['reason']).toMatch(/invalid result/);
  });

  it('counts a check that ignores its signal DOWN and, once its result is stale, says so without starting a second run', async () => {
    const { health, clock } = setup();
    let runs = 0;
    health.addCheck({
      name: 'stubborn',
      run: () => {
        runs += 1;
        return new Promise<CheckResult>(() => undefined);
      },
    });
    health.addCheck(scripted('ok').check);
    health.start();
    await clock.advance(200);
    expect(health.snapshot('readiness').checks.find((check) => check.name === 'stubborn')?.data).toEqual({
      reason: 'timed out after 200 ms',
    });
    await clock.advance(10_000);
    expect(runs).toBe(1);
    const view = health.snapshot('readiness').checks.find((check) => check.name === 'stubborn');
    expect(view?.status).toBe('DOWN');
    expect(view?.data?.['reason']).toMatch(
      /^stale: last result \d+ ms ago; a run has been going for \d+ ms \(the check ignores its AbortSignal\)$/,
    );
  });

  it('damps flapping: DOWN only after N consecutive failures, UP again only after M successes', async () => {
    const { health, clock } = setup({ failureThreshold: 3, successThreshold: 2 });
    const db = scripted('db');
    health.addCheck(db.check);
    health.start();
    await clock.advance(0);
    expect(health.snapshot('readiness').status).toBe('UP');
    db.always({ status: 'DOWN' });
    await clock.advance(1_000);
    await clock.advance(1_000);
    const degraded = health.snapshot('readiness');
    expect(degraded.status).toBe('UP');
    expect(degraded.checks.find((check) => check.name === 'db')?.data).toEqual({ consecutiveFailures: 2 });
    await clock.advance(1_000);
    expect(health.snapshot('readiness').status).toBe('DOWN');
    db.always({ status: 'UP' });
    await clock.advance(1_000);
    expect(health.snapshot('readiness').status).toBe('DOWN');
    await clock.advance(1_000);
    expect(health.snapshot('readiness').status).toBe('UP');
  });

  it('keeps readiness UP when only a non-critical check is DOWN, and shows it', async () => {
    const { health, clock } = setup();
    const cache = scripted('cache', { critical: false });
    cache.always({ status: 'DOWN', data: { hitRatio: 0 } });
    health.addCheck(cache.check);
    health.addCheck(scripted('db').check);
    health.start();
    await clock.advance(0);
    const report = health.snapshot('readiness');
    expect(report.status).toBe('UP');
    expect(report.checks).toContainEqual({ name: 'cache', status: 'DOWN', data: { hitRatio: 0, critical: false } });
  });

  it('stops the background loop on close and aborts a run in progress', async () => {
    const { health, clock } = setup({ checkTimeoutMs: 10_000 });
    const db = scripted('db');
    db.always('hang');
    health.addCheck(db.check);
    health.start();
    await clock.advance(0);
    await health.close();
    expect(db.state.signals[0]?.aborted).toBe(true);
    await clock.advance(60_000);
    expect(db.state.runs).toBe(1);
    expect(clock.pendingTimers).toBe(0);
  });
});

describe('startup probe', () => {
  it('is DOWN until every startup check has passed once, then stays UP while readiness follows the checks', async () => {
    const { health, clock } = setup();
    const migrations = scripted('migrations');
    migrations.state.results.push({ status: 'DOWN' });
    const warm = scripted('warm');
    health.addCheck(migrations.check, { groups: ['startup', 'readiness'] });
    health.addCheck(warm.check, { groups: ['startup'] });
    expect(health.snapshot('startup').status).toBe('DOWN');
    health.start();
    await clock.advance(0);
    expect(health.started).toBe(false);
    expect(health.snapshot('startup').status).toBe('DOWN');
    expect(health.snapshot('readiness').checks[0]).toEqual({
      name: 'started',
      status: 'DOWN',
      data: { reason: 'startup checks have not all passed yet' },
    });
    await clock.advance(1_000);
    expect(health.started).toBe(true);
    expect(health.snapshot('startup').status).toBe('UP');
    expect(health.snapshot('readiness').status).toBe('UP');
    // A check only in the startup group stops once it has done its job.
    const warmRuns = warm.state.runs;
    migrations.always({ status: 'DOWN' });
    await clock.advance(5_000);
    expect(warm.state.runs).toBe(warmRuns);
    expect(health.snapshot('startup').status).toBe('UP');
    expect(health.snapshot('readiness').status).toBe('DOWN');
  });

  it('latches UP on markStarted() even with a failing startup check', async () => {
    const { health, clock } = setup();
    const slow = scripted('slow');
    slow.always({ status: 'DOWN' });
    health.addCheck(slow.check, { groups: ['startup'] });
    health.start();
    await clock.advance(0);
    expect(health.snapshot('startup').status).toBe('DOWN');
    health.markStarted();
    expect(health.snapshot('startup')).toEqual({
      status: 'UP',
      checks: [{ name: 'slow', status: 'UP', data: { latched: true } }],
    });
  });

  it('with no startup checks is UP once the registry runs; startup and readiness are DOWN before start()', () => {
    const { health } = setup();
    expect(health.snapshot('startup')).toEqual({ status: 'DOWN', checks: [] });
    expect(health.snapshot('readiness')).toEqual({
      status: 'DOWN',
      checks: [{ name: 'started', status: 'DOWN', data: { reason: 'health.start() has not been called' } }],
    });
    health.start();
    expect(health.snapshot('startup')).toEqual({ status: 'UP', checks: [] });
    expect(health.snapshot('readiness')).toEqual({ status: 'UP', checks: [] });
    expect(health.snapshot('liveness')).toEqual({ status: 'UP', checks: [] });
  });
});

describe('on-demand checks', () => {
  it('run when a probe finds the cache expired, once for concurrent probes, and are reused within cacheMs', async () => {
    const { health, clock } = setup();
    const api = scripted('api');
    health.addCheck(api.check, { mode: 'on-demand', cacheMs: 500 });
    health.start();
    await clock.advance(10_000);
    expect(api.state.runs).toBe(0);
    const [first, second] = await Promise.all([health.probe('readiness'), health.probe('readiness')]);
    expect(first.status).toBe('UP');
    expect(second.status).toBe('UP');
    expect(api.state.runs).toBe(1);
    await clock.advance(499);
    await health.probe('readiness');
    expect(api.state.runs).toBe(1);
    await clock.advance(1);
    await health.probe('readiness');
    expect(api.state.runs).toBe(2);
  });

  it('bounds a hanging on-demand check by its timeout', async () => {
    const { health, clock } = setup();
    const api = scripted('api');
    api.always('hang');
    health.addCheck(api.check, { mode: 'on-demand', timeoutMs: 250 });
    health.start();
    const pending = health.probe('readiness');
    await clock.advance(250);
    const report = await pending;
    expect(report.checks).toContainEqual({ name: 'api', status: 'DOWN', data: { reason: 'timed out after 250 ms' } });
  });
});

describe('combined probe, info and changes', () => {
  it('/q/health lists every check once and is DOWN when any group is', async () => {
    const { health, clock } = setup();
    health.addCheck(
      createCheck('loop', () => true),
      { groups: ['liveness'] },
    );
    health.addCheck(
      createCheck('db', () => false),
      { groups: ['readiness', 'startup'] },
    );
    health.start();
    await clock.advance(0);
    const all = health.snapshot('all');
    expect(all.status).toBe('DOWN');
    expect(all.checks.map((check) => check.name)).toEqual(['loop', 'started', 'db']);
  });

  it('serves /q/info with contributors, isolating one that throws', () => {
    const { health } = setup({
      service: 'orders',
      version: '1.4.0',
      commit: 'abc123',
      wallClock: () => new Date('2026-01-02T03:04:05Z'),
    });
    health.addInfoContributor({ name: 'schema', contribute: () => ({ current: '1.2.10', phase: 'expand' }) });
    health.addInfoContributor({
      name: 'flags',
      contribute: () => {
        throw new Error('token=abc not loaded');
      },
    });
    expect(health.info()).toEqual({
      service: 'orders',
      version: '1.4.0',
      commit: 'abc123',
      startedAt: '2026-01-02T03:04:05.000Z',
      schema: { current: '1.2.10', phase: 'expand' },
      flags: { error: 'token=*** not loaded' },
    });
  });

  it('tells listeners when a probe changes status', async () => {
    const { health, clock } = setup();
    const db = scripted('db');
    health.addCheck(db.check);
    const changes: string[] = [];
    health.onChange((change) => changes.push(`${change.probe}:${change.previous}->${change.status}`));
    health.start();
    await clock.advance(0);
    db.always({ status: 'DOWN' });
    await clock.advance(1_000);
    expect(changes).toEqual(['readiness:DOWN->UP', 'readiness:UP->DOWN']);
  });

  it('exports check status and duration per check and group', async () => {
    const { health, clock, registry } = setup();
    health.addCheck(
      createCheck('db', () => false),
      { groups: ['readiness', 'startup'] },
    );
    health.start();
    await clock.advance(0);
    const status = await registry.getSingleMetricAsString('gantry_health_check_status');
    expect(status).toContain('gantry_health_check_status{check="db",group="readiness"} 0');
    expect(status).toContain('gantry_health_check_status{check="db",group="startup"} 0');
    expect(await registry.getSingleMetricAsString('gantry_health_check_duration_seconds')).toContain(
      'gantry_health_check_duration_seconds_count{check="db"} 1',
    );
    expect(await registry.getSingleMetricAsString('gantry_health_probe_status')).toContain('group="readiness"} 0');
  });
});

describe('checks that hold a resource (close())', () => {
  const closable = (name: string, close: () => Promise<void>) => ({
    name,
    run: async (): Promise<CheckResult> => ({ status: 'UP' }),
    close,
  });

  it('closes them when the shutdown stops the checks, after the hooks, and a failing close() fails nothing', async () => {
    const order: string[] = [];
    const { health } = setup({ shutdown: { delayMs: 0, terminate: () => undefined } });
    health.addCheck(closable('kafka', async () => void order.push('check closed')));
    health.addCheck(
      closable('broken', async () => {
        throw new Error('boom');
      }),
    );
    health.addShutdownHook({ name: 'pool', run: async () => void order.push('hook') });
    health.start();
    const outcome = await health.shutdown();
    expect(order).toEqual(['hook', 'check closed']);
    expect(outcome).toMatchObject({ exitCode: 0, failedHooks: [] });
  });

  it('closes them once on close()', async () => {
    let closes = 0;
    const { health } = setup();
    health.addCheck(closable('kafka', async () => void (closes += 1)));
    health.start();
    await health.close();
    await health.close();
    expect(closes).toBe(1);
  });
});
