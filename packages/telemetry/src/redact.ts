// Secret redaction for log objects. pino's own `redact` needs exact paths; secrets hide under any key name
// (`db.password`, `headers.authorization`, `aws_secret_key`), so we match key names instead, copying an object only
// when something in it must be hidden.

/** What a redacted value is replaced with. */
export const REDACTED = '[REDACTED]';

/**
 * Key names redacted by default, case-insensitive: anything containing password, passwd, secret, token,
 * authorization, cookie or credential, keys ending in `_key` or `-key`, and the usual key names (`apiKey`,
 * `privateKey`, `accessKey`…).
 */
export const DEFAULT_REDACT_PATTERN =
  /passw(or)?d|secret|token|authorization|cookie|credential|[_-]key$|^(api|private|access|signing|encryption|client)_?key$|^pwd$/i;

/** How deep into nested objects redaction looks. */
const MAX_DEPTH = 6;
const CACHE_LIMIT = 2_000;

/** A compiled redactor: returns the value itself when nothing matched, a redacted copy otherwise. */
export interface Redactor {
  (value: Record<string, unknown>): Record<string, unknown>;
}

/**
 * Builds a redactor from the default pattern plus extra exact key names (case-insensitive).
 * @example
 * const redact = createRedactor(['session']);
 * redact({ user: 'a', password: 'x' }); // { user: 'a', password: '[REDACTED]' }
 */
export function createRedactor(extraKeys: readonly string[] = [], censor: string = REDACTED): Redactor {
  const extra = new Set(extraKeys.map((key) => key.toLowerCase()));
  const cache = new Map<string, boolean>();
  const isSecretKey = (key: string): boolean => {
    let secret = cache.get(key);
    if (secret === undefined) {
      secret = DEFAULT_REDACT_PATTERN.test(key) || extra.has(key.toLowerCase());
      if (cache.size < CACHE_LIMIT) cache.set(key, secret);
    }
    return secret;
  };
  const visit = (value: unknown, depth: number): unknown => {
    if (typeof value !== 'object' || value === null || depth > MAX_DEPTH) return value;
    if (Array.isArray(value)) {
      let copy: unknown[] | undefined;
      for (let index = 0; index < value.length; index += 1) {
        const item: unknown = value[index];
        const result = visit(item, depth + 1);
        if (result !== item) {
          copy ??= [...(value as unknown[])];
          copy[index] = result;
        }
      }
      return copy ?? value;
    }
    const prototype: unknown = Object.getPrototypeOf(value);
    if (prototype !== Object.prototype && prototype !== null) return value;
    const record = value as Record<string, unknown>;
    let copy: Record<string, unknown> | undefined;
    for (const key in record) {
      const item = record[key];
      if (item === undefined) continue;
      if (isSecretKey(key)) {
        // A secret-named object (`{ secrets: {...} }`) is hidden whole: all of it is secret.
        copy ??= { ...record };
        copy[key] = censor;
      } else if (typeof item === 'object' && item !== null) {
        const result = visit(item, depth + 1);
        if (result !== item) {
          copy ??= { ...record };
          copy[key] = result;
        }
      }
    }
    return copy ?? record;
  };
  return (value) => visit(value, 0) as Record<string, unknown>;
}

// A query parameter whose name says secret (`?access_token=…`, `&api_key=…`) anywhere in a serialized line.
const SECRET_QUERY_PARAMETER =
  /([?&])([^=&#"\\\s]*(?:passw(?:or)?d|secret|token|key|auth|credential|session|signature)[^=&#"\\\s]*)=([^&#"\\\s]*)/gi;

/**
 * Redacts secret-named query parameters in an already serialized log line (URLs are logged by serializers, after
 * key-based redaction ran). Lines without `=` are returned untouched.
 * @example
 * redactQueryParameters('{"url":"/cb?access_token=abc&x=1"}'); // '{"url":"/cb?access_token=[REDACTED]&x=1"}'
 */
export function redactQueryParameters(line: string, censor: string = REDACTED): string {
  if (!line.includes('=')) return line;
  return line.replace(
    SECRET_QUERY_PARAMETER,
    (_match, separator: string, name: string) => `${separator}${name}=${censor}`,
  );
}
