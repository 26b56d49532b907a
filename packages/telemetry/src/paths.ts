// Matching request paths against the ignore list: exact paths, or prefixes written with a trailing `*`.

/**
 * Compiles a list of paths (`/livez`, `/q/health*`) into a matcher of raw request URLs (query ignored).
 * @example
 * const ignored = createPathMatcher(['/q/health*']);
 * ignored('/q/health/ready?x=1'); // true
 */
export function createPathMatcher(patterns: readonly string[]): (url: string) => boolean {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  for (const pattern of patterns) {
    if (pattern.endsWith('*')) prefixes.push(pattern.slice(0, -1));
    else exact.add(pattern);
  }
  return (url) => {
    const query = url.indexOf('?');
    const path = query < 0 ? url : url.slice(0, query);
    if (exact.has(path)) return true;
    for (const prefix of prefixes) if (path.startsWith(prefix)) return true;
    return false;
  };
}
