import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import type { ShutdownHook } from './contracts.ts';
import { createCheck } from './checks/custom.ts';
import { createHealth, type Health } from './health.ts';
import type { Logger } from './logger.ts';
import type { HealthOptions, ShutdownOutcome } from './options.ts';
import { createManualClock, type ManualClock } from './testing.ts';

interface Line {
  level: string;
  fields: Record<string, unknown>;
  message: string | undefined;
}

function memoryLogger(lines: Line[]): Logger {
  const make = (level: string) => (first: Record<string, unknown> | string, message?: string) => {
    if (typeof first === 'string') lines.push({ level, fields: {}, message: first });
    else lines.push({ level, fields: first, message });
  };
  const logger: Logger = {
    debug: make('debug'),
    info: make('info'),
    warn: make('warn'),
    error: make('error'),
    child: () => logger,
  };
  return logger;
}

const opened: Health[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((health) => health.close()));
});

function setup(shutdown: HealthOptions['shutdown'] = {}, hooks: ShutdownHook[] = []) {
  const clock: ManualClock = createManualClock();
  const lines: Line[] = [];
  const outcomes: ShutdownOutcome[] = [];
  const registry = new Registry();
  const health = createHealth({
    clock,
    registry,
    logger: memoryLogger(lines),
    shutdownHooks: hooks,
    shutdown: {
      signals: [],
      delayMs: 2_000,
      drainTimeoutMs: 1_000,
      hookTimeoutMs: 500,
      gracePeriodMs: 10_000,
      terminate: (outcome) => {
        outcomes.push(outcome);
      },
      ...shutdown,
    },
  });
  opened.push(health);
  return { health, clock, lines, outcomes, registry };
}

function hook(name: string, order: string[], behaviour: 'ok' | 'throw' | 'hang' = 'ok', timeoutMs?: number) {
  const seen: { signal?: AbortSignal } = {};
  const value: ShutdownHook = {
    name,
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
    run: async (signal) => {
      seen.signal = signal;
      order.push(name);
      if (behaviour === 'throw') throw new Error(`${name} broke`);
      if (behaviour === 'hang') await new Promise(() => undefined);
    },
  };
  return { hook: value, seen };
}

