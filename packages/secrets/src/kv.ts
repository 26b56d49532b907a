// KV v2 reads with a cache: the first get() fetches, later ones answer from memory while a background refresh
// (jittered interval, backoff on failure, last good value kept) re-reads the secret and emits `change` when its
// version moves.
import { EventEmitter } from 'node:events';
import { backoffDelay, uniform, type Clock, type ClockTimer } from './clock.ts';
import { SecretsError, isSecretsError } from './errors.ts';
import { errorFields, type Logger } from './logger.ts';
import type { SecretsMetrics } from './metrics.ts';
import { encodePath, mountPath, optionalNumber, requiredString } from './validate.ts';

/** How often a cached KV secret is re-read. */
export const DEFAULT_KV_REFRESH_INTERVAL_MS = 60_000;

/** Options of `vault.kv()`. */
export interface KvStoreOptions {
  /** KV v2 mount. @default 'secret' */
  readonly mount?: string;
  /** Re-read interval of cached secrets (±10 % jitter); 0 disables refreshing. @default DEFAULT_KV_REFRESH_INTERVAL_MS */
  readonly refreshIntervalMs?: number;
}

/** One version of a KV v2 secret. */
export interface KvSecret<T = Record<string, unknown>> {
  readonly path: string;
  readonly version: number;
  readonly data: T;
  readonly createdTime: string | undefined;
  readonly customMetadata: Readonly<Record<string, string>>;
}

/** Payload of the `change` event (the new data is in `secret`). */
export interface KvChange {
  readonly path: string;
  readonly previousVersion: number;
  readonly secret: KvSecret;
}

/** Events of a {@link KvStore}. */
export interface KvStoreEvents {
  change: [KvChange];
}

/** A cached KV v2 reader; see `vault.kv()`. */
export interface KvStore {
  readonly mount: string;
  /**
   * The latest version of `path` (from the cache after the first read), or a pinned `version` (never refreshed).
   * @throws SecretsError `GANTRY_SECRETS_NOT_FOUND` for a missing or deleted secret; Vault errors on the first read
   */
  get<T = Record<string, unknown>>(path: string, options?: { readonly version?: number }): Promise<KvSecret<T>>;
  /** The cached latest version of `path`, without any I/O. */
  peek<T = Record<string, unknown>>(path: string): KvSecret<T> | undefined;
  /** Writes a new version; `cas` enforces check-and-set. Resolves the new version number. */
  put(path: string, data: Readonly<Record<string, unknown>>, options?: { readonly cas?: number }): Promise<number>;
  on<K extends keyof KvStoreEvents>(event: K, listener: (...args: KvStoreEvents[K]) => void): this;
  off<K extends keyof KvStoreEvents>(event: K, listener: (...args: KvStoreEvents[K]) => void): this;
  /** Stops refreshing. Idempotent. */
  close(): Promise<void>;
}

/** @internal What the store needs from the Vault client. */
export interface KvContext {
  call(operation: string, method: string, path: string, body?: unknown): Promise<unknown>;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: SecretsMetrics | undefined;
  readonly retryInitialDelayMs: number;
  readonly retryMaxDelayMs: number;
  onClose(store: KvStore): void;
}

interface Entry {
  value: KvSecret | undefined;
  loading: Promise<KvSecret> | undefined;
  timer: ClockTimer | undefined;
  failures: number;
}

function freezeDeep<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const item of Object.values(value)) freezeDeep(item);
    Object.freeze(value);
  }
  return value;
}

class KvStoreImpl extends EventEmitter<KvStoreEvents> implements KvStore {
  readonly mount: string;
  readonly #refreshIntervalMs: number;
  readonly #context: KvContext;
  readonly #entries = new Map<string, Entry>();
  readonly #pinned = new Map<string, Promise<KvSecret>>();
  #closed = false;

