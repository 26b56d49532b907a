import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createCheck } from './checks/custom.ts';
import { createHealth } from './health.ts';
import {
  DEFAULT_DRAIN_TIMEOUT_MS,
  DEFAULT_SHUTDOWN_SIGNALS,
  healthOptionsFromEnv,
  type HealthOptions,
} from './options.ts';

const make = (options: HealthOptions) => createHealth({ registry: new Registry(), ...options });

describe('options', () => {
  it('freezes the validated config with the defaults', () => {
    const health = make({ service: 'orders' });
    expect(Object.isFrozen(health.config)).toBe(true);
    expect(Object.isFrozen(health.config.shutdown)).toBe(true);
    expect(health.config.shutdown.drainTimeoutMs).toBe(DEFAULT_DRAIN_TIMEOUT_MS);
    expect(health.config.shutdown.signals).toEqual(DEFAULT_SHUTDOWN_SIGNALS);
    expect(health.config.commit).toBeNull();
  });

  it.each([
    [{ checkTimeoutMs: -1 }, 'Expected `checkTimeoutMs` to be a finite number ≥ 1, got -1'],
    [{ checkIntervalMs: Number.NaN }, 'Expected `checkIntervalMs` to be a finite number ≥ 1, got NaN'],
    [{ failureThreshold: 1.5 }, 'Expected `failureThreshold` to be an integer ≥ 1, got 1.5'],
    [{ service: '' }, 'Expected `service` to be a non-empty string, got ""'],
    [{ shutdown: { delayMs: '5s' } }, 'Expected `shutdown.delayMs` to be a finite number ≥ 0, got "5s"'],
    [{ shutdown: { signals: ['SIGKILL'] } }, 'Expected `shutdown.signals` to be an array of'],
    [{ shutdown: { terminate: 'exit' } }, 'Expected `shutdown.terminate` to be a function, got "exit"'],
  ])('rejects %j naming the option', (options, message) => {
    expect(() => make(options as HealthOptions)).toThrow(message);
    expect(() => make(options as HealthOptions)).toThrow(
      expect.objectContaining({ code: 'GANTRY_HEALTH_INVALID_OPTION' }),
    );
  });

  it('rejects duplicate, reserved and malformed checks, and bad policies', () => {
    const health = make({});
    health.addCheck(createCheck('db', () => true));
    expect(() => health.addCheck(createCheck('db', () => true))).toThrow(
      expect.objectContaining({
        code: 'GANTRY_HEALTH_DUPLICATE_NAME',
        message: 'A check named "db" is already registered',
      }),
    );
    expect(() => health.addCheck(createCheck('shutdown', () => true))).toThrow(
      expect.objectContaining({ code: 'GANTRY_HEALTH_INVALID_CHECK' }),
    );
    expect(() => health.addCheck({ name: 'x' } as never)).toThrow(
      'Expected check "x" to have a `run(signal)` function',
    );
    expect(() =>
      health.addCheck(
        createCheck('y', () => true),
        { groups: ['ready' as never] },
      ),
    ).toThrow("Expected `check \"y\" groups` to be a non-empty array of 'liveness', 'readiness', 'startup'");
    expect(() =>
      health.addCheck(
        createCheck('z', () => true),
        { timeoutMs: 0 },
      ),
    ).toThrow('Expected `check "z" timeoutMs` to be a finite number ≥ 1, got 0');
  });

  it('rejects an unknown policy key instead of registering the check in the wrong probe', () => {
    // Regression: migrations' docs said `{ startup: true }`; health ignored it and the check went to readiness only.
    const health = make({});
    expect(() =>
      health.addCheck(
        createCheck('schema', () => true),
        { startup: true } as never,
      ),
    ).toThrow(
      expect.objectContaining({
        code: 'GANTRY_HEALTH_INVALID_OPTION',
        message: expect.stringContaining('Expected `check "schema" policy` to be only the keys groups, mode,'),
      }),
    );
    expect(health.snapshot('readiness').checks.map((check) => check.name)).not.toContain('schema');
  });

  it('rejects duplicate hooks and contributors, and contributors that take a reserved key', () => {
    const health = make({});
    health.addShutdownHook({ name: 'pool', run: async () => undefined });
    expect(() => health.addShutdownHook({ name: 'pool', run: async () => undefined })).toThrow(
      expect.objectContaining({ code: 'GANTRY_HEALTH_DUPLICATE_NAME' }),
    );
    health.addInfoContributor({ name: 'schema', contribute: () => ({}) });
    expect(() => health.addInfoContributor({ name: 'schema', contribute: () => ({}) })).toThrow(/already registered/);
    expect(() => health.addInfoContributor({ name: 'version', contribute: () => ({}) })).toThrow(
      /not one of service, version/,
    );
  });
});

describe('healthOptionsFromEnv', () => {
  it('maps GANTRY_HEALTH_* variables and falls back to OTEL_SERVICE_NAME', () => {
    expect(
      healthOptionsFromEnv({
        OTEL_SERVICE_NAME: 'orders',
        GANTRY_HEALTH_VERSION: '1.4.0',
        GANTRY_HEALTH_COMMIT: 'abc',
        GANTRY_HEALTH_CHECK_INTERVAL_MS: '2000',
        GANTRY_HEALTH_SHUTDOWN_SIGNALS: 'SIGTERM, SIGHUP',
        GANTRY_HEALTH_SHUTDOWN_DELAY_MS: '7000',
        GANTRY_HEALTH_GRACE_PERIOD_MS: '60000',
      }),
    ).toEqual({
      service: 'orders',
      version: '1.4.0',
      commit: 'abc',
      checkIntervalMs: 2000,
      shutdown: { signals: ['SIGTERM', 'SIGHUP'], delayMs: 7000, gracePeriodMs: 60000 },
    });
    expect(healthOptionsFromEnv({})).toEqual({});
    expect(healthOptionsFromEnv({ GANTRY_HEALTH_SHUTDOWN_SIGNALS: '' })).toEqual({ shutdown: { signals: [] } });
  });

  it('names the variable when a number does not parse', () => {
    expect(() => healthOptionsFromEnv({ GANTRY_HEALTH_DRAIN_TIMEOUT_MS: '10s' })).toThrow(
      'Expected `GANTRY_HEALTH_DRAIN_TIMEOUT_MS` to be a finite number ≥ 0, got "10s"',
    );
  });

  it('feeds createHealth', () => {
    const health = make({
      ...healthOptionsFromEnv({ GANTRY_HEALTH_SERVICE: 'billing', GANTRY_HEALTH_HOOK_TIMEOUT_MS: '1500' }),
    });
    expect(health.config.service).toBe('billing');
    expect(health.config.shutdown.hookTimeoutMs).toBe(1500);
  });
});
