import { createHash } from 'node:crypto';
import type { Check, CheckResult, InfoContributor, ShutdownHook } from '@gantry/health';
import { Unleash, type Variant as UnleashVariant } from 'unleash-client';
import {
  effectiveIdentity,
  loadBaggageReader,
  toUnleashContext,
  type AmbientContextReader,
  type FlagContext,
} from './context.ts';
import { DISABLED_VARIANT, findExpiredFlags, type ExpiredFlag, type FlagRegistry } from './definitions.ts';
import { FlagsError } from './errors.ts';
import { errorMessage, SILENT_LOGGER, type FlagsLogger } from './logger.ts';
import { createFlagsMetrics, EvaluationCounts, resolveRegistry, type FlagsMetrics } from './metrics.ts';
import {
  DEFAULT_READY_TIMEOUT_MS,
  resolveFlagsOptions,
  type FlagsClock,
  type FlagsOptions,
  type ResolvedFlagsOptions,
} from './options.ts';
import { SnapshotStore, type SnapshotOrigin } from './snapshot-store.ts';

/** Payload of a variant, as configured in Unleash. */
export interface FlagPayload {
  readonly type: 'string' | 'json' | 'csv' | 'number';
  readonly value: string;
}

/** The variant a context gets. `enabled` is false for the fallback variant. */
export interface FlagVariant {
  readonly name: string;
  readonly enabled: boolean;
  /** Whether the toggle itself is on for this context. */
  readonly featureEnabled: boolean;
  readonly payload?: FlagPayload;
}

/** What the client knows about one toggle's definition (not its evaluation). */
export interface FlagToggle {
  readonly name: string;
  /** On in this environment (before strategies and constraints). */
  readonly enabled: boolean;
  readonly variants: readonly string[];
}

/** Where the values in memory came from (the `/q/info` `flags.source`). */
export type FlagsSource = 'unleash' | 'bootstrap' | 'none';

/** A snapshot of the client's state, cheap to read. */
export interface FlagsStatus {
  /** Values are loaded: from Unleash, the backup or the bootstrap. */
  readonly ready: boolean;
  /** Values came from Unleash in this process at least once. */
  readonly synchronized: boolean;
  readonly source: FlagsSource;
  /** Short hash of the toggle definitions in memory; equal on pods that evaluate the same configuration. */
  readonly hash: string | null;
  /** When the values in memory last changed (ISO 8601). */
  readonly updatedAt: string | null;
  /** Last successful poll of Unleash (ISO 8601). */
  readonly lastSyncAt: string | null;
  readonly consecutiveFailures: number;
  /** Last sync problem, without secrets. */
  readonly lastError: string | null;
  /** Unleash refused the token (401/403); unleash-client stops polling then. */
  readonly unauthorized: boolean;
  readonly toggles: number;
}

/** Options of `ready()`. */
export interface FlagsReadyOptions {
  /** @default 10_000 */
  readonly timeoutMs?: number;
  /** `data`: any values (bootstrap, backup or Unleash); `sync`: values from Unleash itself. @default 'data' */
  readonly require?: 'data' | 'sync';
  readonly signal?: AbortSignal;
}

/** Options of the readiness check. */
export interface FlagsCheckOptions {
  /** @default 'flags' */
  readonly name?: string;
  /** @default true */
  readonly critical?: boolean;
  /** @default 1_000 */
  readonly timeoutMs?: number;
  /** DOWN once the last successful poll is older than this; by default staleness is only reported. */
  readonly maxStalenessMs?: number;
}