  constructor(context: KvContext, options: KvStoreOptions) {
    super();
    this.mount = mountPath('mount', options.mount, 'secret');
    this.#refreshIntervalMs = optionalNumber(
      'refreshIntervalMs',
      options.refreshIntervalMs,
      DEFAULT_KV_REFRESH_INTERVAL_MS,
    );
    this.#context = context;
  }

  async get<T>(path: string, options: { readonly version?: number } = {}): Promise<KvSecret<T>> {
    this.#assertOpen();
    const key = encodePath(requiredString('path', path));
    if (options.version !== undefined) {
      const version = optionalNumber('version', options.version, 0, { min: 1, integer: true });
      const pinnedKey = `${key}@${version}`;
      let pinned = this.#pinned.get(pinnedKey);
      if (pinned === undefined) {
        pinned = this.#fetch(key, version);
        this.#pinned.set(pinnedKey, pinned);
        pinned.catch(() => this.#pinned.delete(pinnedKey));
      }
      return (await pinned) as KvSecret<T>;
    }
    let entry = this.#entries.get(key);
    if (entry?.value !== undefined) return entry.value as KvSecret<T>;
    if (entry === undefined) {
      entry = { value: undefined, loading: undefined, timer: undefined, failures: 0 };
      this.#entries.set(key, entry);
    }
    const current = entry;
    current.loading ??= this.#fetch(key).then(
      (secret) => {
        current.value = secret;
        current.loading = undefined;
        this.#schedule(key, current, this.#refreshIntervalMs * uniform(0.9, 1.1));
        return secret;
      },
      (error: unknown) => {
        current.loading = undefined;
        this.#entries.delete(key);
        throw error;
      },
    );
    return (await current.loading) as KvSecret<T>;
  }

  peek<T>(path: string): KvSecret<T> | undefined {
    return this.#entries.get(encodePath(path))?.value as KvSecret<T> | undefined;
  }

  async put(
    path: string,
    data: Readonly<Record<string, unknown>>,
    options: { readonly cas?: number } = {},
  ): Promise<number> {
    this.#assertOpen();
    const key = encodePath(requiredString('path', path));
    const body = {
      ...(options.cas === undefined
        ? {}
        : { options: { cas: optionalNumber('cas', options.cas, 0, { integer: true }) } }),
      data,
    };
    const response = (await this.#context.call('kv_write', 'POST', `${this.mount}/data/${key}`, body)) as {
      data?: { version?: unknown };
    } | null;
    const version = response?.data?.version;
    return typeof version === 'number' ? version : 0;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const entry of this.#entries.values()) {
      if (entry.timer !== undefined) this.#context.clock.clearTimeout(entry.timer);
    }
    this.#entries.clear();
    this.#pinned.clear();
    this.#context.onClose(this);
  }

  #assertOpen(): void {
    if (this.#closed) throw new SecretsError('GANTRY_SECRETS_CLOSED', 'The KV store was closed', { kind: 'fatal' });
  }

  async #fetch(key: string, version?: number): Promise<KvSecret> {
    const query = version === undefined ? '' : `?version=${version}`;
    const body = (await this.#context.call('kv_read', 'GET', `${this.mount}/data/${key}${query}`)) as {
      data?: { data?: unknown; metadata?: Record<string, unknown> } | null;
    } | null;
    const payload = body?.data;
    const metadata = payload?.metadata ?? {};
    if (payload?.data === null || payload?.data === undefined || typeof payload.data !== 'object') {
      throw new SecretsError(
        'GANTRY_SECRETS_NOT_FOUND',
        `KV secret ${this.mount}/${key} has no data (deleted or destroyed)`,
      );
    }
    const custom = metadata['custom_metadata'];
    return freezeDeep({
      path: key,
      version: typeof metadata['version'] === 'number' ? metadata['version'] : 0,
      data: payload.data as Record<string, unknown>,
      createdTime: typeof metadata['created_time'] === 'string' ? metadata['created_time'] : undefined,
      customMetadata: (custom !== null && typeof custom === 'object' ? custom : {}) as Record<string, string>,
    });
  }

  #schedule(key: string, entry: Entry, delayMs: number): void {
    if (this.#closed || this.#refreshIntervalMs === 0) return;
    entry.timer = this.#context.clock.setTimeout(() => {
      entry.timer = undefined;
      void this.#refresh(key, entry);
    }, delayMs);
  }

  async #refresh(key: string, entry: Entry): Promise<void> {
    const { logger, metrics } = this.#context;
    try {
      const secret = await this.#fetch(key);
      if (this.#closed) return;
      entry.failures = 0;
      const previous = entry.value;
      if (previous === undefined || previous.version !== secret.version) {
        entry.value = secret;
        metrics?.kvRefreshes.inc({ result: 'changed' });
        logger.info(
          {
            event: 'secrets.kv.changed',
            mount: this.mount,
            path: key,
            version: secret.version,
            previousVersion: previous?.version ?? 0,
          },
          'KV secret changed',
        );
        this.emit('change', { path: key, previousVersion: previous?.version ?? 0, secret });
      } else {
        metrics?.kvRefreshes.inc({ result: 'unchanged' });
      }
      this.#schedule(key, entry, this.#refreshIntervalMs * uniform(0.9, 1.1));
    } catch (error) {
      if (this.#closed) return;
      metrics?.kvRefreshes.inc({ result: 'failure' });
      const backoff = backoffDelay(entry.failures++, this.#context.retryInitialDelayMs, this.#context.retryMaxDelayMs);
      const delay = Math.max(
        Math.min(this.#refreshIntervalMs, backoff),
        isSecretsError(error) ? (error.retryAfterMs ?? 0) : 0,
      );
      logger.warn(
        {
          event: 'secrets.kv.refresh_failed',
          mount: this.mount,
          path: key,
          delayMs: Math.round(delay),
          ...errorFields(error),
        },
        'KV refresh failed; keeping the last value',
      );
      this.#schedule(key, entry, delay);
    }
  }
}

/** @internal */
export function createKvStore(context: KvContext, options: KvStoreOptions): KvStore {
  return new KvStoreImpl(context, options);
}
