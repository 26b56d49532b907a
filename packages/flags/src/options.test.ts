import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { isFlagsError } from './errors.ts';
import { DEFAULT_REFRESH_INTERVAL_MS, flagsOptionsFromEnv, resolveFlagsOptions } from './options.ts';

describe('resolveFlagsOptions', () => {
  it('applies the documented defaults', () => {
    const options = resolveFlagsOptions({ url: 'http://unleash:4242/api', appName: 'orders' });
    expect(options).toMatchObject({
      refreshIntervalMs: DEFAULT_REFRESH_INTERVAL_MS,
      environment: 'default',
      tenantProperty: 'tenantId',
      backupPath: tmpdir(),
      offline: false,
      sendUsageMetrics: true,
    });
    expect(Object.isFrozen(options)).toBe(true);
  });

  it('names the option, what was expected and what was received', () => {
    expect(() => resolveFlagsOptions({ appName: 'orders' })).toThrow('Expected `url` to be the Unleash API URL');
    expect(() => resolveFlagsOptions({ url: 'unleash:4242', appName: 'orders' })).toThrow(
      'Expected `url` to be an http(s) URL, got "unleash:4242"',
    );
    expect(() => resolveFlagsOptions({ url: 'http://u', appName: 'o', refreshIntervalMs: Number.NaN })).toThrow(
      'Expected `refreshIntervalMs` to be a finite number ≥ 100, got NaN',
    );
    expect(() => resolveFlagsOptions({ url: 'http://u', appName: '' })).toThrow(
      'Expected `appName` to be a non-empty string, got ""',
    );
    try {
      resolveFlagsOptions({ url: 'http://u', appName: 'o', offline: 'yes' as unknown as boolean });
    } catch (error) {
      expect(isFlagsError(error, 'GANTRY_FLAGS_INVALID_OPTIONS')).toBe(true);
    }
  });

  it('allows no URL in offline mode, and memory-only backups', () => {
    expect(resolveFlagsOptions({ offline: true, appName: 'o', backupPath: false })).toMatchObject({
      url: undefined,
      backupPath: undefined,
    });
  });
});

describe('flagsOptionsFromEnv', () => {
  it('reads GANTRY_FLAGS_* variables and leaves unset ones out', () => {
    expect(
      flagsOptionsFromEnv({
        GANTRY_FLAGS_URL: 'http://unleash:4242/api',
        GANTRY_FLAGS_TOKEN: 'secret',
        GANTRY_FLAGS_REFRESH_INTERVAL_MS: '5000',
        GANTRY_FLAGS_BACKUP_PATH: 'off',
        GANTRY_FLAGS_OFFLINE: 'false',
        GANTRY_FLAGS_SEND_USAGE_METRICS: 'no',
        GANTRY_FLAGS_TENANT_PROPERTY: 'tenant',
      }),
    ).toEqual({
      url: 'http://unleash:4242/api',
      token: 'secret',
      refreshIntervalMs: 5000,
      backupPath: false,
      offline: false,
      sendUsageMetrics: false,
      tenantProperty: 'tenant',
    });
    expect(flagsOptionsFromEnv({})).toEqual({});
  });

  it('names the variable with a malformed value', () => {
    expect(() => flagsOptionsFromEnv({ GANTRY_FLAGS_REFRESH_INTERVAL_MS: 'soon' })).toThrow(
      'Expected GANTRY_FLAGS_REFRESH_INTERVAL_MS to be a finite number ≥ 0, got "soon"',
    );
    expect(() => flagsOptionsFromEnv({ GANTRY_FLAGS_OFFLINE: 'maybe' })).toThrow(
      'Expected GANTRY_FLAGS_OFFLINE to be true or false, got "maybe"',
    );
  });
});
