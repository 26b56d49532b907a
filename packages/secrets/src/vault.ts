// createVault(): a node-vault client with the pitfalls guarded — a deadline on every call, explicit mount paths,
// errors classified (retryable / lease-terminal / auth / fatal), a token that is renewed at 2/3 of its TTL with
// jitter and replaced by a fresh login before its max TTL, and the token generation recorded on every lease so
// that callers know a lease dies with the token that created it.
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import nodeVault from 'node-vault';
import type { Registry } from 'prom-client';
import type { Check, CheckResult, ShutdownHook } from '@gantry/health';
import { classifyVaultError } from './classify.ts';
import { SYSTEM_CLOCK, backoffDelay, sleepKeepingAlive, uniform, type Clock, type ClockTimer } from './clock.ts';
import { SecretsError, invalidOption, isSecretsError } from './errors.ts';
import { createKvStore, type KvStore, type KvStoreOptions } from './kv.ts';
import { SILENT_LOGGER, errorFields, type Logger } from './logger.ts';
import { secretsMetrics, type GaugeSource, type SecretsMetrics } from './metrics.ts';
import { createTransport, responseMeta, type VaultTlsOptions } from './transport.ts';
import { encodePath, mountPath, optionalBoolean, optionalNumber, requiredString } from './validate.ts';

/** Deadline of one Vault HTTP call. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;
/** How long `start()` keeps retrying a Vault that is unreachable, sealed or rate limiting. */
export const DEFAULT_STARTUP_TIMEOUT_MS = 30_000;
/** First retry delay after a retryable failure (full-jitter exponential backoff). */
export const DEFAULT_RETRY_INITIAL_DELAY_MS = 1_000;
/** Longest retry delay. */
export const DEFAULT_RETRY_MAX_DELAY_MS = 60_000;
/** A token that cannot be renewed any further is replaced by a new login this long before it expires (at most 1/3 of its TTL). */
export const DEFAULT_TOKEN_RELOGIN_LEAD_MS = 60_000;
/** Renewals happen after this fraction of the remaining TTL, drawn uniformly (2/3 with jitter). */
export const RENEW_FRACTION_RANGE: readonly [number, number] = Object.freeze<[number, number]>([0.6, 0.7]);
/** Default path of the projected service-account token read for Kubernetes auth. */
export const DEFAULT_KUBERNETES_JWT_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/** A value given directly or produced on demand (read fresh at each login). */
export type SecretSource = string | (() => string | Promise<string>);

/** How the client authenticates to Vault. */
export type VaultAuth =
  | {
      readonly method: 'token';
      /** A Vault token; renewed when renewable, never re-obtained. */
      readonly token: string;
    }
  | {
      readonly method: 'approle';
      readonly roleId: string;
      /** Omit only for roles with `bind_secret_id=false`. */
      readonly secretId?: SecretSource;
      /** @default 'approle' */
      readonly mount?: string;
    }
  | {
      readonly method: 'kubernetes';
      /** The Vault role bound to the service account. */
      readonly role: string;
      /** The service-account JWT; when absent, `jwtFile` is read at each login (projected tokens rotate). */
      readonly jwt?: SecretSource;
      /** @default DEFAULT_KUBERNETES_JWT_FILE */
      readonly jwtFile?: string;
      /** @default 'kubernetes' */
      readonly mount?: string;
    };

/** Options of {@link createVault}. */
export interface VaultOptions {
  /** Vault address, e.g. `https://vault.internal:8200`. */
  readonly endpoint: string;
  readonly auth: VaultAuth;
  /** Enterprise namespace sent as `X-Vault-Namespace`. */
  readonly namespace?: string;
  /** @default DEFAULT_REQUEST_TIMEOUT_MS */
  readonly requestTimeoutMs?: number;
  /** @default DEFAULT_STARTUP_TIMEOUT_MS */
  readonly startupTimeoutMs?: number;
  /** @default DEFAULT_RETRY_INITIAL_DELAY_MS */
  readonly retryInitialDelayMs?: number;
  /** @default DEFAULT_RETRY_MAX_DELAY_MS */
  readonly retryMaxDelayMs?: number;
  /** Increment asked for when renewing the token, in seconds. @default the token's TTL at login */
  readonly tokenIncrementSeconds?: number;
  /** @default DEFAULT_TOKEN_RELOGIN_LEAD_MS */
  readonly tokenReloginLeadMs?: number;
  /** Revoke the token in `close()`. Only do this after every pool using its leases has closed. @default false */
  readonly revokeTokenOnClose?: boolean;
  /** CA, client certificate and key for an `https:` endpoint. */
  readonly tls?: VaultTlsOptions;
  /** @default the system clock */
  readonly clock?: Clock;
  /** pino-compatible; @default silent */
  readonly logger?: Logger;
  /** prom-client registry; `null` disables metrics. @default prom-client's global registry */
  readonly registry?: Registry | null;
}

