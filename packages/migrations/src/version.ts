// Versions are dot-separated non-negative integers ("1.2.10"), compared segment by segment numerically;
// missing trailing segments count as zero, so "1.2" and "1.2.0" are the same version.
import { MigrationError } from './errors.ts';

const VERSION_PATTERN = /^\d+(?:[._]\d+)*$/;

/**
 * Parses a version string into its numeric segments. Underscores (Flyway's `V1_2__x.sql`) count as dots.
 * @throws MigrationError `GANTRY_MIGRATIONS_INVALID_VERSION` when `text` is not digits separated by dots.
 * @example
 * parseVersion('1.2.10'); // [1, 2, 10]
 */
export function parseVersion(text: string): readonly number[] {
  if (!VERSION_PATTERN.test(text)) {
    throw new MigrationError(
      'GANTRY_MIGRATIONS_INVALID_VERSION',
      `Expected a version of dot-separated integers such as "1.2.10", got ${JSON.stringify(text)}`,
    );
  }
  return text.split(/[._]/).map((segment) => Number.parseInt(segment, 10));
}

/**
 * The canonical spelling of a version: dots, no leading zeros ("01_2" → "1.2").
 * @throws MigrationError `GANTRY_MIGRATIONS_INVALID_VERSION` for malformed input.
 * @example
 * normalizeVersion('1_02'); // '1.2'
 */
export function normalizeVersion(text: string): string {
  return parseVersion(text).join('.');
}

/**
 * Compares two versions segment by segment numerically: negative when `a < b`, 0 when equal, positive otherwise.
 * @throws MigrationError `GANTRY_MIGRATIONS_INVALID_VERSION` for malformed input.
 * @example
 * ['1.10', '1.9', '1.2.10'].sort(compareVersions); // ['1.2.10', '1.9', '1.10']
 */
export function compareVersions(a: string, b: string): number {
  const left = parseVersion(a);
  const right = parseVersion(b);
  const length = Math.max(left.length, right.length);
  for (let index = 0; index < length; index += 1) {
    const difference = (left[index] ?? 0) - (right[index] ?? 0);
    if (difference !== 0) return difference < 0 ? -1 : 1;
  }
  return 0;
}

/** Whether `text` is a well-formed version. */
export function isVersion(text: string): boolean {
  return VERSION_PATTERN.test(text);
}
