// Construction-time validation helpers: every message names the option, what was expected and what came in.
import { invalidOption } from './errors.ts';

/** @internal */
export function optionalNumber(
  name: string,
  value: unknown,
  fallback: number,
  { min = 0, integer = false, max = Number.POSITIVE_INFINITY }: { min?: number; integer?: boolean; max?: number } = {},
): number {
  if (value === undefined) return fallback;
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    value < min ||
    value > max ||
    (integer && !Number.isInteger(value))
  ) {
    const bound = max === Number.POSITIVE_INFINITY ? `≥ ${min}` : `between ${min} and ${max}`;
    throw invalidOption(name, `a finite ${integer ? 'integer' : 'number'} ${bound}`, value);
  }
  return value;
}

/** @internal */
export function requiredString(name: string, value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '') throw invalidOption(name, 'a non-empty string', value);
  return value;
}

/** @internal */
export function optionalString(name: string, value: unknown, fallback: string): string {
  return value === undefined ? fallback : requiredString(name, value);
}

/** A mount path such as `database` or `db/prod`: segments of URL-safe characters, no leading or trailing slash. */
export function mountPath(name: string, value: unknown, fallback: string): string {
  const mount = optionalString(name, value, fallback).replace(/^\/+|\/+$/g, '');
  if (!/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(mount)) {
    throw invalidOption(name, 'a mount path such as "database" or "db/prod"', value);
  }
  return mount;
}

/** @internal */
export function optionalBoolean(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalidOption(name, 'a boolean', value);
  return value;
}

/** @internal */
export function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw invalidOption(name, `one of ${allowed.map((item) => `"${item}"`).join(', ')}`, value);
  }
  return value as T;
}

/** Encodes each segment of a path for use in a Vault URL, keeping the slashes. */
export function encodePath(path: string): string {
  return path
    .split('/')
    .filter((segment) => segment !== '')
    .map((segment) => encodeURIComponent(segment))
    .join('/');
}