describe('shutdown sequence', () => {
  it('turns readiness DOWN at once, keeps liveness UP, waits the delay, runs hooks in reverse order, then terminates', async () => {
    const order: string[] = [];
    const { health, clock, outcomes, registry } = setup({}, [hook('telemetry', order).hook, hook('pool', order).hook]);
    health.addCheck(
      createCheck('loop', () => true),
      { groups: ['liveness'] },
    );
    health.addShutdownHook(hook('kafka', order).hook);
    health.start();
    await clock.advance(0);
    expect(health.snapshot('readiness').status).toBe('UP');

    const done = health.shutdown('deploy');
    await clock.advance(0);
    expect(health.phase).toBe('delay');
    expect(health.snapshot('readiness')).toEqual({
      status: 'DOWN',
      checks: [{ name: 'shutdown', status: 'DOWN', data: { phase: 'delay' } }],
    });
    expect(health.snapshot('liveness').status).toBe('UP');
    await clock.advance(1_999);
    expect(order).toEqual([]);
    await clock.advance(1);
    await done;
    expect(order).toEqual(['kafka', 'pool', 'telemetry']);
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]).toMatchObject({
      exitCode: 0,
      reason: 'deploy',
      deadlineExceeded: false,
      forcedSockets: 0,
      failedHooks: [],
    });
    expect(outcomes[0]?.elapsedMs).toBe(2_000);
    expect(outcomes[0]?.remainingMs).toBe(8_000);
    expect(await registry.getSingleMetricAsString('gantry_health_shutdown_phase')).toContain('phase="terminate"} 1');
    expect(await registry.getSingleMetricAsString('gantry_health_shutdown_phase_duration_seconds')).toContain(
      'phase="delay"} 2',
    );
  });

  it('gives each hook its own timeout, aborts its signal, carries on and exits with 1', async () => {
    const order: string[] = [];
    const stuck = hook('stuck', order, 'hang', 300);
    const { health, clock, outcomes, lines } = setup({ delayMs: 0 }, [
      hook('last', order).hook,
      hook('broken', order, 'throw').hook,
      stuck.hook,
    ]);
    health.start();
    const done = health.shutdown();
    await clock.advance(300);
    await done;
    expect(stuck.seen.signal?.aborted).toBe(true);
    expect((stuck.seen.signal?.reason as { code?: string }).code).toBe('GANTRY_HEALTH_HOOK_TIMEOUT');
    expect(order).toEqual(['stuck', 'broken', 'last']);
    expect(outcomes[0]).toMatchObject({ exitCode: 1, failedHooks: ['stuck', 'broken'] });
    expect(lines.find((line) => line.fields['event'] === 'health.shutdown.hook.failed')?.fields['err']).toBe(
      'broken broke',
    );
  });

  it('terminates at the deadline (grace period minus the margin) even when hooks would take longer', async () => {
    const order: string[] = [];
    const { health, clock, outcomes } = setup({ delayMs: 1_000, gracePeriodMs: 3_000, hookTimeoutMs: 5_000 }, [
      hook('never-reached', order).hook,
      hook('slow', order, 'hang').hook,
    ]);
    health.start();
    const done = health.shutdown();
    await clock.advance(2_000);
    await done;
    expect(order).toEqual(['slow']);
    expect(outcomes[0]).toMatchObject({ exitCode: 1, deadlineExceeded: true, failedHooks: ['slow', 'never-reached'] });
    expect(outcomes[0]?.elapsedMs).toBe(2_000);
  });

  it('warns at start when delay + drain + hooks exceed the grace period', () => {
    const { health, lines } = setup({ delayMs: 10_000, drainTimeoutMs: 15_000, gracePeriodMs: 30_000 }, [
      { name: 'flush', timeoutMs: 5_000, run: async () => undefined },
    ]);
    health.start();
    const warning = lines.find((line) => line.fields['event'] === 'health.shutdown.budget_exceeded');
    expect(warning?.level).toBe('warn');
    expect(warning?.message).toContain('(30000 ms) exceed the grace period minus 1000 ms (29000 ms)');
  });

  it('does not warn when the budget fits', () => {
    const { health, lines } = setup({ delayMs: 5_000, drainTimeoutMs: 10_000, gracePeriodMs: 30_000 });
    health.start();
    expect(lines.some((line) => line.fields['event'] === 'health.shutdown.budget_exceeded')).toBe(false);
  });

  it('returns the same promise when asked twice and does not restart the sequence on a second signal', async () => {
    const order: string[] = [];
    const { health, clock, outcomes, lines } = setup({ signals: ['SIGUSR2'], delayMs: 100 }, [
      hook('once', order).hook,
    ]);
    health.start();
    process.emit('SIGUSR2');
    await clock.advance(50);
    process.emit('SIGUSR2');
    const again = health.shutdown('again');
    await clock.advance(50);
    const outcome = await again;
    expect(order).toEqual(['once']);
    expect(outcomes).toHaveLength(1);
    expect(outcome).toMatchObject({ signal: 'SIGUSR2', reason: 'signal SIGUSR2' });
    expect(lines.filter((line) => line.fields['event'] === 'health.shutdown.repeated_signal')).toHaveLength(1);
    expect(process.listenerCount('SIGUSR2')).toBe(0);
  });

  it('refuses new checks and hooks once shutting down', async () => {
    const { health, clock } = setup({ delayMs: 1_000 });
    health.start();
    const done = health.shutdown();
    expect(() => health.addCheck(createCheck('late', () => true))).toThrow(/shutting down/);
    expect(() => health.addShutdownHook({ name: 'late', run: async () => undefined })).toThrow(
      expect.objectContaining({ code: 'GANTRY_HEALTH_CLOSED' }),
    );
    await clock.advance(1_000);
    await done;
  });

  it('installs and removes its signal listeners', async () => {
    const before = process.listenerCount('SIGTERM');
    const { health } = setup({ signals: ['SIGTERM', 'SIGINT'] });
    health.start();
    health.start();
    expect(process.listenerCount('SIGTERM')).toBe(before + 1);
    await health.close();
    await health.close();
    expect(process.listenerCount('SIGTERM')).toBe(before);
  });
});
