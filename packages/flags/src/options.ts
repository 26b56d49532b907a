import { tmpdir } from 'node:os';
import type { Registry } from 'prom-client';
import type { Strategy } from 'unleash-client';
import type { AmbientContextReader } from './context.ts';
import { describe, type FlagRegistry } from './definitions.ts';
import { FlagsError } from './errors.ts';
import type { FlagsLogger } from './logger.ts';
import type { BootstrapData } from './snapshot-store.ts';

/** How often unleash-client polls for toggle changes. */
export const DEFAULT_REFRESH_INTERVAL_MS = 15_000;
/** How often usage counts are sent to Unleash. */
export const DEFAULT_METRICS_INTERVAL_MS = 60_000;
/** Timeout of one HTTP request to Unleash. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** How long `ready()` waits by default. */
export const DEFAULT_READY_TIMEOUT_MS = 10_000;
/** Context property that carries the tenant to Unleash constraints. */
export const DEFAULT_TENANT_PROPERTY = 'tenantId';
/** Unleash's context `environment` when none is given. */
export const DEFAULT_ENVIRONMENT = 'default';

/** A clock; tests move time with their own. */
export interface FlagsClock {
  now(): number;
}

/** Options of {@link createFlags}. */
export interface FlagsOptions<N extends string = string> {
  /** Unleash base URL, e.g. `https://unleash.example.com/api`. Required unless `offline`. */
  readonly url?: string;
  /** Backend (server-side SDK) API token, sent as `Authorization`. Never logged. */
  readonly token?: string;
  /** Application name reported to Unleash; also names the backup file. */
  readonly appName: string;
  /** Unleash context `environment` (a context value; the token decides the Unleash environment). @default 'default' */
  readonly environment?: string;
  readonly instanceId?: string;
  /** Only fetch toggles of this Unleash project. */
  readonly projectName?: string;
  /** The typed registry from {@link defineFlags}: names, defaults, owners, expiry dates. */
  readonly definitions?: FlagRegistry<N>;
  /** @default 15_000 */
  readonly refreshIntervalMs?: number;
  /** @default 60_000 */
  readonly metricsIntervalMs?: number;
  /** Send usage counts to Unleash. @default true */
  readonly sendUsageMetrics?: boolean;
  /** Per-request HTTP timeout. @default 10_000 */
  readonly requestTimeoutMs?: number;
  /** JSON file to start from when Unleash cannot be reached (Unleash's client features document). */
  readonly bootstrapPath?: string;
  /** Inline bootstrap data, instead of a file. */
  readonly bootstrap?: BootstrapData;
  /** Start from the bootstrap even when a backup of newer values exists. @default false */
  readonly preferBootstrap?: boolean;
  /** Folder for the backup of the last values; `false` keeps them in memory only. @default os.tmpdir() */
  readonly backupPath?: string | false;
  /** Never contact Unleash: evaluate the bootstrap (or backup) only. @default false */
  readonly offline?: boolean;
  /** Context property the tenant is sent as. @default 'tenantId' */
  readonly tenantProperty?: string;
  /**
   * Where a missing `tenantId`/`userId` comes from; `false` turns the lookup off.
   * @default OpenTelemetry baggage `tenant.id`/`user.id` (when `@opentelemetry/api` is installed)
   */
  readonly ambientContext?: AmbientContextReader | false;
  /** Extra headers for every request to Unleash. */
  readonly customHeaders?: Readonly<Record<string, string>>;
  /** Custom Unleash activation strategies. */
  readonly strategies?: readonly Strategy[];
  /** pino-shaped logger. @default silent */
  readonly logger?: FlagsLogger;
  /** prom-client registry. @default prom-client's global registry */
  readonly registry?: Registry;
  /** @default Date */
  readonly clock?: FlagsClock;
}

