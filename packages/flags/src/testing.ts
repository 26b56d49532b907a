import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import type { Check, InfoContributor, ShutdownHook } from '@gantry/health';
import type { FlagContext } from './context.ts';
import { DISABLED_VARIANT, findExpiredFlags, type ExpiredFlag, type FlagRegistry } from './definitions.ts';
import { FlagsError } from './errors.ts';
import {
  canonicalJson,
  type Flags,
  type FlagPayload,
  type FlagsStatus,
  type FlagToggle,
  type FlagVariant,
} from './flags.ts';
import type { FlagsClock } from './options.ts';

/** A toggle as a test wants it: on/off, a variant name (on), or the full shape. */
export type TestToggle =
  boolean | string | { readonly enabled?: boolean; readonly variant?: string; readonly payload?: FlagPayload };

/** A fixed {@link TestToggle}, or one computed from the evaluation context (e.g. per tenant). */
export type TestFlagValue = TestToggle | ((context: FlagContext) => TestToggle);

/** Options of {@link createTestFlags}. */
export interface TestFlagsOptions<N extends string> {
  /** Registry for names, defaults and expiry dates, as with `createFlags`. */
  readonly definitions?: FlagRegistry<N>;
  /** Start without values, as a client that has not loaded yet; `markReady()` loads them. @default true */
  readonly ready?: boolean;
  /** @default Date */
  readonly clock?: FlagsClock;
}

/** One evaluation a test flags client answered. */
export interface TestEvaluation {
  readonly name: string;
  readonly kind: 'isEnabled' | 'variant';
  readonly context: FlagContext | undefined;
  readonly result: boolean | string;
}

/** A deterministic in-memory {@link Flags} for tests: no Unleash, no timers, no network. */
export interface TestFlags<N extends string = string> extends Flags<N> {
  /** Sets a toggle (visible to every later evaluation). */
  set(name: N, value: TestFlagValue): void;
  /** Removes a toggle: evaluations fall back to the default, `toggle()` returns undefined. */
  remove(name: N): void;
  /** Back to the values given at creation; clears the recorded evaluations. */
  reset(): void;
  /** Runs `fn` with `overrides` on top of the values, for this async call tree only (parallel tests stay apart). */
  withFlags<T>(overrides: Partial<Record<N, TestFlagValue>>, fn: () => T): T;
  /** Loads the values of a client created with `ready: false`. */
  markReady(): void;
  /** Every evaluation so far, oldest first. */
  readonly evaluations: readonly TestEvaluation[];
}

/**
 * An in-memory flags client with the same interface as `createFlags`, for users' unit tests: values are set in
 * code, evaluation is synchronous and deterministic, and per-test overrides are scoped with AsyncLocalStorage.
 * @example
 * const flags = createTestFlags({ 'checkout-v2': true, 'dual-write-orders-v2': 'shadow' });
 * flags.withFlags({ 'checkout-v2': false }, () => handler(request));
 */
export function createTestFlags<N extends string = string>(
  values: Partial<Record<N, TestFlagValue>> = {},
  options: TestFlagsOptions<N> = {},
): TestFlags<N> {
  return new InMemoryFlags<N>(values, options);
}

interface ResolvedToggle {
  readonly enabled: boolean;
  readonly variant: string | undefined;
  readonly payload: FlagPayload | undefined;
}

function resolveToggle(value: TestToggle): ResolvedToggle {
  if (typeof value === 'boolean') return { enabled: value, variant: undefined, payload: undefined };
  if (typeof value === 'string') return { enabled: true, variant: value, payload: undefined };
  if (typeof value === 'object' && value !== null) {
    return { enabled: value.enabled ?? true, variant: value.variant, payload: value.payload };
  }
  throw new FlagsError(
    'GANTRY_FLAGS_INVALID_OPTIONS',
    `Expected a test flag value to be a boolean, a variant name or an object, got ${typeof value}`,
  );
}

class InMemoryFlags<N extends string> implements TestFlags<N> {
  readonly #initial: Map<string, TestFlagValue>;
  readonly #values: Map<string, TestFlagValue>;
  readonly #scope = new AsyncLocalStorage<ReadonlyMap<string, TestFlagValue>>();
  readonly #definitions: FlagRegistry<N> | undefined;
  readonly #clock: FlagsClock;
  readonly #listeners = new Set<(status: FlagsStatus) => void>();
  readonly #evaluations: TestEvaluation[] = [];
  #ready: boolean;
  #updatedAt: number;
  #closed = false;

  constructor(values: Partial<Record<N, TestFlagValue>>, options: TestFlagsOptions<N>) {
    for (const value of Object.values(values)) if (typeof value !== 'function') resolveToggle(value as TestToggle);
    this.#initial = new Map(Object.entries(values) as [string, TestFlagValue][]);
    this.#values = new Map(this.#initial);
    this.#definitions = options.definitions;
    this.#clock = options.clock ?? Date;
    this.#ready = options.ready ?? true;
    this.#updatedAt = this.#clock.now();
  }

