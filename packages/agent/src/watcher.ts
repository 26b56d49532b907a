// Reads the app over HTTP: MicroProfile Health probes, the /q/info document and the /q/metrics histogram, each
// bounded by a timeout. Never throws: every failure becomes part of the observation.
import { isAgentError } from './errors.ts';
import type { HttpClient } from './http-client.ts';
import { totalsFromExposition, type Totals } from './totals.ts';

/** Result of one probe request. */
export interface ProbeObservation {
  /** `UP` on 2xx with status UP, `DOWN` on 503/DOWN, `UNREACHABLE` on transport errors and timeouts. */
  readonly status: 'UP' | 'DOWN' | 'UNREACHABLE';
  readonly httpStatus: number | undefined;
  readonly detail: string | undefined;
  /** Names of DOWN checks when the body was MicroProfile Health JSON. */
  readonly downChecks: readonly string[];
}

/** The `schema` section of /q/info (migrations contract). */
export interface SchemaInfo {
  readonly current: string | null;
  readonly phase: 'expand' | 'backfill' | 'contract' | null;
  readonly supports: { readonly min: string; readonly max: string } | null;
  readonly pending: number;
  readonly failed: readonly { readonly version: string; readonly description: string }[];
  readonly lastContract: string | null;
}

/** The parts of /q/info the agent uses. */
export interface AppInfo {
  readonly service: string | undefined;
  readonly version: string | undefined;
  readonly commit: string | undefined;
  readonly startedAt: number | undefined;
  readonly schema: SchemaInfo | undefined;
  readonly flagsHash: string | undefined;
}

/** One watch cycle's view of the app. */
export interface AppObservation {
  readonly at: number;
  readonly live: ProbeObservation;
  readonly ready: ProbeObservation;
  readonly info: AppInfo | undefined;
  readonly infoError: string | undefined;
  readonly totals: Totals | undefined;
  readonly metricsError: string | undefined;
}

/** Where and how to reach the app. */
export interface AppEndpoints {
  readonly url: string;
  readonly livePath: string;
  readonly readyPath: string;
  readonly infoPath: string;
  readonly metricsPath: string;
  readonly timeoutMs: number;
  readonly metricName: string;
}

function asString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : typeof value === 'number' ? String(value) : undefined;
}

/** Reads the `schema` section defensively (missing or odd fields become null/empty). */
export function parseSchemaInfo(value: unknown): SchemaInfo | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const record = value as Record<string, unknown>;
  const supportsValue = record['supports'] as Record<string, unknown> | null | undefined;
  const min = asString(supportsValue?.['min']);
  const max = asString(supportsValue?.['max']);
  const phase = record['phase'];
  const failed = Array.isArray(record['failed'])
    ? (record['failed'] as unknown[]).flatMap((item) => {
        const entry = item as Record<string, unknown> | null;
        const version = asString(entry?.['version']);
        return version === undefined ? [] : [{ version, description: asString(entry?.['description']) ?? '' }];
      })
    : [];
  return {
    current: asString(record['current']) ?? null,
    phase: phase === 'expand' || phase === 'backfill' || phase === 'contract' ? phase : null,
    supports: min !== undefined && max !== undefined ? { min, max } : null,
    pending: typeof record['pending'] === 'number' ? record['pending'] : 0,
    failed,
    lastContract: asString(record['lastContract']) ?? null,
  };
}

/** Reads /q/info defensively. */
export function parseAppInfo(value: unknown): AppInfo | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const record = value as Record<string, unknown>;
  const startedAt = asString(record['startedAt']);
  const flags = record['flags'] as Record<string, unknown> | undefined;
  const started = startedAt === undefined ? Number.NaN : Date.parse(startedAt);
  return {
    service: asString(record['service']),
    version: asString(record['version']),
    commit: asString(record['commit']),
    startedAt: Number.isNaN(started) ? undefined : started,
    schema: parseSchemaInfo(record['schema']),
    flagsHash: asString(flags?.['hash']),
  };
}

async function request(
  client: HttpClient,
  url: string,
  timeoutMs: number,
): Promise<{ status: number; text: string } | { error: string }> {
  try {
    const result = await client(url, {
      timeoutMs,
      headers: { accept: 'application/json, text/plain;q=0.9, */*;q=0.1' },
    });
    return { status: result.status, text: result.body };
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
}

async function probe(client: HttpClient, url: string, timeoutMs: number): Promise<ProbeObservation> {
  const result = await request(client, url, timeoutMs);
  if ('error' in result) return { status: 'UNREACHABLE', httpStatus: undefined, detail: result.error, downChecks: [] };
  let downChecks: string[] = [];
  let bodyStatus: string | undefined;
  try {
    const body = JSON.parse(result.text) as { status?: unknown; checks?: { name?: unknown; status?: unknown }[] };
    bodyStatus = typeof body.status === 'string' ? body.status : undefined;
    if (Array.isArray(body.checks)) {
      downChecks = body.checks.filter((check) => check?.status === 'DOWN').map((check) => String(check.name));
    }
  } catch {
    // A probe may answer plain text; the status code decides.
  }
  const up = result.status >= 200 && result.status < 300 && bodyStatus !== 'DOWN';
  return {
    status: up ? 'UP' : 'DOWN',
    httpStatus: result.status,
    detail: up ? undefined : `HTTP ${result.status}${downChecks.length > 0 ? ` (${downChecks.join(', ')} DOWN)` : ''}`,
    downChecks,
  };
}

/**
 * Observes the app once: probes, info and metrics in parallel, each with its own timeout.
 * @example const observation = await observeApp(createNodeHttpClient(), endpoints, Date.now);
 */
export async function observeApp(
  client: HttpClient,
  endpoints: AppEndpoints,
  now: () => number,
): Promise<AppObservation> {
  const base = endpoints.url.replace(/\/+$/, '');
  const [live, ready, info, metrics] = await Promise.all([
    probe(client, base + endpoints.livePath, endpoints.timeoutMs),
    probe(client, base + endpoints.readyPath, endpoints.timeoutMs),
    request(client, base + endpoints.infoPath, endpoints.timeoutMs),
    request(client, base + endpoints.metricsPath, endpoints.timeoutMs),
  ]);
  let appInfo: AppInfo | undefined;
  let infoError: string | undefined;
  if ('error' in info) infoError = info.error;
  else if (info.status !== 200) infoError = `HTTP ${info.status}`;
  else {
    try {
      appInfo = parseAppInfo(JSON.parse(info.text));
      if (appInfo === undefined) infoError = 'not a JSON object';
    } catch {
      infoError = 'not JSON';
    }
  }
  let totals: Totals | undefined;
  let metricsError: string | undefined;
  if ('error' in metrics) metricsError = metrics.error;
  else if (metrics.status !== 200) metricsError = `HTTP ${metrics.status}`;
  else {
    try {
      totals = totalsFromExposition(metrics.text, endpoints.metricName);
    } catch (error) {
      metricsError = isAgentError(error) ? error.message : String(error);
    }
  }
  return { at: now(), live, ready, info: appInfo, infoError, totals, metricsError };
}
