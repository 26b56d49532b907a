import { describe, expect, it } from 'vitest';
import { rotatingPoolOptionsFromEnv, vaultOptionsFromEnv } from './options-from-env.ts';
import { createRotatingPool } from './rotating-pool.ts';
import { humanDuration, parseDurationSeconds, vaultExpiration } from './dev-server.ts';
import { createVault } from './vault.ts';

const auth = { method: 'token', token: 't' } as const;

describe('createVault options', () => {
  it.each([
    [{ endpoint: 'vault:8200', auth }, 'Expected `endpoint` to be an http(s) URL, got "vault:8200"'],
    [
      { endpoint: 'http://v', auth: { method: 'ldap' } },
      'Expected `auth.method` to be one of "token", "approle", "kubernetes", got "ldap"',
    ],
    [
      { endpoint: 'http://v', auth: { method: 'approle', roleId: '' } },
      'Expected `auth.roleId` to be a non-empty string, got ""',
    ],
    [
      { endpoint: 'http://v', auth: { method: 'kubernetes', role: 'r', mount: '/bad mount/' } },
      'Expected `auth.mount` to be a mount path such as "database" or "db/prod", got "/bad mount/"',
    ],
    [
      { endpoint: 'http://v', auth, requestTimeoutMs: 'abc' },
      'Expected `requestTimeoutMs` to be a finite number ≥ 1, got "abc"',
    ],
  ])('rejects %j', (options, message) => {
    expect(() => createVault(options as never)).toThrow(message);
  });

  it('freezes a config without credentials', () => {
    const vault = createVault({
      endpoint: 'http://127.0.0.1:8200/',
      auth: { method: 'approle', roleId: 'r', secretId: 'SECRET' },
      registry: null,
    });
    expect(Object.isFrozen(vault.config)).toBe(true);
    expect(vault.config).toMatchObject({
      endpoint: 'http://127.0.0.1:8200',
      authMethod: 'approle',
      authMount: 'approle',
      requestTimeoutMs: 5_000,
    });
    expect(JSON.stringify(vault.config)).not.toContain('SECRET');
  });
});

describe('createRotatingPool options', () => {
  const vault = createVault({ endpoint: 'http://127.0.0.1:8200', auth, registry: null });
  it.each([
    [{}, 'Expected `vault` to be a client from createVault(), got undefined'],
    [{ vault, role: '' }, 'Expected `role` to be a non-empty string, got ""'],
    [
      { vault, role: 'r', pool: { user: 'x' } },
      'Expected `pool` to be settings without `user`, `password` or `connectionString` (they come from Vault), got "user"',
    ],
    [{ vault, role: 'r', warmConnections: 0 }, 'Expected `warmConnections` to be an integer ≥ 1 or "match", got 0'],
    [{ vault, role: 'r', warmConcurrency: 1.5 }, 'Expected `warmConcurrency` to be a finite integer ≥ 1, got 1.5'],
    [
      { vault, role: 'r', revokeMode: 'drop' },
      'Expected `revokeMode` to be one of "revoke", "shorten", "expire", got "drop"',
    ],
    [
      { vault, role: 'r', rotationFraction: 2 },
      'Expected `rotationFraction` to be a finite number between 0 and 0.9, got 2',
    ],
  ])('rejects %#', (options, message) => {
    expect(() => createRotatingPool(options as never)).toThrow(message);
  });
});

describe('options from the environment', () => {
  it('reads GANTRY_SECRETS_* (with VAULT_* fallbacks) and nothing else', () => {
    expect(
      vaultOptionsFromEnv({
        VAULT_ADDR: 'http://vault:8200',
        GANTRY_SECRETS_AUTH_METHOD: 'approle',
        GANTRY_SECRETS_APPROLE_ROLE_ID: 'rid',
        GANTRY_SECRETS_APPROLE_SECRET_ID: 'sid',
        GANTRY_SECRETS_AUTH_MOUNT: 'approle-prod',
        GANTRY_SECRETS_REQUEST_TIMEOUT_MS: '2500',
      }),
    ).toEqual({
      endpoint: 'http://vault:8200',
      auth: { method: 'approle', roleId: 'rid', secretId: 'sid', mount: 'approle-prod' },
      requestTimeoutMs: 2_500,
    });
    expect(
      vaultOptionsFromEnv({ GANTRY_SECRETS_VAULT_ADDR: 'http://a', VAULT_ADDR: 'http://b', VAULT_TOKEN: 't' }),
    ).toEqual({
      endpoint: 'http://a',
      auth: { method: 'token', token: 't' },
    });
    expect(() => vaultOptionsFromEnv({ GANTRY_SECRETS_REQUEST_TIMEOUT_MS: 'x', VAULT_TOKEN: 't' })).toThrow(
      'Expected `GANTRY_SECRETS_REQUEST_TIMEOUT_MS` to be a finite number ≥ 0, got "x"',
    );
    expect(() => vaultOptionsFromEnv({})).toThrow('Expected `GANTRY_SECRETS_AUTH_METHOD`');
    expect(
      rotatingPoolOptionsFromEnv({
        GANTRY_SECRETS_DB_ROLE: 'app',
        GANTRY_SECRETS_DRAIN_TIMEOUT_MS: '5000',
        GANTRY_SECRETS_REVOKE_MODE: 'expire',
      }),
    ).toEqual({
      role: 'app',
      drainTimeoutMs: 5_000,
      revokeMode: 'expire',
    });
  });
});

describe('Vault duration helpers', () => {
  it('prints and parses durations the way Vault does', () => {
    expect(humanDuration(3_600)).toBe('1h');
    expect(humanDuration(69)).toBe('1m9s');
    expect(humanDuration(0)).toBe('0s');
    expect(parseDurationSeconds('1h30m')).toBe(5_400);
    expect(parseDurationSeconds('3600')).toBe(3_600);
    expect(parseDurationSeconds(60)).toBe(60);
    expect(parseDurationSeconds(undefined)).toBe(0);
    expect(parseDurationSeconds('soon')).toBeUndefined();
    expect(vaultExpiration(Date.UTC(2026, 0, 2, 3, 4, 5, 678))).toBe('2026-01-02 03:04:05+0000');
  });
});
