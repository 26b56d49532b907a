// createRotatingPool(): the pg.Pool surface over Vault dynamic credentials, rotated make-before-break
// (reference/vault.md §5.2): obtain → warm and validate a new pool → switch new work to it → drain the old pool
// (never end() while anything waits or is checked out) → end it → revoke the old lease. Each call resolves the
// pool at call time, so nothing ever uses a pool after end().
import { EventEmitter } from 'node:events';
import type { Pool, PoolClient, PoolConfig } from 'pg';
import type { Registry } from 'prom-client';
import type { Check, CheckResult, ShutdownHook } from '@gantry/health';
import { SYSTEM_CLOCK, backoffDelay, sleepKeepingAlive, uniform, type Clock, type ClockTimer } from './clock.ts';
import { SecretsError, invalidOption, isSecretsError } from './errors.ts';
import { SILENT_LOGGER, errorFields, type Logger } from './logger.ts';
import { secretsMetrics, type GaugeSource, type SecretsMetrics } from './metrics.ts';
import { mountPath, oneOf, optionalNumber, optionalString, requiredString } from './validate.ts';
import { RENEW_FRACTION_RANGE, type DatabaseCredentials, type Vault } from './vault.ts';

/** How long new credentials may keep failing authentication (replica lag) before the rotation is abandoned. */
export const DEFAULT_WARMUP_TIMEOUT_MS = 10_000;
/** Connections a rotation opens at a time while warming the new pool. */
export const DEFAULT_WARM_CONCURRENCY = 2;
/** How long an old pool may stay busy after the switch before it is ended anyway. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;
/** Time kept between the end of a rotation (warm-up, drain, revoke) and the credentials' expiry. */
export const DEFAULT_SAFETY_MARGIN_MS = 5_000;
/** Rotation starts at least this fraction of the lease duration before expiry. */
export const DEFAULT_ROTATION_FRACTION = 0.2;
/** The readiness check turns DOWN this long before the credentials stop working (at most half the rotation lead). */
export const DEFAULT_READINESS_LEAD_MS = 15_000;
/** With `revokeMode: 'shorten'`, the old lease is cut to this many seconds instead of being revoked. */
export const DEFAULT_SHORTEN_TO_SECONDS = 30;

/** How the old lease is retired once its pool has ended. */
export type RevokeMode = 'revoke' | 'shorten' | 'expire';

/** Options of {@link createRotatingPool}. */
export interface RotatingPoolOptions {
  /** A client from `createVault()`; the pool starts it when needed but never closes it. */
  readonly vault: Vault;
  /** Database secrets engine role: credentials come from `<mount>/creds/<role>`. */
  readonly role: string;
  /** @default 'database' */
  readonly mount?: string;
  /** Label in metrics and logs (keep it to a fixed set). @default role */
  readonly name?: string;
  /** Connection settings for every generation's `pg.Pool` (`user` and `password` come from Vault). */
  readonly pool?: Readonly<Omit<PoolConfig, 'user' | 'password'>>;
  /** The Pool class to build generations with. @default pg.Pool */
  readonly Pool?: new (config: PoolConfig) => Pool;
  /** @default DEFAULT_WARMUP_TIMEOUT_MS */
  readonly warmupTimeoutMs?: number;
  /** Connections opened before the switch: a number, or `'match'` (as many as the old pool has open). @default 'match' */
  readonly warmConnections?: number | 'match';
  /**
   * How many of those connections are opened at a time. Every new connection starts a PostgreSQL backend and
   * authenticates (SCRAM), which costs the database far more CPU than a query; opening them a few at a time keeps a
   * rotation from stalling the queries the old pool is still serving (and many pods rotating at once from making a
   * connection storm). The old pool serves until the new one is warm, so a slower warm-up costs nothing.
   * @default DEFAULT_WARM_CONCURRENCY
   */
  readonly warmConcurrency?: number;
  /** @default DEFAULT_DRAIN_TIMEOUT_MS */
  readonly drainTimeoutMs?: number;
  /** @default DEFAULT_SAFETY_MARGIN_MS */
  readonly safetyMarginMs?: number;
  /** @default DEFAULT_ROTATION_FRACTION */
  readonly rotationFraction?: number;
  /**
   * Start rotating this long before the credentials' effective expiry.
   * @default max(rotationFraction × lease, warm-up + drain + request timeout + safety margin), at most half the lease
   */
  readonly rotationLeadMs?: number;
  /** @default DEFAULT_READINESS_LEAD_MS */
  readonly readinessLeadMs?: number;
  /** Increment asked for when renewing the lease, in seconds. @default the lease duration Vault first granted */
  readonly leaseIncrementSeconds?: number;
  /** @default 'revoke' */
  readonly revokeMode?: RevokeMode;
  /** @default DEFAULT_SHORTEN_TO_SECONDS */
  readonly shortenToSeconds?: number;
  /** @default the system clock */
  readonly clock?: Clock;
  /** @default silent */
  readonly logger?: Logger;
  /** `null` disables metrics. @default prom-client's global registry */
  readonly registry?: Registry | null;
}

