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