  get evaluations(): readonly TestEvaluation[] {
    return this.#evaluations;
  }

  #lookup(name: string, context: FlagContext | undefined): ResolvedToggle | undefined {
    if (!this.#ready) return undefined;
    const scoped = this.#scope.getStore();
    const value = scoped?.has(name) ? scoped.get(name) : this.#values.get(name);
    if (value === undefined) return undefined;
    return resolveToggle(typeof value === 'function' ? value(context ?? {}) : value);
  }

  isEnabled(name: N, context?: FlagContext, fallback?: boolean): boolean {
    const toggle = this.#lookup(name, context);
    const result = toggle === undefined ? (fallback ?? this.#definitions?.get(name)?.default ?? false) : toggle.enabled;
    this.#evaluations.push({ name, kind: 'isEnabled', context, result });
    return result;
  }

  variant(name: N, context?: FlagContext, fallback?: FlagVariant): FlagVariant {
    const toggle = this.#lookup(name, context);
    const base: FlagVariant = fallback ?? {
      name: this.#definitions?.get(name)?.defaultVariant ?? DISABLED_VARIANT,
      enabled: false,
      featureEnabled: false,
    };
    let result: FlagVariant;
    if (toggle === undefined) result = { ...base, featureEnabled: false };
    else if (!toggle.enabled || toggle.variant === undefined) result = { ...base, featureEnabled: toggle.enabled };
    else {
      result = {
        name: toggle.variant,
        enabled: true,
        featureEnabled: true,
        ...(toggle.payload !== undefined && { payload: toggle.payload }),
      };
    }
    this.#evaluations.push({ name, kind: 'variant', context, result: result.name });
    return result;
  }

  toggle(name: N): FlagToggle | undefined {
    const toggle = this.#lookup(name, {});
    if (toggle === undefined) return undefined;
    return { name, enabled: toggle.enabled, variants: toggle.variant === undefined ? [] : [toggle.variant] };
  }

  identity(context?: FlagContext): { readonly tenantId: string | undefined; readonly userId: string | undefined } {
    return { tenantId: context?.tenantId, userId: context?.userId };
  }

  set(name: N, value: TestFlagValue): void {
    if (typeof value !== 'function') resolveToggle(value);
    this.#values.set(name, value);
    this.#changed();
  }

  remove(name: N): void {
    this.#values.delete(name);
    this.#changed();
  }

  reset(): void {
    this.#values.clear();
    for (const [name, value] of this.#initial) this.#values.set(name, value);
    this.#evaluations.length = 0;
    this.#changed();
  }

  withFlags<T>(overrides: Partial<Record<N, TestFlagValue>>, fn: () => T): T {
    const merged = new Map(this.#scope.getStore() ?? []);
    for (const [name, value] of Object.entries(overrides) as [string, TestFlagValue][]) merged.set(name, value);
    return this.#scope.run(merged, fn);
  }

  markReady(): void {
    if (this.#ready) return;
    this.#ready = true;
    this.#changed();
  }

  #changed(): void {
    this.#updatedAt = this.#clock.now();
    const status = this.status;
    for (const listener of this.#listeners) listener(status);
  }

  get status(): FlagsStatus {
    return {
      ready: this.#ready,
      synchronized: this.#ready,
      source: this.#ready ? 'bootstrap' : 'none',
      hash: this.#ready ? this.#hash() : null,
      updatedAt: this.#ready ? new Date(this.#updatedAt).toISOString() : null,
      lastSyncAt: null,
      consecutiveFailures: 0,
      lastError: null,
      unauthorized: false,
      toggles: this.#values.size,
    };
  }

  #hash(): string {
    const plain = [...this.#values].map(([name, value]) => [name, typeof value === 'function' ? 'fn' : value] as const);
    plain.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return createHash('sha256').update(canonicalJson(plain)).digest('hex').slice(0, 16);
  }

  async start(): Promise<void> {
    if (this.#closed) throw new FlagsError('GANTRY_FLAGS_CLOSED', 'The flag client was closed');
  }

  async ready(): Promise<void> {
    await this.start();
    if (!this.#ready) {
      await new Promise<void>((resolve) => {
        const off = this.onChange((status) => {
          if (status.ready) {
            off();
            resolve();
          }
        });
      });
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#listeners.clear();
  }

  onChange(listener: (status: FlagsStatus) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  check(options: { readonly name?: string; readonly critical?: boolean } = {}): Check {
    return {
      name: options.name ?? 'flags',
      critical: options.critical ?? true,
      run: async () => ({
        status: this.#ready ? 'UP' : 'DOWN',
        data: { source: this.status.source, toggles: this.#values.size },
      }),
    };
  }

  info(): InfoContributor {
    return {
      name: 'flags',
      contribute: () => {
        const { hash, source, updatedAt } = this.status;
        return { hash, source, updatedAt };
      },
    };
  }

  shutdownHook(): ShutdownHook {
    return { name: 'flags', run: () => this.close() };
  }

  expired(): readonly ExpiredFlag[] {
    return findExpiredFlags(this.#definitions, this.#clock.now());
  }
}