/** The validated, frozen configuration of a {@link RotatingPool}. */
export interface RotatingPoolConfig {
  readonly role: string;
  readonly mount: string;
  readonly name: string;
  readonly warmupTimeoutMs: number;
  readonly warmConnections: number | 'match';
  readonly warmConcurrency: number;
  readonly drainTimeoutMs: number;
  readonly safetyMarginMs: number;
  readonly rotationFraction: number;
  readonly rotationLeadMs: number | undefined;
  readonly readinessLeadMs: number;
  readonly leaseIncrementSeconds: number | undefined;
  readonly revokeMode: RevokeMode;
  readonly shortenToSeconds: number;
}

/** Why a rotation ran. */
export type RotationReason = 'startup' | 'schedule' | 'lease-invalid' | 'token-changed' | 'manual';

/** Events of a {@link RotatingPool}: pg.Pool's, forwarded from every generation, plus rotation events. */
export interface RotatingPoolEvents {
  connect: [PoolClient];
  acquire: [PoolClient];
  release: [Error | undefined, PoolClient];
  remove: [PoolClient];
  /** An idle client failed (forwarded from pg). Without a listener it is logged instead of crashing the process. */
  error: [Error, PoolClient];
  rotated: [
    {
      readonly generation: number;
      readonly previousGeneration: number | undefined;
      readonly username: string;
      readonly reason: RotationReason;
    },
  ];
  'rotation-failed': [{ readonly error: Error; readonly attempt: number }];
  expiring: [{ readonly generation: number; readonly msLeft: number }];
  'drain-timeout': [{ readonly generation: number; readonly checkedOut: number; readonly waiting: number }];
}

/** State of the pool, for dashboards and tests. Never holds a password. */
export interface RotatingPoolState {
  readonly generation: number;
  readonly username: string | undefined;
  readonly leaseExpiresAt: number | undefined;
  /** min(lease expiry, expiry of the token that created the lease). */
  readonly effectiveExpiresAt: number | undefined;
  readonly nextRotationAt: number | undefined;
  readonly draining: number;
  readonly rotating: boolean;
}

/**
 * The `pg.Pool` surface (`query`, `connect`, counters, events) over credentials that rotate underneath.
 * Clients from `connect()` must be released as usual; a client checked out before a rotation keeps working and
 * returns to its own (draining) pool.
 */
export interface RotatingPool {
  readonly config: RotatingPoolConfig;
  readonly query: Pool['query'];
  readonly connect: Pool['connect'];
  /** Same as {@link RotatingPool.close}, for code written against pg.Pool. */
  end(): Promise<void>;
  /** Obtains the first credentials and builds the first pool. Idempotent; `query`/`connect` call it. @throws SecretsError */
  start(): Promise<void>;
  /** Rotates now (waits for a rotation already running). @throws SecretsError when the rotation fails */
  rotate(): Promise<void>;
  /** Stops timers → drains and closes every pool → revokes the leases. Idempotent. */
  close(): Promise<void>;
  /** Readiness: DOWN without credentials or when they expire within the readiness lead. */
  check(options?: { readonly name?: string; readonly critical?: boolean }): Check;
  /**
   * A graceful-shutdown step that runs `close()`. Register it after the Vault client's hook so that it runs first
   * (hooks run in reverse order). @default timeoutMs drainTimeoutMs + 5 s
   */
  shutdownHook(options?: { readonly name?: string; readonly timeoutMs?: number }): ShutdownHook;
  state(): RotatingPoolState;
  readonly totalCount: number;
  readonly idleCount: number;
  readonly waitingCount: number;
  readonly expiredCount: number;
  readonly ending: boolean;
  readonly ended: boolean;
  on<K extends keyof RotatingPoolEvents>(event: K, listener: (...args: RotatingPoolEvents[K]) => void): this;
  once<K extends keyof RotatingPoolEvents>(event: K, listener: (...args: RotatingPoolEvents[K]) => void): this;
  off<K extends keyof RotatingPoolEvents>(event: K, listener: (...args: RotatingPoolEvents[K]) => void): this;
}

interface Generation {
  readonly number: number;
  readonly pool: Pool;
  readonly credentials: DatabaseCredentials;
  leaseExpiresAt: number;
  renewable: boolean;
  truncated: boolean;
}

/** PostgreSQL codes for "these credentials cannot log in (yet)": new roles may lag on replicas. */
const AUTH_SQLSTATES = new Set(['28P01', '28000']);
const DRAIN_POLL_MS = 20;

const sqlState = (error: unknown): string | undefined => {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
};

const realDelay = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    setTimeout(resolve, ms).unref();
  });

class RotatingPoolImpl extends EventEmitter<RotatingPoolEvents> implements RotatingPool {
  readonly config: RotatingPoolConfig;
  readonly #vault: Vault;
  readonly #baseConfig: Readonly<PoolConfig>;
  #Pool: (new (config: PoolConfig) => Pool) | undefined;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #metrics: SecretsMetrics | undefined;
  readonly #gaugeSource: GaugeSource;
  readonly #draining = new Map<Generation, Promise<void>>();
  readonly #revoking = new Set<Promise<void>>();
  readonly #stop = new AbortController();
  #current: Generation | undefined;
  #generation = 0;
  #starting: Promise<void> | undefined;
  #rotating: Promise<void> | undefined;
  #timer: ClockTimer | undefined;
  #expiringTimer: ClockTimer | undefined;
  #nextRotationAt: number | undefined;
  #attempt = 0;
  #closing: Promise<void> | undefined;
  #ended = false;
  #warnedShortLease = false;
  readonly #onLogin: (event: { generation: number; reason: string }) => void;
  readonly #onTokenChange: () => void;
  readonly #onTokenExpired: () => void;