/** A feature flag client. `N` is the union of flag names when a registry was given. */
export interface Flags<N extends string = string> {
  /**
   * Whether `name` is on for `context`. Never throws: without data, or for a toggle Unleash does not know, it
   * returns `fallback`, else the registry default, else false.
   */
  isEnabled(name: N, context?: FlagContext, fallback?: boolean): boolean;
  /** The variant of `name` for `context`, or `fallback` (default: the registry's `defaultVariant`, disabled). */
  variant(name: N, context?: FlagContext, fallback?: FlagVariant): FlagVariant;
  /** The toggle's definition as last received, or undefined when Unleash does not know it. */
  toggle(name: N): FlagToggle | undefined;
  /** The tenant and user an evaluation of `context` would use (after the OTel baggage filled the gaps). */
  identity(context?: FlagContext): { readonly tenantId: string | undefined; readonly userId: string | undefined };
  readonly status: FlagsStatus;
  /** Starts loading (backup/bootstrap) and polling. Idempotent. */
  start(): Promise<void>;
  /**
   * Starts the client and waits for values.
   * @throws FlagsError `GANTRY_FLAGS_READY_TIMEOUT`, `GANTRY_FLAGS_UNAUTHORIZED` or `GANTRY_FLAGS_CLOSED`.
   */
  ready(options?: FlagsReadyOptions): Promise<void>;
  /** Stops polling and sends the last usage counts (bounded). Idempotent. */
  close(): Promise<void>;
  /** Called whenever the toggle configuration in memory changes, or readiness/sync health changes. */
  onChange(listener: (status: FlagsStatus) => void): () => void;
  /** Readiness check: UP once values are loaded; DOWN before, and when Unleash refuses the token. */
  check(options?: FlagsCheckOptions): Check;
  /** The `/q/info` section `flags: { hash, source, updatedAt }`. */
  info(): InfoContributor;
  /** A graceful-shutdown step that closes the client (stops polling, sends the last usage counts). */
  shutdownHook(): ShutdownHook;
  /** Flags of the registry past their expiry date. */
  expired(): readonly ExpiredFlag[];
}

/** Timeout of one run of the readiness check (it answers from memory). */
export const DEFAULT_CHECK_TIMEOUT_MS = 1_000;
const CLOSE_FLUSH_TIMEOUT_MS = 2_000;
const UNAUTHORIZED_PATTERN = /responded (401|403)\b/;

interface ReadyWaiter {
  readonly require: 'data' | 'sync';
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Creates a flag client on its own unleash-client instance (never the global singleton).
 * @throws FlagsError `GANTRY_FLAGS_INVALID_OPTIONS` for malformed options.
 * @example
 * const flags = createFlags({ url: 'http://unleash:4242/api', token, appName: 'orders', definitions: FLAGS });
 * await flags.ready({ timeoutMs: 5_000 });
 * if (flags.isEnabled('checkout-v2', { userId })) { ... }
 */
export function createFlags<N extends string = string>(options: FlagsOptions<N>): Flags<N> {
  return new UnleashFlags<N>(options);
}

class UnleashFlags<N extends string> implements Flags<N> {
  readonly #options: ResolvedFlagsOptions;
  readonly #definitions: FlagRegistry<N> | undefined;
  readonly #logger: FlagsLogger;
  readonly #clock: FlagsClock;
  readonly #unleash: Unleash;
  readonly #store: SnapshotStore;
  readonly #counts = new EvaluationCounts();
  readonly #metrics: FlagsMetrics;
  readonly #listeners = new Set<(status: FlagsStatus) => void>();
  readonly #waiters = new Set<ReadyWaiter>();
  #ambient: AmbientContextReader | undefined;
  readonly #ambientOption: AmbientContextReader | false | undefined;
  #started: Promise<void> | undefined;
  #closed: Promise<void> | undefined;

  #ready = false;
  #synchronized = false;
  #snapshotOrigin: SnapshotOrigin | undefined;
  #snapshotSavedAt: Date | undefined;
  #hash: string | null = null;
  #toggles = 0;
  #updatedAt: number | undefined;
  #lastSyncAt: number | undefined;
  #failures = 0;
  #lastError: string | null = null;
  #unauthorized = false;
  /** Bumped on every state change, so `status` is built once per change rather than once per read. */
  #version = 0;
  #statusCache: { version: number; status: FlagsStatus } | undefined;