/** Options after validation, defaults applied. */
export interface ResolvedFlagsOptions {
  readonly url: string | undefined;
  readonly token: string | undefined;
  readonly appName: string;
  readonly environment: string;
  readonly instanceId: string | undefined;
  readonly projectName: string | undefined;
  readonly refreshIntervalMs: number;
  readonly metricsIntervalMs: number;
  readonly sendUsageMetrics: boolean;
  readonly requestTimeoutMs: number;
  readonly bootstrapPath: string | undefined;
  readonly bootstrap: BootstrapData | undefined;
  readonly preferBootstrap: boolean;
  readonly backupPath: string | undefined;
  readonly offline: boolean;
  readonly tenantProperty: string;
  readonly customHeaders: Readonly<Record<string, string>>;
}

function invalid(message: string): FlagsError {
  return new FlagsError('GANTRY_FLAGS_INVALID_OPTIONS', message);
}

function optionalString(name: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.trim().length === 0) {
    throw invalid(`Expected \`${name}\` to be a non-empty string, got ${describe(value)}`);
  }
  return value;
}

function duration(name: string, value: unknown, fallback: number, minimum: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < minimum) {
    throw invalid(`Expected \`${name}\` to be a finite number ≥ ${minimum}, got ${describe(value)}`);
  }
  return value;
}

function flag(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalid(`Expected \`${name}\` to be a boolean, got ${describe(value)}`);
  return value;
}

/**
 * Validates {@link FlagsOptions} once, at construction.
 * @throws FlagsError `GANTRY_FLAGS_INVALID_OPTIONS` naming the option, what was expected and what was received.
 */
export function resolveFlagsOptions(options: FlagsOptions): ResolvedFlagsOptions {
  if (typeof options !== 'object' || options === null) {
    throw invalid(`Expected the flags options to be an object, got ${describe(options)}`);
  }
  const offline = flag('offline', options.offline, false);
  const url = optionalString('url', options.url);
  if (url === undefined && !offline) {
    throw invalid(
      'Expected `url` to be the Unleash API URL (or `offline: true` to run from the bootstrap only), got undefined',
    );
  }
  if (url !== undefined && !/^https?:\/\//.test(url)) {
    throw invalid(`Expected \`url\` to be an http(s) URL, got ${describe(url)}`);
  }
  const appName = optionalString('appName', options.appName);
  if (appName === undefined) throw invalid('Expected `appName` to be a non-empty string, got undefined');
  if (options.backupPath !== undefined && options.backupPath !== false)
    optionalString('backupPath', options.backupPath);
  if (options.bootstrap !== undefined && (typeof options.bootstrap !== 'object' || options.bootstrap === null)) {
    throw invalid(
      `Expected \`bootstrap\` to be Unleash's client features document or an array, got ${describe(options.bootstrap)}`,
    );
  }
  if (
    options.ambientContext !== undefined &&
    options.ambientContext !== false &&
    typeof options.ambientContext !== 'function'
  ) {
    throw invalid(`Expected \`ambientContext\` to be a function or false, got ${describe(options.ambientContext)}`);
  }
  if (options.customHeaders !== undefined) {
    for (const [key, value] of Object.entries(options.customHeaders)) {
      if (typeof value !== 'string')
        throw invalid(`Expected \`customHeaders.${key}\` to be a string, got ${describe(value)}`);
    }
  }
  if (
    options.definitions !== undefined &&
    (typeof options.definitions.get !== 'function' || !Array.isArray(options.definitions.names))
  ) {
    throw invalid('Expected `definitions` to be the registry returned by defineFlags()');
  }
  return Object.freeze({
    url,
    token: optionalString('token', options.token),
    appName,
    environment: optionalString('environment', options.environment) ?? DEFAULT_ENVIRONMENT,
    instanceId: optionalString('instanceId', options.instanceId),
    projectName: optionalString('projectName', options.projectName),
    refreshIntervalMs: duration('refreshIntervalMs', options.refreshIntervalMs, DEFAULT_REFRESH_INTERVAL_MS, 100),
    metricsIntervalMs: duration('metricsIntervalMs', options.metricsIntervalMs, DEFAULT_METRICS_INTERVAL_MS, 1_000),
    sendUsageMetrics: flag('sendUsageMetrics', options.sendUsageMetrics, true),
    requestTimeoutMs: duration('requestTimeoutMs', options.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS, 1),
    bootstrapPath: optionalString('bootstrapPath', options.bootstrapPath),
    bootstrap: options.bootstrap,
    preferBootstrap: flag('preferBootstrap', options.preferBootstrap, false),
    backupPath: options.backupPath === false ? undefined : (options.backupPath ?? tmpdir()),
    offline,
    tenantProperty: optionalString('tenantProperty', options.tenantProperty) ?? DEFAULT_TENANT_PROPERTY,
    customHeaders: Object.freeze({ ...options.customHeaders }),
  });
}