  constructor(options: RotatingPoolOptions) {
    super();
    if (options === null || typeof options !== 'object') throw invalidOption('options', 'an object', options);
    const vault = options.vault as Partial<Vault> | undefined;
    if (vault === undefined || vault === null || typeof vault.databaseCredentials !== 'function') {
      throw invalidOption('vault', 'a client from createVault()', options.vault);
    }
    this.#vault = options.vault;
    const role = requiredString('role', options.role);
    const warm = options.warmConnections;
    if (warm !== undefined && warm !== 'match' && (typeof warm !== 'number' || !Number.isInteger(warm) || warm < 1)) {
      throw invalidOption('warmConnections', 'an integer ≥ 1 or "match"', warm);
    }
    const base = options.pool ?? {};
    if (typeof base !== 'object') throw invalidOption('pool', 'an object of pg.Pool settings', base);
    if ('user' in base || 'password' in base || 'connectionString' in base) {
      throw invalidOption(
        'pool',
        'settings without `user`, `password` or `connectionString` (they come from Vault)',
        Object.keys(base).join(', '),
      );
    }
    this.config = Object.freeze({
      role,
      mount: mountPath('mount', options.mount, 'database'),
      name: optionalString('name', options.name, role),
      warmupTimeoutMs: optionalNumber('warmupTimeoutMs', options.warmupTimeoutMs, DEFAULT_WARMUP_TIMEOUT_MS),
      warmConnections: warm ?? 'match',
      warmConcurrency: optionalNumber('warmConcurrency', options.warmConcurrency, DEFAULT_WARM_CONCURRENCY, {
        min: 1,
        integer: true,
      }),
      drainTimeoutMs: optionalNumber('drainTimeoutMs', options.drainTimeoutMs, DEFAULT_DRAIN_TIMEOUT_MS),
      safetyMarginMs: optionalNumber('safetyMarginMs', options.safetyMarginMs, DEFAULT_SAFETY_MARGIN_MS),
      rotationFraction: optionalNumber('rotationFraction', options.rotationFraction, DEFAULT_ROTATION_FRACTION, {
        max: 0.9,
      }),
      rotationLeadMs:
        options.rotationLeadMs === undefined
          ? undefined
          : optionalNumber('rotationLeadMs', options.rotationLeadMs, 0, { min: 1 }),
      readinessLeadMs: optionalNumber('readinessLeadMs', options.readinessLeadMs, DEFAULT_READINESS_LEAD_MS),
      leaseIncrementSeconds:
        options.leaseIncrementSeconds === undefined
          ? undefined
          : optionalNumber('leaseIncrementSeconds', options.leaseIncrementSeconds, 0, { min: 1, integer: true }),
      revokeMode: oneOf('revokeMode', options.revokeMode, ['revoke', 'shorten', 'expire'] as const, 'revoke'),
      shortenToSeconds: optionalNumber('shortenToSeconds', options.shortenToSeconds, DEFAULT_SHORTEN_TO_SECONDS, {
        min: 1,
        integer: true,
      }),
    });
    if (options.Pool !== undefined && typeof options.Pool !== 'function')
      throw invalidOption('Pool', 'a pg.Pool class', options.Pool);
    this.#Pool = options.Pool;
    this.#baseConfig = Object.freeze({ ...base });
    this.#clock = options.clock ?? SYSTEM_CLOCK;
    this.#logger = (options.logger ?? SILENT_LOGGER).child({ pool: this.config.name });
    this.#metrics = options.registry === null ? undefined : secretsMetrics(options.registry);
    this.#gaugeSource = {
      leaseRemaining: () => {
        const current = this.#current;
        if (current === undefined) return [];
        return [[this.config.name, (this.#effectiveExpiry(current) - this.#clock.now()) / 1000]];
      },
    };
    this.#onLogin = (event) => {
      const current = this.#current;
      if (current === undefined || this.#closing !== undefined) return;
      if (event.reason === 'invalid-token' || event.reason === 'expired') {
        // The token that created the lease is gone, and its leases with it: new credentials now.
        if (current.credentials.tokenGeneration < event.generation) this.#requestRotation('token-changed');
      } else {
        this.#plan();
      }
    };
    this.#onTokenChange = () => {
      if (this.#current !== undefined && this.#closing === undefined) this.#plan();
    };
    this.#onTokenExpired = () => {
      const current = this.#current;
      if (current !== undefined && this.#closing === undefined) this.#requestRotation('token-changed');
    };
    this.query = this.#query.bind(this) as Pool['query'];
    this.connect = this.#connect.bind(this) as Pool['connect'];
  }

  readonly query: Pool['query'];
  readonly connect: Pool['connect'];

  get totalCount(): number {
    return this.#sum((pool) => pool.totalCount);
  }
  get idleCount(): number {
    return this.#sum((pool) => pool.idleCount);
  }
  get waitingCount(): number {
    return this.#sum((pool) => pool.waitingCount);
  }
  get expiredCount(): number {
    return this.#sum((pool) => pool.expiredCount);
  }
  get ending(): boolean {
    return this.#closing !== undefined;
  }
  get ended(): boolean {
    return this.#ended;
  }

  start(): Promise<void> {
    if (this.#closing !== undefined) return Promise.reject(this.#closedError());
    this.#starting ??= (async () => {
      try {
        await this.#vault.start();
        this.#vault.on('login', this.#onLogin);
        this.#vault.on('token-renewed', this.#onTokenChange);
        this.#vault.on('token-expired', this.#onTokenExpired);
        const deadline = this.#clock.now() + this.#vault.config.startupTimeoutMs;
        for (let attempt = 0; ; attempt += 1) {
          try {
            await this.#rotateOnce('startup');
            this.#metrics?.sources.add(this.#gaugeSource);
            return;
          } catch (error) {
            const failure = error instanceof Error ? error : new Error(String(error));
            const retryable = !isSecretsError(failure) || failure.kind !== 'fatal';
            const delay = this.#retryDelay(attempt, failure);
            if (!retryable || this.#clock.now() + delay > deadline || this.#closing !== undefined) {
              throw new SecretsError(
                'GANTRY_SECRETS_STARTUP_FAILED',
                `Could not obtain working credentials for role "${this.config.role}": ${failure.message}`,
                { cause: failure, kind: isSecretsError(failure) ? failure.kind : 'retryable' },
              );
            }
            await sleepKeepingAlive(this.#clock, delay, this.#stop.signal);
          }
        }
      } catch (error) {
        this.#starting = undefined;
        this.#detachVault();
        throw error;
      }
    })();
    return this.#starting;
  }

  async rotate(): Promise<void> {
    if (this.#current === undefined) return this.start();
    await this.#rotateSingleFlight('manual');
  }

  end(): Promise<void> {
    return this.close();
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      // 1. Stop timers and listeners: nothing new starts.
      this.#stop.abort(this.#closedError());
      this.#clearTimers();
      this.#detachVault();
      this.#metrics?.sources.delete(this.#gaugeSource);
      await this.#rotating?.catch(() => undefined);
      await this.#starting?.catch(() => undefined);
      // 2. Drain and close every pool; 3. then revoke their leases (inside #retire, after end()).
      const current = this.#current;
      if (current !== undefined) this.#retire(current, 'close');
      await Promise.all([...this.#draining.values()]);
      await Promise.all([...this.#revoking]);
      this.#ended = true;
      this.#logger.info({ event: 'secrets.pool.closed', generation: this.#generation }, 'Rotating pool closed');
    })();
    return this.#closing;
  }

  check(options: { readonly name?: string; readonly critical?: boolean } = {}): Check {
    return {
      name: options.name ?? `database-credentials-${this.config.name}`,
      critical: options.critical ?? true,
      timeoutMs: 1_000,
      run: async (): Promise<CheckResult> => {
        const current = this.#current;
        if (current === undefined || this.#closing !== undefined) {
          return { status: 'DOWN', data: { reason: this.#closing === undefined ? 'no credentials yet' : 'closed' } };
        }
        const msLeft = this.#effectiveExpiry(current) - this.#clock.now();
        const data = {
          generation: current.number,
          secondsLeft: Math.round(msLeft / 1000),
          draining: this.#draining.size,
        };
        if (msLeft <= this.#readinessLead(current))
          return { status: 'DOWN', data: { ...data, reason: 'credentials expiring' } };
        return { status: 'UP', data };
      },
    };
  }

  shutdownHook(options: { readonly name?: string; readonly timeoutMs?: number } = {}): ShutdownHook {
    return {
      name: options.name ?? `rotating-pool-${this.config.name}`,
      timeoutMs: options.timeoutMs ?? this.config.drainTimeoutMs + 5_000,
      run: () => this.close(),
    };
  }

  state(): RotatingPoolState {
    const current = this.#current;
    return Object.freeze({
      generation: current?.number ?? 0,
      username: current?.credentials.username,
      leaseExpiresAt: current?.leaseExpiresAt,
      effectiveExpiresAt: current === undefined ? undefined : this.#effectiveExpiry(current),
      nextRotationAt: this.#nextRotationAt,
      draining: this.#draining.size,
      rotating: this.#rotating !== undefined,
    });
  }

  // ── pg.Pool surface ────────────────────────────────────────────────────────────────────────────────────

  #query(...args: unknown[]): unknown {
    const current = this.#current;
    if (current !== undefined && this.#closing === undefined) {
      return (current.pool.query as (...a: unknown[]) => unknown).apply(current.pool, args);
    }
    return this.#deferred(args, (pool) => (pool.query as (...a: unknown[]) => unknown).apply(pool, args));
  }

  #connect(...args: unknown[]): unknown {
    const current = this.#current;
    if (current !== undefined && this.#closing === undefined) {
      return (current.pool.connect as (...a: unknown[]) => unknown).apply(current.pool, args);
    }
    return this.#deferred(args, (pool) => (pool.connect as (...a: unknown[]) => unknown).apply(pool, args));
  }

  /** A call made before the first pool exists (or after close): waits for start, or fails the pg way. */
  #deferred(args: unknown[], run: (pool: Pool) => unknown): unknown {
    const callback = args.at(-1);
    const ready =
      this.#closing !== undefined
        ? Promise.reject(this.#closedError())
        : this.start().then(() => {
            const current = this.#current;
            if (current === undefined || this.#closing !== undefined) throw this.#closedError();
            return current.pool;
          });
    if (typeof callback === 'function') {
      ready.then(run, (error: unknown) => (callback as (error: unknown) => void)(error)).catch(() => undefined);
      return undefined;
    }
    return ready.then(run);
  }

  #sum(read: (pool: Pool) => number): number {
    let total = this.#current === undefined ? 0 : read(this.#current.pool);
    for (const generation of this.#draining.keys()) if (generation !== this.#current) total += read(generation.pool);
    return total;
  }

  #closedError(): SecretsError {
    return new SecretsError('GANTRY_SECRETS_CLOSED', `The rotating pool "${this.config.name}" was closed`, {
      kind: 'fatal',
    });
  }

  // ── scheduling ─────────────────────────────────────────────────────────────────────────────────────────

  #effectiveExpiry(generation: Generation): number {
    const tokenExpiry = this.#vault.tokenExpiresAt(generation.credentials.tokenGeneration);
    return tokenExpiry === null || tokenExpiry === undefined
      ? generation.leaseExpiresAt
      : Math.min(generation.leaseExpiresAt, tokenExpiry);
  }

  #lead(generation: Generation): number {
    const duration = generation.credentials.leaseDurationMs;
    if (this.config.rotationLeadMs !== undefined) return this.config.rotationLeadMs;
    const budget =
      this.config.warmupTimeoutMs +
      this.config.drainTimeoutMs +
      this.#vault.config.requestTimeoutMs +
      this.config.safetyMarginMs;
    const lead = Math.max(this.config.rotationFraction * duration, budget);
    if (lead <= duration / 2) return lead;
    if (!this.#warnedShortLease) {
      this.#warnedShortLease = true;
      this.#logger.warn(
        { event: 'secrets.lease.too_short', leaseSeconds: duration / 1000, budgetSeconds: budget / 1000 },
        'The lease is shorter than twice the warm-up + drain + safety budget; rotating at half-life',
      );
    }
    return duration / 2;
  }

  #readinessLead(generation: Generation): number {
    return Math.min(this.config.readinessLeadMs, this.#lead(generation) / 2);
  }

  #clearTimers(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    if (this.#expiringTimer !== undefined) this.#clock.clearTimeout(this.#expiringTimer);
    this.#timer = undefined;
    this.#expiringTimer = undefined;
  }

  /** Plans the next action for the current lease: renew at 2/3 of its remaining TTL, or rotate at expiry − lead. */
  #plan(): void {
    this.#clearTimers();
    const current = this.#current;
    if (current === undefined || this.#closing !== undefined) return;
    const now = this.#clock.now();
    const effective = this.#effectiveExpiry(current);
    // Rotate `lead` before the effective expiry, but never before a third of the credentials' usable life, so a
    // token or lease shorter than the budget cannot make rotations back-to-back.
    const rotateAt = Math.max(
      effective - this.#lead(current),
      current.credentials.obtainedAt + (effective - current.credentials.obtainedAt) / 3,
    );
    this.#nextRotationAt = rotateAt;
    let action: 'renew' | 'rotate' = 'rotate';
    let at = rotateAt;
    if (current.renewable && !current.truncated) {
      const remaining = current.leaseExpiresAt - now;
      const renewAt =
        now +
        Math.max(Math.min(1_000, remaining / 2), remaining * uniform(RENEW_FRACTION_RANGE[0], RENEW_FRACTION_RANGE[1]));
      if (renewAt < rotateAt) {
        action = 'renew';
        at = renewAt;
      }
    }
    this.#timer = this.#clock.setTimeout(
      () => {
        this.#timer = undefined;
        if (action === 'renew') void this.#renew(current);
        else this.#requestRotation('schedule');
      },
      Math.max(0, at - now),
    );
    const expiringAt = effective - this.#readinessLead(current);
    this.#expiringTimer = this.#clock.setTimeout(
      () => {
        this.#expiringTimer = undefined;
        if (this.#current === current) this.#reportExpiring(current);
      },
      Math.max(0, expiringAt - now),
    );
  }

  #reportExpiring(generation: Generation): void {
    const msLeft = this.#effectiveExpiry(generation) - this.#clock.now();
    // Warm connections are what keeps traffic flowing once new logins may fail: stop evicting idle ones.
    generation.pool.options.idleTimeoutMillis = 0;
    this.#logger.warn(
      { event: 'secrets.lease.expiring', generation: generation.number, secondsLeft: Math.round(msLeft / 1000) },
      'Database credentials expire soon and could not be rotated yet',
    );
    this.emit('expiring', { generation: generation.number, msLeft });
  }

  #retryDelay(attempt: number, error: unknown): number {
    const { retryInitialDelayMs, retryMaxDelayMs } = this.#vault.config;
    const retryAfter = isSecretsError(error) ? (error.retryAfterMs ?? 0) : 0;
    return Math.max(backoffDelay(attempt, retryInitialDelayMs, retryMaxDelayMs), retryAfter);
  }

  async #renew(generation: Generation): Promise<void> {
    if (this.#current !== generation || this.#closing !== undefined) return;
    const increment =
      this.config.leaseIncrementSeconds ?? Math.max(1, Math.round(generation.credentials.leaseDurationMs / 1000));
    try {
      const renewal = await this.#vault.renewLease(generation.credentials.leaseId, increment);
      generation.leaseExpiresAt = renewal.expiresAt;
      generation.renewable = renewal.renewable;
      generation.truncated ||= renewal.truncated;
      this.#attempt = 0;
      this.#metrics?.leaseRenewals.inc({ pool: this.config.name, result: renewal.truncated ? 'truncated' : 'success' });
      this.#logger.debug(
        {
          event: 'secrets.lease.renewed',
          generation: generation.number,
          ttlSeconds: renewal.leaseDurationMs / 1000,
          truncated: renewal.truncated,
        },
        'Renewed the database lease',
      );
      if (this.#current === generation) this.#plan();
    } catch (error) {
      this.#metrics?.leaseRenewals.inc({ pool: this.config.name, result: 'failure' });
      if (this.#current !== generation || this.#closing !== undefined) return;
      const kind = isSecretsError(error) ? error.kind : 'retryable';
      this.#logger.warn(
        { event: 'secrets.lease.renew_failed', generation: generation.number, ...errorFields(error) },
        'Lease renewal failed',
      );
      if (kind === 'lease-terminal' || kind === 'auth') {
        this.#requestRotation('lease-invalid');
        return;
      }
      if (kind === 'fatal') generation.truncated = true; // e.g. no policy for sys/leases/renew: rotate instead
      const delay = this.#retryDelay(this.#attempt++, error);
      const rotateAt = this.#nextRotationAt ?? this.#clock.now();
      this.#clearTimers();
      if (kind === 'fatal' || this.#clock.now() + delay >= rotateAt) {
        this.#plan();
        return;
      }
      this.#timer = this.#clock.setTimeout(() => {
        this.#timer = undefined;
        void this.#renew(generation);
      }, delay);
    }
  }

  #requestRotation(reason: RotationReason): void {
    if (this.#closing !== undefined || this.#rotating !== undefined) {
      if (this.#rotating !== undefined && reason !== 'schedule') {
        // A rotation is running; the plan made after it decides whether its credentials are still good.
        this.#rotating.then(
          () => {
            if (this.#current !== undefined && this.#closing === undefined) this.#plan();
          },
          () => undefined, // a failed rotation schedules its own retry
        );
      }
      return;
    }
    this.#clearTimers();
    this.#rotateSingleFlight(reason).then(
      () => {
        this.#attempt = 0;
      },
      (error: unknown) => {
        if (this.#closing !== undefined) return;
        const attempt = ++this.#attempt;
        const delay = this.#retryDelay(attempt - 1, error);
        const failure = error instanceof Error ? error : new Error(String(error));
        this.#logger.error(
          { event: 'secrets.rotation.failed', reason, attempt, delayMs: Math.round(delay), ...errorFields(failure) },
          'Credential rotation failed; current pool keeps serving',
        );
        this.emit('rotation-failed', { error: failure, attempt });
        const current = this.#current;
        if (current !== undefined && this.#clock.now() >= (this.#nextRotationAt ?? 0)) this.#reportExpiring(current);
        this.#clearTimers();
        this.#timer = this.#clock.setTimeout(() => {
          this.#timer = undefined;
          this.#requestRotation(reason);
        }, delay);
        if (current !== undefined) {
          const expiringAt = this.#effectiveExpiry(current) - this.#readinessLead(current);
          this.#expiringTimer = this.#clock.setTimeout(
            () => {
              this.#expiringTimer = undefined;
              if (this.#current === current) this.#reportExpiring(current);
            },
            Math.max(0, expiringAt - this.#clock.now()),
          );
        }
      },
    );
  }

  #rotateSingleFlight(reason: RotationReason): Promise<void> {
    this.#rotating ??= this.#rotateOnce(reason).finally(() => {
      this.#rotating = undefined;
    });
    return this.#rotating;
  }

  /** One make-before-break rotation: obtain → warm and validate → switch → (in the background) drain → end → revoke. */
  async #rotateOnce(reason: RotationReason): Promise<void> {
    const started = this.#clock.now();
    const previous = this.#current;
    const number = this.#generation + 1;
    this.#logger.info(
      { event: 'secrets.rotation.started', reason, generation: number },
      'Rotating database credentials',
    );
    try {
      const lead = previous === undefined ? this.config.safetyMarginMs : this.#lead(previous);
      await this.#vault.ensureToken(lead + this.config.safetyMarginMs).catch((error: unknown) => {
        // A token that cannot outlive the lead is still usable now; anything else is a real failure.
        if (!isSecretsError(error) || error.code !== 'GANTRY_SECRETS_AUTH_FAILED' || error.kind !== 'fatal')
          throw error;
      });
      const credentials = await this.#vault.databaseCredentials({ role: this.config.role, mount: this.config.mount });
      let pool: Pool;
      try {
        pool = await this.#warm(credentials, number, previous);
      } catch (error) {
        this.#retireLease(credentials, number, 'validation-failed');
        throw error;
      }
      if (this.#closing !== undefined) {
        await pool.end().catch(() => undefined);
        this.#retireLease(credentials, number, 'closed');
        throw this.#closedError();
      }
      const generation: Generation = {
        number,
        pool,
        credentials,
        leaseExpiresAt: credentials.expiresAt,
        renewable: credentials.renewable,
        truncated: !credentials.renewable,
      };
      this.#generation = number;
      this.#current = generation; // the switch: every call from now on resolves to the new pool
      this.#metrics?.generation.set({ pool: this.config.name }, number);
      this.#metrics?.rotations.inc({ pool: this.config.name, result: 'success' });
      this.#logger.info(
        {
          event: 'secrets.rotation.completed',
          reason,
          generation: number,
          previousGeneration: previous?.number,
          username: credentials.username,
          leaseSeconds: credentials.leaseDurationMs / 1000,
          durationMs: this.#clock.now() - started,
        },
        'Switched to new database credentials',
      );
      if (previous !== undefined) this.#retire(previous, 'rotated');
      this.#plan();
      this.emit('rotated', {
        generation: number,
        previousGeneration: previous?.number,
        username: credentials.username,
        reason,
      });
    } catch (error) {
      this.#metrics?.rotations.inc({ pool: this.config.name, result: 'failure' });
      throw error;
    }
  }

  #attachListeners(pool: Pool, number: number): void {
    pool.on('connect', (client) => {
      // A checked-out client has no pg-pool listener: without this one, a server-terminated session crashes Node.
      client.on('error', (error: Error) => {
        this.#logger.debug(
          { event: 'secrets.pool.client_error', generation: number, ...errorFields(error) },
          'A database connection failed',
        );
      });
      this.emit('connect', client);
    });
    pool.on('acquire', (client) => this.emit('acquire', client));
    pool.on('release', (error, client) => this.emit('release', error as Error | undefined, client));
    pool.on('remove', (client) => this.emit('remove', client));
    pool.on('error', (error, client) => {
      if (this.listenerCount('error') > 0) this.emit('error', error, client);
      else
        this.#logger.warn(
          { event: 'secrets.pool.idle_client_error', generation: number, ...errorFields(error) },
          'An idle database connection failed',
        );
    });
  }

  /** Builds the next generation's pool and proves the credentials work, retrying auth errors (replica lag) briefly. */
  async #warm(credentials: DatabaseCredentials, number: number, previous: Generation | undefined): Promise<Pool> {
    // pg is loaded on first use, so that code using only the Vault client or KV does not need it installed.
    this.#Pool ??= (
      (await import('pg')) as unknown as { default: { Pool: new (config: PoolConfig) => Pool } }
    ).default.Pool;
    const pool = new this.#Pool({ ...this.#baseConfig, user: credentials.username, password: credentials.password });
    this.#attachListeners(pool, number);
    const deadline = this.#clock.now() + this.config.warmupTimeoutMs;
    // Clients stay checked out until warming ends, so that each connect() opens a new connection.
    const held: PoolClient[] = [];
    try {
      for (let attempt = 0; ; attempt += 1) {
        let client: PoolClient | undefined;
        try {
          client = await pool.connect();
          await client.query('SELECT 1');
          held.push(client);
          break;
        } catch (error) {
          client?.release(true);
          const delay = Math.min(1_000, 50 * 2 ** attempt);
          if (
            AUTH_SQLSTATES.has(sqlState(error) ?? '') &&
            this.#clock.now() + delay < deadline &&
            this.#closing === undefined
          ) {
            this.#logger.debug(
              {
                event: 'secrets.rotation.warmup_retry',
                generation: number,
                attempt: attempt + 1,
                ...errorFields(error),
              },
              'New credentials not accepted yet; retrying',
            );
            await realDelay(delay);
            continue;
          }
          await pool.end().catch(() => undefined);
          throw new SecretsError(
            'GANTRY_SECRETS_CREDENTIALS_REJECTED',
            `New credentials for role "${this.config.role}" could not connect: ${error instanceof Error ? error.message : String(error)}`,
            { cause: error, kind: 'retryable' },
          );
        }
      }
      const max = pool.options.max ?? 10;
      const wanted = Math.min(
        max,
        this.config.warmConnections === 'match' ? (previous?.pool.totalCount ?? 1) : this.config.warmConnections,
      );
      // A few lanes open the rest; a lane stops at its first failure (the pool opens more on demand later).
      let opening = held.length;
      const lane = async (): Promise<void> => {
        while (opening < wanted && this.#closing === undefined && this.#clock.now() < deadline) {
          opening += 1;
          try {
            held.push(await pool.connect());
          } catch {
            opening -= 1;
            return;
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.config.warmConcurrency, wanted - 1) }, lane));
    } finally {
      for (const client of held.splice(0)) client.release();
    }
    return pool;
  }

  /** Drains an old generation in the background, ends it, then retires its lease. */
  #retire(generation: Generation, why: 'rotated' | 'close'): void {
    if (this.#draining.has(generation)) return;
    const task = (async () => {
      const started = this.#clock.now();
      const switchedAt = performance.now();
      const { pool } = generation;
      // End before the credentials expire (minus the safety margin), and never later than the drain timeout.
      const deadline = Math.max(
        started,
        Math.min(started + this.config.drainTimeoutMs, this.#effectiveExpiry(generation) - this.config.safetyMarginMs),
      );
      const idle = (): boolean => pool.waitingCount === 0 && pool.totalCount === pool.idleCount;
      while (!idle() && this.#clock.now() < deadline) await realDelay(DRAIN_POLL_MS);
      if (!idle()) {
        const checkedOut = pool.totalCount - pool.idleCount;
        this.#metrics?.drainTimeouts.inc({ pool: this.config.name });
        this.#logger.warn(
          {
            event: 'secrets.pool.drain_timeout',
            generation: generation.number,
            checkedOut,
            waiting: pool.waitingCount,
          },
          'Old pool still busy at the drain deadline; ending it once no caller waits (checked-out clients close on release)',
        );
        this.emit('drain-timeout', { generation: generation.number, checkedOut, waiting: pool.waitingCount });
        // Waiters are served as clients come back; end() would strand them, so wait for the queue to empty.
        while (pool.waitingCount > 0) await realDelay(DRAIN_POLL_MS);
      }
      const ended = pool.end();
      // end() resolves once checked-out clients are released; a leaked client must not keep the lease forever.
      const untilExpiry = Math.max(0, this.#effectiveExpiry(generation) - this.#clock.now());
      await Promise.race([ended, realDelay(Math.min(untilExpiry, this.config.drainTimeoutMs) + DRAIN_POLL_MS)]).catch(
        () => undefined,
      );
      const drainSeconds = (performance.now() - switchedAt) / 1000;
      this.#metrics?.drainDuration.observe({ pool: this.config.name }, drainSeconds);
      this.#logger.info(
        { event: 'secrets.pool.drained', generation: generation.number, why, drainMs: Math.round(drainSeconds * 1000) },
        'Old pool ended',
      );
      await this.#retireLeaseNow(generation.credentials, generation.number, why);
    })().finally(() => {
      this.#draining.delete(generation);
      this.#metrics?.drainingPools.set({ pool: this.config.name }, this.#draining.size);
    });
    this.#draining.set(generation, task);
    this.#metrics?.drainingPools.set({ pool: this.config.name }, this.#draining.size);
  }

  /** Retires the lease of credentials that never served (validation failed, or closed meanwhile). */
  #retireLease(credentials: DatabaseCredentials, number: number, why: string): void {
    const task = this.#retireLeaseNow(credentials, number, why).finally(() => this.#revoking.delete(task));
    this.#revoking.add(task);
  }

  async #retireLeaseNow(credentials: DatabaseCredentials, number: number, why: string): Promise<void> {
    const mode = this.config.revokeMode;
    if (mode === 'expire') return;
    try {
      if (mode === 'revoke') await this.#vault.revokeLease(credentials.leaseId);
      else await this.#vault.renewLease(credentials.leaseId, this.config.shortenToSeconds);
      this.#logger.info(
        { event: 'secrets.lease.revoked', generation: number, mode, why, username: credentials.username },
        'Retired the old lease',
      );
    } catch (error) {
      // Not fatal: Vault revokes the lease at its expiry anyway.
      this.#logger.warn(
        { event: 'secrets.lease.revoke_failed', generation: number, mode, ...errorFields(error) },
        'Could not retire the old lease; it will expire',
      );
    }
  }

  #detachVault(): void {
    this.#vault.off('login', this.#onLogin);
    this.#vault.off('token-renewed', this.#onTokenChange);
    this.#vault.off('token-expired', this.#onTokenExpired);
  }
}

/**
 * Creates a `pg.Pool`-compatible pool over Vault dynamic database credentials that rotates make-before-break:
 * a new pool is warmed and validated before new work moves to it, the old pool is ended only once nothing waits
 * on it or holds a client, and only then is its lease revoked. Rotation starts early enough to cover warm-up,
 * drain and revoke before the credentials' effective expiry (lease or creating token, whichever comes first).
 * @throws SecretsError `GANTRY_SECRETS_INVALID_OPTIONS` when an option is invalid
 * @example
 * const vault = createVault({ endpoint, auth: { method: 'kubernetes', role: 'orders' } });
 * const pool = createRotatingPool({ vault, role: 'orders-rw', pool: { host: 'db', database: 'orders', max: 20 } });
 * await pool.start();
 * const { rows } = await pool.query('SELECT now()');
 * health.addCheck(pool.check()); // @gantry/health: a readiness check
 */
export function createRotatingPool(options: RotatingPoolOptions): RotatingPool {
  return new RotatingPoolImpl(options);
}
