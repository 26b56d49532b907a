// An HTTP dependency: a request that must answer with an expected status within the timeout.
import type { Check } from '../contracts.ts';
import { invalid, stringOption } from '../options.ts';

/** Options of {@link createHttpCheck}. */
export interface HttpCheckOptions {
  /** The URL to call. Not shown in the response (it may carry a token). */
  readonly url: string | URL;
  /** @default 'http' */
  readonly name?: string;
  /** @default 'GET' */
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Which status codes count as UP. @default 200–399 */
  readonly expectStatus?: (statusCode: number) => boolean;
  /** @default true */
  readonly critical?: boolean;
  /** @default globalThis.fetch */
  readonly fetch?: typeof fetch;
}

/**
 * Calls a dependency over HTTP with the run's `AbortSignal` (the request is aborted at the timeout). Data:
 * `statusCode`, `latencyMs`. Redirects are not followed.
 * @throws HealthError `GANTRY_HEALTH_INVALID_OPTION` for a malformed URL.
 * @example
 * health.addCheck(createHttpCheck({ name: 'payments', url: 'http://payments:8080/q/health/ready' }));
 */
export function createHttpCheck(options: HttpCheckOptions): Check {
  if (typeof options !== 'object' || options === null) throw invalid('options', 'an object', options);
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw invalid('url', 'an absolute http(s) URL', options.url);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw invalid('url', 'an absolute http(s) URL', String(options.url));
  const name = stringOption('name', options.name) ?? 'http';
  const method = stringOption('method', options.method) ?? 'GET';
  const expect = options.expectStatus ?? ((code: number) => code >= 200 && code < 400);
  const doFetch = options.fetch ?? globalThis.fetch;
  return {
    name,
    critical: options.critical ?? true,
    run: async (signal) => {
      const started = performance.now();
      const response = await doFetch(url, {
        method,
        signal,
        redirect: 'manual',
        ...(options.headers === undefined ? {} : { headers: options.headers }),
      });
      await response.body?.cancel().catch(() => undefined);
      const data = { statusCode: response.status, latencyMs: Math.round(performance.now() - started) };
      return expect(response.status)
        ? { status: 'UP', data }
        : { status: 'DOWN', data: { ...data, reason: `unexpected status ${response.status}` } };
    },
  };
}