const ENV_PREFIX = 'GANTRY_FLAGS_';

/**
 * Reads flags options from `GANTRY_FLAGS_*` environment variables: `URL`, `TOKEN`, `APP_NAME`, `ENVIRONMENT`,
 * `PROJECT`, `REFRESH_INTERVAL_MS`, `METRICS_INTERVAL_MS`, `SEND_USAGE_METRICS`, `REQUEST_TIMEOUT_MS`,
 * `BOOTSTRAP_PATH`, `PREFER_BOOTSTRAP`, `BACKUP_PATH` (`off` for memory only), `OFFLINE`, `TENANT_PROPERTY`.
 * Unset variables are left out, so the result spreads under explicit options.
 * @throws FlagsError `GANTRY_FLAGS_INVALID_OPTIONS` naming the variable with a malformed value.
 * @example
 * const flags = createFlags({ appName: 'orders', ...flagsOptionsFromEnv(), definitions: FLAGS });
 */
export function flagsOptionsFromEnv(
  env: Readonly<Record<string, string | undefined>> = process.env,
): Partial<FlagsOptions> {
  const read = (name: string): string | undefined => {
    const value = env[`${ENV_PREFIX}${name}`]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };
  const number = (name: string): number | undefined => {
    const value = read(name);
    if (value === undefined) return undefined;
    const parsed = Number(value);
    if (!Number.isFinite(parsed) || parsed < 0) {
      throw invalid(`Expected ${ENV_PREFIX}${name} to be a finite number ≥ 0, got ${describe(value)}`);
    }
    return parsed;
  };
  const boolean = (name: string): boolean | undefined => {
    const value = read(name)?.toLowerCase();
    if (value === undefined) return undefined;
    if (['true', '1', 'yes', 'on'].includes(value)) return true;
    if (['false', '0', 'no', 'off'].includes(value)) return false;
    throw invalid(`Expected ${ENV_PREFIX}${name} to be true or false, got ${describe(value)}`);
  };
  const result: { -readonly [K in keyof FlagsOptions]?: FlagsOptions[K] } = {};
  const set = <K extends keyof FlagsOptions>(key: K, value: FlagsOptions[K] | undefined): void => {
    if (value !== undefined) result[key] = value;
  };
  set('url', read('URL'));
  set('token', read('TOKEN'));
  set('appName', read('APP_NAME'));
  set('environment', read('ENVIRONMENT'));
  set('projectName', read('PROJECT'));
  set('refreshIntervalMs', number('REFRESH_INTERVAL_MS'));
  set('metricsIntervalMs', number('METRICS_INTERVAL_MS'));
  set('sendUsageMetrics', boolean('SEND_USAGE_METRICS'));
  set('requestTimeoutMs', number('REQUEST_TIMEOUT_MS'));
  set('bootstrapPath', read('BOOTSTRAP_PATH'));
  set('preferBootstrap', boolean('PREFER_BOOTSTRAP'));
  const backup = read('BACKUP_PATH');
  set('backupPath', backup === undefined ? undefined : backup.toLowerCase() === 'off' ? false : backup);
  set('offline', boolean('OFFLINE'));
  set('tenantProperty', read('TENANT_PROPERTY'));
  return result;
}