  constructor(options: FlagsOptions<N>) {
    this.#options = resolveFlagsOptions(options);
    this.#definitions = options.definitions;
    this.#logger = (options.logger ?? SILENT_LOGGER).child({ component: 'gantry-flags', app: this.#options.appName });
    this.#clock = options.clock ?? Date;
    this.#ambientOption = options.ambientContext;
    if (typeof options.ambientContext === 'function') this.#ambient = options.ambientContext;
    const resolved = this.#options;
    this.#store = new SnapshotStore({
      appName: resolved.appName,
      backupDirectory: resolved.backupPath,
      bootstrapPath: resolved.bootstrapPath,
      bootstrapData: resolved.bootstrap,
      preferBootstrap: resolved.preferBootstrap,
      logger: this.#logger,
      onLoad: (origin, savedAt) => {
        this.#snapshotOrigin = origin;
        this.#snapshotSavedAt = savedAt;
      },
    });
    const headers: Record<string, string> = { ...resolved.customHeaders };
    if (resolved.token !== undefined) headers['Authorization'] = resolved.token;
    this.#unleash = new Unleash({
      // Offline mode never polls (refreshInterval 0), so the URL is never contacted.
      url: resolved.url ?? 'http://127.0.0.1:9/offline',
      appName: resolved.appName,
      environment: resolved.environment,
      ...(resolved.instanceId !== undefined && { instanceId: resolved.instanceId }),
      ...(resolved.projectName !== undefined && { projectName: resolved.projectName }),
      refreshInterval: resolved.offline ? 0 : resolved.refreshIntervalMs,
      metricsInterval: resolved.metricsIntervalMs,
      disableMetrics: resolved.offline || !resolved.sendUsageMetrics,
      timeout: resolved.requestTimeoutMs,
      customHeaders: headers,
      storageProvider: this.#store,
      strategies: [...(options.strategies ?? [])],
      disableAutoStart: true,
      skipInstanceCountWarning: true,
    });
    this.#metrics = createFlagsMetrics(resolveRegistry(options.registry), this.#counts);
    this.#metrics.ready.set({ app: resolved.appName }, 0);
    this.#wireEvents();
  }

  // ── evaluation (hot path: no I/O, no throw) ────────────────────────────────────────────────────────────────

  isEnabled(name: N, context?: FlagContext, fallback?: boolean): boolean {
    const unleashContext = toUnleashContext(context, this.#ambient, this.#options.tenantProperty);
    const defaultValue = fallback ?? this.#definitions?.get(name)?.default ?? false;
    let result: boolean;
    try {
      result = this.#unleash.isEnabled(name, unleashContext, defaultValue);
    } catch (error) {
      this.#evaluationFailed(name, error);
      result = defaultValue;
    }
    this.#counts.recordBoolean(name, result);
    return result;
  }

  variant(name: N, context?: FlagContext, fallback?: FlagVariant): FlagVariant {
    const unleashContext = toUnleashContext(context, this.#ambient, this.#options.tenantProperty);
    const fallbackVariant: UnleashVariant = fallback
      ? { name: fallback.name, enabled: fallback.enabled }
      : { name: this.#definitions?.get(name)?.defaultVariant ?? DISABLED_VARIANT, enabled: false };
    if (fallback?.payload !== undefined)
      fallbackVariant.payload = fallback.payload as NonNullable<UnleashVariant['payload']>;
    let result: FlagVariant;
    try {
      const found = this.#unleash.getVariant(name, unleashContext, fallbackVariant);
      result = {
        name: found.name,
        enabled: found.enabled,
        featureEnabled: found.feature_enabled ?? false,
        ...(found.payload !== undefined && {
          payload: { type: found.payload.type, value: found.payload.value },
        }),
      };
    } catch (error) {
      this.#evaluationFailed(name, error);
      result = { ...fallbackVariant, featureEnabled: false };
    }
    this.#counts.recordVariant(name, result.name);
    return result;
  }

  toggle(name: N): FlagToggle | undefined {
    const definition = this.#unleash.getFeatureToggleDefinition(name);
    if (definition === undefined) return undefined;
    return {
      name: definition.name,
      enabled: definition.enabled,
      variants: (definition.variants ?? []).map((variant) => variant.name),
    };
  }

  identity(context?: FlagContext): { readonly tenantId: string | undefined; readonly userId: string | undefined } {
    return effectiveIdentity(context, this.#ambient);
  }

  #evaluationFailed(name: string, error: unknown): void {
    this.#logger.error(
      { event: 'flags.evaluation.failed', flag: name, error: errorMessage(error) },
      'flag evaluation threw; using the fallback',
    );
  }

  // ── lifecycle ──────────────────────────────────────────────────────────────────────────────────────────────

  start(): Promise<void> {
    if (this.#closed !== undefined) return Promise.reject(closedError());
    this.#started ??= this.#start();
    return this.#started;
  }

  async #start(): Promise<void> {
    if (this.#ambientOption === undefined) this.#ambient = await loadBaggageReader();
    await this.#store.prepare();
    this.#reportExpired();
    this.#logger.info(
      {
        event: 'flags.client.starting',
        url: this.#options.url,
        offline: this.#options.offline,
        backupFile: this.#store.backupFile ?? null,
        bootstrap: this.#options.bootstrapPath ?? (this.#options.bootstrap ? 'inline' : null),
      },
      'starting the flag client',
    );
    // close() may have been called while we awaited above: a destroyed client must not start polling again.
    if (this.#closed !== undefined) return;
    // unleash-client's start() resolves after the first poll; we do not wait for it here (ready() does).
    this.#unleash.start().catch((error: unknown) => {
      this.#logger.error(
        { event: 'flags.client.start_failed', error: errorMessage(error) },
        'unleash client failed to start',
      );
    });
  }

  async ready(options: FlagsReadyOptions = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
    if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 0) {
      throw new FlagsError(
        'GANTRY_FLAGS_INVALID_OPTIONS',
        `Expected \`timeoutMs\` to be a finite number ≥ 0, got ${String(timeoutMs)}`,
      );
    }
    const require = options.require ?? 'data';
    await this.start();
    if (this.#satisfies(require)) return;
    if (this.#unauthorized) throw this.#unauthorizedError();
    options.signal?.throwIfAborted();
    await new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        this.#waiters.delete(waiter);
      };
      const waiter: ReadyWaiter = {
        require,
        resolve: () => {
          cleanup();
          resolve();
        },
        reject: (error) => {
          cleanup();
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      };
      const onAbort = (): void => waiter.reject(options.signal?.reason);
      const timer = setTimeout(() => {
        waiter.reject(
          new FlagsError(
            'GANTRY_FLAGS_READY_TIMEOUT',
            `Flags were not ${require === 'sync' ? 'synchronized with Unleash' : 'loaded'} within ${timeoutMs} ms` +
              (this.#lastError === null ? '' : ` (last error: ${this.#lastError})`),
          ),
        );
      }, timeoutMs);
      timer.unref();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.add(waiter);
    });
  }

  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    for (const waiter of [...this.#waiters]) waiter.reject(closedError());
    await this.#started?.catch(() => undefined);
    if (this.#started !== undefined && !this.#options.offline && this.#options.sendUsageMetrics) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.#unleash.flushMetrics().catch(() => undefined),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, CLOSE_FLUSH_TIMEOUT_MS);
          timer.unref();
        }),
      ]);
      clearTimeout(timer);
    }
    this.#unleash.destroy();
    this.#metrics.detach();
    this.#listeners.clear();
    this.#logger.info({ event: 'flags.client.closed' }, 'flag client closed');
  }

  // ── state ──────────────────────────────────────────────────────────────────────────────────────────────────

  get status(): FlagsStatus {
    const cached = this.#statusCache;
    if (cached?.version === this.#version) return cached.status;
    const status = this.#buildStatus();
    this.#statusCache = { version: this.#version, status };
    return status;
  }

  #buildStatus(): FlagsStatus {
    return {
      ready: this.#ready,
      synchronized: this.#synchronized,
      source: this.#source(),
      hash: this.#hash,
      updatedAt: this.#updatedAt === undefined ? null : new Date(this.#updatedAt).toISOString(),
      lastSyncAt: this.#lastSyncAt === undefined ? null : new Date(this.#lastSyncAt).toISOString(),
      consecutiveFailures: this.#failures,
      lastError: this.#lastError,
      unauthorized: this.#unauthorized,
      toggles: this.#toggles,
    };
  }

  #source(): FlagsSource {
    if (!this.#ready) return 'none';
    if (this.#synchronized || this.#snapshotOrigin === 'backup') return 'unleash';
    return this.#snapshotOrigin === 'bootstrap' ? 'bootstrap' : 'unleash';
  }

  #satisfies(require: 'data' | 'sync'): boolean {
    // unleash-client evaluates only after its own `ready`, which follows the first `changed` by a tick.
    return require === 'sync' ? this.#synchronized && this.#ready : this.#ready;
  }

  onChange(listener: (status: FlagsStatus) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #notify(): void {
    for (const waiter of [...this.#waiters]) {
      if (this.#satisfies(waiter.require)) waiter.resolve();
      else if (this.#unauthorized) waiter.reject(this.#unauthorizedError());
    }
    if (this.#listeners.size === 0) return;
    const status = this.status;
    for (const listener of this.#listeners) {
      try {
        listener(status);
      } catch (error) {
        this.#logger.error(
          { event: 'flags.listener.failed', error: errorMessage(error) },
          'a flags change listener threw',
        );
      }
    }
  }

  #wireEvents(): void {
    const unleash = this.#unleash;
    const app = this.#options.appName;
    unleash.on('ready', () => {
      this.#version += 1;
      const first = !this.#ready;
      this.#ready = true;
      this.#metrics.ready.set({ app }, 1);
      const changed = this.#rehash();
      if (!this.#synchronized && this.#snapshotOrigin !== undefined) {
        this.#updatedAt = this.#snapshotSavedAt?.getTime() ?? this.#clock.now();
        this.#logger.info(
          { event: 'flags.snapshot.loaded', origin: this.#snapshotOrigin, toggles: this.#toggles, hash: this.#hash },
          `flags loaded from the ${this.#snapshotOrigin}`,
        );
      }
      if (first || changed) this.#notify();
    });
    unleash.on('changed', () => {
      this.#version += 1;
      this.#pollSucceeded('changed');
      const firstSync = !this.#synchronized;
      this.#synchronized = true;
      const changed = this.#rehash();
      if (changed || firstSync) this.#updatedAt = this.#clock.now();
      if (firstSync) {
        this.#logger.info(
          { event: 'flags.sync.first', toggles: this.#toggles, hash: this.#hash },
          'flags synchronized with Unleash',
        );
        this.#reportMissing();
      } else if (changed) {
        this.#logger.info(
          { event: 'flags.sync.changed', toggles: this.#toggles, hash: this.#hash },
          'flag configuration changed',
        );
      }
      this.#notify();
    });
    unleash.on('unchanged', () => {
      if (this.#pollSucceeded('unchanged')) this.#notify();
    });
    unleash.on('error', (error: unknown) => this.#onError(error));
    unleash.on('warn', (message: unknown) => {
      const text = errorMessage(message);
      // unleash-client reports 404/429/5xx answers (it backs off) and dropped keep-alive sockets as warnings, not
      // errors; for us they are failed polls all the same. The metrics endpoint's warnings are not.
      if (/Backing off|Socket keep alive error/.test(text) && !/\/client\/(metrics|register)/.test(text)) {
        this.#onError(new Error(text));
        return;
      }
      this.#logger.debug({ event: 'flags.unleash.warning', message: text }, 'unleash client warning');
    });
  }

  /** Records a successful poll; returns whether that ended an outage. */
  #pollSucceeded(outcome: 'changed' | 'unchanged'): boolean {
    this.#version += 1;
    const app = this.#options.appName;
    this.#lastSyncAt = this.#clock.now();
    this.#metrics.syncs.inc({ app, outcome });
    this.#metrics.lastSync.set({ app }, this.#lastSyncAt / 1000);
    const recovered = this.#failures > 0 || this.#unauthorized;
    if (recovered) {
      this.#logger.info({ event: 'flags.sync.recovered', failures: this.#failures }, 'Unleash is reachable again');
    }
    this.#failures = 0;
    this.#lastError = null;
    this.#unauthorized = false;
    return recovered;
  }

  #onError(error: unknown): void {
    this.#version += 1;
    const message = errorMessage(error);
    const app = this.#options.appName;
    if (message.startsWith('Unleash Metrics error')) {
      this.#logger.debug(
        { event: 'flags.usage_metrics.failed', error: message },
        'could not send usage counts to Unleash',
      );
      return;
    }
    if (UNAUTHORIZED_PATTERN.test(message)) {
      const status = UNAUTHORIZED_PATTERN.exec(message)?.[1] ?? '401';
      this.#unauthorized = true;
      this.#failures += 1;
      this.#lastError = `Unleash refused the API token (HTTP ${status}); polling stopped`;
      this.#metrics.syncs.inc({ app, outcome: 'unauthorized' });
      this.#logger.error(
        {
          event: 'flags.sync.unauthorized',
          code: 'GANTRY_FLAGS_UNAUTHORIZED',
          status: Number(status),
          url: this.#options.url,
        },
        this.#unauthorizedError().message,
      );
      this.#notify();
      return;
    }
    this.#failures += 1;
    this.#lastError = message.replace(/^Unleash Repository error: /, '');
    this.#metrics.syncs.inc({ app, outcome: 'failed' });
    const fields = { event: 'flags.sync.failed', failures: this.#failures, error: this.#lastError };
    if (this.#failures === 1) {
      this.#logger.warn(fields, 'could not poll Unleash; keeping the last values and retrying in the background');
      this.#notify();
    } else {
      this.#logger.debug(fields, 'Unleash still unreachable');
    }
  }

  #unauthorizedError(): FlagsError {
    return new FlagsError(
      'GANTRY_FLAGS_UNAUTHORIZED',
      `Unleash at ${this.#options.url ?? '(offline)'} refused the API token (401/403): check that it is a backend ` +
        'token for this environment and project. Polling has stopped; restart after fixing the token.',
    );
  }

  /** Recomputes the configuration hash; returns whether it changed. */
  #rehash(): boolean {
    const toggles = this.#unleash.getFeatureToggleDefinitions(true);
    const sorted = [...toggles].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const hash = createHash('sha256').update(canonicalJson(sorted)).digest('hex').slice(0, 16);
    this.#toggles = toggles.length;
    if (hash === this.#hash) return false;
    this.#hash = hash;
    return true;
  }

  #reportExpired(): void {
    const expired = this.expired();
    this.#metrics.expired.set({ app: this.#options.appName }, expired.length);
    for (const flag of expired) {
      this.#logger.warn(
        {
          event: 'flags.flag.expired',
          flag: flag.name,
          owner: flag.owner ?? null,
          expires: flag.expires,
          daysOverdue: flag.daysOverdue,
        },
        `flag "${flag.name}" expired on ${flag.expires}; remove it from the code`,
      );
    }
  }

  #reportMissing(): void {
    if (this.#definitions === undefined) return;
    const missing = this.#definitions.names.filter(
      (name) => this.#unleash.getFeatureToggleDefinition(name) === undefined,
    );
    if (missing.length > 0) {
      this.#logger.warn(
        { event: 'flags.flag.missing', flags: missing },
        `Unleash does not know ${missing.length} flag(s) this service defines; they evaluate to their defaults`,
      );
    }
  }

  expired(): readonly ExpiredFlag[] {
    return findExpiredFlags(this.#definitions, this.#clock.now());
  }

  // ── integration with @gantry/health ─────────────────────────────────────────────────────────────────────────

  check(options: FlagsCheckOptions = {}): Check {
    const maxStalenessMs = options.maxStalenessMs;
    if (maxStalenessMs !== undefined && (!Number.isFinite(maxStalenessMs) || maxStalenessMs <= 0)) {
      throw new FlagsError(
        'GANTRY_FLAGS_INVALID_OPTIONS',
        `Expected \`maxStalenessMs\` to be a finite number > 0, got ${String(maxStalenessMs)}`,
      );
    }
    return {
      name: options.name ?? 'flags',
      critical: options.critical ?? true,
      timeoutMs: options.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS,
      run: async (): Promise<CheckResult> => {
        const status = this.status;
        const data: Record<string, string | number | boolean> = {
          source: status.source,
          synchronized: status.synchronized,
          toggles: status.toggles,
          failures: status.consecutiveFailures,
        };
        if (status.hash !== null) data['hash'] = status.hash;
        const staleMs = this.#lastSyncAt === undefined ? undefined : Math.max(0, this.#clock.now() - this.#lastSyncAt);
        if (staleMs !== undefined) data['lastSyncAgeMs'] = staleMs;
        if (status.lastError !== null) data['error'] = status.lastError;
        const expired = this.expired().length;
        if (expired > 0) data['expiredFlags'] = expired;
        if (this.#options.offline) data['offline'] = true;
        let up = status.ready && !status.unauthorized;
        if (up && maxStalenessMs !== undefined && !this.#options.offline) {
          up = staleMs !== undefined && staleMs <= maxStalenessMs;
          if (!up) data['reason'] = `no successful poll for more than ${maxStalenessMs} ms`;
        }
        if (!status.ready) data['reason'] = 'no flag values loaded yet';
        if (status.unauthorized) data['reason'] = 'Unleash refused the API token';
        return { status: up ? 'UP' : 'DOWN', data };
      },
    };
  }

  info(): InfoContributor {
    return {
      name: 'flags',
      contribute: () => {
        const status = this.status;
        return { hash: status.hash, source: status.source, updatedAt: status.updatedAt };
      },
    };
  }

  shutdownHook(): ShutdownHook {
    return { name: 'flags', timeoutMs: CLOSE_FLUSH_TIMEOUT_MS + 1_000, run: () => this.close() };
  }
}

function closedError(): FlagsError {
  return new FlagsError('GANTRY_FLAGS_CLOSED', 'The flag client was closed');
}

/** JSON with object keys sorted, so equal configurations hash equally whatever order Unleash sent. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, item]) => item !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
}
