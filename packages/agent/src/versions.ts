// Schema versions such as "1.2.10", compared segment by segment numerically ("1.10" > "1.9").

/**
 * Negative, zero or positive like a comparator. Non-numeric segments compare as text.
 * @example compareVersions('1.10.0', '1.9.3') > 0 // true
 */
export function compareVersions(a: string, b: string): number {
  const left = a.split('.');
  const right = b.split('.');
  for (let index = 0; index < Math.max(left.length, right.length); index += 1) {
    const x = left[index] ?? '0';
    const y = right[index] ?? '0';
    const nx = Number(x);
    const ny = Number(y);
    const order = Number.isFinite(nx) && Number.isFinite(ny) ? nx - ny : x.localeCompare(y);
    if (order !== 0) return order;
  }
  return 0;
}

/**
 * Whether `version` lies within [min, max].
 * @example versionWithin('1.2.10', { min: '1.2.0', max: '1.3.0' }) // true
 */
export function versionWithin(version: string, range: { readonly min: string; readonly max: string }): boolean {
  return compareVersions(version, range.min) >= 0 && compareVersions(version, range.max) <= 0;
}

/** The schema state of the database as `/q/info` reports it (`schema.current`, `schema.lastContract`). */
export interface DatabaseSchema {
  /** The newest applied migration, null before the first one. */
  readonly current: string | null;
  /** The newest applied contract migration, null when none ran. */
  readonly lastContract: string | null;
}

/**
 * Why an app version that declares `supports` cannot run against the database, or `undefined` when it can.
 * `supports.min` is the newest migration the version needs (`current` must have reached it); `supports.max` is the
 * newest *contract* migration it survives (expand migrations beyond it never break it, so `current` may be past
 * `max`). The same rule as `@gantry/migrations`' startup check.
 * @example schemaIncompatibility({ current: '5', lastContract: '3' }, { min: '2', max: '4' }) // undefined
 * @example schemaIncompatibility({ current: '5', lastContract: '5' }, { min: '2', max: '4' }) // 'contract migration 5 ran and it survives contracts up to 4'
 */
export function schemaIncompatibility(
  database: DatabaseSchema,
  supports: { readonly min: string; readonly max: string },
): string | undefined {
  if (database.current === null || compareVersions(database.current, supports.min) < 0)
    return `it needs schema ${supports.min} and the database is at ${database.current ?? 'no migration'}`;
  if (database.lastContract !== null && compareVersions(database.lastContract, supports.max) > 0)
    return `contract migration ${database.lastContract} ran and it survives contracts up to ${supports.max}`;
  return undefined;
}

/**
 * Whether an app version that declares `supports` can run against the database: `current ≥ supports.min` and no
 * contract migration newer than `supports.max` applied.
 * @example schemaCompatible({ current: '1.3.0', lastContract: null }, { min: '1.0.0', max: '1.2.0' }) // true
 */
export function schemaCompatible(
  database: DatabaseSchema,
  supports: { readonly min: string; readonly max: string },
): boolean {
  return schemaIncompatibility(database, supports) === undefined;
}
