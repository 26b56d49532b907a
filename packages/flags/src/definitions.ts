import { FlagsError } from './errors.ts';

/** What the code knows about one flag: its safe default, who owns it and when it should be gone. */
export interface FlagDefinition {
  /** Returned by `isEnabled` when Unleash has no data yet or does not know the toggle. @default false */
  readonly default?: boolean;
  /** Variant name `variant()` returns when the toggle is unknown or disabled. @default 'disabled' */
  readonly defaultVariant?: string;
  /** Team or person to ask about the flag; shown when it expires. */
  readonly owner?: string;
  /** Date (`YYYY-MM-DD` or a `Date`) after which the flag is reported as expired: remove it from the code. */
  readonly expires?: string | Date;
  readonly description?: string;
}

/** A flag definition after validation: dates parsed, defaults filled. */
export interface NormalizedFlagDefinition {
  readonly name: string;
  readonly default: boolean;
  readonly defaultVariant: string;
  readonly owner: string | undefined;
  readonly expires: Date | undefined;
  readonly description: string | undefined;
}

/** The typed registry {@link defineFlags} returns; `N` is the union of flag names. */
export interface FlagRegistry<N extends string = string> {
  readonly names: readonly N[];
  /** The definition of `name`, or undefined for a name the registry does not hold. */
  get(name: string): NormalizedFlagDefinition | undefined;
}

/** A flag past its expiry date. */
export interface ExpiredFlag {
  readonly name: string;
  readonly owner: string | undefined;
  readonly expires: string;
  readonly daysOverdue: number;
}

/** Name of the variant Unleash reports for a disabled or unknown toggle. */
export const DISABLED_VARIANT = 'disabled';

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._~:-]*$/;
const DAY_MS = 86_400_000;

/**
 * Declares the flags a service uses, once. The returned registry types every flag name, so `isEnabled('typo')`
 * fails to compile, and carries each flag's default, owner and expiry date.
 * @throws FlagsError `GANTRY_FLAGS_INVALID_DEFINITION` for a malformed name, default or date.
 * @example
 * export const FLAGS = defineFlags({
 *   'checkout-v2': { default: false, owner: 'payments', expires: '2026-12-31' },
 *   'dual-write-orders-v2': { owner: 'orders', defaultVariant: 'off' },
 * });
 * const flags = createFlags({ url, token, appName: 'orders', definitions: FLAGS });
 */
export function defineFlags<const D extends Readonly<Record<string, FlagDefinition>>>(
  definitions: D,
): FlagRegistry<Extract<keyof D, string>> {
  if (typeof definitions !== 'object' || definitions === null || Array.isArray(definitions)) {
    throw invalid(`Expected the flag definitions to be an object keyed by flag name, got ${describe(definitions)}`);
  }
  const map = new Map<string, NormalizedFlagDefinition>();
  for (const [name, definition] of Object.entries(definitions)) {
    map.set(name, normalize(name, definition));
  }
  const names = Object.freeze([...map.keys()]) as readonly Extract<keyof D, string>[];
  return Object.freeze({ names, get: (name: string) => map.get(name) });
}

function normalize(name: string, definition: FlagDefinition): NormalizedFlagDefinition {
  if (!NAME_PATTERN.test(name)) {
    throw invalid(`Expected flag name to be a URL-safe Unleash name (letters, digits, . _ ~ : -), got "${name}"`);
  }
  if (typeof definition !== 'object' || definition === null) {
    throw invalid(`Expected the definition of "${name}" to be an object, got ${describe(definition)}`);
  }
  if (definition.default !== undefined && typeof definition.default !== 'boolean') {
    throw invalid(`Expected \`default\` of "${name}" to be a boolean, got ${describe(definition.default)}`);
  }
  for (const key of ['defaultVariant', 'owner', 'description'] as const) {
    const value = definition[key];
    if (value !== undefined && (typeof value !== 'string' || value.length === 0)) {
      throw invalid(`Expected \`${key}\` of "${name}" to be a non-empty string, got ${describe(value)}`);
    }
  }
  return Object.freeze({
    name,
    default: definition.default ?? false,
    defaultVariant: definition.defaultVariant ?? DISABLED_VARIANT,
    owner: definition.owner,
    expires: definition.expires === undefined ? undefined : parseDate(name, definition.expires),
    description: definition.description,
  });
}

function parseDate(name: string, value: string | Date): Date {
  const date =
    value instanceof Date
      ? value
      : typeof value === 'string' && /^\d{4}-\d{2}-\d{2}/.test(value)
        ? new Date(value)
        : undefined;
  if (date === undefined || Number.isNaN(date.getTime())) {
    throw invalid(`Expected \`expires\` of "${name}" to be a date such as "2026-12-31", got ${describe(value)}`);
  }
  return date;
}

/** The flags of `registry` whose expiry date lies before `now`. */
export function findExpiredFlags(registry: FlagRegistry | undefined, now: number): ExpiredFlag[] {
  if (registry === undefined) return [];
  const expired: ExpiredFlag[] = [];
  for (const name of registry.names) {
    const definition = registry.get(name);
    if (definition?.expires === undefined || definition.expires.getTime() > now) continue;
    expired.push({
      name,
      owner: definition.owner,
      expires: definition.expires.toISOString().slice(0, 10),
      daysOverdue: Math.floor((now - definition.expires.getTime()) / DAY_MS),
    });
  }
  return expired;
}

function invalid(message: string): FlagsError {
  return new FlagsError('GANTRY_FLAGS_INVALID_DEFINITION', message);
}

/** Describes a received value for an error message. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null || value === undefined) return String(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}