/** The validated, frozen configuration of a {@link Vault} (no credentials in it). */
export interface VaultConfig {
  readonly endpoint: string;
  readonly authMethod: VaultAuth['method'];
  readonly authMount: string | undefined;
  readonly namespace: string | undefined;
  readonly requestTimeoutMs: number;
  readonly startupTimeoutMs: number;
  readonly retryInitialDelayMs: number;
  readonly retryMaxDelayMs: number;
  readonly tokenIncrementSeconds: number | undefined;
  readonly tokenReloginLeadMs: number;
  readonly revokeTokenOnClose: boolean;
}

/** What is known about the current token; the token itself is never exposed. */
export interface TokenInfo {
  /** 1 for the first login, +1 for each new login. Leases record the generation that created them. */
  readonly generation: number;
  readonly accessor: string | undefined;
  /** Epoch ms, or `null` for a token that never expires. */
  readonly expiresAt: number | null;
  readonly renewable: boolean;
  /** True once Vault capped a renewal: the token is near its max TTL and will be replaced by a new login. */
  readonly capped: boolean;
  readonly policies: readonly string[];
}

/** A parsed Vault reply (the JSON envelope). */
export interface VaultResponse<T = Record<string, unknown>> {
  readonly requestId: string | undefined;
  readonly leaseId: string;
  readonly renewable: boolean;
  readonly leaseDurationSeconds: number;
  readonly data: T;
  readonly warnings: readonly string[];
}

/** Dynamic database credentials from `<mount>/creds/<role>`. `password` is not enumerable (kept out of JSON and logs). */
export interface DatabaseCredentials {
  readonly leaseId: string;
  readonly username: string;
  readonly password: string;
  readonly leaseDurationMs: number;
  readonly renewable: boolean;
  /** When the request was sent (epoch ms): the conservative start of the lease. */
  readonly obtainedAt: number;
  /** `obtainedAt + leaseDurationMs`. */
  readonly expiresAt: number;
  /** Generation of the token that created the lease; the lease dies when that token does. */
  readonly tokenGeneration: number;
}

/** Result of renewing a lease. */
export interface LeaseRenewal {
  readonly leaseId: string;
  readonly leaseDurationMs: number;
  readonly renewable: boolean;
  readonly expiresAt: number;
  /** Vault gave less than asked (max TTL reached): renewing further will not help; rotate. */
  readonly truncated: boolean;
  readonly warnings: readonly string[];
}

/** `sys/health` as seen by the client, status code included (node-vault's `health()` hides it). */
export interface VaultHealth {
  readonly statusCode: number;
  readonly initialized: boolean;
  readonly sealed: boolean;
  readonly standby: boolean;
  readonly version: string | undefined;
}

/** Why a login happened. */
export type LoginReason = 'startup' | 'max-ttl' | 'invalid-token' | 'expired' | 'manual';

/** Events of a {@link Vault}. */
export interface VaultEvents {
  login: [
    { readonly generation: number; readonly previousGeneration: number | undefined; readonly reason: LoginReason },
  ];
  'token-renewed': [{ readonly generation: number; readonly expiresAt: number | null; readonly capped: boolean }];
  'token-expired': [{ readonly generation: number }];
  'auth-failed': [{ readonly error: SecretsError }];
}

/** Per-call options. */
export interface VaultCallOptions {
  /** @default the client's `requestTimeoutMs` */
  readonly timeoutMs?: number;
}

/** A Vault client; see {@link createVault}. */
export interface Vault {
  readonly config: VaultConfig;
  /** Logs in (or looks up the given token) and starts renewing. Idempotent. @throws SecretsError */
  start(): Promise<void>;
  /** Stops renewals and KV refreshes; revokes the token only when `revokeTokenOnClose`. Idempotent. */
  close(): Promise<void>;
  /** The current token's facts, or undefined before the first login. */
  token(): TokenInfo | undefined;
  /** When the token of `generation` expires: epoch ms, `null` for never, undefined for an unknown generation. */
  tokenExpiresAt(generation: number): number | null | undefined;
  /**
   * Makes sure the current token lives at least `minRemainingMs` more, renewing it or logging in again.
   * @throws SecretsError when neither is possible now
   */
  ensureToken(minRemainingMs: number): Promise<TokenInfo>;
  /** Logs in again now (not possible with `auth.method: 'token'`). @throws SecretsError */
  login(): Promise<TokenInfo>;
  read<T = Record<string, unknown>>(path: string, options?: VaultCallOptions): Promise<VaultResponse<T>>;
  /** POST; resolves undefined on 204. */
  write<T = Record<string, unknown>>(
    path: string,
    body: Readonly<Record<string, unknown>>,
    options?: VaultCallOptions,
  ): Promise<VaultResponse<T> | undefined>;
  delete(path: string, options?: VaultCallOptions): Promise<void>;
  /** `GET <mount>/creds/<role>`: a new database user on every call. @default mount 'database' */
  databaseCredentials(options: { readonly role: string; readonly mount?: string }): Promise<DatabaseCredentials>;
  /** `PUT sys/leases/renew`; `incrementSeconds` counts from now. @default incrementSeconds 0 (role default) */
  renewLease(leaseId: string, incrementSeconds?: number): Promise<LeaseRenewal>;
  /** `PUT sys/leases/revoke` (synchronous). Idempotent on Vault's side. */
  revokeLease(leaseId: string): Promise<void>;
  /** `GET sys/health` with its status code. */
  health(options?: VaultCallOptions): Promise<VaultHealth>;
  /** A KV v2 reader with a cache, refresh interval and change events. */
  kv(options?: KvStoreOptions): KvStore;
  /** Readiness check: UP while the client holds an unexpired token. */
  check(options?: { readonly name?: string; readonly critical?: boolean }): Check;
  /** A graceful-shutdown step that runs `close()`; register it before the pools' hooks so that it runs after them. */
  shutdownHook(options?: { readonly name?: string; readonly timeoutMs?: number }): ShutdownHook;
  on<K extends keyof VaultEvents>(event: K, listener: (...args: VaultEvents[K]) => void): this;
  off<K extends keyof VaultEvents>(event: K, listener: (...args: VaultEvents[K]) => void): this;
}

