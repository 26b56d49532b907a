// The only place this package reads the environment.
import { invalidOption } from './errors.ts';
import type { RevokeMode, RotatingPoolOptions } from './rotating-pool.ts';
import type { VaultAuth, VaultOptions } from './vault.ts';

type Env = Readonly<Record<string, string | undefined>>;

function numberFrom(env: Env, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw invalidOption(name, 'a finite number ≥ 0', raw);
  return value;
}

const set = (env: Env, name: string): string | undefined => {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
};

/**
 * Vault client options from the environment. `GANTRY_SECRETS_VAULT_ADDR` (or `VAULT_ADDR`),
 * `GANTRY_SECRETS_AUTH_METHOD` (`token` | `approle` | `kubernetes`; default `token` when a token is set),
 * `GANTRY_SECRETS_VAULT_TOKEN` (or `VAULT_TOKEN`), `GANTRY_SECRETS_APPROLE_ROLE_ID`,
 * `GANTRY_SECRETS_APPROLE_SECRET_ID`, `GANTRY_SECRETS_KUBERNETES_ROLE`, `GANTRY_SECRETS_KUBERNETES_JWT_FILE`,
 * `GANTRY_SECRETS_AUTH_MOUNT`, `GANTRY_SECRETS_NAMESPACE` (or `VAULT_NAMESPACE`),
 * `GANTRY_SECRETS_REQUEST_TIMEOUT_MS`. Pass the result (plus clock, logger…) to `createVault`, which validates it.
 * @throws SecretsError `GANTRY_SECRETS_INVALID_OPTIONS` for a malformed number or an unknown auth method
 * @example
 * const vault = createVault({ ...vaultOptionsFromEnv(), logger });
 */
export function vaultOptionsFromEnv(env: Env = process.env): VaultOptions {
  const token = set(env, 'GANTRY_SECRETS_VAULT_TOKEN') ?? set(env, 'VAULT_TOKEN');
  const method = set(env, 'GANTRY_SECRETS_AUTH_METHOD') ?? (token === undefined ? undefined : 'token');
  const mount = set(env, 'GANTRY_SECRETS_AUTH_MOUNT');
  let auth: VaultAuth;
  switch (method as 'token' | 'approle' | 'kubernetes' | undefined) {
    case 'token':
      auth = { method: 'token', token: token ?? '' };
      break;
    case 'approle': {
      const secretId = set(env, 'GANTRY_SECRETS_APPROLE_SECRET_ID');
      auth = {
        method: 'approle',
        roleId: set(env, 'GANTRY_SECRETS_APPROLE_ROLE_ID') ?? '',
        ...(secretId === undefined ? {} : { secretId }),
        ...(mount === undefined ? {} : { mount }),
      };
      break;
    }
    case 'kubernetes': {
      const jwtFile = set(env, 'GANTRY_SECRETS_KUBERNETES_JWT_FILE');
      auth = {
        method: 'kubernetes',
        role: set(env, 'GANTRY_SECRETS_KUBERNETES_ROLE') ?? '',
        ...(jwtFile === undefined ? {} : { jwtFile }),
        ...(mount === undefined ? {} : { mount }),
      };
      break;
    }
    case undefined:
    default:
      throw invalidOption('GANTRY_SECRETS_AUTH_METHOD', 'one of "token", "approle", "kubernetes"', method);
  }
  const namespace = set(env, 'GANTRY_SECRETS_NAMESPACE') ?? set(env, 'VAULT_NAMESPACE');
  const requestTimeoutMs = numberFrom(env, 'GANTRY_SECRETS_REQUEST_TIMEOUT_MS');
  return {
    endpoint: set(env, 'GANTRY_SECRETS_VAULT_ADDR') ?? set(env, 'VAULT_ADDR') ?? '',
    auth,
    ...(namespace === undefined ? {} : { namespace }),
    ...(requestTimeoutMs === undefined ? {} : { requestTimeoutMs }),
  };
}

/**
 * Rotating-pool options from the environment (everything but `vault` and the pg settings):
 * `GANTRY_SECRETS_DB_ROLE`, `GANTRY_SECRETS_DB_MOUNT`, `GANTRY_SECRETS_WARMUP_TIMEOUT_MS`,
 * `GANTRY_SECRETS_DRAIN_TIMEOUT_MS`, `GANTRY_SECRETS_SAFETY_MARGIN_MS`, `GANTRY_SECRETS_READINESS_LEAD_MS`,
 * `GANTRY_SECRETS_REVOKE_MODE`.
 * @throws SecretsError `GANTRY_SECRETS_INVALID_OPTIONS` for a malformed number
 * @example
 * const pool = createRotatingPool({ ...rotatingPoolOptionsFromEnv(), vault, pool: { host: 'db', database: 'orders' } });
 */
export function rotatingPoolOptionsFromEnv(env: Env = process.env): Omit<RotatingPoolOptions, 'vault'> {
  const mount = set(env, 'GANTRY_SECRETS_DB_MOUNT');
  const revokeMode = set(env, 'GANTRY_SECRETS_REVOKE_MODE');
  const numbers = {
    warmupTimeoutMs: numberFrom(env, 'GANTRY_SECRETS_WARMUP_TIMEOUT_MS'),
    drainTimeoutMs: numberFrom(env, 'GANTRY_SECRETS_DRAIN_TIMEOUT_MS'),
    safetyMarginMs: numberFrom(env, 'GANTRY_SECRETS_SAFETY_MARGIN_MS'),
    readinessLeadMs: numberFrom(env, 'GANTRY_SECRETS_READINESS_LEAD_MS'),
  };
  return {
    role: set(env, 'GANTRY_SECRETS_DB_ROLE') ?? '',
    ...(mount === undefined ? {} : { mount }),
    ...(revokeMode === undefined ? {} : { revokeMode: revokeMode as RevokeMode }),
    ...Object.fromEntries(Object.entries(numbers).filter(([, value]) => value !== undefined)),
  };
}
