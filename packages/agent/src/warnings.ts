// Process warnings as log lines. Node prints them as plain text on stderr, the one unstructured line a sidecar's
// log pipeline would otherwise receive; the CLI routes them through its JSON logger instead.
import type { Logger } from './logger.ts';

/**
 * A warning a dependency raises on every supported Node version and that needs nothing from the operator:
 * kafkajs 2.2.4 (its last release) arms its throttle check with `throttledUntil - Date.now()` while
 * `throttledUntil` is still -1, which Node ≥ 23 clamps to 1 ms and reports as a `TimeoutNegativeWarning`.
 */
function isKnownHarmless(warning: Error): boolean {
  return warning.name === 'TimeoutNegativeWarning' && (warning.stack ?? '').includes('kafkajs');
}

/**
 * Replaces Node's printer of process warnings with the logger: a warning becomes a `warn` line with
 * `event: "process.warning"`, its name, code and message (a known harmless one from a dependency is logged at
 * `debug`). Returns a function that restores the previous listeners.
 * @example
 * const restore = routeProcessWarnings(logger);
 * // … run …
 * restore();
 */
export function routeProcessWarnings(logger: Logger): () => void {
  const previous = process.listeners('warning');
  for (const listener of previous) process.off('warning', listener);
  const onWarning = (warning: Error): void => {
    const code = (warning as { code?: unknown }).code;
    const fields = { event: 'process.warning', name: warning.name, ...(code === undefined ? {} : { code }) };
    if (isKnownHarmless(warning)) logger.debug(fields, warning.message);
    else logger.warn(fields, warning.message);
  };
  process.on('warning', onWarning);
  return () => {
    process.off('warning', onWarning);
    for (const listener of previous) process.on('warning', listener);
  };
}