interface TokenRecord {
  readonly generation: number;
  readonly token: string;
  readonly accessor: string | undefined;
  readonly ttlMs: number;
  readonly incrementSeconds: number;
  readonly policies: readonly string[];
  expiresAt: number | null;
  renewable: boolean;
  capped: boolean;
  invalid: boolean;
}

type NodeVaultClient = ReturnType<typeof nodeVault>;
type InternalAuth =
  | { readonly method: 'token'; readonly token: string; readonly mount: undefined }
  | {
      readonly method: 'approle';
      readonly roleId: string;
      readonly secretId: SecretSource | undefined;
      readonly mount: string;
    }
  | { readonly method: 'kubernetes'; readonly role: string; readonly jwt: SecretSource; readonly mount: string };

const UNKNOWN_ERROR_DELAY_FLOOR_MS = 50;

/** Numbers from a JSON body, defaulting to 0. */
const num = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) ? value : 0);
const str = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
const strings = (value: unknown): string[] =>
  Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];

function validateSource(name: string, value: unknown): SecretSource | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'function') return value as () => string;
  return requiredString(name, value);
}

function validateAuth(value: unknown): InternalAuth {
  if (value === null || typeof value !== 'object') throw invalidOption('auth', 'an object with a `method`', value);
  const auth = value as Record<string, unknown>;
  switch (auth['method']) {
    case 'token':
      return { method: 'token', token: requiredString('auth.token', auth['token']), mount: undefined };
    case 'approle':
      return {
        method: 'approle',
        roleId: requiredString('auth.roleId', auth['roleId']),
        secretId: validateSource('auth.secretId', auth['secretId']),
        mount: mountPath('auth.mount', auth['mount'], 'approle'),
      };
    case 'kubernetes': {
      const jwt = validateSource('auth.jwt', auth['jwt']);
      const file =
        auth['jwtFile'] === undefined ? DEFAULT_KUBERNETES_JWT_FILE : requiredString('auth.jwtFile', auth['jwtFile']);
      return {
        method: 'kubernetes',
        role: requiredString('auth.role', auth['role']),
        jwt: jwt ?? (async () => (await readFile(file, 'utf8')).trim()),
        mount: mountPath('auth.mount', auth['mount'], 'kubernetes'),
      };
    }
    default:
      throw invalidOption('auth.method', 'one of "token", "approle", "kubernetes"', auth['method']);
  }
}

async function resolveSource(source: SecretSource): Promise<string> {
  return typeof source === 'function' ? source() : source;
}

function parseResponse<T>(body: unknown): VaultResponse<T> {
  const envelope = (body ?? {}) as Record<string, unknown>;
  return {
    requestId: str(envelope['request_id']),
    leaseId: str(envelope['lease_id']) ?? '',
    renewable: envelope['renewable'] === true,
    leaseDurationSeconds: num(envelope['lease_duration']),
    data: (envelope['data'] ?? null) as T,
    warnings: strings(envelope['warnings']),
  };
}

class VaultClient extends EventEmitter<VaultEvents> implements Vault {
  readonly config: VaultConfig;
  readonly #auth: InternalAuth;
  readonly #client: NodeVaultClient;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #metrics: SecretsMetrics | undefined;
  readonly #gaugeSource: GaugeSource;
  readonly #expiries = new Map<number, number | null>();
  readonly #kvStores = new Set<KvStore>();
  readonly #stop = new AbortController();
  #current: TokenRecord | undefined;
  #generation = 0;
  #starting: Promise<void> | undefined;
  #loggingIn: Promise<TokenRecord> | undefined;
  #renewing: Promise<void> | undefined;
  #timer: ClockTimer | undefined;
  #attempt = 0;
  #closed = false;
  #expiredReported = 0;

  constructor(options: VaultOptions) {
    super();
    if (options === null || typeof options !== 'object') throw invalidOption('options', 'an object', options);
    const endpoint = requiredString('endpoint', options.endpoint).replace(/\/+$/, '');
    if (!/^https?:\/\/[^/]+/.test(endpoint)) throw invalidOption('endpoint', 'an http(s) URL', options.endpoint);
    this.#auth = validateAuth(options.auth);
    const namespace = options.namespace === undefined ? undefined : requiredString('namespace', options.namespace);
    const tokenIncrement = options.tokenIncrementSeconds;
    this.config = Object.freeze({
      endpoint,
      authMethod: this.#auth.method,
      authMount: this.#auth.mount,
      namespace,
      requestTimeoutMs: optionalNumber('requestTimeoutMs', options.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS, {
        min: 1,
      }),
      startupTimeoutMs: optionalNumber('startupTimeoutMs', options.startupTimeoutMs, DEFAULT_STARTUP_TIMEOUT_MS),
      retryInitialDelayMs: optionalNumber(
        'retryInitialDelayMs',
        options.retryInitialDelayMs,
        DEFAULT_RETRY_INITIAL_DELAY_MS,
        { min: 1 },
      ),
      retryMaxDelayMs: optionalNumber('retryMaxDelayMs', options.retryMaxDelayMs, DEFAULT_RETRY_MAX_DELAY_MS, {
        min: 1,
      }),
      tokenIncrementSeconds:
        tokenIncrement === undefined
          ? undefined
          : optionalNumber('tokenIncrementSeconds', tokenIncrement, 0, { min: 1, integer: true }),
      tokenReloginLeadMs: optionalNumber(
        'tokenReloginLeadMs',
        options.tokenReloginLeadMs,
        DEFAULT_TOKEN_RELOGIN_LEAD_MS,
      ),
      revokeTokenOnClose: optionalBoolean('revokeTokenOnClose', options.revokeTokenOnClose, false),
    });
    this.#clock = options.clock ?? SYSTEM_CLOCK;
    this.#logger = options.logger ?? SILENT_LOGGER;
    this.#metrics = options.registry === null ? undefined : secretsMetrics(options.registry);
    this.#client = nodeVault({
      endpoint,
      // node-vault's debug output prints request bodies (AppRole secret IDs, JWTs): never enable it.
      debug: () => undefined,
      'request-promise': createTransport(this.config.requestTimeoutMs, options.tls),
      requestOptions: { timeout: this.config.requestTimeoutMs },
    });
    // node-vault falls back to VAULT_TOKEN, VAULT_NAMESPACE and VAULT_PREFIX from the environment; this client
    // reads the environment only in vaultOptionsFromEnv() and sends its token per request.
    const settable = this.#client as unknown as { token?: string; namespace?: string; pathPrefix: string };
    delete settable.token;
    if (namespace === undefined) delete settable.namespace;
    else settable.namespace = namespace;
    settable.pathPrefix = '';
    this.#gaugeSource = {
      tokenRemaining: () => {
        const expiresAt = this.#current?.expiresAt;
        return expiresAt === null || expiresAt === undefined ? undefined : (expiresAt - this.#clock.now()) / 1000;
      },
    };
  }

  get #canLogin(): boolean {
    return this.#auth.method !== 'token';
  }

  async start(): Promise<void> {
    this.#assertOpen();
    this.#starting ??= (async () => {
      const deadline = this.#clock.now() + this.config.startupTimeoutMs;
      for (let attempt = 0; ; attempt += 1) {
        try {
          await this.#login('startup');
          this.#metrics?.sources.add(this.#gaugeSource);
          return;
        } catch (error) {
          const failure = isSecretsError(error) ? error : classifyVaultError(error, 'login', 'auth');
          const delay = this.#retryDelay(attempt, failure);
          if (failure.kind !== 'retryable' || this.#clock.now() + delay > deadline || this.#closed) {
            this.#starting = undefined;
            throw new SecretsError(
              'GANTRY_SECRETS_STARTUP_FAILED',
              `Could not authenticate to Vault at ${this.config.endpoint}: ${failure.message}`,
              {
                cause: failure,
                kind: failure.kind,
                ...(failure.status === undefined ? {} : { status: failure.status }),
              },
            );
          }
          this.#logger.warn(
            {
              event: 'secrets.vault.unavailable',
              attempt: attempt + 1,
              delayMs: Math.round(delay),
              ...errorFields(failure),
            },
            'Vault not ready at startup; retrying',
          );
          await sleepKeepingAlive(this.#clock, delay, this.#stop.signal);
        }
      }
    })();
    return this.#starting;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stop.abort(new SecretsError('GANTRY_SECRETS_CLOSED', 'The Vault client was closed'));
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#metrics?.sources.delete(this.#gaugeSource);
    await Promise.all([...this.#kvStores].map((store) => store.close()));
    const current = this.#current;
    if (this.config.revokeTokenOnClose && current !== undefined && this.#canLogin && !current.invalid) {
      await this.#raw('revoke_token', 'POST', 'auth/token/revoke-self', { token: current.token }).catch(
        (error: unknown) => {
          this.#logger.warn(
            { event: 'secrets.token.revoke_failed', ...errorFields(error) },
            'Could not revoke the Vault token',
          );
        },
      );
    }
  }

  token(): TokenInfo | undefined {
    const record = this.#current;
    if (record === undefined) return undefined;
    return Object.freeze({
      generation: record.generation,
      accessor: record.accessor,
      expiresAt: record.expiresAt,
      renewable: record.renewable,
      capped: record.capped,
      policies: record.policies,
    });
  }

  tokenExpiresAt(generation: number): number | null | undefined {
    return this.#expiries.get(generation);
  }

  async ensureToken(minRemainingMs: number): Promise<TokenInfo> {
    let record = await this.#tokenForUse();
    const remaining = (r: TokenRecord): number =>
      r.expiresAt === null ? Number.POSITIVE_INFINITY : r.expiresAt - this.#clock.now();
    if (remaining(record) >= minRemainingMs) return this.token()!;
    if (record.renewable && !record.capped) {
      await this.#renewToken().catch(() => undefined);
      record = this.#current ?? record;
      if (remaining(record) >= minRemainingMs) return this.token()!;
    }
    if (!this.#canLogin) {
      throw new SecretsError(
        'GANTRY_SECRETS_AUTH_FAILED',
        `The Vault token expires in ${Math.max(0, Math.round(remaining(record) / 1000))} s and a static token cannot log in again`,
        { kind: 'fatal' },
      );
    }
    await this.#relogin('max-ttl', record.generation);
    return this.token()!;
  }

  async login(): Promise<TokenInfo> {
    this.#assertOpen();
    if (!this.#canLogin) {
      throw new SecretsError('GANTRY_SECRETS_AUTH_FAILED', 'A static token (auth.method "token") cannot log in again', {
        kind: 'fatal',
      });
    }
    await this.#login('manual');
    return this.token()!;
  }

  async read<T>(path: string, options: VaultCallOptions = {}): Promise<VaultResponse<T>> {
    return parseResponse<T>((await this.#call('read', 'GET', encodePath(path), undefined, options)).body);
  }

  async write<T>(
    path: string,
    body: Readonly<Record<string, unknown>>,
    options: VaultCallOptions = {},
  ): Promise<VaultResponse<T> | undefined> {
    const result = await this.#call('write', 'POST', encodePath(path), body, options);
    return typeof result.body === 'object' && result.body !== null ? parseResponse<T>(result.body) : undefined;
  }

  async delete(path: string, options: VaultCallOptions = {}): Promise<void> {
    await this.#call('delete', 'DELETE', encodePath(path), undefined, options);
  }

  async databaseCredentials(options: { readonly role: string; readonly mount?: string }): Promise<DatabaseCredentials> {
    const role = requiredString('role', options.role);
    const mount = mountPath('mount', options.mount, 'database');
    const path = `${mount}/creds/${encodeURIComponent(role)}`;
    const obtainedAt = this.#clock.now();
    const { body, generation } = await this.#call('database_credentials', 'GET', path, undefined, {});
    const response = parseResponse<Record<string, unknown> | null>(body);
    const username = str(response.data?.['username']);
    const password = str(response.data?.['password']);
    if (username === undefined || password === undefined || response.leaseId === '') {
      throw new SecretsError(
        'GANTRY_SECRETS_VAULT_REQUEST_FAILED',
        `Vault returned no username, password or lease for ${path}`,
      );
    }
    const leaseDurationMs = response.leaseDurationSeconds * 1000;
    const credentials = {
      leaseId: response.leaseId,
      username,
      leaseDurationMs,
      renewable: response.renewable,
      obtainedAt,
      expiresAt: obtainedAt + leaseDurationMs,
      tokenGeneration: generation,
    };
    Object.defineProperty(credentials, 'password', { value: password, enumerable: false });
    return Object.freeze(credentials) as DatabaseCredentials;
  }

  async renewLease(leaseId: string, incrementSeconds = 0): Promise<LeaseRenewal> {
    requiredString('leaseId', leaseId);
    const increment = optionalNumber('incrementSeconds', incrementSeconds, 0, { integer: true });
    const started = this.#clock.now();
    const { body } = await this.#call('renew_lease', 'PUT', 'sys/leases/renew', { lease_id: leaseId, increment }, {});
    const response = parseResponse<unknown>(body);
    const leaseDurationMs = response.leaseDurationSeconds * 1000;
    const truncated =
      !response.renewable ||
      response.warnings.some((warning) => /max_ttl|capped/i.test(warning)) ||
      (increment > 0 && response.leaseDurationSeconds + 1 < increment);
    return Object.freeze({
      leaseId,
      leaseDurationMs,
      renewable: response.renewable,
      expiresAt: started + leaseDurationMs,
      truncated,
      warnings: response.warnings,
    });
  }

  async revokeLease(leaseId: string): Promise<void> {
    requiredString('leaseId', leaseId);
    await this.#call('revoke_lease', 'PUT', 'sys/leases/revoke', { lease_id: leaseId }, {});
  }

  async health(options: VaultCallOptions = {}): Promise<VaultHealth> {
    const body = (await this.#raw('health', 'GET', 'sys/health', options)) as Record<string, unknown>;
    return Object.freeze({
      statusCode: responseMeta(body)?.statusCode ?? 200,
      initialized: body['initialized'] === true,
      sealed: body['sealed'] === true,
      standby: body['standby'] === true,
      version: str(body['version']),
    });
  }

  kv(options: KvStoreOptions = {}): KvStore {
    this.#assertOpen();
    const store = createKvStore(
      {
        call: async (operation, method, path, body) => (await this.#call(operation, method, path, body, {})).body,
        clock: this.#clock,
        logger: this.#logger,
        metrics: this.#metrics,
        retryInitialDelayMs: this.config.retryInitialDelayMs,
        retryMaxDelayMs: this.config.retryMaxDelayMs,
        onClose: (closed) => this.#kvStores.delete(closed),
      },
      options,
    );
    this.#kvStores.add(store);
    return store;
  }

  check(options: { readonly name?: string; readonly critical?: boolean } = {}): Check {
    const name = options.name ?? 'vault';
    return {
      name,
      critical: options.critical ?? true,
      timeoutMs: 1_000,
      run: async (): Promise<CheckResult> => {
        const record = this.#current;
        if (this.#closed || record === undefined)
          return { status: 'DOWN', data: { reason: this.#closed ? 'closed' : 'not logged in' } };
        const data: Record<string, string | number | boolean> = {
          authMethod: this.#auth.method,
          generation: record.generation,
        };
        if (record.expiresAt !== null)
          data['tokenTtlSeconds'] = Math.round((record.expiresAt - this.#clock.now()) / 1000);
        const usable = !record.invalid && (record.expiresAt === null || record.expiresAt > this.#clock.now());
        return { status: usable ? 'UP' : 'DOWN', data };
      },
    };
  }

  shutdownHook(options: { readonly name?: string; readonly timeoutMs?: number } = {}): ShutdownHook {
    return {
      name: options.name ?? 'vault',
      timeoutMs: options.timeoutMs ?? this.config.requestTimeoutMs + 1_000,
      run: () => this.close(),
    };
  }

  // ── internals ────────────────────────────────────────────────────────────────────────────────────────────

  #assertOpen(): void {
    if (this.#closed) throw new SecretsError('GANTRY_SECRETS_CLOSED', 'The Vault client was closed', { kind: 'fatal' });
  }

  #retryDelay(attempt: number, error: SecretsError | undefined): number {
    const backoff = backoffDelay(attempt, this.config.retryInitialDelayMs, this.config.retryMaxDelayMs);
    return Math.max(backoff, error?.retryAfterMs ?? 0, UNKNOWN_ERROR_DELAY_FLOOR_MS);
  }

  async #raw(
    operation: string,
    method: string,
    path: string,
    options: { readonly token?: string; readonly body?: unknown; readonly timeoutMs?: number },
  ): Promise<unknown> {
    const started = performance.now();
    const headers: Record<string, string> = {};
    if (options.token !== undefined) headers['X-Vault-Token'] = options.token;
    try {
      const body: unknown = await this.#client.request({
        path: `/${path}`,
        method,
        headers,
        timeout: options.timeoutMs ?? this.config.requestTimeoutMs,
        ...(options.body === undefined ? {} : { json: options.body }),
      });
      this.#metrics?.vaultRequests.inc({ operation, outcome: 'ok' });
      return body;
    } catch (error) {
      const failure = classifyVaultError(error, operation, path);
      this.#metrics?.vaultRequests.inc({ operation, outcome: failure.kind.replace('-', '_') });
      throw failure;
    } finally {
      this.#metrics?.vaultRequestDuration.observe({ operation }, (performance.now() - started) / 1000);
    }
  }

  async #call(
    operation: string,
    method: string,
    path: string,
    body: unknown,
    options: VaultCallOptions,
  ): Promise<{ body: unknown; generation: number }> {
    this.#assertOpen();
    let record = await this.#tokenForUse();
    const send = (token: string): Promise<unknown> =>
      this.#raw(operation, method, path, {
        token,
        ...(body === undefined ? {} : { body }),
        ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      });
    try {
      return { body: await send(record.token), generation: record.generation };
    } catch (error) {
      if (!isSecretsError(error) || error.kind !== 'auth') throw error;
      this.#invalidate(record, error);
      if (!this.#canLogin) throw error;
      record = await this.#relogin('invalid-token', record.generation);
      return { body: await send(record.token), generation: record.generation };
    }
  }

  /** The token to send: logs in first when there is none yet, or when the current one is known to be dead. */
  async #tokenForUse(): Promise<TokenRecord> {
    const record = this.#current;
    if (record === undefined) {
      await this.start();
      return this.#current!;
    }
    const dead = record.invalid || (record.expiresAt !== null && record.expiresAt <= this.#clock.now());
    if (dead && this.#canLogin) return this.#relogin('expired', record.generation);
    return record;
  }

  #invalidate(record: TokenRecord, error: SecretsError): void {
    if (record.invalid) return;
    record.invalid = true;
    const now = this.#clock.now();
    if (record.expiresAt === null || record.expiresAt > now) record.expiresAt = now;
    this.#expiries.set(record.generation, record.expiresAt);
    this.#logger.warn(
      { event: 'secrets.token.invalid', generation: record.generation, ...errorFields(error) },
      'Vault rejected the token',
    );
    this.#reportExpired(record);
    if (!this.#canLogin) this.emit('auth-failed', { error });
  }

  #reportExpired(record: TokenRecord): void {
    if (this.#expiredReported >= record.generation) return;
    this.#expiredReported = record.generation;
    this.emit('token-expired', { generation: record.generation });
  }

  async #relogin(reason: LoginReason, staleGeneration: number): Promise<TokenRecord> {
    const current = this.#current;
    if (current !== undefined && current.generation !== staleGeneration && !current.invalid) return current;
    return this.#login(reason);
  }

  #login(reason: LoginReason): Promise<TokenRecord> {
    this.#loggingIn ??= (async () => {
      try {
        const record = await this.#authenticate();
        const previous = this.#current;
        this.#current = record;
        this.#expiries.set(record.generation, record.expiresAt);
        this.#attempt = 0;
        this.#metrics?.logins.inc({ result: 'success' });
        this.#logger.info(
          {
            event: 'secrets.vault.login',
            reason,
            method: this.#auth.method,
            generation: record.generation,
            ttlSeconds: Math.round(record.ttlMs / 1000),
            renewable: record.renewable,
          },
          'Authenticated to Vault',
        );
        this.emit('login', { generation: record.generation, previousGeneration: previous?.generation, reason });
        this.#planToken();
        return record;
      } catch (error) {
        this.#metrics?.logins.inc({ result: 'failure' });
        const failure = isSecretsError(error) ? error : classifyVaultError(error, 'login', 'auth');
        this.#logger.error(
          { event: 'secrets.vault.login_failed', reason, method: this.#auth.method, ...errorFields(failure) },
          'Vault login failed',
        );
        if (failure.kind !== 'retryable') this.emit('auth-failed', { error: failure });
        throw failure;
      } finally {
        this.#loggingIn = undefined;
      }
    })();
    return this.#loggingIn;
  }

  async #authenticate(): Promise<TokenRecord> {
    const auth = this.#auth;
    const started = this.#clock.now();
    if (auth.method === 'token') {
      const body = await this.#raw('lookup_token', 'GET', 'auth/token/lookup-self', { token: auth.token }).catch(
        (error: unknown) => {
          throw this.#loginFailure(error);
        },
      );
      const data = parseResponse<Record<string, unknown> | null>(body).data ?? {};
      const ttl = num(data['ttl']);
      const creationTtl = num(data['creation_ttl']);
      return {
        generation: ++this.#generation,
        token: auth.token,
        accessor: str(data['accessor']),
        ttlMs: (creationTtl || ttl) * 1000,
        incrementSeconds: this.config.tokenIncrementSeconds ?? (creationTtl || ttl),
        policies: strings(data['policies']),
        expiresAt: ttl > 0 ? started + ttl * 1000 : null,
        renewable: data['renewable'] === true && ttl > 0,
        capped: false,
        invalid: false,
      };
    }
    const body =
      auth.method === 'approle'
        ? {
            role_id: auth.roleId,
            ...(auth.secretId === undefined ? {} : { secret_id: await resolveSource(auth.secretId) }),
          }
        : { role: auth.role, jwt: await resolveSource(auth.jwt) };
    const response = await this.#raw('login', 'POST', `auth/${auth.mount}/login`, { body }).catch((error: unknown) => {
      throw this.#loginFailure(error);
    });
    const info = ((response ?? {}) as { auth?: Record<string, unknown> | null }).auth ?? {};
    const token = str(info['client_token']);
    if (token === undefined) {
      throw new SecretsError('GANTRY_SECRETS_AUTH_FAILED', `Vault login at auth/${auth.mount}/login returned no token`);
    }
    const ttl = num(info['lease_duration']);
    return {
      generation: ++this.#generation,
      token,
      accessor: str(info['accessor']),
      ttlMs: ttl * 1000,
      incrementSeconds: this.config.tokenIncrementSeconds ?? ttl,
      policies:
        strings(info['token_policies']).length > 0 ? strings(info['token_policies']) : strings(info['policies']),
      expiresAt: ttl > 0 ? started + ttl * 1000 : null,
      renewable: info['renewable'] === true && ttl > 0,
      capped: false,
      invalid: false,
    };
  }

  /** Login rejections are authentication failures whatever their status; only retryable ones stay retryable. */
  #loginFailure(error: unknown): SecretsError {
    const failure = classifyVaultError(
      error,
      'login',
      this.#auth.mount === undefined ? 'auth/token/lookup-self' : `auth/${this.#auth.mount}/login`,
    );
    if (failure.kind === 'retryable') return failure;
    return new SecretsError('GANTRY_SECRETS_AUTH_FAILED', failure.message, {
      cause: failure,
      kind: 'fatal',
      ...(failure.status === undefined ? {} : { status: failure.status }),
    });
  }

  /** Schedules the next token action: renew at 2/3 of the remaining TTL, or log in again before expiry. */
  #planToken(delayMs?: number): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    const record = this.#current;
    if (this.#closed || record === undefined || (record.expiresAt === null && !record.invalid)) return;
    const now = this.#clock.now();
    const expiresAt = record.expiresAt ?? now;
    const remaining = expiresAt - now;
    let wait: number;
    if (delayMs !== undefined) wait = delayMs;
    else if (record.invalid || remaining <= 0) wait = 0;
    else if (record.renewable && !record.capped) {
      wait = Math.max(
        Math.min(1_000, remaining / 2),
        remaining * uniform(RENEW_FRACTION_RANGE[0], RENEW_FRACTION_RANGE[1]),
      );
    } else if (this.#canLogin) {
      wait = remaining - Math.min(this.config.tokenReloginLeadMs, record.ttlMs / 3);
    } else {
      wait = remaining;
    }
    this.#timer = this.#clock.setTimeout(
      () => {
        this.#timer = undefined;
        void this.#tokenTick();
      },
      Math.max(0, wait),
    );
  }

  async #tokenTick(): Promise<void> {
    const record = this.#current;
    if (this.#closed || record === undefined) return;
    const now = this.#clock.now();
    const dead = record.invalid || (record.expiresAt !== null && record.expiresAt <= now);
    if (dead) this.#reportExpired(record);
    try {
      if (!dead && record.renewable && !record.capped) {
        await this.#renewToken();
        this.#planToken();
      } else if (this.#canLogin) {
        await this.#relogin(dead ? 'expired' : 'max-ttl', record.generation);
      } else if (!dead) {
        this.#logger.warn(
          {
            event: 'secrets.token.expiring',
            generation: record.generation,
            secondsLeft: Math.round(((record.expiresAt ?? now) - now) / 1000),
          },
          'The static Vault token cannot be renewed further and will expire',
        );
        this.#planToken(Math.max(0, (record.expiresAt ?? now) - now));
      }
    } catch (error) {
      const failure = isSecretsError(error) ? error : classifyVaultError(error, 'token', 'auth/token');
      if (this.#closed) return;
      if (failure.kind === 'auth' && this.#canLogin && this.#current === record) {
        this.#planToken(0);
        return;
      }
      const delay = this.#retryDelay(this.#attempt++, failure);
      this.#logger.warn(
        {
          event: 'secrets.token.retry',
          generation: record.generation,
          delayMs: Math.round(delay),
          ...errorFields(failure),
        },
        'Vault token maintenance failed; retrying',
      );
      this.#planToken(
        record.expiresAt === null ? delay : Math.min(delay, Math.max(0, record.expiresAt - now)) || delay,
      );
    }
  }

  /** Renews the current token once (single-flight). @throws SecretsError */
  #renewToken(): Promise<void> {
    this.#renewing ??= (async () => {
      const record = this.#current!;
      const started = this.#clock.now();
      try {
        const body = await this.#raw('renew_token', 'POST', 'auth/token/renew-self', {
          token: record.token,
          body: record.incrementSeconds > 0 ? { increment: record.incrementSeconds } : {},
        });
        const response = parseResponse<unknown>(body);
        const auth = ((body ?? {}) as { auth?: Record<string, unknown> | null }).auth ?? {};
        const ttl = num(auth['lease_duration']);
        record.expiresAt = started + ttl * 1000;
        record.renewable = auth['renewable'] === true;
        record.capped =
          !record.renewable ||
          response.warnings.some((warning) => /max_ttl|capped/i.test(warning)) ||
          (record.incrementSeconds > 0 && ttl + 1 < record.incrementSeconds);
        this.#expiries.set(record.generation, record.expiresAt);
        this.#attempt = 0;
        this.#metrics?.tokenRenewals.inc({ result: 'success' });
        this.#logger.debug(
          { event: 'secrets.token.renewed', generation: record.generation, ttlSeconds: ttl, capped: record.capped },
          'Renewed the Vault token',
        );
        this.emit('token-renewed', {
          generation: record.generation,
          expiresAt: record.expiresAt,
          capped: record.capped,
        });
      } catch (error) {
        this.#metrics?.tokenRenewals.inc({ result: 'failure' });
        const failure = isSecretsError(error)
          ? error
          : classifyVaultError(error, 'renew_token', 'auth/token/renew-self');
        if (failure.kind === 'auth') this.#invalidate(record, failure);
        else if (failure.kind === 'lease-terminal' || (failure.kind === 'fatal' && failure.status === 400)) {
          // "lease is not renewable", "invalid lease ID": stop renewing, log in again before expiry instead.
          record.capped = true;
        }
        throw failure;
      } finally {
        this.#renewing = undefined;
      }
    })();
    return this.#renewing;
  }
}

/**
 * Creates a Vault client on node-vault with a deadline on every call, explicit mount paths, classified errors,
 * token renewal at 2/3 of its TTL (with jitter) and a fresh login before the token's max TTL.
 * Nothing happens until `start()` (or the first call).
 * @throws SecretsError `GANTRY_SECRETS_INVALID_OPTIONS` when an option is invalid
 * @example
 * const vault = createVault({
 *   endpoint: 'https://vault.internal:8200',
 *   auth: { method: 'kubernetes', role: 'orders' },
 * });
 * await vault.start();
 * const { data } = await vault.read('secret/data/orders');
 */
export function createVault(options: VaultOptions): Vault {
  return new VaultClient(options);
}
